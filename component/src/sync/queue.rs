//! `Queue<T>`: a FIFO queue between tasks, optionally bounded, with `task_done`/`join`.

use alloc::collections::VecDeque;
use core::cell::{Cell, RefCell};
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use super::event::{Event, EventWait};
use super::wait_queue::{repoll, Repoll, WaitQueue};
use crate::error::{Error, Result};

/// A first-in first-out queue for passing items between tasks: CPython's `asyncio.Queue`
/// (MicroPython has none).
///
/// `Queue::new(maxsize)` holds at most `maxsize` items, or any number when `maxsize` is 0.
/// [`put`](Queue::put) waits while the queue is full, [`get`](Queue::get) while it is empty;
/// [`put_nowait`](Queue::put_nowait) and [`get_nowait`](Queue::get_nowait) never wait.
/// [`task_done`](Queue::task_done) and [`join`](Queue::join) let a producer wait until every
/// item put has been processed.
///
/// Waiting putters and getters are served **in the order they started waiting**, and a
/// cancelled waiter leaves the others in order and loses no item. As in CPython, a waiter is
/// woken (not handed the item): if a task that was running meanwhile took the item (or the
/// free slot) first, the woken waiter waits again. **We differ** from CPython there: it waits
/// again at the head of the line, where CPython puts it at the back.
///
/// Loop thread only: the type is `!Sync`. Share it between tasks with an `Rc`.
///
/// ```
/// use std::rc::Rc;
/// use uasyncio::{create_task, run, Queue};
/// let got = run(async {
///     let q = Rc::new(Queue::new(2));
///     let q2 = q.clone();
///     let producer = create_task(async move {
///         for i in 0..5 {
///             q2.put(i).await?; // waits while two items are queued
///         }
///         Ok(())
///     });
///     let mut got = Vec::new();
///     for _ in 0..5 {
///         got.push(q.get().await?);
///     }
///     producer.await?;
///     Ok(got)
/// });
/// assert_eq!(got.unwrap(), [0, 1, 2, 3, 4]);
/// ```
pub struct Queue<T> {
    items: RefCell<VecDeque<T>>,
    maxsize: usize,
    getters: RefCell<WaitQueue>,
    putters: RefCell<WaitQueue>,
    /// Items put and not yet `task_done()`.
    unfinished: Cell<usize>,
    /// Set whenever `unfinished` is 0.
    finished: Event,
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("maxsize", &self.maxsize)
            .field("qsize", &self.qsize())
            .field("unfinished", &self.unfinished.get())
            .finish_non_exhaustive()
    }
}

impl<T> Default for Queue<T> {
    /// An unbounded queue, as `Queue()` in Python.
    fn default() -> Self {
        Self::new(0)
    }
}

/// Wakes the oldest waiter of `waiters`, if any, once no borrow is held.
fn wake_next(waiters: &RefCell<WaitQueue>) {
    let next = match waiters.try_borrow_mut() {
        Ok(mut q) => q.notify_one(),
        Err(_) => None,
    };
    if let Some(w) = next {
        crate::scheduler::wake(w);
    }
}

impl<T> Queue<T> {
    /// A new, empty queue holding at most `maxsize` items; 0 means no limit.
    ///
    /// ```
    /// let q = uasyncio::Queue::<u8>::new(0);
    /// assert!(q.empty() && !q.full());
    /// ```
    pub fn new(maxsize: usize) -> Self {
        let q = Queue {
            items: RefCell::new(VecDeque::new()),
            maxsize,
            getters: RefCell::new(WaitQueue::new()),
            putters: RefCell::new(WaitQueue::new()),
            unfinished: Cell::new(0),
            finished: Event::new(),
        };
        q.finished.set();
        q
    }

    /// The most items the queue holds (0: no limit).
    ///
    /// ```
    /// assert_eq!(uasyncio::Queue::<u8>::new(3).maxsize(), 3);
    /// ```
    pub fn maxsize(&self) -> usize {
        self.maxsize
    }

