//! `Queue`, `Semaphore`/`BoundedSemaphore`, `wait` and `TaskGroup`, which MicroPython lacks: each case's
//! log is exactly what CPython 3.11.7's asyncio prints for the Python program beside it, run
//! on a virtual-time loop as ours (so times are exact milliseconds). The helper the programs
//! import:
//!
//! ```python
//! # common.py
//! import asyncio
//! class VirtualLoop(asyncio.SelectorEventLoop):  # when nothing is ready, jump to the next timer
//!     def __init__(self):
//!         super().__init__()
//!         self._vt = 0.0
//!     def time(self):
//!         return self._vt
//!     def _run_once(self):
//!         if not self._ready:
//!             live = [h._when for h in self._scheduled if not h._cancelled]
//!             if live and min(live) > self._vt:
//!                 self._vt = min(live)
//!         super()._run_once()
//! def log(what):
//!     print(round(asyncio.get_running_loop().time() * 1000), what)
//! def run(main):
//!     with asyncio.Runner(loop_factory=VirtualLoop) as r:
//!         r.run(main())
//! ```

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;

use uasyncio::{
    create_task, gather, run, sleep_ms, wait, wait_ms, BoundedSemaphore, Error, Queue, QueueFull, Semaphore, Task,
    TaskGroup, TaskRef, ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION,
};

use crate::loop_api::HandlerLog;
use crate::{fresh_loop, Case, Log, Outcome};

/// Queue and Semaphore cases (with `sync`, in the second half).
pub(crate) const SYNC_CASES: &[Case] = &[
    Case {
        name: "queue::fifo_among_waiting_getters_and_putters",
        run: queue_fifo,
    },
    Case {
        name: "queue::cancelled_waiter_keeps_order_loses_no_item",
        run: queue_cancelled_waiter,
    },
    Case {
        name: "queue::woken_putter_cancelled_passes_the_slot_on",
        run: queue_woken_putter_cancelled,
    },
    Case {
        name: "queue::task_done_and_join",
        run: queue_task_done_join,
    },
    Case {
        name: "queue::maxsize_0_unbounded_full_and_empty",
        run: queue_unbounded,
    },
    Case {
        name: "semaphore::fifo_handoff_no_barging",
        run: semaphore_fifo,
    },
    Case {
        name: "semaphore::cancelled_waiter_passes_permit_on",
        run: semaphore_cancelled_waiter,
    },
    Case {
        name: "semaphore::bounded_over_release_is_value_error",
        run: semaphore_bounded,
    },
];

/// `wait` cases (with `funcs`, in the first half).
pub(crate) const FUNCS_CASES: &[Case] = &[
    Case {
        name: "wait::return_sets",
        run: wait_return_sets,
    },
    Case {
        name: "wait::timeout_is_not_an_error",
        run: wait_timeout,
    },
    Case {
        name: "wait::empty_set_is_value_error",
        run: wait_empty,
    },
    Case {
        name: "wait::first_exception",
        run: wait_first_exception,
    },
    Case {
        name: "wait::caller_cancelled_cancels_nothing",
        run: wait_caller_cancelled,
    },
    Case {
        name: "task_group::all_succeed",
        run: task_group_all_succeed,
    },
    Case {
        name: "task_group::one_fails_cancels_siblings_and_body_handler_silent",
        run: task_group_one_fails,
    },
    Case {
        name: "task_group::two_fail_every_error_collected",
        run: task_group_two_fail,
    },
    Case {
        name: "task_group::body_fails",
        run: task_group_body_fails,
    },
    Case {
        name: "task_group::owner_cancelled_in_body_and_while_waiting",
        run: task_group_owner_cancelled,
    },
    Case {
        name: "task_group::create_task_after_end_or_shutting_down",
        run: task_group_create_task_refused,
    },
    Case {
        name: "introspect::task_names_and_all_tasks",
        run: task_names_all_tasks,
    },
];

/// Python's spelling of a bool.
fn py(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

fn err(e: Error) -> String {
    format!("{e}")
}

// from common import *
// async def main():
//     q = asyncio.Queue()
//     async def getter(name):
//         log(f"{name} got {await q.get()}")
//     gs = [asyncio.create_task(getter(n)) for n in ("g1", "g2", "g3")]
//     await asyncio.sleep(0.005)
//     for item in "abc":
//         q.put_nowait(item)
//     log(f"qsize {q.qsize()}")
//     await asyncio.gather(*gs)
//     b = asyncio.Queue(1)
//     b.put_nowait("x")
//     async def putter(name, item):
//         await b.put(item)
//         log(f"{name} put {item}")
//     ps = [asyncio.create_task(putter(n, i)) for n, i in (("p1", 1), ("p2", 2), ("p3", 3))]
//     await asyncio.sleep(0.005)
//     for _ in range(4):
//         log(f"main got {await b.get()}, full {b.full()}")
//         await asyncio.sleep(0.001)
//     await asyncio.gather(*ps)
// run(main)
fn queue_fifo() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let q = Rc::new(Queue::new(0));
        let mut gs = Vec::new();
        for name in ["g1", "g2", "g3"] {
            let (q, l) = (q.clone(), l.clone());
            gs.push(create_task(async move {
                let item = q.get().await?;
                l.at(format!("{name} got {item}"));
                Ok(())
            }));
        }
        sleep_ms(5).await?;
        for item in ["a", "b", "c"] {
            q.put_nowait(item).map_err(Error::from)?;
        }
        l.at(format!("qsize {}", q.qsize()));
        gather(gs).await?;
        let b = Rc::new(Queue::new(1));
        b.put_nowait("x").map_err(Error::from)?;
        let mut ps = Vec::new();
        for (name, item) in [("p1", "1"), ("p2", "2"), ("p3", "3")] {
            let (b, l) = (b.clone(), l.clone());
            ps.push(create_task(async move {
                b.put(item).await?;
                l.at(format!("{name} put {item}"));
                Ok(())
            }));
        }
        sleep_ms(5).await?;
        for _ in 0..4 {
            let item = b.get().await?;
            l.at(format!("main got {item}, full {}", py(b.full())));
            sleep_ms(1).await?;
        }
        gather(ps).await?;
        Ok(())
    })
    .map_err(err)?;
    log.expect(&[
        "5 qsize 3",
        "5 g1 got a",
        "5 g2 got b",
        "5 g3 got c",
        "10 main got x, full False",
        "10 p1 put 1",
        "11 main got 1, full False",
        "11 p2 put 2",
        "12 main got 2, full False",
        "12 p3 put 3",
        "13 main got 3, full False",
    ])
}

