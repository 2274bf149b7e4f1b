//! `wakeups`: what an idle loop costs on the kernel, counted in the loop's wake-ups
//! (`LoopStats::sleeps`, one per block in the loop's semaphore) on the real FreeRTOS clock
//! (1 ms tick, microseconds inside it from SysTick):
//! 1. a task sleeping 50 ms: the loop blocks once, until the deadline (nothing ticks);
//! 2. two timers whose deadlines differ by microseconds but fall in the same tick: one
//!    wake-up fires both (the port rounds a wait up to the tick boundary);
//! 3. timer slack 5 ms, timers at 10, 12, 14, 20 ms: two wake-ups (10 + 5 covers 10, 12
//!    and 14, give or take the tick the wait is rounded up to; 20 + 5 the last), none before
//!    its deadline.

use core::future::Future;
use core::pin::pin;
use core::task::Poll;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use uasyncio::{create_task, get_event_loop, run, sleep_ms, Result};

use crate::println;

fn sleeps() -> u64 {
    get_event_loop().stats().sleeps
}

async fn cases() -> Result<core::result::Result<(), String>> {
    // 1. Nothing due in between: one block, until the deadline.
    let before = sleeps();
    sleep_ms(50).await?;
    let n = sleeps() - before;
    println!("wakeups: one task sleeping 50 ms: {n} wake-up(s)");
    if n != 1 {
        return Ok(Err(format!("a 50 ms sleep took {n} wake-ups, expected 1")));
    }

    // 2. Same tick. `sleep_ms(1)` returns just after a tick boundary (the loop wakes on the
    // tick), so both deadlines, microseconds apart, lie in one tick, far from its end.
    sleep_ms(1).await?;
    let before = sleeps();
    let (mut a, mut b) = (pin!(sleep_ms(5)), pin!(sleep_ms(5)));
    let mut armed = [0u64; 2];
    let mut done = [false; 2];
    core::future::poll_fn(|cx| {
        for (i, f) in [a.as_mut(), b.as_mut()].into_iter().enumerate() {
            if done[i] {
                continue;
            }
            if armed[i] == 0 {
                armed[i] = rtos_shims::now_us();
            }
            if let Poll::Ready(r) = f.poll(cx) {
                done[i] = true;
                if r.is_err() {
                    return Poll::Ready(r);
                }
            }
        }
        if done == [true; 2] {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await?;
    let n = sleeps() - before;
    println!(
        "wakeups: two timers armed {} us apart in one tick: {n} wake-up(s)",
        armed[1] - armed[0]
    );
    if armed[1] <= armed[0] {
        return Ok(Err(String::from(
            "the two deadlines are equal: the case proves nothing",
        )));
    }
    if n != 1 {
        return Ok(Err(format!("two timers due in one tick took {n} wake-ups, expected 1")));
    }

    // 3. Timer slack.
    get_event_loop().set_timer_slack_us(5_000);
    let before = sleeps();
    let mut tasks = Vec::new();
    for ms in [10u32, 12, 14, 20] {
        tasks.push(create_task(async move {
            let t0 = rtos_shims::now_us();
            sleep_ms(ms).await?;
            Ok(rtos_shims::now_us() - t0 >= u64::from(ms) * 1000)
        }));
    }
    let mut on_time = 0;
    for t in tasks {
        on_time += u32::from(t.await?);
    }
    get_event_loop().set_timer_slack_us(0);
    let n = sleeps() - before;
    println!("wakeups: slack 5 ms, timers at 10, 12, 14, 20 ms: {n} wake-up(s), {on_time} of 4 not early");
    if on_time != 4 {
        return Ok(Err(String::from("a timer fired before its deadline")));
    }
    if n != 2 {
        return Ok(Err(format!(
            "four timers with 5 ms of slack took {n} wake-ups, expected 2"
        )));
    }
    Ok(Ok(()))
}

/// The `wakeups` program: 0 when every count is as expected.
pub fn run_all() -> i32 {
    match run(cases()) {
        Ok(Ok(())) => {
            println!("wakeups: ok");
            0
        }
        Ok(Err(e)) => {
            println!("wakeups: {e}");
            1
        }
        Err(e) => {
            println!("wakeups: {e}");
            1
        }
    }
}
