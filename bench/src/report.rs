//! The one table: a row per workload metric, a column per runtime, each cell with its ratio
//! to ours (theirs / ours: above 1 means ours is faster or smaller on that row; every row is
//! lower-is-better).

use std::collections::BTreeMap;

/// One runtime's metrics by key (`None`: reported as null).
pub type MetricMap = BTreeMap<String, Option<f64>>;

/// A runtime's column: its metrics, or why it has none.
pub struct Column {
    pub name: &'static str,
    pub metrics: Result<MetricMap, String>,
}

/// The rows, in bench/README.md's order: (metric key, label).
pub const ROWS: &[(&str, &str)] = &[
    ("spawn_alive_ns", "1 spawn+complete, all alive (ns/task)"),
    ("spawn_serial_ns", "1 spawn+complete, one at a time (ns/task)"),
    ("yield_ns", "2 yield (ns/switch)"),
    ("yield_timed_ns", "2 yield, ours with poll timing on"),
    ("yield_traced_ns", "2 yield, ours recording a trace"),
    ("pingpong_ns", "3 event ping-pong (ns/round trip)"),
    ("timer_cpu_ns", "4 timers: CPU time (ns/timer)"),
    ("timer_late_p50_us", "4 timers: lateness p50 (us)"),
    ("timer_late_p99_us", "4 timers: lateness p99 (us)"),
    ("timer_slack_cpu_ns", "4 timers, ours at 1 ms slack: CPU (ns/timer)"),
    ("timer_slack_late_p50_us", "4 timers, ours at 1 ms slack: late p50 (us)"),
    ("timer_slack_late_p99_us", "4 timers, ours at 1 ms slack: late p99 (us)"),
    ("xwake_p50_us", "5 wake from an OS thread p50 (us)"),
    ("xwake_p99_us", "5 wake from an OS thread p99 (us)"),
    ("lock_ns", "6 contended lock (ns/acquire+release)"),
    ("task_bytes", "7 memory per live task (bytes)"),
    ("rss_kib", "7 peak RSS, workload 1 (KiB)"),
    ("queue_ns", "8 queue put/get round trip (ns)"),
    ("xqueue_rt_ns", "8 cross-context queue round trip (ns)"),
    ("xqueue_thread_ns", "9 queue from an OS thread (ns/item)"),
];

/// Rows that measure a setting only ours has: (row key, the row the other columns repeat).
const SAME_AS: &[(&str, &str)] = &[
    ("timer_slack_cpu_ns", "timer_cpu_ns"),
    ("timer_slack_late_p50_us", "timer_late_p50_us"),
    ("timer_slack_late_p99_us", "timer_late_p99_us"),
];

/// What a reader needs to read the table right; printed under it.
pub const NOTES: &[&str] = &[
    "Row 1 'all alive' spawns every task before any runs; 'one at a time' awaits each before the next. \
     embassy has no join handle: its tasks count down and the main task waits on a Signal.",
    "embassy tasks are static: spawning claims a pool slot by scanning the pool from its start, \
     so 'all alive' with a 10,000-slot pool costs O(pool) per spawn; row 7 is the size of one \
     slot (TaskStorage, in .bss, reserved for each of pool_size slots whether used or not).",
    "Rows 1 and 7: the task's future is trivial (a few bytes), so bytes per task is the \
     runtime's per-task overhead; heap bytes counted by a counting global allocator \
     (CPython: tracemalloc). Ours is the task cell (96 bytes on x86_64 for a trivial task); the \
     loop's registry of unfinished tasks takes 16 bytes more per task while it grows, which \
     earlier workloads of the same child had already done (`uasyncio-bench --child ours \
     --workloads memory` alone: 122 bytes).",
    "Row 4: every task sleeps 0..=max ms (same seed everywhere); lateness = wake time minus \
     (sleep start + duration). tokio's timer wheel has 1 ms resolution.",
    "Row 4 at 1 ms slack: ours with Loop::set_timer_slack_us(1000) (timers due within 1 ms of the \
     nearest deadline fire in one wake-up, never early); the other columns repeat their row 4 figures, \
     since they have no such setting (tokio's wheel has 1 ms resolution anyway). Ours without \
     slack (the rows above) is the default.",
    "Row 5: another OS thread sets the flag (ours: ThreadSafeFlag; tokio: Notify; embassy: \
     Signal<CriticalSectionRawMutex>; CPython: call_soon_threadsafe(Event.set)) after a 50 us \
     pause, so the loop is idle; latency = stamp before set to the woken task's first instruction.",
    "Row 2, timing and trace: ours only, to compare with row 2 (recorder off): the same yields with \
     Loop::measure_polls(true) (two clock reads per poll), then with Loop::start_trace recording \
     every run slice (clock reads plus one event stored per poll). The rtos-trace hooks are a \
     cargo feature: off, they are not compiled in.",
    "Row 6: each holder yields once while holding the lock, so the other tasks queue behind it \
     (the row includes that yield).",
    "Row 8: two tasks, two queues of capacity 1, an item there and back per round trip. Task to task: \
     ours Queue (put/get); tokio mpsc::channel(1); embassy Channel<NoopRawMutex>; CPython asyncio.Queue(1). \
     Cross-context (the queue an ISR may send into), sending with try_send: ours ThreadSafeQueue; \
     embassy Channel<CriticalSectionRawMutex>; tokio mpsc again (it is always thread-safe).",
    "Row 9: an OS thread (standing for an ISR) sends 100,000 items with try_send into a 64-item \
     queue, spinning while it is full; one task receives them (ours ThreadSafeQueue, tokio mpsc, \
     embassy Channel<CriticalSectionRawMutex>); ns per item from the task's go signal to the last item.",
];

