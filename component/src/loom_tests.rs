//! Loom models of the cross-context wake path (`scheduler::shared`) and of the waiter slot
//! of `ThreadSafeFlag` (`sync::flag`). Run with:
//! `RUSTFLAGS="--cfg loom" cargo test -p uasyncio --lib --release loom_`

use std::boxed::Box;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::vec::Vec;

use core::future::Future;
use core::ptr::NonNull;

use loom::sync::{Condvar, Mutex};
use loom::thread;

use crate::atomic::{AtomicPtr, AtomicUsize, Ordering};
use crate::raw::shared::Shared;
use crate::raw::wake::{Linked, WakeStack};
use crate::raw::{self, Header, SCHEDULED};
use crate::scheduler::waker;
use crate::sync::ThreadSafeFlag;

struct Node {
    next: AtomicPtr<Node>,
}

impl Linked for Node {
    fn next(&self) -> &AtomicPtr<Self> {
        &self.next
    }

    unsafe fn release(_node: NonNull<Self>) {
        // The model's nodes are owned by the test, not reference counted.
    }
}

/// The loop's wake-up signal as the FreeRTOS port has it (`rtos_shims::LoopSignal`): the
/// task to notify, recorded by `prepare` and read by signallers with Relaxed loads (the wake
/// word's CAS to sleeping and the push that replaces it order them), and the kernel's
/// notification, a latch on loom's primitives
/// (`wait` has no timeout here). A signaller that read no owner notifies nobody, so if the
/// ordering argument were wrong the loop would sleep forever: a deadlock loom reports.
struct Signal {
    owner: AtomicUsize,
    latch: Mutex<bool>,
    cond: Condvar,
}

impl Signal {
    fn prepare(&self) {
        if self.owner.load(Ordering::Relaxed) != 1 {
            self.owner.store(1, Ordering::Relaxed);
        }
    }
    fn signal(&self) {
        if self.owner.load(Ordering::Relaxed) == 0 {
            return;
        }
        *self.latch.lock().unwrap() = true;
        self.cond.notify_one();
    }
    fn wait(&self) {
        let mut latch = self.latch.lock().unwrap();
        while !*latch {
            latch = self.cond.wait(latch).unwrap();
        }
        *latch = false;
    }
}

struct Loop {
    stack: WakeStack<Node>,
    sig: Signal,
}

impl Loop {
    fn wake(&self, node: NonNull<Node>) {
        // As `Shared::push_remote` does: signal only a loop the push found asleep.
        if self.stack.push(node) == Ok(true) {
            self.sig.signal();
        }
    }
}

/// Two wakers on other threads each push a task; the loop, which sleeps whenever it finds
/// nothing, must receive both. A lost wake shows up as a deadlock, which loom reports.
#[test]
fn loom_no_lost_wake() {
    // Two preemptions cover the interleavings that matter (a push racing the CAS to
    // SLEEPING, a signal racing the wait) and keep the model under a minute.
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let lp = Arc::new(Loop {
            stack: WakeStack::new(),
            sig: Signal {
                owner: AtomicUsize::new(0),
                latch: Mutex::new(false),
                cond: Condvar::new(),
            },
        });
        let nodes: Arc<[Node; 2]> = Arc::new([
            Node {
                next: AtomicPtr::new(core::ptr::null_mut()),
            },
            Node {
                next: AtomicPtr::new(core::ptr::null_mut()),
            },
        ]);
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let lp = lp.clone();
                let nodes = nodes.clone();
                thread::spawn(move || lp.wake(NonNull::from(&nodes[i])))
            })
            .collect();
        let mut received = 0;
        while received < 2 {
            // As the loop does (`drain_remote`): look at the head first, swap only if
            // something is there. The look is a plain load and may miss a racing push; the
            // compare-and-swap to sleeping below cannot.
            if !lp.stack.is_empty() {
                lp.stack.drain(|_| received += 1);
            }
            if received < 2 {
                // As `Shared::sleep` does: record the owner, publish "sleeping", wait, then
                // take what was pushed meanwhile.
                lp.sig.prepare();
                if lp.stack.try_sleep() {
                    lp.sig.wait();
                    lp.stack.wake(|_| received += 1);
                } else {
                    lp.stack.drain_seen(|_| received += 1);
                }
            }
        }
        for h in handles {
            h.join().unwrap();
        }
    });
}

