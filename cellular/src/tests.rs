//! Scenario tests: the AT client, the modem and the supervisor against the fake modem, on
//! virtual time.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::cell::RefCell;
use std::string::String;

use crate::at::{AtClient, AtErrorKind, Final, RegKind, RegStatus, Urc};
use crate::error::{CellularError, Layer, RegistrationProblem, SimProblem};
use crate::link::{DataLink, LinkEnd, Supervisor, SupervisorConfig, UpSignal};
use crate::modem::{Modem, ModemConfig};
use crate::testkit::{fake_modem, pipe, End, Record, Script};

/// Runs `f(host_end, record)` against a fake modem with `script`, on virtual time; checks
/// that no task is left behind.
fn scenario<T: 'static>(
    script: Script,
    f: impl AsyncFnOnce(End, Rc<RefCell<Record>>, Rc<RefCell<crate::testkit::Half>>) -> T + 'static,
) -> T {
    let lp = uasyncio::new_event_loop().unwrap();
    lp.use_virtual_time(true);
    uasyncio::run(async move {
        let (host, dev, log) = pipe();
        let rec = Rc::new(RefCell::new(Record::default()));
        let modem = uasyncio::create_task(fake_modem(dev, script, rec.clone()));
        let out = f(host, rec, log).await; // drops the host end: the modem sees EOF
        modem.await?;
        assert_eq!(uasyncio::get_event_loop().live_tasks(), 1, "only the main task is left");
        Ok(out)
    })
    .unwrap()
}

fn cfg() -> ModemConfig {
    let mut c = ModemConfig::new("internet.test");
    c.registration_timeout_ms = 60_000;
    c
}

#[test]
fn at_skips_echo_routes_urcs_and_drops_garbage() {
    let script = Script {
        urcs_mid_command: true,
        garbage: true,
        ..Script::default()
    };
    scenario(script, async |host, _rec, _log| {
        let mut at = AtClient::new(host);
        let r = at.command(b"AT+CPIN?", 1000).await.unwrap();
        assert_eq!(r.lines, ["+CPIN: READY"]);
        assert_eq!(r.final_code, Final::Ok);
        assert_eq!(
            at.take_urc(),
            Some(Urc::Registration {
                kind: RegKind::Creg,
                stat: RegStatus::Searching
            })
        );
        assert_eq!(at.take_urc(), Some(Urc::Other("+QIND: \"csq\",20".into())));
        assert_eq!(at.take_urc(), Some(Urc::Ring));
        assert_eq!(at.take_urc(), None);
        assert!(at.garbage_lines() >= 1);
        // The answer to AT+CREG? is the command's own line, not a URC.
        let r = at.command(b"AT+CREG?", 1000).await.unwrap();
        assert_eq!(r.lines, ["+CREG: 1,1"]);
        assert_eq!(at.take_urc(), None);
    });
}

#[test]
fn at_cme_errors_numeric_and_verbose() {
    for verbose in [false, true] {
        let script = Script {
            sim: "NOSIM",
            verbose_errors: verbose,
            ..Script::default()
        };
        scenario(script, async move |host, _rec, _log| {
            let mut at = AtClient::new(host);
            let e = at.command(b"AT+CPIN?", 1000).await.unwrap_err();
            assert_eq!(e.command, "AT+CPIN?");
            match &e.kind {
                AtErrorKind::Cme(c) if !verbose => assert_eq!(c.code, Some(10)),
                AtErrorKind::Cme(c) => assert_eq!(c.text.as_deref(), Some("SIM not inserted")),
                other => panic!("{other:?}"),
            }
            assert!(e.to_string().contains("SIM not inserted"), "{e}");
        });
    }
}