/// The programs' `putter(name, item)`: puts `item` into `b` and logs what came of it.
fn putter(b: &Rc<Queue<&'static str>>, l: &Log, name: &'static str, item: &'static str) -> Task<()> {
    let (b, l) = (b.clone(), l.clone());
    create_task(async move {
        match b.put(item).await {
            Ok(()) => l.at(format!("{name} put {item}")),
            Err(Error::Cancelled) => l.at(format!("{name} cancelled")),
            Err(e) => return Err(e),
        }
        Ok(())
    })
}

// from common import *
// async def main():
//     q = asyncio.Queue()
//     async def getter(name):
//         try:
//             log(f"{name} got {await q.get()}")
//         except asyncio.CancelledError:
//             log(f"{name} cancelled")
//     gs = [asyncio.create_task(getter(n)) for n in ("g1", "g2", "g3")]
//     await asyncio.sleep(0.001)
//     gs[1].cancel()  # waiting: leaves the line
//     await asyncio.sleep(0.001)
//     q.put_nowait("a")
//     q.put_nowait("b")
//     await asyncio.gather(*gs)
//     hs = [asyncio.create_task(getter(n)) for n in ("h1", "h2")]
//     await asyncio.sleep(0.001)
//     q.put_nowait("x")  # wakes h1...
//     hs[0].cancel()     # ...which is cancelled before it runs and passes the wake-up to h2
//     await asyncio.gather(*hs)
//     log(f"qsize {q.qsize()}")
//     b = asyncio.Queue(1)
//     b.put_nowait("first")
//     async def putter(name, item):
//         try:
//             await b.put(item)
//             log(f"{name} put {item}")
//         except asyncio.CancelledError:
//             log(f"{name} cancelled")
//     ps = [asyncio.create_task(putter(n, i)) for n, i in (("p1", 1), ("p2", 2), ("p3", 3))]
//     await asyncio.sleep(0.001)
//     ps[1].cancel()
//     await asyncio.sleep(0.001)
//     for _ in range(3):
//         log(f"main got {await b.get()}")
//         await asyncio.sleep(0.001)
//     await asyncio.gather(*ps)
//     log(f"qsize {b.qsize()}")
// run(main)
fn queue_cancelled_waiter() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let q = Rc::new(Queue::new(0));
        let getter = |name: &'static str| {
            let (q, l) = (q.clone(), l.clone());
            create_task(async move {
                match q.get().await {
                    Ok(item) => l.at(format!("{name} got {item}")),
                    Err(Error::Cancelled) => l.at(format!("{name} cancelled")),
                    Err(e) => return Err(e),
                }
                Ok(())
            })
        };
        let gs: Vec<Task<()>> = ["g1", "g2", "g3"].into_iter().map(getter).collect();
        sleep_ms(1).await?;
        gs[1].cancel()?;
        sleep_ms(1).await?;
        q.put_nowait("a").map_err(Error::from)?;
        q.put_nowait("b").map_err(Error::from)?;
        gather(gs).await?;
        let hs: Vec<Task<()>> = ["h1", "h2"].into_iter().map(getter).collect();
        sleep_ms(1).await?;
        q.put_nowait("x").map_err(Error::from)?;
        hs[0].cancel()?;
        gather(hs).await?;
        l.at(format!("qsize {}", q.qsize()));
        let b = Rc::new(Queue::new(1));
        b.put_nowait("first").map_err(Error::from)?;
        let ps: Vec<Task<()>> = [("p1", "1"), ("p2", "2"), ("p3", "3")]
            .into_iter()
            .map(|(name, item)| putter(&b, &l, name, item))
            .collect();
        sleep_ms(1).await?;
        ps[1].cancel()?;
        sleep_ms(1).await?;
        for _ in 0..3 {
            let item = b.get().await?;
            l.at(format!("main got {item}"));
            sleep_ms(1).await?;
        }
        gather(ps).await?;
        l.at(format!("qsize {}", b.qsize()));
        Ok(())
    })
    .map_err(err)?;
    log.expect(&[
        "1 g2 cancelled",
        "2 g1 got a",
        "2 g3 got b",
        "3 h1 cancelled",
        "3 h2 got x",
        "3 qsize 0",
        "4 p2 cancelled",
        "5 main got first",
        "5 p1 put 1",
        "6 main got 1",
        "6 p3 put 3",
        "7 main got 3",
        "8 qsize 0",
    ])
}

