// Copies the GEMM kernels' output, whose rows are padded to whole vec4s (`ow4` floats), into
// the packed output `[N, OC, OH, OW]`. Dispatched as a 3-D grid (x: columns, y: rows,
// z: planes).

@group(0) @binding(0) var<uniform> g: Gemm;
@group(0) @binding(1) var<storage, read> padded: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(8, 8, 1)
fn conv2d_unpad_output(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x >= g.s.ow || gid.y >= g.s.oh {
        return;
    }
    let row = (g.base + gid.z) * g.s.oh + gid.y;
    y[row * g.s.ow + gid.x] = padded[row * g.ow4 + gid.x];
}
