//! A gather that ends before all its sub-tasks finish (the first error, a cancel of the
//! gathering task) or is dropped unfinished leaves them running as detached tasks: an error
//! they end with later reaches the exception handler, as MicroPython's gather leaves them
//! (and as a task whose handle was dropped does). Before, those errors were lost silently.

use std::cell::RefCell;
use std::future::Future as _;
use std::pin::Pin;

use uasyncio::{create_task, gather, get_event_loop, run, sleep_ms, wait_for_ms, Error, ExceptionContext, Loop};

thread_local! {
    static REPORTS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn recording(_lp: &Loop, ctx: &ExceptionContext) {
    let text = format!(
        "{} | {}",
        ctx.message,
        ctx.exception.as_ref().map(|e| e.to_string()).unwrap_or_default()
    );
    REPORTS.with(|r| r.borrow_mut().push(text));
}

fn reports() -> Vec<String> {
    REPORTS.with(|r| r.borrow_mut().drain(..).collect())
}

type Job = Pin<Box<dyn std::future::Future<Output = uasyncio::Result<()>>>>;

fn fails_after(ms: u32, what: &'static str) -> Job {
    Box::pin(async move {
        sleep_ms(ms).await?;
        Err(Error::value(what))
    })
}

#[test]
fn a_sub_task_that_fails_after_the_gather_ended_is_reported() {
    get_event_loop().set_exception_handler(Some(recording));
    let out = run(async {
        let first = gather(vec![fails_after(5, "g1"), fails_after(20, "g2")]).await;
        assert_eq!(first.unwrap_err(), Error::value("g1"));
        sleep_ms(40).await
    });
    get_event_loop().set_exception_handler(None);
    out.unwrap();
    assert_eq!(reports(), ["Task exception wasn't retrieved | ValueError: g2"]);
}

#[test]
fn a_sub_task_that_ignores_the_gathers_cancel_and_fails_is_reported() {
    get_event_loop().set_exception_handler(Some(recording));
    let out = run(async {
        let stubborn: Job = Box::pin(async {
            // Swallows the cancel, then fails on its own.
            let _ = sleep_ms(1000).await;
            sleep_ms(10).await?;
            Err(Error::value("after the cancel"))
        });
        let gatherer = create_task(async move { gather(vec![stubborn]).await.map(|_| ()) });
        sleep_ms(5).await?;
        gatherer.cancel()?;
        assert_eq!(gatherer.await, Err(Error::Cancelled));
        sleep_ms(30).await
    });
    get_event_loop().set_exception_handler(None);
    out.unwrap();
    assert_eq!(
        reports(),
        ["Task exception wasn't retrieved | ValueError: after the cancel"]
    );
}

#[test]
fn a_gather_dropped_unfinished_leaves_its_sub_tasks_reporting() {
    get_event_loop().set_exception_handler(Some(recording));
    let out = run(async {
        // Polled once (it claims its sub-task), then dropped, as a `select` drops the loser.
        let mut g = Box::pin(gather(vec![fails_after(20, "late")]));
        std::future::poll_fn(|cx| {
            assert!(g.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        drop(g);
        sleep_ms(40).await
    });
    get_event_loop().set_exception_handler(None);
    out.unwrap();
    assert_eq!(reports(), ["Task exception wasn't retrieved | ValueError: late"]);
}

#[test]
fn a_gather_cancelled_by_wait_for_cancels_its_sub_tasks_silently() {
    get_event_loop().set_exception_handler(Some(recording));
    let out = run(async {
        // wait_for runs the gather as a task and cancels it at the timeout; the gather cancels
        // its sub-task, and a cancel is not an error to report.
        let timed_out = wait_for_ms(gather(vec![fails_after(20, "late")]), 5).await;
        assert_eq!(timed_out.unwrap_err(), Error::Timeout);
        sleep_ms(40).await
    });
    get_event_loop().set_exception_handler(None);
    out.unwrap();
    assert_eq!(reports(), Vec::<String>::new());
}

#[test]
fn errors_the_gather_returned_or_that_came_first_are_not_reported_again() {
    get_event_loop().set_exception_handler(Some(recording));
    let out = run(async {
        let all = gather(vec![fails_after(5, "a"), fails_after(10, "b")])
            .return_exceptions()
            .await?;
        assert_eq!(all, vec![Err(Error::value("a")), Err(Error::value("b"))]);
        let first = gather(vec![fails_after(5, "c"), fails_after(5, "d")]).await;
        assert_eq!(first.unwrap_err(), Error::value("c"));
        sleep_ms(20).await
    });
    get_event_loop().set_exception_handler(None);
    out.unwrap();
    assert_eq!(reports(), Vec::<String>::new());
}