// from common import *
// async def main():
//     b = asyncio.Queue(1)
//     b.put_nowait("first")
//     async def putter(name, item):
//         try:
//             await b.put(item)
//             log(f"{name} put {item}")
//         except asyncio.CancelledError:
//             log(f"{name} cancelled")
//     ps = [asyncio.create_task(putter(n, i)) for n, i in (("p1", 1), ("p2", 2))]
//     await asyncio.sleep(0.001)
//     log(f"main got {b.get_nowait()}")  # wakes p1...
//     ps[0].cancel()                      # ...which is cancelled before it runs and passes the slot on
//     await asyncio.gather(*ps)
//     log(f"main got {b.get_nowait()}")
//     log(f"qsize {b.qsize()}")
// run(main)
fn queue_woken_putter_cancelled() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let b = Rc::new(Queue::new(1));
        b.put_nowait("first").map_err(Error::from)?;
        let ps: Vec<Task<()>> = [("p1", "1"), ("p2", "2")]
            .into_iter()
            .map(|(name, item)| putter(&b, &l, name, item))
            .collect();
        sleep_ms(1).await?;
        l.at(format!("main got {}", b.get_nowait()?));
        ps[0].cancel()?;
        gather(ps).await?;
        l.at(format!("main got {}", b.get_nowait()?));
        l.at(format!("qsize {}", b.qsize()));
        Ok(())
    })
    .map_err(err)?;
    log.expect(&[
        "1 main got first",
        "1 p1 cancelled",
        "1 p2 put 2",
        "1 main got 2",
        "1 qsize 0",
    ])
}

// from common import *
// async def main():
//     q = asyncio.Queue()
//     await q.join()  # nothing put: returns at once
//     log("join on a fresh queue")
//     async def worker():
//         while True:
//             item = await q.get()
//             await asyncio.sleep(0.01)
//             log(f"done {item}")
//             q.task_done()
//     w = asyncio.create_task(worker())
//     for item in "abc":
//         await q.put(item)
//     log(f"put 3, qsize {q.qsize()}")
//     await q.join()
//     log("joined")
//     try:
//         q.task_done()
//     except ValueError as e:
//         log(f"ValueError: {e}")
//     w.cancel()
// run(main)
fn queue_task_done_join() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let q = Rc::new(Queue::new(0));
        q.join().await?;
        l.at("join on a fresh queue");
        let (q2, l2) = (q.clone(), l.clone());
        let w = create_task(async move {
            loop {
                let item = q2.get().await?;
                sleep_ms(10).await?;
                l2.at(format!("done {item}"));
                q2.task_done()?;
            }
        });
        for item in ["a", "b", "c"] {
            q.put(item).await?;
        }
        l.at(format!("put 3, qsize {}", q.qsize()));
        q.join().await?;
        l.at("joined");
        if let Err(e) = q.task_done() {
            l.at(format!("{e}"));
        }
        w.cancel()?;
        let _: core::result::Result<(), Error> = w.await;
        Ok(())
    })
    .map_err(err)?;
    log.expect(&[
        "0 join on a fresh queue",
        "0 put 3, qsize 3",
        "10 done a",
        "20 done b",
        "30 done c",
        "30 joined",
        "30 ValueError: task_done() called too many times",
    ])
}

// from common import *
// async def main():
//     q = asyncio.Queue(0)
//     for i in range(1000):
//         q.put_nowait(i)
//     log(f"maxsize {q.maxsize} qsize {q.qsize()} full {q.full()}")
//     s = 0
//     while not q.empty():
//         s += q.get_nowait()
//     log(f"sum {s}")
//     try:
//         q.get_nowait()
//     except asyncio.QueueEmpty:
//         log("QueueEmpty")
//     b = asyncio.Queue(2)
//     b.put_nowait(1)
//     b.put_nowait(2)
//     try:
//         b.put_nowait(3)
//     except asyncio.QueueFull:
//         log(f"QueueFull, qsize {b.qsize()} full {b.full()}")
// run(main)
fn queue_unbounded() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    // 1000 items (20 under Miri, with the Python program's figures scaled alike).
    let n = crate::scaled(1000);
    run(async move {
        let q = Queue::new(0);
        for i in 0..n {
            q.put_nowait(i).map_err(Error::from)?;
        }
        l.at(format!(
            "maxsize {} qsize {} full {}",
            q.maxsize(),
            q.qsize(),
            py(q.full())
        ));
        let mut s = 0;
        while !q.empty() {
            s += q.get_nowait()?;
        }
        l.at(format!("sum {s}"));
        if let Err(e) = q.get_nowait() {
            l.at(format!("{e}"));
        }
        let b = Queue::new(2);
        b.put_nowait(1).map_err(Error::from)?;
        b.put_nowait(2).map_err(Error::from)?;
        if let Err(QueueFull(back)) = b.put_nowait(3) {
            l.at(format!("QueueFull, qsize {} full {}", b.qsize(), py(b.full())));
            l.put(format!("handed back {back}"));
        }
        Ok(())
    })
    .map_err(err)?;
    let first = format!("0 maxsize 0 qsize {n} full False");
    let sum = format!("0 sum {}", n * (n - 1) / 2);
    log.expect(&[
        &first,
        &sum,
        "0 QueueEmpty",
        "0 QueueFull, qsize 2 full True",
        "handed back 3", // ours only: the item comes back with the error
    ])
}

// from common import *
// async def main():
//     sem = asyncio.Semaphore(1)
//     await sem.acquire()
//     async def worker(name):
//         async with sem:
//             log(f"{name} has it")
//             await asyncio.sleep(0.001)
//     ts = [asyncio.create_task(worker(n)) for n in ("a", "b")]
//     await asyncio.sleep(0.001)
//     sem.release()  # hand-off to a; main asks again at once and must queue behind b
//     log(f"locked during hand-off: {sem.locked()}")
//     async with sem:
//         log("main has it again")
//     await asyncio.gather(*ts)
//     log(f"locked {sem.locked()}")
// run(main)
fn semaphore_fifo() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let sem = Rc::new(Semaphore::new(1));
        sem.acquire().await?.forget();
        let mut ts = Vec::new();
        for name in ["a", "b"] {
            let (sem, l) = (sem.clone(), l.clone());
            ts.push(create_task(async move {
                let _permit = sem.acquire().await?;
                l.at(format!("{name} has it"));
                sleep_ms(1).await
            }));
        }
        sleep_ms(1).await?;
        sem.release();
        l.at(format!("locked during hand-off: {}", py(sem.locked())));
        {
            let _permit = sem.acquire().await?;
            l.at("main has it again");
        }
        gather(ts).await?;
        l.at(format!("locked {}", py(sem.locked())));
        Ok(())
    })
    .map_err(err)?;
    log.expect(&[
        "1 locked during hand-off: True",
        "1 a has it",
        "2 b has it",
        "3 main has it again",
        "3 locked False",
    ])
}

