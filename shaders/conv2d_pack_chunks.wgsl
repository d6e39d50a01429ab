// Writes the uniform blocks ("chunks") of conv2d_forward_gemm: for each group, block of 8
// output channels and run of CHUNK_TAPS taps, a `Chunk` (see conv2d_gemm_common.wgsl) at a
// stride of `CHUNK_WORDS` words. Chunk r = (group * ocb + block) * chunks + run. Strict
// convolution flips the kernel here, and a transposed weight (input gradients) is read
// across. One invocation per word.

@group(0) @binding(0) var<uniform> g: Gemm;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> chunks: array<u32>;

// Words per chunk: `Chunk` padded to the 256-byte uniform offset alignment (keep in sync with
// `CHUNK_BYTES` in src/kernels/conv2d_forward_gemm.rs).
const CHUNK_WORDS: u32 = 640u;

@compute @workgroup_size(64)
fn conv2d_pack_chunks(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let total = g.s.groups * g.ocb * g.chunks * CHUNK_WORDS;
    if i >= total {
        return;
    }
    let word = i % CHUNK_WORDS;
    let r = i / CHUNK_WORDS;
    let run = r % g.chunks;
    let block = (r / g.chunks) % g.ocb;
    let grp = r / (g.chunks * g.ocb);
    let first_tap = run * CHUNK_TAPS;
    let first_oc = block * 8u;
    var v = 0u;
    if word < 4u {
        switch word {
            case 0u: { v = min(CHUNK_TAPS, g.taps - first_tap); }
            case 1u: { v = u32(run == 0u); }
            case 2u: { v = grp * g.s.ocpg + first_oc; }
            default: { v = min(8u, g.s.ocpg - first_oc); }
        }
    } else if word < 4u + CHUNK_TAPS {
        let k = first_tap + word - 4u;
        if k < g.taps {
            let window = g.s.kh * g.s.kw;
            let ci = k / window;
            let a = (k % window) / g.s.kw;
            let b = k % g.s.kw;
            // column b * dil_w = q * stride_w + r of the padded row is column q of copy r * 4 + t
            let shift = b * g.s.dil_w;
            let q = shift / g.s.stride_w;
            let t = q % 4u;
            let slot = copy_slot((shift % g.s.stride_w) * 4u + t);
            let plane = grp * g.s.cpg + ci;
            v = (slot * g.copy_len + (plane * g.hp + a * g.s.dil_h) * g.wq + q - t) / 4u;
        } else {
            // a padding tap (zero weight) reads zeros, so that 0 * inf cannot make a NaN
            v = g.zero_offset;
        }
    } else if word < 4u + CHUNK_TAPS + CHUNK_TAPS * 8u {
        let t = (word - 4u - CHUNK_TAPS) / 8u;
        let j = (word - 4u - CHUNK_TAPS) % 8u;
        let k = first_tap + t;
        if k < g.taps && first_oc + j < g.s.ocpg {
            var kk = k;
            if g.s.flip != 0u {
                let window = g.s.kh * g.s.kw;
                kk = (k / window) * window + (window - 1u - k % window);
            }
            let o = first_oc + j;
            var at = (grp * g.s.ocpg + o) * g.taps + kk;
            if g.transposed != 0u {
                // the weight is [groups * cpg, ocpg, KH, KW]: swap the channel roles
                let window = g.s.kh * g.s.kw;
                at = ((grp * g.s.cpg + kk / window) * g.s.ocpg + o) * window + kk % window;
            }
            v = bitcast<u32>(weight[at]);
        }
    }
    chunks[i] = v;
}
