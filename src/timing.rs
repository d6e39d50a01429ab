//! GPU time of recorded work, from timestamp queries where the device has them: each compute
//! pass the library records while a measurement is open writes a timestamp at its start and at
//! its end, and the measurement is the span from the first start to the last end.

use std::time::Duration;

use crate::context::GpuContext;
use crate::error::{Error, Result};

use crate::runtime::timing::{Stamps, CAPACITY};

impl GpuContext {
    /// Whether [`GpuContext::time_on_gpu`] can measure: the device has timestamp queries (and
    /// the context asked for them, which [`GpuContext::new`] does wherever the adapter has them).
    pub fn has_timestamps(&self) -> bool {
        self.rt
            .device
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
        let set = self.rt.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("wgpu-conv: timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: CAPACITY,
        });
        let open = self.rt.open_measurement(set)?;
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
        let resolved = self.rt.device.create_buffer(&wgpu::BufferDescriptor {
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
        let ns = (last - first) as f64 * f64::from(self.rt.queue.get_timestamp_period());
        Ok(Some(Duration::from_nanos(ns.round() as u64)))
    }
}
