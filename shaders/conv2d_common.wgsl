// Shared by every conv2d_*.wgsl kernel: src/kernels/spec.rs prepends this file to each of them
// (WGSL has no includes). Holds the uniform layout and the padding arithmetic.

// The shape of a convolution, shared by every conv2d_* kernel's uniform (`Params` below,
// `Gemm` in conv2d_gemm_common.wgsl). Keep in sync with `ConvShape` in
// src/kernels/uniforms.rs (the naga test in src/kernels/spec.rs checks names and order).
struct Shape {
    n: u32, c: u32, h: u32, w: u32,
    oc: u32, kh: u32, kw: u32, cpg: u32,
    oh: u32, ow: u32, groups: u32, ocpg: u32,
    stride_h: u32, stride_w: u32, dil_h: u32, dil_w: u32,
    pad_top: u32, pad_left: u32, pad_bottom: u32, pad_right: u32,
    // PaddingMode::code; 1 for strict convolution (flipped kernel)
    pad_mode: u32, flip: u32, _pad0: u32, _pad1: u32,
}

// Uniform of the direct and tiled conv2d_* kernels. Keep in sync with `ConvParams`.
struct Params {
    s: Shape,
    has_bias: u32, total: u32, slice_len: u32, slices: u32,
    base: u32, accumulate: u32,
    // The ranges of this piece's loop nest, outermost first (which loops they are is each
    // kernel's own; see src/kernels/budget.rs): level i runs lo_i .. hi_i.
    lo0: u32, hi0: u32, lo1: u32, hi1: u32,
    lo2: u32, hi2: u32, lo3: u32, hi3: u32,
    lo4: u32, hi4: u32,
    // conv2d_forward_mm: 1 where the weight buffer holds a layer's weight [C, OC/groups, KH, KW]
    // whose transpose this pass applies (the input gradient as a forward pass), and the zero
    // insertion its input is read with (every up_h-th row and up_w-th column of the `h` x `w`
    // logical input is a value of the buffer; 1: none)
    transposed: u32, up_h: u32, up_w: u32, _pad2: u32,
}


// Where coordinate `i` of the padded axis (relative to the unpadded start) reads from in an
// axis of length `n`, or -1 for a zero. Modes: 0 zeros, 1 reflect, 2 replicate, 3 circular
// (keep in sync with `PaddingMode::code`). Reflect and circular padding are narrower than the
// axis (checked on the host), so one fold or one wrap suffices. (No `%` on negative values:
// GLSL, which the GL backend compiles to, leaves its sign undefined.)
//
// Written without branches (`select`, and `&` rather than `&&`): kernels call this many times
// inside their loops, and Chromium's CPU adapter (SwiftShader) compiles such a loop in time that
// grows steeply with the number of branchy copies: the 3x3 planes weight gradient (36 calls per
// row of its loop) did not compile within a minute with the earlier form (an early return, then
// a `switch` with a return in each case; 7.7 s with 2 kernel rows) and the device was lost after
// minutes. This form compiles it in 0.3 s, and the 7x8 one in under a second.
fn pad_source(i: i32, n: i32, mode: u32) -> i32 {
    let m = abs(i);
    let reflect = select(m, 2 * (n - 1) - m, m >= n);
    let replicate = clamp(i, 0, n - 1);
    let wrapped = select(i, i + n, i < 0);
    let circular = select(wrapped, wrapped - n, wrapped >= n);
    var r = select(-1, reflect, mode == 1u);
    r = select(r, replicate, mode == 2u);
    r = select(r, circular, mode == 3u);
    return select(r, i, (i >= 0) & (i < n));
}

// The k-th padded coordinate (relative to the unpadded start) that may read pixel `i` of an
// axis of length `n` with `before` / `after` padding: k = 0 is the pixel itself, then the
// border positions -1 .. -before and n .. n+after-1.
fn candidate(k: u32, i: u32, n: u32, before: u32) -> i32 {
    if k == 0u {
        return i32(i);
    }
    if k <= before {
        return -i32(k);
    }
    return i32(n + (k - before - 1u));
}
