//! A fiber-free model of how the hub owns a fiber while the fiber holds a
//! reference to its own context, for Miri (which cannot run corosensei's
//! stack switches).
//!
//! # The pattern
//!
//! Until the audit of issue 18, `Hub::resume` took the fiber's `Box` out of
//! the hub's table, installed `&fiber.ctx` as `CURRENT`, resumed the
//! coroutine (a `&mut` to the other field, `co`) and put the `Box` back when
//! the fiber suspended. (The hub now keeps each fiber by raw pointer, as in
//! [`raw`] — written in place at the top of the fiber's own stack, no longer
//! in a box; see `hub::LiveFiber`.) A parking
//! fiber derives `&FiberCtx` from `CURRENT` and holds it across the
//! suspension: as the argument of `fiber_park` and as `self` of
//! `FiberCtx::suspend`. Meanwhile the hub moves the `Box` back into the
//! table, and out again on the next resume.
//!
//! Here the stack switch is a callback: [`fiber_park`] takes `ctx: &Ctx`,
//! calls `suspend` (which plays the hub between two resumes), then uses `ctx`
//! again. The `Box` moves exactly as in `Hub::resume`.
//!
//! # What Miri says
//!
//! * [`boxed`]: the table holds `Option<Box<Fiber>>`, as `Hub::fibers` does.
//!   Both tests there are `#[ignore]`d because Miri rejects them:
//!   - Stacked Borrows (Miri's default) reports undefined behaviour as soon
//!     as the hub moves the `Box` back into the table: a moved `Box` is
//!     retagged as unique, which acts as a write to the whole `Fiber`, `ctx`
//!     included, and that would pop the fiber's `&Ctx`, which is protected
//!     because it is a live function argument. Whatever the fiber does next.
//!   - Tree Borrows accepts a fiber that only reads its ctx after being
//!     resumed, and rejects one that writes a cell of it (as `yield_now`
//!     does: `raise_interrupts` borrows the `deadlines` `RefCell` after the
//!     switch): that write through the old `&Ctx` disables the tag of the
//!     `Box` the hub took out of the table for this resume, and the hub's
//!     next use of the `Box` (here: dropping it) is undefined behaviour.
//!
//!   To see the reports:
//!
//!   ```text
//!   cargo +nightly miri test -p sylvan-runtime --lib -- --ignored --exact alias_model::boxed::fiber_that_only_reads_its_ctx_after_resuming
//!   MIRIFLAGS=-Zmiri-tree-borrows cargo +nightly miri test -p sylvan-runtime --lib -- --ignored --exact alias_model::boxed::fiber_that_writes_its_ctx_after_resuming
//!   ```
//!
//! * [`raw`]: the table holds `NonNull<Fiber>` from `Box::into_raw`; the hub
//!   reaches `co` through `addr_of_mut!((*p).co)` (`&raw mut (*p).co` once
//!   the MSRV is 1.82) and `ctx` through `&(*p).ctx`, and never makes a
//!   `&mut Fiber` or moves a `Box` while the fiber lives. Both models accept
//!   it, also with the cell write; it runs as a normal test and in
//!   `.ci/miri` under both.

use std::cell::{Cell, RefCell};
use std::ptr;

/// Stands for `FiberCtx`: a plain field (like `header`) and a cell the fiber
/// writes (like `io_streak`).
struct Ctx {
    id: u64,
    streak: Cell<u32>,
}

/// Stands for `hub::LiveFiber`: the context, and the coroutine that every resume
/// mutates.
struct Fiber {
    ctx: Ctx,
    co: u64,
}

impl Fiber {
    fn new(id: u64) -> Fiber {
        Fiber {
            ctx: Ctx {
                id,
                streak: Cell::new(0),
            },
            co: 0,
        }
    }
}

thread_local! {
    /// Stands for `fiber::CURRENT`.
    static CURRENT: Cell<*const Ctx> = const { Cell::new(ptr::null()) };
}

fn set_current(ctx: *const Ctx) {
    CURRENT.with(|c| c.set(ctx));
}

/// `park_inner`: derives `&Ctx` from `CURRENT` and holds it across the
/// suspension.
fn park(after: After, suspend: impl FnOnce()) -> u32 {
    let ptr = CURRENT.with(Cell::get);
    assert!(!ptr.is_null(), "park runs in a fiber");
    // SAFETY: this is the claim under test: `CURRENT` points to the running
    // fiber's ctx, which stays valid until the fiber finishes.
    let ctx = unsafe { &*ptr };
    fiber_park(ctx, after, suspend)
}

/// What the parked fiber does with its `&Ctx` once it is resumed.
#[derive(Clone, Copy)]
enum After {
    /// Only reads (`fiber_park` today: `raise_cancellation` reads
    /// `header` and `shielded`).
    Read,
    /// Also writes a cell: `yield_now` calls `raise_interrupts(ctx)` after
    /// the switch, which borrows the `deadlines` `RefCell` (its borrow flag
    /// is a cell).
    WriteCell,
}

/// `fiber_park` and `FiberCtx::suspend`: uses `ctx` before and after the
/// switch to the hub.
fn fiber_park(ctx: &Ctx, after: After, suspend: impl FnOnce()) -> u32 {
    let id = ctx.id;
    ctx.streak.set(ctx.streak.get() + 1);
    suspend();
    assert_eq!(ctx.id, id);
    if let After::WriteCell = after {
        ctx.streak.set(ctx.streak.get() + 1);
    }
    ctx.streak.get()
}

