//! A fiber's record — its [`Header`] and a body that knows how to run it —
//! and an unstarted fiber ([`Task`]), which is what moves between workers.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{CancelUnwind, Header};
use crate::stack::FiberStack;

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
    /// The result slot (a `JoinCell<T>`), for [`JoinHandle<T>`](crate::JoinHandle) to downcast;
    /// `&()` when the slot lives elsewhere.
    fn join_cell(&self) -> &dyn Any {
        &()
    }
    /// Whether the result slot holds an outcome (`false` when it lives
    /// elsewhere).
    fn is_done(&self) -> bool {
        false
    }
    /// The handle was dropped unjoined: see [`JoinCell::detach`](crate::join::JoinCell::detach).
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
    #[track_caller]
    pub(crate) fn bare(name: Option<String>, stack_size: usize) -> TaskRef {
        Arc::new(TaskCell {
            header: Header::new(name, stack_size, std::panic::Location::caller()),
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

/// An unstarted fiber: its record (whose body runs it) and the stack it will
/// run on — `None` for the runtime's default size, taken from the pool of
/// the hub that starts it (so a queued fiber holds no stack, and a burst of
/// short fibers cycles through a few hot stacks).
///
/// Dropping a task that was never started discards its body: the closure is
/// dropped and the fiber's handle reports it cancelled.
pub(crate) struct Task {
    /// `None` once started.
    pub(crate) record: Option<TaskRef>,
    /// Boxed: few fibers bring a stack of their own, and every queued task
    /// (a burst of spawns queues many) is 24 bytes smaller for it.
    stack: Option<Box<FiberStack>>,
}

impl Task {
    pub(crate) fn new(record: TaskRef, stack: Option<FiberStack>) -> Task {
        Task {
            record: Some(record),
            stack: stack.map(Box::new),
        }
    }

    /// The stack the fiber brought (spawned with a size of its own), if any.
    pub(crate) fn take_stack(&mut self) -> Option<FiberStack> {
        self.stack.take().map(|s| *s)
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            contain(&record, "the destructor of its unstarted closure", || {
                record.body.discard()
            });
        }
        if let Some(stack) = self.take_stack() {
            crate::stack::recycle(stack);
        }
    }
}

/// Runs user code that executes outside any fiber's closure — dropping a
/// closure that never ran, on a hub or wherever a task is dropped — so that
/// a panic in it is reported and goes no further: it must never unwind into
/// a hub, whose fiber table and queues it would leave half-dropped.
pub(crate) fn contain(fiber: &Header, what: &str, f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        report_escaped(fiber, what, &*payload);
    }
}

/// Reports a panic that escaped user code the runtime runs for a fiber
/// (cancellations are not reported: they are how a fiber is stopped).
pub(crate) fn report_escaped(fiber: &Header, what: &str, payload: &(dyn std::any::Any + Send)) {
    if payload.is::<CancelUnwind>() {
        return;
    }
    let msg = panic_message(payload).unwrap_or("a non-string payload");
    crate::sys::report(format_args!(
        "sylvan: fiber {}: {what} panicked ({msg}); the panic was contained",
        fiber.describe()
    ));
}

/// The text of a panic payload, when it is a string.
pub(crate) fn panic_message(p: &(dyn Any + Send)) -> Option<&str> {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
}
