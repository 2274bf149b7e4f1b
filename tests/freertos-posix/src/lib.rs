//! A harness for running Rust code on the real FreeRTOS kernel (POSIX simulator port).
//!
//! FreeRTOS starts its scheduler once per process: `vTaskEndScheduler()` cannot be followed
//! by a second `vTaskStartScheduler()`, and a panic inside a task aborts the process. So every
//! case runs in its own child process: [`main`] re-executes the current binary with
//! `FREERTOS_POSIX_CASE=<name>`, the child starts one scheduler with the case in a task, and
//! the parent collects the verdicts and prints `N passed, N failed`.
//!
//! A case either must return `Ok(())` (exit code 0) or, for the misuse checks, must abort
//! with a given message on stderr ([`Expect::Abort`]).
//!
//! The binary's global allocator is the FreeRTOS heap ([`rtos_shims::FreeRtosHeap`], heap_4 in
//! a 64 MiB static array), in the parent too: the parent is single-threaded (it polls its
//! children and sends their output to files), which is what heap_4 needs before a scheduler
//! runs.
#![deny(missing_docs, unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use std::ffi::c_void;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a case must do to pass.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// Return `Ok(())`.
    Success,
    /// Abort the process, printing this text on stderr.
    Abort(&'static str),
}

/// One test case: it runs in a FreeRTOS task of its own process.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Unique name (also the value of `FREERTOS_POSIX_CASE` in the child).
    pub name: &'static str,
    /// The body, run in a task of priority [`CASE_PRIORITY`].
    pub run: fn() -> Result<(), String>,
    /// The verdict it must reach.
    pub expect: Expect,
}

/// The priority of the task that runs a case (1..7 are free on our configuration).
pub const CASE_PRIORITY: u8 = 2;
/// A guard against a hung case, not a speed check: ten times what a loaded 2-core machine needs.
const CASE_TIMEOUT: Duration = Duration::from_secs(900);
const CASE_ENV: &str = "FREERTOS_POSIX_CASE";

/// The FreeRTOS calls the harness and the tests make directly (real functions, not macros).
pub mod sys {
    use std::ffi::c_void;

    extern "C" {
        /// Starts the scheduler; returns only after `vTaskEndScheduler`.
        pub fn vTaskStartScheduler();
        /// Blocks the calling task for `ticks` ticks (`TickType_t` is 64-bit on this port).
        pub fn vTaskDelay(ticks: u64);
        /// Suspends the scheduler (no task switch until `xTaskResumeAll`).
        pub fn vTaskSuspendAll();
        /// Free bytes in the FreeRTOS heap.
        pub fn xPortGetFreeHeapSize() -> usize;
        /// Installs the body of `vApplicationTickHook` (ports/freertos/posix/hooks.c).
        pub fn posix_set_tick_hook(hook: Option<extern "C" fn()>);
        /// `pvPortMalloc` failures so far.
        pub fn posix_malloc_failures() -> u64;
        /// `uxTaskPriorityGet(NULL)`-style query for any task (`UBaseType_t` is 64-bit here).
        pub fn uxTaskPriorityGet(task: *mut c_void) -> u64;
    }
}

/// The FreeRTOS heap, plus a never-freeing arena for the one thing that allocates in the
/// tick interrupt: a panic there (the misuse cases), whose message std formats with a few
/// small allocations before the process aborts. `FreeRtosHeap` itself refuses interrupt
/// context, as it must on a target.
struct HarnessHeap;

const ARENA_SIZE: usize = 256 * 1024;
static ARENA: Arena = Arena(std::cell::UnsafeCell::new([0; ARENA_SIZE]));
static ARENA_USED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[repr(align(4096))]
struct Arena(std::cell::UnsafeCell<[u8; ARENA_SIZE]>);
// SAFETY: disjoint slices of the arena are handed out through an atomic bump pointer.
unsafe impl Sync for Arena {}

fn in_arena(ptr: *mut u8) -> bool {
    let start = ARENA.0.get() as usize;
    (start..start + ARENA_SIZE).contains(&(ptr as usize))
}

