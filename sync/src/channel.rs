//! Multi-producer, multi-consumer channels that know when the other side is
//! gone: [`bounded`] (capacity 0 is a rendezvous) and [`unbounded`].
//!
//! A channel is a [`Queue`] plus counts of its ends: when the
//! last [`Sender`] drops, receivers drain what is left and then get
//! [`RecvError`]; when the last [`Receiver`] drops, queued items are dropped
//! and sends fail, handing the value back in [`SendError`].
//!
//! ```
//! use sylvan::sync::channel;
//!
//! let (tx, rx) = channel::bounded(4);
//! let producers: Vec<_> = (0..3)
//!     .map(|p| {
//!         let tx = tx.clone();
//!         sylvan::spawn(move || {
//!             for i in 0..10 {
//!                 tx.send(p * 100 + i).unwrap();
//!             }
//!         })
//!     })
//!     .collect();
//! drop(tx); // the producers hold the remaining senders
//! let total: u32 = rx.iter().sum(); // ends when every sender is gone
//! assert_eq!(total, 3 * 45 + 100 * 10 + 200 * 10);
//! for p in producers {
//!     p.join().unwrap();
//! }
//! ```

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::queue::{Queue, TryPutError};
use crate::shim::AtomicUsize;

struct Chan<T> {
    queue: Queue<T>,
    senders: AtomicUsize,
    receivers: AtomicUsize,
}

/// A channel holding at most `capacity` values; `bounded(0)` is a
/// rendezvous (a send waits for a receive).
///
/// ```
/// use sylvan::sync::channel::{self, TrySendError};
///
/// let (tx, rx) = channel::bounded(1);
/// tx.send('a').unwrap();
/// assert_eq!(tx.try_send('b'), Err(TrySendError::Full('b'))); // no room
/// assert_eq!(rx.recv(), Ok('a'));
///
/// // Capacity 0: a send waits for a receiver to take the value.
/// let (tx, rx) = channel::bounded(0);
/// let sender = sylvan::spawn(move || tx.send("handed over"));
/// assert_eq!(rx.recv(), Ok("handed over"));
/// sender.join().unwrap().unwrap();
/// ```
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    new(Queue::bounded(capacity))
}

/// A channel without a size limit (sends never wait).
///
/// ```
/// let (tx, rx) = sylvan::sync::channel::unbounded();
/// for i in 0..1000 {
///     tx.send(i).unwrap(); // never waits
/// }
/// drop(tx);
/// assert_eq!(rx.iter().count(), 1000);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    new(Queue::unbounded())
}

fn new<T>(queue: Queue<T>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        queue,
        senders: AtomicUsize::new(1),
        receivers: AtomicUsize::new(1),
    });
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// The sending end; clone it for more producers.
///
/// ```
/// use sylvan::sync::channel::{self, SendError};
///
/// let (tx, rx) = channel::unbounded();
/// let tx2 = tx.clone(); // multi-producer
/// tx.send(1).unwrap();
/// tx2.send(2).unwrap();
/// assert_eq!((rx.recv(), rx.recv()), (Ok(1), Ok(2)));
/// drop(rx);
/// assert_eq!(tx.send(3), Err(SendError(3))); // no receiver left: the value comes back
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving end; clone it for more consumers.
///
/// ```
/// use sylvan::sync::channel::{self, RecvError};
///
/// let (tx, rx) = channel::unbounded();
/// let rx2 = rx.clone(); // multi-consumer: each value goes to one receiver
/// tx.send("job").unwrap();
/// drop(tx);
/// assert_eq!(rx2.recv(), Ok("job"));
/// assert_eq!(rx.recv(), Err(RecvError)); // empty and every sender gone
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends a value, waiting while the channel is full. Fails, handing the
    /// value back, when every receiver is gone. A cancellation point.
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::channel::bounded(1);
    /// let producer = sylvan::spawn(move || {
    ///     for i in 0..3 {
    ///         tx.send(i).unwrap(); // parks while the channel is full
    ///     }
    /// });
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// producer.join().unwrap();
    /// ```
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.chan.queue.put(value).map_err(SendError)
    }

    /// Sends without waiting.
    ///
    /// ```
    /// use sylvan::sync::channel::{self, TrySendError};
    /// let (tx, rx) = channel::bounded(1);
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Disconnected(3)));
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.queue.try_put(value).map_err(|e| match e {
            TryPutError::Full(v) => TrySendError::Full(v),
            TryPutError::Closed(v) => TrySendError::Disconnected(v),
        })
    }

    /// Sends, waiting at most `timeout` for room.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::sync::channel::{self, SendTimeoutError};
    /// let (tx, _rx) = channel::bounded(0); // nobody receives
    /// let r = tx.send_timeout("late", Duration::from_millis(2));
    /// assert_eq!(r, Err(SendTimeoutError::Timeout("late")));
    /// ```
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.chan
            .queue
            .put_timeout(value, timeout)
            .map_err(|v| match self.chan.queue.is_closed() {
                true => SendTimeoutError::Disconnected(v),
                false => SendTimeoutError::Timeout(v),
            })
    }

    /// Values queued right now.
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::channel::bounded(4);
    /// tx.send('a').unwrap();
    /// tx.send('b').unwrap();
    /// assert_eq!(tx.len(), 2);
    /// rx.recv().unwrap();
    /// assert_eq!(tx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.queue.len()
    }

    /// Whether no value is queued.
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::channel::unbounded();
    /// assert!(tx.is_empty());
    /// tx.send(1).unwrap();
    /// assert!(!tx.is_empty());
    /// # drop(rx);
    /// ```
    pub fn is_empty(&self) -> bool {
        self.chan.queue.is_empty()
    }

    pub(crate) fn queue(&self) -> &Queue<T> {
        &self.chan.queue
    }
}

