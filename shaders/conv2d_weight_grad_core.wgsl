// The weight gradient on the GEMM core (the GPU family): per group, dW (OC/groups x K) =
// dY (OC/groups x P) * X^T (P x K), P = N * OH * OW output pixels and K = C/groups * KH * KW
// taps, X gathered from the input on the fly. A workgroup of 64 invocations computes a tile of
// 64 channels x 64 taps (8 x 8 each) over its slice of P, 16 pixels a step through the core's
// double-buffered tiles (one barrier a step). Loads: lane t reads pixel t % 16 of the step for
// channels and taps t / 16 + 4 j (16 lanes along a row of dY or X: consecutive addresses at
// stride 1); the tiles are swizzled (SWIZZLE 7) so these stores are at most 2-way conflicted.
//
// Grid: x tiles of taps, y groups x channel blocks, z slices of P (SLICE_STEPS steps each, the
// last shorter); slice z writes its sums at partials[z * elements + element], and
// reduce_partials adds the slices in order: the result depends on the shape alone. The host cuts
// a slice's steps into pieces (lo0..hi0) where the loop budget needs it, each adding to the last.
// (conv2d_common.wgsl, with `Params` and `pad_source`, conv2d_layer_common.wgsl, with the layer's
// shape, and conv2d_core_common.wgsl, with the tiles and the FMAs, are prepended to this file.)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> grad_output: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

// (the layer's shape: the override constants of conv2d_layer_common.wgsl)
override FLIP: u32;
// Steps of 16 pixels per slice.
override SLICE_STEPS: u32;

// The loaders' lanes run along the tiles' rows (pixels): swizzled.
const SWIZZLE: u32 = 7u;

// One output pixel as the loaders see it: its output-gradient offset (image and position; the
// channel is added per load), its input offset (image and group), its first padded input row and
// column, and whether it is in the slice.
struct Pixel {
    gy: u32,
    xb: u32,
    iy: i32,
    ix: i32,
    live: bool,
}

fn pixel(q: u32, q_end: u32, grp: u32) -> Pixel {
    let plane = OH * OW;
    let qc = min(q, N * plane - 1u);
    let img = qc / plane;
    let r = qc - img * plane;
    let oy = r / OW;
    let ox = r - oy * OW;
    return Pixel(
        img * OC * plane + r,
        (img * C + grp * CPG) * H * W,
        i32(oy * SH) - i32(PT),
        i32(ox * SW) - i32(PL),
        q < q_end,
    );
}

// dY at channel `m` of the group (0 past OCPG or past the slice).
fn dy(px: Pixel, grp: u32, m: u32) -> f32 {
    let live = px.live & (m < OCPG);
    let at = px.gy + (grp * OCPG + m) * OH * OW;
    return select(0.0, grad_output[select(0u, at, live)], live);
}

// This lane's 16 taps (its tap plus 4 j): the offset of the tap's input channel, and its kernel
// row and column offsets packed as dy | dx << 16, with dy = DEAD past K (so that the row fails
// the bounds test). Loop-invariant: decoded once, before the steps.
struct Taps {
    chan: array<u32, 16>,
    d: array<u32, 16>,
}

const DEAD: u32 = 0x7fffu;

fn taps_of(n: u32) -> Taps {
    var t: Taps;
    for (var j = 0u; j < 16u; j++) {
        let k = n + 4u * j;
        let c = k / (KH * KW);
        let r = k - c * (KH * KW);
        let a = r / KW;
        let b = r - a * KW;
        t.chan[j] = c * H * W;
        t.d[j] = select(DEAD, a * DH, k < CPG * KH * KW) | ((b * DW) << 16u);
    }
    return t;
}

// X at tap j of the lane (0 past K, past the slice and in zero padding).
fn xv(px: Pixel, taps: ptr<function, Taps>, j: u32) -> f32 {
    let d = (*taps).d[j];
    let dy = d & 0xffffu;
    let dx = d >> 16u;
    let iy = px.iy + i32(dy);
    let ix = px.ix + i32(dx);
    var live = px.live;
    var sy = iy;
    var sx = ix;
    if PAD_MODE == 0u {
        // one unsigned compare per axis: a negative coordinate (or DEAD) is past the end
        live = live & (u32(iy) < H) & (u32(ix) < W);
    } else {
        live = live & (dy != DEAD);
        sy = pad_source(iy, i32(H), PAD_MODE);
        sx = pad_source(ix, i32(W), PAD_MODE);
    }
    let at = px.xb + (*taps).chan[j] + u32(sy) * W + u32(sx);
    return select(0.0, x[select(0u, at, live)], live);
}

