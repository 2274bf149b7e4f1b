//! A task that panics on the host (`std`, the panic unwinds): the panic goes on out of `run`,
//! and the loop stays whole: the task has ended with `RuntimeError("the task panicked")`, its
//! joiner gets that error, and `run_forever()` does not wait for it.

use uasyncio::{create_task, get_event_loop, run, sleep_ms, Error};

#[test]
fn a_panicking_task_ends_and_the_loop_stays_usable() {
    // Quiet: the panic is expected.
    std::panic::set_hook(Box::new(|_| {}));
    let joined = create_task(async {
        sleep_ms(1).await?;
        if std::hint::black_box(true) {
            panic!("boom");
        }
        Ok(1u32)
    });
    let r = std::panic::catch_unwind(|| {
        run(async {
            sleep_ms(5).await?;
            Ok(())
        })
    });
    let _ = std::panic::take_hook();
    let payload = r.expect_err("the task's panic goes on out of run()");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));

    let lp = get_event_loop();
    // The panicked task is over; left is the first run's main coroutine, whose run unwound
    // while it slept (it finishes in the next run, when its timer fires).
    assert_eq!(lp.live_tasks(), 1, "the panicked task is still counted");
    // Its handle gives the error; a later run_forever() returns once nothing is left.
    let got = run(async move { Ok(joined.await) }).expect("run after the panic");
    match got {
        Err(Error::Runtime(m)) => assert_eq!(m, "the task panicked"),
        other => panic!("awaiting the panicked task gave {other:?}"),
    }
    lp.run_forever().expect("run_forever after the panic");
    assert_eq!(lp.live_tasks(), 0);
}
