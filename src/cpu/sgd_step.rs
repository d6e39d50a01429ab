/// One SGD step as `torch.optim.SGD` takes it (no dampening, no Nesterov):
/// `d = g + weight_decay * w; v = momentum * v + d; w -= lr * (if momentum > 0 { v } else { d })`.
/// `velocity` starts at zeros, which makes the first step PyTorch's `v = d`.
pub fn sgd_step(
    weight: &mut [f32],
    grad: &[f32],
    velocity: &mut [f32],
    lr: f32,
    momentum: f32,
    weight_decay: f32,
) {
    for ((w, &g), v) in weight.iter_mut().zip(grad).zip(velocity.iter_mut()) {
        let d = g + weight_decay * *w;
        let step = if momentum != 0.0 {
            *v = momentum * *v + d;
            *v
        } else {
            d
        };
        *w -= lr * step;
    }
}
