//! A TCP echo server on a Linux TAP device: the seed's `start_server` in Rust.
//!
//! ```text
//! echo_server [--tap tap0] [--ip 192.168.69.1] [--port 7000] [--backlog 8] [--seconds N]
//! ```
//! Run it inside the network namespace that holds the TAP (`scripts/net-echo-sample.sh`
//! sets one up, runs this and talks to it with a Python asyncio client). With `--seconds`
//! it stops after N seconds and prints how many connections and bytes it served.

use std::cell::Cell;
use std::net::Ipv4Addr;
use std::rc::Rc;

use uasyncio::{run, sleep_ms, Result};
use uasyncio_net::device::tap::TapDevice;
use uasyncio_net::{Stack, StackConfig, Stream};

struct Args {
    tap: String,
    ip: Ipv4Addr,
    port: u16,
    backlog: usize,
    seconds: Option<u32>,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut a = Args {
        tap: "tap0".into(),
        ip: Ipv4Addr::new(192, 168, 69, 1),
        port: 7000,
        backlog: 8,
        seconds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {val}: {e}");
        match flag.as_str() {
            "--tap" => a.tap = val,
            "--ip" => a.ip = val.parse().map_err(|e| bad(&e))?,
            "--port" => a.port = val.parse().map_err(|e| bad(&e))?,
            "--backlog" => a.backlog = val.parse().map_err(|e| bad(&e))?,
            "--seconds" => a.seconds = Some(val.parse().map_err(|e| bad(&e))?),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(a)
}

/// The seed's echo handler: read what comes, write it back, until the peer closes.
async fn echo(r: Stream, w: Stream, bytes: Rc<Cell<u64>>) -> Result<()> {
    loop {
        let data = r.read(16 * 1024).await?;
        if data.is_empty() {
            break;
        }
        bytes.set(bytes.get() + data.len() as u64);
        w.write(&data);
        w.drain().await?;
    }
    w.wait_closed().await
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("echo_server: {e}");
            std::process::exit(2);
        }
    };
    let tap = match TapDevice::open(&args.tap, 1500) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "echo_server: cannot open TAP {}: {e} (root, and inside its namespace?)",
                args.tap
            );
            std::process::exit(1);
        }
    };
    let mut cfg = StackConfig::with_static([0x02, 0, 0, 0, 0, 0x01], args.ip, 24);
    cfg.random_seed = u64::from(std::process::id()) ^ 0x5eed_0000;
    cfg.max_sockets = 4 * args.backlog + 16;
    cfg.tcp_rx_buffer = 64 * 1024;
    cfg.tcp_tx_buffer = 64 * 1024;
    let r = run(async move {
        let stack = Stack::new(tap, cfg)?;
        let conns = Rc::new(Cell::new(0u64));
        let bytes = Rc::new(Cell::new(0u64));
        let (c2, b2) = (conns.clone(), bytes.clone());
        let server = stack
            .start_server(
                move |r, w| {
                    c2.set(c2.get() + 1);
                    echo(r, w, b2.clone())
                },
                "0.0.0.0",
                args.port,
                args.backlog,
                None,
            )
            .await?;
        println!("echo_server: listening on {}:{} ({})", args.ip, args.port, args.tap);
        match args.seconds {
            Some(s) => sleep_ms(s.saturating_mul(1000)).await?,
            None => loop {
                sleep_ms(3_600_000).await?;
            },
        }
        server.close();
        server.wait_closed().await?;
        println!("echo_server: served {} connections, {} bytes", conns.get(), bytes.get());
        Ok(())
    });
    if let Err(e) = r {
        eprintln!("echo_server: {e}");
        std::process::exit(1);
    }
}
