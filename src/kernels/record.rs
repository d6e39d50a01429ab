//! Recording a [`Plan`]: its scratch buffers, one uniform buffer holding every dispatch's
//! uniform at its own dynamic offset, one bind group per pass, and one compute pass for the
//! whole operation.

use super::plan::{Buf, Plan};
use crate::context::GpuContext;
use crate::error::{Error, Result};

/// Smallest scratch buffer (a binding of one vec4).
const MIN_BUFFER_BYTES: u64 = 16;

/// Records `plan` into `encoder` with `operands` bound where the plan names them.
pub(crate) fn record(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    plan: &Plan,
    operands: &[&wgpu::Buffer],
) -> Result<()> {
    plan.validate(&ctx.profile())?;
    if plan.passes.is_empty() {
        return Ok(());
    }
    // operands the caller made (`GpuTensor::from_buffer`) may be larger than a binding
    let max = ctx.limits.max_storage_buffer_binding_size;
    if let Some(b) = operands.iter().find(|b| b.size() > max) {
        return Err(Error::too_large(
            format!("a {:?} operand's buffer", plan.op),
            crate::error::Limit::Binding,
            b.size(),
            max,
        ));
    }
    let scratch: Vec<wgpu::Buffer> = plan
        .scratch
        .iter()
        .map(|s| {
            let mut usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
            if s.uniform {
                usage |= wgpu::BufferUsages::UNIFORM;
            }
            ctx.pooled(
                s.label,
                usage,
                s.bytes
                    .max(MIN_BUFFER_BYTES)
                    .next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT),
            )
        })
        .collect();
    for (s, b) in plan.scratch.iter().zip(&scratch) {
        if let Some(from) = s.zero_from {
            encoder.clear_buffer(b, from, None);
        }
    }
    let buffer = |buf: Buf| -> Result<&wgpu::Buffer> {
        match buf {
            Buf::Operand(i) => operands
                .get(i)
                .copied()
                .ok_or_else(|| Error::Internal(format!("{:?} plan binds operand {i}", plan.op))),
            Buf::Scratch(i) => Ok(&scratch[i]),
            Buf::Zeros => Ok(&ctx.pipelines.zeros),
            Buf::Discard => Ok(&ctx.pipelines.discard),
        }
    };

    // every dispatch's uniform, each at an offset the device accepts for a dynamic binding
    let align = u64::from(ctx.limits.min_uniform_buffer_offset_alignment.max(16));
    let mut bytes: Vec<u8> = Vec::new();
    let mut offsets: Vec<Vec<u32>> = Vec::with_capacity(plan.passes.len());
    for pass in &plan.passes {
        let mut pass_offsets = Vec::with_capacity(pass.uniforms.len());
        for u in &pass.uniforms {
            let at = (bytes.len() as u64).next_multiple_of(align);
            bytes.resize(at as usize, 0);
            pass_offsets.push(u32::try_from(at).map_err(|_| {
                Error::Internal(format!("{:?} plan: uniforms past 4 GiB", plan.op))
            })?);
            bytes.extend_from_slice(u);
        }
        offsets.push(pass_offsets);
    }
    let uniforms = ctx.pooled(
        "wgpu-conv: uniforms",
        wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        bytes.len() as u64,
    );
    ctx.queue.write_buffer(&uniforms, 0, &bytes);

    let mut bound = Vec::with_capacity(plan.passes.len());
    for pass in &plan.passes {
        let pipeline = ctx.pipelines.get(&ctx.device, pass.spec, &pass.constants)?;
        let size = wgpu::BufferSize::new(pass.spec.uniform.bytes() as u64);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &uniforms,
                offset: 0,
                size,
            }),
        }];
        for (i, b) in pass.bindings.iter().enumerate() {
            let buffer = buffer(b.buf)?;
            let resource = match b.block {
                Some(block) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer,
                    offset: 0,
                    size: wgpu::BufferSize::new(block),
                }),
                None => buffer.as_entire_binding(),
            };
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource,
            });
        }
        let group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(pass.spec.name),
            layout: &pipeline.layout,
            entries: &entries,
        });
        bound.push((pipeline, group));
    }

    let stamps = ctx.pass_timestamps();
    let mut cpass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some(plan.op.name()),
        timestamp_writes: stamps
            .as_ref()
            .map(|(set, at)| wgpu::ComputePassTimestampWrites {
                query_set: set,
                beginning_of_pass_write_index: Some(*at),
                end_of_pass_write_index: Some(at + 1),
            }),
    });
    for ((pass, (pipeline, group)), pass_offsets) in plan.passes.iter().zip(&bound).zip(&offsets) {
        let blocks = pass.bindings.iter().any(|b| b.block.is_some());
        cpass.set_pipeline(&pipeline.pipeline);
        for d in &pass.dispatches {
            let at = pass_offsets[d.uniform];
            if blocks {
                cpass.set_bind_group(0, group, &[at, d.block]);
            } else {
                cpass.set_bind_group(0, group, &[at]);
            }
            cpass.dispatch_workgroups(d.grid[0], d.grid[1], d.grid[2]);
        }
    }
    Ok(())
}
