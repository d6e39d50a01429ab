// One SGD step, as torch.optim.SGD without dampening or Nesterov:
// d = g + weight_decay * w; v = momentum * v + d; w -= lr * (momentum != 0 ? v : d).

// Keep in sync with `SgdParams` in src/kernels/sgd_step.rs.
struct Params {
    count: u32,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> velocity: array<f32>;

const WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(64)
fn sgd_step(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * WORKGROUP_SIZE + lid;
    if i >= p.count {
        return;
    }
    let d = grad[i] + p.weight_decay * weight[i];
    var step = d;
    if p.momentum != 0.0 {
        let v = p.momentum * velocity[i] + d;
        velocity[i] = v;
        step = v;
    }
    weight[i] = weight[i] - p.lr * step;
}
