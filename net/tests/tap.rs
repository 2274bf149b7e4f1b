//! Tests against real Linux peers over a TAP device, each in a network namespace it makes.
//!
//! Topology per test: namespace `uanet-<test>-<pid>` with `tap0`
//! at 192.168.69.100/24 for the Linux peers (Python asyncio, `http.server`, `dnsmasq`,
//! `openssl s_server`); our stack opens the same `tap0` from a test thread that joined the
//! namespace with `setns(2)` and is 192.168.69.1/24. Nothing leaves the namespace, and the
//! namespace and every peer process are removed when the test ends, pass or fail.
//!
//! The tests skip (pass with a `SKIP` line) when not run as root, when `/dev/net/tun` is
//! missing, or when a peer program is not installed (`scripts/net-deps.sh` installs them).

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use uasyncio::{sleep_ms, wait_for_ms, Error};
use uasyncio_net::device::tap::TapDevice;
use uasyncio_net::rt::errno::*;
use uasyncio_net::{Stack, StackConfig, Stream, TlsClientConfig};

const OUR_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 1);
const PEER: &str = "192.168.69.100";

/// A network namespace with `tap0`, its peer processes and a scratch directory.
struct Netns {
    name: String,
    dir: PathBuf,
    children: Vec<Child>,
}

/// Say why a test skips, past libtest's output capture so that it shows in a normal run.
fn skip(msg: String) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIP {msg}");
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn sh(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(st.success(), "{args:?} failed: {st}");
}

impl Netns {
    /// Make the namespace, or `None` (after printing why) when the machine cannot.
    fn new(tag: &str, tools: &[&str]) -> Option<Netns> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            skip(format!("{tag}: TAP tests need root"));
            return None;
        }
        if !Path::new("/dev/net/tun").exists() {
            skip(format!("{tag}: /dev/net/tun is missing"));
            return None;
        }
        for t in ["ip"].iter().chain(tools) {
            if !have(t) {
                skip(format!("{tag}: `{t}` is not installed (run scripts/net-deps.sh)"));
                return None;
            }
        }
        let name = format!("uanet-{tag}-{}", std::process::id());
        let dir = std::env::temp_dir().join(&name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns {
            name,
            dir,
            children: Vec::new(),
        };
        sh(&["ip", "-n", &ns.name, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", &ns.name, "tuntap", "add", "dev", "tap0", "mode", "tap"]);
        sh(&["ip", "-n", &ns.name, "addr", "add", "192.168.69.100/24", "dev", "tap0"]);
        sh(&["ip", "-n", &ns.name, "link", "set", "tap0", "up"]);
        Some(ns)
    }

    /// Move the calling thread into the namespace (threads it starts follow).
    fn enter(&self) {
        let path = format!("/run/netns/{}\0", self.name);
        // SAFETY: `path` is NUL-terminated; the returned fd is checked.
        let fd = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) };
        assert!(fd >= 0, "open {path}: {}", std::io::Error::last_os_error());
        // SAFETY: `fd` refers to a network namespace file; setns affects only this thread.
        let r = unsafe { libc::setns(fd, libc::CLONE_NEWNET) };
        let err = std::io::Error::last_os_error();
        // SAFETY: `fd` is ours and no longer needed.
        unsafe { libc::close(fd) };
        assert_eq!(r, 0, "setns: {err}");
    }

    /// Open `tap0` from inside the namespace and wait until the kernel reports it up.
    fn open_tap(&self) -> TapDevice {
        self.enter();
        let tap = TapDevice::open("tap0", 1500).expect("open tap0 in the namespace");
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            let out = Command::new("ip")
                .args(["-n", &self.name, "-o", "link", "show", "tap0"])
                .output()
                .expect("ip link");
            if String::from_utf8_lossy(&out.stdout).contains("LOWER_UP") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tap
    }

    /// Start a peer program inside the namespace; its output goes to `<dir>/<log>`.
    fn spawn(&mut self, log: &str, args: &[&str]) {
        let out = fs::File::create(self.dir.join(log)).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {args:?}: {e}"));
        self.children.push(child);
    }

    /// Wait until something listens on TCP `port` in the namespace (at most 5 s).
    fn wait_listen(&self, port: u16) {
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.name, "ss", "-Hltn", &format!("sport = :{port}")])
                .output()
                .expect("ss");
            if !out.stdout.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nothing listens on port {port} in {}", self.name);
    }

    fn path(&self, f: &str) -> String {
        self.dir.join(f).to_string_lossy().into_owned()
    }

    fn dnsmasq(&mut self, dhcp: bool) {
        let lease = format!("--dhcp-leasefile={}", self.path("leases"));
        let pid = format!("--pid-file={}", self.path("dnsmasq.pid"));
        let mut args = vec![
            "dnsmasq",
            "--no-daemon",
            "--conf-file=/dev/null",
            "--listen-address=192.168.69.100",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--address=/test.lan/192.168.69.100",
            "--address=/invalid/",
            lease.as_str(),
            pid.as_str(),
        ];
        if dhcp {
            args.push("--dhcp-range=192.168.69.50,192.168.69.60,1h");
        }
        self.spawn("dnsmasq.log", &args);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("peer logs kept in {}", self.dir.display());
        }
    }
}

