// Bias gradient of sum(y * gy), first pass of the same deterministic two-pass reduction as
// conv2d_weight_grad: one workgroup sums one slice of (n, oy, ox) for one output channel and
// writes partials[channel * slices + slice]; `reduce_partials` finishes in slice order.
// (conv2d_common.wgsl, with `Params` and `pad_source`, is prepended to this file.)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad_output: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

const WORKGROUP_SIZE: u32 = 64u;

var<workgroup> scratch: array<f32, 64>;

@compute @workgroup_size(64)
fn conv2d_bias_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let job = p.base + wid.y * nwg.x + wid.x;
    if job >= p.s.oc * p.slices {
        return;
    }
    let o = job / p.slices;
    let s = job % p.slices;
    let plane = p.s.oh * p.s.ow;
    let len = p.s.n * plane;
    let start = s * p.slice_len;
    let end = min(start + p.slice_len, len);

    var acc = 0.0;
    for (var r = start + lid; r < end; r += WORKGROUP_SIZE) {
        let n = r / plane;
        acc += grad_output[(n * p.s.oc + o) * plane + r % plane];
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
        partials[job] = scratch[0];
    }
}
