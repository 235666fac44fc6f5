//! Stack-overflow reports for fibers.
//!
//! # Contract
//!
//! A fiber that runs off the bottom of its stack touches its guard page. The
//! SIGSEGV/SIGBUS handler installed here (on an alternate signal stack, since
//! the faulting stack is exhausted) checks whether the fault address lies in
//! the guard page of the fiber running on this thread; if so it prints which
//! fiber overflowed and how big its stack was, and aborts the process. Faults
//! anywhere else go to the handler that was installed before ours (normally
//! Rust's own, which reports overflows of thread stacks), or to the default
//! action. The handler only reads memory and calls `write(2)` and `abort(3)`,
//! both async-signal-safe.

use std::io;
use std::sync::{Once, OnceLock};

use crate::record;

static PREV_SEGV: OnceLock<libc::sigaction> = OnceLock::new();
static PREV_BUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Installs the handler once per process.
pub(crate) fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (sig, prev) in [(libc::SIGSEGV, &PREV_SEGV), (libc::SIGBUS, &PREV_BUS)] {
            if let Err(e) = install_for(sig, prev) {
                crate::sys::report(format_args!(
                    "sylvan: cannot install the stack-overflow handler: {e}"
                ));
            }
        }
    });
}

fn install_for(sig: libc::c_int, prev: &OnceLock<libc::sigaction>) -> io::Result<()> {
    // SAFETY: sigaction is plain data; all-zero is a valid (empty) value.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    crate::sys::syscall!(sigaction(sig, std::ptr::null(), &mut old))?;
    let _ = prev.set(old);
    // SAFETY: as above.
    let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
    new.sa_sigaction = on_fault as *const () as usize;
    new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: sa_mask is a valid sigset_t owned by `new`.
    unsafe { libc::sigemptyset(&mut new.sa_mask) };
    crate::sys::syscall!(sigaction(sig, &new, std::ptr::null_mut()))?;
    Ok(())
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers; for
    // SIGSEGV/SIGBUS si_addr is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    let ctx = record::current_ptr();
    if !ctx.is_null() {
        // SAFETY: CURRENT points to the running fiber's ctx, which lives until
        // the hub resets CURRENT; the fault happened while that fiber ran.
        let ctx = unsafe { &*ctx };
        let (lo, hi) = ctx.guard;
        if (lo..hi).contains(&addr) {
            report(
                ctx.record.name(),
                ctx.record.id.as_u64(),
                ctx.record.stack_size(),
            );
            // SAFETY: abort never returns and is async-signal-safe.
            unsafe { libc::abort() };
        }
    }
    chain(sig, info, uctx);
}

/// Hands a fault that is not a fiber overflow to the previous disposition.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut libc::c_void) {
    let prev = if sig == libc::SIGBUS {
        PREV_BUS.get()
    } else {
        PREV_SEGV.get()
    };
    let handler = prev.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Restore the default action and return: the faulting instruction runs
        // again and the kernel applies it (terminate with a core dump).
        // SAFETY: zeroed sigaction with SIG_DFL (0) is the default action.
        let mut dfl: libc::sigaction = unsafe { std::mem::zeroed() };
        dfl.sa_sigaction = libc::SIG_DFL;
        // SAFETY: installing the default action has no preconditions.
        unsafe { libc::sigaction(sig, &dfl, std::ptr::null_mut()) };
        return;
    }
    let flags = prev.map_or(0, |p| p.sa_flags);
    if flags & libc::SA_SIGINFO != 0 {
        // SAFETY: with SA_SIGINFO the previous handler has this signature; we
        // pass it the arguments the kernel gave us.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        f(sig, info, uctx);
    } else {
        // SAFETY: without SA_SIGINFO the previous handler takes only the signal.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(sig);
    }
}

/// Writes the overflow report to stderr without allocating.
fn report(name: Option<&str>, id: u64, stack_size: usize) {
    let mut buf = Buf::default();
    buf.push(b"\nsylvan: fiber ");
    if let Some(n) = name {
        buf.push(b"'");
        buf.push(n.as_bytes());
        buf.push(b"' ");
    }
    buf.push(b"(#");
    buf.num(id);
    buf.push(b") overflowed its stack of ");
    buf.num(stack_size as u64);
    buf.push(
        b" bytes; aborting. Give it a larger stack with sylvan::Builder::stack_size \
          (or RuntimeBuilder::stack_size), or use less stack (deep recursion, big locals).\n",
    );
    let mut out: &[u8] = &buf.bytes[..buf.len];
    while !out.is_empty() {
        // SAFETY: writing a valid buffer to fd 2 is async-signal-safe.
        let n = unsafe { libc::write(2, out.as_ptr().cast(), out.len()) };
        if n <= 0 {
            break;
        }
        out = &out[n as usize..];
    }
}

struct Buf {
    bytes: [u8; 512],
    len: usize,
}

impl Default for Buf {
    fn default() -> Self {
        Buf {
            bytes: [0; 512],
            len: 0,
        }
    }
}

impl Buf {
    fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    fn num(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}

/// An alternate signal stack for the current thread, removed on drop. Only
/// installed if the thread has none (Rust's runtime usually provides one).
pub(crate) struct AltStack {
    mem: Option<(*mut u8, usize)>,
}

const ALT_STACK_SIZE: usize = 64 * 1024;

impl AltStack {
    pub(crate) fn install() -> AltStack {
        // SAFETY: plain data; zeroed is a valid value to be overwritten.
        let mut cur: libc::stack_t = unsafe { std::mem::zeroed() };
        if crate::sys::syscall!(sigaltstack(std::ptr::null(), &mut cur)).is_err()
            || cur.ss_flags & libc::SS_DISABLE == 0
        {
            return AltStack { mem: None };
        }
        let Ok(mem) = crate::sys::map_reserve(ALT_STACK_SIZE) else {
            return AltStack { mem: None };
        };
        let st = libc::stack_t {
            ss_sp: mem.cast(),
            ss_flags: 0,
            ss_size: ALT_STACK_SIZE,
        };
        if crate::sys::syscall!(sigaltstack(&st, std::ptr::null_mut())).is_err() {
            // SAFETY: `mem` was just mapped by us and is not in use.
            unsafe { crate::sys::unmap(mem, ALT_STACK_SIZE) };
            return AltStack { mem: None };
        }
        AltStack {
            mem: Some((mem, ALT_STACK_SIZE)),
        }
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        if let Some((mem, len)) = self.mem.take() {
            let st = libc::stack_t {
                ss_sp: std::ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            // Disable first so the kernel no longer uses the memory.
            if crate::sys::syscall!(sigaltstack(&st, std::ptr::null_mut())).is_ok() {
                // SAFETY: the alternate stack is disabled, so nothing uses `mem`.
                unsafe { crate::sys::unmap(mem, len) };
            }
        }
    }
}
