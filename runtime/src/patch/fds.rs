//! What the patch knows about each descriptor: whether this process created
//! it as a socket, whether its owner chose non-blocking mode, whether the
//! patch switched it to non-blocking underneath, its `SO_RCVTIMEO` and
//! `SO_SNDTIMEO`, and the [`IoRegistration`] fibers wait on.
//!
//! Indexed by descriptor number in a table of lazily allocated chunks (never
//! freed), one small lock per slot. The hooks keep it current: `socket`,
//! `socketpair` and `accept` fill slots; `close` and the targets of `dup2`
//! and `dup3` empty them; `dup` shares the open file description's state.
//! A descriptor this process did not create as a socket (a pipe, a
//! terminal, stdin, an inherited socket) is classified when a fiber first
//! uses it, and that entry lives until the descriptor is closed.

use std::ffi::c_int;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::real;
use crate::io::{Direction, IoRegistration};

/// What kind of file a descriptor refers to, as far as the patch cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A socket: a fiber's data calls are made with `MSG_DONTWAIT` (the
    /// descriptor's mode, which other processes may share, is untouched)
    /// and wait on the reactor when they would block.
    Socket,
    /// Pollable but not a socket (a pipe, a terminal, a character device):
    /// its mode is never changed; a fiber waits for readiness on the
    /// reactor, then makes the blocking call.
    Pollable,
    /// A regular file, directory or block device: always "ready"; calls
    /// pass through untouched (use `sylvan::unblock` for disk IO).
    File,
}

/// The state of an open file description (shared by its `dup`s).
#[derive(Debug)]
pub(crate) struct Desc {
    pub(crate) kind: Kind,
    /// A socket this process created or accepted (not inherited): the only
    /// kind the patch may switch to non-blocking mode (a listener, for
    /// `accept`; a socket for the length of its `connect`).
    pub(crate) own: bool,
    /// A byte-stream socket (`SOCK_STREAM`: `MSG_WAITALL` and blocking
    /// writes mean "all").
    pub(crate) stream: bool,
    /// The owner asked for non-blocking mode (`SOCK_NONBLOCK`, `O_NONBLOCK`
    /// or `FIONBIO`): their calls pass through and see `EAGAIN`.
    user_nonblock: AtomicBool,
    /// The patch set `O_NONBLOCK` (the owner did not).
    switched: AtomicBool,
    /// `SO_RCVTIMEO` / `SO_SNDTIMEO` in nanoseconds; 0 is none.
    timeouts: [AtomicU64; 2],
}

impl Desc {
    pub(crate) fn new(kind: Kind, user_nonblock: bool) -> Arc<Desc> {
        Desc::with(kind, false, false, user_nonblock)
    }

    /// A socket this process created or accepted, of type `ty` (`SOCK_*`,
    /// flags allowed).
    pub(crate) fn own_socket(ty: c_int, user_nonblock: bool) -> Arc<Desc> {
        // A byte stream. Not SOCK_SEQPACKET: its records are read one per
        // call whatever MSG_WAITALL says, and sent whole or not at all.
        let stream = ty & 0xf == libc::SOCK_STREAM;
        Desc::with(Kind::Socket, true, stream, user_nonblock)
    }

    fn with(kind: Kind, own: bool, stream: bool, user_nonblock: bool) -> Arc<Desc> {
        Arc::new(Desc {
            kind,
            own,
            stream,
            user_nonblock: AtomicBool::new(user_nonblock),
            switched: AtomicBool::new(false),
            timeouts: [AtomicU64::new(0), AtomicU64::new(0)],
        })
    }

    pub(crate) fn user_nonblock(&self) -> bool {
        self.user_nonblock.load(Ordering::Relaxed)
    }

    fn set_user_nonblock(&self, on: bool) {
        self.user_nonblock.store(on, Ordering::Relaxed);
    }

    /// Whether a fiber's calls go straight to libc.
    fn passes(&self) -> bool {
        self.kind == Kind::File || self.user_nonblock()
    }

    pub(crate) fn switched(&self) -> bool {
        self.switched.load(Ordering::Acquire)
    }

    pub(crate) fn mark_switched(&self) {
        self.switched.store(true, Ordering::Release);
    }

