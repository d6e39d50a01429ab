// Forward 2-D convolution (cross-correlation, or strict convolution with `flip`), NCHW input,
// OIHW weight, optional per-output-channel bias, any stride / padding / dilation / groups and
// padding mode. One invocation per output element.

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
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const WORKGROUP_SIZE: u32 = 64u;

// Where coordinate `i` of the padded axis (relative to the unpadded start) reads from in an
// axis of length `n`, or -1 for a zero. Modes: 0 zeros, 1 reflect, 2 replicate, 3 circular
// (keep in sync with `PaddingMode::code`).
fn pad_source(i: i32, n: i32, mode: u32) -> i32 {
    if i >= 0 && i < n {
        return i;
    }
    switch mode {
        case 1u: {
            var r = abs(i);
            if r >= n {
                r = 2 * (n - 1) - r;
            }
            return r;
        }
        case 2u: {
            return clamp(i, 0, n - 1);
        }
        case 3u: {
            // Circular padding is at most n wide, so one wrap suffices. (No `%` on negative
            // values: GLSL, which the GL backend compiles to, leaves its sign undefined.)
            var r = i;
            if r < 0 {
                r += n;
            }
            if r >= n {
                r -= n;
            }
            return r;
        }
        default: {
            return -1;
        }
    }
}

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
    let ox = idx % p.ow;
    var t = idx / p.ow;
    let oy = t % p.oh;
    t = t / p.oh;
    let o = t % p.oc;
    let n = t / p.oc;
    let grp = o / p.ocpg;
    let h = i32(p.h);
    let w = i32(p.w);

    var acc = 0.0;
    for (var ci = 0u; ci < p.cpg; ci++) {
        let x_plane = (n * p.c + grp * p.cpg + ci) * p.h;
        let w_plane = (o * p.cpg + ci) * p.kh;
        for (var a = 0u; a < p.kh; a++) {
            let sy = pad_source(i32(oy * p.stride_h + a * p.dil_h) - i32(p.pad_top), h, p.pad_mode);
            if sy < 0 {
                continue;
            }
            let ta = select(a, p.kh - 1u - a, p.flip != 0u);
            let x_row = (x_plane + u32(sy)) * p.w;
            let w_row = (w_plane + ta) * p.kw;
            for (var b = 0u; b < p.kw; b++) {
                let sx = pad_source(i32(ox * p.stride_w + b * p.dil_w) - i32(p.pad_left), w, p.pad_mode);
                if sx < 0 {
                    continue;
                }
                let tb = select(b, p.kw - 1u - b, p.flip != 0u);
                acc = fma(x[x_row + u32(sx)], weight[w_row + tb], acc);
            }
        }
    }
    if p.has_bias != 0u {
        acc += bias[o];
    }
    y[idx] = acc;
}
