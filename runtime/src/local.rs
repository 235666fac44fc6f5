//! Fiber-local storage: [`fiber_local!`](crate::fiber_local) and [`LocalKey`].
//!
//! Each fiber gets its own lazily initialised value per key, dropped when the
//! fiber finishes (inside the fiber, before its result is published). Code
//! running on a plain thread gets a per-thread value instead, so library code
//! can use fiber-locals without caring where it runs.

use std::any::Any;
use std::cell::RefCell;

use crate::record;

/// A key to fiber-local values of type `T`; create one with
/// [`fiber_local!`](crate::fiber_local).
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::cell::RefCell;
/// sylvan::fiber_local! { static LOG: RefCell<Vec<&'static str>> = RefCell::new(Vec::new()); }
/// let h = sylvan::spawn(|| {
///     LOG.with(|l| l.borrow_mut().push("in fiber"));
///     LOG.with(|l| l.borrow().len())
/// });
/// assert_eq!(h.join().unwrap(), 1);
/// assert_eq!(LOG.with(|l| l.borrow().len()), 0); // this thread's own value
/// ```
///
/// A reference to the value cannot escape `with` (the value is dropped when
/// its fiber ends):
///
/// ```compile_fail
/// # extern crate sylvan_runtime as sylvan;
/// sylvan::fiber_local! { static NAME: String = String::from("fiber"); }
/// let name: &'static String = NAME.with(|n| n); // error: borrowed data escapes the closure
/// ```
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey { init }
    }

    /// Calls `f` with this fiber's value, initialising it on first use.
    ///
    /// ```
    /// # extern crate sylvan_runtime as sylvan;
    /// use std::cell::Cell;
    /// sylvan::fiber_local! { static HITS: Cell<u32> = Cell::new(0); }
    ///
    /// let a = sylvan::spawn(|| { HITS.with(|h| h.set(h.get() + 5)); HITS.with(Cell::get) });
    /// let b = sylvan::spawn(|| HITS.with(Cell::get));
    /// assert_eq!(a.join().unwrap(), 5);
    /// assert_eq!(b.join().unwrap(), 0); // every fiber has its own value
    /// ```
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let key = self as *const Self as usize;
        let ptr = record::with_current(|ctx| self.slot(&ctx.locals, key))
            .unwrap_or_else(|| THREAD_LOCALS.with(|map| self.slot(map, key)));
        // Entries of a fiber's (or thread's) map are never removed while it
        // runs (only in `drop_fiber_locals`, after its closure returned), and
        // a Box's contents do not move when the map's Vec grows.
        // SAFETY: so the boxed value behind `ptr` outlives this call.
        f(unsafe { &*ptr })
    }

    fn slot(&self, map: &RefCell<Vec<(usize, Box<dyn Any>)>>, key: usize) -> *const T {
        if let Some(p) = find::<T>(map, key) {
            return p;
        }
        // Initialise without holding the borrow: `init` may use other keys.
        let value: Box<dyn Any> = Box::new((self.init)());
        if let Some(p) = find::<T>(map, key) {
            // `init` itself initialised this key (re-entrancy); keep the first.
            return p;
        }
        let mut m = map.borrow_mut();
        m.push((key, value));
        let (_, boxed) = m.last().expect("just pushed");
        boxed.downcast_ref::<T>().expect("key type") as *const T
    }
}

fn find<T: 'static>(map: &RefCell<Vec<(usize, Box<dyn Any>)>>, key: usize) -> Option<*const T> {
    let map = map.borrow();
    let (_, v) = map.iter().find(|(k, _)| *k == key)?;
    if v.is::<Destroyed>() {
        drop(map);
        panic!(
            "sylvan: a fiber-local value was used during or after its destruction (from a \
             fiber-local destructor, as the fiber ends); use it before the fiber's closure returns"
        );
    }
    Some(v.downcast_ref::<T>().expect("key type") as *const T)
}

/// What a fiber's map holds for a key whose value has been dropped, while
/// the fiber's other values are dropped: using the key then panics (as
/// `thread_local!` does), rather than make a new value to drop in turn.
struct Destroyed;

thread_local! {
    static THREAD_LOCALS: RefCell<Vec<(usize, Box<dyn Any>)>> = const { RefCell::new(Vec::new()) };
}

