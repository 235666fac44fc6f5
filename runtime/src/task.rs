//! Spawning fibers and waiting for them: [`spawn`], [`spawn_local`],
//! [`Builder`], [`JoinHandle`] and [`JoinError`].
//!
//! A spawned fiber's closure runs inside `catch_unwind`: a panic ends that
//! fiber only and comes back to whoever joins it as a [`JoinError`] naming the
//! fiber. Cancellation is delivered at the fiber's next park point by
//! unwinding, so its destructors run; a fiber cancelled before it started never
//! runs its closure (the closure is dropped).
//!
//! Ordering promise used by [`scope`](crate::scope): a fiber's closure and its
//! fiber-local values are dropped *before* its result is published to the join
//! handle.

use std::any::Any;
use std::fmt;
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::fiber::{self, FiberId, Header};
use crate::hub::{self, LocalTask, Task};
use crate::park::{self, CancelUnwind, Waker};
use crate::runtime::{self, RuntimeShared};
use crate::scope::ScopeState;

/// Why a fiber did not produce a value.
pub(crate) enum Failure {
    Panic(Box<dyn Any + Send + 'static>),
    Cancelled,
}

impl Failure {
    pub(crate) fn from_payload(p: Box<dyn Any + Send + 'static>) -> Failure {
        if p.is::<CancelUnwind>() {
            Failure::Cancelled
        } else {
            Failure::Panic(p)
        }
    }
}

/// A one-shot slot for a result, with one waiter (a fiber or thread).
pub(crate) struct JoinCell<T> {
    state: Mutex<JoinState<T>>,
    done: AtomicBool,
}

struct JoinState<T> {
    outcome: Option<Result<T, Failure>>,
    waiter: Option<Waker>,
    /// Nobody will ever take the outcome (the handle was dropped unjoined):
    /// it is dropped as soon as it is published.
    detached: bool,
}

impl<T> JoinCell<T> {
    pub(crate) fn new() -> JoinCell<T> {
        JoinCell {
            state: Mutex::new(JoinState {
                outcome: None,
                waiter: None,
                detached: false,
            }),
            done: AtomicBool::new(false),
        }
    }

    /// Publishes the outcome and wakes the waiter. A detached cell drops the
    /// outcome here and now (outside its lock).
    pub(crate) fn complete(&self, outcome: Result<T, Failure>) {
        let (waiter, unwanted) = {
            let mut s = self.state.lock();
            self.done.store(true, Ordering::Release);
            if s.detached {
                (None, Some(outcome))
            } else {
                s.outcome = Some(outcome);
                (s.waiter.take(), None)
            }
        };
        drop(unwanted);
        if let Some(w) = waiter {
            w.wake();
        }
    }

    /// The handle is gone without joining: drop an outcome already there,
    /// and any later one as soon as it comes. (The cell itself may live on
    /// for a while, e.g. in a waker, so waiting for its last reference
    /// would keep a result such as a socket open for no one.)
    pub(crate) fn detach(&self) {
        let unwanted = {
            let mut s = self.state.lock();
            s.detached = true;
            s.outcome.take()
        };
        drop(unwanted);
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Waits for the outcome (register → re-check → park).
    pub(crate) fn wait(&self) -> Result<T, Failure> {
        loop {
            {
                let mut s = self.state.lock();
                if let Some(o) = s.outcome.take() {
                    return o;
                }
                s.waiter = Some(park::current_waker());
            }
            park::park();
        }
    }
}

/// The body of a scoped or `spawn_local` fiber (whose result slot lives apart
/// from its record): the closure, where its result goes, and its scope.
pub(crate) struct Job<F, T> {
    f: Option<F>,
    cell: Option<Arc<JoinCell<T>>>,
    scope: Option<Arc<ScopeState>>,
}

impl<F: FnOnce() -> T, T> Job<F, T> {
    pub(crate) fn new(f: F, cell: Arc<JoinCell<T>>, scope: Option<Arc<ScopeState>>) -> Self {
        Job {
            f: Some(f),
            cell: Some(cell),
            scope,
        }
    }