    /// The number of items in the queue.
    ///
    /// ```
    /// let q = uasyncio::Queue::new(0);
    /// q.put_nowait('a').unwrap();
    /// assert_eq!(q.qsize(), 1);
    /// ```
    pub fn qsize(&self) -> usize {
        self.items.borrow().len()
    }

    /// True if the queue holds no item.
    ///
    /// ```
    /// assert!(uasyncio::Queue::<u8>::new(1).empty());
    /// ```
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// True if the queue holds `maxsize` items; never for an unbounded queue.
    ///
    /// ```
    /// let q = uasyncio::Queue::new(1);
    /// q.put_nowait(1).unwrap();
    /// assert!(q.full());
    /// ```
    pub fn full(&self) -> bool {
        self.maxsize > 0 && self.qsize() >= self.maxsize
    }

    /// Puts `item` at the end of the queue without waiting, and wakes the oldest waiting
    /// getter.
    ///
    /// A full queue is an error that hands `item` back: `Err(QueueFull(item))`. `?` turns it
    /// into [`Error::QueueFull`] (dropping the item).
    ///
    /// ```
    /// use uasyncio::{Queue, QueueFull};
    /// let q = Queue::new(1);
    /// assert_eq!(q.put_nowait("a"), Ok(()));
    /// let Err(QueueFull(back)) = q.put_nowait("b") else { panic!() };
    /// assert_eq!(back, "b");
    /// ```
    pub fn put_nowait(&self, item: T) -> core::result::Result<(), QueueFull<T>> {
        if self.full() {
            return Err(QueueFull(item));
        }
        self.push(item);
        Ok(())
    }

    fn push(&self, item: T) {
        self.items.borrow_mut().push_back(item);
        self.unfinished.set(self.unfinished.get().saturating_add(1));
        self.finished.clear();
        wake_next(&self.getters);
    }

    /// Takes the first item without waiting, and wakes the oldest waiting putter.
    ///
    /// Errors with [`Error::QueueEmpty`] when the queue is empty.
    ///
    /// ```
    /// use uasyncio::{Error, Queue};
    /// let q = Queue::new(0);
    /// q.put_nowait(7).unwrap();
    /// assert_eq!(q.get_nowait(), Ok(7));
    /// assert_eq!(q.get_nowait(), Err(Error::QueueEmpty));
    /// ```
    pub fn get_nowait(&self) -> Result<T> {
        self.take().ok_or(Error::QueueEmpty)
    }

    /// The next item, if any, waking the next putter for the slot it frees: `get_nowait`
    /// without making (and, in `Get`'s poll, dropping) an `Error` when the queue is empty.
    fn take(&self) -> Option<T> {
        let item = self.items.borrow_mut().pop_front()?;
        wake_next(&self.putters);
        Some(item)
    }

