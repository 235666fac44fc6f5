//! `std::thread`, for fibers: the same names and signatures, so code written
//! for OS threads ports by changing `use std::thread;` to
//! `use sylvan::thread;`.
//!
//! | std | here |
//! |---|---|
//! | [`spawn`], [`Builder`] (`name(String)`, `stack_size`, `spawn -> io::Result`, `spawn_scoped`) | a fiber instead of an OS thread |
//! | [`JoinHandle::join`] `-> std::thread::Result<T>` | the panic payload as std gives it (`downcast_ref::<&str>()` works) |
//! | [`scope`], [`Scope::spawn`], [`ScopedJoinHandle`] | scoped fibers (see [`crate::scope`](fn@crate::scope)) |
//! | [`sleep`], [`sleep_until`], [`yield_now`] | park the fiber, not the worker |
//! | [`current`], [`Thread`] (`name`, `id`, `unpark`), [`park`], [`park_timeout`] | the running fiber; on a plain thread, that thread |
//! | [`available_parallelism`], [`panicking`] | std's |
//!
//! What differs, and why:
//!
//! * A fiber that is **cancelled** ([`JoinHandle::cancel`](crate::JoinHandle::cancel),
//!   reachable through [`JoinHandle::into_inner`]) has no panic payload;
//!   `join` then returns `Err` holding the [`JoinError`] that says so.
//! * [`ThreadId`] is this module's own type (std's cannot be made): a
//!   fiber's id, or a plain thread's std id.
//! * [`park`] can unwind: a park is where cancellation and an expired
//!   [`timeout`](crate::timeout) are delivered, as for every sylvan wait.
//! * `thread_local!` is **per worker thread**, not per fiber: fibers on one
//!   worker share it. Use [`fiber_local!`](crate::fiber_local) for state that
//!   belongs to one fiber.
//!
//! ```
//! # extern crate sylvan_runtime as sylvan;
//! use std::time::Duration;
//! use sylvan::thread; // was: use std::thread;
//!
//! let handles: Vec<_> = (0..4)
//!     .map(|i| {
//!         thread::Builder::new()
//!             .name(format!("worker-{i}"))
//!             .spawn(move || {
//!                 thread::sleep(Duration::from_millis(5));
//!                 format!("{} done", thread::current().name().unwrap())
//!             })
//!             .unwrap()
//!     })
//!     .collect();
//! let done: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
//! assert_eq!(done[2], "worker-2 done");
//!
//! let err = thread::spawn(|| panic!("boom")).join().unwrap_err();
//! assert_eq!(err.downcast_ref::<&str>(), Some(&"boom"));
//! ```

use std::fmt;
use std::io;
use std::num::NonZeroUsize;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::time::{Duration, Instant};

use crate::fiber::Fiber;
use crate::join::JoinError;
use crate::park::Waker;
use crate::record::FiberId;

/// Spawns a fiber running `f` and returns a handle to join it, like
/// [`std::thread::spawn`].
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let h = sylvan::thread::spawn(|| 6 * 7);
/// assert_eq!(h.join().unwrap(), 42);
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    JoinHandle::new(crate::spawn(f))
}

/// Configures a fiber before spawning it, like [`std::thread::Builder`].
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use sylvan::thread;
///
/// let h = thread::Builder::new()
///     .name("parser".into())
///     .stack_size(1 << 20)
///     .spawn(|| thread::current().name().map(String::from))
///     .unwrap();
/// assert_eq!(h.join().unwrap().as_deref(), Some("parser"));
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    /// sylvan's builder; this one only gives it std's signatures.
    inner: crate::Builder,
}

impl Builder {
    /// A builder with the runtime's defaults.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let h = sylvan::thread::Builder::new().spawn(|| 1 + 1).unwrap();
    /// assert_eq!(h.join().unwrap(), 2);
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the fiber (std's signature: a `String`).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use sylvan::thread;
    /// let h = thread::Builder::new().name("loader".to_string()).spawn(|| ()).unwrap();
    /// assert_eq!(h.thread().name(), Some("loader"));
    /// h.join().unwrap();
    /// ```
    pub fn name(self, name: String) -> Builder {
        Builder {
            inner: self.inner.name(name),
        }
    }

    /// Usable stack size in bytes (see [`crate::Builder::stack_size`]).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use sylvan::thread;
    /// // 256 KiB on the stack: more than the runtime's default stack holds.
    /// let big = || { let buf = [1u8; 256 * 1024]; buf.iter().map(|&b| b as usize).sum::<usize>() };
    /// let h = thread::Builder::new().stack_size(1 << 20).spawn(big).unwrap();
    /// assert_eq!(h.join().unwrap(), 256 * 1024);
    /// assert!(thread::Builder::new().stack_size(usize::MAX).spawn(|| ()).is_err());
    /// ```
    pub fn stack_size(self, size: usize) -> Builder {
        Builder {
            inner: self.inner.stack_size(size),
        }
    }

    /// Spawns the fiber; an error when the stack size is out of range or
    /// the system refuses a stack.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use sylvan::thread;
    /// let h = thread::Builder::new().name("io".into()).spawn(|| thread::current().name().map(String::from))?;
    /// assert_eq!(h.join().unwrap().as_deref(), Some("io"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.inner.spawn(f).map(JoinHandle::new)
    }

