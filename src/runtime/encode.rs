//! Recording a [`Plan`]: its scratch buffers, one uniform buffer holding every dispatch's
//! uniform at its own dynamic offset, one bind group per pass, and one compute pass for the
//! whole operation. [`prepare`] makes the buffers and bind groups once; [`Prepared::encode`]
//! records the passes, as often as the caller wants (a training step records the same
//! operations on the same buffers every time).

use std::sync::Arc;

use super::pipelines::Pipeline;
use super::timing::Stamp;
use super::Runtime;
use crate::error::{Error, Result};
use crate::kernels::plan::{Buf, Op, Plan};
use crate::kernels::DeviceProfile;

/// Kernels that write a weight's packed form (from the weight alone).
const PACKERS: [&str; 3] = [
    "conv2d_pack_chunks",
    "conv2d_pack_planes",
    "conv2d_pack_core",
];

/// Smallest scratch buffer (a binding of one vec4).
const MIN_BUFFER_BYTES: u64 = 16;

/// Records `plan` into `encoder` with `operands` bound where the plan names them.
pub(crate) fn record(
    rt: &Runtime,
    profile: &DeviceProfile,
    encoder: &mut wgpu::CommandEncoder,
    plan: &Plan,
    operands: &[&wgpu::Buffer],
) -> Result<()> {
    prepare(rt, profile, plan, operands, &[])?.encode(rt, encoder);
    Ok(())
}

/// A plan bound to its buffers, ready to be recorded into any number of encoders.
#[derive(Clone)]
pub(crate) struct Prepared {
    op: Op,
    passes: Vec<BoundPass>,
    /// Scratch buffers cleared (from a byte offset) before the passes.
    clears: Vec<(wgpu::Buffer, u64)>,
    /// Scratch buffers the passes write before they read (not a resident weight's): filled
    /// with NaN before the passes where the context poisons scratch.
    poison: Vec<wgpu::Buffer>,
}

/// One pass's pipeline, bind group and dispatches (grid, uniform offset, block offset).
#[derive(Clone)]
struct BoundPass {
    pipeline: Arc<Pipeline>,
    group: wgpu::BindGroup,
    dispatches: Vec<([u32; 3], u32, Option<u32>)>,
    packs_weight: bool,
    /// Its index in the plan (passes the resident weight makes needless are not bound).
    index: usize,
}