impl<T> Receiver<T> {
    /// Receives the oldest value, waiting while the channel is empty. Fails
    /// once the channel is empty and every sender is gone. A cancellation
    /// point.
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::channel::unbounded();
    /// sylvan::spawn(move || tx.send(7).unwrap());
    /// assert_eq!(rx.recv(), Ok(7)); // parks until the value arrives
    /// assert!(rx.recv().is_err()); // then the sender is gone
    /// ```
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.queue.get().ok_or(RecvError)
    }

    /// Receives without waiting. On a rendezvous channel (`bounded(0)`)
    /// this finds nothing even while a sender waits: a send hands its value
    /// only to a receive that waits for it (unlike Go's non-blocking
    /// receive).
    ///
    /// ```
    /// use sylvan::sync::channel::{self, TryRecvError};
    /// let (tx, rx) = channel::unbounded();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Ok(1)); // what is queued is still delivered
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        // One look under one lock: "empty" then "closed" in two would call a
        // channel disconnected whose last sender sent and left in between.
        match self.chan.queue.poll_get() {
            Some(Some(v)) => Ok(v),
            Some(None) => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Receives, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::sync::channel::{self, RecvTimeoutError};
    /// let (tx, rx) = channel::unbounded::<()>();
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(2)), Err(RecvTimeoutError::Timeout));
    /// drop(tx);
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(2)), Err(RecvTimeoutError::Disconnected));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        match self.chan.queue.get_timeout(timeout) {
            Some(v) => Ok(v),
            None if self.chan.queue.is_closed() && self.chan.queue.is_empty() => {
                Err(RecvTimeoutError::Disconnected)
            }
            None => Err(RecvTimeoutError::Timeout),
        }
    }

    pub(crate) fn queue(&self) -> &Queue<T> {
        &self.chan.queue
    }

    /// A blocking iterator over received values; ends when the channel is
    /// empty and every sender is gone.
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::channel::unbounded();
    /// sylvan::spawn(move || (1..=4).for_each(|i| tx.send(i).unwrap()));
    /// assert_eq!(rx.iter().sum::<i32>(), 10); // ends when the sender is dropped
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(move || self.recv().ok())
    }

    /// Values queued right now.
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::channel::unbounded();
    /// (0..3).for_each(|i| tx.send(i).unwrap());
    /// drop(tx); // queued values outlive the senders
    /// assert_eq!(rx.len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.queue.len()
    }

    /// Whether no value is queued.
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::channel::bounded(1);
    /// tx.send("x").unwrap();
    /// assert!(!rx.is_empty());
    /// assert_eq!(rx.recv().unwrap(), "x");
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.chan.queue.is_empty()
    }
}

/// An owning blocking iterator over a [`Receiver`]; ends when the channel is
/// empty and every sender is gone.
///
/// ```
/// let (tx, rx) = sylvan::sync::channel::unbounded();
/// tx.send("a").unwrap();
/// tx.send("b").unwrap();
/// drop(tx);
/// let all: Vec<_> = rx.into_iter().collect();
/// assert_eq!(all, ["a", "b"]);
/// ```
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

impl<T> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IntoIter { .. }")
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Receivers drain what is queued, then see the disconnection.
            self.chan.queue.close();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.chan.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Nobody will read: fail the senders and drop what is queued.
            self.chan.queue.close();
            while self.chan.queue.try_get().is_some() {}
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sender { .. }")
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Receiver { .. }")
    }
}