    /// Spawns a scoped fiber (see [`scope`]).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use sylvan::thread;
    ///
    /// let greeting = String::from("hello");
    /// thread::scope(|s| {
    ///     let h = thread::Builder::new()
    ///         .name("borrower".into())
    ///         .spawn_scoped(s, || format!("{greeting} from {}", thread::current().name().unwrap()))
    ///         .unwrap();
    ///     assert_eq!(h.join().unwrap(), "hello from borrower");
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_scoped<'scope, 'env, F, T>(
        self,
        scope: &'scope Scope<'scope, 'env>,
        f: F,
    ) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let site = Location::caller();
        let (name, stack_size) = self.inner.into_parts();
        let inner = scope.inner.spawn_with(name, stack_size, site, f)?;
        Ok(ScopedJoinHandle::new(inner))
    }
}

/// Why [`JoinHandle::join`] has no value: the panic payload, or for a
/// cancelled fiber the [`JoinError`] (boxed) that says so.
fn payload(e: JoinError) -> Box<dyn std::any::Any + Send + 'static> {
    match e.try_into_panic() {
        Ok(payload) => payload,
        Err(cancelled) => Box::new(cancelled),
    }
}

/// An owned permission to join a fiber, like [`std::thread::JoinHandle`].
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let h: sylvan::thread::JoinHandle<u32> = sylvan::thread::spawn(|| 7);
/// assert_eq!(h.join().unwrap(), 7);
/// ```
pub struct JoinHandle<T> {
    inner: crate::JoinHandle<T>,
    thread: Thread,
}

impl<T> JoinHandle<T> {
    fn new(inner: crate::JoinHandle<T>) -> JoinHandle<T> {
        let thread = Thread::of_fiber(inner.fiber());
        JoinHandle { inner, thread }
    }

    /// The fiber's [`Thread`].
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use sylvan::thread;
    /// let h = thread::spawn(|| thread::current().id());
    /// let id = h.thread().id();
    /// assert_eq!(h.join().unwrap(), id); // the same fiber, seen from both sides
    /// ```
    pub fn thread(&self) -> &Thread {
        &self.thread
    }

    /// Whether the fiber has finished.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use sylvan::thread;
    /// let h = thread::spawn(|| ());
    /// while !h.is_finished() {
    ///     thread::yield_now(); // bounded: the fiber has nothing to wait for
    /// }
    /// h.join().unwrap(); // returns at once now
    /// ```
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// sylvan's own handle (for [`cancel`](crate::JoinHandle::cancel) and
    /// [`JoinError`]s).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let h = sylvan::thread::spawn(|| sylvan::sleep(std::time::Duration::from_secs(60)));
    /// let inner: sylvan::JoinHandle<()> = h.into_inner();
    /// inner.cancel(); // std's handle cannot do this
    /// assert!(inner.join().unwrap_err().is_cancelled());
    /// ```
    pub fn into_inner(self) -> crate::JoinHandle<T> {
        self.inner
    }
}

impl<T: 'static> JoinHandle<T> {
    /// Waits for the fiber: its value, or the payload it panicked with
    /// (as std; a cancelled fiber gives its [`JoinError`] as the payload).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let h = sylvan::thread::spawn(|| -> u32 { panic!("no value") });
    /// let payload = h.join().unwrap_err();
    /// assert_eq!(payload.downcast_ref::<&str>(), Some(&"no value"));
    /// ```
    pub fn join(self) -> std::thread::Result<T> {
        self.inner.join().map_err(payload)
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("thread", &self.thread)
            .finish_non_exhaustive()
    }
}

/// Runs `f` with a [`Scope`] whose fibers may borrow from the caller,
/// like [`std::thread::scope`]: returns after every fiber spawned in it
/// finished, and panics if one of them panicked and was not joined.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use sylvan::thread;
///
/// let mut numbers = vec![1, 2, 3];
/// let mut x = 0;
/// thread::scope(|s| {
///     s.spawn(|| assert_eq!(numbers.len(), 3));
///     s.spawn(|| x += numbers.iter().sum::<i32>());
/// });
/// numbers.push(4);
/// assert_eq!(x, 6);
/// ```
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        inner: crate::Scope::new(),
    };
    let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    scope.inner.finish(result)
}