    /// Runs the closure inside the fiber, then publishes its outcome.
    pub(crate) fn run(mut self) {
        let f = self.f.take().expect("a job runs once");
        let outcome = run_closure(f);
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Result<T, Failure>) {
        let panicked = matches!(outcome, Err(Failure::Panic(_)));
        if let Some(cell) = self.cell.take() {
            cell.complete(outcome);
            // Our reference to the result goes before the scope hears of it.
            drop(cell);
        }
        if let Some(scope) = self.scope.take() {
            scope.child_done(panicked);
        }
    }
}

impl<F, T> Drop for Job<F, T> {
    fn drop(&mut self) {
        // Never ran (dropped unstarted, e.g. at runtime shutdown): the closure
        // goes first, then the handle learns it was cancelled — also when the
        // closure's destructor panics (re-raised once the handle knows).
        if self.cell.is_some() || self.scope.is_some() {
            let f = self.f.take();
            let dropped = catch_unwind(AssertUnwindSafe(move || drop(f)));
            if let Some(cell) = self.cell.take() {
                cell.complete(Err(Failure::Cancelled));
            }
            if let Some(scope) = self.scope.take() {
                scope.child_done(false);
            }
            if let Err(payload) = dropped {
                resume_unwind(payload);
            }
        }
    }
}

/// Runs a fiber's closure (unless the fiber was cancelled before it started),
/// catching a panic, then drops the fiber-local values: both before anyone can
/// see the outcome.
fn run_closure<F: FnOnce() -> T, T>(f: F) -> Result<T, Failure> {
    let cancelled = fiber::with_current(|c| c.header.is_cancelled()).unwrap_or(false);
    // A closure whose destructor panics (when it is dropped unrun) makes the
    // fiber's outcome that panic.
    let outcome = catch_unwind(AssertUnwindSafe(move || {
        if cancelled {
            drop(f);
            Err(Failure::Cancelled)
        } else {
            Ok(f())
        }
    }))
    .unwrap_or_else(|payload| Err(Failure::from_payload(payload)));
    crate::local::drop_fiber_locals();
    outcome
}

/// A fiber's shared record: its [`Header`] followed by a body that knows how
/// to run it. A plain spawn makes exactly one allocation, a
/// `TaskCell<Packet<F, T>>` holding the header, the closure and the result
/// slot; it is shared (as a [`TaskRef`]) by the queued task, the running
/// fiber, wakers and the join handle.
pub(crate) struct TaskCell<B: ?Sized> {
    pub(crate) header: Header,
    pub(crate) body: B,
}

impl<B: ?Sized> std::ops::Deref for TaskCell<B> {
    type Target = Header;

    fn deref(&self) -> &Header {
        &self.header
    }
}

/// The type-erased handle on a fiber's record; derefs to its [`Header`].
pub(crate) type TaskRef = Arc<TaskCell<dyn Body>>;

/// What a [`TaskCell`] carries besides its header.
pub(crate) trait Body: Send + Sync {
    /// Runs the fiber's closure, inside the fiber, and publishes its outcome.
    /// Only the hub that started the fiber calls it, once.
    fn run(&self);
    /// The fiber will never start: drops its closure and reports it
    /// cancelled.
    fn discard(&self);
    /// The result slot (a `JoinCell<T>`), for [`JoinHandle<T>`] to downcast;
    /// `&()` when the slot lives elsewhere.
    fn join_cell(&self) -> &dyn Any {
        &()
    }
    /// Whether the result slot holds an outcome (`false` when it lives
    /// elsewhere).
    fn is_done(&self) -> bool {
        false
    }
    /// The handle was dropped unjoined: see [`JoinCell::detach`].
    fn detach(&self) {}
}

/// A header alone: for fibers whose closure and result slot live elsewhere
/// (`spawn_local`, whose closure need not be `Send`).
pub(crate) struct Bare;

impl Body for Bare {
    fn run(&self) {}
    fn discard(&self) {}
}

impl TaskCell<Bare> {
    /// A record with no body of its own.
    pub(crate) fn bare(name: Option<String>, stack_size: usize) -> TaskRef {
        Arc::new(TaskCell {
            header: Header::new(name, stack_size),
            body: Bare,
        })
    }
}

/// A boxed closure as the body (scoped fibers: their closure's lifetime is
/// erased, and their result slot must not outlive the scope, so it stays in a
/// `JoinCell` of its own that the closure drops before the scope ends).
pub(crate) struct Boxed(Mutex<Option<Box<dyn FnOnce() + Send>>>);

impl Boxed {
    pub(crate) fn new(f: Box<dyn FnOnce() + Send>) -> Boxed {
        Boxed(Mutex::new(Some(f)))
    }
}

impl Body for Boxed {
    fn run(&self) {
        let f = self.0.lock().take();
        if let Some(f) = f {
            f();
        }
    }

