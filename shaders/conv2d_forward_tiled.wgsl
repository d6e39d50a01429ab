// Forward 2-D convolution, register-blocked: each invocation computes 8 output channels (of one
// group) x 4 neighbouring output pixels of one row, so every input value it loads feeds 8
// multiply-adds and every weight 4. Same options and results as conv2d_forward (the direct
// kernel), which stays as the reference path. Dispatched as a 3-D grid (x: blocks of 4 output
// columns, y: output rows, z: batch x channel blocks), so that no invocation divides by a
// runtime value except once for z (integer division is slow on CPU adapters). Long reductions
// come in pieces (input channels lo0..hi0, kernel rows lo1..hi1, columns lo2..hi2), each added
// to the last.
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

@compute @workgroup_size(8, 8, 1)
fn conv2d_forward_tiled(@builtin(global_invocation_id) gid: vec3<u32>) {
    // blocks: 4 output pixels along a row, 8 output channels within a group
    let oxb = gid.x;
    let oy = gid.y;
    if oxb * 4u >= p.s.ow || oy >= p.s.oh {
        return;
    }
    let ocb_per_group = (p.s.ocpg + 7u) / 8u;
    let z = p.base + gid.z;
    let ocb = z % (ocb_per_group * p.s.groups);
    let n = z / (ocb_per_group * p.s.groups);
    let grp = ocb / ocb_per_group;
    let o0 = grp * p.s.ocpg + (ocb % ocb_per_group) * 8u;
    let o_last = (grp + 1u) * p.s.ocpg - 1u;
    let taps = p.s.cpg * p.s.kh * p.s.kw;
    let w0 = min(o0, o_last) * taps;
    let w1 = min(o0 + 1u, o_last) * taps;
    let w2 = min(o0 + 2u, o_last) * taps;
    let w3 = min(o0 + 3u, o_last) * taps;
    let w4 = min(o0 + 4u, o_last) * taps;
    let w5 = min(o0 + 5u, o_last) * taps;
    let w6 = min(o0 + 6u, o_last) * taps;
    let w7 = min(o0 + 7u, o_last) * taps;
    let ox0 = oxb * 4u;
    let live = vec4<bool>(ox0 < p.s.ow, ox0 + 1u < p.s.ow, ox0 + 2u < p.s.ow, ox0 + 3u < p.s.ow);
    let col0 = i32(ox0 * p.s.stride_w) - i32(p.s.pad_left);
    let sw = i32(p.s.stride_w);

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    for (var ci = p.lo0; ci < p.hi0; ci++) {
        let x_plane = (n * p.s.c + grp * p.s.cpg + ci) * p.s.h;
        for (var a = p.lo1; a < p.hi1; a++) {
            let sy = pad_source(i32(oy * p.s.stride_h + a * p.s.dil_h) - i32(p.s.pad_top), i32(p.s.h), p.s.pad_mode);
            if sy < 0 {
                continue;
            }
            let row_base = (x_plane + u32(sy)) * p.s.w;
            let ta = select(a, p.s.kh - 1u - a, p.s.flip != 0u);
            let w_row = (ci * p.s.kh + ta) * p.s.kw;
            for (var b = p.lo2; b < p.hi2; b++) {
                let col = col0 + i32(b * p.s.dil_w);
                let xv = vec4<f32>(
                    load_x(row_base, col, live.x),
                    load_x(row_base, col + sw, live.y),
                    load_x(row_base, col + 2 * sw, live.z),
                    load_x(row_base, col + 3 * sw, live.w),
                );
                let k = w_row + select(b, p.s.kw - 1u - b, p.s.flip != 0u);
                acc0 = fma(vec4<f32>(weight[w0 + k]), xv, acc0);
                acc1 = fma(vec4<f32>(weight[w1 + k]), xv, acc1);
                acc2 = fma(vec4<f32>(weight[w2 + k]), xv, acc2);
                acc3 = fma(vec4<f32>(weight[w3 + k]), xv, acc3);
                acc4 = fma(vec4<f32>(weight[w4 + k]), xv, acc4);
                acc5 = fma(vec4<f32>(weight[w5 + k]), xv, acc5);
                acc6 = fma(vec4<f32>(weight[w6 + k]), xv, acc6);
                acc7 = fma(vec4<f32>(weight[w7 + k]), xv, acc7);
            }
        }
    }
    let plane = p.s.oh * p.s.ow;
    let accs = array<vec4<f32>, 8>(acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7);
    for (var j = 0u; j < 8u; j++) {
        let o = o0 + j;
        if o > o_last {
            break;
        }
        var v = accs[j];
        if p.has_bias != 0u {
            v += vec4<f32>(bias[o]);
        }
        let base = (n * p.s.oc + o) * plane + oy * p.s.ow + ox0;
        for (var i = 0u; i < 4u; i++) {
            if ox0 + i < p.s.ow {
                var e = v[i];
                if p.accumulate != 0u {
                    e += y[base + i];
                }
                y[base + i] = e;
            }
        }
    }
}
