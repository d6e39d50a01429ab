// Second pass of the deterministic reductions (weight and bias gradients, the loss, a split
// K): sum i is the sum, in order, of group q = i % groups of element e = i / groups: partial s
// of e for s = q * group, q * group + 1, ... (groups = ceil(slices / group); one group of all
// the slices unless the loop budget makes the host reduce in several such passes). Partial s of
// e is partials[e * slices + s], or partials[s * slice_stride + e] where slice_stride is not 0
// (a `[slice][element]` layout).

// Keep in sync with `ReduceParams` in src/kernels/reduce_partials.rs.
struct Params {
    count: u32,
    slices: u32,
    group: u32,
    slice_stride: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(64)
fn reduce_partials(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * WORKGROUP_SIZE + lid;
    if i >= p.count {
        return;
    }
    let groups = (p.slices + p.group - 1u) / p.group;
    let q = i % groups;
    let e = i / groups;
    let first = q * p.group;
    var base = e * p.slices + first;
    var step = 1u;
    if p.slice_stride != 0u {
        base = first * p.slice_stride + e;
        step = p.slice_stride;
    }
    let len = min(p.group, p.slices - first);
    var acc = 0.0;
    for (var s = 0u; s < len; s++) {
        acc += partials[base + s * step];
    }
    out[i] = acc;
}