fn stack_config() -> StackConfig {
    let mut c = StackConfig::with_static([0x02, 0, 0, 0, 0, 0x01], OUR_IP, 24);
    c.random_seed = u64::from(std::process::id()) << 16 ^ Instant::now().elapsed().as_nanos() as u64 ^ 0x5eed;
    if let uasyncio_net::Ipv4Config::Static { dns_servers, .. } = &mut c.ipv4 {
        dns_servers.push(PEER.parse().unwrap());
    }
    // Also bounds the TLS handshake, so it is sized for a loaded machine (s_server and the
    // Python peers are separate processes that may be scheduled late); no test here waits
    // for a connection to time out.
    c.connect_timeout_ms = 20_000;
    c.tcp_rx_buffer = 32 * 1024;
    c.tcp_tx_buffer = 32 * 1024;
    c
}

/// Run `f` on this thread's loop with a wall-clock limit.
fn run<T: 'static>(secs: u32, f: impl std::future::Future<Output = uasyncio::Result<T>> + 'static) -> T {
    match uasyncio::run(async move { wait_for_ms(f, secs * 1000).await }) {
        Ok(v) => v,
        Err(e) => panic!("test failed: {e}"),
    }
}

async fn wait_sockets_freed(stack: &Stack, want: usize) -> uasyncio::Result<()> {
    for _ in 0..300 {
        if stack.stats().tcp_sockets == want {
            return Ok(());
        }
        sleep_ms(10).await?;
    }
    panic!("sockets not freed: {:?}", stack.stats());
}

async fn echo(r: Stream, w: Stream) -> uasyncio::Result<()> {
    loop {
        let d = r.read(8192).await?;
        if d.is_empty() {
            break;
        }
        w.write(&d);
        w.drain().await?;
    }
    w.wait_closed().await
}

const PY_CLIENT: &str = r#"
import asyncio, os, sys
N, SIZE = int(sys.argv[1]), int(sys.argv[2])
async def connect():
    for attempt in range(100):  # the server may not listen yet
        try:
            return await asyncio.open_connection('192.168.69.1', 7000)
        except (ConnectionRefusedError, OSError):
            await asyncio.sleep(0.05)
    raise SystemExit("could not connect")
async def one(i):
    r, w = await connect()
    data = os.urandom(SIZE)
    async def send():
        for k in range(0, SIZE, 3001):
            w.write(data[k:k + 3001])
            await w.drain()
    async def recv():
        return await r.readexactly(SIZE)
    _, got = await asyncio.gather(send(), recv())
    assert got == data, f"connection {i}: echo differs"
    w.close()
    await w.wait_closed()
async def main():
    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(N))), 30)
asyncio.run(main())
print("python client ok")
"#;