/// A scope to spawn borrowing fibers in; see [`scope`].
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let mut counts = [0; 2];
/// sylvan::thread::scope(|s: &sylvan::thread::Scope<'_, '_>| {
///     let (a, b) = counts.split_at_mut(1);
///     s.spawn(|| a[0] += 1);
///     s.spawn(|| b[0] += 2);
/// });
/// assert_eq!(counts, [1, 2]);
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    inner: crate::Scope<'scope, 'env>,
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a fiber that may borrow from outside the scope, like
    /// [`std::thread::Scope::spawn`].
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let data = vec![1, 2, 3];
    /// let sum = sylvan::thread::scope(|s| s.spawn(|| data.iter().sum::<i32>()).join().unwrap());
    /// assert_eq!(sum, 6);
    /// assert_eq!(data.len(), 3); // only borrowed
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        ScopedJoinHandle::new(self.inner.spawn(f))
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope").finish_non_exhaustive()
    }
}

/// A handle to join a scoped fiber, like [`std::thread::ScopedJoinHandle`].
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let text = String::from("borrowed");
/// sylvan::thread::scope(|s| {
///     let h: sylvan::thread::ScopedJoinHandle<'_, usize> = s.spawn(|| text.len());
///     assert_eq!(h.join().unwrap(), 8);
/// });
/// ```
pub struct ScopedJoinHandle<'scope, T> {
    inner: crate::ScopedJoinHandle<'scope, T>,
    thread: Thread,
}

impl<'scope, T> ScopedJoinHandle<'scope, T> {
    fn new(inner: crate::ScopedJoinHandle<'scope, T>) -> Self {
        let thread = Thread::of_fiber(inner.fiber());
        ScopedJoinHandle { inner, thread }
    }

    /// Waits for the fiber: its value or its panic payload.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// sylvan::thread::scope(|s| {
    ///     let err = s.spawn(|| panic!("bad input")).join().unwrap_err();
    ///     assert_eq!(err.downcast_ref::<&str>(), Some(&"bad input"));
    /// });
    /// ```
    pub fn join(self) -> std::thread::Result<T> {
        self.inner.join().map_err(payload)
    }

    /// The fiber's [`Thread`].
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// sylvan::thread::scope(|s| {
    ///     let h = sylvan::thread::Builder::new()
    ///         .name("scoped".into())
    ///         .spawn_scoped(s, || ())
    ///         .unwrap();
    ///     assert_eq!(h.thread().name(), Some("scoped"));
    /// });
    /// ```
    pub fn thread(&self) -> &Thread {
        &self.thread
    }

    /// Whether the fiber has finished.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// sylvan::thread::scope(|s| {
    ///     let h = s.spawn(|| ());
    ///     while !h.is_finished() {
    ///         sylvan::thread::yield_now();
    ///     }
    ///     assert!(h.join().is_ok());
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("thread", &self.thread)
            .finish_non_exhaustive()
    }
}

/// A fiber's (or a plain thread's) identity, like [`std::thread::Thread`]:
/// its name, its id, and [`unpark`](Thread::unpark).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use sylvan::thread::{self, Thread};
/// let me: Thread = thread::current(); // this plain thread
/// let fiber: Thread = thread::spawn(thread::current).join().unwrap();
/// assert_ne!(me.id(), fiber.id());
/// ```
#[derive(Clone)]
pub struct Thread {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Fiber(Fiber, Waker),
    Os(std::thread::Thread),
}

impl Thread {
    fn of_fiber(fiber: Fiber) -> Thread {
        let waker = Waker::of(fiber.record.clone());
        Thread {
            kind: Kind::Fiber(fiber, waker),
        }
    }

    /// The name given with [`Builder::name`], if any (for a plain thread,
    /// std's name).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use sylvan::thread;
    /// assert_eq!(thread::spawn(|| ()).thread().name(), None); // unnamed
    /// let h = thread::Builder::new().name("named".into()).spawn(|| ()).unwrap();
    /// assert_eq!(h.thread().name(), Some("named"));
    /// ```
    pub fn name(&self) -> Option<&str> {
        match &self.kind {
            Kind::Fiber(f, _) => f.name(),
            Kind::Os(t) => t.name(),
        }
    }

    /// A unique id.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use sylvan::thread;
    /// let (a, b) = (thread::spawn(|| ()), thread::spawn(|| ()));
    /// assert_ne!(a.thread().id(), b.thread().id());
    /// assert_eq!(a.thread().id(), a.thread().clone().id());
    /// ```
    pub fn id(&self) -> ThreadId {
        match &self.kind {
            Kind::Fiber(f, _) => ThreadId(IdKind::Fiber(f.id())),
            Kind::Os(t) => ThreadId(IdKind::Os(t.id())),
        }
    }