// SAFETY: FreeRtosHeap's blocks are returned to it; arena blocks are disjoint (atomic bump
// with alignment), never reused, and never passed to FreeRtosHeap.
unsafe impl std::alloc::GlobalAlloc for HarnessHeap {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if !rtos_shims::in_isr() {
            // SAFETY: forwarded with the caller's valid layout.
            return unsafe { rtos_shims::FreeRtosHeap.alloc(layout) };
        }
        let base = ARENA.0.get() as usize;
        let mut used = ARENA_USED.load(std::sync::atomic::Ordering::Relaxed);
        loop {
            let start = (base + used + layout.align() - 1) & !(layout.align() - 1);
            let end = start + layout.size();
            if end > base + ARENA_SIZE {
                return std::ptr::null_mut();
            }
            match ARENA_USED.compare_exchange(
                used,
                end - base,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            ) {
                Ok(_) => return start as *mut u8,
                Err(now) => used = now,
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        if !in_arena(ptr) {
            // SAFETY: not an arena block, so FreeRtosHeap allocated it with this layout.
            unsafe { rtos_shims::FreeRtosHeap.dealloc(ptr, layout) }
        }
    }
}

#[global_allocator]
static HEAP: HarnessHeap = HarnessHeap;

/// Blocks the calling task for `ms` milliseconds (1 tick = 1 ms here).
pub fn delay_ms(ms: u64) {
    // SAFETY: a FreeRTOS call from a task (cases run in tasks).
    unsafe { sys::vTaskDelay(ms) }
}

/// Ends the process from inside a task, with all signals (ticks) masked so that no context
/// switch can suspend the exiting thread half way.
fn finish(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: the critical section is never released: the process ends right after.
    let _ = unsafe { critical_section::acquire() };
    std::process::exit(code)
}

fn run_child(case: &Case) -> ! {
    // A panic in a task (or in the tick hook) ends the process at once, message first: the
    // default hook would go on to unwind into C frames and print a second panic.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("panic: {info}");
        let _ = std::io::stderr().flush();
        std::process::abort()
    }));
    let run = case.run;
    let name = case.name;
    let body = Box::new(move || {
        let code = match run() {
            Ok(()) => 0,
            Err(message) => {
                eprintln!("case {name}: {message}");
                1
            }
        };
        finish(code)
    });
    let config = rtos_shims::ThreadConfig {
        name: "case",
        stack_size: 64 * 1024,
        priority: CASE_PRIORITY,
    };
    if let Err(e) = rtos_shims::spawn_thread(config, body) {
        eprintln!("case {name}: cannot create its task: {e}");
        std::process::exit(2);
    }
    // SAFETY: called once, from the process's main thread; the case's task ends the process.
    unsafe { sys::vTaskStartScheduler() };
    eprintln!("case {name}: the scheduler returned");
    std::process::exit(3)
}

/// Runs the cases: in the parent, each in a child process; in a child, the one named by
/// `FREERTOS_POSIX_CASE`. Command-line arguments that are not options filter cases by
/// substring. Exits non-zero if any case failed.
pub fn main(cases: &[Case]) -> ! {
    if let Ok(name) = std::env::var(CASE_ENV) {
        match cases.iter().find(|c| c.name == name) {
            Some(case) => run_child(case),
            None => {
                eprintln!("no case named {name}");
                std::process::exit(2)
            }
        }
    }
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("cannot find the test binary: {e}");
            std::process::exit(2)
        }
    };
    let dir = std::env::temp_dir().join(format!("freertos-posix-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(2)
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    for case in cases
        .iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.name.contains(f.as_str())))
    {
        let started = Instant::now();
        let (verdict, detail) = run_case(&exe, &dir, case);
        let ms = started.elapsed().as_millis();
        if verdict {
            passed += 1;
            println!("test {} ... ok ({ms} ms)", case.name);
        } else {
            failed += 1;
            println!("test {} ... FAILED ({ms} ms)\n{detail}", case.name);
        }
        if !detail.is_empty() && verdict {
            for line in detail.lines().filter(|l| l.starts_with("report:")) {
                println!("    {line}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("\n{passed} passed, {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 })
}

fn run_case(exe: &std::path::Path, dir: &std::path::Path, case: &Case) -> (bool, String) {
    let out_path = dir.join(format!("{}.out", case.name));
    let err_path = dir.join(format!("{}.err", case.name));
    let files = std::fs::File::create(&out_path).and_then(|o| Ok((o, std::fs::File::create(&err_path)?)));
    let (out, err) = match files {
        Ok(files) => files,
        Err(e) => return (false, format!("cannot create output files: {e}")),
    };
    let child = Command::new(exe)
        .env(CASE_ENV, case.name)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return (false, format!("cannot start the child: {e}")),
    };
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > CASE_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(_) => break None,
        }
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let detail = format!("{stdout}{stderr}");
    let Some(status) = status else {
        return (false, format!("timed out after {CASE_TIMEOUT:?}\n{detail}"));
    };
    let ok = match case.expect {
        Expect::Success => status.success(),
        Expect::Abort(text) => !status.success() && stderr.contains(text),
    };
    (ok, detail)
}

/// Prints a measurement line that the parent shows under the case's verdict.
pub fn report(line: &str) {
    println!("report: {line}");
}

/// A raw pointer that may cross to another task (test plumbing only).
#[derive(Debug, Clone, Copy)]
pub struct SendPtr(pub *mut c_void);
// SAFETY: only used to pass kernel handles, which are valid in every task.
unsafe impl Send for SendPtr {}
