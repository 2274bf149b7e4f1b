//! The one combinator the client needs: the first of two futures (a response or a timer).

use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::Poll;

/// Which of two futures finished first.
pub(crate) enum Either<A, B> {
    /// The first one.
    Left(A),
    /// The second one.
    Right(B),
}

/// Polls `a`, then `b`, each time the task wakes, until one is ready; the other is dropped.
///
/// Cancellation: none of its own; each child observes the task's cancel itself.
pub(crate) async fn select<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    })
    .await
}
