//! Loom models of `ThreadSafeQueue` (`sync::channel`): every value cell is a loom cell, so a
//! read racing a write fails the model. Run with:
//! `RUSTFLAGS="--cfg loom" cargo test -p uasyncio --lib --release loom_queue`

use std::boxed::Box;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::vec::Vec;

use core::future::Future;

use loom::thread;

use super::channel::{ThreadSafeQueue, TryRecvError, TrySendError};
use crate::loom_tests::{being_polled, release, runs_again, task_on};
use crate::raw::Shared;
use crate::scheduler::waker;

/// Two producers, two items each, into a one-slot queue (full on most sends, the slot reused
/// while they race), the consumer taking twice meanwhile and the rest afterwards: it gets
/// exactly the items whose send returned `Ok`, each producer's in order, and no cell access
/// races (loom checks the cells). No thread spins, so loom can explore every interleaving.
#[test]
fn loom_queue_two_producers_one_slot() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let q = Arc::new(ThreadSafeQueue::<(u8, u8)>::new(1).unwrap());
        let producers: Vec<_> = (0..2u8)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || {
                    let mut sent = Vec::new();
                    for i in 0..2 {
                        match q.try_send((p, i)) {
                            Ok(()) => sent.push(i),
                            Err(TrySendError::Full(back)) => assert_eq!(back, (p, i)),
                            Err(TrySendError::Closed(_)) => panic!("closed"),
                        }
                    }
                    sent
                })
            })
            .collect();
        let mut got: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..2 {
            if let Ok((p, i)) = q.try_recv() {
                got[usize::from(p)].push(i);
            }
        }
        let sent: Vec<Vec<u8>> = producers.into_iter().map(|p| p.join().unwrap()).collect();
        while let Ok((p, i)) = q.try_recv() {
            got[usize::from(p)].push(i);
        }
        assert_eq!(q.try_recv(), Err(TryRecvError::Empty));
        for p in 0..2 {
            assert_eq!(got[p], sent[p], "producer {p}: lost, invented or reordered");
        }
    });
}

/// Two producers race for two slots of a capacity-2 queue while the consumer takes: the
/// capacity is never exceeded and the items in flight are dropped with the queue.
#[test]
fn loom_queue_capacity_is_exact_and_drop_frees() {
    loom::model(|| {
        let item = Arc::new(());
        let q = Arc::new(ThreadSafeQueue::<Arc<()>>::new(2).unwrap());
        let producers: Vec<_> = (0..2)
            .map(|_| {
                let (q, item) = (q.clone(), item.clone());
                thread::spawn(move || {
                    let mut sent = 0;
                    for _ in 0..2 {
                        if q.try_send(item.clone()).is_ok() {
                            sent += 1;
                        }
                    }
                    sent
                })
            })
            .collect();
        let taken = usize::from(q.try_recv().is_ok());
        let sent: usize = producers.into_iter().map(|p| p.join().unwrap()).sum();
        // At most 2 held at once: at most 2 sends succeed without a take, 3 with one.
        assert!(sent >= 2 && sent <= 2 + taken, "sent {sent}, taken {taken}");
        assert_eq!(q.len(), sent - taken);
        drop(q);
        assert_eq!(Arc::strong_count(&item), 1, "an item leaked");
    });
}

/// `close` races a send: either the send succeeded and the consumer receives the item before
/// `Closed`, or the send got its item back. Never both, never neither.
#[test]
fn loom_queue_close_races_send() {
    loom::model(|| {
        let q = Arc::new(ThreadSafeQueue::<u8>::new(2).unwrap());
        let sender = {
            let q = q.clone();
            thread::spawn(move || q.try_send(7).is_ok())
        };
        let closer = {
            let q = q.clone();
            thread::spawn(move || q.close())
        };
        let mut received = 0;
        loop {
            match q.try_recv() {
                Ok(v) => {
                    assert_eq!(v, 7);
                    received += 1;
                }
                Err(TryRecvError::Closed) => break,
                Err(TryRecvError::Empty) => thread::yield_now(),
                Err(TryRecvError::Busy) => panic!("busy"),
            }
        }
        let sent = sender.join().unwrap();
        closer.join().unwrap();
        assert_eq!(
            received,
            usize::from(sent),
            "an item sent with Ok was lost (or invented)"
        );
    });
}

/// A send from another thread races the receiver's poll: afterwards, either the poll returned
/// the item, or the receiving task is scheduled and its next poll returns it.
#[test]
fn loom_queue_recv_wake_is_never_lost() {
    loom::model(|| {
        let shared = Arc::new(Shared::new().unwrap());
        let task = task_on(&shared);
        let q = Arc::new(ThreadSafeQueue::<u8>::new(1).unwrap());
        let sender = {
            let q = q.clone();
            thread::spawn(move || q.try_send(5).unwrap())
        };
        let waker = waker::waker_ref(&task);
        let mut recv = Box::pin(q.recv());
        being_polled(task);
        let first = recv.as_mut().poll(&mut Context::from_waker(&waker));
        sender.join().unwrap();
        match first {
            Poll::Ready(r) => assert_eq!(r, Ok(Some(5))),
            Poll::Pending => {
                assert!(
                    runs_again(&shared, task),
                    "the send did not schedule the receiving task"
                );
                let second = recv.as_mut().poll(&mut Context::from_waker(&waker));
                assert_eq!(second, Poll::Ready(Ok(Some(5))));
            }
        }
        drop(recv);
        assert_eq!(q.try_recv(), Err(TryRecvError::Empty), "the role was given back");
        release(&shared, task);
    });
}

/// `close` from another thread wakes a waiting receiver, which then ends with `None`.
#[test]
fn loom_queue_close_wakes_the_receiver() {
    loom::model(|| {
        let shared = Arc::new(Shared::new().unwrap());
        let task = task_on(&shared);
        let q = Arc::new(ThreadSafeQueue::<u8>::new(1).unwrap());
        let closer = {
            let q = q.clone();
            thread::spawn(move || q.close())
        };
        let waker = waker::waker_ref(&task);
        let mut recv = Box::pin(q.recv());
        being_polled(task);
        let first = recv.as_mut().poll(&mut Context::from_waker(&waker));
        closer.join().unwrap();
        if first.is_pending() {
            assert!(runs_again(&shared, task), "close did not schedule the receiving task");
            let second = recv.as_mut().poll(&mut Context::from_waker(&waker));
            assert_eq!(second, Poll::Ready(Ok(None)));
        } else {
            assert_eq!(first, Poll::Ready(Ok(None)));
        }
        drop(recv);
        release(&shared, task);
    });
}
