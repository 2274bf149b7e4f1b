//! Errors: MicroPython's exceptions as one Rust enum.
//!
//! A Python `raise` becomes an `Err(Error::…)` returned from an await, and `?` plays the role
//! of exception propagation. Each variant names the Python exception it stands for, and
//! `Display` prints that name, so a log line reads as it would under MicroPython:
//!
//! | Python            | Rust                      |
//! |-------------------|---------------------------|
//! | `CancelledError`  | [`Error::Cancelled`]      |
//! | `TimeoutError`    | [`Error::Timeout`]        |
//! | `EOFError`        | [`Error::Eof`]            |
//! | `OSError(errno)`  | [`Error::Os`]             |
//! | `RuntimeError(m)` | [`Error::Runtime`]        |
//! | `ValueError(m)`   | [`Error::Value`]          |
//! | `asyncio.QueueFull`  | [`Error::QueueFull`]   |
//! | `asyncio.QueueEmpty` | [`Error::QueueEmpty`]  |
//! | `ExceptionGroup`  | [`Error::Group`]          |
//! | any other         | [`Error::User`]           |

use crate::atomic::Arc;
use alloc::borrow::Cow;
use core::fmt;

/// `Result` with the runtime's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

/// A user's own error, carried through the runtime (Python: any other exception).
pub type UserError = Arc<dyn core::error::Error + Send + Sync + 'static>;

/// MicroPython's exceptions, as seen by Rust code.
///
/// ```
/// use uasyncio::Error;
/// assert_eq!(Error::Cancelled.to_string(), "CancelledError");
/// assert_eq!(Error::Os(104).to_string(), "OSError: [Errno 104] ECONNRESET");
/// assert_eq!(Error::runtime("can't cancel self").to_string(), "RuntimeError: can't cancel self");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// `CancelledError`: the task was cancelled (see [`Task::cancel`](crate::Task::cancel)).
    Cancelled,
    /// `TimeoutError`: [`wait_for`](crate::wait_for) ran out of time.
    Timeout,
    /// `EOFError`: the stream ended before the requested bytes arrived.
    Eof,
    /// `OSError` with an errno-like code (Linux numbering: 104 is `ECONNRESET`).
    Os(i32),
    /// `RuntimeError`: misuse of the API, with what was wrong.
    Runtime(Cow<'static, str>),
    /// `ValueError`: a bad argument, with what was wrong.
    Value(Cow<'static, str>),
    /// `asyncio.QueueFull`: [`Queue::put_nowait`](crate::Queue::put_nowait) on a full queue
    /// (which hands the item back in a [`QueueFull`](crate::QueueFull); `?` turns that into
    /// this).
    QueueFull,
    /// `asyncio.QueueEmpty`: [`Queue::get_nowait`](crate::Queue::get_nowait) on an empty queue.
    QueueEmpty,
    /// `ExceptionGroup`: every error (none of them `Cancelled`) that made a
    /// [`TaskGroup`](crate::TaskGroup) fail, in the order they happened.
    ///
    /// ```
    /// use uasyncio::Error;
    /// let e = Error::Group(vec![Error::value("a"), Error::Timeout]);
    /// assert_eq!(e.to_string(), "ExceptionGroup: unhandled errors in a TaskGroup (2 sub-exceptions)");
    /// ```
    Group(alloc::vec::Vec<Error>),
    /// A user's own error, passed through the runtime unchanged.
    User(UserError),
}

impl Error {
    /// `RuntimeError("no running event loop")`: what a loop-bound call made outside any loop
    /// gets (a timer, `current_task`, `wait`, `wait_for`). Cold and out of line: every caller
    /// has it off its common path.
    #[cold]
    #[inline(never)]
    pub(crate) fn no_running_loop() -> Self {
        Error::runtime("no running event loop")
    }

    /// A `RuntimeError` with a message.
    pub fn runtime(msg: impl Into<Cow<'static, str>>) -> Self {
        Error::Runtime(msg.into())
    }

    /// A `ValueError` with a message.
    pub fn value(msg: impl Into<Cow<'static, str>>) -> Self {
        Error::Value(msg.into())
    }

    /// Wraps a user's own error.
    ///
    /// ```
    /// #[derive(Debug)]
    /// struct Overheat;
    /// impl core::fmt::Display for Overheat {
    ///     fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result { f.write_str("overheat") }
    /// }
    /// impl std::error::Error for Overheat {}
    /// let e = uasyncio::Error::user(Overheat);
    /// assert_eq!(e.to_string(), "overheat");
    /// ```
    pub fn user<E: core::error::Error + Send + Sync + 'static>(err: E) -> Self {
        #[cfg(target_has_atomic = "ptr")]
        let user: UserError = Arc::new(err);
        // portable-atomic-util's Arc cannot coerce to `dyn` on stable: through a Box.
        #[cfg(not(target_has_atomic = "ptr"))]
        let user: UserError =
            Arc::from(alloc::boxed::Box::new(err) as alloc::boxed::Box<dyn core::error::Error + Send + Sync>);
        Error::User(user)
    }

    /// True for `CancelledError`.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled)
    }

    /// The Python name of the exception this error stands for.
    pub fn python_name(&self) -> &'static str {
        match self {
            Error::Cancelled => "CancelledError",
            Error::Timeout => "TimeoutError",
            Error::Eof => "EOFError",
            Error::Os(_) => "OSError",
            Error::Runtime(_) => "RuntimeError",
            Error::Value(_) => "ValueError",
            Error::QueueFull => "QueueFull",
            Error::QueueEmpty => "QueueEmpty",
            Error::Group(_) => "ExceptionGroup",
            Error::User(_) => "Exception",
        }
    }
}

