// Bias gradient of sum(y * gy), first pass of the same deterministic two-pass reduction as
// conv2d_weight_grad: one workgroup sums one slice of (n, oy, ox) for one output channel and
// writes partials[channel * slices + slice]; `reduce_partials` finishes in slice order.

// Keep in sync with `ConvParams` in src/kernels/mod.rs (the same struct opens every conv2d_*.wgsl).
struct Params {
    n: u32, c: u32, h: u32, w: u32,
    oc: u32, kh: u32, kw: u32, cpg: u32,
    oh: u32, ow: u32, groups: u32, ocpg: u32,
    stride_h: u32, stride_w: u32, dil_h: u32, dil_w: u32,
    pad_top: u32, pad_left: u32, pad_bottom: u32, pad_right: u32,
    pad_mode: u32, flip: u32, has_bias: u32, total: u32,
    slice_len: u32, slices: u32, base: u32, _pad1: u32,
}
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
    if job >= p.oc * p.slices {
        return;
    }
    let o = job / p.slices;
    let s = job % p.slices;
    let plane = p.oh * p.ow;
    let len = p.n * plane;
    let start = s * p.slice_len;
    let end = min(start + p.slice_len, len);

    var acc = 0.0;
    for (var r = start + lid; r < end; r += WORKGROUP_SIZE) {
        let n = r / plane;
        acc += grad_output[(n * p.oc + o) * plane + r % plane];
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