// from common import *
// async def main():
//     sem = asyncio.Semaphore(1)
//     await sem.acquire()
//     async def worker(name):
//         try:
//             async with sem:
//                 log(f"{name} has it")
//                 await asyncio.sleep(0.001)
//         except asyncio.CancelledError:
//             log(f"{name} cancelled")
//     ts = [asyncio.create_task(worker(n)) for n in ("a", "b", "c", "d")]
//     await asyncio.sleep(0.001)
//     ts[1].cancel()  # b waits: leaves the line
//     await asyncio.sleep(0.001)
//     sem.release()   # hands the permit to a...
//     ts[0].cancel()  # ...which is cancelled before it runs: c gets it
//     await asyncio.gather(*ts)
//     log(f"locked {sem.locked()}")
// run(main)
fn semaphore_cancelled_waiter() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let sem = Rc::new(Semaphore::new(1));
        sem.acquire().await?.forget();
        let mut ts = Vec::new();
        for name in ["a", "b", "c", "d"] {
            let (sem, l) = (sem.clone(), l.clone());
            ts.push(create_task(async move {
                match sem.acquire().await {
                    Ok(_permit) => {
                        l.at(format!("{name} has it"));
                        sleep_ms(1).await?;
                    }
                    Err(Error::Cancelled) => l.at(format!("{name} cancelled")),
                    Err(e) => return Err(e),
                }
                Ok(())
            }));
        }
        sleep_ms(1).await?;
        ts[1].cancel()?;
        sleep_ms(1).await?;
        sem.release();
        ts[0].cancel()?;
        gather(ts).await?;
        l.at(format!("locked {}", py(sem.locked())));
        Ok(())
    })
    .map_err(err)?;
    log.expect(&[
        "1 b cancelled",
        "2 a cancelled",
        "2 c has it",
        "3 d has it",
        "4 locked False",
    ])
}

// from common import *
// async def main():
//     sem = asyncio.BoundedSemaphore(2)
//     try:
//         sem.release()
//     except ValueError as e:
//         log(f"ValueError: {e}")
//     await sem.acquire()
//     await sem.acquire()
//     log(f"locked {sem.locked()}")
//     sem.release()
//     sem.release()
//     try:
//         sem.release()
//     except ValueError as e:
//         log(f"ValueError: {e}")
//     plain = asyncio.Semaphore(0)
//     plain.release()
//     plain.release()
//     await plain.acquire()
//     await plain.acquire()
//     log(f"plain locked {plain.locked()}")
// run(main)
fn semaphore_bounded() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let sem = BoundedSemaphore::new(2);
        if let Err(e) = sem.release() {
            l.at(format!("{e}"));
        }
        sem.acquire().await?.forget();
        sem.acquire().await?.forget();
        l.at(format!("locked {}", py(sem.locked())));
        sem.release()?;
        sem.release()?;
        if let Err(e) = sem.release() {
            l.at(format!("{e}"));
        }
        let plain = Semaphore::new(0);
        plain.release();
        plain.release();
        plain.acquire().await?.forget();
        plain.acquire().await?.forget();
        l.at(format!("plain locked {}", py(plain.locked())));
        Ok(())
    })
    .map_err(err)?;
    log.expect(&[
        "0 ValueError: BoundedSemaphore released too many times",
        "0 locked True",
        "0 ValueError: BoundedSemaphore released too many times",
        "0 plain locked True",
    ])
}

/// `job(name, ms, fail)` of the wait programs, as a task.
fn job(ms: u32, fail: Option<&'static str>) -> Task<&'static str> {
    create_task(async move {
        sleep_ms(ms).await?;
        match fail {
            Some(name) => Err(Error::value(name)),
            None => Ok("ok"),
        }
    })
}

/// Python's `",".join(sorted(t.get_name() for t in ts)) or "-"`, names looked up by task.
fn names<T>(ts: &[Task<T>], named: &[(TaskRef, &str)]) -> String {
    let mut out: Vec<&str> = ts
        .iter()
        .filter_map(|t| named.iter().find(|(r, _)| *r == t.task_ref()).map(|(_, n)| *n))
        .collect();
    out.sort_unstable();
    if out.is_empty() {
        String::from("-")
    } else {
        out.join(",")
    }
}

// from common import *
// async def job(name, ms, fail=False):
//     await asyncio.sleep(ms / 1000)
//     if fail:
//         raise ValueError(name)
//     return name
// def names(ts):
//     return ",".join(sorted(t.get_name() for t in ts)) or "-"
// async def main():
//     t1 = asyncio.create_task(job("t1", 10), name="t1")
//     t2 = asyncio.create_task(job("t2", 20, fail=True), name="t2")
//     t3 = asyncio.create_task(job("t3", 30), name="t3")
//     done, pending = await asyncio.wait({t1, t2, t3}, return_when=asyncio.FIRST_COMPLETED)
//     log(f"FIRST_COMPLETED done {names(done)} pending {names(pending)}")
//     done, pending = await asyncio.wait(pending, return_when=asyncio.ALL_COMPLETED)
//     log(f"ALL_COMPLETED done {names(done)} pending {names(pending)}")
//     log(f"t1 {t1.result()} t2 {t2.exception()!r} t3 {t3.result()}")
// run(main)
fn wait_return_sets() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let ts = [job(10, None), job(20, Some("t2")), job(30, None)];
        let named: Vec<(TaskRef, &str)> = ts.iter().map(Task::task_ref).zip(["t1", "t2", "t3"]).collect();
        let (done, pending) = wait(ts, None, FIRST_COMPLETED).await?;
        l.at(format!(
            "FIRST_COMPLETED done {} pending {}",
            names(&done, &named),
            names(&pending, &named)
        ));
        let (done2, pending) = wait(pending, None, ALL_COMPLETED).await?;
        l.at(format!(
            "ALL_COMPLETED done {} pending {}",
            names(&done2, &named),
            names(&pending, &named)
        ));
        let mut outs = Vec::new();
        for t in done.into_iter().chain(done2) {
            outs.push(t.await);
        }
        l.at(format!("{outs:?}"));
        Ok(())
    })
    .map_err(err)?;
    log.expect(&[
        "10 FIRST_COMPLETED done t1 pending t2,t3",
        "30 ALL_COMPLETED done t2,t3 pending -",
        // Python: "30 t1 t1 t2 ValueError('t2') t3 t3"; done sets come in argument order here.
        "30 [Ok(\"ok\"), Err(Value(\"t2\")), Ok(\"ok\")]",
    ])
}

