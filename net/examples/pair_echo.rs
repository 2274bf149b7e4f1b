//! TCP echo between two stacks in one process: `start_server` on one end of the in-memory
//! link, `open_connection` on the other, three lines there and back, then an error a peer can
//! cause. No network device, no root: `cargo run -p uasyncio-net --features std --example
//! pair_echo`. On a board the stack gets a real device instead (Ethernet, a TAP on Linux, PPP
//! over a modem); the rest of the program is the same.

use std::net::Ipv4Addr;

use uasyncio::{run, wait_for, Error, Result};
use uasyncio_net::device::pair::{pair, LinkFaults};
use uasyncio_net::{open_connection, start_server, Stack, StackConfig, Stream};

/// The server's callback, once per accepted connection: echo lines until the client closes.
async fn echo(reader: Stream, writer: Stream) -> Result<()> {
    loop {
        let line = reader.readline().await?;
        if line.is_empty() {
            break; // the client closed its side
        }
        writer.write(&line);
        writer.drain().await?;
    }
    writer.close();
    writer.wait_closed().await
}

/// A stack on `device` with a static address. The seed makes TCP sequence numbers and local
/// ports unpredictable: on a board, take it from a hardware RNG.
fn stack(device: uasyncio_net::device::pair::PairDevice, last: u8, seed: u64) -> Result<Stack> {
    let mut cfg = StackConfig::with_static([0x02, 0, 0, 0, 0, last], Ipv4Addr::new(10, 0, 0, last), 24);
    cfg.random_seed = seed;
    Stack::new(device, cfg)
}

fn main() {
    let result = run(async {
        let (a, b, _control) = pair(LinkFaults::default());
        let (server_stack, client_stack) = (stack(a, 1, 0x5eed_0001)?, stack(b, 2, 0x5eed_0002)?);

        let server = start_server(&server_stack, echo, "0.0.0.0", 7000, 4, None).await?;
        let (reader, writer) = open_connection(&client_stack, "10.0.0.1", 7000, None).await?;
        for line in ["hello\n", "from uasyncio\n", "over smoltcp\n"] {
            writer.write(line.as_bytes());
            writer.drain().await?;
            let r = reader.clone();
            let back = wait_for(async move { r.readline().await }, 2.0).await?;
            if back != line.as_bytes() {
                return Err(Error::runtime("the echo differs from what was sent"));
            }
        }
        writer.close();
        writer.wait_closed().await?;
        println!("pair_echo: 3 lines echoed");

        // Nobody listens on port 7001: the peer answers with a reset.
        match open_connection(&client_stack, "10.0.0.1", 7001, None).await {
            Ok(_) => return Err(Error::runtime("connected to a port nobody listens on")),
            Err(e) => println!("pair_echo: port 7001: {e}"),
        }

        server.close();
        server.wait_closed().await
    });
    if let Err(e) = result {
        eprintln!("pair_echo: {e}");
        std::process::exit(1);
    }
}
