//! Name resolution without blocking, through smoltcp's DNS socket.
//!
//! MicroPython resolves with a blocking `getaddrinfo`; here a lookup is a future that waits
//! on the stack's DNS socket, so other tasks run meanwhile. Numeric IPv4 addresses never
//! reach the DNS socket. A failed lookup (NXDOMAIN, no answer) is
//! `OSError(EAI_NONAME)` (-2, what MicroPython's unix port reports); a lookup that outlives
//! [`crate::StackConfig::dns_timeout_ms`] is `OSError(EAI_AGAIN)` (-3, "temporary failure in
//! name resolution": apart from a connect's `ETIMEDOUT`). A host with a `:` in it (an IPv6
//! address, or a port left in the name) is a `ValueError`: the stack speaks IPv4 only; so is
//! any other malformed name (`check_host_name`), before any query. A lookup on a stack with
//! no DNS server is a `RuntimeError` naming where to set one.

use alloc::rc::Rc;
use core::future::poll_fn;
use core::net::Ipv4Addr;
use core::str::FromStr;
use core::task::Poll;

use smoltcp::socket::dns::{self, GetQueryResultError, StartQueryError};
use smoltcp::wire::{DnsQueryType, IpAddress};

use crate::rt::{self, errno, Error, Result};
use crate::select::{select, Either};
use crate::stack::Core;

/// `RuntimeError` for a lookup on a stack that has no DNS server: unlike an unknown name
/// (`OSError(EAI_NONAME)`), the fix is on this side, and the message says where.
fn no_dns_server() -> Error {
    Error::Runtime(
        "no DNS server to look the name up: set dns_servers in StackConfig::ipv4 \
         (Ipv4Config::Static), or get one from DHCP or the PPP link; or connect by address"
            .into(),
    )
}

/// `ValueError` unless `host` is a well-formed host name (RFC 1123): dot-separated labels of
/// 1 to 63 letters, digits, `-` and `_` (not at a label's start or end for `-`), at most 253
/// characters, an optional final dot, and a last label that is not all digits (so that a
/// mistyped address such as `10.0.0.300` or `10.0.0` is not sent to a DNS server as a name).
/// Checked before any network state, so a malformed name is told as such first.
pub(crate) fn check_host_name(host: &str) -> Result<()> {
    // Messages concatenated, without `format!` and `{:?}`: Debug-formatting a `str` links
    // Unicode's escape tables, and `format!` the formatting machinery, about 3.8 KB of flash
    // together on Cortex-M3 in an image that formats nothing else.
    let printable = host.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    let bad = |why: &str| {
        let msg = if printable {
            ["invalid host name '", host, "': ", why].concat()
        } else {
            ["invalid host name (it has non-printable characters): ", why].concat()
        };
        Err(Error::Value(msg.into()))
    };
    if host.contains(':') {
        return bad("no ':' (IPv6 is not supported; give the port as its own argument)");
    }
    let name = host.strip_suffix('.').unwrap_or(host).as_bytes();
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 253 {
        return bad("longer than 253 characters");
    }
    if let Some(&b) = name
        .iter()
        .find(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
    {
        let quoted = [b'\'', b, b'\''];
        let what = match b {
            b' ' => "a space",
            // An ASCII graphic byte, so the three bytes are UTF-8.
            b if b.is_ascii_graphic() => core::str::from_utf8(&quoted).unwrap_or("a character"),
            _ => "a non-printable or non-ASCII character",
        };
        return bad(&[what, " is not allowed (letters, digits, '-', '_' and '.' only)"].concat());
    }
    // ASCII from here on: the labels are byte slices.
    for label in name.split(|&b| b == b'.') {
        if label.is_empty() {
            return bad("an empty label (two dots in a row, or a leading dot)");
        }
        if label.len() > 63 {
            return bad("a label longer than 63 characters");
        }
        if label.first() == Some(&b'-') || label.last() == Some(&b'-') {
            return bad("a label starts or ends with '-'");
        }
    }
    if name
        .rsplit(|&b| b == b'.')
        .next()
        .is_some_and(|l| l.iter().all(u8::is_ascii_digit))
    {
        return bad("not an IPv4 address (four numbers 0-255 separated by dots) and not a name");
    }
    Ok(())
}

/// Resolve `host` to an IPv4 address.
///
/// Cancellation: returns `Err(Cancelled)`; the query is cancelled and its slot freed.
pub(crate) async fn resolve(core: &Rc<Core>, host: &str) -> Result<Ipv4Addr> {
    if let Ok(a) = Ipv4Addr::from_str(host) {
        return Ok(a);
    }
    check_host_name(host)?;
    core.check_running()?;
    let handle = {
        let mut st = core.st.borrow_mut();
        let st = &mut *st;
        if st.dns_servers.is_empty() {
            return Err(no_dns_server());
        }
        let cx = st.iface.context();
        match st
            .sockets
            .get_mut::<dns::Socket>(st.dns)
            .start_query(cx, host, DnsQueryType::A)
        {
            Ok(h) => h,
            Err(StartQueryError::NoFreeSlot) => return Err(Error::Os(errno::ENOMEM)),
            Err(StartQueryError::InvalidName | StartQueryError::NameTooLong) => {
                return Err(Error::Value("invalid host name".into()))
            }
        }
    };
    core.kick();
    // Frees the query slot unless the result was collected (which frees it itself).
    struct Query<'a> {
        core: &'a Core,
        handle: Option<dns::QueryHandle>,
    }
    impl Drop for Query<'_> {
        fn drop(&mut self) {
            if let Some(h) = self.handle.take() {
                let mut st = self.core.st.borrow_mut();
                let dns = st.dns;
                st.sockets.get_mut::<dns::Socket>(dns).cancel_query(h);
            }
        }
    }
    let mut q = Query {
        core,
        handle: Some(handle),
    };
    let deadline = core.now_us() + u64::from(core.cfg.dns_timeout_ms) * 1000;
    let wait = poll_fn(|cx| {
        if rt::cancel_requested(cx) {
            return Poll::Ready(Err(Error::Cancelled));
        }
        let Some(h) = q.handle else {
            return Poll::Ready(Err(Error::Os(errno::EAI_NONAME)));
        };
        let mut st = core.st.borrow_mut();
        let dns = st.dns;
        let sock = st.sockets.get_mut::<dns::Socket>(dns);
        match sock.get_query_result(h) {
            Err(GetQueryResultError::Pending) => {
                sock.register_query_waker(h, cx.waker());
                Poll::Pending
            }
            Err(GetQueryResultError::Failed) => {
                q.handle = None;
                Poll::Ready(Err(Error::Os(errno::EAI_NONAME)))
            }
            Ok(addrs) => {
                q.handle = None;
                let first = addrs.iter().map(|a| match a {
                    IpAddress::Ipv4(v) => *v,
                });
                Poll::Ready(first.into_iter().next().ok_or(Error::Os(errno::EAI_NONAME)))
            }
        }
    });
    match select(wait, rt::sleep_until(deadline)).await {
        Either::Left(r) => r,
        Either::Right(Ok(())) => Err(Error::Os(errno::EAI_AGAIN)),
        Either::Right(Err(e)) => Err(e),
    }
}
