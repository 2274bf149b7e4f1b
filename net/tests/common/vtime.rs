//! Running a test's future on this thread's loop, on virtual time: timers fire as soon as the
//! loop has nothing else to do, so restart timers, keep-alives and lease times cost no wall
//! time, and a hang fails at the limit instead of stalling the suite.

use uasyncio::{get_event_loop, wait_for_ms};

/// Runs `f` on virtual time under a limit of `secs` of loop time; panics at the limit.
pub fn run<T: 'static>(secs: u32, f: impl std::future::Future<Output = T> + 'static) -> T {
    get_event_loop().use_virtual_time(true);
    let r = uasyncio::run(async move { wait_for_ms(async move { Ok(f.await) }, secs * 1000).await });
    get_event_loop().use_virtual_time(false);
    match r {
        Ok(v) => v,
        Err(e) => panic!("test did not finish within its {secs} s (virtual) limit: {e}"),
    }
}
