//! A full TCP socket pool is `OSError(ENOMEM)`, which carries no text: the stack logs why
//! (`StackConfig::max_sockets`, and how many slots are listening or still closing). Its own
//! test binary: it installs the process's one `log` logger.

use std::net::Ipv4Addr;

#[path = "common/capture_log.rs"]
mod capture_log;

use uasyncio::Error;
use uasyncio_net::device::pair::{pair, LinkFaults};
use uasyncio_net::rt::errno::ENOMEM;
use uasyncio_net::{Stack, StackConfig, Stream};

fn cfg(last: u8, ip: Ipv4Addr) -> StackConfig {
    let mut c = StackConfig::with_static([0x02, 0, 0, 0, 0, last], ip, 24);
    c.random_seed = u64::from(last);
    c
}

async fn hold(r: Stream, _w: Stream) -> uasyncio::Result<()> {
    r.read(-1).await.map(drop)
}

#[test]
fn a_full_pool_logs_max_sockets_and_the_closing_sockets() {
    capture_log::install();
    let warned = uasyncio::run(async {
        let (da, db, _) = pair(LinkFaults::default());
        let mut ca = cfg(1, Ipv4Addr::new(10, 0, 0, 1));
        ca.max_sockets = 3;
        let a = Stack::new(da, ca)?;
        let b = Stack::new(db, cfg(2, Ipv4Addr::new(10, 0, 0, 2)))?;
        let _srv = b.start_server(hold, "", 7, 4, None).await?;
        // One listener and two connections: the pool of 3 is full.
        let _listener = a.start_server(hold, "", 8, 1, None).await?;
        let _c1 = a.open_connection("10.0.0.2", 7, None).await?;
        let _c2 = a.open_connection("10.0.0.2", 7, None).await?;
        capture_log::take();
        assert_eq!(
            a.open_connection("10.0.0.2", 7, None).await.err(),
            Some(Error::Os(ENOMEM))
        );
        assert_eq!(
            a.start_server(hold, "", 9, 1, None).await.err(),
            Some(Error::Os(ENOMEM))
        );
        Ok(capture_log::take())
    })
    .unwrap();
    assert_eq!(warned.len(), 2, "one warning per ENOMEM: {warned:?}");
    for w in &warned {
        assert!(
            w.contains("ENOMEM")
                && w.contains("StackConfig::max_sockets = 3")
                && w.contains("1 listening")
                && w.contains("0 still closing"),
            "the warning says what fills the pool: {w}"
        );
    }
}
