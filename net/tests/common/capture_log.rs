//! A `log` logger for tests that check what the stack says: it keeps every warning. A test
//! binary has one logger for the process; `install` it once (it is idempotent here).

use std::sync::{Mutex, Once};

/// Keeps every warning logged.
pub struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

/// The binary's logger.
pub static LOGGER: Capture = Capture(Mutex::new(Vec::new()));

/// Installs [`LOGGER`] (warnings and above), once per process.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&LOGGER).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// Takes the warnings kept so far (the next call starts empty).
pub fn take() -> Vec<String> {
    std::mem::take(&mut *LOGGER.0.lock().unwrap_or_else(|e| e.into_inner()))
}