// from common import *
// async def main():
//     async def slow():
//         await asyncio.sleep(0.05)
//         log("slow finished")
//         return "slow"
//     t = asyncio.create_task(slow())
//     done, pending = await asyncio.wait({t}, timeout=0.02)
//     log(f"timeout: done {len(done)} pending {len(pending)} cancelled {t.cancelled()}")
//     log(f"then {await t}")
//     u = asyncio.create_task(asyncio.sleep(0.01))
//     done, pending = await asyncio.wait({u}, timeout=1)
//     log(f"before the timeout: done {len(done)} pending {len(pending)}")
// run(main)
fn wait_timeout() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let l1 = l.clone();
        let t = create_task(async move {
            sleep_ms(50).await?;
            l1.at("slow finished");
            Ok("slow")
        });
        let r = t.task_ref();
        let (done, mut pending) = wait([t], 0.02, ALL_COMPLETED).await?;
        l.at(format!(
            "timeout: done {} pending {} cancelled {}",
            done.len(),
            pending.len(),
            py(r.done())
        ));
        if let Some(t) = pending.pop() {
            l.at(format!("then {}", t.await?));
        }
        let u = create_task(sleep_ms(10));
        let (done, pending) = wait([u], 1.0, ALL_COMPLETED).await?;
        l.at(format!(
            "before the timeout: done {} pending {}",
            done.len(),
            pending.len()
        ));
        Ok(())
    })
    .map_err(err)?;
    log.expect(&[
        "20 timeout: done 0 pending 1 cancelled False",
        "50 slow finished",
        "50 then slow",
        "60 before the timeout: done 1 pending 0",
    ])
}

// from common import *
// async def main():
//     try:
//         await asyncio.wait(set())
//     except ValueError as e:
//         log(f"ValueError: {e}")
// run(main)
fn wait_empty() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        if let Err(e) = wait_ms(Vec::<Task<()>>::new(), None, ALL_COMPLETED).await {
            l.at(format!("{e}"));
        }
        Ok(())
    })
    .map_err(err)?;
    log.expect(&["0 ValueError: Set of Tasks/Futures is empty."])
}

// from common import *
// async def job(name, ms, fail=False):
//     await asyncio.sleep(ms / 1000)
//     if fail:
//         raise ValueError(name)
//     return name
// def names(ts):
//     return ",".join(sorted(t.get_name() for t in ts)) or "-"
// async def main():
//     a = asyncio.create_task(job("a", 100), name="a")
//     b = asyncio.create_task(job("b", 20, fail=True), name="b")
//     c = asyncio.create_task(job("c", 30), name="c")
//     async def cancel_a():
//         await asyncio.sleep(0.01)
//         a.cancel()
//     asyncio.create_task(cancel_a())
//     done, pending = await asyncio.wait({a, b, c}, return_when=asyncio.FIRST_EXCEPTION)
//     log(f"FIRST_EXCEPTION done {names(done)} pending {names(pending)}")  # a's cancel does not count
//     d = asyncio.create_task(job("d", 10), name="d")
//     e = asyncio.create_task(job("e", 25), name="e")
//     done, pending = await asyncio.wait({c, d, e}, return_when=asyncio.FIRST_EXCEPTION)
//     log(f"no error: done {names(done)} pending {names(pending)}")
// run(main)
fn wait_first_exception() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let (a, b, c) = (job(100, None), job(20, Some("b")), job(30, None));
        let mut named = Vec::new();
        named.push((a.task_ref(), "a"));
        named.push((b.task_ref(), "b"));
        named.push((c.task_ref(), "c"));
        let ar = a.task_ref();
        create_task(async move {
            sleep_ms(10).await?;
            ar.cancel().map(drop)
        });
        let (done, pending) = wait([a, b, c], None, FIRST_EXCEPTION).await?;
        l.at(format!(
            "FIRST_EXCEPTION done {} pending {}",
            names(&done, &named),
            names(&pending, &named)
        ));
        let (d, e) = (job(10, None), job(25, None));
        named.push((d.task_ref(), "d"));
        named.push((e.task_ref(), "e"));
        let mut next = pending;
        next.push(d);
        next.push(e);
        let (done2, pending) = wait(next, None, FIRST_EXCEPTION).await?;
        l.at(format!(
            "no error: done {} pending {}",
            names(&done2, &named),
            names(&pending, &named)
        ));
        for t in done.into_iter().chain(done2) {
            let _ = t.await; // retrieve b's error
        }
        Ok(())
    })
    .map_err(err)?;
    log.expect(&[
        "20 FIRST_EXCEPTION done a,b pending c",
        "45 no error: done c,d,e pending -",
    ])
}