#[test]
fn python_asyncio_client_against_our_echo_server() {
    let Some(ns) = Netns::new("pyecho", &["python3", "ss"]) else {
        return;
    };
    let tap = ns.open_tap();
    fs::write(ns.dir.join("client.py"), PY_CLIENT).unwrap();
    let script = ns.path("client.py");
    let stack = Stack::new(tap, stack_config()).unwrap();
    let srv_stack = stack.clone();
    // The client starts once the server listens; it runs in the namespace as a child.
    let mut child = {
        let out = fs::File::create(ns.dir.join("client.log")).unwrap();
        Command::new("ip")
            .args(["netns", "exec", &ns.name, "python3", &script, "8", "300000"])
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap()
    };
    let status = run(60, async move {
        let srv = srv_stack.start_server(echo, "0.0.0.0", 7000, 8, None).await?;
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait python") {
                break st;
            }
            sleep_ms(20).await?;
        };
        srv.close();
        srv.wait_closed().await?;
        wait_sockets_freed(&srv_stack, 0).await?;
        Ok(status)
    });
    let log = fs::read_to_string(ns.dir.join("client.log")).unwrap_or_default();
    assert!(
        status.success() && log.contains("python client ok"),
        "python client failed: {status}\n{log}"
    );
}

#[test]
fn http_get_by_name_and_by_address_and_with_reqwless() {
    let Some(mut ns) = Netns::new("http", &["python3", "dnsmasq", "ss"]) else {
        return;
    };
    let tap = ns.open_tap();
    let body: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    fs::write(ns.dir.join("hello.txt"), &body).unwrap();
    let dir = ns.path("");
    ns.spawn(
        "http.log",
        &[
            "python3",
            "-m",
            "http.server",
            "8000",
            "--bind",
            PEER,
            "--directory",
            &dir,
        ],
    );
    ns.dnsmasq(false);
    ns.wait_listen(8000);
    let stack = Stack::new(tap, stack_config()).unwrap();
    let want = body.clone();
    run(30, async move {
        for host in ["test.lan", PEER] {
            let (r, w) = stack.open_connection(host, 8000, None).await?;
            w.write(format!("GET /hello.txt HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes());
            w.drain().await?;
            let status = r.readline().await?;
            assert!(
                status.starts_with(b"HTTP/1.0 200"),
                "{}",
                String::from_utf8_lossy(&status)
            );
            loop {
                if r.readline().await? == b"\r\n" {
                    break;
                }
            }
            let got = r.read(-1).await?;
            assert_eq!(got, want.as_bytes(), "body via {host}");
            w.wait_closed().await?;
        }
        // The same fetch through an ecosystem client, unchanged: reqwless over
        // embedded-nal-async (TcpConnect + Dns) on our stack.
        {
            let mut client = reqwless::client::HttpClient::new(&stack, &stack);
            let mut rx = vec![0u8; 64 * 1024];
            let mut req = client
                .request(reqwless::request::Method::GET, "http://test.lan:8000/hello.txt")
                .await
                .map_err(|e| Error::runtime(format!("reqwless connect: {e:?}")))?;
            let resp = req
                .send(&mut rx)
                .await
                .map_err(|e| Error::runtime(format!("reqwless send: {e:?}")))?;
            assert_eq!(resp.status, reqwless::response::StatusCode(200));
            let got = resp
                .body()
                .read_to_end()
                .await
                .map_err(|e| Error::runtime(format!("reqwless body: {e:?}")))?;
            assert_eq!(got, want.as_bytes(), "body via reqwless");
        }
        assert_eq!(stack.resolve("nope.invalid").await.err(), Some(Error::Os(EAI_NONAME)));
        assert_eq!(stack.resolve("test.lan").await?, PEER.parse::<Ipv4Addr>().unwrap());
        wait_sockets_freed(&stack, 0).await
    });
}

const PY_RESETTER: &str = r#"
import socket, struct
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('192.168.69.100', 7001)); s.listen(4)
while True:
    c, _ = s.accept()
    c.sendall(b'x' * 5000)
    c.recv(1)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    c.close()
"#;

#[test]
fn a_missing_or_down_tap_is_refused_with_what_to_run() {
    let Some(ns) = Netns::new("down", &[]) else {
        return;
    };
    ns.enter();
    // A name that does not exist here: the kernel makes a new TAP, down; `open` refuses it.
    let e = TapDevice::open("nosuch0", 1500)
        .err()
        .expect("a missing TAP was opened");
    assert_eq!(e.kind(), std::io::ErrorKind::NotConnected, "{e}");
    assert!(e.to_string().contains("ip link set nosuch0 up"), "{e}");
    // It existed only while `open` held it.
    let out = Command::new("ip")
        .args(["-n", &ns.name, "link", "show", "nosuch0"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "nosuch0 was left behind");
    // One that exists but is down.
    sh(&["ip", "-n", &ns.name, "tuntap", "add", "dev", "tap1", "mode", "tap"]);
    let e = TapDevice::open("tap1", 1500).err().expect("a down TAP was opened");
    assert!(e.to_string().contains("is down"), "{e}");
    sh(&["ip", "-n", &ns.name, "link", "set", "tap1", "up"]);
    TapDevice::open("tap1", 1500).expect("the TAP once up");
}

#[test]
fn bad_input_refused_reset_nxdomain_full_and_garbage_before_tls() {
    let Some(mut ns) = Netns::new("bad", &["python3", "dnsmasq", "ss"]) else {
        return;
    };
    let tap = ns.open_tap();
    fs::write(ns.dir.join("resetter.py"), PY_RESETTER).unwrap();
    let script = ns.path("resetter.py");
    ns.spawn("resetter.log", &["python3", &script]);
    let dir = ns.path("");
    ns.spawn(
        "http.log",
        &[
            "python3",
            "-m",
            "http.server",
            "8000",
            "--bind",
            PEER,
            "--directory",
            &dir,
        ],
    );
    ns.dnsmasq(false);
    ns.wait_listen(7001);
    ns.wait_listen(8000);
    let mut cfg = stack_config();
    cfg.max_sockets = 2;
    let stack = Stack::new(tap, cfg).unwrap();
    run(60, async move {
        assert_eq!(
            stack.open_connection(PEER, 9, None).await.err(),
            Some(Error::Os(ECONNREFUSED))
        );
        assert_eq!(
            stack.open_connection("nope.invalid", 80, None).await.err(),
            Some(Error::Os(EAI_NONAME))
        );
        // Reset in the middle of a transfer.
        let (r, w) = stack.open_connection(PEER, 7001, None).await?;
        assert_eq!(r.readexactly(5000).await?.len(), 5000);
        w.write(b"!");
        w.drain().await?;
        assert_eq!(r.read(100).await.err(), Some(Error::Os(ECONNRESET)));
        drop((r, w));
        // All sockets in use.
        let c1 = stack.open_connection(PEER, 8000, None).await?;
        let c2 = stack.open_connection(PEER, 8000, None).await?;
        assert_eq!(
            stack.open_connection(PEER, 8000, None).await.err(),
            Some(Error::Os(ENOMEM))
        );
        drop((c1, c2));
        wait_sockets_freed(&stack, 0).await?;
        // Garbage instead of a ServerHello: http.server answers the ClientHello with a 400
        // page.
        let tls = TlsClientConfig {
            seed: [7; 32],
            ..Default::default()
        };
        match stack.open_connection(PEER, 8000, Some(&tls)).await {
            Err(Error::Runtime(m)) => assert!(m.contains("TLS"), "{m}"),
            Err(e) => panic!("expected a TLS handshake error, got {e}"),
            Ok(_) => panic!("TLS over an HTTP server succeeded"),
        }
        wait_sockets_freed(&stack, 0).await
    });
}

fn make_cert(ns: &Netns, stem: &str) {
    let key = ns.path(&format!("{stem}.key"));
    let pem = ns.path(&format!("{stem}.pem"));
    let der = ns.path(&format!("{stem}.der"));
    sh(&[
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &pem,
        "-subj",
        "/CN=test.lan",
        "-addext",
        "subjectAltName=DNS:test.lan",
        "-days",
        "2",
    ]);
    sh(&["openssl", "x509", "-in", &pem, "-outform", "DER", "-out", &der]);
}

#[test]
fn tls13_client_against_openssl_s_server_p256() {
    let Some(mut ns) = Netns::new("tls", &["openssl", "dnsmasq", "ss"]) else {
        return;
    };
    let tap = ns.open_tap();
    make_cert(&ns, "server");
    make_cert(&ns, "other");
    let (key, pem) = (ns.path("server.key"), ns.path("server.pem"));
    ns.spawn(
        "s_server.log",
        &[
            "openssl", "s_server", "-accept", "4433", "-tls1_3", "-groups", "P-256", "-cert", &pem, "-key", &key,
            "-www",
        ],
    );
    ns.dnsmasq(false);
    ns.wait_listen(4433);
    let good = fs::read(ns.dir.join("server.der")).unwrap();
    let other = fs::read(ns.dir.join("other.der")).unwrap();
    let stack = Stack::new(tap, stack_config()).unwrap();
    run(60, async move {
        // Verified: the CA is the server's own self-signed certificate, SNI/hostname test.lan.
        let cfg = TlsClientConfig {
            server_name: None,
            ca_der: Some(good),
            seed: [1; 32],
        };
        let (r, w) = stack.open_connection("test.lan", 4433, Some(&cfg)).await?;
        assert!(w.is_tls());
        w.write(b"GET / HTTP/1.0\r\n\r\n");
        w.drain().await?;
        let status = r.readline().await?;
        assert!(
            status.starts_with(b"HTTP/1.0 200"),
            "{}",
            String::from_utf8_lossy(&status)
        );
        let rest = r.read(-1).await?;
        assert!(
            String::from_utf8_lossy(&rest).contains("TLSv1.3"),
            "s_server page mentions the protocol"
        );
        w.wait_closed().await?;
        drop((r, w));
        // s_server takes ~0.5 s to accept again after a client's FIN.
        sleep_ms(600).await?;
        // Not verified (MicroPython's default) by address.
        let cfg = TlsClientConfig {
            seed: [2; 32],
            ..Default::default()
        };
        let (r, w) = stack.open_connection(PEER, 4433, Some(&cfg)).await?;
        w.write(b"GET / HTTP/1.0\r\n\r\n");
        w.drain().await?;
        assert!(r.readline().await?.starts_with(b"HTTP/1.0 200"));
        drop((r, w));
        sleep_ms(600).await?;
        // A certificate from the wrong CA: a clear handshake error.
        let cfg = TlsClientConfig {
            server_name: Some("test.lan".into()),
            ca_der: Some(other),
            seed: [3; 32],
        };
        match stack.open_connection(PEER, 4433, Some(&cfg)).await {
            Err(Error::Runtime(m)) => assert!(m.contains("TLS handshake failed"), "{m}"),
            Err(e) => panic!("expected a TLS handshake error, got {e}"),
            Ok(_) => panic!("a certificate from the wrong CA was accepted"),
        }
        wait_sockets_freed(&stack, 0).await
    });
}

#[test]
fn dhcp_lease_and_dns_server_from_dnsmasq() {
    let Some(mut ns) = Netns::new("dhcp", &["dnsmasq"]) else {
        return;
    };
    let tap = ns.open_tap();
    ns.dnsmasq(true);
    let stack = Stack::new(tap, StackConfig::with_dhcp([0x02, 0, 0, 0, 0, 0x09])).unwrap();
    run(30, async move {
        stack.wait_config_up().await?;
        let a = stack.ipv4_address().unwrap();
        assert!(
            (50..=60).contains(&a.octets()[3]) && a.octets()[..3] == [192, 168, 69],
            "leased {a}"
        );
        assert_eq!(stack.dns_servers(), vec![PEER.parse::<Ipv4Addr>().unwrap()]);
        assert_eq!(stack.resolve("test.lan").await?, PEER.parse::<Ipv4Addr>().unwrap());
        Ok(())
    });
}

// ---- UDP against Linux peers ----------------------------------------------------------

/// Wait until something is bound to UDP `port` in the namespace (at most 5 s).
fn wait_udp(ns: &Netns, port: u16) {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.name, "ss", "-Hlun", &format!("sport = :{port}")])
            .output()
            .expect("ss");
        if !out.stdout.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing is bound to UDP port {port} in {}", ns.name);
}

