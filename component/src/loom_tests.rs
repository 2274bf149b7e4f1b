//! Loom models of the cross-context wake path (`scheduler::shared`) and of the waker slot
//! behind `ThreadSafeFlag` (`sync::atomic_waker`). Run with:
//! `RUSTFLAGS="--cfg loom" cargo test -p uasyncio --lib --release loom_`

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::vec::Vec;

use core::future::Future;
use core::pin::pin;
use core::ptr::NonNull;

use loom::sync::{Condvar, Mutex};
use loom::thread;

use crate::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use crate::scheduler::shared::{IdleState, Linked, WakeStack};
use crate::sync::ThreadSafeFlag;

struct Node {
    next: AtomicPtr<Node>,
}

impl Linked for Node {
    fn next(&self) -> &AtomicPtr<Self> {
        &self.next
    }
}

/// A binary semaphore on loom's primitives, like the ports' (`take` has no timeout here).
struct Sem {
    given: Mutex<bool>,
    cond: Condvar,
}

impl Sem {
    fn give(&self) {
        *self.given.lock().unwrap() = true;
        self.cond.notify_one();
    }
    fn take(&self) {
        let mut given = self.given.lock().unwrap();
        while !*given {
            given = self.cond.wait(given).unwrap();
        }
        *given = false;
    }
}

struct Loop {
    stack: WakeStack<Node>,
    idle: IdleState,
    sem: Sem,
}

impl Loop {
    fn wake(&self, node: NonNull<Node>) {
        assert!(self.stack.push(node).is_ok());
        if self.idle.pend() {
            self.sem.give();
        }
    }
}

/// Two wakers on other threads each push a task; the loop, which sleeps whenever it finds
/// nothing, must receive both. A lost wake shows up as a deadlock, which loom reports.
#[test]
fn loom_no_lost_wake() {
    // Two preemptions cover the interleavings that matter (a push racing the CAS to
    // SLEEPING, a give racing the take) and keep the model under a minute.
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(2);
    model.check(|| {
        let lp = Arc::new(Loop {
            stack: WakeStack::new(),
            idle: IdleState::new(),
            sem: Sem {
                given: Mutex::new(false),
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
            lp.stack.drain(|_| received += 1);
            if received < 2 && lp.idle.try_sleep() {
                lp.sem.take();
                lp.idle.woke();
            }
        }
        for h in handles {
            h.join().unwrap();
        }
    });
}

struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A `set()` from another thread races the waiter's poll: afterwards, either the poll saw
/// the flag, or the waiter's waker was woken (so it will poll again and see it).
#[test]
fn loom_flag_set_is_never_lost() {
    loom::model(|| {
        let flag = Arc::new(ThreadSafeFlag::new());
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let setter = {
            let flag = flag.clone();
            thread::spawn(move || flag.set())
        };
        let mut wait = pin!(flag.wait());
        let first = wait.as_mut().poll(&mut Context::from_waker(&waker));
        setter.join().unwrap();
        if first == Poll::Pending {
            assert!(
                counter.0.load(Ordering::SeqCst) > 0,
                "set() after the registration did not wake"
            );
            let second = wait.as_mut().poll(&mut Context::from_waker(&waker));
            assert_eq!(second, Poll::Ready(Ok(())));
        }
        assert!(!flag.is_set(), "the flag clears itself when wait() returns");
    });
}

/// Two setters and a waiter that re-registers: sets collapse, none is lost.
#[test]
fn loom_two_setters_one_waiter() {
    loom::model(|| {
        let flag = Arc::new(ThreadSafeFlag::new());
        let done = Arc::new(AtomicBool::new(false));
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let setters: Vec<_> = (0..2)
            .map(|_| {
                let flag = flag.clone();
                thread::spawn(move || flag.set())
            })
            .collect();
        let mut wait = pin!(flag.wait());
        let mut woken_seen = 0;
        let mut ready = false;
        for _ in 0..3 {
            if let Poll::Ready(r) = wait.as_mut().poll(&mut Context::from_waker(&waker)) {
                assert_eq!(r, Ok(()));
                ready = true;
                break;
            }
            let now = counter.0.load(Ordering::SeqCst);
            if now == woken_seen {
                break;
            }
            woken_seen = now;
        }
        for s in setters {
            s.join().unwrap();
        }
        if !ready {
            // Both sets happened; the waiter must have been woken for the last one.
            assert!(counter.0.load(Ordering::SeqCst) > woken_seen || flag.is_set());
        }
        done.store(true, Ordering::SeqCst);
    });
}
