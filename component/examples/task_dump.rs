//! A loop with a few named tasks, for looking at them from a debugger.
//!
//! `scripts/gdb-task-dump.sh` runs it under gdb, stops in `checkpoint` (on the loop's
//! thread, inside a task) and types `call uasyncio_log_tasks()`: the dump of
//! `uasyncio::task::dump_tasks` appears on stderr. Then the program prints the same dump
//! itself, each line prefixed `self: `.

use std::rc::Rc;

use uasyncio::{create_task, run, sleep_ms, Event};

/// Prints `log` records on stderr (the C API's `uasyncio_log_tasks` logs at info level).
struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("{}", r.args());
        }
    }
    fn flush(&self) {}
}

static LOGGER: Stderr = Stderr;

/// Where a debugger stops: on the loop's thread, with the tasks below suspended.
#[inline(never)]
#[no_mangle]
pub extern "C" fn checkpoint() {
    std::hint::black_box(());
}

fn main() {
    // Keep the C API's dump functions in the binary for the debugger (nothing else calls
    // them here; a firmware that links the C API keeps them the same way, or calls them).
    std::hint::black_box(uasyncio::ffi::uasyncio_log_tasks as extern "C" fn() -> core::ffi::c_int);
    let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(log::LevelFilter::Info));
    let result = run(async {
        uasyncio::current_task()?.set_name("main");
        let ready = Rc::new(Event::new());
        let r2 = ready.clone();
        let rx = create_task(async move { r2.wait().await });
        rx.set_name("modem rx");
        // Still asleep at the checkpoint however late this thread gets there (a loaded
        // machine); cancelled after the dump, so the program does not wait for it.
        let poll = create_task(sleep_ms(60_000));
        poll.set_name("signal poller");
        sleep_ms(1).await?;
        checkpoint();
        let mut dump = String::new();
        let _ = uasyncio::task::dump_tasks(&mut dump);
        for line in dump.lines() {
            println!("self: {line}");
        }
        ready.set();
        rx.await?;
        poll.cancel()?;
        match poll.await {
            Err(e) if e.is_cancelled() => Ok(()),
            other => other,
        }
    });
    if let Err(e) = result {
        eprintln!("task_dump: {e}");
        std::process::exit(1);
    }
}
