//! The conformance suite (`tests/conformance`) on the real FreeRTOS kernel (POSIX simulator
//! port): every case in its own process, in a FreeRTOS task of its own scheduler.

use freertos_posix_tests::{main as run_cases, Case, Expect};

fn main() {
    let cases: Vec<Case> = uasyncio_conformance::cases()
        .into_iter()
        .map(|c| Case {
            name: c.name,
            run: c.run,
            expect: Expect::Success,
        })
        .collect();
    run_cases(&cases)
}
