//! `Stack::new` warns when `StackConfig::random_seed` was left at its fixed default, and only
//! then. Its own test binary: it installs the process's one `log` logger.

use std::net::Ipv4Addr;
use std::sync::Mutex;

use uasyncio_net::device::pair::{pair, LinkFaults};
use uasyncio_net::{Stack, StackConfig};

/// Keeps every warning logged.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            self.0.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture(Mutex::new(Vec::new()));

/// The warnings `Stack::new` logs for `cfg` (on one side of an in-memory pair).
fn warnings_for(cfg: StackConfig) -> Vec<String> {
    LOGGER.0.lock().unwrap().clear();
    let (a, _b, _ctl) = pair(LinkFaults::default());
    uasyncio::run(async move {
        let _stack = Stack::new(a, cfg)?;
        Ok(())
    })
    .unwrap();
    std::mem::take(&mut *LOGGER.0.lock().unwrap())
}

#[test]
fn default_seed_warns_and_a_set_one_does_not() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
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
