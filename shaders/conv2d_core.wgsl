// The GEMM core (the GPU family): a convolution as one implicit GEMM per group, Y (OC/groups x
// P) = A (OC/groups x K) * X (K x P), P = N * OH * OW output pixels and K = C/groups * KH * KW
// taps, with A the weight packed by conv2d_pack_core (K-major tiles of 16 taps x 64 channels,
// zero-padded: its loads are straight vec4 copies) and X gathered from the input on the fly.
//
// A workgroup of 64 invocations computes a tile of 64 channels x 64 pixels, each invocation 8 x 8
// (16 vec4 accumulators). K goes in steps of 16 taps through two workgroup-memory buffers: the
// next step's loads are issued before this step's FMAs and stored after them, so there is one
// barrier per step. Loads: lane t of the gather reads pixel t of the tile (lanes along pixels:
// consecutive addresses at stride 1) and stores word t of a row (no bank conflicts); lane t of
// the weight copy stores vec4 t. Per tap of a step the compute phase reads 2 vec4s of A and 2 of
// X for 64 FMAs (4 FMAs per workgroup-memory word).
//
// The layer's shape is in override constants (a pipeline per layer shape, with constant
// divisors and no variant branches in the K loop). Grid: x tiles of pixels (from `base`), y
// groups x channel blocks, z the slices of a split K; with more than one slice each writes its
// own copy of the output (`[slice][element]`), summed in slice order by reduce_partials. The host
// cuts a slice's steps into pieces (steps lo0..hi0) where the loop budget needs it, each piece
// adding to the last; the bias goes with the first piece of slice 0. The output placement
// constants let a pass write a strided subset of a larger output (a phase of an input gradient).
// (conv2d_common.wgsl, with `Params` and `pad_source`, conv2d_layer_common.wgsl, with the layer's
// shape, and conv2d_core_common.wgsl, with the tiles and the FMAs, are prepended to this file.)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> packed: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// (the layer's shape: the override constants of conv2d_layer_common.wgsl)
// K steps per slice of a split K.
override SLICE_STEPS: u32;
// Where output pixel (oy, ox) of a plane goes: row OUT_Y0 + oy * OUT_SY and column
// OUT_X0 + ox * OUT_SX of an output plane of OUT_H x OUT_W (OH x OW, 0, 1 for a layer's own
// output; a phase of a strided layer's input gradient writes every stride-th row and column).
override OUT_H: u32;
override OUT_W: u32;
override OUT_Y0: u32;
override OUT_X0: u32;
override OUT_SY: u32;
override OUT_SX: u32;

// Where this invocation gathers: its pixel's first input row and column (padded coordinates),
// the offset of its image and group in the input, and whether the pixel exists.
struct Gather {
    iy: i32,
    ix: i32,
    base: u32,
    live: bool,
}

// Tap `k` of the gather's pixel; 0 past K, past the last pixel and in zero padding. Every index
// read is in bounds: a masked read reads element 0.
fn tap(g: Gather, k: u32) -> f32 {
    let taps = KH * KW;
    let c = k / taps;
    let r = k - c * taps;
    let a = r / KW;
    let b = r - a * KW;
    let iy = g.iy + i32(a * DH);
    let ix = g.ix + i32(b * DW);
    var live = g.live & (k < CPG * taps);
    var sy = iy;
    var sx = ix;
    if PAD_MODE == 0u {
        // one unsigned compare per axis: a negative coordinate is past the end
        live = live & (u32(iy) < H) & (u32(ix) < W);
    } else {
        sy = pad_source(iy, i32(H), PAD_MODE);
        sx = pad_source(ix, i32(W), PAD_MODE);
    }
    let at = g.base + (c * H + u32(sy)) * W + u32(sx);
    return select(0.0, x[select(0u, at, live)], live);
}

// Taps k0 .. k0 + 3.
fn taps4(g: Gather, k0: u32) -> vec4<f32> {
    return vec4<f32>(tap(g, k0), tap(g, k0 + 1u), tap(g, k0 + 2u), tap(g, k0 + 3u));
}

// The loaders' lanes run along the tiles' columns (pixels, channels): no swizzle.
const SWIZZLE: u32 = 0u;

// Stores one step's loads into buffer `buf`: the 4 weight vec4s of lane t (vec4s t + 64 i of
// the packed tile: row t / 16 + 4 i, column t % 16) and its 16 taps (rows 0..15 of its pixel,
// column vec4 t / 4, lane t % 4).
fn store_step(buf: u32, t: u32, w: array<vec4<f32>, 4>, g: array<vec4<f32>, 4>) {
    let row = t / 16u;
    let v = t % 16u;
    a_tile[buf][swz(row, v)] = w[0];
    a_tile[buf][swz(row + 4u, v)] = w[1];
    a_tile[buf][swz(row + 8u, v)] = w[2];
    a_tile[buf][swz(row + 12u, v)] = w[3];
    let col = t / 4u;
    let lane = t % 4u;
    b_tile[buf][swz(0u, col)][lane] = g[0].x;
    b_tile[buf][swz(1u, col)][lane] = g[0].y;
    b_tile[buf][swz(2u, col)][lane] = g[0].z;
    b_tile[buf][swz(3u, col)][lane] = g[0].w;
    b_tile[buf][swz(4u, col)][lane] = g[1].x;
    b_tile[buf][swz(5u, col)][lane] = g[1].y;
    b_tile[buf][swz(6u, col)][lane] = g[1].z;
    b_tile[buf][swz(7u, col)][lane] = g[1].w;
    b_tile[buf][swz(8u, col)][lane] = g[2].x;
    b_tile[buf][swz(9u, col)][lane] = g[2].y;
    b_tile[buf][swz(10u, col)][lane] = g[2].z;
    b_tile[buf][swz(11u, col)][lane] = g[2].w;
    b_tile[buf][swz(12u, col)][lane] = g[3].x;
    b_tile[buf][swz(13u, col)][lane] = g[3].y;
    b_tile[buf][swz(14u, col)][lane] = g[3].z;
    b_tile[buf][swz(15u, col)][lane] = g[3].w;
}

