// Weight gradient as a GEMM over the padded input copies (see conv2d_gemm_common.wgsl):
// dW[o][k] = sum over output pixels p of dy[o][p] * x_k[p]. Each invocation sums, over one
// slice of output rows, a block of 4 output channels x 8 taps: per 4 neighbouring pixels it
// loads 4 vec4s of dy and one vec4 of input per tap (8), and does 128 multiply-adds. Each sum
// runs over its pixels in order and lands in `partials[element * slices + slice]`;
// reduce_partials adds the slices in order, so results are deterministic. Output rows of dy
// are padded to whole vec4s (`ow4`), and the input of the padded pixels is masked to zero.
// Dispatched as a 3-D grid (x: blocks of 8 taps, y: groups x blocks of 4 output channels,
// z: slices).

@group(0) @binding(0) var<uniform> g: Gemm;
@group(0) @binding(1) var<storage, read> copies: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

// Offset (in vec4s, relative to a pixel's base) of tap `k` of group `grp` in the copies.
fn tap_offset(grp: u32, k: u32) -> u32 {
    let window = g.s.kh * g.s.kw;
    let ci = k / window;
    let a = (k % window) / g.s.kw;
    let shift = (k % g.s.kw) * g.s.dil_w;
    let q = shift / g.s.stride_w;
    let t = q % 4u;
    let slot = copy_slot((shift % g.s.stride_w) * 4u + t);
    return (slot * g.copy_len + ((grp * g.s.cpg + ci) * g.hp + a * g.s.dil_h) * g.wq + q - t) / 4u;
}

// a + c_i * x[i] for the pixels i = 0..3 in order (c_i: the 4 channels' dy at pixel i).
fn add_outer(x: vec4<f32>, c0: vec4<f32>, c1: vec4<f32>, c2: vec4<f32>, c3: vec4<f32>, a: vec4<f32>) -> vec4<f32> {
    var r = fma(c0, vec4<f32>(x.x), a);
    r = fma(c1, vec4<f32>(x.y), r);
    r = fma(c2, vec4<f32>(x.z), r);
    return fma(c3, vec4<f32>(x.w), r);
}

struct Block {
    // the input offsets of the 8 taps and the dy offsets of the 4 channels
    x0: u32, x1: u32, x2: u32, x3: u32, x4: u32, x5: u32, x6: u32, x7: u32,
    d0: u32, d1: u32, d2: u32, d3: u32,
}

// acc[k] += (dy of the 4 channels) * x_k, pixel by pixel, for 4 pixels at `xb` / `db`;
// `live` masks pixels past the row's end.
fn step(b: Block, xb: u32, db: u32, live: vec4<bool>, acc: ptr<function, array<vec4<f32>, 8>>) {
    let d0 = dy[db + b.d0];
    let d1 = dy[db + b.d1];
    let d2 = dy[db + b.d2];
    let d3 = dy[db + b.d3];
    // column i: the 4 channels at pixel i
    let c0 = vec4<f32>(d0.x, d1.x, d2.x, d3.x);
    let c1 = vec4<f32>(d0.y, d1.y, d2.y, d3.y);
    let c2 = vec4<f32>(d0.z, d1.z, d2.z, d3.z);
    let c3 = vec4<f32>(d0.w, d1.w, d2.w, d3.w);
    let zero = vec4<f32>(0.0);
    let xs = array<vec4<f32>, 8>(
        select(zero, copies[xb + b.x0], live),
        select(zero, copies[xb + b.x1], live),
        select(zero, copies[xb + b.x2], live),
        select(zero, copies[xb + b.x3], live),
        select(zero, copies[xb + b.x4], live),
        select(zero, copies[xb + b.x5], live),
        select(zero, copies[xb + b.x6], live),
        select(zero, copies[xb + b.x7], live),
    );
    (*acc)[0] = add_outer(xs[0], c0, c1, c2, c3, (*acc)[0]);
    (*acc)[1] = add_outer(xs[1], c0, c1, c2, c3, (*acc)[1]);
    (*acc)[2] = add_outer(xs[2], c0, c1, c2, c3, (*acc)[2]);
    (*acc)[3] = add_outer(xs[3], c0, c1, c2, c3, (*acc)[3]);
    (*acc)[4] = add_outer(xs[4], c0, c1, c2, c3, (*acc)[4]);
    (*acc)[5] = add_outer(xs[5], c0, c1, c2, c3, (*acc)[5]);
    (*acc)[6] = add_outer(xs[6], c0, c1, c2, c3, (*acc)[6]);
    (*acc)[7] = add_outer(xs[7], c0, c1, c2, c3, (*acc)[7]);
}

