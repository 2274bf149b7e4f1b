//! `Stack::new` warns when `StackConfig::random_seed` was left at its fixed default, and only
//! then. Its own test binary: it installs the process's one `log` logger.

use std::net::Ipv4Addr;

#[path = "common/capture_log.rs"]
mod capture_log;

use uasyncio_net::device::pair::{pair, LinkFaults};
use uasyncio_net::{Stack, StackConfig};

/// The warnings `Stack::new` logs for `cfg` (on one side of an in-memory pair).
fn warnings_for(cfg: StackConfig) -> Vec<String> {
    capture_log::take();
    let (a, _b, _ctl) = pair(LinkFaults::default());
    uasyncio::run(async move {
        let _stack = Stack::new(a, cfg)?;
        Ok(())
    })
    .unwrap();
    capture_log::take()
}

#[test]
fn default_seed_warns_and_a_set_one_does_not() {
    capture_log::install();
    let mac = [0x02, 0, 0, 0, 0, 1];
    let address = Ipv4Addr::new(10, 0, 0, 1);

    let warned = warnings_for(StackConfig::with_static(mac, address, 24));
    assert_eq!(warned.len(), 1, "one warning for the default seed: {warned:?}");
    assert!(
        warned[0].contains("random_seed") && warned[0].contains("hardware RNG"),
        "the warning names the field and the fix: {}",
        warned[0]
    );

    let mut cfg = StackConfig::with_static(mac, address, 24);
    cfg.random_seed = 0x1234_5678;
    assert_eq!(
        warnings_for(cfg),
        Vec::<String>::new(),
        "no warning for a seed the application set"
    );
}