    /// Whether the owner believes the descriptor blocks while the patch
    /// made it non-blocking underneath (so `F_GETFL` must hide the flag, and
    /// a plain thread's `EAGAIN` must be waited out).
    pub(crate) fn hides_nonblock(&self) -> bool {
        self.switched() && !self.user_nonblock()
    }

    pub(crate) fn timeout(&self, dir: Direction) -> Option<Duration> {
        match self.timeouts[dir_index(dir)].load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    pub(crate) fn set_timeout(&self, dir: Direction, t: Option<Duration>) {
        let ns = t.map_or(0, |d| d.as_nanos().clamp(1, u64::MAX as u128) as u64);
        self.timeouts[dir_index(dir)].store(ns, Ordering::Relaxed);
    }
}

/// A socket timeout as the kernel takes it: zero is none.
pub(crate) fn socket_timeout(tv: &libc::timeval) -> Option<Duration> {
    let usec = (tv.tv_usec.clamp(0, 999_999) as u32) * 1000;
    let t = Duration::new(tv.tv_sec.max(0) as u64, usec);
    (!t.is_zero()).then_some(t)
}

fn dir_index(dir: Direction) -> usize {
    match dir {
        Direction::Read => 0,
        Direction::Write => 1,
    }
}

/// One descriptor number's entry.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Registered with a worker's `epoll` set only once a fiber waits on it;
    /// dropped (and so deregistered) before the descriptor closes.
    pub(crate) reg: IoRegistration,
    pub(crate) desc: Arc<Desc>,
}

impl Entry {
    pub(crate) fn fd(&self) -> c_int {
        self.reg.fd()
    }
}

/// How a fiber's call on a descriptor is handled.
pub(crate) enum Mode {
    /// Straight to libc: a file, a descriptor its owner made non-blocking,
    /// or a bad descriptor (libc reports the error).
    Pass,
    /// A socket of this process: switched to non-blocking, waited on.
    Socket(Arc<Entry>),
    /// Waited on for readiness, then called as is.
    Pollable(Arc<Entry>),
}

/// One descriptor number's slot.
struct Slot {
    /// Set while the entry says "pass through" (its owner chose
    /// non-blocking mode, or it is a file): read without the lock on every
    /// call of a fiber, so `sylvan::net`'s and mio's own sockets pay one
    /// load. Kept by this slot's own calls; a `dup` that later changes the
    /// shared mode through another number leaves it stale until the next
    /// `insert`, `forget` or mode change on this number.
    pass: AtomicBool,
    entry: Mutex<Option<Arc<Entry>>>,
    /// Registrations of this number that fibers' `poll`s made for one wait
    /// each ([`Temporary`]): retired when the number is closed.
    temps: Mutex<Vec<Arc<TempState>>>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            pass: AtomicBool::new(false),
            entry: Mutex::new(None),
            temps: Mutex::new(Vec::new()),
        }
    }

    /// Stores `entry` (or nothing), returning what was there.
    fn store(&self, entry: Option<Arc<Entry>>) -> Option<Arc<Entry>> {
        let mut guard = self.entry.lock();
        self.pass.store(
            entry.as_ref().is_some_and(|e| e.desc.passes()),
            Ordering::Relaxed,
        );
        std::mem::replace(&mut *guard, entry)
    }
}

const CHUNK_BITS: u32 = 12;
const CHUNK: usize = 1 << CHUNK_BITS;
const CHUNKS: usize = 256;
/// Descriptors at or above this number are not tracked: their calls pass
/// through unpatched (far above the usual limits).
pub(crate) const MAX_FD: usize = CHUNK * CHUNKS;

static TABLE: [AtomicPtr<Slot>; CHUNKS] = [const { AtomicPtr::new(ptr::null_mut()) }; CHUNKS];

