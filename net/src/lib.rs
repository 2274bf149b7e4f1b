//! # uasyncio-net: TCP streams and UDP sockets for uasyncio over smoltcp
//!
//! The network half of MicroPython's `asyncio` for a Rust runtime that runs as one RTOS
//! thread: `open_connection`, `start_server`, `Stream` (alias `StreamReader` /
//! `StreamWriter`) and `Server`, on a [smoltcp](https://docs.rs/smoltcp) interface that the
//! event loop drives itself.
//!
//! ```text
//!  user tasks ──read/drain──▶ Stream ──▶ smoltcp socket ◀──┐
//!                                   (TLS: pump task)         │ one pass per wake
//!  device (TAP thread, ISR, in-memory link) ──wake──▶ driver task ── Interface::poll_*
//! ```
//!
//! | module | what it is for | asyncio names |
//! |---|---|---|
//! | [`stack`] | the stack object, its configuration, the driver task | — |
//! | [`client`] | connecting, name resolution | `open_connection` |
//! | [`server`] | listening, accept task, callbacks | `start_server`, `Server` |
//! | [`stream`] | buffered reads and writes on one connection | `Stream`, `StreamReader`, `StreamWriter` |
//! | [`udp`] | datagram sockets: bind, send_to, recv_from, connect | `socket(AF_INET, SOCK_DGRAM)` |
//! | [`tls`] | TLS 1.3 client through `embedded-tls` | the `ssl` argument |
//! | [`nal`] | `embedded-io-async` and `embedded-nal-async` impls | — |
//! | [`device`] | in-memory pair, Linux TAP | — |
//! | `ppp` (feature `ppp`) | PPP over a serial byte stream (a cellular modem) as the stack's link | — |
//! | [`rt`] | the seam to the runtime (error type, spawn, sleep, cancel probe) | — |
//!
//! # Layers
//! The modules form layers without circles: each one uses only modules of lower layers
//! (within layer 1, only ones listed before it), and `lib.rs` only declares and re-exports.
//!
//! 1. `rt`, `select`, `fmt`, `buf`, `io_error`, `device`: the runtime seam, small helpers,
//!    the shared byte queue and [`IoError`], the devices;
//! 2. `stack`: the interface and its driver task;
//! 3. `tcp`, `udp`, `dns`: the socket core on the stack (`tcp` owns the keep-alive
//!    defaults that `stream` re-exports);
//! 4. `tls`: the TLS pump over a `tcp` connection;
//! 5. `stream`: the user's stream over either transport (`tcp` or `tls`);
//! 6. `client`, `server`, `nal`, `ppp`: the entry points and the `embedded-io-async` /
//!    `embedded-nal-async` adapters, on top of all the above.
//!
//! Every async function states its cancellation behaviour. Cancellation is MicroPython's
//! cooperative kind: a cancelled task gets `Err(Cancelled)` from the next await on this
//! crate, and no received byte is lost.
//!
//! IPv4 only. One stack per event loop (or several, on several devices); everything runs
//! on the loop thread, only devices may wake it from elsewhere.
#![no_std]
#![deny(missing_docs, unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod buf;
pub mod client;
pub mod device;
mod dns;
mod fmt;
mod io_error;
pub mod nal;
#[cfg(feature = "ppp")]
pub mod ppp;
pub mod rt;
mod select;
pub mod server;
pub mod stack;
pub mod stream;
mod tcp;
pub mod tls;
pub mod udp;

pub use client::open_connection;
pub use nal::IoError;
pub use rt::errno;
pub use server::{start_server, Server, ServerGuard};
pub use stack::{Ipv4Config, Stack, StackConfig, StackStats};
pub use stream::{Stream, StreamReader, StreamWriter};
pub use tls::TlsClientConfig;
pub use udp::UdpSocket;
