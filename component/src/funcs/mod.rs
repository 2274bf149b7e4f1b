//! `wait_for`, `wait_for_ms`, `gather`, `wait` and `TaskGroup`: running awaitables as tasks and combining
//! them.
//!
//! Each awaitable given to these functions becomes a task, as in MicroPython: a [`Task`]
//! stays itself, any other future is handed to `create_task` (see [`promote_to_task`]).
//! [`wait()`] takes tasks only, as CPython's `asyncio.wait`.

mod gather;
mod task_group;
mod wait;
mod wait_for;

use core::any::Any;
use core::future::Future;

pub use gather::{gather, Gather, GatherAll, GatherTuple, TaskTuple};
pub use task_group::{TaskGroup, TaskGroupRun};
pub use wait::{wait, wait_ms, ReturnWhen, Wait, ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION};
pub use wait_for::{wait_for, wait_for_ms, WaitFor};

use crate::error::Result;
use crate::task::{create_task, Task};

/// A [`Task`] stays itself; any other future becomes a new task (MicroPython's
/// `_promote_to_task`).
///
/// ```
/// use uasyncio::{create_task, funcs::promote_to_task, run};
/// run(async {
///     let t = create_task(async { Ok(1) });
///     let id = t.task_ref();
///     let same = promote_to_task(t);
///     assert_eq!(same.task_ref(), id);
///     let fresh = promote_to_task(async { Ok(2) });
///     assert_eq!(same.await? + fresh.await?, 3);
///     Ok(())
/// }).unwrap();
/// ```
#[inline(always)]
pub fn promote_to_task<A, T>(aw: A) -> Task<T>
where
    A: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    box_if_large!(aw => promote(aw))
}

/// [`promote_to_task`] once a large future is boxed (a [`Task`] never is: it is a pointer).
fn promote<A, T>(aw: A) -> Task<T>
where
    A: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    let mut slot = Some(aw);
    if let Some(task) = (&mut slot as &mut dyn Any).downcast_mut::<Option<Task<T>>>() {
        if let Some(task) = task.take() {
            return task;
        }
    }
    match slot {
        Some(aw) => create_task(aw),
        None => create_task(async { Err(crate::Error::runtime("awaitable already consumed")) }),
    }
}