    fn discard(&self) {
        // Dropping the unstarted closure reports it cancelled (`Job::drop`).
        let f = self.0.lock().take();
        drop(f);
    }
}

/// The body of a plain spawn: the closure and where its result goes.
struct Packet<F, T> {
    f: Mutex<Option<F>>,
    cell: JoinCell<T>,
}

impl<F, T> Body for Packet<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(&self) {
        let f = self.f.lock().take();
        if let Some(f) = f {
            let outcome = run_closure(f);
            self.cell.complete(outcome);
        }
    }

    fn discard(&self) {
        // The closure goes first, then the handle learns it was cancelled —
        // also when the closure's destructor panics (re-raised once the
        // handle knows).
        let f = self.f.lock().take();
        if let Some(f) = f {
            let dropped = catch_unwind(AssertUnwindSafe(move || drop(f)));
            self.cell.complete(Err(Failure::Cancelled));
            if let Err(payload) = dropped {
                resume_unwind(payload);
            }
        }
    }

    fn join_cell(&self) -> &dyn Any {
        &self.cell
    }

    fn is_done(&self) -> bool {
        self.cell.is_done()
    }

    fn detach(&self) {
        self.cell.detach();
    }
}

/// Spawns a fiber on the current runtime (the worker's own inside a fiber, the
/// lazily started global runtime elsewhere) and returns its handle.
///
/// The fiber may start on any worker; once started it stays there. It gets
/// its stack (from the worker's pool) when it starts, so queued fibers cost
/// no stack memory. If the system refuses a stack then (out of memory, or
/// `vm.max_map_count` reached), the fiber does not run: the runtime prints
/// why, naming the limit and how to raise it, and its handle reports it as
/// cancelled. [`Builder::stack_size`] fibers get their stack at spawn time
/// instead, and [`Builder::spawn`] returns such an error.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// // Straight from a plain `main`: the global runtime starts on first use.
/// let h = sylvan::spawn(|| "hello from a fiber");
/// assert_eq!(h.join().unwrap(), "hello from a fiber");
/// ```
///
/// The closure and its result must be `Send` (the fiber may start on another
/// worker thread):
///
/// ```compile_fail
/// # extern crate sylvan_runtime as sylvan;
/// let rc = std::rc::Rc::new(1);
/// sylvan::spawn(move || *rc + 1);
/// ```
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().spawn(f).unwrap_or_else(|e| panic!("{e}"))
}

/// Spawns a fiber on the current worker, without the `Send` bounds of
/// [`spawn`]: it starts and stays on the calling fiber's worker thread.
///
/// # Panics
/// When called outside a fiber. (A refused stack is handled as for
/// [`spawn`].)
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::rc::Rc;
/// sylvan::run(|| {
///     let shared = Rc::new(5);
///     let s2 = shared.clone();
///     let h = sylvan::spawn_local(move || *s2 * 2);
///     assert_eq!(h.join().unwrap(), 10);
///     assert_eq!(*shared, 5);
/// });
/// ```
pub fn spawn_local<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let rt = hub::with_hub(|hub| hub.rt.clone())
        .filter(|_| fiber::in_fiber())
        .expect(
            "sylvan::spawn_local must be called from inside a fiber (one started by \
             sylvan::run / sylvan::spawn); use sylvan::spawn elsewhere",
        );
    let header = TaskCell::bare(None, rt.stack_size);
    let cell = Arc::new(JoinCell::new());
    let job = Job::new(f, cell.clone(), None);
    let task = LocalTask {
        task: Task::new(header.clone(), None),
        local: Some(Box::new(move || job.run())),
    };
    hub::with_hub(|hub| hub.start(task));
    JoinHandle::new(header, Some(cell))
}

