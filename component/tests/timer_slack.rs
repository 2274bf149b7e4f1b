//! Timer slack (`Loop::set_timer_slack_us`) and the idle loop's wake-ups.
//!
//! Virtual time pins the exact firing times; the real-clock tests count the loop's wake-ups
//! (`LoopStats::sleeps`) with wide margins: a second of slack against a spread of 10 ms, and
//! every deadline 200 ms or more ahead when it is armed, so only a stall of the loop thread
//! that long, in a window of about a millisecond, could change a count.

use std::cell::RefCell;
use std::rc::Rc;
#[cfg(feature = "stats")]
use std::time::Instant;

use uasyncio::{create_task, get_event_loop, run, sleep_ms, ticks_ms};
#[cfg(feature = "stats")]
use uasyncio::{wait_for_ms, Event};

/// Runs `f` on a fresh thread (so a fresh loop: settings do not leak between tests).
fn on_own_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("test thread panicked")
}

#[test]
fn virtual_time_slack_fires_every_timer_due_within_it_in_one_wake_up() {
    on_own_thread(|| {
        let lp = get_event_loop();
        lp.use_virtual_time(true);
        lp.set_timer_slack_us(5_000);
        let log = Rc::new(RefCell::new(Vec::new()));
        run({
            let log = log.clone();
            async move {
                let mut tasks = Vec::new();
                for ms in [10u32, 12, 14, 16, 30] {
                    let log = log.clone();
                    tasks.push(create_task(async move {
                        sleep_ms(ms).await?;
                        log.borrow_mut().push((ms, ticks_ms()));
                        Ok(())
                    }));
                }
                for t in tasks {
                    t.await?;
                }
                Ok(())
            }
        })
        .unwrap();
        // 10, 12 and 14 fall within 10 + 5: one wake-up at 15 fires all three; 16 starts the
        // next (16 + 5 = 21); 30 fires at 35. Never before its deadline, at most 5 ms after.
        assert_eq!(*log.borrow(), vec![(10, 15), (12, 15), (14, 15), (16, 21), (30, 35)]);
    });
}

#[test]
fn virtual_time_without_slack_fires_at_each_deadline() {
    on_own_thread(|| {
        let lp = get_event_loop();
        lp.use_virtual_time(true);
        assert_eq!(lp.timer_slack_us(), 0);
        let woke = run(async {
            let a = create_task(async { sleep_ms(10).await.map(|_| ticks_ms()) });
            let b = create_task(async { sleep_ms(12).await.map(|_| ticks_ms()) });
            Ok((a.await?, b.await?))
        })
        .unwrap();
        assert_eq!(woke, (10, 12));
    });
}

#[test]
#[cfg(feature = "stats")] // counts the loop's wake-ups
fn slack_does_not_delay_a_loop_that_is_awake() {
    // A task yields in a loop while a 10 ms timer runs with 200 s of slack: the loop never
    // sleeps, so it fires the timer in the first pass after its deadline instead of holding
    // it back for the slack. (A loop that held timers back for the slack would give up at
    // the 120 s bound, which is there only so that such a build fails instead of hanging.)
    on_own_thread(|| {
        let lp = get_event_loop();
        lp.set_timer_slack_us(200_000_000);
        let before = lp.stats().sleeps;
        let fired = run(async {
            let ev = Rc::new(Event::new());
            let e = ev.clone();
            let t = create_task(async move {
                sleep_ms(10).await?;
                e.set();
                Ok(())
            });
            let t0 = Instant::now();
            while !ev.is_set() && t0.elapsed().as_secs() < 120 {
                sleep_ms(0).await?;
            }
            t.await?;
            Ok(ev.is_set())
        });
        assert_eq!(fired, Ok(true));
        assert_eq!(lp.stats().sleeps - before, 0, "the loop slept while a task was ready");
    });
}

#[test]
#[cfg(feature = "stats")] // counts the loop's wake-ups
fn real_clock_slack_coalesces_timers_into_one_wake_up_and_none_fires_early() {
    on_own_thread(|| {
        let lp = get_event_loop();
        lp.set_timer_slack_us(1_000_000);
        let before = lp.stats().sleeps;
        let early = run(async {
            let mut tasks = Vec::new();
            // 200..209 ms: long enough that every timer is still ahead when the loop first
            // goes idle, even if this thread is held off the CPU for a while (a loaded
            // machine); with all of them already due it would never sleep.
            for i in 0..50u32 {
                let ms = 200 + i % 10;
                tasks.push(create_task(async move {
                    let t0 = Instant::now();
                    sleep_ms(ms).await?;
                    Ok(t0.elapsed().as_micros() < u128::from(ms) * 1000)
                }));
            }
            let mut early = 0;
            for t in tasks {
                early += usize::from(t.await?);
            }
            Ok(early)
        })
        .unwrap();
        assert_eq!(early, 0, "a timer fired before its deadline");
        // 50 timers due 200..209 ms after they were armed, a second of slack: the loop slept
        // once, until the first deadline plus the slack, and fired them all.
        assert_eq!(lp.stats().sleeps - before, 1);
    });
}

#[test]
#[cfg(feature = "stats")] // counts the loop's wake-ups
fn real_clock_idle_loop_wakes_once_per_deadline_and_not_in_between() {
    // Nothing ticks: a loop whose only task sleeps 200 ms blocks once, until the deadline.
    on_own_thread(|| {
        let lp = get_event_loop();
        let before = lp.stats().sleeps;
        run(async { sleep_ms(200).await }).unwrap();
        assert_eq!(lp.stats().sleeps - before, 1);
        // And a timeout that never fires (the awaited task ends first) costs no wake-up of
        // its own: its timer leaves the heap with the wait_for.
        let before = lp.stats().sleeps;
        run(async { wait_for_ms(sleep_ms(300), 60_000).await }).unwrap();
        assert_eq!(lp.stats().sleeps - before, 1);
    });
}
