// Writes zeros to a phase of a strided layer's input gradient that no kernel tap reaches (see
// src/kernels/phases.rs): rows FY, FY + SY, ... (ROWS of them) and columns FX, FX + SX, ...
// (COLS) of every plane of gx [N, C, H, W]. One invocation per element of the phase.
// (conv2d_common.wgsl, with `Params`, is prepended to this file; it reads `base`.)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;

override PLANES: u32;
override H: u32;
override W: u32;
override FY: u32;
override FX: u32;
override SY: u32;
override SX: u32;
override ROWS: u32;
override COLS: u32;

@compute @workgroup_size(64, 1, 1)
fn conv2d_zero_phase(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = p.base + (wid.y * nwg.x + wid.x) * 64u + lid;
    if i >= PLANES * ROWS * COLS {
        return;
    }
    let col = i % COLS;
    let row = (i / COLS) % ROWS;
    let plane = i / (COLS * ROWS);
    gx[(plane * H + FY + row * SY) * W + FX + col * SX] = 0.0;
}