/// Spawns onto a specific runtime (used by `Runtime::spawn` and off-worker
/// spawns).
pub(crate) fn spawn_on<F, T>(rt: &Arc<RuntimeShared>, b: Builder, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn_with(
        b,
        f,
        rt.stack_size,
        |size| rt.stack(Some(size)),
        |task| rt.submit(task),
    )
}

/// The one recipe for a spawn: one allocation for the header, the closure and
/// the result slot, shared by the task handed to `submit` and the handle. A fiber of the default stack size gets its stack when it starts;
/// one with a size of its own gets it now (from `stack`), so a size the
/// system refuses is an error here.
fn spawn_with<F, T>(
    b: Builder,
    f: F,
    default_size: usize,
    stack: impl FnOnce(usize) -> io::Result<crate::stack::FiberStack>,
    submit: impl FnOnce(Task),
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let stack = match b.stack_size {
        Some(size) => Some(stack(size)?),
        None => None,
    };
    let size = stack.as_ref().map_or(default_size, |s| s.usable_size());
    let task: TaskRef = Arc::new(TaskCell {
        header: Header::new(b.name, size),
        body: Packet {
            f: Mutex::new(Some(f)),
            cell: JoinCell::<T>::new(),
        },
    });
    submit(Task::new(task.clone(), stack));
    Ok(JoinHandle::new(task, None))
}

/// While a worker's queue grows, one spawn in this many asks another worker
/// to help (see `Builder::spawn`).
const NOTIFY_EVERY: usize = 16;

/// Configures one fiber before spawning it (name, stack size).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// let h = sylvan::Builder::new()
///     .name("parser")
///     .stack_size(1 << 20)
///     .spawn(|| sylvan::current().name().unwrap().to_owned())
///     .expect("spawn");
/// assert_eq!(h.join().unwrap(), "parser");
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the runtime's defaults.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the fiber (shown in panics, join errors and overflow reports).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Usable stack size in bytes (rounded up to whole pages; at least
    /// 16 KiB). Only touched pages cost memory.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns the fiber on the current runtime.
    ///
    /// Errors: `InvalidInput` for an out-of-range stack size; `OutOfMemory`
    /// when the kernel refuses a stack, with a message naming the limit (e.g.
    /// `vm.max_map_count`) and how to raise it.
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // On a worker (the common case), one look-up of its hub serves for
        // the stack pool, the deque and the wake-up.
        let mut args = Some((self, f));
        let on_hub = hub::with_hub(|hub| {
            let (b, f) = args.take().expect("taken once");
            spawn_with(
                b,
                f,
                hub.rt.stack_size,
                |size| hub.stack(Some(size)),
                |task| {
                    // Waking another hub to help is a hint, worth its fence
                    // for the first queued task and then now and again
                    // while the queue grows: a hub told earlier may be
                    // busy. (This hub runs its own queue anyway, so a
                    // missed hint costs parallelism, never a hang.)
                    let queued = hub.local.len();
                    hub.local.push(task);
                    if queued % NOTIFY_EVERY == 0 {
                        hub.rt.notify_one();
                    }
                },
            )
        });
        match (on_hub, args) {
            (Some(result), _) => result,
            (None, Some((b, f))) => spawn_on(&runtime::current(), b, f),
            (None, None) => unreachable!("arguments are used by exactly one path"),
        }
    }
}

/// An owned permission to join a fiber (and to cancel it).
///
/// Dropping the handle detaches the fiber: it keeps running.
pub struct JoinHandle<T> {
    /// The fiber's record; it holds the result slot, except for
    /// `spawn_local` fibers.
    task: TaskRef,
    /// `spawn_local`'s result slot (its `T` need not be `Send`).
    local: Option<Arc<JoinCell<T>>>,
    /// `join` took the outcome (so dropping the handle need not detach).
    joined: bool,
}

