// One whole training step of a small layer in one workgroup and one dispatch: the forward pass,
// the squared-error loss (before the update, as the chapter prints it) and its gradient, the
// weight and bias gradients, and the SGD update (torch.optim.SGD, as sgd_step.wgsl). For layers
// small enough that a step's five dispatches would cost more than its arithmetic: the planner
// takes it only where the output fits `grad_y` and the whole step keeps to the loop budget.
// The sums run in the direct kernels' order; phases are separated by workgroup barriers.
// (conv2d_common.wgsl, with `Shape` and `pad_source`, is prepended to this file.)

// Keep in sync with `StepParams` in src/kernels/train_step_small.rs.
struct StepParams {
    s: Shape,
    has_bias: u32, outputs: u32, weights: u32, x_len: u32,
    // offsets into `state` of the bias, the weight's velocity and the bias's velocity
    bias_at: u32, vw_at: u32, vb_at: u32, _pad0: u32,
    scale: f32, lr: f32, momentum: f32, weight_decay: f32,
}

@group(0) @binding(0) var<uniform> p: StepParams;
// the input (x_len floats), then the target (outputs floats)
@group(0) @binding(1) var<storage, read> data: array<f32>;
// the weight, the bias, the weight's velocity, the bias's velocity
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;

const WORKGROUP_SIZE: u32 = 64u;
// `MAX_OUTPUTS` in src/kernels/train_step_small.rs; src/kernels/spec.rs's tests hold them equal.
const MAX_OUTPUTS: u32 = 2048u;

var<workgroup> grad_y: array<f32, MAX_OUTPUTS>;
var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

// SGD on the parameter at `at` with its velocity at `vat`.
fn sgd(at: u32, vat: u32, g: f32) {
    let d = g + p.weight_decay * state[at];
    var step = d;
    if p.momentum != 0.0 {
        let v = p.momentum * state[vat] + d;
        state[vat] = v;
        step = v;
    }
    state[at] = state[at] - p.lr * step;
}

@compute @workgroup_size(64)
fn train_step_small(@builtin(local_invocation_index) lid: u32) {
    let h = i32(p.s.h);
    let w = i32(p.s.w);

    // 1. forward, the loss's gradient into workgroup memory, this invocation's loss terms
    var loss_acc = 0.0;
    for (var idx = lid; idx < p.outputs; idx += WORKGROUP_SIZE) {
        let ox = idx % p.s.ow;
        var t = idx / p.s.ow;
        let oy = t % p.s.oh;
        t = t / p.s.oh;
        let o = t % p.s.oc;
        let n = t / p.s.oc;
        let grp = o / p.s.ocpg;
        var acc = 0.0;
        for (var ci = 0u; ci < p.s.cpg; ci++) {
            let x_plane = (n * p.s.c + grp * p.s.cpg + ci) * p.s.h;
            let w_plane = (o * p.s.cpg + ci) * p.s.kh;
            for (var a = 0u; a < p.s.kh; a++) {
                let sy = pad_source(i32(oy * p.s.stride_h + a * p.s.dil_h) - i32(p.s.pad_top), h, p.s.pad_mode);
                if sy < 0 {
                    continue;
                }
                let ta = select(a, p.s.kh - 1u - a, p.s.flip != 0u);
                let x_row = (x_plane + u32(sy)) * p.s.w;
                let w_row = (w_plane + ta) * p.s.kw;
                for (var b = 0u; b < p.s.kw; b++) {
                    let sx = pad_source(i32(ox * p.s.stride_w + b * p.s.dil_w) - i32(p.s.pad_left), w, p.s.pad_mode);
                    if sx < 0 {
                        continue;
                    }
                    let tb = select(b, p.s.kw - 1u - b, p.s.flip != 0u);
                    acc = fma(data[x_row + u32(sx)], state[w_row + tb], acc);
                }
            }
        }
        if p.has_bias != 0u {
            acc += state[p.bias_at + o];
        }
        let d = acc - data[p.x_len + idx];
        grad_y[idx] = 2.0 * p.scale * d;
        loss_acc = fma(d, d, loss_acc);
    }
    partial[lid] = loss_acc;
    workgroupBarrier();
    for (var half = WORKGROUP_SIZE / 2u; half > 0u; half = half / 2u) {
        if lid < half {
            partial[lid] = partial[lid] + partial[lid + half];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        loss[0] = p.scale * partial[0];
    }
    // The barriers above also order every read of the weight before any update below.

    // 2. each weight's gradient over r = (n, oy, ox), then its update
    let len = p.s.n * p.s.oh * p.s.ow;
    for (var e = lid; e < p.weights; e += WORKGROUP_SIZE) {
        let kb = e % p.s.kw;
        var t = e / p.s.kw;
        let ka = t % p.s.kh;
        t = t / p.s.kh;
        let ci = t % p.s.cpg;
        let o = t / p.s.cpg;
        let a = select(ka, p.s.kh - 1u - ka, p.s.flip != 0u);
        let b = select(kb, p.s.kw - 1u - kb, p.s.flip != 0u);
        let c = (o / p.s.ocpg) * p.s.cpg + ci;
        var g = 0.0;
        for (var r = 0u; r < len; r++) {
            let ox = r % p.s.ow;
            let t2 = r / p.s.ow;
            let oy = t2 % p.s.oh;
            let n = t2 / p.s.oh;
            let sy = pad_source(i32(oy * p.s.stride_h + a * p.s.dil_h) - i32(p.s.pad_top), h, p.s.pad_mode);
            let sx = pad_source(i32(ox * p.s.stride_w + b * p.s.dil_w) - i32(p.s.pad_left), w, p.s.pad_mode);
            if sy >= 0 && sx >= 0 {
                let xv = data[((n * p.s.c + c) * p.s.h + u32(sy)) * p.s.w + u32(sx)];
                g = fma(xv, grad_y[((n * p.s.oc + o) * p.s.oh + oy) * p.s.ow + ox], g);
            }
        }
        sgd(e, p.vw_at + e, g);
    }

    // 3. each bias's gradient, then its update
    if p.has_bias != 0u {
        let plane = p.s.oh * p.s.ow;
        for (var o = lid; o < p.s.oc; o += WORKGROUP_SIZE) {
            var g = 0.0;
            for (var r = 0u; r < len; r++) {
                g += grad_y[((r / plane) * p.s.oc + o) * plane + r % plane];
            }
            sgd(p.bias_at + o, p.vb_at + o, g);
        }
    }
}