/// Every receiver is gone; the value that could not be sent is inside.
///
/// ```
/// use sylvan::sync::channel;
/// let (tx, rx) = channel::unbounded();
/// drop(rx);
/// let err = tx.send(String::from("kept")).unwrap_err();
/// assert_eq!(err.into_inner(), "kept");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// The channel is empty and every sender is gone.
///
/// ```
/// use sylvan::sync::channel::{self, RecvError};
/// let (tx, rx) = channel::unbounded::<u8>();
/// drop(tx);
/// assert_eq!(rx.recv(), Err(RecvError));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvError;

/// Why [`Sender::try_send`] failed; the value is inside.
///
/// ```
/// use sylvan::sync::channel::{self, TrySendError};
/// let (tx, _rx) = channel::bounded(0);
/// match tx.try_send(5) {
///     Err(TrySendError::Full(v)) => assert_eq!(v, 5), // no receiver waiting
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is full.
    Full(T),
    /// Every receiver is gone.
    Disconnected(T),
}

/// Why [`Sender::send_timeout`] failed; the value is inside.
///
/// ```
/// use std::time::Duration;
/// use sylvan::sync::channel::{self, SendTimeoutError};
/// let (tx, rx) = channel::bounded(0);
/// drop(rx);
/// let r = tx.send_timeout(1, Duration::from_millis(2));
/// assert_eq!(r, Err(SendTimeoutError::Disconnected(1)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SendTimeoutError<T> {
    /// No room within the timeout.
    Timeout(T),
    /// Every receiver is gone.
    Disconnected(T),
}

/// Why [`Receiver::try_recv`] failed.
///
/// ```
/// use sylvan::sync::channel::{self, TryRecvError};
/// let (_tx, rx) = channel::unbounded::<()>();
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing queued right now.
    Empty,
    /// Empty, and every sender is gone.
    Disconnected,
}

/// Why [`Receiver::recv_timeout`] failed.
///
/// ```
/// use std::time::Duration;
/// use sylvan::sync::channel::{self, RecvTimeoutError};
/// let (_tx, rx) = channel::unbounded::<()>();
/// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvTimeoutError {
    /// Nothing arrived within the timeout.
    Timeout,
    /// Empty, and every sender is gone.
    Disconnected,
}

impl<T> SendError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// let (tx, rx) = sylvan::sync::channel::unbounded();
    /// drop(rx);
    /// let err = tx.send(String::from("lost?")).unwrap_err();
    /// assert_eq!(err.into_inner(), "lost?"); // handed back, not dropped
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// use sylvan::sync::channel::TrySendError;
    /// let (tx, _rx) = sylvan::sync::channel::bounded(1);
    /// tx.try_send(1).unwrap();
    /// let err = tx.try_send(2).unwrap_err();
    /// assert!(matches!(err, TrySendError::Full(_)));
    /// assert_eq!(err.into_inner(), 2);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Disconnected(v) => v,
        }
    }
}

impl<T> SendTimeoutError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sylvan::sync::channel::SendTimeoutError;
    /// let (tx, _rx) = sylvan::sync::channel::bounded(1);
    /// tx.send(1).unwrap();
    /// let err = tx.send_timeout(2, Duration::from_millis(1)).unwrap_err(); // still full
    /// assert!(matches!(err, SendTimeoutError::Timeout(_)));
    /// assert_eq!(err.into_inner(), 2);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(v) | SendTimeoutError::Disconnected(v) => v,
        }
    }
}

macro_rules! error_impls {
    ($($ty:ident $(<$g:ident>)? : $($pat:pat => $msg:expr),+;)+) => {$(
        impl$(<$g>)? fmt::Display for $ty$(<$g>)? {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $($pat => $msg),+ })
            }
        }
        impl$(<$g>)? std::error::Error for $ty$(<$g>)? {}
    )+};
}

error_impls! {
    SendError<T>: SendError(_) => "sending on a channel whose receivers are all gone";
    RecvError: RecvError => "receiving on an empty channel whose senders are all gone";
    TrySendError<T>: TrySendError::Full(_) => "sending on a full channel",
        TrySendError::Disconnected(_) => "sending on a channel whose receivers are all gone";
    SendTimeoutError<T>: SendTimeoutError::Timeout(_) => "timed out waiting for room in the channel",
        SendTimeoutError::Disconnected(_) => "sending on a channel whose receivers are all gone";
    TryRecvError: TryRecvError::Empty => "receiving on an empty channel",
        TryRecvError::Disconnected => "receiving on an empty channel whose senders are all gone";
    RecvTimeoutError: RecvTimeoutError::Timeout => "timed out waiting on the channel",
        RecvTimeoutError::Disconnected => "receiving on an empty channel whose senders are all gone";
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str("Timeout(..)"),
            SendTimeoutError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}