    /// Puts `item` at the end of the queue, first waiting for a free slot while the queue is
    /// full.
    ///
    /// **Cancellation:** a cancelled putter leaves the line of waiting putters (the others
    /// keep their order), its item is **not** put (it is dropped with the future), and it gets
    /// `Err(Error::Cancelled)`; if it had already been woken for a free slot, it passes the
    /// wake-up on to the next putter, so the slot is not left unused. Dropping the future does
    /// the same.
    ///
    /// ```
    /// use uasyncio::{run, Queue};
    /// run(async {
    ///     let q = Queue::new(0);
    ///     q.put("job").await?;
    ///     assert_eq!(q.get().await?, "job");
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn put(&self, item: T) -> Put<'_, T> {
        Put {
            queue: self,
            item: Some(item),
            key: None,
            woken: false,
        }
    }

    /// Takes the first item, first waiting for one while the queue is empty.
    ///
    /// **Cancellation:** a cancelled getter leaves the line of waiting getters (the others
    /// keep their order) and gets `Err(Error::Cancelled)`; it takes no item, so none is lost.
    /// If it had already been woken for an item, it passes the wake-up on to the next getter.
    /// Dropping the future does the same.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use uasyncio::{create_task, run, Queue};
    /// run(async {
    ///     let q = Rc::new(Queue::new(0));
    ///     let q2 = q.clone();
    ///     let consumer = create_task(async move { q2.get().await });
    ///     q.put_nowait(5).ok();
    ///     assert_eq!(consumer.await?, 5);
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn get(&self) -> Get<'_, T> {
        Get {
            queue: self,
            key: None,
            woken: false,
        }
    }

    /// Tells the queue that an item taken with `get` has been processed; when every item put
    /// has been, [`join`](Queue::join) returns.
    ///
    /// Errors with `ValueError("task_done() called too many times")` when called more times
    /// than items were put.
    ///
    /// ```
    /// use uasyncio::{Error, Queue};
    /// let q = Queue::new(0);
    /// q.put_nowait(1).unwrap();
    /// q.get_nowait().unwrap();
    /// assert_eq!(q.task_done(), Ok(()));
    /// assert_eq!(q.task_done(), Err(Error::value("task_done() called too many times")));
    /// ```
    pub fn task_done(&self) -> Result<()> {
        let n = self.unfinished.get();
        if n == 0 {
            return Err(Error::value("task_done() called too many times"));
        }
        self.unfinished.set(n - 1);
        if n == 1 {
            self.finished.set();
        }
        Ok(())
    }

    /// Waits until every item put into the queue has been taken and marked
    /// [`task_done`](Queue::task_done); returns at once if that is so already.
    ///
    /// **Cancellation:** as [`Event::wait`]: a cancelled joiner stops waiting and gets
    /// `Err(Error::Cancelled)`; the queue is not affected. Dropping the future just stops
    /// waiting.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use uasyncio::{create_task, run, Queue};
    /// run(async {
    ///     let q = Rc::new(Queue::new(0));
    ///     for i in 0..3 {
    ///         q.put_nowait(i).ok();
    ///     }
    ///     let q2 = q.clone();
    ///     create_task(async move {
    ///         loop {
    ///             q2.get().await?;
    ///             q2.task_done()?;
    ///         }
    ///         #[allow(unreachable_code)]
    ///         Ok(())
    ///     });
    ///     q.join().await?; // all three processed
    ///     assert!(q.empty());
    ///     Ok(())
    /// }).unwrap();
    /// ```
    pub fn join(&self) -> EventWait<'_> {
        self.finished.wait()
    }
}

/// The future of [`Queue::put`].
///
/// **Cancellation:** a cancelled putter leaves the line of waiting putters and gets
/// `Err(Error::Cancelled)`; its item is **not** put (it is dropped with the future), and a
/// wake-up it had for a free slot goes to the next putter. **Dropping** it does the same. See
/// [`Queue::put`].
#[must_use = "futures do nothing unless awaited"]
pub struct Put<'a, T> {
    queue: &'a Queue<T>,
    item: Option<T>,
    key: Option<u32>,
    /// Woken once already: if the slot was taken meanwhile, wait again at the head.
    woken: bool,
}

impl<T> fmt::Debug for Put<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Put").field("waiting", &self.key.is_some()).finish()
    }
}

// The item is only moved, never pinned.
impl<T> Unpin for Put<'_, T> {}

impl<T> Future for Put<'_, T> {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        let waiting = crate::cancel::Waiting::check(cx, crate::raw::WaitingOn::Queue);
        if waiting.cancelled {
            this.leave();
            return Poll::Ready(Err(Error::Cancelled));
        }
        let queue = this.queue;
        match repoll(&queue.putters, &mut this.key, cx.waker()) {
            Repoll::Waiting => return Poll::Pending,
            Repoll::Notified => this.woken = true,
            Repoll::NotWaiting => {}
        }
        if !queue.full() {
            return match this.item.take() {
                Some(item) => {
                    queue.push(item);
                    Poll::Ready(Ok(()))
                }
                None => Poll::Ready(Err(Error::runtime("Put polled after completion"))),
            };
        }
        let mut q = queue.putters.borrow_mut();
        let waker = waiting.clone_waker(cx.waker());
        this.key = Some(if this.woken { q.push_front(waker) } else { q.push(waker) });
        Poll::Pending
    }
}

