//! GPU time of recorded work, from timestamp queries where the device has them: each compute
//! pass the library records while a measurement is open writes a timestamp at its start and at
//! its end, and the measurement is the span from the first start to the last end.

use std::time::Duration;

use crate::context::GpuContext;
use crate::error::{Error, Result};

/// Timestamps one measurement holds: two per compute pass (an operation records one pass; a
/// split operation one per piece).
const CAPACITY: u32 = 512;

/// The query set of an open measurement, the next free index in it, and the thread that
/// opened it (only that thread's passes are timed).
pub(crate) struct Stamps {
    set: wgpu::QuerySet,
    next: u32,
    owner: std::thread::ThreadId,
}

/// An open measurement: dropping it closes it (also when the caller's closure panics) and lets
/// the next waiting thread open one.
#[cfg(not(target_arch = "wasm32"))]
struct Open<'a>(&'a GpuContext);

#[cfg(not(target_arch = "wasm32"))]
impl Open<'_> {
    /// Closes the measurement, returning its stamps.
    fn close(self) -> Option<Stamps> {
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

impl GpuContext {
    /// Whether [`GpuContext::time_on_gpu`] can measure: the device has timestamp queries (and
    /// the context asked for them, which [`GpuContext::new`] does wherever the adapter has them).
    pub fn has_timestamps(&self) -> bool {
        self.device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Records work with `record`, submits it and waits; returns the device's time from the
    /// start of the first compute pass the library recorded to the end of the last, or `None`
    /// where the device has no timestamp queries (or `record` recorded more than 256 passes).
    /// Passes the caller records itself are not timed. One measurement at a time per context:
    /// a thread that calls while another thread measures waits for it to end, and passes other
    /// threads record meanwhile are not timed. Called again from inside `record`, it returns
    /// [`Error::Busy`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn time_on_gpu(
        &self,
        record: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<()>,
    ) -> Result<Option<Duration>> {
        let mut encoder = self.encoder("wgpu-conv: timed");
        if !self.has_timestamps() {
            record(&mut encoder)?;
            self.submit_and_wait(encoder)?;
            return Ok(None);
        }
        let set = self.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("wgpu-conv: timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: CAPACITY,
        });
        let me = std::thread::current().id();
        let open = {
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
            Open(self)
        };
        let recorded = record(&mut encoder);
        let stamps = open.close();
        recorded?;
        let Some(Stamps { set, next, .. }) = stamps else {
            return Err(Error::Internal(
                "a timestamp measurement was closed by another thread".into(),
            ));
        };
        if next == 0 || next > CAPACITY {
            self.submit_and_wait(encoder)?;
            return Ok(None);
        }
        let resolved = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgpu-conv: resolved timestamps"),
            size: u64::from(next) * 8,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        encoder.resolve_query_set(&set, 0..next, &resolved, 0);
        let words = self
            .scoped("time_on_gpu", || {
                self.submit_and_read(encoder, &[&resolved])
            })?
            .remove(0);
        let ticks: Vec<u64> = bytemuck::cast_slice::<f32, u32>(&words)
            .chunks_exact(2)
            .map(|w| u64::from(w[0]) | (u64::from(w[1]) << 32))
            .collect();
        let (Some(first), Some(last)) = (ticks.iter().min(), ticks.iter().max()) else {
            return Ok(None);
        };
        let ns = (last - first) as f64 * f64::from(self.queue.get_timestamp_period());
        Ok(Some(Duration::from_nanos(ns.round() as u64)))
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
