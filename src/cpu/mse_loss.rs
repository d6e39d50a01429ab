use super::Reference;

/// Squared-error loss `scale * sum (pred - target)^2` (the chapter's loss has `scale = 1`) and
/// its gradient `2 * scale * (pred - target)`. Returns `(loss, gradient)`.
pub fn mse_loss(pred: &[f32], target: &[f32], scale: f32) -> (Reference, Reference) {
    let s = scale as f64;
    let mut loss = 0f64;
    let mut grad = Vec::with_capacity(pred.len());
    let mut grad_mag = Vec::with_capacity(pred.len());
    for (&p, &t) in pred.iter().zip(target) {
        let d = p as f64 - t as f64;
        loss += s * d * d;
        grad.push(2.0 * s * d);
        grad_mag.push((2.0 * s * d).abs());
    }
    let l = Reference {
        shape: vec![1],
        values: vec![loss],
        magnitude: vec![loss.abs()],
        terms: 2 * pred.len(),
    };
    let g = Reference {
        shape: vec![pred.len()],
        values: grad,
        magnitude: grad_mag,
        terms: 3,
    };
    (l, g)
}