/// Drops the running fiber's local values (called when its closure is done).
/// A panicking destructor is reported and does not stop the others.
#[inline]
pub(crate) fn drop_fiber_locals() {
    // Most fibers have none: one look, no take.
    if record::with_current(|ctx| ctx.locals.borrow().is_empty()) != Some(false) {
        return;
    }
    drop_each_local();
}

#[inline(never)]
fn drop_each_local() {
    // Newest first, one at a time: a destructor may still use the values
    // not dropped yet, and may create new ones (dropped in turn); a value
    // already dropped is marked, so using it panics instead of making a
    // new one (which would never end if a destructor used its own key).
    loop {
        let next = record::with_current(|ctx| {
            ctx.locals
                .borrow_mut()
                .iter_mut()
                .rev()
                .find(|(_, v)| !v.is::<Destroyed>())
                .map(|(_, v)| std::mem::replace(v, Box::new(Destroyed)))
        });
        let Some(value) = next.flatten() else {
            break;
        };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(value)));
    }
    record::with_current(|ctx| ctx.locals.borrow_mut().clear());
}

/// Declares fiber-local statics: each fiber sees its own value, created on
/// first access with the given expression and dropped when the fiber ends.
///
/// ```
/// # extern crate sylvan_runtime as sylvan;
/// use std::cell::RefCell;
/// sylvan::fiber_local! {
///     /// A per-fiber scratch buffer.
///     static BUF: RefCell<Vec<u8>> = RefCell::new(Vec::new());
/// }
/// sylvan::spawn(|| BUF.with(|b| b.borrow_mut().push(1))).join().unwrap();
/// ```
#[macro_export]
macro_rules! fiber_local {
    () => {};
    // `= const { … }`, as `thread_local!` takes it (the value is made per
    // fiber all the same).
    ($(#[$attr:meta])* $vis:vis static $name:ident : $t:ty = const { $init:expr }; $($rest:tt)*) => {
        $crate::fiber_local!($(#[$attr])* $vis static $name: $t = $init; $($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident : $t:ty = const { $init:expr }) => {
        $crate::fiber_local!($(#[$attr])* $vis static $name: $t = $init;);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident : $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])*
        $vis static $name: $crate::LocalKey<$t> = $crate::LocalKey::new({
            fn __sylvan_init() -> $t {
                $init
            }
            __sylvan_init
        });
        $crate::fiber_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident : $t:ty = $init:expr) => {
        $crate::fiber_local!($(#[$attr])* $vis static $name: $t = $init;);
    };
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    crate::fiber_local! {
        static LOG: RefCell<Vec<u32>> = RefCell::new(vec![1]);
        static DERIVED: Cell<usize> = Cell::new(LOG.with(|l| l.borrow().len()) + 10);
        static K0: Cell<u8> = Cell::new(0);
        static K1: Cell<u8> = Cell::new(1);
        static K2: Cell<u8> = Cell::new(2);
        static K3: Cell<u8> = Cell::new(3);
        static K4: Cell<u8> = Cell::new(4);
        static K5: Cell<u8> = Cell::new(5);
    }

    /// Off a fiber each thread has its own map. A reference handed to `with`
    /// stays valid while other keys are created and the map's `Vec` grows
    /// under it, and an initialiser may use another key.
    #[test]
    fn thread_values_survive_map_growth_and_nested_init() {
        LOG.with(|log| {
            log.borrow_mut().push(2);
            let keys = [&K0, &K1, &K2, &K3, &K4, &K5];
            for (i, k) in keys.iter().enumerate() {
                k.with(|c| {
                    assert_eq!(c.get() as usize, i);
                    c.set(c.get() + 100);
                });
            }
            assert_eq!(DERIVED.with(Cell::get), 12, "init used LOG (two entries)");
            log.borrow_mut().push(3);
            assert_eq!(*log.borrow(), [1, 2, 3]);
        });
        assert_eq!(K5.with(Cell::get), 105);
        assert_eq!(LOG.with(|l| l.borrow().len()), 3);
        let other = std::thread::spawn(|| (K5.with(Cell::get), LOG.with(|l| l.borrow().len())));
        assert_eq!(other.join().unwrap(), (5, 1), "a new thread starts fresh");
    }
}