const PY_UDP_ECHO: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('192.168.69.100', 9000))
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d, a)
"#;

/// A DNS query for the A record of `name` with id `id` (RFC 1035 §4.1).
fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]); // root, QTYPE A, QCLASS IN
    q
}

/// The id, RCODE and the A records of a DNS answer to a [`dns_query`] (answers must use
/// name compression, as dnsmasq's do).
fn dns_answer(r: &[u8], qlen: usize) -> (u16, u8, Vec<Ipv4Addr>) {
    let id = u16::from_be_bytes([r[0], r[1]]);
    let rcode = r[3] & 0x0f;
    let ancount = u16::from_be_bytes([r[6], r[7]]);
    let mut i = qlen; // the question is echoed unchanged
    let mut addrs = Vec::new();
    for _ in 0..ancount {
        assert_eq!(r[i] & 0xc0, 0xc0, "compressed name expected");
        let rtype = u16::from_be_bytes([r[i + 2], r[i + 3]]);
        let rdlen = usize::from(u16::from_be_bytes([r[i + 10], r[i + 11]]));
        let data = &r[i + 12..i + 12 + rdlen];
        if rtype == 1 && rdlen == 4 {
            addrs.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        i += 12 + rdlen;
    }
    (id, rcode, addrs)
}

#[test]
fn udp_echo_against_python_and_dns_over_our_udp_to_dnsmasq() {
    let Some(mut ns) = Netns::new("udp", &["python3", "dnsmasq", "ss"]) else {
        return;
    };
    let tap = ns.open_tap();
    fs::write(ns.dir.join("udp_echo.py"), PY_UDP_ECHO).unwrap();
    let script = ns.path("udp_echo.py");
    ns.spawn("udp_echo.log", &["python3", &script]);
    ns.dnsmasq(false);
    wait_udp(&ns, 9000);
    wait_udp(&ns, 53);
    let stack = Stack::new(tap, stack_config()).unwrap();
    run(60, async move {
        // Echo, connected by name (the stack's DNS resolves test.lan to the peer).
        let s = uasyncio_net::UdpSocket::bind(&stack, "0.0.0.0:0".parse().unwrap())?;
        s.connect("test.lan", 9000).await?;
        assert_eq!(s.peer_addr(), Some(format!("{PEER}:9000").parse().unwrap()));
        let mut buf = vec![0u8; 2048];
        for i in 0..300usize {
            let n = (i * 97) % 1473; // up to 1472 bytes: one 1500-byte packet
            let data: Vec<u8> = (0..n).map(|k| (k * 31 + i) as u8).collect();
            s.send(&data).await?;
            let got = s.recv(&mut buf).await?;
            assert_eq!(&buf[..got], &data[..], "datagram {i}");
        }
        assert_eq!(s.send(&vec![0u8; 1473]).await, Err(Error::Os(EMSGSIZE)));
        // Unconnected, by address, with the sender's address checked.
        let u = uasyncio_net::UdpSocket::bind(&stack, "0.0.0.0:40000".parse().unwrap())?;
        u.send_to(b"plain", format!("{PEER}:9000").parse().unwrap()).await?;
        let (n, from) = u.recv_from(&mut buf).await?;
        assert_eq!(
            (&buf[..n], from),
            (&b"plain"[..], format!("{PEER}:9000").parse().unwrap())
        );
        // DNS over our UDP socket: a hand-made query to dnsmasq, port 53.
        let d = uasyncio_net::UdpSocket::bind(&stack, "0.0.0.0:0".parse().unwrap())?;
        d.connect(PEER, 53).await?;
        for (id, name, want) in [
            (0x1234u16, "test.lan", Some(PEER.parse::<Ipv4Addr>().unwrap())),
            (0x4321, "nope.invalid", None),
        ] {
            let q = dns_query(id, name);
            d.send(&q).await?;
            let n = d.recv(&mut buf).await?;
            let (rid, rcode, addrs) = dns_answer(&buf[..n], q.len());
            assert_eq!(rid, id);
            match want {
                Some(a) => assert_eq!((rcode, addrs), (0, vec![a]), "{name}"),
                None => assert_eq!((rcode, addrs), (3, vec![]), "{name}: NXDOMAIN"),
            }
        }
        drop((s, u, d));
        assert_eq!(stack.stats().udp_sockets, 0);
        Ok(())
    });
}

const PY_COAP_SERVER: &str = r#"
# A minimal CoAP responder (RFC 7252): answers every request with 2.05 Content and a text
# payload naming the Uri-Path, piggybacked on the ACK of a confirmable request.
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('192.168.69.100', 5683))
def ext(d, i, v):
    if v == 13: return d[i] + 13, i + 1
    if v == 14: return (d[i] << 8 | d[i + 1]) + 269, i + 2
    return v, i
