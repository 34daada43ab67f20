//! Timers for a `.wasm`. proxy-wasm has no per-stream timer, only the root context's tick. A
//! stream's timer is a deadline in this VM's registry; while any is pending the root ticks
//! every [`TICK`], and each tick fires the due ones on their streams (made the effective
//! context first, so their host calls act on that stream). A stream that ends is forgotten
//! with its timers.

use std::cell::RefCell;
use std::rc::Weak;
use std::time::Duration;

use proxy_wasm::hostcalls;

use crate::Error;
use crate::host::TimerId;

/// How often the root ticks while a timer is pending: a timer fires up to this late.
pub const TICK: Duration = Duration::from_millis(10);

/// A stream a timer can fire on.
pub(super) trait Fire {
    /// Runs the filter's timer callback and what it answers.
    fn fire(&self, timer: TimerId);
}

struct Pending {
    due_ms: u64,
    context: u32,
    timer: TimerId,
}

#[derive(Default)]
struct Registry {
    pending: Vec<Pending>,
    streams: Vec<(u32, Weak<dyn Fire>)>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// Arms `timer` of stream `context` for `delay` after `now_ms`, starting the tick if needed.
pub(super) fn arm(context: u32, timer: TimerId, delay: Duration, now_ms: u64) -> Result<(), Error> {
    let due_ms = now_ms.saturating_add(delay.as_millis() as u64);
    let first = REGISTRY.with_borrow_mut(|registry| {
        registry.pending.push(Pending {
            due_ms,
            context,
            timer,
        });
        registry.pending.len() == 1
    });
    if first {
        hostcalls::set_tick_period(TICK)
            .map_err(|status| Error::host("set_timer", format!("no tick: {status:?}")))?;
    }
    Ok(())
}

/// Lets timers reach stream `context` (once per stream).
pub(super) fn register(context: u32, stream: Weak<dyn Fire>) {
    REGISTRY.with_borrow_mut(|registry| {
        if !registry.streams.iter().any(|(c, _)| *c == context) {
            registry.streams.push((context, stream));
        }
    });
}

/// Forgets stream `context` and its pending timers.
pub(super) fn forget(context: u32) {
    REGISTRY.with_borrow_mut(|registry| {
        registry.streams.retain(|(c, _)| *c != context);
        registry.pending.retain(|p| p.context != context);
    });
}

/// A due timer: its stream's context, the timer, the stream if it is still registered.
type Due = (u32, TimerId, Option<Weak<dyn Fire>>);

/// The root's tick: fires every due timer, then stops ticking if none is left.
pub(super) fn tick(now_ms: u64) {
    let due: Vec<Due> = REGISTRY.with_borrow_mut(|registry| {
        let (due, later): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut registry.pending)
            .into_iter()
            .partition(|p| p.due_ms <= now_ms);
        registry.pending = later;
        due.into_iter()
            .map(|p| {
                let stream = registry.streams.iter().find(|(c, _)| *c == p.context);
                (p.context, p.timer, stream.map(|(_, s)| s.clone()))
            })
            .collect()
    });
    for (context, timer, stream) in due {
        let Some(stream) = stream.and_then(|s| s.upgrade()) else {
            continue;
        };
        if hostcalls::set_effective_context(context).is_ok() {
            stream.fire(timer);
        }
    }
    let idle = REGISTRY.with_borrow(|registry| registry.pending.is_empty());
    if idle {
        let _ = hostcalls::set_tick_period(Duration::ZERO);
    }
}