/// A real task cell on a loop's `Shared` half (no loop thread: wakes land on its wake stack).
/// (Shared with the other loom models, e.g. `sync::channel_loom`.)
pub(crate) fn task_on(shared: &Arc<Shared<Header>>) -> NonNull<Header> {
    task_running(shared, async { Ok::<(), crate::Error>(()) })
}

/// A task of `shared`'s loop whose future is `fut` (never polled here).
pub(crate) fn task_running(
    shared: &Arc<Shared<Header>>,
    fut: impl Future<Output = crate::Result<()>> + 'static,
) -> NonNull<Header> {
    raw::allocate(fut, shared.clone(), 1, 0)
}

/// The task as the loop polls it: popped from a ready queue, its `SCHEDULED` bit still set
/// (the bit stays set through the poll; see `raw::SCHEDULED`).
pub(crate) fn being_polled(task: NonNull<Header>) {
    // SAFETY: the test holds a reference to the task.
    unsafe { task.as_ref() }.state.store(SCHEDULED, Ordering::Relaxed);
}

/// What the loop does after a poll of `task` returned `Pending` (`Header::settle`), once
/// every waker has returned: true if the task runs again, requeued by the loop or taken from
/// the wake stack (whose entries are released here). Exactly one of the two, or neither.
pub(crate) fn runs_again(shared: &Shared<Header>, task: NonNull<Header>) -> bool {
    // SAFETY: the test holds a reference to the task.
    let requeued = unsafe { task.as_ref() }.settle().is_some();
    let stacked = drain_stacked(shared);
    assert!(stacked <= 1, "the task was pushed twice");
    assert!(!(requeued && stacked == 1), "the task was queued twice");
    requeued || stacked == 1
}

/// Takes every entry off the wake stack, releasing the reference each holds; how many.
pub(crate) fn drain_stacked(shared: &Shared<Header>) -> u32 {
    let mut stacked = 0;
    shared.drain(|p| {
        stacked += 1;
        // SAFETY: each stack entry owns the reference its pusher handed over.
        unsafe { raw::drop_ref(p) }
    });
    stacked
}

pub(crate) fn release(shared: &Shared<Header>, task: NonNull<Header>) {
    drain_stacked(shared);
    // SAFETY: the test's own reference from `task_on`, not used afterwards.
    unsafe { raw::drop_ref(task) };
}

/// A `set()` from another thread races the waiter's poll: afterwards, either the poll saw
/// the flag, or the waiting task was scheduled (so it will poll again and see it).
#[test]
fn loom_flag_set_is_never_lost() {
    loom::model(|| {
        let shared = Arc::new(Shared::new().unwrap());
        let task = task_on(&shared);
        let flag = Arc::new(ThreadSafeFlag::new());
        let setter = {
            let flag = flag.clone();
            thread::spawn(move || flag.set())
        };
        let waker = waker::waker_ref(&task);
        let mut wait = Box::pin(flag.wait());
        being_polled(task);
        let first = wait.as_mut().poll(&mut Context::from_waker(&waker));
        setter.join().unwrap();
        if first.is_pending() {
            assert!(
                runs_again(&shared, task),
                "set() after the registration did not schedule the task"
            );
            let second = wait.as_mut().poll(&mut Context::from_waker(&waker));
            assert_eq!(second, Poll::Ready(Ok(())));
        }
        assert!(!flag.is_set(), "the flag clears itself when wait() returns");
        drop(wait);
        release(&shared, task);
    });
}