while True:
    d, a = s.recvfrom(2048)
    if len(d) < 4 or d[0] >> 6 != 1 or d[1] == 0:
        continue
    typ, tkl, mid = (d[0] >> 4) & 3, d[0] & 15, d[2:4]
    token = d[4:4 + tkl]
    i, num, path = 4 + tkl, 0, []
    while i < len(d) and d[i] != 0xff:
        b = d[i]; i += 1
        delta, i = ext(d, i, b >> 4)
        length, i = ext(d, i, b & 15)
        num += delta
        if num == 11:
            path.append(d[i:i + length].decode())
        i += length
    print("request", typ, "/".join(path), flush=True)
    rtype = 2 if typ == 0 else 1  # ACK for CON, NON for NON
    payload = ("hello from " + "/".join(path)).encode()
    s.sendto(bytes([0x40 | rtype << 4 | tkl, 0x45]) + mid + token + b"\xff" + payload, a)
"#;

/// Low-grade entropy for the CoAP runner (message ids and tokens).
struct TestRng(u64);

impl rand_core::RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for b in dst {
            *b = self.next_u32() as u8;
        }
    }
}

/// Poll both futures; the first to finish wins and the other is dropped.
async fn race<T>(a: impl std::future::Future<Output = T>, b: impl std::future::Future<Output = T>) -> T {
    let mut a = std::pin::pin!(a);
    let mut b = std::pin::pin!(b);
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(v) = a.as_mut().poll(cx) {
            return std::task::Poll::Ready(v);
        }
        b.as_mut().poll(cx)
    })
    .await
}

