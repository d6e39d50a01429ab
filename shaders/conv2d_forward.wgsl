// Forward 2-D convolution (cross-correlation, or strict convolution with `flip`), NCHW input,
// OIHW weight, optional per-output-channel bias, any stride / padding / dilation / groups and
// padding mode. One invocation per output element; the host cuts long reductions into pieces
// (input channels lo0..hi0, kernel rows lo1..hi1, columns lo2..hi2), each added to the last.
// (conv2d_common.wgsl, with `Params` and `pad_source`, is prepended to this file.)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(64)
fn conv2d_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = p.base + (wid.y * nwg.x + wid.x) * WORKGROUP_SIZE + lid;
    if idx >= p.total {
        return;
    }
    let ox = idx % p.s.ow;
    var t = idx / p.s.ow;
    let oy = t % p.s.oh;
    t = t / p.s.oh;
    let o = t % p.s.oc;
    let n = t / p.s.oc;
    let grp = o / p.s.ocpg;
    let h = i32(p.s.h);
    let w = i32(p.s.w);

    var acc = 0.0;
    for (var ci = p.lo0; ci < p.hi0; ci++) {
        let x_plane = (n * p.s.c + grp * p.s.cpg + ci) * p.s.h;
        let w_plane = (o * p.s.cpg + ci) * p.s.kh;
        for (var a = p.lo1; a < p.hi1; a++) {
            let sy = pad_source(i32(oy * p.s.stride_h + a * p.s.dil_h) - i32(p.s.pad_top), h, p.s.pad_mode);
            if sy < 0 {
                continue;
            }
            let ta = select(a, p.s.kh - 1u - a, p.s.flip != 0u);
            let x_row = (x_plane + u32(sy)) * p.s.w;
            let w_row = (w_plane + ta) * p.s.kw;
            for (var b = p.lo2; b < p.hi2; b++) {
                let sx = pad_source(i32(ox * p.s.stride_w + b * p.s.dil_w) - i32(p.s.pad_left), w, p.s.pad_mode);
                if sx < 0 {
                    continue;
                }
                let tb = select(b, p.s.kw - 1u - b, p.s.flip != 0u);
                acc = fma(x[x_row + u32(sx)], weight[w_row + tb], acc);
            }
        }
    }
    if p.has_bias != 0u {
        acc += bias[o];
    }
    if p.accumulate != 0u {
        acc += y[idx];
    }
    y[idx] = acc;
}
