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
    pub(crate) fn open_measurement(&self, set: wgpu::QuerySet) -> Result<Open<'_>> {
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
}