// One step's loads of lane t: dY at channels m0 + t / 16 + 4 j and X at taps n0 + t / 16 + 4 j
// (j = 0..15, 4 a vec4), for the pixel `px`.
struct Loads {
    a: array<vec4<f32>, 4>,
    b: array<vec4<f32>, 4>,
}

fn dy4(px: Pixel, grp: u32, m: u32) -> vec4<f32> {
    return vec4<f32>(dy(px, grp, m), dy(px, grp, m + 4u), dy(px, grp, m + 8u), dy(px, grp, m + 12u));
}

fn xv4(px: Pixel, taps: ptr<function, Taps>, j: u32) -> vec4<f32> {
    return vec4<f32>(xv(px, taps, j), xv(px, taps, j + 1u), xv(px, taps, j + 2u), xv(px, taps, j + 3u));
}

fn load_step(px: Pixel, grp: u32, m: u32, taps: ptr<function, Taps>) -> Loads {
    return Loads(
        array<vec4<f32>, 4>(dy4(px, grp, m), dy4(px, grp, m + 16u), dy4(px, grp, m + 32u), dy4(px, grp, m + 48u)),
        array<vec4<f32>, 4>(xv4(px, taps, 0u), xv4(px, taps, 4u), xv4(px, taps, 8u), xv4(px, taps, 12u)),
    );
}

// Stores lane t's loads into buffer `buf`: row t % 16 (its pixel), column element t / 16 + 4 j
// (vec4 j, lane t / 16).
fn store_step(buf: u32, t: u32, l: Loads) {
    let row = t % 16u;
    let lane = t / 16u;
    a_tile[buf][swz(row, 0u)][lane] = l.a[0].x;
    a_tile[buf][swz(row, 1u)][lane] = l.a[0].y;
    a_tile[buf][swz(row, 2u)][lane] = l.a[0].z;
    a_tile[buf][swz(row, 3u)][lane] = l.a[0].w;
    a_tile[buf][swz(row, 4u)][lane] = l.a[1].x;
    a_tile[buf][swz(row, 5u)][lane] = l.a[1].y;
    a_tile[buf][swz(row, 6u)][lane] = l.a[1].z;
    a_tile[buf][swz(row, 7u)][lane] = l.a[1].w;
    a_tile[buf][swz(row, 8u)][lane] = l.a[2].x;
    a_tile[buf][swz(row, 9u)][lane] = l.a[2].y;
    a_tile[buf][swz(row, 10u)][lane] = l.a[2].z;
    a_tile[buf][swz(row, 11u)][lane] = l.a[2].w;
    a_tile[buf][swz(row, 12u)][lane] = l.a[3].x;
    a_tile[buf][swz(row, 13u)][lane] = l.a[3].y;
    a_tile[buf][swz(row, 14u)][lane] = l.a[3].z;
    a_tile[buf][swz(row, 15u)][lane] = l.a[3].w;
    b_tile[buf][swz(row, 0u)][lane] = l.b[0].x;
    b_tile[buf][swz(row, 1u)][lane] = l.b[0].y;
    b_tile[buf][swz(row, 2u)][lane] = l.b[0].z;
    b_tile[buf][swz(row, 3u)][lane] = l.b[0].w;
    b_tile[buf][swz(row, 4u)][lane] = l.b[1].x;
    b_tile[buf][swz(row, 5u)][lane] = l.b[1].y;
    b_tile[buf][swz(row, 6u)][lane] = l.b[1].z;
    b_tile[buf][swz(row, 7u)][lane] = l.b[1].w;
    b_tile[buf][swz(row, 8u)][lane] = l.b[2].x;
    b_tile[buf][swz(row, 9u)][lane] = l.b[2].y;
    b_tile[buf][swz(row, 10u)][lane] = l.b[2].z;
    b_tile[buf][swz(row, 11u)][lane] = l.b[2].w;
    b_tile[buf][swz(row, 12u)][lane] = l.b[3].x;
    b_tile[buf][swz(row, 13u)][lane] = l.b[3].y;
    b_tile[buf][swz(row, 14u)][lane] = l.b[3].z;
    b_tile[buf][swz(row, 15u)][lane] = l.b[3].w;
}

