//! GPU time of recorded work, from timestamp queries where the device has them: each compute
//! pass the library records while a measurement is open writes a timestamp at its start and at
//! its end, and the measurement is the span from the first start to the last end.

use std::time::Duration;

use crate::context::GpuContext;
use crate::error::{Error, Result};

use crate::runtime::timing::{Stamp, Stamps, CAPACITY};

impl GpuContext {
    /// Whether [`GpuContext::time_on_gpu`] can measure: the device has timestamp queries (and
    /// the context asked for them, which [`GpuContext::new`] does wherever the adapter has them).
    pub fn has_timestamps(&self) -> bool {
        self.rt
            .device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Whether [`GpuContext::time_passes_on_gpu`] also times each pass of a plan: the device
    /// has timestamp queries inside compute passes (`TIMESTAMP_QUERY_INSIDE_PASSES`).
    pub fn has_pass_timestamps(&self) -> bool {
        self.rt.device.features().contains(
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES,
        )
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
        Ok(self.measure_gpu_time(record, false)?.map(|t| t.total))
    }

    /// As [`GpuContext::time_on_gpu`], and where [`GpuContext::has_pass_timestamps`], the time
    /// of each pass of the plans recorded (GEMM against reduction, say): `passes[i]` is the time
    /// of the passes at index `i` of their plans ([`crate::Plan::passes`]), summed over every
    /// operation `record` recorded, up to 512 passes in all (past that, `passes` is empty).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn time_passes_on_gpu(
        &self,
        record: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<()>,
    ) -> Result<Option<GpuTime>> {
        self.measure_gpu_time(record, self.has_pass_timestamps())
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn measure_gpu_time(
        &self,
        record: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<()>,
        per_pass: bool,
    ) -> Result<Option<GpuTime>> {
        let mut encoder = self.encoder("wgpu-conv: timed");
        if !self.has_timestamps() {
            record(&mut encoder)?;
            self.submit_and_wait(encoder)?;
            return Ok(None);
        }
        let query_set = |label| {
            self.rt.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some(label),
                ty: wgpu::QueryType::Timestamp,
                count: CAPACITY,
            })
        };
        let set = query_set("wgpu-conv: timestamps");
        let inner = per_pass.then(|| query_set("wgpu-conv: timestamps between passes"));
        let open = self.rt.open_measurement(set, inner)?;
        let recorded = record(&mut encoder);
        let stamps = open.close();
        recorded?;
        let Some(Stamps {
            set,
            next,
            inner,
            spans,
            ..
        }) = stamps
        else {
            return Err(Error::Internal(
                "a timestamp measurement was closed by another thread".into(),
            ));
        };
        if next == 0 || next > CAPACITY {
            self.submit_and_wait(encoder)?;
            return Ok(None);
        }
        let resolve = |encoder: &mut wgpu::CommandEncoder, set: &wgpu::QuerySet, count: u32| {
            let resolved = self.rt.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgpu-conv: resolved timestamps"),
                size: u64::from(count.max(1)) * 8,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            if count > 0 {
                encoder.resolve_query_set(set, 0..count, &resolved, 0);
            }
            resolved
        };
        let outer = resolve(&mut encoder, &set, next);
        let inner = inner.map(|(set, count)| (resolve(&mut encoder, &set, count), count));
        let mut reads = vec![&outer];
        reads.extend(inner.as_ref().map(|(b, _)| b));
        let words = self.scoped("time_on_gpu", || self.submit_and_read(encoder, &reads))?;
        let ticks = |w: &[f32]| -> Vec<u64> {
            bytemuck::cast_slice::<f32, u32>(w)
                .chunks_exact(2)
                .map(|w| u64::from(w[0]) | (u64::from(w[1]) << 32))
                .collect()
        };
        let outer = ticks(&words[0]);
        let inner = inner.map_or(Vec::new(), |(_, count)| {
            ticks(&words[1])[..count as usize].to_vec()
        });
        let (Some(first), Some(last)) = (outer.iter().min(), outer.iter().max()) else {
            return Ok(None);
        };
        let period = f64::from(self.rt.queue.get_timestamp_period());
        let span = |ticks: u64| Duration::from_nanos((ticks as f64 * period).round() as u64);
        let mut passes = Vec::new();
        // every span's timestamps were written (a span is recorded with its end's write)
        if per_pass && !spans.is_empty() && spans.len() as u32 <= CAPACITY {
            for (from, to, index) in spans {
                let start = match from {
                    Stamp::Outer(i) => outer[i as usize],
                    Stamp::Inner(i) => inner[i as usize],
                };
                let end = inner[to as usize];
                if passes.len() <= index {
                    passes.resize(index + 1, Duration::ZERO);
                }
                passes[index] += span(end.saturating_sub(start));
            }
        }
        Ok(Some(GpuTime {
            total: span(last - first),
            passes,
        }))
    }
}

/// What [`GpuContext::time_passes_on_gpu`] measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuTime {
    /// From the start of the first compute pass the library recorded to the end of the last.
    pub total: Duration,
    /// Per index of a pass in its plan, the device's time in the passes at that index, summed
    /// over the operations recorded; empty where the device cannot time inside compute passes.
    pub passes: Vec<Duration>,
}
