//! `uasyncio-bench`: nine workloads (bench/README.md) on our runtime and on its peers, side by side in one
//! run, printed as one table (a row per workload, a column per runtime, ratios against ours).
//!
//! ```text
//! cargo run --release -p uasyncio-bench              # the full measurement (about a minute or two)
//! cargo run --release -p uasyncio-bench -- --quick   # CI smoke pass: every workload, tiny, speed not judged
//!     options: --reps N (median of N in a child, default 5)   --rounds N (children N times, interleaved;
//!              median over rounds; default 1)   --only ours,tokio-ct,...   --workloads yield,xwake,...
//! ```
//!
//! Each runtime runs in its own child process, one after the other (never two at once), so
//! one runtime's heap and threads cannot disturb another's numbers and peak RSS is per
//! runtime. The children:
//!
//! | column        | child process                                                          |
//! |---------------|------------------------------------------------------------------------|
//! | `ours`        | this binary, `--child ours` (`uasyncio` std port; cargo feature `ours`) |
//! | `embassy-raw` | this binary, `--child embassy-raw` (raw executor, our park/unpark pender) |
//! | `embassy-std` | `bench/embassy-std` (embassy's own `platform-std` executor), built on demand |
//! | `tokio-ct`    | this binary, `--child tokio-ct` (current-thread runtime)                |
//! | `cpython`     | `python3 bench/python/bench.py` (asyncio)                               |
//!
//! A child prints one flat JSON object on its last stdout line; progress goes to stderr.
//! A second child per runtime (`--rss`) runs only workload 1 and reports its `VmHWM`.

mod alloc_count;
mod embassy;
mod embassy_exec;
mod measure;
#[cfg(feature = "ours")]
mod ours;
mod report;
mod tokio_ct;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use measure::{Metrics, Params};
use report::{Column, MetricMap};

#[global_allocator]
static ALLOC: alloc_count::CountingAlloc = alloc_count::CountingAlloc;

/// A child taking longer than this has hung (the full CPython child takes about 30 s).
const CHILD_TIMEOUT: Duration = Duration::from_secs(600);
const CHILD_TIMEOUT_QUICK: Duration = Duration::from_secs(60);

/// The columns, in table order.
const RUNTIMES: &[&str] = &["ours", "embassy-raw", "embassy-std", "tokio-ct", "cpython"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("usage: uasyncio-bench [--quick] [--reps N] [--rounds N] [--only RUNTIME,...] [--workloads NAME,...]");
        println!("runtimes: {}", RUNTIMES.join(", "));
        println!(
            "workloads: {} (peak RSS runs with memory)",
            measure::WORKLOADS.join(", ")
        );
        return;
    }
    match args.iter().position(|a| a == "--child") {
        Some(i) => child(args.get(i + 1).map_or("", String::as_str), &args),
        None => parent(&args),
    }
}

/// A child: run one runtime's workloads (or only workload 1 with `--rss`), print the JSON line.
fn child(runtime: &str, args: &[String]) {
    let p = Params::from_args(args);
    let rss = args.iter().any(|a| a == "--rss");
    let mut m = Metrics::default();
    match (runtime, rss) {
        #[cfg(feature = "ours")]
        ("ours", false) => m = ours::run_all(&p),
        #[cfg(feature = "ours")]
        ("ours", true) => ours::run_rss(&p),
        ("embassy-raw", false) => m = embassy::run_all(runtime, &p),
        ("embassy-raw", true) => embassy::run_rss(&p),
        ("tokio-ct", false) => m = tokio_ct::run_all(&p),
        ("tokio-ct", true) => tokio_ct::run_rss(&p),
        _ => {
            eprintln!("unknown runtime for --child: {runtime:?}");
            std::process::exit(2);
        }
    }
    if rss {
        m.put("rss_kib", measure::vm_hwm_kib().map_or(f64::NAN, |k| k as f64));
    }
    println!("{}", m.to_json());
}

