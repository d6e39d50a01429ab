// Forward 2-D convolution of single planes (one input and one output channel per group:
// single-channel images, depthwise layers) at stride 1 and dilation 1, over the padded input
// (copy 0 of conv2d_gemm_common.wgsl, or the input itself, as vec4s or as floats; rows through
// conv2d_planes_common.wgsl). The kernel size is fixed per
// pipeline by the override constants KH and KW (at most 7 x 8): the code below is written out
// for the largest size, and the parts past KH and KW fold away, so every weight is a
// constant-offset read of the `plane` uniform block (one dispatch per output channel, its
// weights at a dynamic offset). (Loops over KH and KW are not unrolled by lavapipe's compiler,
// and then each weight read is a per-lane gather.) Each invocation computes ROWS output rows x 4
// neighbouring pixels: it loads each of the ROWS + KH - 1 input rows it needs once, as up to 3
// aligned vec4s, and takes every tap's 4 values from those registers. Dispatched as a 3-D grid
// (x: blocks of 4 output columns, y: blocks of ROWS output rows, z: batch).
//
// With PER_LANE_WEIGHTS (layers with many channels, where a dispatch per channel would cost
// more than it saves), one dispatch covers every channel (z: batch x channels) and each
// invocation loads its channel's weights once, as vec4s, from the same blocks bound as storage.

override KH: u32 = 3u;
override KW: u32 = 3u;
override PER_LANE_WEIGHTS: bool = false;
// Output rows that are not whole vec4s: store floats into `out_floats` (the output itself)
// instead of vec4s into `out`, sparing a copy pass.
override FLOAT_OUT: bool = false;
// Read the unpadded input itself as vec4s (zero padding, rows of whole vec4s, pad_left at most
// 4 and KW at most 5 + pad_left) instead of copy 0, sparing the copy pass; the value is
// pad_left. Above 4: read copy 0 (or floats, with FLOAT_IN).
override DIRECT_PAD_LEFT: u32 = 255u;
// Read the unpadded input itself as floats through any padding (`xs`; see
// conv2d_planes_common.wgsl).
override FLOAT_IN: bool = false;

const ROWS: u32 = 4u;

// One output channel's weights (keep in sync with `PLANE_BYTES` in src/kernels/conv2d_forward_planes.rs).
struct Plane {
    // x: the channel
    head: vec4<u32>,
    weights: array<vec4<f32>, 15>,
}

@group(0) @binding(0) var<uniform> g: Gemm;
@group(0) @binding(1) var<uniform> plane: Plane;
@group(0) @binding(2) var<storage, read> copies: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
// the blocks again, as storage (PER_LANE_WEIGHTS)
@group(0) @binding(5) var<storage, read> blocks: array<vec4<f32>>;
// the output as floats (FLOAT_OUT; `out` is then a placeholder, and the other way round)
@group(0) @binding(6) var<storage, read_write> out_floats: array<f32>;
// the input as floats (FLOAT_IN)
@group(0) @binding(7) var<storage, read> xs: array<f32>;

// this invocation's weights (PER_LANE_WEIGHTS)
var<private> lane_weights: array<vec4<f32>, 15>;

fn weight(t: u32) -> f32 {
    if PER_LANE_WEIGHTS {
        return lane_weights[t / 4u][t % 4u];
    }
    return plane.weights[t / 4u][t % 4u];
}

// Loads weights 4i .. 4i + 3 of channel `ch` where the kernel has them.
fn load_weights(ch: u32, i: u32) {
    if KH * KW > 4u * i {
        lane_weights[i] = blocks[ch * 16u + 1u + i];
    }
}

// acc plus kernel row `a` applied to the input row (nothing where a >= KH).
fn feed(a: u32, row: Row, acc: vec4<f32>) -> vec4<f32> {
    if a >= KH {
        return acc;
    }
    var r = fma(vec4<f32>(weight(a * KW)), window(row, tap_shift() + 0u), acc);
    if KW > 1u {
        r = fma(vec4<f32>(weight(a * KW + 1u)), window(row, tap_shift() + 1u), r);
    }
    if KW > 2u {
        r = fma(vec4<f32>(weight(a * KW + 2u)), window(row, tap_shift() + 2u), r);
    }
    if KW > 3u {
        r = fma(vec4<f32>(weight(a * KW + 3u)), window(row, tap_shift() + 3u), r);
    }
    if KW > 4u {
        r = fma(vec4<f32>(weight(a * KW + 4u)), window(row, tap_shift() + 4u), r);
    }
    if KW > 5u {
        r = fma(vec4<f32>(weight(a * KW + 5u)), window(row, tap_shift() + 5u), r);
    }
    if KW > 6u {
        r = fma(vec4<f32>(weight(a * KW + 6u)), window(row, tap_shift() + 6u), r);
    }
    if KW > 7u {
        r = fma(vec4<f32>(weight(a * KW + 7u)), window(row, tap_shift() + 7u), r);
    }
    return r;
}