#[test]
fn coap_client_crate_unchanged_over_our_embedded_nal_async_udp() {
    use coap_request::Stack as _;
    use embedded_nal_async::UdpStack;
    let Some(mut ns) = Netns::new("coap", &["python3", "ss"]) else {
        return;
    };
    let tap = ns.open_tap();
    fs::write(ns.dir.join("coap_server.py"), PY_COAP_SERVER).unwrap();
    let script = ns.path("coap_server.py");
    ns.spawn("coap_server.log", &["python3", &script]);
    wait_udp(&ns, 5683);
    let stack = Stack::new(tap, stack_config()).unwrap();
    let answers = run(60, async move {
        // embedded-nal-coap's runner binds as its examples do: `[::]` and a port.
        let mut sock = stack.bind_multiple("[::]:0".parse().unwrap()).await.map_err(|e| e.0)?;
        let coap = embedded_nal_coap::CoAPShared::<1>::new();
        let (client, runner) = coap.split();
        let mut handler = coap_handler_implementations::new_dispatcher();
        let mut rng = TestRng(0x9e37_79b9_7f4a_7c15);
        let server: std::net::SocketAddr = format!("{PEER}:5683").parse().unwrap();
        let requests = async {
            let mut answers = Vec::new();
            for path in ["/time", "/sensors/temp"] {
                let r = client
                    .to(server)
                    .request(
                        coap_request_implementations::Code::get()
                            .with_path(path)
                            .processing_response_payload_through(|p| p.to_vec()),
                    )
                    .await;
                match r {
                    Ok(Ok(payload)) => answers.push(String::from_utf8_lossy(&payload).into_owned()),
                    other => return Err(Error::runtime(format!("CoAP request {path}: {other:?}"))),
                }
            }
            Ok(answers)
        };
        let serve = async {
            runner.run(&mut sock, &mut handler, &mut rng).await.map_err(|e| e.0)?;
            Err(Error::runtime("the CoAP runner ended"))
        };
        race(requests, serve).await
    });
    assert_eq!(answers, ["hello from time", "hello from sensors/temp"]);
}