/// The slot of `fd`, allocating its chunk if `create`.
fn slot(fd: c_int, create: bool) -> Option<&'static Slot> {
    let fd = usize::try_from(fd).ok().filter(|&fd| fd < MAX_FD)?;
    let cell = &TABLE[fd >> CHUNK_BITS];
    let mut chunk = cell.load(Ordering::Acquire);
    if chunk.is_null() {
        if !create {
            return None;
        }
        let fresh: Box<[Slot]> = (0..CHUNK).map(|_| Slot::new()).collect();
        let fresh = Box::into_raw(fresh).cast::<Slot>();
        match cell.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => chunk = fresh,
            Err(winner) => {
                // SAFETY: `fresh` came from `Box::into_raw` of a CHUNK-long
                // boxed slice just above and was never published.
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(fresh, CHUNK)) });
                chunk = winner;
            }
        }
    }
    // SAFETY: a published chunk is a leaked CHUNK-long slice that is never
    // freed, and the index is masked below CHUNK.
    Some(unsafe { &*chunk.add(fd & (CHUNK - 1)) })
}

/// The entry of `fd`, if the patch knows it.
pub(crate) fn get(fd: c_int) -> Option<Arc<Entry>> {
    slot(fd, false)?.entry.lock().clone()
}

/// The entry of `fd` if the owner believes it blocks while the patch made it
/// non-blocking underneath (a plain thread's `EAGAIN` must be waited out).
/// Costs one load for descriptors whose owner chose non-blocking mode.
pub(crate) fn hiding_nonblock(fd: c_int) -> Option<Arc<Entry>> {
    let slot = slot(fd, false)?;
    if slot.pass.load(Ordering::Relaxed) {
        return None;
    }
    let entry = slot.entry.lock().clone()?;
    entry.desc.hides_nonblock().then_some(entry)
}

/// The owner of `fd` set (or cleared) non-blocking mode itself. Returns
/// the entry, if the patch knows `fd`.
pub(crate) fn set_user_nonblock(fd: c_int, on: bool) -> Option<Arc<Entry>> {
    let slot = slot(fd, false)?;
    let guard = slot.entry.lock();
    let entry = guard.as_ref()?;
    entry.desc.set_user_nonblock(on);
    slot.pass.store(entry.desc.passes(), Ordering::Relaxed);
    if on {
        // The owner handles the descriptor itself from now on (often by
        // registering it with a worker's `epoll` set, as `sylvan::net`'s
        // `from_std` does, which ours in the same set would make fail with
        // `EEXIST`); fibers still waiting in a blocking call retry.
        entry.reg.release();
    }
    Some(entry.clone())
}

/// Records `fd` as a new descriptor with state `desc`, replacing what the
/// slot held.
pub(crate) fn insert(fd: c_int, desc: Arc<Desc>) {
    if let Some(slot) = slot(fd, true) {
        let entry = Arc::new(Entry {
            reg: IoRegistration::new(fd),
            desc,
        });
        let old = slot.store(Some(entry));
        drop(old);
    }
}

/// Forgets `fd` (about to be closed): its registration leaves every
/// `epoll` set now and is retired, even if a call still in progress holds
/// the entry (that holder must neither add nor, by its later drop, remove
/// whatever file reuses the number).
pub(crate) fn forget(fd: c_int) {
    if let Some(slot) = slot(fd, false) {
        if let Some(old) = slot.store(None) {
            old.reg.retire();
        }
        for temp in std::mem::take(&mut *slot.temps.lock()) {
            temp.reg.retire();
        }
    }
}

/// Forgets every number from `first` to `last` (inclusive) that the table
/// knows, as [`forget`] does one: `close_range(2)` and `closefrom(3)` are
/// about to close them. Walks only the chunks allocated so far.
pub(crate) fn forget_range(first: c_int, last: c_int) {
    let first = first.max(0) as usize;
    let last = (last.max(-1) as usize).min(MAX_FD - 1);
    if first > last {
        return;
    }
    let chunks = first >> CHUNK_BITS..=last >> CHUNK_BITS;
    for (chunk, cell) in TABLE
        .iter()
        .enumerate()
        .take(*chunks.end() + 1)
        .skip(*chunks.start())
    {
        if cell.load(Ordering::Acquire).is_null() {
            continue;
        }
        let lo = (chunk << CHUNK_BITS).max(first);
        let hi = ((chunk << CHUNK_BITS) + CHUNK - 1).min(last);
        for fd in lo..=hi {
            forget(fd as c_int);
        }
    }
}

