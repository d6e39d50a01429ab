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

    // rows of one input channel in the buffer (fewer than `h` with zero insertion)
    let rows = (p.s.h - 1u) / p.up_h + 1u;
    // This invocation loads tap `tid % 16` of each slice: for output channels `tid / 16 + 16 i`
    // of the W tile and for pixels `tid / 16 + 16 i` of the X tile. The pixels' input planes,
    // rows and columns are decoded once; the tap once per slice.
    let lk = tid % TILE_K;
    let lr = tid / TILE_K;
    var px_plane: array<u32, 4>;
    var px_iy: array<i32, 4>;
    var px_ix: array<i32, 4>;
    var px_live: array<bool, 4>;
    for (var i = 0u; i < 4u; i++) {
        let q = pix0 + lr + 16u * i;
        let ox = q % p.s.ow;
        let oy = (q / p.s.ow) % p.s.oh;
        let nb = q / (p.s.ow * p.s.oh);
        px_live[i] = q < pixels;
        px_plane[i] = (nb * p.s.c + grp * p.s.cpg) * rows;
        px_iy[i] = i32(oy * p.s.stride_h) - i32(p.s.pad_top);
        px_ix[i] = i32(ox * p.s.stride_w) - i32(p.s.pad_left);
    }

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var kt = p.lo0; kt < p.hi0; kt++) {
        // this invocation's tap: its input channel and kernel row and column
        let k = kt * TILE_K + lk;
        let k_live = k < taps;
        let c = k / (p.s.kh * p.s.kw);
        let r = k % (p.s.kh * p.s.kw);
        let a = r / p.s.kw;
        let b = r - a * p.s.kw;
        let dy = i32(a * p.s.dil_h);
        let dx = i32(b * p.s.dil_w);
        // the W tile: 64 channels x 16 taps, 4 per invocation
        var ta = a;
        var tb = b;
        if p.s.flip != 0u {
            ta = p.s.kh - 1u - a;
            tb = p.s.kw - 1u - b;
        }
        let tap = ta * p.s.kw + tb;
        for (var i = 0u; i < 4u; i++) {
            let m = lr + 16u * i;
            let o = o0 + m;
            var wv = 0.0;
            if k_live && o < o_end {
                if p.transposed != 0u {
                    // the layer's weight [groups * cpg, ocpg, KH, KW] read across
                    let om = o - grp * p.s.ocpg;
                    wv = weight[((grp * p.s.cpg + c) * p.s.ocpg + om) * p.s.kh * p.s.kw + tap];
                } else {
                    wv = weight[(o * p.s.cpg + c) * p.s.kh * p.s.kw + tap];
                }
            }
            w_tile[lk][m / 4u][m % 4u] = wv;
        }
        // the X tile: 16 taps x 64 pixels, 4 per invocation
        for (var i = 0u; i < 4u; i++) {
            let n = lr + 16u * i;
            var v = 0.0;
            if k_live && px_live[i] {
                v = load_x(px_plane[i] + c * rows, px_iy[i] + dy, px_ix[i] + dx);
            }
            x_tile[lk][n / 4u][n % 4u] = v;
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
