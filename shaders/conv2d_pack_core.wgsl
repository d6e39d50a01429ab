// Packs a weight for conv2d_core: per group and block of 64 output channels, one tile per K
// step of 16 taps, each [tap][channel] (64 floats a tap), zero past the group's channels and
// past K, so that the core copies its tiles without tests. One invocation per packed float.
// The kernel flip (strict convolution), the transposed read (the input gradient as a forward
// pass: the layer's weight is [groups * CPG, OCPG, LKH, LKW]) and the choice of a phase's taps
// (a strided layer's input gradient: every AS-th row of the layer's kernel from A0, every BS-th
// column from B0) happen here, once, not in the core.
// (conv2d_common.wgsl, with `Params`, is prepended to this file; it reads `base`.)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> packed: array<f32>;

// The layer as the core sees it (keep in sync with `pack_constants` in
// src/kernels/conv2d_core.rs).
override GROUPS: u32;
override CPG: u32;
override OCPG: u32;
// the packed kernel's taps
override KH: u32;
override KW: u32;
// the layer's kernel, and which of its taps packed tap (j, i) reads: row A0 + j * AS, column
// B0 + i * BS, with (j, i) counted from the last tap where REVERSE is set, and the row and
// column counted from the last where MIRROR is set
override LKH: u32;
override LKW: u32;
override A0: u32;
override AS: u32;
override B0: u32;
override BS: u32;
override REVERSE: u32;
override MIRROR: u32;
override TRANSPOSED: u32;

@compute @workgroup_size(64, 1, 1)
fn conv2d_pack_core(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let taps = KH * KW;
    let steps = (CPG * taps + 15u) / 16u;
    let m_blocks = (OCPG + 63u) / 64u;
    let i = p.base + (wid.y * nwg.x + wid.x) * 64u + lid;
    if i >= GROUPS * m_blocks * steps * 1024u {
        return;
    }
    let within = i % 1024u;
    let kk = within / 64u;
    let mm = within % 64u;
    let tile = i / 1024u;
    let s = tile % steps;
    let block = tile / steps;
    let grp = block / m_blocks;
    let m = (block % m_blocks) * 64u + mm;
    let k = s * 16u + kk;
    var v = 0.0;
    if m < OCPG && k < CPG * taps {
        let c = k / taps;
        var r = k % taps;
        if REVERSE != 0u {
            r = taps - 1u - r;
        }
        var a = A0 + (r / KW) * AS;
        var b = B0 + (r % KW) * BS;
        if MIRROR != 0u {
            a = LKH - 1u - a;
            b = LKW - 1u - b;
        }
        let lt = a * LKW + b;
        let ltaps = LKH * LKW;
        if TRANSPOSED != 0u {
            v = weight[((grp * CPG + c) * OCPG + m) * ltaps + lt];
        } else {
            v = weight[((grp * OCPG + m) * CPG + c) * ltaps + lt];
        }
    }
    packed[i] = v;
}