/// The table as `Hub::fibers` holds it today.
mod boxed {
    use super::*;

    fn move_the_box_under_a_parked_fiber(after: After) -> u32 {
        let table: RefCell<Vec<Option<Box<Fiber>>>> =
            RefCell::new(vec![Some(Box::new(Fiber::new(7)))]);
        // Hub::resume #1: the box out of the table, CURRENT installed, the
        // coroutine resumed.
        let mut running = table.borrow_mut()[0].take();
        let fiber = running.as_mut().expect("slot 0 holds a fiber");
        set_current(&fiber.ctx);
        fiber.co += 1;
        // The fiber runs and parks; the callback is the hub until the fiber
        // is resumed again.
        let streak = park(after, || {
            // The fiber suspended: resume #1 puts the box back.
            set_current(ptr::null());
            table.borrow_mut()[0] = running.take();
            // The hub starts another fiber meanwhile (the table may grow).
            table.borrow_mut().push(Some(Box::new(Fiber::new(8))));
            // Resume #2: out again, CURRENT installed, the coroutine resumed
            // (a `&mut` to `co`), and back when the fiber suspends again.
            let mut fiber = table.borrow_mut()[0].take().expect("parked fiber");
            assert_eq!(fiber.ctx.id, 7);
            set_current(&fiber.ctx);
            fiber.co += 1;
            table.borrow_mut()[0] = Some(fiber);
        });
        set_current(ptr::null());
        assert_eq!(table.borrow()[0].as_ref().map(|f| f.co), Some(2));
        streak
    }

    /// Stacked Borrows: UB when the box moves while the fiber's `&Ctx` is a
    /// protected argument. Tree Borrows: accepted.
    #[test]
    #[ignore = "Miri (Stacked Borrows) reports UB: evidence for the hub's fiber table, see the module docs"]
    fn fiber_that_only_reads_its_ctx_after_resuming() {
        assert_eq!(move_the_box_under_a_parked_fiber(After::Read), 1);
    }

    /// Stacked Borrows: UB as above. Tree Borrows: UB too, when the table
    /// drops the box: the fiber's cell write through its old `&Ctx` disabled
    /// the box's newer tag.
    #[test]
    #[ignore = "Miri (both models) reports UB: evidence for the hub's fiber table, see the module docs"]
    fn fiber_that_writes_its_ctx_after_resuming() {
        assert_eq!(move_the_box_under_a_parked_fiber(After::WriteCell), 2);
    }
}

/// The table holding raw pointers, as the hub does.
mod raw {
    use std::ptr::NonNull;

    use super::*;

    /// A fiber table that owns its fibers through `Box::into_raw` pointers.
    struct Table {
        fibers: RefCell<Vec<Option<NonNull<Fiber>>>>,
    }

    impl Table {
        fn start(&self, fiber: Fiber) -> usize {
            let p = NonNull::new(Box::into_raw(Box::new(fiber))).expect("a box is not null");
            let mut fibers = self.fibers.borrow_mut();
            fibers.push(Some(p));
            fibers.len() - 1
        }

        fn get(&self, slot: usize) -> NonNull<Fiber> {
            self.fibers.borrow()[slot].expect("a live fiber")
        }

        /// `Hub::resume` up to the switch: CURRENT installed, the coroutine
        /// resumed. The fiber stays where it is.
        fn resume(&self, slot: usize) {
            let p = self.get(slot).as_ptr();
            // `p` came from `Box::into_raw` and is freed only by `finish`.
            // SAFETY: the shared reborrow covers `ctx` alone, which the fiber
            // too reaches only through shared references (cells inside).
            set_current(unsafe { &(*p).ctx });
            // SAFETY: as above; nobody else reaches `co`, and the `&mut`
            // covers `co` alone, not the `ctx` the fiber holds.
            let co = unsafe { &mut *ptr::addr_of_mut!((*p).co) };
            *co += 1;
        }

        /// What `fire_timers` does: reads a parked fiber's ctx.
        fn id(&self, slot: usize) -> u64 {
            let p = self.get(slot).as_ptr();
            // SAFETY: a shared read of a live fiber's ctx (see `resume`).
            unsafe { (*p).ctx.id }
        }

        /// The fiber returned: no frame of it holds its ctx any more, so the
        /// hub may own the whole fiber again (here: a `&mut` to its ctx, as
        /// `FiberCtx::reset` takes for reuse, then free it).
        fn finish(&self, slot: usize) -> u64 {
            let p = self.fibers.borrow_mut()[slot].take().expect("a live fiber");
            // SAFETY: from `Box::into_raw` in `start`, taken out of the table
            // so freed once; the fiber has finished, so nothing borrows it.
            let mut fiber = unsafe { Box::from_raw(p.as_ptr()) };
            *fiber.ctx.streak.get_mut() = 0;
            fiber.co
        }
    }

    #[test]
    fn raw_pointers_keep_a_parked_fibers_ctx_valid() {
        let table = Table {
            fibers: RefCell::new(Vec::new()),
        };
        let slot = table.start(Fiber::new(7));
        table.resume(slot);
        let streak = park(After::WriteCell, || {
            // The fiber suspended: resume #1 returns.
            set_current(ptr::null());
            let other = table.start(Fiber::new(8));
            assert_eq!(table.id(slot), 7);
            // Resume #2.
            table.resume(slot);
            assert_eq!(table.finish(other), 0);
        });
        set_current(ptr::null());
        assert_eq!(streak, 2);
        assert_eq!(table.finish(slot), 2);
    }
}