impl<T> Put<'_, T> {
    /// Stops waiting; a wake-up for a free slot we will not use goes to the next putter.
    fn leave(&mut self) {
        let Some(key) = self.key.take() else { return };
        let woken = match self.queue.putters.try_borrow_mut() {
            Ok(mut q) => q.remove(key),
            Err(_) => false,
        };
        if woken && !self.queue.full() {
            wake_next(&self.queue.putters);
        }
    }
}

impl<T> Drop for Put<'_, T> {
    fn drop(&mut self) {
        self.leave();
    }
}

/// The future of [`Queue::get`].
///
/// **Cancellation:** a cancelled getter leaves the line of waiting getters and gets
/// `Err(Error::Cancelled)`; it takes no item, so none is lost, and a wake-up it had for an
/// item goes to the next getter. **Dropping** it does the same. See [`Queue::get`].
#[must_use = "futures do nothing unless awaited"]
pub struct Get<'a, T> {
    queue: &'a Queue<T>,
    key: Option<u32>,
    /// Woken once already: if the item was taken meanwhile, wait again at the head.
    woken: bool,
}

impl<T> fmt::Debug for Get<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Get").field("waiting", &self.key.is_some()).finish()
    }
}

impl<T> Future for Get<'_, T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        let waiting = crate::cancel::Waiting::check(cx, crate::raw::WaitingOn::Queue);
        if waiting.cancelled {
            this.leave();
            return Poll::Ready(Err(Error::Cancelled));
        }
        let queue = this.queue;
        match repoll(&queue.getters, &mut this.key, cx.waker()) {
            Repoll::Waiting => return Poll::Pending,
            Repoll::Notified => this.woken = true,
            Repoll::NotWaiting => {}
        }
        if let Some(item) = queue.take() {
            return Poll::Ready(Ok(item));
        }
        let mut q = queue.getters.borrow_mut();
        let waker = waiting.clone_waker(cx.waker());
        this.key = Some(if this.woken { q.push_front(waker) } else { q.push(waker) });
        Poll::Pending
    }
}

impl<T> Get<'_, T> {
    /// Stops waiting; a wake-up for an item we will not take goes to the next getter.
    fn leave(&mut self) {
        let Some(key) = self.key.take() else { return };
        let woken = match self.queue.getters.try_borrow_mut() {
            Ok(mut q) => q.remove(key),
            Err(_) => false,
        };
        if woken && !self.queue.empty() {
            wake_next(&self.queue.getters);
        }
    }
}

impl<T> Drop for Get<'_, T> {
    fn drop(&mut self) {
        self.leave();
    }
}

/// The error of [`Queue::put_nowait`] on a full queue: `asyncio.QueueFull`, carrying the item
/// that was not put so the caller gets it back.
///
/// `?` converts it into [`Error::QueueFull`], dropping the item.
///
/// ```
/// use uasyncio::{Error, Queue, QueueFull};
/// let q = Queue::new(1);
/// q.put_nowait(1).unwrap();
/// let e = q.put_nowait(2).unwrap_err();
/// assert_eq!(e.to_string(), "QueueFull");
/// assert_eq!(e.into_inner(), 2);
/// let r: uasyncio::Result<()> = (|| Ok(q.put_nowait(3)?))();
/// assert_eq!(r, Err(Error::QueueFull));
/// ```
#[derive(PartialEq, Eq)]
pub struct QueueFull<T>(pub T);

impl<T> QueueFull<T> {
    /// The item that was not put.
    ///
    /// ```
    /// assert_eq!(uasyncio::QueueFull("x").into_inner(), "x");
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("QueueFull").finish_non_exhaustive()
    }
}

impl<T> fmt::Display for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueueFull")
    }
}

impl<T> core::error::Error for QueueFull<T> {}

impl<T> From<QueueFull<T>> for Error {
    fn from(_: QueueFull<T>) -> Self {
        Error::QueueFull
    }
}