#[test]
fn a_command_answered_only_by_other_lines_says_so() {
    // The dial gets a garbage line and a line that is no result code: not "no answer".
    let script = Script {
        garbage: true,
        dial: "xyzzy",
        ..Script::default()
    };
    scenario(script, async |host, _rec, _log| {
        let mut at = AtClient::new(host);
        let e = at.command(b"ATD*99***1#", 500).await.unwrap_err();
        assert!(e.is_timeout());
        assert!(matches!(&e.kind, AtErrorKind::Unanswered { ms: 500, .. }), "{e:?}");
        assert!(
            e.to_string() == "no result code to ATD*99***1# within 500 ms, only other lines (last: \"xyzzy\")",
            "{e}"
        );
        let c = CellularError::At(e);
        assert!(
            c.to_string()
                .ends_with("check the baud rate, and that nothing else writes to this port"),
            "{c}"
        );
    });
}

#[test]
fn at_timeout_names_the_command() {
    let script = Script {
        silent: true,
        ..Script::default()
    };
    scenario(script, async |host, _rec, _log| {
        let mut at = AtClient::new(host);
        let t0 = uasyncio::ticks_ms();
        let e = at.command(b"AT+CSQ", 750).await.unwrap_err();
        assert_eq!(uasyncio::ticks_ms() - t0, 750);
        assert_eq!(e.kind, AtErrorKind::Timeout { ms: 750 });
        assert_eq!(e.to_string(), "no answer to AT+CSQ within 750 ms");
        assert!(matches!(
            at.command(b"AT\rX", 10).await.unwrap_err().kind,
            AtErrorKind::Invalid(_)
        ));
    });
}

#[test]
fn bring_up_happy_path_with_echo_and_garbage() {
    let script = Script {
        garbage: true,
        urcs_mid_command: true,
        ..Script::default()
    };
    scenario(script, async |host, rec, _log| {
        let mut m = Modem::new(host, cfg());
        let c = m.bring_up().await.unwrap();
        assert_eq!(c.rate.as_deref(), Some("150000000"));
        assert_eq!(c.registration, RegStatus::Home);
        let cmds = rec.borrow().commands.clone();
        assert_eq!(cmds[..4], ["AT", "ATE0", "AT+CMEE=1", "AT+CPIN?"]);
        assert!(
            cmds.contains(&"AT+CGDCONT=1,\"IP\",\"internet.test\"".to_string()),
            "{cmds:?}"
        );
        assert_eq!(cmds.last().map(String::as_str), Some("ATD*99***1#"));
    });
}

#[test]
fn no_sim_is_a_sim_error_with_advice() {
    let script = Script {
        sim: "NOSIM",
        ..Script::default()
    };
    scenario(script, async |host, _rec, _log| {
        let e = Modem::new(host, cfg()).bring_up().await.unwrap_err();
        assert_eq!(e.layer(), Some(Layer::Sim));
        assert_eq!(
            e.to_string(),
            "SIM: +CME ERROR: 10 (SIM not inserted) - check the SIM card (inserted, contacts, not blocked)"
        );
    });
}

/// A modem whose SIM asks for a PIN (it accepts "1234").
fn pin_locked() -> Script {
    Script {
        sim: "SIM PIN",
        ..Script::default()
    }
}

/// How many PINs the fake modem was sent (`AT+CPIN=...`).
fn pins_sent(rec: &RefCell<Record>) -> usize {
    rec.borrow()
        .commands
        .iter()
        .filter(|c| c.starts_with("AT+CPIN="))
        .count()
}

/// The test configuration with `pin` set.
fn cfg_with_pin(pin: &str) -> ModemConfig {
    let mut c = cfg();
    c.pin = Some(pin.into());
    c
}

#[test]
fn sim_pin_sent_when_configured_else_clear_error() {
    let script = pin_locked();
    scenario(script.clone(), async |host, rec, _log| {
        Modem::new(host, cfg_with_pin("1234")).bring_up().await.unwrap();
        assert!(rec.borrow().commands.contains(&"AT+CPIN=\"1234\"".to_string()));
    });
    scenario(script, async |host, _rec, _log| {
        let e = Modem::new(host, cfg()).bring_up().await.unwrap_err();
        assert_eq!(e, CellularError::Sim(SimProblem::PinRequired));
    });
    scenario(Script::default(), async |host, _rec, _log| {
        let e = Modem::new(host, cfg_with_pin("12a4")).bring_up().await.unwrap_err();
        assert_eq!(e.layer(), Some(Layer::Config));
    });
}

