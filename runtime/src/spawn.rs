//! Spawning fibers: [`spawn`], [`spawn_local`] and [`Builder`].
//!
//! A spawned fiber's closure runs inside `catch_unwind`: a panic ends that
//! fiber only and comes back to whoever joins it as a
//! [`JoinError`](crate::JoinError) naming the fiber. Cancellation is
//! delivered at the fiber's next park point by unwinding, so its destructors
//! run; a fiber cancelled before it started never runs its closure (the
//! closure is dropped).

use std::any::Any;
use std::io;
use std::panic::Location;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::hub::{self, RuntimeShared, Startable};
use crate::join::{Failure, JoinCell, JoinHandle};
use crate::record::{self, Body, Header, Task, TaskCell, TaskRef};
use crate::runtime::{self, Runtime};

/// Who must hear when a fiber has finished: the scope that waits for it.
pub(crate) trait Parent: Send + Sync {
    /// A child finished (after its closure and result reference were
    /// dropped); `panicked` if its outcome was a panic.
    fn child_done(&self, panicked: bool);
}

/// The body of a scoped or `spawn_local` fiber (whose result slot lives apart
/// from its record): the closure, where its result goes, and its scope.
pub(crate) struct Job<F, T> {
    f: Option<F>,
    cell: Option<Arc<JoinCell<T>>>,
    scope: Option<Arc<dyn Parent>>,
}

impl<F: FnOnce() -> T, T> Job<F, T> {
    pub(crate) fn new(f: F, cell: Arc<JoinCell<T>>, scope: Option<Arc<dyn Parent>>) -> Self {
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
    let cancelled = record::with_current(|c| c.record.is_cancelled()).unwrap_or(false);
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
#[track_caller]
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
#[track_caller]
pub fn spawn_local<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let rt = hub::with_hub(|hub| hub.rt.clone())
        .filter(|_| record::in_fiber())
        .expect(
            "sylvan::spawn_local must be called from inside a fiber (one started by \
             sylvan::run / sylvan::spawn); use sylvan::spawn elsewhere",
        );
    let header = TaskCell::bare(None, rt.stack_size);
    let cell = Arc::new(JoinCell::new());
    let job = Job::new(f, cell.clone(), None);
    let task = Startable {
        task: Task::new(header.clone(), None),
        thread_bound: Some(Box::new(move || job.run())),
    };
    hub::with_hub(|hub| hub.start(task));
    JoinHandle::new(header, Some(cell))
}

/// Spawns onto a specific runtime (used by `Runtime::spawn` and off-worker
/// spawns).
pub(crate) fn spawn_on<F, T>(
    rt: &Arc<RuntimeShared>,
    b: Builder,
    f: F,
    site: &'static Location<'static>,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn_with(
        b,
        f,
        site,
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
    site: &'static Location<'static>,
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
        header: Header::new(b.name, size, site),
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
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let h = sylvan::Builder::new().spawn(|| sylvan::current().name().map(String::from)).unwrap();
    /// assert_eq!(h.join().unwrap(), None); // no name unless given one
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the fiber (shown in panics, join errors and overflow reports).
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let h = sylvan::Builder::new().name("doomed").spawn(|| panic!("boom")).unwrap();
    /// let err = h.join().unwrap_err();
    /// assert!(err.to_string().contains("doomed")); // the error names the fiber
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Stack size in bytes (rounded up to whole pages; at least 16 KiB).
    /// Only touched pages cost memory. The top 192 bytes hold the fiber's
    /// own context (its first page is touched anyway); the rest is the
    /// fiber's.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// // A deep recursion gets a bigger stack than the runtime's default.
    /// fn depth(n: u64) -> u64 { if n == 0 { 0 } else { 1 + depth(n - 1) } }
    /// let h = sylvan::Builder::new().stack_size(8 << 20).spawn(|| depth(10_000)).unwrap();
    /// assert_eq!(h.join().unwrap(), 10_000);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// The name and stack size set (for spawns that are not `spawn`'s,
    /// e.g. `thread::Builder::spawn_scoped`).
    pub(crate) fn into_parts(self) -> (Option<String>, Option<usize>) {
        (self.name, self.stack_size)
    }

    /// Spawns the fiber on the current runtime.
    ///
    /// Errors: `InvalidInput` for an out-of-range stack size; `OutOfMemory`
    /// when the kernel refuses a stack, with a message naming the limit (e.g.
    /// `vm.max_map_count`) and how to raise it.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let h = sylvan::Builder::new().name("adder").spawn(|| 2 + 2).unwrap();
    /// assert_eq!(h.join().unwrap(), 4);
    /// let err = sylvan::Builder::new().stack_size(usize::MAX).spawn(|| ()).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let site = Location::caller();
        // On a worker (the common case), one look-up of its hub serves for
        // the stack pool, the deque and the wake-up.
        let mut args = Some((self, f));
        let on_hub = hub::with_hub(|hub| {
            let (b, f) = args.take().expect("taken once");
            spawn_with(
                b,
                f,
                site,
                hub.rt.stack_size,
                |size| hub.stack(Some(size)),
                |task| {
                    // Waking another hub to help is a hint, worth its fence
                    // for the first queued task and then now and again
                    // while the queue grows: a hub told earlier may be
                    // busy. (This hub runs its own queue anyway, so a
                    // missed hint costs parallelism, never a hang.)
                    let queued = hub.unstarted.len();
                    hub.unstarted.push(task);
                    if queued % NOTIFY_EVERY == 0 {
                        hub.rt.notify_one();
                    }
                },
            )
        });
        match (on_hub, args) {
            (Some(result), _) => result,
            (None, Some((b, f))) => spawn_on(&runtime::current(), b, f, site),
            (None, None) => unreachable!("arguments are used by exactly one path"),
        }
    }
}

/// Spawning onto a specific runtime.
impl Runtime {
    /// Spawns a fiber on this runtime.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// let rt = sylvan::Runtime::builder().workers(1).build().unwrap();
    /// let h = rt.spawn(|| sylvan::in_fiber());
    /// assert!(h.join().unwrap()); // ran on one of `rt`'s workers
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let site = Location::caller();
        spawn_on(&self.shared, Builder::new(), f, site).unwrap_or_else(|e| panic!("{e}"))
    }
}
