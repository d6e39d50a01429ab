//! The floor of `bench`'s whole-call figures: a trivial kernel's round trip on the same device.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use wgpu_conv::GpuContext;

/// The floor of a blocking call on this device: a naive one-buffer kernel (each float of the
/// buffer incremented in place) whose data is written, dispatched and read back; its pipeline
/// and buffers are made once, so a round trip is only the write, the submission, the wait and
/// the read.
pub struct Floor {
    pipeline: wgpu::ComputePipeline,
    group: wgpu::BindGroup,
    buf: wgpu::Buffer,
    staging: wgpu::Buffer,
    data: Vec<f32>,
}

const FLOOR_SHADER: &str = "@group(0) @binding(0) var<storage, read_write> v: array<f32>;
@compute @workgroup_size(64)
fn main(
    @builtin(global_invocation_id) id: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let i = id.y * groups.x * 64u + id.x;
    if i < arrayLength(&v) {
        v[i] = v[i] + 1.0;
    }
}";

/// The floor kernel's grid for `len` values (64 per workgroup): rows of at most `max_per_dim`
/// workgroups, as many rows as needed.
fn floor_grid(len: usize, max_per_dim: u32) -> [u32; 2] {
    let groups = len.max(1).div_ceil(64) as u64;
    let max = u64::from(max_per_dim.max(1));
    let rows = groups.div_ceil(max);
    let per_row = groups.div_ceil(rows);
    [per_row as u32, rows as u32]
}

impl Floor {
    pub fn new(ctx: &GpuContext, len: usize) -> Self {
        let device = ctx.device();
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("bench floor"),
            source: wgpu::ShaderSource::Wgsl(FLOOR_SHADER.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("bench floor"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let bytes = (len.max(1) * 4) as u64;
        let buffer = |usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("bench floor"),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        use wgpu::BufferUsages as U;
        let buf = buffer(U::STORAGE | U::COPY_DST | U::COPY_SRC);
        let staging = buffer(U::MAP_READ | U::COPY_DST);
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("bench floor"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: buf.as_entire_binding(),
            }],
        });
        Floor {
            pipeline,
            group,
            buf,
            staging,
            data: vec![1.0; len.max(1)],
        }
    }

    /// One round trip: write, dispatch, copy, submit, wait, read.
    pub fn round_trip(&self, ctx: &GpuContext) -> Result<Duration> {
        let t = Instant::now();
        ctx.queue()
            .write_buffer(&self.buf, 0, bytemuck::cast_slice(&self.data));
        let mut enc = ctx.encoder("bench floor");
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &self.group, &[]);
            let max = ctx.limits().max_compute_workgroups_per_dimension;
            let [x, y] = floor_grid(self.data.len(), max);
            pass.dispatch_workgroups(x, y, 1);
        }
        enc.copy_buffer_to_buffer(&self.buf, 0, &self.staging, 0, self.buf.size());
        ctx.queue().submit([enc.finish()]);
        let slice = self.staging.slice(..);
        slice.map_async(wgpu::MapMode::Read, |_| {});
        ctx.device()
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| anyhow::anyhow!("floor round trip: {e}"))?;
        let ends = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| anyhow::anyhow!("floor round trip: {e}"))?;
            let v = bytemuck::cast_slice::<u8, f32>(&view);
            [v[0], v[v.len() - 1]]
        };
        self.staging.unmap();
        if ends != [2.0, 2.0] {
            bail!("the floor kernel computed {ends:?} at its ends, not 2");
        }
        Ok(t.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::floor_grid;

    #[test]
    fn the_floor_grid_covers_every_value_within_the_limit() {
        for (len, max) in [
            (0, 65_535),
            (1, 65_535),
            (64 * 65_535, 65_535),
            (64 * 65_535 + 1, 65_535),
            (4_194_304, 65_535),
            (1_000_003, 200),
        ] {
            let [x, y] = floor_grid(len, max);
            assert!(x <= max && y <= max, "{len} {max}: {x} x {y}");
            let covered = u64::from(x) * u64::from(y) * 64;
            assert!(covered >= len as u64, "{len} {max}: {x} x {y}");
            // no whole row of workgroups past the end
            assert!(
                covered - (len as u64) < u64::from(x) * 64 + 64,
                "{len} {max}"
            );
        }
    }
}
