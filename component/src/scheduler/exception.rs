//! The types the loop's exception handler deals in: [`Loop`], [`ExceptionContext`],
//! [`ExceptionHandler`].
//!
//! Defined here because the loop stores the handler; what `Loop` can do (`run_forever`,
//! `stop`, `set_exception_handler`, …) is added one layer up, in `event_loop`, next to `run`.

use alloc::borrow::Cow;
use core::marker::PhantomData;

use crate::error::Error;
use crate::raw::TaskRef;

/// An exception handler: `handler(loop, context)`, as set by [`Loop::set_exception_handler`].
pub type ExceptionHandler = fn(&Loop, &ExceptionContext);

/// What the exception handler receives: MicroPython's context dict with the keys `message`,
/// `exception` and `future`.
///
/// ```
/// use uasyncio::{Error, ExceptionContext};
/// let ctx = ExceptionContext::new("something went wrong").with_exception(Error::Timeout);
/// assert_eq!(ctx.message, "something went wrong");
/// assert_eq!(ctx.exception, Some(Error::Timeout));
/// assert!(ctx.future.is_none());
/// ```
#[derive(Debug, Clone)]
pub struct ExceptionContext {
    /// `context["message"]`: what happened ("Task exception wasn't retrieved").
    pub message: Cow<'static, str>,
    /// `context["exception"]`: the error.
    pub exception: Option<Error>,
    /// `context["future"]`: the task it came from.
    pub future: Option<TaskRef>,
}

impl ExceptionContext {
    /// A context with a message only.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        ExceptionContext {
            message: message.into(),
            exception: None,
            future: None,
        }
    }

    /// Adds `exception`.
    pub fn with_exception(mut self, exception: Error) -> Self {
        self.exception = Some(exception);
        self
    }

    /// Adds `future`.
    pub fn with_future(mut self, task: TaskRef) -> Self {
        self.future = Some(task);
        self
    }
}

/// The object that schedules and runs tasks: MicroPython's `Loop`.
///
/// ```
/// let lp = uasyncio::get_event_loop();
/// let t = lp.create_task(async { Ok(7) });
/// assert_eq!(lp.run_until_complete(t).unwrap(), 7);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Loop {
    pub(crate) _not_send: PhantomData<*const ()>,
}
