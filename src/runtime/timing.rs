//! Timestamps of the compute passes recorded while a GPU-time measurement is open (see
//! the context's `time_on_gpu`): two per pass, in one query set, for the thread that opened it.

use crate::error::{Error, Result};

use super::Runtime;

/// Timestamps one measurement holds: two per compute pass (an operation records one pass; a
/// split operation one per piece).
pub(crate) const CAPACITY: u32 = 512;

/// The query set of an open measurement, the next free index in it, and the thread that
/// opened it (only that thread's passes are timed).
pub(crate) struct Stamps {
    pub(crate) set: wgpu::QuerySet,
    pub(crate) next: u32,
    owner: std::thread::ThreadId,
    /// Where the plan passes inside a compute pass are timed one by one (the device has
    /// `TIMESTAMP_QUERY_INSIDE_PASSES`): the query set of the timestamps written between them
    /// (apart from `set`, so that they never take the room of a compute pass's own) and its
    /// next free index.
    pub(crate) inner: Option<(wgpu::QuerySet, u32)>,
    /// The spans of the plan passes: where each began (a compute pass's start in `set`, or the
    /// previous pass's end in the inner set), where it ended (in the inner set), and its index
    /// in its plan.
    pub(crate) spans: Vec<(Stamp, u32, usize)>,
}

/// A timestamp of a measurement: its index in the outer set (a compute pass's start or end)
/// or in the inner one (between the passes of a plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stamp {
    Outer(u32),
    Inner(u32),
}

/// An open measurement: dropping it closes it (also when the caller's closure panics) and lets
/// the next waiting thread open one.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) struct Open<'a>(&'a Runtime);

#[cfg(not(target_arch = "wasm32"))]
impl Open<'_> {
    /// Closes the measurement, returning its stamps.
    pub(crate) fn close(self) -> Option<Stamps> {
        let stamps = self
            .0
            .stamps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.0.stamps_free.notify_all();
        std::mem::forget(self);
        stamps
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0
            .stamps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.0.stamps_free.notify_all();
    }
}

impl Runtime {
    /// Opens a measurement over `set`: this thread's passes write timestamps until the
    /// returned guard closes it. Waits while another thread measures; `Error::Busy` where this
    /// thread already does.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn open_measurement(
        &self,
        set: wgpu::QuerySet,
        inner: Option<wgpu::QuerySet>,
    ) -> Result<Open<'_>> {
        let me = std::thread::current().id();
        let mut slot = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match slot.as_ref() {
                None => break,
                Some(s) if s.owner == me => {
                    return Err(Error::Busy(
                        "time_on_gpu was called inside time_on_gpu: one measurement at a \
                         time; time the inner work on its own"
                            .into(),
                    ))
                }
                Some(_) => {
                    slot = self
                        .stamps_free
                        .wait(slot)
                        .unwrap_or_else(|e| e.into_inner());
                }
            }
        }
        *slot = Some(Stamps {
            set,
            next: 0,
            owner: me,
            inner: inner.map(|s| (s, 0)),
            spans: Vec::new(),
        });
        Ok(Open(self))
    }

    /// The timestamp writes of the next compute pass, while a measurement is open and has room.
    pub(crate) fn pass_timestamps(&self) -> Option<(wgpu::QuerySet, u32)> {
        let mut guard = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        let stamps = guard
            .as_mut()
            .filter(|s| s.owner == std::thread::current().id())?;
        let at = stamps.next;
        stamps.next = stamps.next.saturating_add(2);
        (stamps.next <= CAPACITY).then(|| (stamps.set.clone(), at))
    }

    /// The timestamp (in the inner set) that ends the span of plan pass `index`, which began
    /// at `from`, where the open measurement times passes one by one and has room; `None`
    /// otherwise (and then for the rest of the compute pass).
    pub(crate) fn pass_span(&self, from: Stamp, index: usize) -> Option<(wgpu::QuerySet, u32)> {
        let mut guard = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        let stamps = guard
            .as_mut()
            .filter(|s| s.owner == std::thread::current().id())?;
        let (set, next) = stamps.inner.as_mut()?;
        if *next >= CAPACITY {
            return None;
        }
        let to = *next;
        *next += 1;
        let set = set.clone();
        stamps.spans.push((from, to, index));
        Some((set, to))
    }
}
