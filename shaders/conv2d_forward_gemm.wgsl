// Forward 2-D convolution as an implicit GEMM (M = output pixels, N = output channels,
// K = C/groups * KH * KW taps). One dispatch adds one chunk: CHUNK_TAPS taps of one block of 8
// output channels, whose weights and tap offsets sit in the `chunk` uniform block. The tap
// calls below are written out, so every uniform read has a constant offset (CPU adapters turn
// those into one scalar load and a broadcast, where a storage read is a per-lane gather).
// Each invocation computes 8 output channels x 4 neighbouring pixels of one output row: per tap
// one aligned vec4 load of the input (from the padded copies, see conv2d_gemm_common.wgsl) and
// 32 multiply-adds. The block's partial sums live in `out` (rows padded to whole vec4s); the
// first chunk starts them from the bias or zero. Dispatched as a 3-D grid (x: blocks of 4
// output columns, y: output rows, z: batch).

@group(0) @binding(0) var<uniform> g: Gemm;
@group(0) @binding(1) var<uniform> chunk: Chunk;
@group(0) @binding(2) var<storage, read> copies: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;

fn tap(t: u32, xb: u32, acc: ptr<function, array<vec4<f32>, 8>>) {
    let xv = copies[xb + chunk.offsets[t / 4u][t % 4u]];
    let wa = chunk.weights[2u * t];
    let wb = chunk.weights[2u * t + 1u];
    (*acc)[0] = fma(vec4<f32>(wa.x), xv, (*acc)[0]);
    (*acc)[1] = fma(vec4<f32>(wa.y), xv, (*acc)[1]);
    (*acc)[2] = fma(vec4<f32>(wa.z), xv, (*acc)[2]);
    (*acc)[3] = fma(vec4<f32>(wa.w), xv, (*acc)[3]);
    (*acc)[4] = fma(vec4<f32>(wb.x), xv, (*acc)[4]);
    (*acc)[5] = fma(vec4<f32>(wb.y), xv, (*acc)[5]);
    (*acc)[6] = fma(vec4<f32>(wb.z), xv, (*acc)[6]);
    (*acc)[7] = fma(vec4<f32>(wb.w), xv, (*acc)[7]);
}

// The starting value of channel `j` of the block: its bias (first chunk), zero, or the partial
// sum so far. Channels past the block's end read nothing.
fn start(j: u32, at: u32) -> vec4<f32> {
    if j >= chunk.head.w {
        return vec4<f32>(0.0);
    }
    if chunk.head.y == 0u {
        return out[at];
    }
    if g.has_bias != 0u {
        return vec4<f32>(bias[chunk.head.z + j]);
    }
    return vec4<f32>(0.0);
}

fn finish(j: u32, at: u32, v: vec4<f32>) {
    if j < chunk.head.w {
        out[at] = v;
    }
}

@compute @workgroup_size(8, 8, 1)
fn conv2d_forward_gemm(@builtin(global_invocation_id) gid: vec3<u32>) {
    let oy = gid.y;
    if gid.x * 4u >= g.s.ow || oy >= g.s.oh {
        return;
    }
    let n = g.base + gid.z;
    let xb = (n * g.s.c * g.hp + oy * g.s.stride_h) * (g.wq / 4u) + gid.x;
    let row4 = g.ow4 / 4u;
    let plane4 = g.s.oh * row4;
    let o0 = ((n * g.s.oc + chunk.head.z) * g.s.oh + oy) * row4 + gid.x;
    var acc = array<vec4<f32>, 8>(
        start(0u, o0),
        start(1u, o0 + plane4),
        start(2u, o0 + 2u * plane4),
        start(3u, o0 + 3u * plane4),
        start(4u, o0 + 4u * plane4),
        start(5u, o0 + 5u * plane4),
        start(6u, o0 + 6u * plane4),
        start(7u, o0 + 7u * plane4),
    );
    tap(0u, xb, &acc);
    tap(1u, xb, &acc);
    tap(2u, xb, &acc);
    tap(3u, xb, &acc);
    tap(4u, xb, &acc);
    tap(5u, xb, &acc);
    tap(6u, xb, &acc);
    tap(7u, xb, &acc);
    tap(8u, xb, &acc);
    tap(9u, xb, &acc);
    tap(10u, xb, &acc);
    tap(11u, xb, &acc);
    tap(12u, xb, &acc);
    tap(13u, xb, &acc);
    tap(14u, xb, &acc);
    tap(15u, xb, &acc);
    tap(16u, xb, &acc);
    tap(17u, xb, &acc);
    tap(18u, xb, &acc);
    tap(19u, xb, &acc);
    tap(20u, xb, &acc);
    tap(21u, xb, &acc);
    tap(22u, xb, &acc);
    tap(23u, xb, &acc);
    tap(24u, xb, &acc);
    tap(25u, xb, &acc);
    tap(26u, xb, &acc);
    tap(27u, xb, &acc);
    tap(28u, xb, &acc);
    tap(29u, xb, &acc);
    tap(30u, xb, &acc);
    tap(31u, xb, &acc);
    tap(32u, xb, &acc);
    tap(33u, xb, &acc);
    tap(34u, xb, &acc);
    tap(35u, xb, &acc);
    tap(36u, xb, &acc);
    tap(37u, xb, &acc);
    tap(38u, xb, &acc);
    tap(39u, xb, &acc);
    tap(40u, xb, &acc);
    tap(41u, xb, &acc);
    tap(42u, xb, &acc);
    tap(43u, xb, &acc);
    tap(44u, xb, &acc);
    tap(45u, xb, &acc);
    tap(46u, xb, &acc);
    tap(47u, xb, &acc);
    tap(48u, xb, &acc);
    tap(49u, xb, &acc);
    tap(50u, xb, &acc);
    tap(51u, xb, &acc);
    tap(52u, xb, &acc);
    tap(53u, xb, &acc);
    tap(54u, xb, &acc);
    tap(55u, xb, &acc);
    tap(56u, xb, &acc);
    tap(57u, xb, &acc);
    tap(58u, xb, &acc);
    tap(59u, xb, &acc);
    tap(60u, xb, &acc);
    tap(61u, xb, &acc);
    tap(62u, xb, &acc);
    tap(63u, xb, &acc);
    finish(0u, o0, acc[0]);
    finish(1u, o0 + plane4, acc[1]);
    finish(2u, o0 + 2u * plane4, acc[2]);
    finish(3u, o0 + 3u * plane4, acc[3]);
    finish(4u, o0 + 4u * plane4, acc[4]);
    finish(5u, o0 + 5u * plane4, acc[5]);
    finish(6u, o0 + 6u * plane4, acc[6]);
    finish(7u, o0 + 7u * plane4, acc[7]);
}