    /// Makes the fiber's (or thread's) next [`park`] return, or the current
    /// one if it is parked (a token, as std's).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use sylvan::thread;
    ///
    /// let flag = Arc::new(AtomicBool::new(false));
    /// let f = flag.clone();
    /// let parked = thread::spawn(move || {
    ///     while !f.load(Ordering::Acquire) {
    ///         thread::park();
    ///     }
    /// });
    /// flag.store(true, Ordering::Release);
    /// parked.thread().unpark();
    /// parked.join().unwrap();
    /// ```
    pub fn unpark(&self) {
        match &self.kind {
            Kind::Fiber(_, w) => w.wake(),
            Kind::Os(t) => t.unpark(),
        }
    }
}

impl fmt::Debug for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thread")
            .field("id", &self.id())
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

/// A [`Thread`]'s unique id: a fiber's [`FiberId`], or a plain thread's
/// [`std::thread::ThreadId`].
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::collections::HashSet;
/// use sylvan::thread::{self, ThreadId};
/// let ids: HashSet<ThreadId> = (0..3).map(|_| thread::spawn(|| thread::current().id()).join().unwrap()).collect();
/// assert_eq!(ids.len(), 3); // one per fiber
/// assert!(!ids.contains(&thread::current().id())); // and not this thread's
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ThreadId(IdKind);

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum IdKind {
    Fiber(FiberId),
    Os(std::thread::ThreadId),
}

/// The running fiber as a [`Thread`]; on a plain thread, that thread.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let name = sylvan::thread::Builder::new()
///     .name("me".into())
///     .spawn(|| sylvan::thread::current().name().map(String::from))
///     .unwrap()
///     .join()
///     .unwrap();
/// assert_eq!(name.as_deref(), Some("me"));
/// // On a plain thread: std's identity.
/// assert_eq!(sylvan::thread::current().id(), sylvan::thread::current().id());
/// ```
pub fn current() -> Thread {
    match crate::try_current() {
        Some(fiber) => Thread::of_fiber(fiber),
        None => Thread {
            kind: Kind::Os(std::thread::current()),
        },
    }
}

/// Parks the running fiber (or plain thread) until its [`Thread::unpark`]
/// is called; may return spuriously, as std's. A park point: cancellation
/// and an expired [`timeout`](crate::timeout) unwind from it.
///
/// See also [`Thread::unpark`].
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use sylvan::thread;
/// let done = Arc::new(AtomicBool::new(false));
/// let (d, main) = (done.clone(), thread::current()); // this plain thread
/// thread::spawn(move || {
///     d.store(true, Ordering::Release);
///     main.unpark();
/// });
/// while !done.load(Ordering::Acquire) {
///     thread::park(); // spurious returns are fine: the loop re-checks
/// }
/// ```
pub fn park() {
    crate::park::park();
}

/// [`park`] for at most `dur`.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::{Duration, Instant};
/// let t = Instant::now();
/// sylvan::spawn(|| sylvan::thread::park_timeout(Duration::from_millis(10)))
///     .join()
///     .unwrap();
/// assert!(t.elapsed() >= Duration::from_millis(10));
/// ```
pub fn park_timeout(dur: Duration) {
    crate::park::park_timeout(dur);
}

/// Puts the running fiber to sleep for `dur` (its worker runs others);
/// on a plain thread, sleeps the thread.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::{Duration, Instant};
/// let t = Instant::now();
/// sylvan::thread::sleep(Duration::from_millis(5));
/// assert!(t.elapsed() >= Duration::from_millis(5));
/// ```
pub fn sleep(dur: Duration) {
    crate::sleep(dur);
}

/// Sleeps until `deadline` (see [`sleep`]).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::{Duration, Instant};
/// let deadline = Instant::now() + Duration::from_millis(5);
/// sylvan::thread::sleep_until(deadline);
/// assert!(Instant::now() >= deadline);
/// ```
pub fn sleep_until(deadline: Instant) {
    crate::sleep_until(deadline);
}

/// Lets the worker run other ready fibers first (on a plain thread, std's
/// `yield_now`).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// sylvan::thread::yield_now();
/// ```
pub fn yield_now() {
    crate::yield_now();
}

/// How many threads can run at once on this machine: std's answer, which
/// is also how many workers a default runtime starts.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// assert!(sylvan::thread::available_parallelism().unwrap().get() >= 1);
/// ```
pub fn available_parallelism() -> io::Result<NonZeroUsize> {
    std::thread::available_parallelism()
}

/// Whether the running code is unwinding from a panic (std's, per worker
/// thread: inside a fiber, the fiber's own unwind — except while another
/// fiber of the same worker has been suspended mid-unwind for over 20 ms, a
/// destructor that waits during a panic or a cancellation, which the runtime
/// reports: until that fiber has finished unwinding, this is `true` for
/// every fiber of the worker, as std's mutexes see it too).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// assert!(!sylvan::thread::panicking());
/// ```
pub fn panicking() -> bool {
    std::thread::panicking()
}