/// The symbolic name of the errno values the runtime and its streams produce.
pub(crate) fn errno_name(code: i32) -> Option<&'static str> {
    // Values from Linux's include/uapi/asm-generic/errno-base.h and errno.h.
    Some(match code {
        5 => "EIO",
        9 => "EBADF",
        11 => "EAGAIN",
        12 => "ENOMEM",
        22 => "EINVAL",
        32 => "EPIPE",
        90 => "EMSGSIZE",
        98 => "EADDRINUSE",
        99 => "EADDRNOTAVAIL",
        100 => "ENETDOWN",
        101 => "ENETUNREACH",
        103 => "ECONNABORTED",
        104 => "ECONNRESET",
        105 => "ENOBUFS",
        107 => "ENOTCONN",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        113 => "EHOSTUNREACH",
        // getaddrinfo's EAI_NONAME, as MicroPython's unix port reports a failed lookup.
        -2 => "EAI_NONAME",
        // getaddrinfo's EAI_AGAIN: the network crate's lookup that got no answer in time.
        -3 => "EAI_AGAIN",
        _ => return None,
    })
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cancelled | Error::Timeout | Error::Eof | Error::QueueFull | Error::QueueEmpty => {
                f.write_str(self.python_name())
            }
            Error::Os(code) => match errno_name(*code) {
                Some(name) => write!(f, "OSError: [Errno {code}] {name}"),
                None => write!(f, "OSError: [Errno {code}]"),
            },
            Error::Runtime(m) | Error::Value(m) => write!(f, "{}: {m}", self.python_name()),
            Error::Group(errors) => write!(
                f,
                "{}: unhandled errors in a TaskGroup ({} sub-exception{})",
                self.python_name(),
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            ),
            Error::User(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl core::error::Error for Error {}

/// An [`Error`] as a finished task's cell keeps it: one word and a tag instead of the whole
/// enum (32 bytes on 64-bit targets, 16 on 32-bit ones), so that a cell is sized by its future
/// and its output rather than by `Error`. The variants without data stay inline, and so does
/// an `Os` code; the others (a message, a group, a user's error) move to the heap once, when
/// the task fails.
///
/// On a heap too full for that box, the allocation failure handler runs, as for any other
/// allocation of the runtime (on the RTOS ports it names the setting to raise).
pub(crate) enum StoredError {
    Cancelled,
    Timeout,
    Eof,
    QueueFull,
    QueueEmpty,
    Os(i32),
    Boxed(alloc::boxed::Box<Error>),
}

impl From<Error> for StoredError {
    fn from(err: Error) -> Self {
        match err {
            Error::Cancelled => StoredError::Cancelled,
            Error::Timeout => StoredError::Timeout,
            Error::Eof => StoredError::Eof,
            Error::QueueFull => StoredError::QueueFull,
            Error::QueueEmpty => StoredError::QueueEmpty,
            Error::Os(code) => StoredError::Os(code),
            other => StoredError::Boxed(alloc::boxed::Box::new(other)),
        }
    }
}

impl StoredError {
    /// A copy of the error it stands for.
    pub(crate) fn to_error(&self) -> Error {
        match self {
            StoredError::Cancelled => Error::Cancelled,
            StoredError::Timeout => Error::Timeout,
            StoredError::Eof => Error::Eof,
            StoredError::QueueFull => Error::QueueFull,
            StoredError::QueueEmpty => Error::QueueEmpty,
            StoredError::Os(code) => Error::Os(*code),
            StoredError::Boxed(err) => Error::clone(err),
        }
    }
}

impl PartialEq for Error {
    /// Errors compare by kind and payload; user errors compare by identity.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Error::Cancelled, Error::Cancelled)
            | (Error::Timeout, Error::Timeout)
            | (Error::Eof, Error::Eof)
            | (Error::QueueFull, Error::QueueFull)
            | (Error::QueueEmpty, Error::QueueEmpty) => true,
            (Error::Os(a), Error::Os(b)) => a == b,
            (Error::Runtime(a), Error::Runtime(b)) | (Error::Value(a), Error::Value(b)) => a == b,
            (Error::Group(a), Error::Group(b)) => a == b,
            (Error::User(a), Error::User(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn a_stored_error_gives_back_the_same_error() {
        let all = [
            Error::Cancelled,
            Error::Timeout,
            Error::Eof,
            Error::QueueFull,
            Error::QueueEmpty,
            Error::Os(104),
            Error::runtime("can't cancel self"),
            Error::value(alloc::format!("bad {}", 7)),
            Error::Group(alloc::vec![Error::Timeout, Error::Os(5)]),
        ];
        for err in all {
            let stored = StoredError::from(err.clone());
            assert_eq!(stored.to_error(), err);
            assert_eq!(stored.to_error().to_string(), err.to_string());
        }
    }
}
