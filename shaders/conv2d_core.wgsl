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
// adding to the last; the bias goes with the first piece of slice 0.
// (conv2d_common.wgsl, with `Params` and `pad_source`, is prepended to this file.)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> packed: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// The layer (keep in sync with `core_constants` in src/kernels/conv2d_core.rs).
override N: u32;
override C: u32;
override H: u32;
override W: u32;
override OC: u32;
override CPG: u32;
override OCPG: u32;
override KH: u32;
override KW: u32;
override OH: u32;
override OW: u32;
override SH: u32;
override SW: u32;
override DH: u32;
override DW: u32;
override PT: u32;
override PL: u32;
override PAD_MODE: u32;
// K steps per slice of a split K.
override SLICE_STEPS: u32;

// Channels and pixels of a tile, taps per K step (keep in sync with src/kernels/conv2d_core.rs).
const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;
// vec4s of one buffer of a tile: 16 taps x 64 / 4
const TILE_VEC4S: u32 = 256u;

// [buffer][tap * 16 + channel / 4] and [buffer][tap * 16 + pixel / 4]
var<workgroup> a_tile: array<array<vec4<f32>, 256>, 2>;
var<workgroup> x_tile: array<array<vec4<f32>, 256>, 2>;

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
        live = live & (iy >= 0) & (iy < i32(H)) & (ix >= 0) & (ix < i32(W));
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

