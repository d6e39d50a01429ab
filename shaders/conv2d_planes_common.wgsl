// Shared by the planes kernels (conv2d_forward_planes, conv2d_weight_grad_planes):
// src/kernels/spec.rs prepends it after conv2d_common.wgsl and conv2d_gemm_common.wgsl. It reads
// each kernel's `copies` binding and KW override (WGSL resolves module-scope names wherever
// they are declared).

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