// Where an invocation's sums go: its first channel of the group (of the tile), its group, its
// first pixel, the offset of its slice's output, and whether it adds the bias.
struct Out {
    m: u32,
    grp: u32,
    q: u32,
    base: u32,
    bias: bool,
}

// Stores the sums `v` of channel out.m + dm and pixels out.q + dq + 0..3.
fn store4(out: Out, v: vec4<f32>, dm: u32, dq: u32) {
    let m = out.m + dm;
    if m >= OCPG {
        return;
    }
    let o = out.grp * OCPG + m;
    var b = 0.0;
    if out.bias {
        b = bias[o];
    }
    let plane = OH * OW;
    for (var j = 0u; j < 4u; j++) {
        let q = out.q + dq + j;
        if q >= N * plane {
            break;
        }
        let r = q % plane;
        let row = OUT_Y0 + (r / OW) * OUT_SY;
        let at = out.base + (((q / plane) * OC + o) * OUT_H + row) * OUT_W + OUT_X0
            + (r % OW) * OUT_SX;
        var e = v[j] + b;
        if p.accumulate != 0u {
            e += y[at];
        }
        y[at] = e;
    }
}

// One step's loads: the packed weight tile's vec4s at `at` and the 16 taps from k0.
fn load_weights(at: u32) -> array<vec4<f32>, 4> {
    return array<vec4<f32>, 4>(packed[at], packed[at + 64u], packed[at + 128u], packed[at + 192u]);
}

fn load_taps(g: Gather, k0: u32) -> array<vec4<f32>, 4> {
    return array<vec4<f32>, 4>(taps4(g, k0), taps4(g, k0 + 4u), taps4(g, k0 + 8u), taps4(g, k0 + 12u));
}

@compute @workgroup_size(64, 1, 1)
fn conv2d_core(
    @builtin(local_invocation_index) t: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let tx = t % 8u;
    let ty = t / 8u;
    let m_blocks = (OCPG + TILE_M - 1u) / TILE_M;
    let steps = (CPG * KH * KW + TILE_K - 1u) / TILE_K;
    let grp = wid.y / m_blocks;
    let m0 = (wid.y % m_blocks) * TILE_M;
    let pix0 = (p.base + wid.x) * TILE_N;
    let pixels = N * OH * OW;
    let plane = OH * OW;

    // the pixel this invocation gathers (any pixel's coordinates where it is past the last)
    let q = pix0 + t;
    let qc = min(q, pixels - 1u);
    let ox = qc % OW;
    let oy = (qc / OW) % OH;
    let img = qc / plane;
    let g = Gather(
        i32(oy * SH) - i32(PT),
        i32(ox * SW) - i32(PL),
        (img * C + grp * CPG) * H * W,
        q < pixels,
    );

    // this slice's and piece's K steps
    let first = wid.z * SLICE_STEPS;
    let lo = first + p.lo0;
    let hi = min(first + min(p.hi0, SLICE_STEPS), steps);
    // this workgroup's packed tiles, one of TILE_VEC4S vec4s per step
    let a_at = wid.y * steps * TILE_VEC4S + t;

    // rows r of the invocation: channels m0 + ty * 4 + r % 4 + 32 * (r / 4); halves h: pixels
    // pix0 + tx * 4 + 32 * h + 0..3; accumulator r * 2 + h
    var acc: array<vec4<f32>, 16>;
    // the halves of the tile with a live channel or pixel (uniform over the workgroup)
    let wide_a = m0 + TILE_M / 2u < OCPG;
    let wide_b = pix0 + TILE_N / 2u < pixels;

    if lo < hi {
        // the first step's tiles into buffer 0
        store_step(0u, t, load_weights(a_at + lo * TILE_VEC4S), load_taps(g, lo * TILE_K));
    }
    workgroupBarrier();

    for (var s = lo; s < hi; s++) {
        let cur = (s - lo) % 2u;
        let nxt = 1u - cur;
        let more = s + 1u < hi;
        // the next step's loads, in flight during this step's FMAs (clamped to this step's
        // where there is none: read, never stored)
        let sn = select(s, s + 1u, more);
        let w = load_weights(a_at + sn * TILE_VEC4S);
        let gs = load_taps(g, sn * TILE_K);
        fma_step(&acc, cur, tx, ty, wide_a, wide_b);
        if more {
            store_step(nxt, t, w, gs);
        }
        workgroupBarrier();
    }

    let out = Out(m0 + ty * 4u, grp, pix0 + tx * 4u, wid.z * N * OC * OUT_H * OUT_W,
                  p.has_bias != 0u && wid.z == 0u);
    // every accumulator by a constant index (an index that varies at run time would keep the
    // accumulators in memory on compilers that do not unroll the loop)
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