// from common import *
// async def main():
//     async def job():
//         await asyncio.sleep(0.03)
//         log("job finished")
//         return 7
//     t = asyncio.create_task(job())
//     async def waiter():
//         try:
//             await asyncio.wait({t})
//         except asyncio.CancelledError:
//             log("waiter cancelled")
//     w = asyncio.create_task(waiter())
//     await asyncio.sleep(0.01)
//     w.cancel()
//     await w
//     log(f"job cancelled {t.cancelled()}")
//     log(f"job gives {await t}")
// run(main)
fn wait_caller_cancelled() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let l1 = l.clone();
        let t = create_task(async move {
            sleep_ms(30).await?;
            l1.at("job finished");
            Ok(7)
        });
        // Our `wait` takes the handle, so the caller keeps a TaskRef to look at the task.
        let r = t.task_ref();
        let l2 = l.clone();
        let w = create_task(async move {
            if let Err(Error::Cancelled) = wait([t], None, ALL_COMPLETED).await {
                l2.at("waiter cancelled");
            }
            Ok(())
        });
        sleep_ms(10).await?;
        w.cancel()?;
        w.await?;
        l.at(format!("job cancelled {}", py(r.done())));
        sleep_ms(20).await?;
        l.at(format!("job done {}", py(r.done())));
        Ok(())
    })
    .map_err(err)?;
    log.expect(&[
        "10 waiter cancelled",
        "10 job cancelled False",
        "30 job finished",
        // Python: "30 job gives 7" (it still holds the task; our handle went with the wait).
        "30 job done True",
    ])
}

/// "ValueError: x, ValueError: y": a group error's members as the Python programs print them.
fn group_errs(e: &Error) -> String {
    match e {
        Error::Group(errs) => errs.iter().map(|e| format!("{e}")).collect::<Vec<_>>().join(", "),
        other => format!("not a group: {other:?}"),
    }
}

/// A task of a group that logs how it ended.
async fn tg_ok(l: Log, name: &'static str, ms: u32) -> uasyncio::Result<()> {
    match sleep_ms(ms).await {
        Ok(()) => {
            l.at(format!("{name} done"));
            Ok(())
        }
        Err(e) => {
            l.at(format!("{name} cancelled"));
            Err(e)
        }
    }
}

async fn tg_bad(l: Log, ms: u32, msg: &'static str) -> uasyncio::Result<()> {
    sleep_ms(ms).await?;
    l.at(format!("{msg} fails"));
    Err(Error::value(msg))
}

// from common import *
// async def main():
//     async def job(name, ms):
//         await asyncio.sleep(ms / 1000)
//         log(f"{name} done")
//         return name
//     async with asyncio.TaskGroup() as tg:
//         a = tg.create_task(job("a", 20))
//         b = tg.create_task(job("b", 10))
//         log("body done")
//     log(f"group done {a.result()} {b.result()}")
// run(main)
fn task_group_all_succeed() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let job = |name: &'static str, ms: u32| {
            let l = l.clone();
            async move {
                sleep_ms(ms).await?;
                l.at(format!("{name} done"));
                Ok(name)
            }
        };
        let lb = l.clone();
        let (a, b) = TaskGroup::run(|tg| async move {
            let a = tg.create_task(job("a", 20))?;
            let b = tg.create_task(job("b", 10))?;
            lb.at("body done");
            Ok((a, b))
        })
        .await?;
        l.at(format!("group done {} {}", a.await?, b.await?));
        Ok(())
    })
    .map_err(err)?;
    log.expect(&["0 body done", "10 b done", "20 a done", "20 group done a b"])
}

static TG_REPORTS: HandlerLog = HandlerLog::new();

fn tg_record(_lp: &uasyncio::Loop, ctx: &uasyncio::ExceptionContext) {
    TG_REPORTS.push(format!("handler {:?}", ctx.exception));
}

// from common import *
// def errs(eg):
//     return ", ".join(f"{type(e).__name__}: {e}" for e in eg.exceptions)
// async def main():
//     asyncio.get_running_loop().set_exception_handler(lambda lp, ctx: log(f"handler {ctx.get('exception')!r}"))
//     async def ok(name, ms):
//         try:
//             await asyncio.sleep(ms / 1000)
//             log(f"{name} done")
//         except asyncio.CancelledError:
//             log(f"{name} cancelled")
//             raise
//     async def bad(ms, msg):
//         await asyncio.sleep(ms / 1000)
//         log(f"{msg} fails")
//         raise ValueError(msg)
//     try:
//         async with asyncio.TaskGroup() as tg:
//             tg.create_task(ok("a", 5))
//             tg.create_task(bad(10, "x"))
//             tg.create_task(ok("b", 50))
//             try:
//                 await asyncio.sleep(1)
//             except asyncio.CancelledError:
//                 log("body cancelled")
//                 raise
//     except ExceptionGroup as eg:
//         log(f"group: {errs(eg)}")
//     await asyncio.sleep(0.1)
//     log("after")
// run(main)
fn task_group_one_fails() -> Outcome {
    let lp = fresh_loop();
    TG_REPORTS.clear();
    lp.set_exception_handler(Some(tg_record));
    let log = Log::new();
    let l = log.clone();
    let out = run(async move {
        let lb = l.clone();
        let r = TaskGroup::run(|tg| async move {
            tg.create_task(tg_ok(lb.clone(), "a", 5))?;
            tg.create_task(tg_bad(lb.clone(), 10, "x"))?;
            tg.create_task(tg_ok(lb.clone(), "b", 50))?;
            if let Err(e) = sleep_ms(1000).await {
                lb.at("body cancelled");
                return Err(e);
            }
            Ok(())
        })
        .await;
        match r {
            Err(e @ Error::Group(_)) => l.at(format!("group: {}", group_errs(&e))),
            other => other?,
        }
        sleep_ms(100).await?;
        l.at("after");
        Ok(())
    });
    lp.set_exception_handler(None);
    out.map_err(err)?;
    for line in TG_REPORTS.take() {
        log.at(line);
    }
    log.expect(&[
        "5 a done",
        "10 x fails",
        "10 b cancelled",
        "10 body cancelled",
        "10 group: ValueError: x",
        "110 after",
    ])
}

