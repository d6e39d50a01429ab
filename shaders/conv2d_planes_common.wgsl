// Shared by the planes kernels (conv2d_forward_planes, conv2d_weight_grad_planes):
// src/kernels/spec.rs prepends it after conv2d_common.wgsl and conv2d_gemm_common.wgsl. It reads
// each kernel's `g` uniform, `copies` and `xs` bindings and KW, DIRECT_PAD_LEFT and FLOAT_IN
// overrides (WGSL resolves module-scope names wherever they are declared).
//
// Three ways to read the input: copy 0 of conv2d_gemm_common.wgsl (the padded input, rows of
// whole vec4s: `copies`); the unpadded input itself as vec4s (DIRECT_PAD_LEFT <= 4: zero
// padding, rows of whole vec4s, pad_left at most 4 and KW at most 5 + pad_left: `copies` is the
// input); or the input itself as floats (FLOAT_IN: any padding mode, any width: `xs` is the
// input), which needs no copy pass and no scratch at all.

// One input row: the 12 values from a block's first column (4 columns and up to 8 more for the
// kernel's width).
struct Row {
    v0: vec4<f32>,
    v1: vec4<f32>,
    v2: vec4<f32>,
}

// The row at `at` (vec4s), as far as KW needs.
fn load_row(at: u32) -> Row {
    var row = Row(copies[at], vec4<f32>(0.0), vec4<f32>(0.0));
    if KW > 1u {
        row.v1 = copies[at + 1u];
    }
    if KW > 5u {
        row.v2 = copies[at + 2u];
    }
    return row;
}

// The 4 consecutive values from position `b` (at most 8) of the row.
fn window(row: Row, b: u32) -> vec4<f32> {
    switch b {
        case 0u: { return row.v0; }
        case 1u: { return vec4<f32>(row.v0.yzw, row.v1.x); }
        case 2u: { return vec4<f32>(row.v0.zw, row.v1.xy); }
        case 3u: { return vec4<f32>(row.v0.w, row.v1.xyz); }
        case 4u: { return row.v1; }
        case 5u: { return vec4<f32>(row.v1.yzw, row.v2.x); }
        case 6u: { return vec4<f32>(row.v1.zw, row.v2.xy); }
        case 7u: { return vec4<f32>(row.v1.w, row.v2.xyz); }
        default: { return row.v2; }
    }
}

// Where tap column 0's values start in a loaded row: 0 in copy 0 and with FLOAT_IN; reading
// vec4s of the input itself, the row starts 4 columns before the block, and the padding shifts
// the taps left.
fn tap_shift() -> u32 {
    if DIRECT_PAD_LEFT <= 4u && !FLOAT_IN {
        return 4u - DIRECT_PAD_LEFT;
    }
    return 0u;
}

// The input value at padded row `y` (relative to the unpadded start, already mapped through
// the padding: `sy` < 0 for a zero row) and padded column `x` of plane `plane` (FLOAT_IN).
fn float_at(plane: u32, sy: i32, x: i32) -> f32 {
    // branch-free, like pad_source (see there): a zero reads element 0 and is masked
    let sx = pad_source(x, i32(g.s.w), g.s.pad_mode);
    let v = xs[(plane * g.s.h + u32(max(sy, 0))) * g.s.w + u32(max(sx, 0))];
    return select(0.0, v, (sy >= 0) & (sx >= 0));
}

// 4 values of the padded row from padded column `x` (FLOAT_IN).
fn floats4(plane: u32, sy: i32, x: i32) -> vec4<f32> {
    return vec4<f32>(
        float_at(plane, sy, x),
        float_at(plane, sy, x + 1),
        float_at(plane, sy, x + 2),
        float_at(plane, sy, x + 3),
    );
}

// Padded input row `y0 + r` of plane `plane`, from output block column `bx` on (its 12 values
// from the block's first column, or from 4 columns before it when reading vec4s of the input
// itself), as far as KW needs.
fn input_row(r: u32, plane: u32, y0: u32, bx: u32) -> Row {
    if FLOAT_IN {
        let sy = pad_source(i32(y0 + r) - i32(g.s.pad_top), i32(g.s.h), g.s.pad_mode);
        let x = i32(bx * 4u) - i32(g.s.pad_left);
        var row = Row(floats4(plane, sy, x), vec4<f32>(0.0), vec4<f32>(0.0));
        if KW > 1u {
            row.v1 = floats4(plane, sy, x + 4);
        }
        if KW > 5u {
            row.v2 = floats4(plane, sy, x + 8);
        }
        return row;
    }
    if DIRECT_PAD_LEFT > 4u {
        let wq4 = g.wq / 4u;
        return load_row((plane * g.hp + y0 + r) * wq4 + bx);
    }
    // the input row and its 12 values from 4 columns before the block, zero where they fall
    // outside the input
    let y = i32(y0 + r) - i32(g.s.pad_top);
    let w4 = g.s.w / 4u;
    let at = (plane * g.s.h + u32(clamp(y, 0, i32(g.s.h) - 1))) * w4;
    let row_ok = y >= 0 && y < i32(g.s.h);
    let c0 = i32(bx * 4u) - 4;
    let w = i32(g.s.w);
    let zero = vec4<f32>(0.0);
    let k = vec4<i32>(0, 1, 2, 3);
    let ok0 = (c0 + k >= vec4<i32>(0)) & (c0 + k < vec4<i32>(w)) & vec4<bool>(row_ok);
    let ok1 = (c0 + 4 + k < vec4<i32>(w)) & vec4<bool>(row_ok);
    let ok2 = (c0 + 8 + k < vec4<i32>(w)) & vec4<bool>(row_ok);
    return Row(
        select(zero, copies[at + max(bx, 1u) - 1u], ok0),
        select(zero, copies[at + min(bx, w4 - 1u)], ok1),
        select(zero, copies[at + min(bx + 1u, w4 - 1u)], ok2),
    );
}