/// Another registration of `fd` needs the number's place in an `epoll`
/// set that a [`Temporary`] holds: every temporary of `fd` gets a private
/// duplicate of the descriptor to wait on instead, made here, under the
/// slot's lock, while the number surely names the same file (a close's
/// [`forget`] takes the lock first); then it leaves its sets for good and
/// its poll is woken to move over. Returns whether there was any.
pub(crate) fn evict_temporaries(fd: c_int) -> bool {
    let Some(slot) = slot(fd, false) else {
        return false;
    };
    let temps = slot.temps.lock();
    for temp in temps.iter() {
        if !temp.evicted.swap(true, Ordering::SeqCst) {
            temp.dup.store(dup_high(fd).unwrap_or(-1), Ordering::SeqCst);
            temp.reg.evict();
        }
    }
    !temps.is_empty()
}

/// A duplicate of `fd` numbered in the upper half of the descriptor limit
/// (away from the low numbers programs open, and may expect back, in
/// order), close-on-exec and untracked by the table (libc's own `fcntl`).
/// `None` if there is none to be had.
pub(crate) fn dup_high(fd: c_int) -> Option<c_int> {
    let floor = crate::sys::open_files_limit().map_or(0, |n| n / 2);
    // SAFETY: F_DUPFD_CLOEXEC takes an integer argument and touches no
    // memory.
    let dup = unsafe { real::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor as libc::c_ulong) };
    (dup >= 0).then_some(dup)
}

/// What a [`Temporary`] shares with its number's slot.
pub(crate) struct TempState {
    reg: IoRegistration,
    /// It stepped aside for another registration ([`evict_temporaries`]).
    evicted: AtomicBool,
    /// The duplicate made for it then (-1: none, or taken): owned by the
    /// poll that takes it, else closed when the temporary drops.
    dup: AtomicI32,
}

/// A registration of a descriptor for one wait of a fiber's `poll`, made
/// when its owner handles the descriptor itself (so the patch keeps no
/// lasting one). Tracked in the number's slot: a close retires it, so it
/// can neither join an `epoll` set afterwards nor, when dropped, remove an
/// entry of whatever file reuses the number.
pub(crate) struct Temporary {
    fd: c_int,
    state: Arc<TempState>,
}

impl Temporary {
    /// `None` for a number the table does not track.
    pub(crate) fn new(fd: c_int) -> Option<Temporary> {
        let slot = slot(fd, true)?;
        let state = Arc::new(TempState {
            reg: IoRegistration::new(fd),
            evicted: AtomicBool::new(false),
            dup: AtomicI32::new(-1),
        });
        slot.temps.lock().push(state.clone());
        Some(Temporary { fd, state })
    }

    pub(crate) fn reg(&self) -> &IoRegistration {
        &self.state.reg
    }

    /// Whether it stepped aside for another registration of its number.
    pub(crate) fn evicted(&self) -> bool {
        self.state.evicted.load(Ordering::SeqCst)
    }

    /// A duplicate of its descriptor, if the number is still open (not
    /// closed through the hooks since): made under the slot's lock, which a
    /// close's [`forget`] takes first, so it cannot duplicate whatever file
    /// reuses the number.
    pub(crate) fn dup_while_open(&self) -> Option<c_int> {
        let slot = slot(self.fd, false)?;
        let temps = slot.temps.lock();
        if !temps.iter().any(|t| Arc::ptr_eq(t, &self.state)) {
            return None;
        }
        dup_high(self.fd)
    }

    /// The duplicate made when it stepped aside, once (`None`: none).
    pub(crate) fn take_dup(&self) -> Option<c_int> {
        let dup = self.state.dup.swap(-1, Ordering::SeqCst);
        (dup >= 0).then_some(dup)
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        let Some(slot) = slot(self.fd, false) else {
            return;
        };
        // Under the slot's lock, which a close's `forget` takes before the
        // number is closed: the number still names our file while this
        // leaves the `epoll` sets (or a close already retired it, and this
        // does nothing).
        let mut temps = slot.temps.lock();
        temps.retain(|t| !Arc::ptr_eq(t, &self.state));
        self.state.reg.deregister_all();
        if let Some(dup) = self.take_dup() {
            // SAFETY: a duplicate `evict_temporaries` made for this wait and
            // nobody took: ours alone to close.
            unsafe { real::close(dup) };
        }
    }
}