// from common import *
// def errs(eg):
//     return ", ".join(f"{type(e).__name__}: {e}" for e in eg.exceptions)
// async def main():
//     async def bad(ms, msg):
//         await asyncio.sleep(ms / 1000)
//         log(f"{msg} fails")
//         raise ValueError(msg)
//     async def fails_in_cleanup():
//         try:
//             await asyncio.sleep(1)
//         except asyncio.CancelledError:
//             log("c cancelled")
//             await asyncio.sleep(0.003)
//             log("c cleanup fails")
//             raise ValueError("z")
//     try:
//         async with asyncio.TaskGroup() as tg:
//             tg.create_task(bad(10, "x"))
//             tg.create_task(bad(10, "y"))
//             tg.create_task(fails_in_cleanup())
//             await asyncio.sleep(1)
//     except ExceptionGroup as eg:
//         log(f"group: {errs(eg)}")
// run(main)
fn task_group_two_fail() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let lb = l.clone();
        let r = TaskGroup::run(|tg| async move {
            tg.create_task(tg_bad(lb.clone(), 10, "x"))?;
            tg.create_task(tg_bad(lb.clone(), 10, "y"))?;
            let lc = lb.clone();
            tg.create_task(async move {
                if sleep_ms(1000).await.is_err() {
                    lc.at("c cancelled");
                    sleep_ms(3).await?;
                    lc.at("c cleanup fails");
                    return Err(Error::value("z"));
                }
                Ok(())
            })?;
            sleep_ms(1000).await
        })
        .await;
        match r {
            Err(e @ Error::Group(_)) => l.at(format!("group: {}", group_errs(&e))),
            other => other?,
        }
        Ok(())
    })
    .map_err(err)?;
    log.expect(&[
        "10 x fails",
        "10 y fails",
        "10 c cancelled",
        "13 c cleanup fails",
        "13 group: ValueError: x, ValueError: y, ValueError: z",
    ])
}

// from common import *
// def errs(eg):
//     return ", ".join(f"{type(e).__name__}: {e}" for e in eg.exceptions)
// async def main():
//     async def ok(name, ms):  # as in task_group::one_fails...
//     try:
//         async with asyncio.TaskGroup() as tg:
//             tg.create_task(ok("a", 5))
//             tg.create_task(ok("b", 50))
//             await asyncio.sleep(0.01)
//             log("body fails")
//             raise ValueError("body")
//     except ExceptionGroup as eg:
//         log(f"group: {errs(eg)}")
// run(main)
fn task_group_body_fails() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let lb = l.clone();
        let r = TaskGroup::run(|tg| async move {
            tg.create_task(tg_ok(lb.clone(), "a", 5))?;
            tg.create_task(tg_ok(lb.clone(), "b", 50))?;
            sleep_ms(10).await?;
            lb.at("body fails");
            Err::<(), _>(Error::value("body"))
        })
        .await;
        match r {
            Err(e @ Error::Group(_)) => l.at(format!("group: {}", group_errs(&e))),
            other => other?,
        }
        Ok(())
    })
    .map_err(err)?;
    log.expect(&[
        "5 a done",
        "10 body fails",
        "10 b cancelled",
        "10 group: ValueError: body",
    ])
}

// from common import *
// async def main():
//     async def slow_cleanup(name):
//         try:
//             await asyncio.sleep(1)
//         except asyncio.CancelledError:
//             log(f"{name} cancelled, cleaning up")
//             await asyncio.sleep(0.005)
//             log(f"{name} cleaned up")
//             raise
//     async def owner(body_ms):
//         try:
//             async with asyncio.TaskGroup() as tg:
//                 tg.create_task(asyncio.sleep(0.1))  # cancelled silently
//                 tg.create_task(slow_cleanup("b"))
//                 await asyncio.sleep(body_ms / 1000)
//                 log("body done")
//         except asyncio.CancelledError:
//             log("owner cancelled")
//             raise
//     for body_ms in (1000, 0):  # cancelled in the body, then while waiting for the tasks
//         t = asyncio.create_task(owner(body_ms))
//         await asyncio.sleep(0.01)
//         t.cancel()
//         try:
//             await t
//         except asyncio.CancelledError:
//             log("t cancelled")
// run(main)
fn task_group_owner_cancelled() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        for body_ms in [1000, 0] {
            let lo = l.clone();
            let t = create_task(async move {
                let lb = lo.clone();
                let r = TaskGroup::run(|tg| async move {
                    tg.create_task(sleep_ms(100))?;
                    let lc = lb.clone();
                    tg.create_task(async move {
                        if let Err(e) = sleep_ms(1000).await {
                            lc.at("b cancelled, cleaning up");
                            sleep_ms(5).await?;
                            lc.at("b cleaned up");
                            return Err(e);
                        }
                        Ok(())
                    })?;
                    sleep_ms(body_ms).await?;
                    lb.at("body done");
                    Ok(())
                })
                .await;
                if r == Err(Error::Cancelled) {
                    lo.at("owner cancelled");
                }
                r
            });
            sleep_ms(10).await?;
            t.cancel()?;
            match t.await {
                Err(Error::Cancelled) => l.at("t cancelled"),
                other => other?,
            }
        }
        Ok(())
    })
    .map_err(err)?;
    log.expect(&[
        "10 b cancelled, cleaning up",
        "15 b cleaned up",
        "15 owner cancelled",
        "15 t cancelled",
        "15 body done",
        "25 b cancelled, cleaning up",
        "30 b cleaned up",
        "30 owner cancelled",
        "30 t cancelled",
    ])
}

