//! Where the default exception handler's report goes on the host: to standard error when no
//! `log` logger takes error records (what MicroPython does: it prints), through `log` when one
//! does. Each case runs in a child process of this test binary, whose stderr the parent reads
//! (the logger is process-wide, and stderr cannot be captured in-process).

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use uasyncio::{create_task, run, sleep_ms, Error};

const CHILD: &str = "UASYNCIO_DEFAULT_HANDLER_CHILD";

/// A task fails and nobody awaits it: the loop reports it one pass later.
fn unretrieved_error() {
    run(async {
        create_task(async { Err::<(), _>(Error::value("boom")) });
        sleep_ms(1).await
    })
    .unwrap();
}

static LOGGED: AtomicUsize = AtomicUsize::new(0);

struct Counting;

impl log::Log for Counting {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Error
    }
    fn log(&self, r: &log::Record<'_>) {
        if r.target() == "uasyncio" && r.args().to_string().contains("ValueError: boom") {
            LOGGED.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn flush(&self) {}
}

/// Runs the test `name` of this binary alone in a child process with `CHILD` set; its stderr.
fn child_stderr(name: &str) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn child_without_logger() {
    if std::env::var_os(CHILD).is_some() {
        unretrieved_error();
    }
}

#[test]
fn child_with_logger() {
    if std::env::var_os(CHILD).is_some() {
        log::set_logger(&Counting).unwrap();
        log::set_max_level(log::LevelFilter::Error);
        unretrieved_error();
        assert_eq!(LOGGED.load(Ordering::Relaxed), 1, "the report did not reach the logger");
    }
}

#[test]
fn without_a_logger_the_report_goes_to_stderr() {
    let err = child_stderr("child_without_logger");
    assert!(err.contains("Task exception wasn't retrieved"), "stderr: {err}");
    assert!(err.contains("future: <Task"), "stderr: {err}");
    assert!(err.contains("ValueError: boom"), "stderr: {err}");
}

#[test]
fn with_a_logger_the_report_goes_to_the_logger_only() {
    let err = child_stderr("child_with_logger");
    assert!(!err.contains("boom"), "stderr: {err}");
}