fn parent(args: &[String]) {
    let p = Params::from_args(args);
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(str::to_string).collect());
    let selected = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|n| n == name));
    let started = Instant::now();

    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1);
    let names: Vec<&'static str> = RUNTIMES
        .iter()
        .copied()
        .filter(|name| selected(name))
        .filter(|&name| {
            let skip = name == "ours" && !cfg!(feature = "ours");
            if skip {
                eprintln!("== ours: skipped (built without the `ours` feature)");
            }
            !skip
        })
        .collect();
    let launchers: Vec<Result<MakeCommand, String>> = names.iter().map(|name| launcher(name)).collect();

    // Rounds interleave the runtimes, so a burst of load from elsewhere on a shared machine
    // lands on every column alike; each metric is then the median over rounds.
    let mut samples: Vec<Result<Vec<MetricMap>, String>> = names.iter().map(|_| Ok(vec![])).collect();
    for round in 1..=rounds {
        for (i, name) in names.iter().enumerate() {
            let (Ok(make), Ok(rounds_so_far)) = (&launchers[i], &mut samples[i]) else {
                continue;
            };
            eprintln!("== {name} (round {round}/{rounds})");
            let result = run_child(make(), &p, false).and_then(|mut all| {
                if p.runs("memory") {
                    all.extend(run_child(make(), &p, true)?);
                }
                Ok(all)
            });
            match result {
                Ok(m) => rounds_so_far.push(m),
                Err(e) => {
                    eprintln!("== {name} failed: {e}");
                    samples[i] = Err(e);
                }
            }
        }
    }
    let columns: Vec<Column> = names
        .iter()
        .zip(launchers)
        .zip(samples)
        .map(|((&name, launcher), samples)| Column {
            name,
            metrics: launcher.and(samples).map(|s| median_over_rounds(&s)),
        })
        .collect();

    println!();
    if p.quick {
        println!("Smoke pass (--quick): tiny workloads, the numbers mean nothing.");
    } else {
        println!(
            "Median of {} runs x {} round(s); workloads: 1) {} tasks 2) {} tasks x {} yields 3) {} round trips \
             4) {} timers 0..{} ms 5) {} wakes 6) {} tasks, {} acquires in total 8) {} queue round trips \
             9) {} items from a thread.",
            p.reps,
            rounds,
            p.spawn_tasks,
            p.yield_tasks,
            p.yields_per_task,
            p.pingpong_rounds,
            p.timer_tasks,
            p.timer_max_ms,
            p.wake_iters,
            p.lock_tasks,
            p.lock_total,
            p.queue_rounds,
            p.xqueue_items
        );
    }
    println!("Machine: {}", report::machine());
    println!("Cells: value (theirs/ours; above 1 = ours is faster or smaller). Lower is better on every row.");
    println!();
    print!("{}", report::render(&columns, cfg!(feature = "ours").then_some("ours")));
    println!();
    for note in report::NOTES {
        println!("- {note}");
    }
    eprintln!("\n(total {:.1} s)", started.elapsed().as_secs_f64());
    if columns.iter().any(|c| c.metrics.is_err()) {
        std::process::exit(1);
    }
}

/// Per metric, the median of the rounds that reported it (upper median for an even count).
fn median_over_rounds(rounds: &[MetricMap]) -> MetricMap {
    let mut keys: Vec<&String> = rounds.iter().flat_map(|r| r.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|k| {
            let mut v: Vec<f64> = rounds.iter().filter_map(|r| r.get(k).copied().flatten()).collect();
            v.sort_by(f64::total_cmp);
            (k.clone(), v.get(v.len() / 2).copied())
        })
        .collect()
}

type MakeCommand = Box<dyn Fn() -> Command>;

/// How to start `runtime`'s child process (building the embassy-std binary if needed).
fn launcher(runtime: &'static str) -> Result<MakeCommand, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    match runtime {
        "embassy-std" => {
            let bin = embassy_std_binary(&exe)?;
            Ok(Box::new(move || Command::new(&bin)))
        }
        "cpython" => {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/bench.py");
            let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
            Ok(Box::new(move || {
                let mut c = Command::new(&python);
                c.arg(&script);
                c
            }))
        }
        _ => Ok(Box::new(move || {
            let mut c = Command::new(&exe);
            c.args(["--child", runtime]);
            c
        })),
    }
}

/// The `uasyncio-bench-embassy-std` binary: `$UASYNCIO_BENCH_EMBASSY_STD` if set, otherwise
/// built now with cargo (a no-op when up to date) into this binary's target directory.
/// It cannot be part of this binary: see `embassy_exec.rs` (one `__pender` per binary).
fn embassy_std_binary(exe: &Path) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("UASYNCIO_BENCH_EMBASSY_STD") {
        return Ok(PathBuf::from(path));
    }
    let profile_dir = exe.parent().ok_or("no parent directory of current_exe")?;
    let target_dir = profile_dir.parent().ok_or("no target directory above current_exe")?;
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("embassy-std/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir);
    if release {
        cmd.arg("--release");
    }
    eprintln!("   building {}", manifest.display());
    let status = cmd.status().map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building {} failed", manifest.display()));
    }
    Ok(profile_dir.join("uasyncio-bench-embassy-std"))
}

/// Runs one child to completion (killing it after `CHILD_TIMEOUT`, so a lost wake in a
/// runtime fails the run instead of hanging CI) and parses the JSON object on its last
/// stdout line.
fn run_child(mut cmd: Command, p: &Params, rss: bool) -> Result<MetricMap, String> {
    cmd.args(p.to_args());
    if rss {
        cmd.arg("--rss");
    }
    let timeout = if p.quick { CHILD_TIMEOUT_QUICK } else { CHILD_TIMEOUT };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("{cmd:?}: {e}"))? {
            break status;
        }
        if Instant::now() > deadline {
            // Our own child, by its handle.
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} timed out after {} s", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = reader
        .join()
        .map_err(|_| "stdout reader panicked".to_string())?
        .map_err(|e| format!("reading stdout of {cmd:?}: {e}"))?;
    if !status.success() {
        return Err(format!("{cmd:?} exited with {status}"));
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| format!("{cmd:?} printed no JSON line"))?;
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("bad JSON from {cmd:?}: {e}"))?;
    let object = value
        .as_object()
        .ok_or_else(|| format!("{cmd:?}: JSON is not an object"))?;
    Ok(object.iter().map(|(k, v)| (k.clone(), v.as_f64())).collect())
}
