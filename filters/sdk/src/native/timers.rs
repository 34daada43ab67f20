//! Timers for a `.so`. Envoy's dynamic-module ABI has no delayed event, only a per-stream
//! scheduler whose `commit` (callable from any thread) runs `on_http_filter_scheduled` on the
//! stream's worker. One timer thread per module sleeps until the next deadline and commits it.
//!
//! A stream's scheduler is shared with the timer thread through a [`Slot`]: the stream closes
//! it (deleting the scheduler) under the same lock the thread commits under, so nothing is ever
//! committed to a deleted scheduler.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ffi::c_void;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::abi::{Callbacks, EnvoyPtr};
use crate::Error;
use crate::host::TimerId;

/// Envoy's scheduler for one stream.
#[derive(Debug)]
struct Scheduler(*mut c_void);

// SAFETY: Envoy's scheduler may be committed to from any thread (abi.h); it is deleted only
// under the slot's lock, after which no thread holds it.
unsafe impl Send for Scheduler {}

/// One stream's scheduler, shared with the timer thread.
#[derive(Debug)]
pub struct Slot {
    scheduler: Mutex<Option<Scheduler>>,
    commit: unsafe extern "C" fn(*mut c_void, u64),
}

/// A stream's timers: its slot (made at the first timer) and the next id.
#[derive(Debug, Default)]
pub struct StreamTimers {
    slot: Option<Arc<Slot>>,
    next: u64,
}

impl StreamTimers {
    /// Arms a timer firing after `delay`.
    pub fn arm(
        &mut self,
        callbacks: &Callbacks,
        filter_envoy: EnvoyPtr,
        delay: Duration,
    ) -> Result<TimerId, Error> {
        let slot = match &self.slot {
            Some(slot) => Arc::clone(slot),
            None => {
                // SAFETY: filter_envoy is the current hook's.
                let scheduler = unsafe { (callbacks.scheduler_new)(filter_envoy) };
                if scheduler.is_null() {
                    return Err(Error::host("set_timer", "Envoy gave no scheduler"));
                }
                let slot = Arc::new(Slot {
                    scheduler: Mutex::new(Some(Scheduler(scheduler))),
                    commit: callbacks.scheduler_commit,
                });
                self.slot = Some(Arc::clone(&slot));
                slot
            }
        };
        self.next += 1;
        let id = TimerId(self.next);
        queue()?.push(Instant::now() + delay, slot, id.0);
        Ok(id)
    }

    /// Deletes the stream's scheduler: pending timers of this stream never fire.
    pub fn close(&mut self, callbacks: &Callbacks) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let mut scheduler = slot.scheduler.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Scheduler(ptr)) = scheduler.take() {
            // SAFETY: ours from scheduler_new, deleted once, under the lock the thread commits
            // under.
            unsafe { (callbacks.scheduler_delete)(ptr) };
        }
    }
}

/// A deadline in the queue.
struct Due {
    at: Instant,
    slot: Arc<Slot>,
    event: u64,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

/// The module's timer queue and the thread that serves it.
struct Queue {
    heap: Mutex<BinaryHeap<Reverse<Due>>>,
    wake: Condvar,
}

impl Queue {
    fn push(&self, at: Instant, slot: Arc<Slot>, event: u64) {
        let mut heap = self.heap.lock().unwrap_or_else(|p| p.into_inner());
        heap.push(Reverse(Due { at, slot, event }));
        self.wake.notify_one();
    }

    /// The thread's loop: waits for the earliest deadline, then commits it.
    fn serve(&self) {
        let mut heap = self.heap.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let now = Instant::now();
            let next = heap.peek().map(|Reverse(due)| due.at);
            heap = match next {
                None => self.wake.wait(heap).unwrap_or_else(|p| p.into_inner()),
                Some(at) if at > now => {
                    let waited = self.wake.wait_timeout(heap, at - now);
                    waited.unwrap_or_else(|p| p.into_inner()).0
                }
                Some(_) => {
                    if let Some(Reverse(due)) = heap.pop() {
                        fire(&due);
                    }
                    heap
                }
            };
        }
    }
}

fn fire(due: &Due) {
    let scheduler = due.slot.scheduler.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(Scheduler(ptr)) = scheduler.as_ref() {
        // SAFETY: a live scheduler (deleted only under this lock); commit is thread-safe.
        unsafe { (due.slot.commit)(*ptr, due.event) };
    }
}

fn queue() -> Result<&'static Queue, Error> {
    static QUEUE: OnceLock<Result<&'static Queue, String>> = OnceLock::new();
    let started = QUEUE.get_or_init(|| {
        let queue: &'static Queue = Box::leak(Box::new(Queue {
            heap: Mutex::new(BinaryHeap::new()),
            wake: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("meshplug-timers".into())
            .spawn(move || queue.serve())
            .map(|_| queue)
            .map_err(|error| error.to_string())
    });
    started
        .as_ref()
        .copied()
        .map_err(|reason| Error::host("set_timer", format!("no timer thread: {reason}")))
}