impl<T: 'static> JoinHandle<T> {
    fn new(task: TaskRef, local: Option<Arc<JoinCell<T>>>) -> JoinHandle<T> {
        JoinHandle {
            task,
            local,
            joined: false,
        }
    }

    fn cell(&self) -> &JoinCell<T> {
        match &self.local {
            Some(cell) => cell,
            None => self
                .task
                .body
                .join_cell()
                .downcast_ref()
                .expect("a spawned fiber's record holds a JoinCell of its result type"),
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if self.joined {
            return;
        }
        match &self.local {
            Some(cell) => cell.detach(),
            None => self.task.body.detach(),
        }
    }
}

impl<T: 'static> JoinHandle<T> {
    /// Waits for the fiber to finish and returns its value, or why it has none.
    /// Works from a fiber (which parks) and from a plain thread (which blocks).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let h = sylvan::spawn(|| panic!("boom"));
    /// let err = h.join().unwrap_err();
    /// assert!(err.is_panic());
    /// assert!(err.to_string().contains("boom"));
    /// ```
    ///
    /// # Panics
    /// If a fiber tries to join itself (that could never finish).
    pub fn join(self) -> Result<T, JoinError> {
        let mut this = self;
        if fiber::with_current(|c| c.header.id) == Some(this.task.id) {
            panic!(
                "sylvan: fiber {} tried to join itself, which would wait forever; \
                 join it from another fiber or thread",
                this.task.describe()
            );
        }
        let outcome = this.cell().wait();
        this.joined = true;
        outcome.map_err(|f| JoinError::new(f, &this.task))
    }
}

impl<T> JoinHandle<T> {
    /// Requests cancellation: the fiber unwinds from its current or next park
    /// point (sleep, join, IO, lock, queue...), running its destructors, and
    /// [`join`](Self::join) reports [`JoinError::is_cancelled`]. A fiber that
    /// never parks cannot be cancelled. No-op on a finished fiber.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::time::Duration;
    /// let h = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(3600)));
    /// h.cancel();
    /// assert!(h.join().unwrap_err().is_cancelled());
    /// ```
    pub fn cancel(&self) {
        self.task.cancel();
    }

    /// Whether the fiber has finished (its result is ready).
    pub fn is_finished(&self) -> bool {
        match &self.local {
            Some(cell) => cell.is_done(),
            None => self.task.body.is_done(),
        }
    }

    /// The fiber's id.
    pub fn id(&self) -> FiberId {
        self.task.id
    }

    /// The fiber's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.task.name.as_deref()
    }

    /// A clonable handle to the fiber's identity (id, name, cancellation).
    pub fn fiber(&self) -> crate::Fiber {
        crate::Fiber {
            header: self.task.clone(),
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.task.id)
            .field("name", &self.task.name)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Why joining a fiber gave no value: it panicked or was cancelled.
pub struct JoinError {
    failure: Failure,
    fiber: String,
}

impl JoinError {
    pub(crate) fn new(failure: Failure, header: &Header) -> JoinError {
        JoinError {
            failure,
            fiber: header.describe(),
        }
    }

    /// The fiber panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.failure, Failure::Panic(_))
    }

    /// The fiber was cancelled (by [`JoinHandle::cancel`] or runtime shutdown).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.failure, Failure::Cancelled)
    }

    /// The panic payload, to re-raise with [`std::panic::resume_unwind`].
    ///
    /// # Panics
    /// If the fiber was cancelled rather than panicking; check
    /// [`is_panic`](Self::is_panic) or use [`try_into_panic`](Self::try_into_panic).
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .unwrap_or_else(|e| panic!("JoinError::into_panic on a non-panic error: {e}"))
    }

    /// The panic payload, or the error back if the fiber was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.failure {
            Failure::Panic(p) => Ok(p),
            Failure::Cancelled => Err(self),
        }
    }
}

/// The text of a panic payload, when it is a string.
pub(crate) fn panic_message(p: &(dyn Any + Send)) -> Option<&str> {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            Failure::Cancelled => write!(f, "fiber {} was cancelled", self.fiber),
            Failure::Panic(p) => match panic_message(&**p) {
                Some(msg) => write!(f, "fiber {} panicked: {msg}", self.fiber),
                None => write!(f, "fiber {} panicked", self.fiber),
            },
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinError({self})")
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for io::Error {
    fn from(e: JoinError) -> io::Error {
        io::Error::other(e.to_string())
    }
}
