//! Size: the core runtime plus `Event`, `Lock`, `ThreadSafeFlag`, `gather`, `wait_for`.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::rc::Rc;

#[path = "../../common/stubs.rs"]
mod stubs;

use uasyncio::{create_task, gather, run, sleep_ms, wait_for, Event, Lock, ThreadSafeFlag};

// Event and Lock are loop-local (not Sync): shared through Rc. ThreadSafeFlag is Sync.
static FLAG: ThreadSafeFlag = ThreadSafeFlag::new();

#[no_mangle]
pub extern "C" fn size_entry() -> i32 {
    stubs::keep_all();
    let r = run(async {
        let (event, lock) = (Rc::new(Event::new()), Rc::new(Lock::new()));
        let (e, l) = (event.clone(), lock.clone());
        let waiter = create_task(async move {
            e.wait().await?;
            FLAG.wait().await?;
            let guard = l.acquire().await?;
            sleep_ms(core::hint::black_box(1)).await?;
            drop(guard);
            Ok(1u32)
        });
        event.set();
        FLAG.set();
        let tasks = alloc::vec![
            create_task(async { sleep_ms(core::hint::black_box(2)).await.map(|_| 2u32) }),
            create_task(async { Ok(3u32) }),
        ];
        let sum: u32 = gather(tasks).await?.iter().sum();
        let w = wait_for(waiter, core::hint::black_box(0.5f32)).await?;
        Ok(sum + w)
    });
    match r {
        Ok(v) => v as i32,
        Err(_) => -1,
    }
}
