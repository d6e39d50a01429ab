// Squared-error loss, scale * sum (pred - target)^2, and its gradient 2 * scale * (pred - target).
// One workgroup per slice of the elements writes the gradient and the slice's partial loss
// (a fixed tree in workgroup memory); `reduce_partials` adds the partials in order.

// Keep in sync with `LossParams` in src/kernels/mse_loss.rs.
struct Params {
    count: u32,
    slice_len: u32,
    slices: u32,
    scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> expected: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;

const WORKGROUP_SIZE: u32 = 64u;

var<workgroup> scratch: array<f32, 64>;

@compute @workgroup_size(64)
fn mse_loss(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let s = wid.y * nwg.x + wid.x;
    if s >= p.slices {
        return;
    }
    let start = s * p.slice_len;
    let end = min(start + p.slice_len, p.count);
    var acc = 0.0;
    for (var i = start + lid; i < end; i += WORKGROUP_SIZE) {
        let d = pred[i] - expected[i];
        grad[i] = 2.0 * p.scale * d;
        acc = fma(d, d, acc);
    }
    scratch[lid] = acc;
    workgroupBarrier();
    for (var half = WORKGROUP_SIZE / 2u; half > 0u; half = half / 2u) {
        if lid < half {
            scratch[lid] = scratch[lid] + scratch[lid + half];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        partials[s] = p.scale * scratch[0];
    }
}