fn fmt_value(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}x")
    } else if r >= 10.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.2}x")
    }
}

/// The table as Markdown (so it can go into the README as printed).
pub fn render(columns: &[Column], ours: Option<&str>) -> String {
    let ours_col = ours.and_then(|name| columns.iter().find(|c| c.name == name));
    let get =
        |c: &Column, key: &str| -> Option<f64> { c.metrics.as_ref().ok().and_then(|m| m.get(key).copied().flatten()) };
    // A row only ours measures (a setting of ours) compares with the peers' base row.
    let get = |c: &Column, key: &str| -> Option<f64> {
        get(c, key).or_else(|| {
            let base = SAME_AS.iter().find(|(k, _)| *k == key)?.1;
            (Some(c.name) != ours).then(|| get(c, base)).flatten()
        })
    };

    let mut header = vec!["workload".to_string()];
    header.extend(columns.iter().map(|c| c.name.to_string()));
    let mut lines = vec![header];
    for (key, label) in ROWS {
        let base = ours_col.and_then(|c| get(c, key));
        let mut row = vec![label.to_string()];
        for c in columns {
            let cell = match (&c.metrics, get(c, key)) {
                (Err(_), _) => "failed".to_string(),
                (Ok(_), None) => "-".to_string(),
                (Ok(_), Some(v)) => match base {
                    Some(b) if b > 0.0 && Some(c.name) != ours => {
                        format!("{} ({})", fmt_value(v), fmt_ratio(v / b))
                    }
                    _ => fmt_value(v),
                },
            };
            row.push(cell);
        }
        lines.push(row);
    }

    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, line) in lines.iter().enumerate() {
        let cells: Vec<String> = line
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let pad = widths[i] - cell.chars().count();
                if i == 0 {
                    format!("{cell}{}", " ".repeat(pad))
                } else {
                    format!("{}{cell}", " ".repeat(pad))
                }
            })
            .collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
        if n == 0 {
            let rule: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    if i == 0 {
                        "-".repeat(*w)
                    } else {
                        format!("{}:", "-".repeat(w - 1))
                    }
                })
                .collect();
            out.push_str(&format!("| {} |\n", rule.join(" | ")));
        }
    }
    for c in columns {
        if let Err(e) = &c.metrics {
            out.push_str(&format!("\n{}: {e}\n", c.name));
        }
    }
    out
}

/// One line about the machine: CPU model, logical CPUs, kernel, and the 1-minute load
/// average when the table was printed (other work on a shared machine shows up as noise).
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_string();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?").to_string();
    format!(
        "{model}, {cpus} logical CPUs, Linux {}, load average {load}",
        kernel.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &'static str, pairs: &[(&str, f64)]) -> Column {
        let metrics = pairs.iter().map(|(k, v)| (k.to_string(), Some(*v))).collect();
        Column {
            name,
            metrics: Ok(metrics),
        }
    }

    #[test]
    fn cells_carry_the_ratio_to_ours() {
        let cols = [
            column("ours", &[("yield_ns", 10.0)]),
            column("tokio-ct", &[("yield_ns", 25.0)]),
            Column {
                name: "cpython",
                metrics: Err("no python3".into()),
            },
        ];
        let table = render(&cols, Some("ours"));
        let row = table.lines().find(|l| l.contains("2 yield")).unwrap();
        assert!(row.contains("| 10.0 |") || row.contains(" 10.0 |"), "{row}");
        assert!(row.contains("25.0 (2.50x)"), "{row}");
        assert!(row.contains("failed"), "{row}");
        assert!(table.contains("cpython: no python3"));
        // A metric nobody reported is a dash, without a ratio.
        let rss = table.lines().find(|l| l.contains("peak RSS")).unwrap();
        assert!(rss.contains(" - |"), "{rss}");
    }

    #[test]
    fn a_row_only_ours_measures_compares_with_the_peers_base_row() {
        let cols = [
            column("ours", &[("timer_cpu_ns", 100.0), ("timer_slack_cpu_ns", 40.0)]),
            column("tokio-ct", &[("timer_cpu_ns", 80.0)]),
        ];
        let table = render(&cols, Some("ours"));
        let row = table.lines().find(|l| l.contains("at 1 ms slack: CPU")).unwrap();
        assert!(row.contains(" 40.0 |") && row.contains("80.0 (2.00x)"), "{row}");
        let base = table.lines().find(|l| l.contains("4 timers: CPU")).unwrap();
        assert!(base.contains("80.0 (0.80x)"), "{base}");
    }
}
