// Shared by the GEMM kernels (conv2d_pad_copies, conv2d_pack_chunks, conv2d_forward_gemm,
// conv2d_unpad_output): src/kernels/spec.rs prepends it, after conv2d_common.wgsl.
//
// The GEMM path reads the input from 4 * stride_w "copies" of the padded input: copy
// (r * 4 + t) holds, at column j of each padded row, padded column (j + t) * stride_w + r.
// Then the four input values that four neighbouring output pixels need for one tap are four
// consecutive, 16-byte aligned floats of one copy: one vec4 load. Only the copies some tap
// reads are stored ("slots", in the order of their bits in `copy_mask`).

// The slot of copy `bit` (= r * 4 + t).
fn copy_slot(bit: u32) -> u32 {
    return countOneBits(g.copy_mask & ((1u << bit) - 1u));
}

// Uniform of the GEMM and planes kernels. Keep in sync with `GemmParams` in
// src/kernels/uniforms.rs.
struct Gemm {
    s: Shape,
    // padded rows, row length of a copy (a multiple of 4), output row length rounded up to 4,
    // floats per copy (a multiple of 4)
    hp: u32, wq: u32, ow4: u32, copy_len: u32,
    has_bias: u32, taps: u32, ocb: u32, chunks: u32,
    // bit r * 4 + t: copy (r, t) is read by some tap; vec4 offset of the zero region that
    // the padding taps of a short last chunk read
    base: u32, copy_mask: u32, zero_offset: u32,
    // weight gradient: slices of the N * OH output rows, rows per slice; 1 where the weight
    // buffer holds the transposed layer's weight [C, OC/groups, KH, KW] (input gradients)
    slices: u32, slice_rows: u32, transposed: u32,
    // the input is the source upsampled by zero insertion: `h` x `w` logical rows and columns,
    // of which every up_h-th row and up_w-th column is a source value (input gradients of
    // strided layers)
    up_h: u32, up_w: u32,
}

// Taps per chunk: each dispatch of conv2d_forward_gemm adds this many taps of one block of 8
// output channels (keep in sync with `CHUNK_TAPS` in src/kernels/conv2d_forward_gemm.rs).
const CHUNK_TAPS: u32 = 64u;

// One chunk's uniform block, written by conv2d_pack_chunks (keep in sync with `CHUNK_BYTES`).
struct Chunk {
    // x: taps in this chunk, y: 1 for the first chunk of a block, z: first output channel,
    // w: output channels of the block that exist (at most 8)
    head: vec4<u32>,
    // offset of each tap in vec4 units, relative to an output pixel's base (copy selected)
    offsets: array<vec4<u32>, 16>,
    // the block's 8 weights for each tap
    weights: array<vec4<f32>, 128>,
}
