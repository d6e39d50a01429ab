// Second pass of the deterministic reductions (weight and bias gradients, the loss): element i
// is the sum of partials[i * slices + s] for s = 0, 1, ... in that order.

// Keep in sync with `ReduceParams` in src/kernels/mod.rs.
struct Params {
    count: u32,
    slices: u32,
    _pad0: u32,
    _pad1: u32,
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
    var acc = 0.0;
    let base = i * p.slices;
    for (var s = 0u; s < p.slices; s++) {
        acc += partials[base + s];
    }
    out[i] = acc;
}
