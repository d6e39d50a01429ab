// Forward 2-D convolution for layers with one output channel per group (single-channel images,
// depthwise layers): each invocation computes 16 neighbouring output pixels of one row of one
// output channel, so the weight it loads feeds 16 multiply-adds and no lane computes channels
// that do not exist. Dispatched as a 3-D grid (x: blocks of 16 output columns, y: output rows,
// z: batch x output channels). Long reductions come in pieces (input channels lo0..hi0, kernel
// rows lo1..hi1, columns lo2..hi2), each added to the last.
// (conv2d_common.wgsl, with `Params` and `pad_source`, is prepended to this file.)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// Loads input column `col` (padded coordinate, relative) of row `row_base`, or 0 where it is
// padding or `live` is false. The index is clamped so that no load leaves the buffer.
fn load_x(row_base: u32, col: i32, live: bool) -> f32 {
    let s = pad_source(col, i32(p.s.w), p.s.pad_mode);
    let v = x[row_base + u32(clamp(s, 0, i32(p.s.w) - 1))];
    return select(0.0, v, live && s >= 0);
}

// Four output pixels starting at column `c` (stride `sw` apart), as a vec4.
fn load4(row_base: u32, c: i32, sw: i32, ox: u32) -> vec4<f32> {
    return vec4<f32>(
        load_x(row_base, c, ox < p.s.ow),
        load_x(row_base, c + sw, ox + 1u < p.s.ow),
        load_x(row_base, c + 2 * sw, ox + 2u < p.s.ow),
        load_x(row_base, c + 3 * sw, ox + 3u < p.s.ow),
    );
}

@compute @workgroup_size(8, 8, 1)
fn conv2d_forward_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ox0 = gid.x * 16u;
    let oy = gid.y;
    if ox0 >= p.s.ow || oy >= p.s.oh {
        return;
    }
    let o = (p.base + gid.z) % p.s.oc;
    let n = (p.base + gid.z) / p.s.oc;
    let grp = o / p.s.ocpg;
    let sw = i32(p.s.stride_w);
    let col0 = i32(ox0 * p.s.stride_w) - i32(p.s.pad_left);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var ci = p.lo0; ci < p.hi0; ci++) {
        let x_plane = (n * p.s.c + grp * p.s.cpg + ci) * p.s.h;
        let w_plane = (o * p.s.cpg + ci) * p.s.kh;
        for (var a = p.lo1; a < p.hi1; a++) {
            let sy = pad_source(i32(oy * p.s.stride_h + a * p.s.dil_h) - i32(p.s.pad_top), i32(p.s.h), p.s.pad_mode);
            if sy < 0 {
                continue;
            }
            let row_base = (x_plane + u32(sy)) * p.s.w;
            let w_row = (w_plane + select(a, p.s.kh - 1u - a, p.s.flip != 0u)) * p.s.kw;
            for (var b = p.lo2; b < p.hi2; b++) {
                let wv = vec4<f32>(weight[w_row + select(b, p.s.kw - 1u - b, p.s.flip != 0u)]);
                let c = col0 + i32(b * p.s.dil_w);
                acc0 = fma(wv, load4(row_base, c, sw, ox0), acc0);
                acc1 = fma(wv, load4(row_base, c + 4 * sw, sw, ox0 + 4u), acc1);
                acc2 = fma(wv, load4(row_base, c + 8 * sw, sw, ox0 + 8u), acc2);
                acc3 = fma(wv, load4(row_base, c + 12 * sw, sw, ox0 + 12u), acc3);
            }
        }
    }
    var b0 = 0.0;
    if p.has_bias != 0u {
        b0 = bias[o];
    }
    let base = ((n * p.s.oc + o) * p.s.oh + oy) * p.s.ow + ox0;
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var q = 0u; q < 4u; q++) {
        for (var i = 0u; i < 4u; i++) {
            if ox0 + q * 4u + i < p.s.ow {
                var v = accs[q][i] + b0;
                if p.accumulate != 0u {
                    v += y[base + q * 4u + i];
                }
                y[base + q * 4u + i] = v;
            }
        }
    }
}
