//! The C API's task dump: `uasyncio_dump_tasks` (snprintf-like) and `uasyncio_log_tasks`.
#![cfg(feature = "ffi")]

use core::ffi::{c_char, CStr};

use uasyncio::ffi::{self, E_INVAL, E_STATE, OK};
use uasyncio::{create_task, run, sleep_ms, Event};

fn dump(len: usize) -> (i32, String) {
    let mut buf = vec![0x55 as c_char; len.max(1)];
    // SAFETY: `buf` holds at least `len` bytes.
    let rc = unsafe { ffi::uasyncio_dump_tasks(buf.as_mut_ptr(), len) };
    let text = if len > 0 {
        // SAFETY: the function NUL-terminates within `len` bytes when it succeeds; on an error
        // it writes nothing and the buffer holds no NUL, so only read it after success.
        if rc >= 0 {
            unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
        } else {
            String::new()
        }
    } else {
        String::new()
    };
    (rc, text)
}

#[test]
fn dump_names_states_and_waits() {
    run(async {
        let ev = std::rc::Rc::new(Event::new());
        let e2 = ev.clone();
        let waiter = create_task(async move { e2.wait().await });
        waiter.set_name("modem rx");
        // Still asleep at the dump however late this thread gets there; cancelled at the end.
        let sleeper = create_task(sleep_ms(60_000));
        sleeper.set_name("poller");
        sleep_ms(1).await?;

        let (need, _) = dump(0);
        assert!(need > 0, "len 0 measures: {need}");
        let (rc, text) = dump(4096);
        assert_eq!(rc, need);
        assert_eq!(text.len(), rc as usize);
        assert!(text.starts_with("uasyncio: 3 unfinished task(s);"), "{text}");
        assert!(text.contains("'modem rx' waiting on Event.wait"), "{text}");
        assert!(text.contains("'poller' waiting on sleep"), "{text}");
        assert!(text.contains(" running"), "the caller is running: {text}");

        // Cut like snprintf: len - 1 bytes and a NUL; the return still says the whole length.
        let (rc, cut) = dump(16);
        assert_eq!(rc, need);
        assert_eq!(cut.len(), 15);
        assert!(text.starts_with(&cut));

        assert_eq!(ffi::uasyncio_log_tasks(), OK);
        ev.set();
        waiter.await?;
        sleeper.cancel()?;
        let end = sleeper.await;
        assert!(end.as_ref().is_err_and(|e| e.is_cancelled()), "{end:?}");
        Ok(())
    })
    .unwrap();
}

#[test]
fn dump_refuses_bad_input_and_other_threads() {
    // SAFETY: NULL with a length is refused before any write.
    assert_eq!(unsafe { ffi::uasyncio_dump_tasks(core::ptr::null_mut(), 8) }, E_INVAL);
    // A thread without a loop: the loop's data is not this thread's to read.
    let rc = std::thread::spawn(|| dump(64).0).join().unwrap();
    assert_eq!(rc, E_STATE);
    assert_eq!(
        std::thread::spawn(|| ffi::uasyncio_log_tasks()).join().unwrap(),
        E_STATE
    );
}