/// `RuntimeError is finished`: the type and the last two words of the message.
fn rt(e: Error) -> String {
    let msg = format!("{e}");
    let words: Vec<&str> = msg.split(' ').collect();
    format!(
        "{} {}",
        e.python_name(),
        words[words.len().saturating_sub(2)..].join(" ")
    )
}

// from common import *
// def rt(e):
//     return f"{type(e).__name__} {' '.join(str(e).split()[-2:])}"
// async def main():
//     async def nop():
//         pass
//     async with asyncio.TaskGroup() as tg:
//         pass
//     try:
//         tg.create_task(nop())
//     except RuntimeError as e:
//         log(f"after end: {rt(e)}")
//     async def bad():
//         await asyncio.sleep(0.005)
//         raise ValueError("x")
//     async def child():
//         try:
//             await asyncio.sleep(1)
//         except asyncio.CancelledError:
//             try:
//                 tg2.create_task(nop())
//             except RuntimeError as e:
//                 log(f"child, shutting down: {rt(e)}")
//             raise
//     try:
//         async with asyncio.TaskGroup() as tg2:
//             tg2.create_task(child())
//             tg2.create_task(bad())
//             try:
//                 await asyncio.sleep(1)
//             except asyncio.CancelledError:
//                 try:
//                     tg2.create_task(nop())
//                 except RuntimeError as e:
//                     log(f"body, shutting down: {rt(e)}")
//                 raise
//     except ExceptionGroup as eg:
//         log(f"group of {len(eg.exceptions)}")
// run(main)
fn task_group_create_task_refused() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let mut kept = None;
        TaskGroup::run(|tg| {
            kept = Some(tg);
            async { Ok(()) }
        })
        .await?;
        if let Some(Err(e)) = kept.map(|tg| tg.create_task(async { Ok(()) })) {
            l.at(format!("after end: {}", rt(e)));
        }
        let lb = l.clone();
        let r = TaskGroup::run(|tg2| async move {
            let (tgc, lc) = (tg2.clone(), lb.clone());
            tg2.create_task(async move {
                let r = sleep_ms(1000).await;
                if r.is_err() {
                    if let Err(e) = tgc.create_task(async { Ok(()) }) {
                        lc.at(format!("child, shutting down: {}", rt(e)));
                    }
                }
                r
            })?;
            tg2.create_task(async {
                sleep_ms(5).await?;
                Err::<(), _>(Error::value("x"))
            })?;
            let r = sleep_ms(1000).await;
            if r.is_err() {
                if let Err(e) = tg2.create_task(async { Ok(()) }) {
                    lb.at(format!("body, shutting down: {}", rt(e)));
                }
            }
            r
        })
        .await;
        match r {
            Err(Error::Group(errs)) => l.at(format!("group of {}", errs.len())),
            other => other?,
        }
        Ok(())
    })
    .map_err(err)?;
    log.expect(&[
        "0 after end: RuntimeError is finished",
        "5 child, shutting down: RuntimeError shutting down",
        "5 body, shutting down: RuntimeError shutting down",
        "5 group of 1",
    ])
}

// from common import *
// def num(t):
//     return int(t.get_name().split("-")[1])
// async def worker(d):
//     await asyncio.sleep(d / 1000)
//     log(f"{asyncio.current_task().get_name()} done")
// async def main():
//     me = asyncio.current_task()
//     a = asyncio.create_task(worker(10))
//     b = asyncio.create_task(worker(20))
//     log(f"a is main+{num(a) - num(me)}, b is main+{num(b) - num(me)}")
//     b.set_name("modem")
//     a.set_name("sensor")
//     log(f"names {sorted(t.get_name() for t in asyncio.all_tasks() if t is not me)}")
//     await asyncio.sleep(0.015)
//     log(f"all {len(asyncio.all_tasks())}, main in it {me in asyncio.all_tasks()}, a done {a.done()}, a named {a.get_name()}")
//     await b
//     log(f"all {len(asyncio.all_tasks())}")
// run(main)
fn task_names_all_tasks() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    fn num(t: &TaskRef) -> i64 {
        t.get_name()
            .strip_prefix("Task-")
            .and_then(|n| n.parse().ok())
            .unwrap_or(-1)
    }
    let worker = |log: Log, d: u32| async move {
        sleep_ms(d).await?;
        log.at(format!("{} done", uasyncio::current_task()?.get_name()));
        Ok(())
    };
    run(async move {
        let me = uasyncio::current_task()?;
        let a = create_task(worker(l.clone(), 10));
        let b = create_task(worker(l.clone(), 20));
        let (ra, rb) = (a.task_ref(), b.task_ref());
        l.at(format!(
            "a is main+{}, b is main+{}",
            num(&ra) - num(&me),
            num(&rb) - num(&me)
        ));
        b.set_name("modem");
        a.set_name("sensor");
        let mut names: Vec<String> = uasyncio::all_tasks()
            .iter()
            .filter(|t| **t != me)
            .map(|t| t.get_name())
            .collect();
        names.sort();
        l.at(format!(
            "names [{}]",
            names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
        ));
        sleep_ms(15).await?;
        let all = uasyncio::all_tasks();
        l.at(format!(
            "all {}, main in it {}, a done {}, a named {}",
            all.len(),
            py(all.contains(&me)),
            py(a.done()),
            a.get_name()
        ));
        b.await?;
        l.at(format!("all {}", uasyncio::all_tasks().len()));
        Ok(())
    })
    .map_err(err)?;
    log.expect(&[
        "0 a is main+1, b is main+2",
        "0 names ['modem', 'sensor']",
        "10 sensor done",
        "15 all 2, main in it True, a done True, a named sensor",
        "20 modem done",
        "20 all 1",
    ])
}
