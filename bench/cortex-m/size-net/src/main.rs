//! Size: the sync image plus uasyncio-net (smoltcp, IPv4 TCP, static address): a `Stack` on an
//! in-memory link, `start_server` with an echo callback, `open_connection`, `Stream`
//! read/write/drain/close. TLS is not used (`ssl: None`).
//!
//! With the feature `tls`, the client connection is a TLS 1.3 one that verifies the server
//! against a CA; with `ppp`, a third stack runs PPP (`ppp_stack`, `PppLink::run`) over a
//! serial port that `SerialPort` stands in for. Either adds what it links to the image, and
//! nothing runs: the image is only measured.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::rc::Rc;

#[path = "../../common/stubs.rs"]
mod stubs;

use core::net::Ipv4Addr;

use uasyncio::{create_task, gather, run, sleep_ms, wait_for, Event, Lock, ThreadSafeFlag};
use uasyncio_net::device::pair::{pair, LinkFaults};
use uasyncio_net::{open_connection, start_server, Stack, StackConfig, Stream};

// Event and Lock are loop-local (not Sync): shared through Rc. ThreadSafeFlag is Sync.
static FLAG: ThreadSafeFlag = ThreadSafeFlag::new();

async fn echo(r: Stream, w: Stream) -> uasyncio::Result<()> {
    loop {
        let data = r.read(512).await?;
        if data.is_empty() {
            break;
        }
        w.write(&data);
        w.drain().await?;
    }
    w.close();
    w.wait_closed().await
}

/// A serial port's stand-in for the PPP image: what a UART driver gives `PppLink::run`.
#[cfg(feature = "ppp")]
struct SerialPort;

#[cfg(feature = "ppp")]
impl embedded_io_async::ErrorType for SerialPort {
    type Error = core::convert::Infallible;
}

#[cfg(feature = "ppp")]
impl embedded_io_async::Read for SerialPort {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = core::hint::black_box(buf.len().min(8));
        buf[..n].fill(core::hint::black_box(0x7e));
        Ok(n)
    }
}

#[cfg(feature = "ppp")]
impl embedded_io_async::Write for SerialPort {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        Ok(core::hint::black_box(buf).len())
    }
    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[no_mangle]
pub extern "C" fn size_entry() -> i32 {
    stubs::keep_all();
    let r = run(async {
        // The sync part, as in size-sync.
        let (event, lock) = (Rc::new(Event::new()), Rc::new(Lock::new()));
        let (e, l) = (event.clone(), lock.clone());
        let waiter = create_task(async move {
            e.wait().await?;
            FLAG.wait().await?;
            let guard = l.acquire().await?;
            sleep_ms(core::hint::black_box(1)).await?;
            drop(guard);
            Ok(1u32)
        });
        event.set();
        FLAG.set();
        let tasks = alloc::vec![
            create_task(async { sleep_ms(core::hint::black_box(2)).await.map(|_| 2u32) }),
            create_task(async { Ok(3u32) }),
        ];
        let sum: u32 = gather(tasks).await?.iter().sum();
        let w = wait_for(waiter, core::hint::black_box(0.5f32)).await?;

        // The network part.
        let (a, b, _link) = pair(LinkFaults::default());
        let server_stack = Stack::new(
            a,
            StackConfig::with_static([2, 0, 0, 0, 0, 1], Ipv4Addr::new(10, 0, 0, 1), 24),
        )?;
        let client_stack = Stack::new(
            b,
            StackConfig::with_static([2, 0, 0, 0, 0, 2], Ipv4Addr::new(10, 0, 0, 2), 24),
        )?;
        let server = start_server(&server_stack, echo, "0.0.0.0", 7, 2, None).await?;
        #[cfg(feature = "tls")]
        let tls = uasyncio_net::TlsClientConfig {
            server_name: Some(alloc::string::String::from("server")),
            ca_der: Some(alloc::vec::Vec::from(core::hint::black_box(&[0x30u8; 16][..]))),
            seed: core::hint::black_box([7; 32]),
        };
        #[cfg(feature = "tls")]
        let ssl = Some(&tls);
        #[cfg(not(feature = "tls"))]
        let ssl = None;
        let (r, wr) = open_connection(&client_stack, "10.0.0.1", 7, ssl).await?;
        wr.write(b"hello");
        wr.drain().await?;
        let back = r.readexactly(5).await?;
        wr.close();
        wr.wait_closed().await?;
        server.close();
        server.wait_closed().await?;
        #[cfg(feature = "ppp")]
        {
            let (_ppp_stack, mut link) =
                uasyncio_net::ppp::ppp_stack(StackConfig::for_ip_link(), uasyncio_net::ppp::PppConfig::default())?;
            let end = link.run(&mut SerialPort).await;
            core::hint::black_box(&end);
        }
        Ok(sum + w + back.len() as u32)
    });
    match r {
        Ok(v) => v as i32,
        Err(_) => -1,
    }
}
