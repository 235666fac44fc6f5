//! [`Group`]: a set of fibers to join or cancel together (gevent's `Group`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use sylvan_runtime::{Fiber, FiberId, JoinHandle};

use crate::wait_group::WaitGroup;

/// Tracks the fibers spawned through it: [`join`](Group::join) waits for all
/// of them, [`cancel`](Group::cancel) cancels all that are still running.
/// Cloning a `Group` gives another handle to the same group.
///
/// ```
/// use std::time::Duration;
/// use sylvan::sync::Group;
///
/// let group = Group::new();
/// for _ in 0..5 {
///     group.spawn(|| sylvan::sleep(Duration::from_secs(3600)));
/// }
/// group.cancel(); // every member unwinds from its sleep
/// group.join();
/// assert_eq!(group.len(), 0);
/// ```
#[derive(Clone, Default)]
pub struct Group {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    members: Mutex<HashMap<FiberId, Fiber>>,
    running: WaitGroup,
}

/// Removes a member when its fiber ends (or is dropped without running).
struct Membership {
    inner: Arc<Inner>,
    id: Arc<Mutex<Option<FiberId>>>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        // The id is set under the members lock right after the spawn, so
        // taking that lock first guarantees we see it.
        let mut members = self.inner.members.lock();
        if let Some(id) = *self.id.lock() {
            members.remove(&id);
        }
        drop(members);
        self.inner.running.done();
    }
}

impl Group {
    /// An empty group.
    ///
    /// ```
    /// let g = sylvan::sync::Group::new();
    /// assert!(g.is_empty());
    /// g.join(); // nothing to wait for
    /// ```
    pub fn new() -> Group {
        Group::default()
    }

    /// Spawns `f` as a member of the group.
    ///
    /// ```
    /// let g = sylvan::sync::Group::new();
    /// let h = g.spawn(|| 2 + 2);
    /// g.join();
    /// assert_eq!(h.join().unwrap(), 4);
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.inner.running.add(1);
        let id = Arc::new(Mutex::new(None));
        let membership = Membership {
            inner: self.inner.clone(),
            id: id.clone(),
        };
        let mut members = self.inner.members.lock();
        let handle = sylvan_runtime::spawn(move || {
            let _membership = membership;
            f()
        });
        *id.lock() = Some(handle.id());
        members.insert(handle.id(), handle.fiber());
        handle
    }

    /// Waits until every member has finished.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let g = sylvan::sync::Group::new();
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..5 {
    ///     let done = done.clone();
    ///     g.spawn(move || done.fetch_add(1, Ordering::SeqCst));
    /// }
    /// g.join(); // the handles were dropped; the group still waits for all five
    /// assert_eq!(done.load(Ordering::SeqCst), 5);
    /// ```
    pub fn join(&self) {
        self.inner.running.wait();
    }

    /// Like [`join`](Group::join), for at most `timeout`; returns whether all
    /// finished.
    ///
    /// ```
    /// use std::time::Duration;
    /// let g = sylvan::sync::Group::new();
    /// let slow = g.spawn(|| sylvan::sleep(Duration::from_secs(60)));
    /// assert!(!g.join_timeout(Duration::from_millis(2)));
    /// g.cancel();
    /// assert!(slow.join().unwrap_err().is_cancelled());
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.inner.running.wait_timeout(timeout)
    }

    /// Requests cancellation of every member still running.
    ///
    /// ```
    /// use std::time::Duration;
    /// let g = sylvan::sync::Group::new();
    /// let members: Vec<_> = (0..3)
    ///     .map(|_| g.spawn(|| sylvan::sleep(Duration::from_secs(60))))
    ///     .collect();
    /// g.cancel(); // each member unwinds where it parks
    /// g.join();
    /// assert!(members.into_iter().all(|m| m.join().unwrap_err().is_cancelled()));
    /// ```
    pub fn cancel(&self) {
        let members: Vec<Fiber> = self.inner.members.lock().values().cloned().collect();
        for m in members {
            m.cancel();
        }
    }

    /// Members still running.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sylvan::sync::{Event, Group};
    ///
    /// let (g, go) = (Group::new(), Arc::new(Event::new()));
    /// let go2 = go.clone();
    /// g.spawn(move || go2.wait());
    /// assert_eq!(g.len(), 1);
    /// go.set();
    /// g.join();
    /// assert_eq!(g.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.running.count()
    }

    /// Whether no member is running.
    ///
    /// ```
    /// let g = sylvan::sync::Group::new();
    /// assert!(g.is_empty());
    /// g.spawn(|| ());
    /// g.join();
    /// assert!(g.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("running", &self.len())
            .finish()
    }
}
