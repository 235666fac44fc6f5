//! Async interop: run a `Future` from blocking-looking code, and await
//! fibers from async code.
//!
//! * [`block_on`] drives a future to completion. In a fiber it **parks the
//!   fiber** between polls (the future's waker unparks it through the
//!   [parking protocol](crate::park): no busy polling, no extra thread), so
//!   the worker runs other fibers meanwhile; on a plain thread it blocks the
//!   thread. It is a park point: [`JoinHandle::cancel`](crate::JoinHandle::cancel)
//!   and [`timeout`](crate::timeout) interrupt it, and the future is
//!   dropped as the fiber unwinds.
//! * [`JoinHandle`](crate::JoinHandle) implements `Future` (output
//!   `Result<T, JoinError>`), so async code under any executor can await a
//!   fiber.
//! * To run a future *as* a fiber: `sylvan::spawn(|| sylvan::future::block_on(fut))`.
//! * Sockets: with the cargo feature `futures-io`, `sylvan::net::TcpStream`
//!   and `UnixStream` implement `futures_io::AsyncRead`/`AsyncWrite`, driven
//!   by the worker's event loop, so protocol crates built on `futures-io`
//!   run over them inside a fiber, under [`block_on`]. Not under another
//!   executor's blocking `block_on` (`futures::executor::block_on`) called
//!   in a fiber: that parks the worker's thread, so its event loop stops
//!   and the socket's readiness never comes (the monitor reports the held
//!   worker). Like the blocking calls, they yield to the worker's other
//!   fibers after many operations in a row that did not wait.
//!
//! Runtime-agnostic async crates (`async-channel`, `event-listener`,
//! `futures`' combinators and channels) work as they are. Crates tied to
//! tokio need a tokio runtime: start one beside sylvan and `block_on` the
//! `JoinHandle` that its `spawn` returns (tests/future_interop.rs shows the
//! recipe).
//!
//! ```
//! # extern crate sylvan_runtime as sylvan;
//! use std::future::Future;
//! use std::pin::Pin;
//! use std::task::{Context, Poll};
//!
//! // A future that is ready on its second poll, after waking itself.
//! struct Twice(bool);
//! impl Future for Twice {
//!     type Output = &'static str;
//!     fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
//!         if self.0 {
//!             return Poll::Ready("done");
//!         }
//!         self.0 = true;
//!         cx.waker().wake_by_ref();
//!         Poll::Pending
//!     }
//! }
//!
//! let out = sylvan::spawn(|| sylvan::future::block_on(Twice(false))).join().unwrap();
//! assert_eq!(out, "done");
//! // And a fiber awaited by async code (here driven by block_on as well).
//! let fiber = sylvan::spawn(|| 6 * 7);
//! assert_eq!(sylvan::future::block_on(fiber).unwrap(), 42);
//! ```

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake};

use crate::park::{self, WaitLabel};

/// What `sylvan::dump` shows a fiber in [`block_on`] waiting on.
static BLOCK_ON: WaitLabel = WaitLabel("future::block_on");

/// The waker [`block_on`] gives the future: it marks the future as worth
/// polling again and unparks the fiber (or thread) that waits for it.
struct Unpark {
    woken: AtomicBool,
    waiter: park::Waker,
}

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Set before the wake: the parked side re-checks it after every
        // return from park (register → re-check → park).
        if !self.woken.swap(true, Ordering::AcqRel) {
            self.waiter.wake();
        }
    }
}

/// Runs `fut` to completion and returns its output: in a fiber, parking
/// the fiber until the future's waker is woken; on a plain thread,
/// blocking the thread.
///
/// A park point: a cancellation or an expired [`timeout`](crate::timeout)
/// unwinds from here and drops the future.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::time::Duration;
/// // A future never woken: the timeout drops it.
/// let r = sylvan::spawn(|| {
///     sylvan::timeout(Duration::from_millis(10), || {
///         sylvan::future::block_on(std::future::pending::<()>())
///     })
/// })
/// .join()
/// .unwrap();
/// assert!(r.is_err());
/// ```
pub fn block_on<F: Future>(fut: F) -> F::Output {
    // A future is a state machine holding everything it keeps across
    // awaits; a big one goes to the heap rather than onto a fiber's small
    // stack.
    if std::mem::size_of::<F>() > INLINE_FUTURE {
        return block_on_pinned(Box::pin(fut).as_mut());
    }
    block_on_pinned(pin!(fut))
}

/// Futures up to this size are polled on the caller's stack.
const INLINE_FUTURE: usize = 2048;

fn block_on_pinned<T>(mut fut: Pin<&mut dyn Future<Output = T>>) -> T {
    let unpark = Arc::new(Unpark {
        woken: AtomicBool::new(false),
        waiter: park::current_waker(),
    });
    let waker = std::task::Waker::from(unpark.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        if unpark.woken.swap(false, Ordering::AcqRel) {
            // Woken during the poll (a cooperative yield, or an IO budget
            // spent): poll again after the worker's other fibers had a turn,
            // at a park point where a cancellation or timeout lands.
            crate::yield_now();
            continue;
        }
        // Wait until the waker is woken.
        while !unpark.woken.swap(false, Ordering::AcqRel) {
            park::park_for(&BLOCK_ON);
        }
    }
}