/// `new` is a duplicate of `old`: it shares `old`'s description state.
pub(crate) fn duplicate(old: c_int, new: c_int) {
    match get(old) {
        Some(e) => insert(new, e.desc.clone()),
        None => forget(new),
    }
}

/// How a fiber's data call on `fd` is handled, classifying a descriptor the
/// patch has not seen yet.
pub(crate) fn mode_in_fiber(fd: c_int) -> Mode {
    // stdin, stdout and stderr are left alone: std guards them with locks
    // that are per thread (stdout's is reentrant), so a fiber parked inside
    // one would share it with the other fibers of its worker.
    if (0..=2).contains(&fd) {
        return Mode::Pass;
    }
    let Some(slot) = slot(fd, true) else {
        return Mode::Pass;
    };
    if slot.pass.load(Ordering::Relaxed) {
        return Mode::Pass;
    }
    let Some(entry) = known_or_classified(slot, fd) else {
        return Mode::Pass;
    };
    match entry.desc.kind {
        _ if entry.desc.passes() => Mode::Pass,
        Kind::Socket => Mode::Socket(entry),
        _ => Mode::Pollable(entry),
    }
}

/// The slot's entry, classifying `fd` first if the slot is empty. `None`
/// for a bad descriptor.
fn known_or_classified(slot: &Slot, fd: c_int) -> Option<Arc<Entry>> {
    if let Some(entry) = slot.entry.lock().clone() {
        return Some(entry);
    }
    let desc = classify(fd)?;
    let entry = Arc::new(Entry {
        reg: IoRegistration::new(fd),
        desc,
    });
    let mut guard = slot.entry.lock();
    // Another thread may have filled it meanwhile (a `socket` or `accept`
    // returning this number, or a classification): theirs wins.
    if guard.is_none() {
        slot.pass.store(entry.desc.passes(), Ordering::Relaxed);
        *guard = Some(entry);
    }
    guard.clone()
}

/// What a fiber's `poll` waits on for a descriptor.
pub(crate) enum Wait {
    /// The patch's own registration (the descriptor's fiber calls use it).
    Entry(Arc<Entry>),
    /// A registration for this wait only ([`Temporary`]), dropped after
    /// it: the owner handles the descriptor itself (and may register it
    /// with the same `epoll` set through its own registration, which a
    /// lasting one of ours would make fail with `EEXIST`).
    Temporary,
    /// Nothing to wait for: a file (always ready) or a bad descriptor
    /// (`poll` reports it).
    Skip,
}

/// What a fiber's `poll` waits on for `fd`.
pub(crate) fn for_wait(fd: c_int) -> Wait {
    let Some(slot) = slot(fd, true) else {
        return Wait::Temporary;
    };
    if (0..=2).contains(&fd) || slot.pass.load(Ordering::Relaxed) {
        return match get(fd) {
            Some(e) if e.desc.kind == Kind::File => Wait::Skip,
            _ => Wait::Temporary,
        };
    }
    match known_or_classified(slot, fd) {
        None => Wait::Skip,
        Some(e) if e.desc.kind == Kind::File => Wait::Skip,
        Some(e) if e.desc.passes() => Wait::Temporary,
        Some(e) => Wait::Entry(e),
    }
}

/// Classifies a descriptor the patch did not see created. `None` for a bad
/// descriptor. Preserves `errno`.
fn classify(fd: c_int) -> Option<Arc<Desc>> {
    let saved = super::drive::errno();
    let result = classify_inner(fd);
    super::drive::set_errno(saved);
    result
}

