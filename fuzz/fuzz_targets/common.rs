//! Shared by the targets: two stacks on the in-memory pair, under virtual time.

use std::net::Ipv4Addr;

use uasyncio::{get_event_loop, wait_for_ms};
use uasyncio_net::device::pair::{pair, LinkControl, LinkFaults};
use uasyncio_net::{Stack, StackConfig};

pub const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// Virtual seconds an input may take before it counts as a hang.
pub const HANG_LIMIT_S: u32 = 4 * 3600;

pub fn stacks(faults: LinkFaults) -> (Stack, Stack, LinkControl) {
    let (da, db, ctl) = pair(faults);
    let ca = StackConfig::with_static([2, 0, 0, 0, 0, 1], A, 24);
    let mut cb = StackConfig::with_static([2, 0, 0, 0, 0, 2], B, 24);
    cb.random_seed ^= 0x55;
    (Stack::new(da, ca).unwrap(), Stack::new(db, cb).unwrap(), ctl)
}

/// Run `f` on virtual time; a run longer than [`HANG_LIMIT_S`] virtual seconds panics.
pub fn run_virtual<T: 'static>(f: impl std::future::Future<Output = T> + 'static) -> T {
    get_event_loop().use_virtual_time(true);
    let r = uasyncio::run(async move { wait_for_ms(async move { Ok(f.await) }, HANG_LIMIT_S * 1000).await });
    get_event_loop().use_virtual_time(false);
    match r {
        Ok(v) => v,
        Err(e) => panic!("hang: no end within {HANG_LIMIT_S} virtual seconds ({e})"),
    }
}