@compute @workgroup_size(8, 8, 1)
fn conv2d_forward_planes(@builtin(global_invocation_id) gid: vec3<u32>) {
    let oy0 = gid.y * ROWS;
    if gid.x * 4u >= g.s.ow || oy0 >= g.s.oh {
        return;
    }
    var n = g.base + gid.z;
    var ch = plane.head.x;
    if PER_LANE_WEIGHTS {
        ch = n % g.s.oc;
        n = n / g.s.oc;
        load_weights(ch, 0u);
        load_weights(ch, 1u);
        load_weights(ch, 2u);
        load_weights(ch, 3u);
        load_weights(ch, 4u);
        load_weights(ch, 5u);
        load_weights(ch, 6u);
        load_weights(ch, 7u);
        load_weights(ch, 8u);
        load_weights(ch, 9u);
        load_weights(ch, 10u);
        load_weights(ch, 11u);
        load_weights(ch, 12u);
        load_weights(ch, 13u);
        load_weights(ch, 14u);
    }
    // one input channel per group: output channel ch reads its group's
    let plane = n * g.s.c + ch / g.s.ocpg;
    var start = 0.0;
    if g.has_bias != 0u {
        start = bias[ch];
    }
    var acc0 = vec4<f32>(start);
    var acc1 = acc0;
    var acc2 = acc0;
    var acc3 = acc0;
    // input row r feeds output row i = r - a through kernel row a
    {
        let row = input_row(0u, plane, oy0, gid.x);
        acc0 = feed(0u, row, acc0);
    }
    {
        let row = input_row(1u, plane, oy0, gid.x);
        acc1 = feed(0u, row, acc1);
        acc0 = feed(1u, row, acc0);
    }
    {
        let row = input_row(2u, plane, oy0, gid.x);
        acc2 = feed(0u, row, acc2);
        acc1 = feed(1u, row, acc1);
        acc0 = feed(2u, row, acc0);
    }
    {
        let row = input_row(3u, plane, oy0, gid.x);
        acc3 = feed(0u, row, acc3);
        acc2 = feed(1u, row, acc2);
        acc1 = feed(2u, row, acc1);
        acc0 = feed(3u, row, acc0);
    }
    if 4u < ROWS + KH - 1u {
        let row = input_row(4u, plane, oy0, gid.x);
        acc3 = feed(1u, row, acc3);
        acc2 = feed(2u, row, acc2);
        acc1 = feed(3u, row, acc1);
        acc0 = feed(4u, row, acc0);
    }
    if 5u < ROWS + KH - 1u {
        let row = input_row(5u, plane, oy0, gid.x);
        acc3 = feed(2u, row, acc3);
        acc2 = feed(3u, row, acc2);
        acc1 = feed(4u, row, acc1);
        acc0 = feed(5u, row, acc0);
    }
    if 6u < ROWS + KH - 1u {
        let row = input_row(6u, plane, oy0, gid.x);
        acc3 = feed(3u, row, acc3);
        acc2 = feed(4u, row, acc2);
        acc1 = feed(5u, row, acc1);
        acc0 = feed(6u, row, acc0);
    }
    if 7u < ROWS + KH - 1u {
        let row = input_row(7u, plane, oy0, gid.x);
        acc3 = feed(4u, row, acc3);
        acc2 = feed(5u, row, acc2);
        acc1 = feed(6u, row, acc1);
    }
    if 8u < ROWS + KH - 1u {
        let row = input_row(8u, plane, oy0, gid.x);
        acc3 = feed(5u, row, acc3);
        acc2 = feed(6u, row, acc2);
    }
    if 9u < ROWS + KH - 1u {
        let row = input_row(9u, plane, oy0, gid.x);
        acc3 = feed(6u, row, acc3);
    }
    let accs = array<vec4<f32>, ROWS>(acc0, acc1, acc2, acc3);
    if FLOAT_OUT {
        let ox0 = gid.x * 4u;
        let o = ((n * g.s.oc + ch) * g.s.oh + oy0) * g.s.ow + ox0;
        for (var i = 0u; i < ROWS; i++) {
            if oy0 + i < g.s.oh {
                for (var j = 0u; j < 4u; j++) {
                    if ox0 + j < g.s.ow {
                        out_floats[o + i * g.s.ow + j] = accs[i][j];
                    }
                }
            }
        }
        return;
    }
    let row4 = g.ow4 / 4u;
    let o = ((n * g.s.oc + ch) * g.s.oh + oy0) * row4 + gid.x;
    for (var i = 0u; i < ROWS; i++) {
        if oy0 + i < g.s.oh {
            out[o + i * row4] = accs[i];
        }
    }
}
