// Weight gradient of single planes (one input and one output channel per group: images,
// depthwise layers) at stride 1 and dilation 1: dW[c][a][b] = sum over output pixels of
// dy * x at the pixel shifted by (a, b). The kernel size is fixed per pipeline by the override
// constants KH and KW (at most 7 x 8; the code is written out for the largest size and folds
// down, keeping the KH x KW sums in registers). Each invocation walks a strip of 4 output
// columns down one slice of rows of one plane: per row, one vec4 of dy (or, where its rows are
// not whole vec4s, FLOAT_DY: 4 floats of it) and, per kernel row, one input row as up to 3
// vec4s (copy 0 of the padded input, or the input itself: see conv2d_planes_common.wgsl). Its sums land in `partials[element * slices + slice]`, slice = (n * row slices +
// row slice) * strips + strip, and reduce_partials adds them in that order: deterministic.
// Columns past the output's end are masked, so that their zero dy never meets an infinity.
// Dispatched as a 3-D grid (x: strips, y: row slices, z: planes).

override KH: u32 = 3u;
override KW: u32 = 3u;
// How the input is read (conv2d_planes_common.wgsl): vec4s of the input itself with this much
// left padding (at most 4), else copy 0 or, with FLOAT_IN, floats of the input itself.
override DIRECT_PAD_LEFT: u32 = 255u;
override FLOAT_IN: bool = false;
// Read dy as floats (rows that are not whole vec4s) instead of as vec4s.
override FLOAT_DY: bool = false;

@group(0) @binding(0) var<uniform> g: Gemm;
@group(0) @binding(1) var<storage, read> copies: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
// dy as floats (FLOAT_DY) and the input as floats (FLOAT_IN)
@group(0) @binding(4) var<storage, read> dy_floats: array<f32>;
@group(0) @binding(5) var<storage, read> xs: array<f32>;

// sum for tap (a, b) at a * 8 + b
var<private> acc: array<f32, 56>;

fn mask(v: vec4<f32>, live: vec4<bool>) -> vec4<f32> {
    return select(vec4<f32>(0.0), v, live);
}

// Adds dy row `d` times the input row through kernel row `a` (nothing where a >= KH).
fn add_row(a: u32, d: vec4<f32>, row: Row, live: vec4<bool>) {
    if a >= KH {
        return;
    }
    let t = tap_shift();
    acc[a * 8u + 0u] += dot(d, mask(window(row, t + 0u), live));
    if KW > 1u {
        acc[a * 8u + 1u] += dot(d, mask(window(row, t + 1u), live));
    }
    if KW > 2u {
        acc[a * 8u + 2u] += dot(d, mask(window(row, t + 2u), live));
    }
    if KW > 3u {
        acc[a * 8u + 3u] += dot(d, mask(window(row, t + 3u), live));
    }
    if KW > 4u {
        acc[a * 8u + 4u] += dot(d, mask(window(row, t + 4u), live));
    }
    if KW > 5u {
        acc[a * 8u + 5u] += dot(d, mask(window(row, t + 5u), live));
    }
    if KW > 6u {
        acc[a * 8u + 6u] += dot(d, mask(window(row, t + 6u), live));
    }
    if KW > 7u {
        acc[a * 8u + 7u] += dot(d, mask(window(row, t + 7u), live));
    }
}

// Where tap t's sum goes in the weight (strict convolution flips the kernel).
fn weight_index(t: u32) -> u32 {
    return select(t, g.taps - 1u - t, g.s.flip != 0u);
}

fn put_row(a: u32, ch: u32, slice: u32, slices: u32) {
    if a >= KH {
        return;
    }
    partials[(ch * g.taps + weight_index(a * KW + 0u)) * slices + slice] = acc[a * 8u + 0u];
    if KW > 1u {
        partials[(ch * g.taps + weight_index(a * KW + 1u)) * slices + slice] = acc[a * 8u + 1u];
    }
    if KW > 2u {
        partials[(ch * g.taps + weight_index(a * KW + 2u)) * slices + slice] = acc[a * 8u + 2u];
    }
    if KW > 3u {
        partials[(ch * g.taps + weight_index(a * KW + 3u)) * slices + slice] = acc[a * 8u + 3u];
    }
    if KW > 4u {
        partials[(ch * g.taps + weight_index(a * KW + 4u)) * slices + slice] = acc[a * 8u + 4u];
    }
    if KW > 5u {
        partials[(ch * g.taps + weight_index(a * KW + 5u)) * slices + slice] = acc[a * 8u + 5u];
    }
    if KW > 6u {
        partials[(ch * g.taps + weight_index(a * KW + 6u)) * slices + slice] = acc[a * 8u + 6u];
    }
    if KW > 7u {
        partials[(ch * g.taps + weight_index(a * KW + 7u)) * slices + slice] = acc[a * 8u + 7u];
    }
}

@compute @workgroup_size(64)
fn conv2d_weight_grad_planes(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let strips = (g.s.ow + 3u) / 4u;
    let strip = gid.x;
    if strip >= strips {
        return;
    }
    let plane = g.base + gid.z;
    let ch = plane % g.s.c;
    let n = plane / g.s.c;
    let row_slices = (g.s.oh + g.slice_rows - 1u) / g.slice_rows;
    let slices = g.s.n * row_slices * strips;
    let slice = (n * row_slices + gid.y) * strips + strip;
    let ox0 = strip * 4u;
    let live = vec4<bool>(ox0 < g.s.ow, ox0 + 1u < g.s.ow, ox0 + 2u < g.s.ow, ox0 + 3u < g.s.ow);
    let row4 = g.ow4 / 4u;
    let oy1 = min((gid.y + 1u) * g.slice_rows, g.s.oh);
    for (var oy = gid.y * g.slice_rows; oy < oy1; oy++) {
        var d: vec4<f32>;
        if FLOAT_DY {
            // columns past the row's end are masked out below; read within the buffer
            let at = (plane * g.s.oh + oy) * g.s.ow + ox0;
            let last = (plane * g.s.oh + oy) * g.s.ow + g.s.ow - 1u;
            d = vec4<f32>(
                dy_floats[at],
                dy_floats[min(at + 1u, last)],
                dy_floats[min(at + 2u, last)],
                dy_floats[min(at + 3u, last)],
            );
        } else {
            d = dy[(plane * g.s.oh + oy) * row4 + strip];
        }
        // padded input row oy + a meets this output row through kernel row a (rows past KH
        // are not read)
        add_row(0u, d, input_row(0u, plane, oy, strip), live);
        if KH > 1u {
            add_row(1u, d, input_row(1u, plane, oy, strip), live);
        }
        if KH > 2u {
            add_row(2u, d, input_row(2u, plane, oy, strip), live);
        }
        if KH > 3u {
            add_row(3u, d, input_row(3u, plane, oy, strip), live);
        }
        if KH > 4u {
            add_row(4u, d, input_row(4u, plane, oy, strip), live);
        }
        if KH > 5u {
            add_row(5u, d, input_row(5u, plane, oy, strip), live);
        }
        if KH > 6u {
            add_row(6u, d, input_row(6u, plane, oy, strip), live);
        }
    }
    put_row(0u, ch, slice, slices);
    put_row(1u, ch, slice, slices);
    put_row(2u, ch, slice, slices);
    put_row(3u, ch, slice, slices);
    put_row(4u, ch, slice, slices);
    put_row(5u, ch, slice, slices);
    put_row(6u, ch, slice, slices);
}