fn classify_inner(fd: c_int) -> Option<Arc<Desc>> {
    // SAFETY: F_GETFL takes no argument; an invalid fd gives -1.
    let flags = unsafe { real::fcntl(fd, libc::F_GETFL, 0) };
    if flags == -1 {
        return None;
    }
    // SAFETY: an all-zero `stat` is a valid value for fstat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, exclusively borrowed stat buffer.
    if unsafe { libc::fstat(fd, &mut st) } == -1 {
        return None;
    }
    let user_nonblock = flags & libc::O_NONBLOCK != 0;
    let desc = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFDIR | libc::S_IFBLK => Desc::new(Kind::File, user_nonblock),
        libc::S_IFSOCK => {
            let mut ty: c_int = 0;
            let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
            // SAFETY: `ty`/`len` are valid out-parameters of the sizes given.
            let r = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_TYPE,
                    (&mut ty as *mut c_int).cast(),
                    &mut len,
                )
            };
            let stream = r == 0 && ty == libc::SOCK_STREAM;
            Desc::with(Kind::Socket, false, stream, user_nonblock)
        }
        _ => Desc::new(Kind::Pollable, user_nonblock),
    };
    if desc.kind == Kind::Socket {
        // An inherited socket: its timeouts were set before the patch saw it.
        for (name, dir) in [
            (libc::SO_RCVTIMEO, Direction::Read),
            (libc::SO_SNDTIMEO, Direction::Write),
        ] {
            // SAFETY: an all-zero timeval is valid for getsockopt to fill.
            let mut tv: libc::timeval = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
            // SAFETY: `tv`/`len` are valid out-parameters of the sizes given.
            let r = unsafe {
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    name,
                    (&mut tv as *mut libc::timeval).cast(),
                    &mut len,
                )
            };
            if r == 0 {
                desc.set_timeout(dir, socket_timeout(&tv));
            }
        }
    }
    Some(desc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, IntoRawFd};

    /// Held by the tests that switch a socket and the one that checks that
    /// nothing was switched, so they do not see each other's work.
    static SWITCHING: Mutex<()> = Mutex::new(());

    fn pipe() -> (c_int, c_int) {
        let mut fds = [0; 2];
        // SAFETY: a valid two-int out array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        (fds[0], fds[1])
    }

    fn close(fd: c_int) {
        // SAFETY: closes a descriptor this test opened (through the hook,
        // which forgets it first).
        unsafe { libc::close(fd) };
    }

    #[test]
    fn sockets_are_recorded_with_their_owners_mode() {
        super::super::link();
        let blocking = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let e = get(blocking.as_raw_fd()).expect("socket() records the socket");
        assert_eq!(e.desc.kind, Kind::Socket);
        assert!(!e.desc.user_nonblock() && !e.desc.switched());
        assert!(matches!(
            mode_in_fiber(blocking.as_raw_fd()),
            Mode::Socket(_)
        ));
        // The owner's own non-blocking choice (std: ioctl FIONBIO) passes.
        blocking.set_nonblocking(true).unwrap();
        assert!(e.desc.user_nonblock());
        assert!(matches!(mode_in_fiber(blocking.as_raw_fd()), Mode::Pass));
        blocking.set_nonblocking(false).unwrap();
        assert!(matches!(
            mode_in_fiber(blocking.as_raw_fd()),
            Mode::Socket(_)
        ));
        let fd = blocking.into_raw_fd();
        close(fd);
        assert!(get(fd).is_none(), "close forgets the descriptor");
    }

    #[test]
    fn forget_range_clears_the_numbers_in_range_across_chunks() {
        // Numbers no test opens (far above the process's own), in chunks
        // 2 and 3, and one each side of the range.
        let first = 3 * CHUNK as c_int - 2;
        let last = 3 * CHUNK as c_int + 1;
        for fd in first - 1..=last + 1 {
            insert(fd, Desc::new(Kind::Pollable, false));
        }
        forget_range(first, last);
        assert!(get(first - 1).is_some() && get(last + 1).is_some());
        assert!((first..=last).all(|fd| get(fd).is_none()));
        // Empty and out-of-table ranges touch nothing.
        forget_range(last + 1, first - 1);
        forget_range(MAX_FD as c_int, c_int::MAX);
        assert!(get(first - 1).is_some() && get(last + 1).is_some());
        forget_range(first - 1, c_int::MAX);
        assert!(get(first - 1).is_none() && get(last + 1).is_none());
    }

    #[test]
    fn dups_share_the_description_and_closing_one_keeps_the_other() {
        super::super::link();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let copy = sock.try_clone().unwrap(); // fcntl(F_DUPFD_CLOEXEC)
        let (a, b) = (
            get(sock.as_raw_fd()).unwrap(),
            get(copy.as_raw_fd()).unwrap(),
        );
        assert!(Arc::ptr_eq(&a.desc, &b.desc));
        drop(sock);
        assert!(get(copy.as_raw_fd()).is_some());
        // dup2 onto a tracked number replaces its entry.
        let (r, w) = pipe();
        // SAFETY: both descriptors are open and ours.
        assert_eq!(unsafe { libc::dup2(copy.as_raw_fd(), r) }, r);
        assert!(Arc::ptr_eq(&get(r).unwrap().desc, &b.desc));
        close(r);
        close(w);
    }

    #[test]
    fn other_descriptors_are_classified_on_first_use() {
        super::super::link();
        let (r, w) = pipe();
        assert!(get(r).is_none(), "a pipe is not this process's socket");
        assert!(matches!(mode_in_fiber(r), Mode::Pollable(_)));
        assert_eq!(get(r).unwrap().desc.kind, Kind::Pollable);
        let file = std::fs::File::open("Cargo.toml").unwrap();
        assert!(matches!(mode_in_fiber(file.as_raw_fd()), Mode::Pass));
        assert!(
            matches!(for_wait(file.as_raw_fd()), Wait::Skip),
            "files are always ready"
        );
        // A bad descriptor is left to libc (which reports EBADF), unrecorded.
        assert!(matches!(mode_in_fiber(w + 1000), Mode::Pass));
        assert!(get(w + 1000).is_none());
        close(r);
        close(w);
        assert!(get(r).is_none());
    }

    #[test]
    fn switched_sockets_hide_their_nonblocking_flag() {
        super::super::link();
        let _alone = SWITCHING.lock();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = sock.as_raw_fd();
        let Mode::Socket(e) = mode_in_fiber(fd) else {
            panic!("a blocking socket of ours")
        };
        assert!(super::super::drive::switch(&e));
        // SAFETY: F_GETFL on an open descriptor (through the hook).
        let seen = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        // SAFETY: the same, straight to libc.
        let under = unsafe { real::fcntl(fd, libc::F_GETFL, 0) };
        assert_eq!(seen & libc::O_NONBLOCK, 0, "the owner sees blocking mode");
        assert_ne!(under & libc::O_NONBLOCK, 0, "non-blocking underneath");
        assert!(hiding_nonblock(fd).is_some());
        // The owner turning it off keeps it on underneath.
        sock.set_nonblocking(false).unwrap();
        // SAFETY: as above.
        let under = unsafe { real::fcntl(fd, libc::F_GETFL, 0) };
        assert_ne!(under & libc::O_NONBLOCK, 0);
        // The owner turning it on makes its calls pass through.
        sock.set_nonblocking(true).unwrap();
        assert!(hiding_nonblock(fd).is_none());
        assert!(matches!(mode_in_fiber(fd), Mode::Pass));
    }

    /// sylvan's own descriptors (the hubs' epoll and waker, sockets whose
    /// owner made them non-blocking, as `sylvan::net`'s) pass through the
    /// hooks: after fibers waited on such a socket and woke each other
    /// across the hub, nothing in the process was switched by the patch.
    #[test]
    fn sylvans_own_descriptors_pass_through() {
        let _alone = SWITCHING.lock();
        use std::io::{Read, Write};
        use std::os::unix::net::UnixStream;
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            let (a, mut b) = UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            assert!(matches!(mode_in_fiber(a.as_raw_fd()), Mode::Pass));
            let reg = crate::io::IoRegistration::new(a.as_raw_fd());
            let writer = crate::spawn(move || {
                crate::sleep(std::time::Duration::from_millis(5));
                b.write_all(b"ok").unwrap();
            });
            let mut buf = [0u8; 2];
            let n = reg
                .io(crate::io::Direction::Read, None, || (&a).read(&mut buf))
                .unwrap();
            assert_eq!(&buf[..n], b"ok");
            writer.join().unwrap();
            drop(reg);
        });
        drop(rt);
        for dirent in std::fs::read_dir("/proc/self/fd").unwrap() {
            let name = dirent.unwrap().file_name();
            let Ok(fd) = name.to_string_lossy().parse::<c_int>() else {
                continue;
            };
            if let Some(e) = get(fd) {
                assert!(!e.desc.switched(), "fd {fd} was switched: {e:?}");
            }
        }
    }
}