// Stores the sums of tap k0 + k for the block's 4 channels (those that exist).
fn put(grp: u32, k0: u32, o0: u32, slice: u32, k: u32, a: vec4<f32>) {
    let tap = k0 + k;
    if tap >= g.taps {
        return;
    }
    var kk = tap;
    if g.s.flip != 0u {
        let window = g.s.kh * g.s.kw;
        kk = (tap / window) * window + (window - 1u - tap % window);
    }
    let o_last = (grp + 1u) * g.s.ocpg - 1u;
    for (var i = 0u; i < 4u; i++) {
        let o = o0 + i;
        if o <= o_last {
            partials[(o * g.taps + kk) * g.slices + slice] = a[i];
        }
    }
}

@compute @workgroup_size(8, 8, 1)
fn conv2d_weight_grad_gemm(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k0 = gid.x * 8u;
    let obpg = (g.s.ocpg + 3u) / 4u;
    if k0 >= g.taps || gid.y >= g.s.groups * obpg {
        return;
    }
    let grp = gid.y / obpg;
    let o0 = grp * g.s.ocpg + (gid.y % obpg) * 4u;
    let o_last = (grp + 1u) * g.s.ocpg - 1u;
    let slice = g.base + gid.z;
    let k_last = g.taps - 1u;
    let plane4 = g.s.oh * (g.ow4 / 4u);
    let b = Block(
        tap_offset(grp, k0), tap_offset(grp, min(k0 + 1u, k_last)),
        tap_offset(grp, min(k0 + 2u, k_last)), tap_offset(grp, min(k0 + 3u, k_last)),
        tap_offset(grp, min(k0 + 4u, k_last)), tap_offset(grp, min(k0 + 5u, k_last)),
        tap_offset(grp, min(k0 + 6u, k_last)), tap_offset(grp, min(k0 + 7u, k_last)),
        o0 * plane4, min(o0 + 1u, o_last) * plane4,
        min(o0 + 2u, o_last) * plane4, min(o0 + 3u, o_last) * plane4,
    );
    var acc: array<vec4<f32>, 8>;
    let full = g.s.ow / 4u;
    let rem = g.s.ow % 4u;
    let tail = vec4<bool>(rem > 0u, rem > 1u, rem > 2u, false);
    let all = vec4<bool>(true);
    let wq4 = g.wq / 4u;
    let row4 = g.ow4 / 4u;
    let r1 = min((slice + 1u) * g.slice_rows, g.s.n * g.s.oh);
    for (var r = slice * g.slice_rows; r < r1; r++) {
        let n = r / g.s.oh;
        let oy = r % g.s.oh;
        let xb = (n * g.s.c * g.hp + oy * g.s.stride_h) * wq4;
        let db = (n * g.s.oc * g.s.oh + oy) * row4;
        for (var j = 0u; j < full; j++) {
            step(b, xb + j, db + j, all, &acc);
        }
        if rem != 0u {
            step(b, xb + full, db + full, tail, &acc);
        }
    }
    put(grp, k0, o0, slice, 0u, acc[0]);
    put(grp, k0, o0, slice, 1u, acc[1]);
    put(grp, k0, o0, slice, 2u, acc[2]);
    put(grp, k0, o0, slice, 3u, acc[3]);
    put(grp, k0, o0, slice, 4u, acc[4]);
    put(grp, k0, o0, slice, 5u, acc[5]);
    put(grp, k0, o0, slice, 6u, acc[6]);
    put(grp, k0, o0, slice, 7u, acc[7]);
}
