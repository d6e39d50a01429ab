// Writes the `Plane` uniform blocks of conv2d_forward_planes: for output channel o, at word
// o * PLANE_WORDS, the channel and its KH x KW weights (flipped for strict convolution). One
// invocation per word.

@group(0) @binding(0) var<uniform> g: Gemm;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> planes: array<u32>;

// Words per block: `Plane` (256 bytes, the uniform offset alignment; keep in sync with
// `PLANE_BYTES` in src/kernels/conv2d_forward_planes.rs).
const PLANE_WORDS: u32 = 64u;

@compute @workgroup_size(64)
fn conv2d_pack_planes(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if i >= g.s.oc * PLANE_WORDS {
        return;
    }
    let o = i / PLANE_WORDS;
    let word = i % PLANE_WORDS;
    var v = 0u;
    if word == 0u {
        v = o;
    } else if word >= 4u && word - 4u < g.taps {
        var t = word - 4u;
        if g.s.flip != 0u {
            t = g.taps - 1u - t;
        }
        v = bitcast<u32>(weight[o * g.taps + t]);
    }
    planes[i] = v;
}
