//! GPU time of recorded work, from timestamp queries where the device has them: each compute
//! pass the library records while a measurement is open writes a timestamp at its start and at
//! its end, and the measurement is the span from the first start to the last end.

use std::time::Duration;

use crate::context::GpuContext;
use crate::error::{Error, Result};

/// Timestamps one measurement holds: two per compute pass (an operation records one pass; a
/// split operation one per piece).
const CAPACITY: u32 = 512;

/// The query set of an open measurement and the next free index in it.
pub(crate) struct Stamps {
    set: wgpu::QuerySet,
    next: u32,
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
    /// passes another thread records meanwhile are counted in.
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
        *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) = Some(Stamps { set, next: 0 });
        let recorded = record(&mut encoder);
        let stamps = self.stamps.lock().unwrap_or_else(|e| e.into_inner()).take();
        recorded?;
        let Some(Stamps { set, next }) = stamps else {
            return Err(Error::Internal(
                "a timestamp measurement was closed twice".into(),
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
        let words = {
            let _turn = self.serialized();
            self.check_alive()?;
            self.submit_and_read(encoder, &[&resolved])?.remove(0)
        };
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
        let stamps = guard.as_mut()?;
        let at = stamps.next;
        stamps.next = stamps.next.saturating_add(2);
        (stamps.next <= CAPACITY).then(|| (stamps.set.clone(), at))
    }
}
