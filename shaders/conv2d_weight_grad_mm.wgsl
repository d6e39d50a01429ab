// Weight gradient as a split-K GEMM with its tiles in workgroup memory (the GPU family). Per
// group: dW (OC/groups x K) = dY (OC/groups x P) * X^T (P x K), P = N * OH * OW output pixels
// and K = C/groups * KH * KW taps, X gathered from the input on the fly (every padding mode,
// stride and dilation). The P axis is cut into `slices` slices of `slice_len` pixels (fixed by
// the shape and the device profile); a workgroup of 16 x 16 invocations sums one slice for a
// tile of 64 output channels x 64 taps, each invocation 4 x 4, walking its slice 16 pixels at a
// time through workgroup memory (8 KiB), and writes `partials[element * slices + slice]`;
// reduce_partials adds each element's partials in slice order, so the result is deterministic.
// Grid: x tap tiles, y groups x channel blocks, z slices (from `base`).
// (conv2d_common.wgsl, with `Params` and `pad_source`, is prepended to this file.)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> grad_output: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

// Output channels and taps of a workgroup's tile, pixels per step (keep in sync with
// src/kernels/conv2d_weight_grad_mm.rs).
const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_P: u32 = 16u;

// [pixel][channel / 4] and [pixel][tap / 4]
var<workgroup> dy_tile: array<array<vec4<f32>, 16>, 16>;
var<workgroup> x_tile: array<array<vec4<f32>, 16>, 16>;

@compute @workgroup_size(16, 16, 1)
fn conv2d_weight_grad_mm(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let tid = lid.y * 16u + lid.x;
    let m_blocks = (p.s.ocpg + TILE_M - 1u) / TILE_M;
    let grp = wid.y / m_blocks;
    let o0 = grp * p.s.ocpg + (wid.y % m_blocks) * TILE_M;
    let o_end = (grp + 1u) * p.s.ocpg;
    let k0 = wid.x * TILE_N;
    let taps = p.s.cpg * p.s.kh * p.s.kw;
    let slice = p.base + wid.z;
    let pixels = p.s.n * p.s.oh * p.s.ow;
    let plane = p.s.oh * p.s.ow;
    let q_begin = slice * p.slice_len;
    let q_end = min(q_begin + p.slice_len, pixels);

    // This invocation loads pixel `tid % 16` of each step, for channels and taps
    // `tid / 16 + 16 i`: the taps' channel and offsets are the same in every step.
    let lq = tid % TILE_P;
    let lr = tid / TILE_P;
    var tap_c: array<u32, 4>;
    var tap_dy: array<i32, 4>;
    var tap_dx: array<i32, 4>;
    var tap_live: array<bool, 4>;
    for (var i = 0u; i < 4u; i++) {
        let k = k0 + lr + 16u * i;
        let r = k % (p.s.kh * p.s.kw);
        tap_c[i] = k / (p.s.kh * p.s.kw);
        tap_dy[i] = i32((r / p.s.kw) * p.s.dil_h) - i32(p.s.pad_top);
        tap_dx[i] = i32((r % p.s.kw) * p.s.dil_w) - i32(p.s.pad_left);
        tap_live[i] = k < taps;
    }

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var q0 = q_begin; q0 < q_end; q0 += TILE_P) {
        let q = q0 + lq;
        let live = q < q_end;
        let nb = q / plane;
        let r = q % plane;
        let oy = r / p.s.ow;
        let ox = r % p.s.ow;
        for (var i = 0u; i < 4u; i++) {
            // dY: channel lr + 16 i of the tile at pixel q
            let m = lr + 16u * i;
            var d = 0.0;
            if live && o0 + m < o_end {
                d = grad_output[(nb * p.s.oc + o0 + m) * plane + r];
            }
            dy_tile[lq][m / 4u][m % 4u] = d;
            // X: tap lr + 16 i of the tile at pixel q
            var v = 0.0;
            if live && tap_live[i] {
                let sy = pad_source(i32(oy * p.s.stride_h) + tap_dy[i], i32(p.s.h), p.s.pad_mode);
                let sx = pad_source(i32(ox * p.s.stride_w) + tap_dx[i], i32(p.s.w), p.s.pad_mode);
                if sy >= 0 && sx >= 0 {
                    let ch = nb * p.s.c + grp * p.s.cpg + tap_c[i];
                    v = x[(ch * p.s.h + u32(sy)) * p.s.w + u32(sx)];
                }
            }
            x_tile[lq][m / 4u][m % 4u] = v;
        }
        workgroupBarrier();
        for (var j = 0u; j < TILE_P; j++) {
            let dv = dy_tile[j][lid.y];
            let xv = x_tile[j][lid.x];
            acc0 = fma(vec4<f32>(dv.x), xv, acc0);
            acc1 = fma(vec4<f32>(dv.y), xv, acc1);
            acc2 = fma(vec4<f32>(dv.z), xv, acc2);
            acc3 = fma(vec4<f32>(dv.w), xv, acc3);
        }
        workgroupBarrier();
    }

    // store 4 channels x 4 taps, each at its element of the weight (taps flipped back for strict
    // convolution)
    var accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let o = o0 + lid.y * 4u + i;
        if o >= o_end {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            let k = k0 + lid.x * 4u + j;
            if k >= taps {
                break;
            }
            let kk = p.s.kh * p.s.kw;
            let c = k / kk;
            var a = (k % kk) / p.s.kw;
            var b = k % p.s.kw;
            if p.s.flip != 0u {
                a = p.s.kh - 1u - a;
                b = p.s.kw - 1u - b;
            }
            let element = ((o * p.s.cpg + c) * p.s.kh + a) * p.s.kw + b;
            partials[element * p.slices + slice] = accs[i][j];
        }
    }
}
