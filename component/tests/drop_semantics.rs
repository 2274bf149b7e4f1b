//! What dropping an awaitable does, as the docs state it: a dropped `wait_for` or `gather`
//! cancels nothing (the tasks made for it keep running); a dropped `sleep` takes its timer
//! out of the heap (checked by counting timer wake-ups); a task whose `Event::wait` future was
//! dropped can wait on the event again.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

#[cfg(feature = "stats")]
use uasyncio::{create_task, Event};
use uasyncio::{gather, get_event_loop, new_event_loop, run, sleep_ms, wait_for_ms};

#[test]
fn dropped_wait_for_and_gather_leave_their_tasks_running() {
    let _ = new_event_loop();
    let done = Rc::new(Cell::new(0));
    let d = done.clone();
    let outcome = run(async move {
        let inner = {
            let d = d.clone();
            async move {
                sleep_ms(5).await?;
                d.set(d.get() + 1);
                Ok(())
            }
        };
        drop(wait_for_ms(inner, 1u32)); // its 1 ms deadline would have cancelled it
        let parts = (0..3).map(|_| {
            let d = d.clone();
            async move {
                sleep_ms(5).await?;
                d.set(d.get() + 10);
                Ok(())
            }
        });
        drop(gather(parts));
        // Wait until they have all finished, up to 10 s, so a slow or loaded machine is no
        // failure; had dropping cancelled them, the count would stay short of 31.
        for _ in 0..2_000 {
            if d.get() == 31 {
                break;
            }
            sleep_ms(5).await?;
        }
        Ok(d.get())
    });
    assert_eq!(
        outcome,
        Ok(31),
        "the wait_for task and the three gathered tasks ran to their end"
    );
    assert_eq!(done.get(), 31);
}

#[test]
#[cfg(feature = "stats")] // counts the loop's wake-ups
fn dropped_sleep_wakes_nothing_and_a_dropped_event_wait_does_not_stop_the_next() {
    let _ = new_event_loop();
    let outcome = run(async {
        let ev = Rc::new(Event::new());
        // A waiter whose wait future is dropped after one poll, then waits again.
        let woken = Rc::new(Cell::new(0));
        let w = woken.clone();
        let e = ev.clone();
        let t = create_task(async move {
            {
                let mut first = std::pin::pin!(e.wait());
                // Poll once (joins the queue), then drop it.
                std::future::poll_fn(|cx| {
                    let _ = first.as_mut().poll(cx);
                    std::task::Poll::Ready(())
                })
                .await;
            }
            e.wait().await?;
            w.set(w.get() + 1);
            Ok(())
        });
        sleep_ms(1).await?;
        ev.set();
        t.await?;
        // A sleep dropped after arming its timer: its timer leaves the heap, so in the next
        // 100 ms only our own sleep's timer fires (with the stale one, two would).
        let before = get_event_loop().stats().timer_wakes;
        {
            let mut s = std::pin::pin!(sleep_ms(50));
            std::future::poll_fn(|cx| {
                let _ = s.as_mut().poll(cx);
                std::task::Poll::Ready(())
            })
            .await;
        }
        sleep_ms(100).await?;
        assert_eq!(
            get_event_loop().stats().timer_wakes - before,
            1,
            "the dropped sleep's timer fired"
        );
        Ok(woken.get())
    });
    assert_eq!(outcome, Ok(1));
}

/// Not a drop, but the same kind of question: a `sleep` polled when no loop runs on the
/// thread (after `run` returned, by another executor) has no loop to fire its timer, so it
/// answers `RuntimeError("no running event loop")` at once instead of pending for ever.
#[test]
fn a_sleep_polled_with_no_running_loop_is_an_error_not_a_hang() {
    run(async { sleep_ms(1).await }).unwrap();
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut s = std::pin::pin!(sleep_ms(10));
    match s.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Err(uasyncio::Error::Runtime(m))) => assert_eq!(m, "no running event loop"),
        other => panic!("a sleep with no running loop gave {other:?}"),
    }
    // The loop still works, and the refused sleep left no timer behind.
    run(async { sleep_ms(1).await }).unwrap();
    assert_eq!(get_event_loop().live_tasks(), 0);
}
