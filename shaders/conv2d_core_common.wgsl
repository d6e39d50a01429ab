// Shared by the GEMM core's kernels (conv2d_core, conv2d_weight_grad_core): the tiles in
// workgroup memory and the FMAs of one step. Each tile is 16 rows (the reduction axis: taps of
// the forward pass, pixels of the weight gradient) x 64 columns, kept as 16 vec4s a row, in two
// buffers. Column vec4 v of row k is stored at `k * 16 + (v ^ (k & SWIZZLE))`: with SWIZZLE 7
// (an XOR swizzle; each kernel file sets its SWIZZLE), loaders whose lanes run along the rows
// (16 pixels of one channel) store into each bank from 2 lanes at most, and the compute phase
// still reads whole vec4s; with 0 (loaders whose lanes run along the columns, conflict-free as
// they are) the layout is plain.

const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;
// vec4s of one buffer of a tile: 16 rows x 64 / 4
const TILE_VEC4S: u32 = 256u;

// [buffer][row * 16 + swizzled column vec4]: the A operand (weights, or the output gradient)
// and the B operand (the gathered input)
var<workgroup> a_tile: array<array<vec4<f32>, 256>, 2>;
var<workgroup> b_tile: array<array<vec4<f32>, 256>, 2>;

// Where column vec4 `v` of row `k` is.
fn swz(k: u32, v: u32) -> u32 {
    return k * 16u + (v ^ (k & SWIZZLE));
}

// Row k of buffer `cur`: 2 vec4s of A (columns ty and ty + 8) and 2 of B (tx and tx + 8) read,
// 64 FMAs into accumulator r * 2 + h (A column r: vec4 ty's 4 lanes, then vec4 ty + 8's; h: B
// vec4 tx or tx + 8). Every index into `acc` is a constant.
fn fma_row(acc: ptr<function, array<vec4<f32>, 16>>, cur: u32, k: u32, tx: u32, ty: u32) {
    let a0 = a_tile[cur][swz(k, ty)];
    let a1 = a_tile[cur][swz(k, ty + 8u)];
    let b0 = b_tile[cur][swz(k, tx)];
    let b1 = b_tile[cur][swz(k, tx + 8u)];
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

// Row k with only some halves of the tile live: `wide_a` false where A columns 32.. (the
// vec4s ty + 8) are all padding, `wide_b` false where B's are; the FMAs of a dead half are not
// issued (the accumulators they would feed stay 0 and are never stored).
fn fma_row_a0(acc: ptr<function, array<vec4<f32>, 16>>, cur: u32, k: u32, tx: u32, ty: u32) {
    let a0 = a_tile[cur][swz(k, ty)];
    let b0 = b_tile[cur][swz(k, tx)];
    let b1 = b_tile[cur][swz(k, tx + 8u)];
    (*acc)[0] = fma(vec4<f32>(a0.x), b0, (*acc)[0]);
    (*acc)[1] = fma(vec4<f32>(a0.x), b1, (*acc)[1]);
    (*acc)[2] = fma(vec4<f32>(a0.y), b0, (*acc)[2]);
    (*acc)[3] = fma(vec4<f32>(a0.y), b1, (*acc)[3]);
    (*acc)[4] = fma(vec4<f32>(a0.z), b0, (*acc)[4]);
    (*acc)[5] = fma(vec4<f32>(a0.z), b1, (*acc)[5]);
    (*acc)[6] = fma(vec4<f32>(a0.w), b0, (*acc)[6]);
    (*acc)[7] = fma(vec4<f32>(a0.w), b1, (*acc)[7]);
}

fn fma_row_b0(acc: ptr<function, array<vec4<f32>, 16>>, cur: u32, k: u32, tx: u32, ty: u32) {
    let a0 = a_tile[cur][swz(k, ty)];
    let a1 = a_tile[cur][swz(k, ty + 8u)];
    let b0 = b_tile[cur][swz(k, tx)];
    (*acc)[0] = fma(vec4<f32>(a0.x), b0, (*acc)[0]);
    (*acc)[2] = fma(vec4<f32>(a0.y), b0, (*acc)[2]);
    (*acc)[4] = fma(vec4<f32>(a0.z), b0, (*acc)[4]);
    (*acc)[6] = fma(vec4<f32>(a0.w), b0, (*acc)[6]);
    (*acc)[8] = fma(vec4<f32>(a1.x), b0, (*acc)[8]);
    (*acc)[10] = fma(vec4<f32>(a1.y), b0, (*acc)[10]);
    (*acc)[12] = fma(vec4<f32>(a1.z), b0, (*acc)[12]);
    (*acc)[14] = fma(vec4<f32>(a1.w), b0, (*acc)[14]);
}

fn fma_row_a0b0(acc: ptr<function, array<vec4<f32>, 16>>, cur: u32, k: u32, tx: u32, ty: u32) {
    let a0 = a_tile[cur][swz(k, ty)];
    let b0 = b_tile[cur][swz(k, tx)];
    (*acc)[0] = fma(vec4<f32>(a0.x), b0, (*acc)[0]);
    (*acc)[2] = fma(vec4<f32>(a0.y), b0, (*acc)[2]);
    (*acc)[4] = fma(vec4<f32>(a0.z), b0, (*acc)[4]);
    (*acc)[6] = fma(vec4<f32>(a0.w), b0, (*acc)[6]);
}

// The 16 rows of buffer `cur`: a loop of 8 iterations, rows k and k + 8 in each (the same
// swizzle, so the second row's reads are the first's at a constant offset). Not 16 rows of
// straight-line code: unrolled, a step is 1,024 FMAs per invocation, which Mesa's llvmpipe (64
// accumulators per lane in 16 AVX registers) ran 3-4 times slower. `wide_a` and `wide_b` are
// uniform over the workgroup (a tile's edge), so each tile runs one of the four loops.
fn fma_step(
    acc: ptr<function, array<vec4<f32>, 16>>,
    cur: u32,
    tx: u32,
    ty: u32,
    wide_a: bool,
    wide_b: bool,
) {
    if wide_a && wide_b {
        for (var k = 0u; k < TILE_K / 2u; k++) {
            fma_row(acc, cur, k, tx, ty);
            fma_row(acc, cur, k + TILE_K / 2u, tx, ty);
        }
    } else if wide_b {
        for (var k = 0u; k < TILE_K / 2u; k++) {
            fma_row_a0(acc, cur, k, tx, ty);
            fma_row_a0(acc, cur, k + TILE_K / 2u, tx, ty);
        }
    } else if wide_a {
        for (var k = 0u; k < TILE_K / 2u; k++) {
            fma_row_b0(acc, cur, k, tx, ty);
            fma_row_b0(acc, cur, k + TILE_K / 2u, tx, ty);
        }
    } else {
        for (var k = 0u; k < TILE_K / 2u; k++) {
            fma_row_a0b0(acc, cur, k, tx, ty);
            fma_row_a0b0(acc, cur, k + TILE_K / 2u, tx, ty);
        }
    }
}
