//! The embassy-net side of the TAP benchmark: the same echo service as
//! `samples/echo_server`, on embassy-executor + embassy-net (smoltcp 0.13) over
//! embassy-net-tuntap, with the same buffer sizes (64 KiB per direction) and 8 acceptors.
//!
//! `embassy_echo [seconds]` — run inside the benchmark's network namespace (see
//! `scripts/net-bench.sh`); exits after `seconds` (default 60).

use embassy_executor::{Executor, Spawner};
use embassy_net::tcp::TcpSocket;
use embassy_net::{Config, Ipv4Address, Ipv4Cidr, Runner, Stack, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_time::{Duration, Timer};

const ACCEPTORS: usize = 8;
const BUF: usize = 64 * 1024;

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

#[embassy_executor::task(pool_size = ACCEPTORS)]
async fn echo_task(stack: Stack<'static>) {
    let rx: &'static mut [u8] = Box::leak(vec![0u8; BUF].into_boxed_slice());
    let tx: &'static mut [u8] = Box::leak(vec![0u8; BUF].into_boxed_slice());
    let mut buf = vec![0u8; 16 * 1024];
    let mut sock = TcpSocket::new(stack, rx, tx);
    loop {
        if sock.accept(7000).await.is_err() {
            continue;
        }
        sock.set_nagle_enabled(false);
        loop {
            let n = match sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut off = 0;
            let mut ok = true;
            while off < n {
                match sock.write(&buf[off..n]).await {
                    Ok(k) => off += k,
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                break;
            }
        }
        sock.close();
        let _ = sock.flush().await;
        sock.abort();
        let _ = sock.flush().await;
    }
}

#[embassy_executor::task]
async fn stopper(seconds: u64) {
    Timer::after(Duration::from_secs(seconds)).await;
    std::process::exit(0);
}

fn main() {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let dev = match TunTapDevice::new("tap0") {
        Ok(d) => d,
        Err(e) => {
            eprintln!("embassy_echo: cannot open tap0: {e}");
            std::process::exit(1);
        }
    };
    let config = Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::new(192, 168, 69, 1), 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    let resources: &'static mut StackResources<{ ACCEPTORS + 2 }> = Box::leak(Box::new(StackResources::new()));
    let (stack, runner) = embassy_net::new(dev, config, resources, 0x5eed_1234 ^ u64::from(std::process::id()));
    let executor: &'static mut Executor = Box::leak(Box::new(Executor::new()));
    executor.run(move |spawner: Spawner| {
        spawner.spawn(net_task(runner).expect("spawn net task"));
        for _ in 0..ACCEPTORS {
            spawner.spawn(echo_task(stack).expect("spawn echo task"));
        }
        spawner.spawn(stopper(seconds).expect("spawn stopper"));
        println!("embassy_echo: listening on 192.168.69.1:7000");
    });
}