/// The scratch buffers a weight's packed form lives in: `(scratch index, pass index)` of each
/// pass that writes one scratch buffer from the weight (operand 1 of a forward plan) alone.
pub(crate) fn weight_packs(plan: &Plan) -> Vec<(usize, usize)> {
    if plan.op != Op::Forward {
        return Vec::new();
    }
    plan.passes
        .iter()
        .enumerate()
        .filter(|(_, p)| PACKERS.contains(&p.spec.name))
        .filter_map(|(i, p)| match p.bindings.as_slice() {
            [w, out] if w.buf == Buf::Operand(1) => match out.buf {
                Buf::Scratch(s) => Some((s, i)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The usage of a plan's scratch buffer.
pub(crate) fn scratch_usage(plan: &Plan, index: usize) -> wgpu::BufferUsages {
    let mut usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
    if plan.scratch.get(index).is_some_and(|s| s.uniform) {
        usage |= wgpu::BufferUsages::UNIFORM;
    }
    usage
}

/// The bytes of a plan's scratch buffer as allocated.
pub(crate) fn scratch_size(plan: &Plan, index: usize) -> u64 {
    plan.scratch.get(index).map_or(MIN_BUFFER_BYTES, |s| {
        s.bytes
            .max(MIN_BUFFER_BYTES)
            .next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT)
    })
}

/// Binds `plan` to `operands`. `resident` gives buffers for some scratch indices (a weight's
/// packed form kept between calls) and whether they already hold it: then the passes that
/// write them are left out.
pub(crate) fn prepare(
    rt: &Runtime,
    profile: &DeviceProfile,
    plan: &Plan,
    operands: &[&wgpu::Buffer],
    resident: &[(usize, &wgpu::Buffer, bool)],
) -> Result<Prepared> {
    rt.log_plan(plan);
    // A blocking call's operands are pooled buffers, leased to this thread alone until its
    // submission is done; a small plan bound to them is kept and bound again when the pool
    // hands out the same buffers for the same plan.
    let cached = super::pool::in_lease()
        && resident.is_empty()
        && operands.iter().all(|b| b.size() <= CACHED_BUFFER_BYTES)
        && plan.scratch.iter().all(|s| s.bytes <= CACHED_BUFFER_BYTES);
    if !cached {
        return prepare_new(rt, profile, plan, operands, resident, false);
    }
    let key = (
        plan.fingerprint(),
        operands.iter().map(|b| (*b).clone()).collect::<Vec<_>>(),
    );
    if let Some(p) = rt.prepared_cache.get(&key) {
        return Ok(p);
    }
    // its scratch and uniforms are its own: pooled ones would go to other calls meanwhile
    let p = prepare_new(rt, profile, plan, operands, resident, true)?;
    rt.prepared_cache.insert(key, p.clone());
    Ok(p)
}

/// The largest operand or scratch buffer of a plan [`prepare`] keeps bound.
const CACHED_BUFFER_BYTES: u64 = 256 << 10;
/// Bound plans a context keeps: with [`CACHED_BUFFER_BYTES`], the buffers they hold from
/// being freed stay under 64 entries x (operands + scratch) of 256 KiB.
const CACHED_PLANS: usize = 64;

type CacheKey = (u64, Vec<wgpu::Buffer>);

/// Bound plans of blocking calls, by plan and operand buffers; emptied when full and by
/// the context's `trim`.
#[derive(Default)]
pub(crate) struct PreparedCache(std::sync::Mutex<std::collections::HashMap<CacheKey, Prepared>>);

impl PreparedCache {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<CacheKey, Prepared>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn get(&self, key: &CacheKey) -> Option<Prepared> {
        self.map().get(key).cloned()
    }
    fn insert(&self, key: CacheKey, p: Prepared) {
        let mut map = self.map();
        if map.len() >= CACHED_PLANS {
            map.clear();
        }
        map.insert(key, p);
    }
    /// Forgets every bound plan (and so lets their buffers go).
    pub(crate) fn clear(&self) {
        self.map().clear();
    }
}

/// [`prepare`] without the cache; `own`: scratch and uniform buffers of its own, not pooled.
fn prepare_new(
    rt: &Runtime,
    profile: &DeviceProfile,
    plan: &Plan,
    operands: &[&wgpu::Buffer],
    resident: &[(usize, &wgpu::Buffer, bool)],
    own: bool,
) -> Result<Prepared> {
    let new_buffer = |label: &str, usage, bytes| {
        if own {
            rt.dedicated(label, usage, bytes)
        } else {
            rt.pooled(label, usage, bytes)
        }
    };
    plan.validate(profile)?;
    let mut prepared = Prepared {
        op: plan.op,
        passes: Vec::new(),
        clears: Vec::new(),
        poison: Vec::new(),
    };
    if plan.passes.is_empty() {
        return Ok(prepared);
    }
    // operands the caller made (`GpuTensor::from_buffer`) may be larger than a binding
    let max = rt.limits.max_storage_buffer_binding_size;
    if let Some(b) = operands.iter().find(|b| b.size() > max) {
        return Err(Error::too_large(
            format!("a {:?} operand's buffer", plan.op),
            crate::error::Limit::Binding,
            b.size(),
            max,
        ));
    }
    let skipped: Vec<usize> = weight_packs(plan)
        .into_iter()
        .filter(|(s, _)| resident.iter().any(|r| r.0 == *s && r.2))
        .map(|(_, pass)| pass)
        .collect();
    let scratch: Vec<wgpu::Buffer> = plan
        .scratch
        .iter()
        .enumerate()
        .map(|(i, s)| match resident.iter().find(|r| r.0 == i) {
            Some(r) => r.1.clone(),
            None => new_buffer(s.label, scratch_usage(plan, i), scratch_size(plan, i)),
        })
        .collect();
    for (i, (s, b)) in plan.scratch.iter().zip(&scratch).enumerate() {
        if let Some(from) = s.zero_from {
            prepared.clears.push((b.clone(), from));
        }
        if !resident.iter().any(|r| r.0 == i) {
            prepared.poison.push(b.clone());
        }
    }
    let buffer = |buf: Buf| -> Result<&wgpu::Buffer> {
        match buf {
            Buf::Operand(i) => operands
                .get(i)
                .copied()
                .ok_or_else(|| Error::Internal(format!("{:?} plan binds operand {i}", plan.op))),
            Buf::Scratch(i) => Ok(&scratch[i]),
            Buf::Zeros => Ok(&rt.pipelines.zeros),
            Buf::Discard => Ok(&rt.pipelines.discard),
        }
    };

    // every dispatch's uniform, each at an offset the device accepts for a dynamic binding
    let align = u64::from(rt.limits.min_uniform_buffer_offset_alignment.max(16));
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
    let uniforms = new_buffer(
        "wgpu-conv: uniforms",
        wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        bytes.len() as u64,
    );
    rt.queue.write_buffer(&uniforms, 0, &bytes);

    for (index, (pass, pass_offsets)) in plan.passes.iter().zip(&offsets).enumerate() {
        if skipped.contains(&index) {
            continue;
        }
        let pipeline = rt.pipelines.get(&rt.device, pass.spec, &pass.constants)?;
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
        let group = rt.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(pass.spec.name),
            layout: &pipeline.layout,
            entries: &entries,
        });
        let blocks = pass.bindings.iter().any(|b| b.block.is_some());
        let dispatches = pass
            .dispatches
            .iter()
            .map(|d| (d.grid, pass_offsets[d.uniform], blocks.then_some(d.block)))
            .collect();
        prepared.passes.push(BoundPass {
            packs_weight: PACKERS.contains(&pass.spec.name),
            pipeline,
            group,
            dispatches,
            index,
        });
    }
    Ok(prepared)
}

impl Prepared {
    /// Records the passes into `encoder` (with the open GPU-time measurement's timestamps).
    pub(crate) fn encode(&self, rt: &Runtime, encoder: &mut wgpu::CommandEncoder) {
        encode_all(rt, encoder, std::slice::from_ref(self));
    }
}

/// Records several prepared operations, in order, into one compute pass of `encoder`.
pub(crate) fn encode_all(rt: &Runtime, encoder: &mut wgpu::CommandEncoder, ops: &[Prepared]) {
    encode_repeated(rt, encoder, ops, 1);
}

/// Records `ops` `times` times over (training steps), in one compute pass where no operation
/// clears scratch first (a clear cannot go inside a pass), else in a pass each time.
pub(crate) fn encode_repeated(
    rt: &Runtime,
    encoder: &mut wgpu::CommandEncoder,
    ops: &[Prepared],
    times: usize,
) {
    if ops.iter().any(|p| !p.clears.is_empty()) {
        for _ in 0..times {
            encode_pass(rt, encoder, ops, 1);
        }
    } else {
        encode_pass(rt, encoder, ops, times);
    }
}

/// One compute pass of `ops`, `times` over, after their clears.
fn encode_pass(rt: &Runtime, encoder: &mut wgpu::CommandEncoder, ops: &[Prepared], times: usize) {
    let Some(first) = ops.iter().find(|p| !p.passes.is_empty()) else {
        return;
    };
    if rt.poison_scratch.load(std::sync::atomic::Ordering::Relaxed) {
        // all ones: a NaN in every f32 and u32::MAX in every index (queued writes land
        // before the commands of the next submission, so before these passes and clears)
        for b in ops.iter().flat_map(|p| &p.poison) {
            let bytes = usize::try_from(b.size()).unwrap_or(usize::MAX);
            rt.queue.write_buffer(b, 0, &vec![0xff; bytes]);
        }
    }
    for (b, from) in ops.iter().flat_map(|p| &p.clears) {
        encoder.clear_buffer(b, *from, None);
    }
    let packs = ops
        .iter()
        .flat_map(|p| &p.passes)
        .filter(|p| p.packs_weight)
        .count();
    rt.count_packs((packs * times) as u64);
    let stamps = rt.pass_timestamps();
    let mut cpass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
        label: Some(first.op.name()),
        timestamp_writes: stamps
            .as_ref()
            .map(|(set, at)| wgpu::ComputePassTimestampWrites {
                query_set: set,
                beginning_of_pass_write_index: Some(*at),
                end_of_pass_write_index: Some(at + 1),
            }),
    });
    // the span of each plan pass, where the measurement times them one by one
    let mut last = stamps.as_ref().map(|(_, at)| Stamp::Outer(*at));
    for pass in (0..times).flat_map(|_| ops.iter().flat_map(|p| &p.passes)) {
        cpass.set_pipeline(&pass.pipeline.pipeline);
        for &(grid, at, block) in &pass.dispatches {
            match block {
                Some(block) => cpass.set_bind_group(0, &pass.group, &[at, block]),
                None => cpass.set_bind_group(0, &pass.group, &[at]),
            }
            cpass.dispatch_workgroups(grid[0], grid[1], grid[2]);
        }
        if let Some(from) = last {
            last = rt.pass_span(from, pass.index).map(|(set, to)| {
                cpass.write_timestamp(&set, to);
                Stamp::Inner(to)
            });
        }
    }
}
