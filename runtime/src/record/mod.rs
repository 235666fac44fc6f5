//! The fiber record: everything sylvan knows about one fiber, below the
//! worker that runs it.
//!
//! * [`Header`] (`header.rs`): id, name, the cancellation flag, the owning
//!   worker and slot, and the [`RunState`] (`run_state.rs`), the one atomic
//!   other threads touch to wake the fiber. Shared by the worker, wakers and
//!   the join handle.
//! * [`TaskCell`] / [`TaskRef`] (`task.rs`): the header followed by a
//!   [`Body`] that runs the fiber's closure and publishes its outcome — one
//!   allocation per spawn — and [`Task`], an unstarted fiber, which is what
//!   workers hand to each other.
//! * [`FiberCtx`] (`ctx.rs`): what only the fiber's own thread touches
//!   (timeout scopes, shielding, fiber-locals, the coroutine's yielder), and
//!   `CURRENT`, the running fiber's context.
//! * [`Waker`] (`waker.rs`): wakes one parked fiber (through its header) or
//!   plain thread; `crate::park` documents the protocol it belongs to.
//!
//! The record schedules a woken fiber through its worker's
//! [`Inbox`](crate::sched::Inbox), never through the hub itself.

mod ctx;
mod header;
mod run_state;
mod task;
mod waker;

pub use ctx::in_fiber;
pub(crate) use ctx::labels as wait_labels;
pub(crate) use ctx::{
    current_ptr, set_current, with_current, CancelUnwind, Deadline, FiberCtx, Suspend,
    TimeoutUnwind, WaitOn,
};
pub use header::FiberId;
pub(crate) use header::Header;
pub(crate) use run_state::RunState;
pub(crate) use task::{
    contain, panic_message, report_escaped, Body, Boxed, Task, TaskCell, TaskRef,
};
pub use waker::{current_waker, Waker};
