// Input gradient of sum(y * gy), blocked over input channels: each invocation computes one
// input pixel for 4 input channels of one group, so each gy value it loads feeds 4
// multiply-adds and the tap bookkeeping is shared. As conv2d_input_grad, the gradient of every
// padded position that reads the pixel (its border copies too) is gathered. Dispatched as a 3-D
// grid (x: input columns, y: input rows, z: batch x channel blocks). The host cuts long scans
// into pieces (candidate rows lo0..hi0 and columns lo1..hi1 of the 1 + pad_top + pad_bottom and
// 1 + pad_left + pad_right, or 1 each for zero padding; kernel rows lo2..hi2, columns lo3..hi3;
// output channels lo4..hi4), each added to the last.
// (conv2d_common.wgsl, with `Params` and `pad_source`, is prepended to this file.)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> grad_output: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad_input: array<f32>;

@compute @workgroup_size(8, 8, 1)
fn conv2d_input_grad_tiled(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ix = gid.x;
    let iy = gid.y;
    if ix >= p.s.w || iy >= p.s.h {
        return;
    }
    let cb_per_group = (p.s.cpg + 3u) / 4u;
    let z = p.base + gid.z;
    let cb = z % (cb_per_group * p.s.groups);
    let n = z / (cb_per_group * p.s.groups);
    let grp = cb / cb_per_group;
    let ci0 = (cb % cb_per_group) * 4u;
    let ci_last = p.s.cpg - 1u;
    let taps = p.s.kh * p.s.kw;
    let k0 = min(ci0, ci_last) * taps;
    let k1 = min(ci0 + 1u, ci_last) * taps;
    let k2 = min(ci0 + 2u, ci_last) * taps;
    let k3 = min(ci0 + 3u, ci_last) * taps;
    var acc = vec4<f32>(0.0);
    for (var kr = p.lo0; kr < p.hi0; kr++) {
        let ry = candidate(kr, iy, p.s.h, p.s.pad_top);
        if pad_source(ry, i32(p.s.h), p.s.pad_mode) != i32(iy) {
            continue;
        }
        let py = u32(ry + i32(p.s.pad_top));
        for (var kc = p.lo1; kc < p.hi1; kc++) {
            let rx = candidate(kc, ix, p.s.w, p.s.pad_left);
            if pad_source(rx, i32(p.s.w), p.s.pad_mode) != i32(ix) {
                continue;
            }
            let px = u32(rx + i32(p.s.pad_left));
            for (var a = p.lo2; a < p.hi2; a++) {
                let off_y = a * p.s.dil_h;
                if off_y > py {
                    break;
                }
                let ty = py - off_y;
                var oy = ty;
                if p.s.stride_h != 1u {
                    oy = ty / p.s.stride_h;
                    if oy * p.s.stride_h != ty {
                        continue;
                    }
                }
                if oy >= p.s.oh {
                    continue;
                }
                let ta = select(a, p.s.kh - 1u - a, p.s.flip != 0u);
                for (var b = p.lo3; b < p.hi3; b++) {
                    let off_x = b * p.s.dil_w;
                    if off_x > px {
                        break;
                    }
                    let tx = px - off_x;
                    var ox = tx;
                    if p.s.stride_w != 1u {
                        ox = tx / p.s.stride_w;
                        if ox * p.s.stride_w != tx {
                            continue;
                        }
                    }
                    if ox >= p.s.ow {
                        continue;
                    }
                    let t = ta * p.s.kw + select(b, p.s.kw - 1u - b, p.s.flip != 0u);
                    for (var j = p.lo4; j < p.hi4; j++) {
                        let o = grp * p.s.ocpg + j;
                        let g = grad_output[((n * p.s.oc + o) * p.s.oh + oy) * p.s.ow + ox];
                        let wo = o * p.s.cpg * taps + t;
                        acc = fma(vec4<f32>(g), vec4<f32>(weight[wo + k0], weight[wo + k1], weight[wo + k2], weight[wo + k3]), acc);
                    }
                }
            }
        }
    }
    let plane = p.s.h * p.s.w;
    for (var j = 0u; j < 4u; j++) {
        let ci = ci0 + j;
        if ci > ci_last {
            break;
        }
        let at = ((n * p.s.c + grp * p.s.cpg + ci) * p.s.h + iy) * p.s.w + ix;
        var v = acc[j];
        if p.accumulate != 0u {
            v += grad_input[at];
        }
        grad_input[at] = v;
    }
}
