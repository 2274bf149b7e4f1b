//! The first example of MicroPython's asyncio reference, on the host:
//!
//! ```python
//! async def blink(led, period_ms):
//!     while True:
//!         led.on()
//!         await asyncio.sleep_ms(5)
//!         led.off()
//!         await asyncio.sleep_ms(period_ms)
//!
//! async def main(led1, led2):
//!     asyncio.create_task(blink(led1, 700))
//!     asyncio.create_task(blink(led2, 400))
//!     await asyncio.sleep_ms(10_000)
//! ```
//!
//! The LEDs are fake: each state change prints a line with the loop's time in milliseconds.
//! `cargo run -p blink` runs for the real 10 seconds; `cargo run -p blink -- --virtual` runs
//! the same schedule on virtual time and finishes at once, with the same output.
//! `-- --trace blink.json` also records the loop's timeline (each task's run slices and what
//! woke it, the loop's idle periods) and writes it in the Chrome trace format: open the file
//! at <https://ui.perfetto.dev> ("Open trace file") or in `chrome://tracing`. At the end it
//! prints the loop's statistics and a dump of the tasks still pending.

use std::cell::Cell;

use uasyncio::{create_task, get_event_loop, run, sleep_ms, ticks_ms, Result};

/// A fake LED: prints its state changes with a timestamp.
struct Led {
    name: &'static str,
    lit: Cell<bool>,
}

impl Led {
    fn set(&self, on: bool) {
        self.lit.set(on);
        println!(
            "[{:>6} ms] {} {}",
            ticks_ms(),
            self.name,
            if on { "on " } else { "off" }
        );
    }
    fn on(&self) {
        self.set(true);
    }
    fn off(&self) {
        self.set(false);
    }
}

async fn blink(led: Led, period_ms: u32) -> Result<()> {
    loop {
        led.on();
        sleep_ms(5).await?;
        led.off();
        sleep_ms(period_ms).await?;
    }
}

async fn main_task(led1: Led, led2: Led) -> Result<()> {
    uasyncio::current_task()?.set_name("main");
    create_task(blink(led1, 700)).set_name("blink LED1");
    create_task(blink(led2, 400)).set_name("blink LED2");
    sleep_ms(10_000).await
}

/// `--trace <file>`: the file to write the trace to.
fn trace_path() -> Option<std::result::Result<String, &'static str>> {
    let mut args = std::env::args().skip_while(|a| a != "--trace");
    args.next()?;
    Some(args.next().ok_or("--trace needs a file name, e.g. --trace blink.json"))
}

/// Prints `log` records (the default exception handler reports through `log`).
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("{} {}: {}", r.level(), r.target(), r.args());
        }
    }
    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

fn main() -> std::process::ExitCode {
    let _ = log::set_logger(&LOGGER).map(|()| log::set_max_level(log::LevelFilter::Info));
    if std::env::args().any(|a| a == "--virtual") {
        get_event_loop().use_virtual_time(true);
    }
    let trace = match trace_path().transpose() {
        Ok(path) => path,
        Err(msg) => {
            eprintln!("blink: {msg}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if trace.is_some() {
        // 10 s of blinking is about 200 slices; room for much more.
        get_event_loop().start_trace(100_000);
        get_event_loop().measure_polls(true);
    }
    let start = ticks_ms();
    let led = |name| Led {
        name,
        lit: Cell::new(false),
    };
    match run(main_task(led("LED1"), led("LED2"))) {
        Ok(()) => {
            println!(
                "main() returned after {} ms; the blink tasks are still pending, as in MicroPython",
                ticks_ms() - start
            );
            match trace {
                Some(path) => write_trace(&path),
                None => std::process::ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("main() failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Writes the recorded trace to `path`, then prints the statistics and the task dump.
fn write_trace(path: &str) -> std::process::ExitCode {
    let lp = get_event_loop();
    let mut dump = String::new();
    // Pending tasks are dumped from the loop's thread (this one); nothing is running now.
    let _ = uasyncio::task::dump_tasks(&mut dump);
    let Some(trace) = lp.stop_trace() else {
        eprintln!("blink: no trace was recorded");
        return std::process::ExitCode::FAILURE;
    };
    if let Err(e) = std::fs::write(path, trace.to_chrome_json()) {
        eprintln!("blink: cannot write {path}: {e}");
        return std::process::ExitCode::FAILURE;
    }
    print!("{dump}");
    println!(
        "trace: {} events ({} dropped) written to {path}; open it at https://ui.perfetto.dev or chrome://tracing",
        trace.len(),
        trace.dropped
    );
    std::process::ExitCode::SUCCESS
}
