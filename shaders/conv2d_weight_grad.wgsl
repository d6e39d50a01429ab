// Weight gradient of sum(y * gy), first pass of a deterministic two-pass reduction.
// The reduction over r = (n, oy, ox), of length N*OH*OW, is cut into `slices` slices of
// `slice_len`; one workgroup sums one slice for one weight element (each invocation a strided
// run, then a fixed tree in workgroup memory) and writes partials[element * slices + slice].
// `reduce_partials` then adds each element's partials in slice order. No atomics: the result
// depends only on the shape, never on scheduling.
// (conv2d_common.wgsl, with `Params` and `pad_source`, is prepended to this file.)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> grad_output: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

const WORKGROUP_SIZE: u32 = 64u;

var<workgroup> scratch: array<f32, 64>;

@compute @workgroup_size(64)
fn conv2d_weight_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Uniform per workgroup, so the barriers below stay in uniform control flow.
    let job = p.base + wid.y * nwg.x + wid.x;
    let elements = p.s.oc * p.s.cpg * p.s.kh * p.s.kw;
    if job >= elements * p.slices {
        return;
    }
    let e = job / p.slices;
    let s = job % p.slices;
    let kb = e % p.s.kw;
    var t = e / p.s.kw;
    let ka = t % p.s.kh;
    t = t / p.s.kh;
    let ci = t % p.s.cpg;
    let o = t / p.s.cpg;
    // The tap this stored weight is used at (flipped for strict convolution).
    let a = select(ka, p.s.kh - 1u - ka, p.s.flip != 0u);
    let b = select(kb, p.s.kw - 1u - kb, p.s.flip != 0u);
    let c = (o / p.s.ocpg) * p.s.cpg + ci;
    let h = i32(p.s.h);
    let w = i32(p.s.w);
    let len = p.s.n * p.s.oh * p.s.ow;
    let start = s * p.slice_len;
    let end = min(start + p.slice_len, len);

    var acc = 0.0;
    for (var r = start + lid; r < end; r += WORKGROUP_SIZE) {
        let ox = r % p.s.ow;
        let t2 = r / p.s.ow;
        let oy = t2 % p.s.oh;
        let n = t2 / p.s.oh;
        let sy = pad_source(i32(oy * p.s.stride_h + a * p.s.dil_h) - i32(p.s.pad_top), h, p.s.pad_mode);
        let sx = pad_source(i32(ox * p.s.stride_w + b * p.s.dil_w) - i32(p.s.pad_left), w, p.s.pad_mode);
        if sy >= 0 && sx >= 0 {
            let xv = x[((n * p.s.c + c) * p.s.h + u32(sy)) * p.s.w + u32(sx)];
            let gv = grad_output[((n * p.s.oc + o) * p.s.oh + oy) * p.s.ow + ox];
            acc = fma(xv, gv, acc);
        }
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
