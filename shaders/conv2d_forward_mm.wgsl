// Forward 2-D convolution as one implicit GEMM with its tiles in workgroup memory (the GPU
// family). Per group: Y (OC/groups x P) = W (OC/groups x K) * X (K x P), where P = N * OH * OW
// output pixels and K = C/groups * KH * KW taps; the columns of X are gathered from the input on
// the fly (every padding mode, stride and dilation; no padded copies). A workgroup of 16 x 16
// invocations computes a tile of 64 output channels x 64 pixels, each invocation 4 x 4, and walks
// K in slices of 16 taps staged in workgroup memory (8 KiB). Grid: x tiles of pixels (from
// `base`), y groups x channel blocks. The host cuts K into pieces (tap slices lo0..hi0) where the
// loop budget needs it, each piece adding to the last; the bias goes with the first.
// (conv2d_common.wgsl, with `Params` and `pad_source`, is prepended to this file.)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// Output channels and pixels of a workgroup's tile, taps per slice (keep in sync with
// src/kernels/conv2d_forward_mm.rs).
const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;

// [tap][channel / 4] and [tap][pixel / 4]: an invocation reads its 4 channels and its 4 pixels
// of a tap as one vec4 each.
var<workgroup> w_tile: array<array<vec4<f32>, 16>, 16>;
var<workgroup> x_tile: array<array<vec4<f32>, 16>, 16>;

// The input value at padded row `iy`, column `ix` of channel row base `plane` (its first row),
// 0 in the padding. With zero insertion (`up_h`, `up_w` > 1; zero padding only) only every
// up-th row and column holds a value of the buffer.
fn load_x(plane: u32, iy: i32, ix: i32) -> f32 {
    if p.up_h == 1u && p.up_w == 1u {
        let sy = pad_source(iy, i32(p.s.h), p.s.pad_mode);
        let sx = pad_source(ix, i32(p.s.w), p.s.pad_mode);
        if sy < 0 || sx < 0 {
            return 0.0;
        }
        return x[(plane + u32(sy)) * p.s.w + u32(sx)];
    }
    if iy < 0 || ix < 0 || iy >= i32(p.s.h) || ix >= i32(p.s.w) {
        return 0.0;
    }
    if u32(iy) % p.up_h != 0u || u32(ix) % p.up_w != 0u {
        return 0.0;
    }
    let cols = (p.s.w - 1u) / p.up_w + 1u;
    return x[(plane + u32(iy) / p.up_h) * cols + u32(ix) / p.up_w];
}

// The weight of output channel `o` (global) at tap `k` of its group, 0 past the ends.
fn load_weight(o: u32, o_end: u32, k: u32) -> f32 {
    let taps = p.s.cpg * p.s.kh * p.s.kw;
    if o >= o_end || k >= taps {
        return 0.0;
    }
    let kk = p.s.kh * p.s.kw;
    let c = k / kk;
    let r = k % kk;
    var a = r / p.s.kw;
    var b = r % p.s.kw;
    if p.s.flip != 0u {
        a = p.s.kh - 1u - a;
        b = p.s.kw - 1u - b;
    }
    if p.transposed != 0u {
        // the layer's weight [groups * cpg, ocpg, KH, KW] read across
        let grp = o / p.s.ocpg;
        let m = o % p.s.ocpg;
        return weight[(((grp * p.s.cpg + c) * p.s.ocpg + m) * p.s.kh + a) * p.s.kw + b];
    }
    return weight[((o * p.s.cpg + c) * p.s.kh + a) * p.s.kw + b];
}

@compute @workgroup_size(16, 16, 1)
fn conv2d_forward_mm(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let tid = lid.y * 16u + lid.x;
    let m_blocks = (p.s.ocpg + TILE_M - 1u) / TILE_M;
    let grp = wid.y / m_blocks;
    let o0 = grp * p.s.ocpg + (wid.y % m_blocks) * TILE_M;
    let o_end = (grp + 1u) * p.s.ocpg;
    let pix0 = (p.base + wid.x) * TILE_N;
    let pixels = p.s.n * p.s.oh * p.s.ow;
    let taps = p.s.cpg * p.s.kh * p.s.kw;

    // This invocation loads pixel `pix0 + tid % 64` of the X tile (the same in every slice):
    // its batch item, output row and column, decomposed once.
    let ln = tid % TILE_N;
    let q = pix0 + ln;
    let q_live = q < pixels;
    let ox = q % p.s.ow;
    let oy = (q / p.s.ow) % p.s.oh;
    let nb = q / (p.s.ow * p.s.oh);
    // rows of one input channel in the buffer (fewer than `h` with zero insertion)
    let rows = (p.s.h - 1u) / p.up_h + 1u;
    let x_group = (nb * p.s.c + grp * p.s.cpg) * rows;
    let iy0 = i32(oy * p.s.stride_h) - i32(p.s.pad_top);
    let ix0 = i32(ox * p.s.stride_w) - i32(p.s.pad_left);
    // ... and weight row `tid / 16 + 16 i`, tap `tid % 16` of the W tile
    let wk = tid % TILE_K;
    let wm = tid / TILE_K;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var kt = p.lo0; kt < p.hi0; kt++) {
        let k0 = kt * TILE_K;
        // the W tile: 64 channels x 16 taps, 4 per invocation
        for (var i = 0u; i < 4u; i++) {
            let m = wm + 16u * i;
            w_tile[wk][m / 4u][m % 4u] = load_weight(o0 + m, o_end, k0 + wk);
        }
        // the X tile: 16 taps x 64 pixels, 4 per invocation
        for (var i = 0u; i < 4u; i++) {
            let k = tid / TILE_N + 4u * i;
            let kg = k0 + k;
            var v = 0.0;
            if q_live && kg < taps {
                let c = kg / (p.s.kh * p.s.kw);
                let r = kg % (p.s.kh * p.s.kw);
                let iy = iy0 + i32((r / p.s.kw) * p.s.dil_h);
                let ix = ix0 + i32((r % p.s.kw) * p.s.dil_w);
                v = load_x(x_group + c * rows, iy, ix);
            }
            x_tile[k][ln / 4u][ln % 4u] = v;
        }
        workgroupBarrier();
        for (var k = 0u; k < TILE_K; k++) {
            let wv = w_tile[k][lid.y];
            let xv = x_tile[k][lid.x];
            acc0 = fma(vec4<f32>(wv.x), xv, acc0);
            acc1 = fma(vec4<f32>(wv.y), xv, acc1);
            acc2 = fma(vec4<f32>(wv.z), xv, acc2);
            acc3 = fma(vec4<f32>(wv.w), xv, acc3);
        }
        workgroupBarrier();
    }

    // store 4 channels x 4 pixels
    let plane = p.s.oh * p.s.ow;
    var accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let o = o0 + lid.y * 4u + i;
        if o >= o_end {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            let qj = pix0 + lid.x * 4u + j;
            if qj >= pixels {
                break;
            }
            let at = ((qj / plane) * p.s.oc + o) * plane + qj % plane;
            var e = accs[i][j];
            if p.has_bias != 0u {
                e += bias[o];
            }
            if p.accumulate != 0u {
                e += y[at];
            }
            y[at] = e;
        }
    }
}
