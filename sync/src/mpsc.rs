//! `std::sync::mpsc`, for fibers: [`channel()`], [`sync_channel`],
//! [`Sender`], [`SyncSender`] and [`Receiver`] with std's signatures and
//! std's own error types, so code written for threads ports by changing
//! `use std::sync::mpsc;` to `use sylvan::sync::mpsc;`. A blocked `recv` or
//! `send` parks the fiber, not its worker; both ends also work on plain
//! threads, in any mix.
//!
//! Built on [`crate::channel`] (which is multi-consumer and has more); this
//! module only gives it std's shape. One difference: the receive calls are
//! park points, so cancellation and [`timeout`](sylvan_runtime::timeout)
//! interrupt them.
//!
//! ```
//! use std::sync::Arc;
//! use sylvan::sync::{mpsc, Mutex}; // was: use std::sync::{mpsc, Mutex};
//! use sylvan::thread; // was: use std::thread;
//!
//! // Workers fed by a bounded channel, results back over another.
//! let (jobs, rx) = mpsc::sync_channel::<u32>(8);
//! let rx = Arc::new(Mutex::new(rx)); // one Receiver, shared, as with std
//! let (results, done) = mpsc::channel();
//! for _ in 0..4 {
//!     let (rx, results) = (rx.clone(), results.clone());
//!     thread::spawn(move || loop {
//!         let job = rx.lock().recv(); // sylvan's Mutex: no poisoning, no unwrap
//!         match job {
//!             Ok(n) => results.send(n * n).unwrap(),
//!             Err(_) => break, // every job sender is gone
//!         }
//!     });
//! }
//! drop(results);
//! for n in 0..20 {
//!     jobs.send(n).unwrap(); // waits while 8 are queued
//! }
//! drop(jobs);
//! let total: u32 = done.iter().sum();
//! assert_eq!(total, (0..20).map(|n| n * n).sum());
//! ```
//!
//! Disconnection and timeouts behave as std's:
//!
//! ```
//! use std::time::Duration;
//! use sylvan::sync::mpsc;
//!
//! let (tx, rx) = mpsc::channel();
//! for i in 0..3 {
//!     let tx = tx.clone();
//!     sylvan::thread::spawn(move || tx.send(i).unwrap());
//! }
//! drop(tx);
//! let mut got: Vec<i32> = rx.iter().collect(); // ends when every sender is gone
//! got.sort();
//! assert_eq!(got, [0, 1, 2]);
//! assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(mpsc::RecvTimeoutError::Disconnected));
//! ```

use std::fmt;
use std::time::Duration;

use crate::channel;

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

/// A channel without a size limit: sends never wait. Like
/// [`std::sync::mpsc::channel`].
///
/// ```
/// let (tx, rx) = sylvan::sync::mpsc::channel();
/// tx.send("hi").unwrap();
/// assert_eq!(rx.recv(), Ok("hi"));
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = channel::unbounded();
    (Sender { inner: tx }, Receiver { inner: rx })
}

/// A channel holding at most `bound` values; a send waits while it is full,
/// and `sync_channel(0)` is a rendezvous. Like
/// [`std::sync::mpsc::sync_channel`].
///
/// ```
/// use sylvan::sync::mpsc;
///
/// let (tx, rx) = mpsc::sync_channel(1);
/// tx.send(1).unwrap();
/// assert_eq!(tx.try_send(2), Err(mpsc::TrySendError::Full(2)));
/// assert_eq!(rx.recv(), Ok(1));
/// ```
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    let (tx, rx) = channel::bounded(bound);
    (SyncSender { inner: tx }, Receiver { inner: rx })
}

/// The sending half of [`channel()`].
///
/// ```
/// use sylvan::sync::mpsc;
/// let (tx, rx) = mpsc::channel();
/// let tx2 = tx.clone();
/// sylvan::spawn(move || tx2.send(1).unwrap());
/// tx.send(2).unwrap();
/// drop(tx);
/// let mut got: Vec<i32> = rx.iter().collect();
/// got.sort();
/// assert_eq!(got, [1, 2]);
/// ```
pub struct Sender<T> {
    inner: channel::Sender<T>,
}

