// The input gradient of a strided layer with few input channels per group (the GPU family), by
// phases: the rows iy with (iy + PT) % SH == ry and the columns ix with (ix + PL) % SW == rx
// receive only the kernel rows a = ry, ry + SH, ... and columns b = rx, rx + SW, ... (dilation
// 1), so each phase (ry, rx) is a dense stride-1 correlation of the output gradient with that
// sub-kernel, and no inserted zero is multiplied. One invocation computes PX = 8 consecutive
// columns of one row of its phase for all CPG (<= 4) input channels of its group (8 x CPG
// sums); a workgroup is one phase of one image and group, so the weights it reads are the same
// for all its lanes.
//
// Grid: x runs of 64 (row, column block) items of the phase (from `base`), y phases
// (ry * SW + rx), z images x groups. The host cuts the output channels into pieces (lo0..hi0)
// where the loop budget needs it, each adding to the last.
// (conv2d_common.wgsl, with `Params`, and conv2d_layer_common.wgsl, with the layer's shape, are
// prepended to this file.)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> grad_output: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad_input: array<f32>;

// (the layer's shape: the override constants of conv2d_layer_common.wgsl)

// Columns per invocation (keep in sync with src/kernels/conv2d_input_grad_phase.rs).
const PX: u32 = 8u;

// The first row (column) of an axis of length n with padding `pad` and stride s in phase r, and
// how many rows (columns) the phase has.
fn first_of(r: u32, s: u32, pad: u32) -> u32 {
    return (r + s - pad % s) % s;
}

fn count_of(r: u32, s: u32, pad: u32, n: u32) -> u32 {
    let f = first_of(r, s, pad);
    return select(0u, (n - f + s - 1u) / s, f < n);
}

// The output gradient at row `row` (an offset, or past the end where the row is outside) and
// column `ox` (0 outside).
fn gy(row: u32, live_row: bool, ox: i32) -> f32 {
    let live = live_row & (u32(ox) < OW);
    return select(0.0, grad_output[select(0u, row + u32(ox), live)], live);
}

fn gy4(row: u32, live_row: bool, ox: i32) -> vec4<f32> {
    return vec4<f32>(gy(row, live_row, ox), gy(row, live_row, ox + 1), gy(row, live_row, ox + 2),
                     gy(row, live_row, ox + 3));
}

@compute @workgroup_size(64, 1, 1)
fn conv2d_input_grad_phase(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let ry = wid.y / SW;
    let rx = wid.y % SW;
    let img = wid.z / (C / CPG);
    let grp = wid.z % (C / CPG);
    let rows = count_of(ry, SH, PT, H);
    let cols = count_of(rx, SW, PL, W);
    let blocks = (cols + PX - 1u) / PX;
    let item = (p.base + wid.x) * 64u + lid;
    if item >= rows * blocks {
        return;
    }
    let t = item / blocks;
    let u0 = (item % blocks) * PX;
    let iy = first_of(ry, SH, PT) + SH * t;
    let ix0 = first_of(rx, SW, PL) + SW * u0;

    // 8 columns x up to 4 channels: channel c's columns in acc[2c] (0..3) and acc[2c + 1] (4..7)
    var acc: array<vec4<f32>, 8>;
    let taps = KH * KW;
    for (var o = p.lo0; o < p.hi0; o++) {
        let oc = grp * OCPG + o;
        for (var a = ry; a < KH; a += SH) {
            // the output row this kernel row reads (exact: iy + PT - a is a multiple of SH)
            let dy = i32(iy + PT) - i32(a);
            let oy = dy / i32(SH);
            let live_row = (dy >= 0) & (u32(oy) < OH);
            let row = ((img * OC + oc) * OH + u32(max(oy, 0))) * OW;
            for (var b = rx; b < KW; b += SW) {
                // columns ix0 + SW j read output columns ox0 + j
                let ox0 = (i32(ix0 + PL) - i32(b)) / i32(SW);
                let g0 = gy4(row, live_row, ox0);
                let g1 = gy4(row, live_row, ox0 + 4);
                let w_at = (oc * CPG) * taps + a * KW + b;
                let w0 = weight[w_at];
                acc[0] = fma(vec4<f32>(w0), g0, acc[0]);
                acc[1] = fma(vec4<f32>(w0), g1, acc[1]);
                if CPG > 1u {
                    let w1 = weight[w_at + taps];
                    acc[2] = fma(vec4<f32>(w1), g0, acc[2]);
                    acc[3] = fma(vec4<f32>(w1), g1, acc[3]);
                }
                if CPG > 2u {
                    let w2 = weight[w_at + 2u * taps];
                    acc[4] = fma(vec4<f32>(w2), g0, acc[4]);
                    acc[5] = fma(vec4<f32>(w2), g1, acc[5]);
                }
                if CPG > 3u {
                    let w3 = weight[w_at + 3u * taps];
                    acc[6] = fma(vec4<f32>(w3), g0, acc[6]);
                    acc[7] = fma(vec4<f32>(w3), g1, acc[7]);
                }
            }
        }
    }

    store8(img, grp, 0u, iy, ix0, u0, cols, acc[0], acc[1]);
    if CPG > 1u {
        store8(img, grp, 1u, iy, ix0, u0, cols, acc[2], acc[3]);
    }
    if CPG > 2u {
        store8(img, grp, 2u, iy, ix0, u0, cols, acc[4], acc[5]);
    }
    if CPG > 3u {
        store8(img, grp, 3u, iy, ix0, u0, cols, acc[6], acc[7]);
    }
}

// Stores channel c's 8 columns (those of the phase that exist).
fn store8(img: u32, grp: u32, c: u32, iy: u32, ix0: u32, u0: u32, cols: u32, lo: vec4<f32>,
          hi: vec4<f32>) {
    let base = ((img * C + grp * CPG + c) * H + iy) * W;
    for (var j = 0u; j < PX; j++) {
        if u0 + j >= cols {
            break;
        }
        let at = base + ix0 + SW * j;
        var e = select(hi[j % 4u], lo[j % 4u], j < 4u);
        if p.accumulate != 0u {
            e += grad_input[at];
        }
        grad_input[at] = e;
    }
}