#[test]
fn a_wrong_pin_is_sent_once_and_the_supervisor_stops() {
    let script = pin_locked();
    // The modem never sends a PIN the SIM rejected again: each try uses one of three.
    scenario(script.clone(), async |host, rec, _log| {
        let mut modem = Modem::new(host, cfg_with_pin("0000"));
        for _ in 0..2 {
            let e = modem.bring_up().await.unwrap_err();
            assert_eq!(e, CellularError::Sim(SimProblem::WrongPin));
            assert!(e.to_string().contains("fix ModemConfig::pin"), "{e}");
        }
        assert_eq!(pins_sent(&rec), 1);
    });
    // The supervisor stops at once (no back-off, no redial), even with no failure limit.
    scenario(script, async |host, rec, _log| {
        let c = cfg_with_pin("0000");
        let link = FakeLink {
            sessions: VecDeque::new(),
            runs: Rc::default(),
        };
        let mut sup = Supervisor::new(Modem::new(host, c), link, SupervisorConfig::default());
        let e = sup.run().await;
        assert_eq!(e, CellularError::Sim(SimProblem::WrongPin));
        assert_eq!(sup.state().last_error(), Some(e));
        assert_eq!(pins_sent(&rec), 1);
    });
}

#[test]
fn registration_denied() {
    let script = Script {
        reg: Vec::from([(0, 2), (5_000, 3)]),
        ..Script::default()
    };
    scenario(script, async |host, _rec, _log| {
        let e = Modem::new(host, cfg()).bring_up().await.unwrap_err();
        assert_eq!(e, CellularError::Registration(RegistrationProblem::Denied));
        assert!(e.to_string().contains("denied"));
    });
}

#[test]
fn slow_registration_roaming_and_no_lte() {
    let script = Script {
        reg: Vec::from([(0, 0), (3_000, 2), (30_000, 5)]),
        no_lte: true,
        ..Script::default()
    };
    scenario(script, async |host, _rec, _log| {
        let c = Modem::new(host, cfg()).bring_up().await.unwrap();
        assert_eq!(c.registration, RegStatus::Roaming);
        let t = uasyncio::ticks_ms();
        assert!(
            (30_000..32_100).contains(&t),
            "registered at the first poll after 30 s: {t}"
        );
    });
}