// Where an invocation's sums go: its first channel of the group (of the tile), its group, its
// first tap, and the offset of its slice's partial sums.
struct Out {
    m: u32,
    grp: u32,
    k: u32,
    base: u32,
}

// Stores the sums `v` of channel out.m + dm and taps out.k + dk + 0..3 (taps flipped back for
// strict convolution).
fn store4(out: Out, v: vec4<f32>, dm: u32, dk: u32) {
    let m = out.m + dm;
    if m >= OCPG {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let k = out.k + dk + j;
        if k >= CPG * KH * KW {
            break;
        }
        let c = k / (KH * KW);
        var tap = k - c * (KH * KW);
        if FLIP != 0u {
            tap = KH * KW - 1u - tap;
        }
        let at = out.base + ((out.grp * OCPG + m) * CPG + c) * KH * KW + tap;
        var e = v[j];
        if p.accumulate != 0u {
            e += partials[at];
        }
        partials[at] = e;
    }
}

@compute @workgroup_size(64, 1, 1)
fn conv2d_weight_grad_core(
    @builtin(local_invocation_index) t: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let tx = t % 8u;
    let ty = t / 8u;
    let m_blocks = (OCPG + TILE_M - 1u) / TILE_M;
    let taps = CPG * KH * KW;
    let pixels = N * OH * OW;
    let steps = (pixels + TILE_K - 1u) / TILE_K;
    let grp = wid.y / m_blocks;
    let m0 = (wid.y % m_blocks) * TILE_M;
    let n0 = (p.base + wid.x) * TILE_N;

    // this slice's pixels, and this piece's steps of them
    let first = wid.z * SLICE_STEPS;
    let q_end = min((first + SLICE_STEPS) * TILE_K, pixels);
    let lo = first + p.lo0;
    let hi = min(first + min(p.hi0, SLICE_STEPS), steps);
    // this lane's channel and tap of each load (plus 4 j)
    let m = m0 + t / 16u;
    var lane_taps = taps_of(n0 + t / 16u);
    let qi = t % 16u;

    // rows r of the invocation: channels m0 + ty * 4 + r % 4 + 32 * (r / 4); halves h: taps
    // n0 + tx * 4 + 32 * h + 0..3; accumulator r * 2 + h
    var acc: array<vec4<f32>, 16>;
    // the halves of the tile with a live channel or tap (uniform over the workgroup): the last
    // tile of the stem's 147 taps runs 32 of its 64 columns
    let wide_a = m0 + TILE_M / 2u < OCPG;
    let wide_b = n0 + TILE_N / 2u < taps;

    if lo < hi {
        store_step(0u, t, load_step(pixel(lo * TILE_K + qi, q_end, grp), grp, m, &lane_taps));
    }
    workgroupBarrier();

    for (var s = lo; s < hi; s++) {
        let cur = (s - lo) % 2u;
        let nxt = 1u - cur;
        let more = s + 1u < hi;
        // the next step's loads, in flight during this step's FMAs (this step's again where
        // there is none: read, never stored)
        let sn = select(s, s + 1u, more);
        let l = load_step(pixel(sn * TILE_K + qi, q_end, grp), grp, m, &lane_taps);
        fma_step(&acc, cur, tx, ty, wide_a, wide_b);
        if more {
            store_step(nxt, t, l);
        }
        workgroupBarrier();
    }

    // each sum at its element of the weight, every accumulator by a constant index
    let out = Out(m0 + ty * 4u, grp, n0 + tx * 4u, wid.z * OC * taps);
    store4(out, acc[0], 0u, 0u);
    store4(out, acc[1], 0u, 32u);
    store4(out, acc[2], 1u, 0u);
    store4(out, acc[3], 1u, 32u);
    store4(out, acc[4], 2u, 0u);
    store4(out, acc[5], 2u, 32u);
    store4(out, acc[6], 3u, 0u);
    store4(out, acc[7], 3u, 32u);
    store4(out, acc[8], 32u, 0u);
    store4(out, acc[9], 32u, 32u);
    store4(out, acc[10], 33u, 0u);
    store4(out, acc[11], 33u, 32u);
    store4(out, acc[12], 34u, 0u);
    store4(out, acc[13], 34u, 32u);
    store4(out, acc[14], 35u, 0u);
    store4(out, acc[15], 35u, 32u);
}
