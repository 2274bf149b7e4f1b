//! `wait_for` / `wait_for_ms` and `gather`, case by case.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use uasyncio::{create_task, gather, get_event_loop, run, sleep, sleep_ms, wait_for, wait_for_ms, Error, Result};

use crate::loop_api::HandlerLog;
use crate::{expect_eq, fresh_loop, Case, Log, Outcome};

pub(crate) const CASES: &[Case] = &[
    Case {
        name: "wait_for::none_is_plain_await",
        run: none_is_plain_await,
    },
    Case {
        name: "wait_for::inner_first_result_or_error",
        run: inner_first_result_or_error,
    },
    Case {
        name: "wait_for::inner_cancelled_by_third_party",
        run: inner_cancelled_by_third_party,
    },
    Case {
        name: "wait_for::timeout_waits_for_inner_cleanup",
        run: timeout_waits_for_inner_cleanup,
    },
    Case {
        name: "wait_for::inner_ignores_cancel_still_timeout",
        run: inner_ignores_cancel_still_timeout,
    },
    Case {
        name: "wait_for::caller_cancelled_raises_at_once",
        run: caller_cancelled_raises_at_once,
    },
    Case {
        name: "wait_for::accepts_an_existing_task",
        run: accepts_an_existing_task,
    },
    Case {
        name: "gather::empty_gives_empty_without_yield",
        run: empty_gives_empty_without_yield,
    },
    Case {
        name: "gather::first_error_in_time_others_keep_running",
        run: first_error_in_time,
    },
    Case {
        name: "gather::return_exceptions_in_argument_order",
        run: return_exceptions_in_order,
    },
    Case {
        name: "gather::a_subtask_left_running_reports_its_error",
        run: subtask_left_running_reports_its_error,
    },
    Case {
        name: "gather::already_failed_task_still_reported",
        run: already_failed_task_still_reported,
    },
    Case {
        name: "gather::macro_mixed_types",
        run: macro_mixed_types,
    },
];

fn none_is_plain_await() -> Outcome {
    fresh_loop();
    let out = run(async {
        wait_for(
            async {
                sleep(50.0).await?;
                Ok(3)
            },
            None,
        )
        .await
    });
    expect_eq("wait_for(aw, None)", out, Ok(3))?;
    expect_eq("time", uasyncio::ticks_ms(), 50_000)
}

fn inner_first_result_or_error() -> Outcome {
    fresh_loop();
    let out = run(async {
        let ok = wait_for_ms(
            async {
                sleep_ms(5).await?;
                Ok(1)
            },
            100,
        )
        .await;
        let err = wait_for_ms(
            async {
                sleep_ms(5).await?;
                Err::<i32, _>(Error::Os(111))
            },
            100,
        )
        .await;
        Ok((ok, err, uasyncio::ticks_ms()))
    });
    expect_eq("outcomes", out, Ok((Ok(1), Err(Error::Os(111)), 10)))
}

fn inner_cancelled_by_third_party() -> Outcome {
    fresh_loop();
    let out = run(async {
        let inner = create_task(async { sleep(10.0).await });
        let r = inner.task_ref();
        create_task(async move {
            sleep_ms(5).await?;
            r.cancel()
        });
        Ok(wait_for(inner, 1.0).await)
    });
    expect_eq("outcome", out, Ok(Err(Error::Cancelled)))
}

fn timeout_waits_for_inner_cleanup() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let l1 = l.clone();
        let r = wait_for_ms(
            async move {
                if let Err(e) = sleep(10.0).await {
                    l1.at(format!("inner got {e}"));
                    sleep_ms(50).await?;
                    l1.at("inner cleanup done");
                    return Err(e);
                }
                Ok(())
            },
            100,
        )
        .await;
        l.at(format!("wait_for -> {r:?}"));
        Ok(())
    })
    .map_err(|e| format!("{e}"))?;
    log.expect(&[
        "100 inner got CancelledError",
        "150 inner cleanup done",
        "150 wait_for -> Err(Timeout)",
    ])
}

fn inner_ignores_cancel_still_timeout() -> Outcome {
    fresh_loop();
    let out = run(async {
        let r = wait_for_ms(
            async {
                let _ = sleep(10.0).await; // ignores the cancel
                sleep_ms(10).await?;
                Ok("a value")
            },
            20,
        )
        .await;
        Ok((r, uasyncio::ticks_ms()))
    });
    expect_eq("outcome", out, Ok((Err(Error::Timeout), 30)))
}

fn caller_cancelled_raises_at_once() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    run(async move {
        let (l1, l2) = (l.clone(), l.clone());
        let caller = create_task(async move {
            let r = wait_for_ms(
                async move {
                    if let Err(e) = sleep(10.0).await {
                        sleep_ms(30).await?;
                        l2.at("inner cleanup done");
                        return Err(e);
                    }
                    Ok(())
                },
                1000,
            )
            .await;
            l1.at(format!("caller -> {r:?}"));
            r
        });
        sleep_ms(10).await?;
        caller.cancel()?;
        let _ = caller.await;
        sleep_ms(100).await
    })
    .map_err(|e| format!("{e}"))?;
    log.expect(&["10 caller -> Err(Cancelled)", "40 inner cleanup done"])
}