#[test]
fn registration_timeout_reports_last_status() {
    let script = Script {
        reg: Vec::from([(0, 2)]),
        ..Script::default()
    };
    scenario(script, async |host, _rec, _log| {
        let mut c = cfg();
        c.registration_timeout_ms = 10_000;
        let e = Modem::new(host, c).bring_up().await.unwrap_err();
        match e {
            CellularError::Registration(RegistrationProblem::Timeout { last, waited_ms }) => {
                assert_eq!(last, RegStatus::Searching);
                assert_eq!(waited_ms, 10_000);
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn silent_modem_fails_sync_after_bounded_attempts() {
    let script = Script {
        silent: true,
        ..Script::default()
    };
    scenario(script, async |host, _rec, log| {
        let c = cfg();
        // The settle read before the first `AT`, the tries, the escape's two guard times.
        let expected = u64::from((1 + c.sync_attempts) * c.sync_timeout_ms + 2 * c.guard_ms);
        let e = Modem::new(host, c).bring_up().await.unwrap_err();
        assert_eq!(e.layer(), Some(Layer::At));
        assert!(e.to_string().contains("check the modem's power"), "{e}");
        assert_eq!(uasyncio::ticks_ms(), expected);
        let sent: Vec<u8> = log.borrow().log.iter().map(|&(_, b)| b).collect();
        assert!(sent.windows(3).any(|w| w == b"+++"), "escape tried once");
    });
}

#[test]
fn a_modem_left_in_data_mode_is_escaped_during_sync() {
    let script = Script {
        start_in_data_mode: true,
        ..Script::default()
    };
    scenario(script, async |host, rec, _log| {
        Modem::new(host, cfg()).bring_up().await.unwrap();
        assert_eq!(rec.borrow().escapes.len(), 1);
    });
}

/// The `+++` has `guard_ms` of silence from us before and after it.
#[test]
fn hang_up_respects_guard_times() {
    scenario(Script::default(), async |host, rec, log| {
        let mut m = Modem::new(host, cfg());
        m.bring_up().await.unwrap();
        use embedded_io_async::Write;
        m.io_mut().write_all(b"~data~").await.unwrap();
        m.hang_up().await.unwrap();
        let guard = u64::from(m.config().guard_ms);
        let log = log.borrow().log.clone();
        let i = log.windows(3).position(|w| w.iter().all(|&(_, b)| b == b'+')).unwrap();
        let (t_plus, _) = log[i];
        assert_eq!(log[i + 2].0, t_plus, "+++ sent at once");
        assert!(t_plus - log[i - 1].0 >= guard, "silence before");
        assert!(log[i + 3].0 - t_plus >= guard, "silence after");
        assert_eq!(rec.borrow().escapes.len(), 1);
        assert_eq!(rec.borrow().commands.last().map(String::as_str), Some("ATH"));
    });
}

/// A modem that answers the `+++` after the client's guard time (a slow modem, or a busy
/// host under a simulator) puts an `OK` on the line that the `ATH` takes as its answer; the
/// `ATH`'s own `OK` then waits in the input. The next bring-up must not take it as the answer
/// to its first command: every later answer would belong to the command before (here
/// `AT+CPIN?` got a bare `OK` and the SIM was reported "locked ()").
#[test]
fn a_late_answer_to_the_escape_does_not_shift_later_answers() {
    let script = Script {
        escape_answer_ms: 1_500,
        ..Script::default()
    };
    scenario(script, async |host, _rec, _log| {
        let mut m = Modem::new(host, cfg());
        assert!(m.config().guard_ms < 1_500);
        m.bring_up().await.unwrap();
        m.hang_up().await.unwrap();
        uasyncio::sleep_ms(2_000).await.unwrap();
        let c = m.bring_up().await.unwrap();
        assert_eq!(c.registration, RegStatus::Home);
    });
}

/// `AT+CPIN?` answered by a bare `OK` (an earlier command's, its real answer coming late) is
/// asked again once the line settled, not reported as a SIM "locked ()".
#[test]
fn a_bare_ok_to_the_sim_query_is_asked_again() {
    let script = Script {
        first_cpin_late: true,
        ..Script::default()
    };
    scenario(script, async |host, rec, _log| {
        Modem::new(host, cfg()).bring_up().await.unwrap();
        let asked = rec.borrow().commands.iter().filter(|c| *c == "AT+CPIN?").count();
        assert_eq!(asked, 2);
    });
}

#[test]
fn hang_up_tolerates_command_mode() {
    scenario(Script::default(), async |host, rec, _log| {
        let mut m = Modem::new(host, cfg());
        m.hang_up().await.unwrap();
        let cmds = rec.borrow().commands.clone();
        assert_eq!(cmds, ["+++ATH", "ATH"]);
    });
}

/// A scripted data link: each session (up after ms, end after ms more, how it ends).
struct FakeLink {
    sessions: VecDeque<(Option<u32>, u32, LinkEnd)>,
    runs: Rc<RefCell<Vec<(u64, u64)>>>,
}

impl DataLink for FakeLink {
    async fn run<IO: embedded_io_async::Read + embedded_io_async::Write>(
        &mut self,
        io: &mut IO,
        up: &UpSignal,
    ) -> LinkEnd {
        let t0 = uasyncio::ticks_ms();
        let (up_after, end_after, end) =
            self.sessions
                .pop_front()
                .unwrap_or((None, 1_000, LinkEnd::NegotiationTimeout { phase: "LCP" }));
        let _ = io.write_all(b"~\x7d\x23~").await;
        let r = async {
            if let Some(ms) = up_after {
                uasyncio::sleep_ms(ms).await?;
                up.up();
            }
            uasyncio::sleep_ms(end_after).await
        }
        .await;
        self.runs.borrow_mut().push((t0, uasyncio::ticks_ms()));
        match r {
            Ok(()) => end,
            Err(_) => LinkEnd::Cancelled,
        }
    }
}

#[test]
fn supervisor_redials_with_backoff_and_gives_up() {
    scenario(Script::default(), async |host, rec, _log| {
        let runs = Rc::new(RefCell::new(Vec::new()));
        let link = FakeLink {
            sessions: VecDeque::from([
                (Some(100), 5_000, LinkEnd::NoCarrier),
                (None, 1_000, LinkEnd::NegotiationTimeout { phase: "LCP" }),
                (None, 1_000, LinkEnd::NegotiationTimeout { phase: "IPCP" }),
                (None, 1_000, LinkEnd::EchoTimeout),
            ]),
            runs: runs.clone(),
        };
        let cfg = SupervisorConfig {
            backoff_min_ms: 1_000,
            backoff_max_ms: 1_500,
            max_consecutive_failures: Some(3),
        };
        let modem_cfg = crate::modem::ModemConfig {
            guard_ms: 1_100,
            ..cfg_fn()
        };
        let settle = u64::from(modem_cfg.sync_timeout_ms);
        let mut sup = Supervisor::new(Modem::new(host, modem_cfg), link, cfg);
        let state = sup.state();
        // A watcher sees the link go up and down.
        let watcher = {
            let state = state.clone();
            uasyncio::create_task(async move {
                state.wait_up().await?;
                let t_up = uasyncio::ticks_ms();
                state.wait_down().await?;
                Ok((t_up, uasyncio::ticks_ms()))
            })
        };
        let e = sup.run().await;
        assert_eq!(e, CellularError::GaveUp { failures: 3 });
        let (t_up, t_down) = watcher.await.unwrap();
        let runs = runs.borrow().clone();
        assert_eq!(runs.len(), 4);
        assert_eq!(t_up, runs[0].0 + 100);
        assert_eq!(t_down, runs[0].1);
        // Between sessions: hang-up (two guard times) + back-off + the bring-up's settle read
        // (its commands are answered at once).
        let gaps: Vec<u64> = runs.windows(2).map(|w| w[1].0 - w[0].1).collect();
        assert_eq!(
            gaps,
            [2_200 + 1_000 + settle, 2_200 + 1_000 + settle, 2_200 + 1_500 + settle],
            "1 s after a drop, then doubling, capped"
        );
        let s = state.stats();
        assert_eq!((s.dials, s.ups, s.drops, s.consecutive_failures), (4, 1, 1, 3));
        assert!(!state.is_up());
        assert_eq!(state.last_error_layer(), Some(Layer::Ppp));
        assert_eq!(rec.borrow().connects, 4);
        assert_eq!(rec.borrow().escapes.len(), 4, "every session hung up");
        drop(sup);
    });
}

fn cfg_fn() -> ModemConfig {
    cfg()
}

#[test]
fn supervisor_counts_bring_up_failures_and_cancel_hangs_up() {
    // Dial fails twice (NO CARRIER), then the supervisor gives up.
    let script = Script {
        dial: "NO CARRIER",
        ..Script::default()
    };
    scenario(script, async |host, _rec, _log| {
        let link = FakeLink {
            sessions: VecDeque::new(),
            runs: Rc::default(),
        };
        let cfg = SupervisorConfig {
            max_consecutive_failures: Some(2),
            ..SupervisorConfig::default()
        };
        let mut sup = Supervisor::new(Modem::new(host, cfg_fn()), link, cfg);
        assert_eq!(sup.run().await, CellularError::GaveUp { failures: 2 });
        let last = sup.state().last_error().unwrap();
        assert_eq!(last.layer(), Some(Layer::At));
        assert!(last.to_string().contains("NO CARRIER - the data call failed"), "{last}");
    });
    // Cancel while the link is up: hang-up, state down, Cancelled.
    scenario(Script::default(), async |host, rec, _log| {
        let runs = Rc::new(RefCell::new(Vec::new()));
        let link = FakeLink {
            sessions: VecDeque::from([(Some(10), 1_000_000, LinkEnd::NoCarrier)]),
            runs,
        };
        let sup = Supervisor::new(Modem::new(host, cfg_fn()), link, SupervisorConfig::default());
        let state = sup.state();
        let task = uasyncio::create_task(async move {
            let mut sup = sup;
            Ok(sup.run().await)
        });
        state.wait_up().await.unwrap();
        task.cancel().unwrap();
        let e = task.await.unwrap();
        assert_eq!(e, CellularError::Cancelled);
        assert!(!state.is_up());
        assert_eq!(rec.borrow().escapes.len(), 1);
    });
    // The call drops on its own (NO CARRIER), and the application cancels as its stream
    // fails, while the supervisor is hanging up: the cancel ends the run (it was taken by
    // the hang-up's guard time and, before, lost: the supervisor redialled for ever).
    scenario(Script::default(), async |host, rec, _log| {
        let link = FakeLink {
            sessions: VecDeque::from([(Some(10), 100, LinkEnd::NoCarrier)]),
            runs: Rc::default(),
        };
        // Bounded, so that a lost cancel ends in `GaveUp` instead of redialling for ever.
        let cfg = SupervisorConfig {
            max_consecutive_failures: Some(3),
            ..SupervisorConfig::default()
        };
        let sup = Supervisor::new(Modem::new(host, cfg_fn()), link, cfg);
        let state = sup.state();
        let task = uasyncio::create_task(async move {
            let mut sup = sup;
            Ok(sup.run().await)
        });
        state.wait_up().await.unwrap();
        state.wait_down().await.unwrap();
        // Inside the hang-up's first guard time.
        uasyncio::sleep_ms(1).await.unwrap();
        // The cause is there while the hang-up runs (guard times: seconds), and stays after
        // the cancel: before, it was recorded only after the hang-up, so an application that
        // cancelled meanwhile never learnt why its stream failed.
        let cause = |state: &crate::link::LinkState| state.last_error().map(|e| (e.layer(), e.to_string()));
        let during = cause(&state);
        task.cancel().unwrap();
        let e = task.await.unwrap();
        assert_eq!(e, CellularError::Cancelled);
        assert_eq!(rec.borrow().connects, 1, "no redial after the cancel");
        assert!(!rec.borrow().escapes.is_empty(), "hung up");
        for seen in [during, cause(&state)] {
            let (layer, text) = seen.expect("the drop's cause is recorded");
            assert_eq!(layer, Some(Layer::Ppp));
            assert!(text.contains("NO CARRIER"), "{text}");
        }
    });
}

/// Lost input (a serial overrun: the call's last data-mode bytes fill the receive ring)
/// during the hang-up's guard times: the AT client drops the damaged line and reads on, so
/// `ATH` is still sent. Before, the overrun ended the hang-up as a dead stream, before `ATH`,
/// and the call stayed connected.
#[test]
fn an_overrun_during_the_hang_up_does_not_keep_the_call_up() {
    scenario(Script::default(), async |host, rec, _log| {
        let lose = Rc::new(core::cell::Cell::new(0u32));
        let mut m = Modem::new(crate::testkit::Lossy::new(host, lose.clone()), cfg());
        m.bring_up().await.unwrap();
        // The next three reads report lost bytes, in whichever guard time they come.
        lose.set(3);
        m.hang_up().await.unwrap();
        assert_eq!(lose.get(), 0, "the reads happened");
        assert_eq!(rec.borrow().escapes.len(), 1);
        assert_eq!(rec.borrow().commands.last().map(String::as_str), Some("ATH"));
        assert_eq!(m.at().input_losses(), 3);
    });
}

/// A command's answer that arrives after lost input still answers it; the partial line the
/// loss damaged is dropped as garbage.
#[test]
fn at_reads_on_after_lost_input() {
    scenario(Script::default(), async |host, _rec, _log| {
        let lose = Rc::new(core::cell::Cell::new(1u32));
        let mut at = AtClient::new(crate::testkit::Lossy::new(host, lose.clone()));
        at.command(b"AT", 1_000).await.unwrap();
        assert_eq!((lose.get(), at.input_losses()), (0, 1));
    });
}
