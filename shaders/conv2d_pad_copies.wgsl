// Writes the padded copies of the input that conv2d_forward_gemm reads (see
// conv2d_gemm_common.wgsl), every padding mode resolved here. Dispatched as a 3-D grid
// (x: blocks of 4 columns of a copy, y: padded rows, z: planes); each invocation loads the 4
// to 7 padded values per phase r that its block of the wanted copies (r, t) needs, and stores
// each copy's block as one vec4. Columns past the padded row are zeros. Inserted zeros
// (`up_h`, `up_w`) are resolved here too.

@group(0) @binding(0) var<uniform> g: Gemm;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> copies: array<vec4<f32>>;

// Whether the input is upsampled by zero insertion (`up_h`, `up_w` > 1): a separate pipeline,
// so that the common case pays for no integer division (slow on CPU adapters).
override UPSAMPLED: bool = false;

// Padded column `col` of the row that reads source row `sy` (-1: a zero row) at `row_base`.
fn padded(row_base: u32, sy: i32, col: u32) -> f32 {
    let sx = pad_source(i32(col) - i32(g.s.pad_left), i32(g.s.w), g.s.pad_mode);
    if sy < 0 || sx < 0 || col >= g.s.w + g.s.pad_left + g.s.pad_right {
        return 0.0;
    }
    if UPSAMPLED {
        if u32(sx) % g.up_w != 0u {
            return 0.0;
        }
        return x[row_base + u32(sx) / g.up_w];
    }
    return x[row_base + u32(sx)];
}

fn store(bit: u32, at: u32, v: vec4<f32>) {
    if (g.copy_mask & (1u << bit)) != 0u {
        copies[copy_slot(bit) * (g.copy_len / 4u) + at] = v;
    }
}

@compute @workgroup_size(8, 8, 1)
fn conv2d_pad_copies(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j0 = gid.x * 4u;
    let row = gid.y;
    if j0 >= g.wq || row >= g.hp {
        return;
    }
    let plane = g.base + gid.z;
    var sy = pad_source(i32(row) - i32(g.s.pad_top), i32(g.s.h), g.s.pad_mode);
    var row_base = (plane * g.s.h + u32(max(sy, 0))) * g.s.w;
    if UPSAMPLED {
        if sy >= 0 && u32(sy) % g.up_h != 0u {
            sy = -1; // an inserted zero row
        }
        // the source's own size (the logical size, less the inserted zeros)
        let src_h = (g.s.h - 1u) / g.up_h + 1u;
        let src_w = (g.s.w - 1u) / g.up_w + 1u;
        row_base = (plane * src_h + u32(max(sy, 0)) / g.up_h) * src_w;
    }
    let at = (plane * g.hp + row) * (g.wq / 4u) + gid.x;
    let s = g.s.stride_w;
    for (var r = 0u; r < s; r++) {
        let wanted = (g.copy_mask >> (r * 4u)) & 15u;
        if wanted == 0u {
            continue;
        }
        // copy (r, t) holds padded column (j + t) * s + r at column j; load only the columns
        // that the wanted copies read (t up to the highest wanted)
        let v0 = padded(row_base, sy, j0 * s + r);
        let v1 = padded(row_base, sy, (j0 + 1u) * s + r);
        let v2 = padded(row_base, sy, (j0 + 2u) * s + r);
        let v3 = padded(row_base, sy, (j0 + 3u) * s + r);
        var v4 = 0.0;
        var v5 = 0.0;
        var v6 = 0.0;
        if wanted > 1u {
            v4 = padded(row_base, sy, (j0 + 4u) * s + r);
        }
        if wanted > 3u {
            v5 = padded(row_base, sy, (j0 + 5u) * s + r);
        }
        if wanted > 7u {
            v6 = padded(row_base, sy, (j0 + 6u) * s + r);
        }
        store(r * 4u, at, vec4<f32>(v0, v1, v2, v3));
        store(r * 4u + 1u, at, vec4<f32>(v1, v2, v3, v4));
        store(r * 4u + 2u, at, vec4<f32>(v2, v3, v4, v5));
        store(r * 4u + 3u, at, vec4<f32>(v3, v4, v5, v6));
    }
}