// Tap k of buffer `cur`: 2 vec4s of weights and 2 of inputs read, 64 FMAs. Called once per tap
// with a constant k (straight-line code, no inner loop: every index into `acc` is a constant).
fn fma_tap(acc: ptr<function, array<vec4<f32>, 16>>, cur: u32, k: u32, tx: u32, ty: u32) {
    let a0 = a_tile[cur][k * 16u + ty];
    let a1 = a_tile[cur][k * 16u + ty + 8u];
    let b0 = x_tile[cur][k * 16u + tx];
    let b1 = x_tile[cur][k * 16u + tx + 8u];
    (*acc)[0] = fma(vec4<f32>(a0.x), b0, (*acc)[0]);
    (*acc)[1] = fma(vec4<f32>(a0.x), b1, (*acc)[1]);
    (*acc)[2] = fma(vec4<f32>(a0.y), b0, (*acc)[2]);
    (*acc)[3] = fma(vec4<f32>(a0.y), b1, (*acc)[3]);
    (*acc)[4] = fma(vec4<f32>(a0.z), b0, (*acc)[4]);
    (*acc)[5] = fma(vec4<f32>(a0.z), b1, (*acc)[5]);
    (*acc)[6] = fma(vec4<f32>(a0.w), b0, (*acc)[6]);
    (*acc)[7] = fma(vec4<f32>(a0.w), b1, (*acc)[7]);
    (*acc)[8] = fma(vec4<f32>(a1.x), b0, (*acc)[8]);
    (*acc)[9] = fma(vec4<f32>(a1.x), b1, (*acc)[9]);
    (*acc)[10] = fma(vec4<f32>(a1.y), b0, (*acc)[10]);
    (*acc)[11] = fma(vec4<f32>(a1.y), b1, (*acc)[11]);
    (*acc)[12] = fma(vec4<f32>(a1.z), b0, (*acc)[12]);
    (*acc)[13] = fma(vec4<f32>(a1.z), b1, (*acc)[13]);
    (*acc)[14] = fma(vec4<f32>(a1.w), b0, (*acc)[14]);
    (*acc)[15] = fma(vec4<f32>(a1.w), b1, (*acc)[15]);
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
    let col = t / 4u;
    let lane = t % 4u;

    // rows r of the invocation: channels m0 + ty * 4 + r % 4 + 32 * (r / 4); halves h: pixels
    // pix0 + tx * 4 + 32 * h + 0..3; accumulator r * 2 + h
    var acc: array<vec4<f32>, 16>;

    if lo < hi {
        // the first step's tiles into buffer 0
        let at = a_at + lo * TILE_VEC4S;
        a_tile[0][t] = packed[at];
        a_tile[0][t + 64u] = packed[at + 64u];
        a_tile[0][t + 128u] = packed[at + 128u];
        a_tile[0][t + 192u] = packed[at + 192u];
        let k0 = lo * TILE_K;
        let g0 = taps4(g, k0);
        let g1 = taps4(g, k0 + 4u);
        let g2 = taps4(g, k0 + 8u);
        let g3 = taps4(g, k0 + 12u);
        x_tile[0][col][lane] = g0.x;
        x_tile[0][16u + col][lane] = g0.y;
        x_tile[0][32u + col][lane] = g0.z;
        x_tile[0][48u + col][lane] = g0.w;
        x_tile[0][64u + col][lane] = g1.x;
        x_tile[0][80u + col][lane] = g1.y;
        x_tile[0][96u + col][lane] = g1.z;
        x_tile[0][112u + col][lane] = g1.w;
        x_tile[0][128u + col][lane] = g2.x;
        x_tile[0][144u + col][lane] = g2.y;
        x_tile[0][160u + col][lane] = g2.z;
        x_tile[0][176u + col][lane] = g2.w;
        x_tile[0][192u + col][lane] = g3.x;
        x_tile[0][208u + col][lane] = g3.y;
        x_tile[0][224u + col][lane] = g3.z;
        x_tile[0][240u + col][lane] = g3.w;
    }
    workgroupBarrier();

    for (var s = lo; s < hi; s++) {
        let cur = (s - lo) % 2u;
        let nxt = 1u - cur;
        let more = s + 1u < hi;
        // the next step's loads, in flight during this step's FMAs (clamped to this step's
        // where there is none: read, never stored)
        let sn = select(s, s + 1u, more);
        let at = a_at + sn * TILE_VEC4S;
        let w0 = packed[at];
        let w1 = packed[at + 64u];
        let w2 = packed[at + 128u];
        let w3 = packed[at + 192u];
        let k0 = sn * TILE_K;
        let g0 = taps4(g, k0);
        let g1 = taps4(g, k0 + 4u);
        let g2 = taps4(g, k0 + 8u);
        let g3 = taps4(g, k0 + 12u);

        fma_tap(&acc, cur, 0u, tx, ty);
        fma_tap(&acc, cur, 1u, tx, ty);
        fma_tap(&acc, cur, 2u, tx, ty);
        fma_tap(&acc, cur, 3u, tx, ty);
        fma_tap(&acc, cur, 4u, tx, ty);
        fma_tap(&acc, cur, 5u, tx, ty);
        fma_tap(&acc, cur, 6u, tx, ty);
        fma_tap(&acc, cur, 7u, tx, ty);
        fma_tap(&acc, cur, 8u, tx, ty);
        fma_tap(&acc, cur, 9u, tx, ty);
        fma_tap(&acc, cur, 10u, tx, ty);
        fma_tap(&acc, cur, 11u, tx, ty);
        fma_tap(&acc, cur, 12u, tx, ty);
        fma_tap(&acc, cur, 13u, tx, ty);
        fma_tap(&acc, cur, 14u, tx, ty);
        fma_tap(&acc, cur, 15u, tx, ty);

        if more {
            a_tile[nxt][t] = w0;
            a_tile[nxt][t + 64u] = w1;
            a_tile[nxt][t + 128u] = w2;
            a_tile[nxt][t + 192u] = w3;
            x_tile[nxt][col][lane] = g0.x;
            x_tile[nxt][16u + col][lane] = g0.y;
            x_tile[nxt][32u + col][lane] = g0.z;
            x_tile[nxt][48u + col][lane] = g0.w;
            x_tile[nxt][64u + col][lane] = g1.x;
            x_tile[nxt][80u + col][lane] = g1.y;
            x_tile[nxt][96u + col][lane] = g1.z;
            x_tile[nxt][112u + col][lane] = g1.w;
            x_tile[nxt][128u + col][lane] = g2.x;
            x_tile[nxt][144u + col][lane] = g2.y;
            x_tile[nxt][160u + col][lane] = g2.z;
            x_tile[nxt][176u + col][lane] = g2.w;
            x_tile[nxt][192u + col][lane] = g3.x;
            x_tile[nxt][208u + col][lane] = g3.y;
            x_tile[nxt][224u + col][lane] = g3.z;
            x_tile[nxt][240u + col][lane] = g3.w;
        }
        workgroupBarrier();
    }

    let elements = N * OC * plane;
    let out0 = wid.z * elements;
    let with_bias = p.has_bias != 0u && wid.z == 0u;
    for (var r = 0u; r < 8u; r++) {
        let m = m0 + ty * 4u + r % 4u + 32u * (r / 4u);
        if m >= OCPG {
            continue;
        }
        let o = grp * OCPG + m;
        var b = 0.0;
        if with_bias {
            b = bias[o];
        }
        for (var h = 0u; h < 2u; h++) {
            let v = acc[r * 2u + h];
            for (var j = 0u; j < 4u; j++) {
                let qj = pix0 + tx * 4u + 32u * h + j;
                if qj >= pixels {
                    break;
                }
                let at = out0 + ((qj / plane) * OC + o) * plane + qj % plane;
                var e = v[j] + b;
                if p.accumulate != 0u {
                    e += y[at];
                }
                y[at] = e;
            }
        }
    }
}
