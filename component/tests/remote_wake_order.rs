//! Tasks woken from another thread run in the order of their wakes, however the wakes fall
//! into the loop's wake-ups: the first task a wake-up takes runs without passing through the
//! ready queue (`LoopCore::idle`), the others after it, in order.
//!
//! A thread sets three flags back to back while the loop sleeps, so most rounds hand the loop
//! all three in one wake-up (the first task outside the queue, two in it); a round whose sets
//! fall into separate wake-ups must keep the order too. No round depends on the timing to pass.
#![cfg(not(loom))]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use uasyncio::{create_task, run, sleep_ms, ThreadSafeFlag};

fn rounds() -> u32 {
    if cfg!(miri) {
        5
    } else {
        200
    }
}

#[test]
fn tasks_woken_from_a_thread_run_in_the_order_of_their_wakes() {
    let flags: Arc<[ThreadSafeFlag; 3]> =
        Arc::new([ThreadSafeFlag::new(), ThreadSafeFlag::new(), ThreadSafeFlag::new()]);
    run(async move {
        for round in 0..rounds() {
            let order = Rc::new(RefCell::new(Vec::new()));
            let mut tasks = Vec::new();
            for i in 0..3 {
                let (flags, order) = (flags.clone(), order.clone());
                tasks.push(create_task(async move {
                    flags[i].wait().await?;
                    order.borrow_mut().push(i);
                    Ok(())
                }));
            }
            // Every task waits on its flag before the thread sets them.
            sleep_ms(0).await?;
            let setter = {
                let flags = flags.clone();
                std::thread::spawn(move || {
                    for flag in flags.iter() {
                        flag.set();
                    }
                })
            };
            for task in tasks {
                task.await?;
            }
            setter
                .join()
                .map_err(|_| uasyncio::Error::runtime("the setter panicked"))?;
            assert_eq!(*order.borrow(), [0, 1, 2], "round {round}");
        }
        Ok(())
    })
    .unwrap();
}
