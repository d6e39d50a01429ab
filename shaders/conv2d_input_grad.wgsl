// Input gradient of sum(y * gy) (the transposed convolution), one invocation per input element.
// It gathers the gradient of every padded position that reads this pixel: the pixel itself and,
// for reflect / replicate / circular padding, each border copy of it, so the border's gradient
// flows back into the pixels it was copied from. The host cuts long scans into pieces (candidate
// rows lo0..hi0 and columns lo1..hi1, output channels lo2..hi2, kernel rows lo3..hi3, columns
// lo4..hi4), each added to the last.
// (conv2d_common.wgsl, with `Params` and `pad_source`, is prepended to this file.)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> grad_output: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad_input: array<f32>;

const WORKGROUP_SIZE: u32 = 64u;

// The gradient of one padded position (py, px), in padded coordinates, for input channel ci of
// group grp: the sum over output channels and taps that read it.
fn padded_grad(n: u32, grp: u32, ci: u32, py: u32, px: u32) -> f32 {
    var acc = 0.0;
    for (var j = p.lo2; j < p.hi2; j++) {
        let o = grp * p.s.ocpg + j;
        let w_plane = (o * p.s.cpg + ci) * p.s.kh;
        let g_plane = (n * p.s.oc + o) * p.s.oh;
        for (var a = p.lo3; a < p.hi3; a++) {
            let off_y = a * p.s.dil_h;
            if off_y > py {
                break;
            }
            let ty = py - off_y;
            if ty % p.s.stride_h != 0u {
                continue;
            }
            let oy = ty / p.s.stride_h;
            if oy >= p.s.oh {
                continue;
            }
            let ta = select(a, p.s.kh - 1u - a, p.s.flip != 0u);
            for (var b = p.lo4; b < p.hi4; b++) {
                let off_x = b * p.s.dil_w;
                if off_x > px {
                    break;
                }
                let tx = px - off_x;
                if tx % p.s.stride_w != 0u {
                    continue;
                }
                let ox = tx / p.s.stride_w;
                if ox >= p.s.ow {
                    continue;
                }
                let tb = select(b, p.s.kw - 1u - b, p.s.flip != 0u);
                acc = fma(grad_output[(g_plane + oy) * p.s.ow + ox], weight[(w_plane + ta) * p.s.kw + tb], acc);
            }
        }
    }
    return acc;
}

@compute @workgroup_size(64)
fn conv2d_input_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let idx = p.base + (wid.y * nwg.x + wid.x) * WORKGROUP_SIZE + lid;
    if idx >= p.total {
        return;
    }
    let ix = idx % p.s.w;
    var t = idx / p.s.w;
    let iy = t % p.s.h;
    t = t / p.s.h;
    let c = t % p.s.c;
    let n = t / p.s.c;
    let grp = c / p.s.cpg;
    let ci = c % p.s.cpg;
    // Zero padding: only the pixel itself; other modes: also every border copy of it.
    // (the host sets lo0..hi0 and lo1..hi1 to within 1 + pad_top + pad_bottom and
    // 1 + pad_left + pad_right candidates, or 1 each for zero padding)
    var acc = 0.0;
    for (var kr = p.lo0; kr < p.hi0; kr++) {
        let ry = candidate(kr, iy, p.s.h, p.s.pad_top);
        if pad_source(ry, i32(p.s.h), p.s.pad_mode) != i32(iy) {
            continue;
        }
        for (var kc = p.lo1; kc < p.hi1; kc++) {
            let rx = candidate(kc, ix, p.s.w, p.s.pad_left);
            if pad_source(rx, i32(p.s.w), p.s.pad_mode) != i32(ix) {
                continue;
            }
            acc += padded_grad(n, grp, ci, u32(ry + i32(p.s.pad_top)), u32(rx + i32(p.s.pad_left)));
        }
    }
    if p.accumulate != 0u {
        acc += grad_input[idx];
    }
    grad_input[idx] = acc;
}