/// What a setter wrote before `set()` is visible to the task once `wait()` returned: the task
/// polls again without waiting for its wake (nothing else orders it after the setter), so a
/// poll that finds the flag set takes it in the inlined fast path, whose compare-and-swap alone
/// must acquire the set's writes (loom reports the read of `data` as a race with that swap
/// `Relaxed`).
#[test]
fn loom_flag_wait_sees_what_set_published() {
    loom::model(|| {
        let shared = Arc::new(Shared::new().unwrap());
        let task = task_on(&shared);
        let flag = Arc::new(ThreadSafeFlag::new());
        // Shared across threads on purpose although `UnsafeCell` is not `Sync`: loom checks
        // the accesses.
        #[allow(clippy::arc_with_non_send_sync)]
        let data = Arc::new(loom::cell::UnsafeCell::new(0u32));
        let setter = {
            let (flag, data) = (flag.clone(), data.clone());
            thread::spawn(move || {
                // SAFETY: the waiter reads `data` only after its wait() returned.
                data.with_mut(|p| unsafe { *p = 7 });
                flag.set();
            })
        };
        let waker = waker::waker_ref(&task);
        let mut wait = Box::pin(flag.wait());
        being_polled(task);
        // Two polls before the join (loom bounds the model's branches; every place of the set
        // among them is explored), and the read of `data` only after one returned.
        let mut ready = false;
        for _ in 0..2 {
            if wait.as_mut().poll(&mut Context::from_waker(&waker)).is_ready() {
                ready = true;
                break;
            }
            thread::yield_now();
        }
        if ready {
            // SAFETY: wait() returned, so the set (and the write before it) happened before.
            let seen = data.with(|p| unsafe { *p });
            assert_eq!(seen, 7, "wait() returned before the set's write");
        }
        // Whether a set that came after both polls is found is `loom_flag_set_is_never_lost`'s
        // question, not asked here: a poll after the join would meet a known loom bug (a load
        // after a join that misses a store racing an earlier swap: tokio-rs/loom#389).
        setter.join().unwrap();
        drop(wait);
        release(&shared, task);
    });
}