fn accepts_an_existing_task() -> Outcome {
    fresh_loop();
    let out = run(async {
        let t = create_task(async {
            sleep_ms(5).await?;
            Ok(9)
        });
        let id = t.task_ref();
        let v = wait_for_ms(t, 100).await?;
        Ok((v, id.done()))
    });
    expect_eq("outcome", out, Ok((9, true)))
}

fn empty_gives_empty_without_yield() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    let out = run(async move {
        let l1 = l.clone();
        create_task(async move {
            l1.put("other task ran");
            Ok(())
        });
        let v: Vec<i32> = gather(Vec::<core::future::Ready<Result<i32>>>::new()).await?;
        l.put("after gather");
        sleep_ms(0).await?;
        Ok(v)
    });
    expect_eq("result", out, Ok(vec![]))?;
    log.expect(&["after gather", "other task ran"])
}

fn first_error_in_time() -> Outcome {
    fresh_loop();
    let log = Log::new();
    let l = log.clone();
    let out = run(async move {
        let mk = |ms: u32, out: Result<u32>, l: Log| async move {
            sleep_ms(ms).await?;
            l.at(format!("sub {ms} done"));
            out
        };
        let r = gather(vec![
            mk(30, Ok(1), l.clone()),
            mk(20, Err(Error::runtime("second")), l.clone()),
            mk(10, Err(Error::value("first")), l.clone()),
        ])
        .await;
        l.at(format!("gather -> {r:?}"));
        sleep_ms(50).await?;
        Ok(r)
    });
    expect_eq("gather", out, Ok(Err(Error::value("first"))))?;
    log.expect(&[
        "10 sub 10 done",
        "10 gather -> Err(Value(\"first\"))",
        "20 sub 20 done",
        "30 sub 30 done",
    ])
}

fn return_exceptions_in_order() -> Outcome {
    fresh_loop();
    let out = run(async {
        let victim = create_task(async {
            sleep(10.0).await?;
            Ok(0)
        });
        let r = victim.task_ref();
        create_task(async move {
            sleep_ms(5).await?;
            r.cancel()
        });
        let a = create_task(async {
            sleep_ms(20).await?;
            Ok(1)
        });
        let b = create_task(async {
            sleep_ms(10).await?;
            Err(Error::Eof)
        });
        gather(vec![a, victim, b]).return_exceptions().await
    });
    expect_eq("outcomes", out, Ok(vec![Ok(1), Err(Error::Cancelled), Err(Error::Eof)]))
}

static REPORTS: HandlerLog = HandlerLog::new();

fn record(_lp: &uasyncio::Loop, ctx: &uasyncio::ExceptionContext) {
    REPORTS.push(format!("{:?}", ctx.exception));
}

/// The gather's own sub-tasks count as awaited while it waits: the error it returns is not
/// reported. A sub-task still running when the gather returns is detached (MicroPython's
/// gather sets its state back to "running, nobody waiting"), so its later error reaches the
/// exception handler.
fn subtask_left_running_reports_its_error() -> Outcome {
    let lp = fresh_loop();
    REPORTS.clear();
    lp.set_exception_handler(Some(record));
    let out = run(async {
        let r = gather(vec![
            create_task(async {
                sleep_ms(1).await?;
                Err::<(), _>(Error::value("a"))
            }),
            create_task(async {
                sleep_ms(2).await?;
                Err(Error::value("b"))
            }),
        ])
        .await;
        sleep_ms(10).await?; // b fails after the gather returned
        Ok(r)
    });
    expect_eq("gather", out, Ok(Err(Error::value("a"))))?;
    expect_eq("reports", REPORTS.take(), vec![String::from("Some(Value(\"b\"))")])?;
    lp.set_exception_handler(None);
    Ok(())
}

fn already_failed_task_still_reported() -> Outcome {
    let lp = fresh_loop();
    REPORTS.clear();
    lp.set_exception_handler(Some(record));
    let out = run(async {
        let dead = create_task(async { Err::<(), _>(Error::value("early")) });
        sleep_ms(0).await?; // `dead` fails now; its report is due one pass later
        let r = gather(vec![dead]).return_exceptions().await;
        sleep_ms(1).await?;
        Ok(r)
    });
    expect_eq("gather", out, Ok(Ok(vec![Err(Error::value("early"))])))?;
    expect_eq("reports", REPORTS.take(), vec![String::from("Some(Value(\"early\"))")])?;
    lp.set_exception_handler(None);
    Ok(())
}

fn macro_mixed_types() -> Outcome {
    fresh_loop();
    let out = run(async {
        let t = create_task(async {
            sleep_ms(3).await?;
            Ok(2.5f32)
        });
        let (a, b, c) = uasyncio::gather!(async { Ok(1u8) }, t, async {
            sleep_ms(1).await?;
            Ok("three")
        })
        .await?;
        let failed = uasyncio::gather!(async { Ok(1u8) }, async { Err::<(), _>(Error::Timeout) }).await;
        Ok((a, b, c, failed.err(), get_event_loop().live_tasks()))
    });
    // Only the main task is still alive.
    expect_eq("gather!", out, Ok((1, 2.5, "three", Some(Error::Timeout), 1)))
}