impl<T> Sender<T> {
    /// Sends `t` (never waits); fails, handing it back, when the receiver is
    /// gone.
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::mpsc::channel();
    /// drop(rx);
    /// assert_eq!(tx.send(5).unwrap_err().0, 5);
    /// ```
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        self.inner.send(t).map_err(|e| SendError(e.into_inner()))
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// The sending half of [`sync_channel`].
///
/// ```
/// use sylvan::sync::mpsc;
/// let (tx, rx) = mpsc::sync_channel(0); // rendezvous
/// let sender = sylvan::spawn(move || tx.send("met").unwrap()); // parks until received
/// assert_eq!(rx.recv(), Ok("met"));
/// sender.join().unwrap();
/// ```
pub struct SyncSender<T> {
    inner: channel::Sender<T>,
}

impl<T> SyncSender<T> {
    /// Sends `t`, waiting while the channel is full; fails, handing it back,
    /// when the receiver is gone. A park point.
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::mpsc::sync_channel(0); // a rendezvous
    /// let h = sylvan::thread::spawn(move || tx.send(7));
    /// assert_eq!(rx.recv(), Ok(7));
    /// h.join().unwrap().unwrap();
    /// ```
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        self.inner.send(t).map_err(|e| SendError(e.into_inner()))
    }

    /// Sends `t` if there is room now.
    ///
    /// ```
    /// use sylvan::sync::mpsc::{sync_channel, TrySendError};
    /// let (tx, rx) = sync_channel(0);
    /// assert_eq!(tx.try_send(1), Err(TrySendError::Full(1))); // nobody receiving
    /// drop(rx);
    /// assert_eq!(tx.try_send(1), Err(TrySendError::Disconnected(1)));
    /// ```
    pub fn try_send(&self, t: T) -> Result<(), TrySendError<T>> {
        self.inner.try_send(t).map_err(|e| match e {
            channel::TrySendError::Full(t) => TrySendError::Full(t),
            channel::TrySendError::Disconnected(t) => TrySendError::Disconnected(t),
        })
    }
}

impl<T> Clone for SyncSender<T> {
    fn clone(&self) -> Self {
        SyncSender {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for SyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSender").finish_non_exhaustive()
    }
}

/// The receiving half of [`channel()`] and [`sync_channel`] (one consumer, as
/// std's: it is not `Clone`).
///
/// ```
/// use sylvan::sync::mpsc;
/// let (tx, rx) = mpsc::channel();
/// tx.send(1).unwrap();
/// drop(tx);
/// assert_eq!(rx.recv(), Ok(1));
/// assert_eq!(rx.recv(), Err(mpsc::RecvError));
/// ```
pub struct Receiver<T> {
    inner: channel::Receiver<T>,
}

impl<T> Receiver<T> {
    /// Receives the oldest value, waiting while there is none; fails once
    /// the channel is empty and every sender is gone. A park point.
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::mpsc::channel::<u8>();
    /// drop(tx);
    /// assert_eq!(rx.recv(), Err(sylvan::sync::mpsc::RecvError));
    /// ```
    pub fn recv(&self) -> Result<T, RecvError> {
        self.inner.recv().map_err(|_| RecvError)
    }

    /// Receives a value if one is there now.
    ///
    /// ```
    /// use sylvan::sync::mpsc::{channel, TryRecvError};
    /// let (tx, rx) = channel();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.inner.try_recv().map_err(|e| match e {
            channel::TryRecvError::Empty => TryRecvError::Empty,
            channel::TryRecvError::Disconnected => TryRecvError::Disconnected,
        })
    }

    /// Receives, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::sync::mpsc::{channel, RecvTimeoutError};
    /// let (tx, rx) = channel::<u8>();
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
    /// drop(tx);
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Disconnected));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.inner.recv_timeout(timeout).map_err(|e| match e {
            channel::RecvTimeoutError::Timeout => RecvTimeoutError::Timeout,
            channel::RecvTimeoutError::Disconnected => RecvTimeoutError::Disconnected,
        })
    }

    /// A blocking iterator over received values; ends when the channel is
    /// empty and every sender is gone.
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::mpsc::channel();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the values there now; never waits.
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::mpsc::channel();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// assert_eq!(rx.try_iter().next(), None); // the sender is still there
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// The iterator of [`Receiver::iter`].
///
/// ```
/// let (tx, rx) = sylvan::sync::mpsc::channel();
/// (0..3).for_each(|i| tx.send(i).unwrap());
/// drop(tx);
/// let it: sylvan::sync::mpsc::Iter<'_, i32> = rx.iter();
/// assert_eq!(it.collect::<Vec<_>>(), [0, 1, 2]);
/// ```
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// The iterator of [`Receiver::try_iter`].
///
/// ```
/// let (tx, rx) = sylvan::sync::mpsc::channel();
/// tx.send(1).unwrap();
/// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1]); // stops when empty, sender still alive
/// ```
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// The iterator of `Receiver`'s `IntoIterator`.
///
/// ```
/// let (tx, rx) = sylvan::sync::mpsc::channel();
/// tx.send('a').unwrap();
/// drop(tx);
/// assert_eq!(rx.into_iter().collect::<String>(), "a");
/// ```
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}