/// A registered wait dropped (a cancel, a `select` that moved on) while a `set()` races it:
/// the set is never lost. Whatever the interleaving, the flag is set afterwards (the drop
/// took the task out before the set, or the set took it first and the drop left `SET`), and
/// every reference the waiter slot held is given back (`release` drops the test's own; loom
/// reports a leak or a double free).
#[test]
fn loom_flag_set_races_a_dropped_wait() {
    loom::model(|| {
        let shared = Arc::new(Shared::new().unwrap());
        let task = task_on(&shared);
        let flag = Arc::new(ThreadSafeFlag::new());
        let waker = waker::waker_ref(&task);
        let mut wait = Box::pin(flag.wait());
        being_polled(task);
        assert!(wait.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        let setter = {
            let flag = flag.clone();
            thread::spawn(move || flag.set())
        };
        drop(wait);
        setter.join().unwrap();
        assert!(flag.is_set(), "the set was lost to the dropped wait");
        drain_stacked(&shared);
        release(&shared, task);
    });
}

/// Two setters race one waiter; whatever the interleaving, once both returned the waiter has
/// either consumed the flag or is scheduled to.
#[test]
fn loom_two_setters_one_waiter() {
    loom::model(|| {
        let shared = Arc::new(Shared::new().unwrap());
        let task = task_on(&shared);
        let flag = Arc::new(ThreadSafeFlag::new());
        let setters: Vec<_> = (0..2)
            .map(|_| {
                let flag = flag.clone();
                thread::spawn(move || flag.set())
            })
            .collect();
        let waker = waker::waker_ref(&task);
        let mut wait = Box::pin(flag.wait());
        being_polled(task);
        let first = wait.as_mut().poll(&mut Context::from_waker(&waker));
        for s in setters {
            s.join().unwrap();
        }
        if first.is_pending() {
            assert!(runs_again(&shared, task), "a set was lost");
        }
        drop(wait);
        release(&shared, task);
    });
}

/// A wake from another thread races the loop's poll of the task (its `SCHEDULED` bit set)
/// and the loop's `settle` after it: the task runs again exactly once (`runs_again` checks
/// "once"), and when the loop requeues it itself, the next poll sees what the waker wrote
/// before waking (loom reports the read of `data` as a race otherwise).
#[test]
fn loom_wake_during_poll_runs_the_task_again() {
    loom::model(|| {
        let shared = Arc::new(Shared::new().unwrap());
        let task = task_on(&shared);
        // Shared across threads on purpose although `UnsafeCell` is not `Sync`: loom checks
        // the accesses, and reports one the wake does not order as a race.
        #[allow(clippy::arc_with_non_send_sync)]
        let data = Arc::new(loom::cell::UnsafeCell::new(0u32));
        being_polled(task);
        let waker = (*waker::waker_ref(&task)).clone();
        let wakers = {
            let data = data.clone();
            thread::spawn(move || {
                // SAFETY: the loop side reads `data` only after a wake that ordered this write.
                data.with_mut(|p| unsafe { *p = 1 });
                waker.wake();
            })
        };
        // SAFETY: the test holds a reference to the task.
        let requeued = unsafe { task.as_ref() }.settle().is_some();
        if requeued {
            // SAFETY: `settle` acquired the waker's write (the assertion is loom's).
            assert_eq!(data.with(|p| unsafe { *p }), 1);
        }
        wakers.join().unwrap();
        let stacked = drain_stacked(&shared);
        assert_eq!(u32::from(requeued) + stacked, 1, "the wake was lost or queued twice");
        release(&shared, task);
    });
}

/// A waker holding an old clone wakes the task from another thread while the loop runs it.
/// In the ready queue another task was queued behind it, so the loop wrote its `next` link,
/// then popped, polled and settled it. A wake that finds the state
/// cleared pushes the task on the wake stack and writes the same `next`; `settle`'s `Release`
/// (which that wake's `fetch_or` acquires) puts the loop's write first, so the drain follows
/// the waker's link, not the ready queue's. With `settle` `Relaxed`, loom finds the drain
/// reading the stale link to the other task.
#[test]
fn loom_ready_queue_link_then_remote_push() {
    loom::model(|| {
        let shared = Arc::new(Shared::new().unwrap());
        let task = task_on(&shared);
        let other = task_on(&shared);
        // In the ready queue: its bit set (nothing in this model orders the waker after it).
        being_polled(task);
        let waker = (*waker::waker_ref(&task)).clone();
        let wakers = thread::spawn(move || waker.wake());
        // SAFETY: the test holds references to both tasks.
        let header = unsafe { task.as_ref() };
        // The ready queue links `other` behind `task` (its own write of the link), then the
        // loop pops and polls `task` and settles it.
        header.next.store(other.as_ptr(), Ordering::Relaxed);
        let requeued = header.settle().is_some();
        wakers.join().unwrap();
        let mut drained = Vec::new();
        shared.drain(|p| drained.push(p));
        assert!(
            drained.iter().all(|p| *p == task),
            "the drain followed the ready queue's stale link"
        );
        assert_eq!(
            u32::from(requeued) + drained.len() as u32,
            1,
            "the wake was lost or queued twice"
        );
        for p in drained {
            // SAFETY: each stack entry owns the reference its pusher handed over.
            unsafe { raw::drop_ref(p) };
        }
        release(&shared, task);
        // SAFETY: the test's own reference to `other`, not used afterwards.
        unsafe { raw::drop_ref(other) };
    });
}

/// The last two references of a task dropped on two threads at once: the cell is freed
/// exactly once (a double free aborts the model; a leak leaves the future undropped), and
/// the thread that frees it, with or without the read-modify-write (`drop_refs_in` frees
/// without one when its references are the only ones left), acquired the other's uses.
///
/// The free is seen through the cell's own future (freeing the cell drops it), not through
/// the process-wide count of live cells, which the other models change while this one runs
/// (the test harness runs them on parallel threads).
#[test]
fn loom_last_references_dropped_on_two_threads() {
    /// Counts its drops (model bookkeeping, outside what loom checks: read after the join).
    struct Dropped(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    loom::model(|| {
        let shared = Arc::new(Shared::new().unwrap());
        let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let guard = Dropped(drops.clone());
        let task = task_running(&shared, async move {
            let _guard = guard;
            Ok(())
        });
        // A second reference, owned by a waker that another thread drops.
        let w = (*waker::waker_ref(&task)).clone();
        let other = thread::spawn(move || drop(w));
        // SAFETY: the test's own reference from `task_running`, not used afterwards.
        unsafe { raw::drop_ref(task) };
        other.join().unwrap();
        assert_eq!(
            drops.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the cell was not freed once"
        );
    });
}
