use super::Reference;
use crate::options::Conv2dGeometry;

/// Bias gradient of `sum(y * gy)`: `gb[o] = sum_{n,i,j} gy[n,o,i,j]`.
pub fn conv2d_bias_grad(g: &Conv2dGeometry, gy: &[f32]) -> Reference {
    let plane = g.oh * g.ow;
    let mut values = vec![0f64; g.oc];
    let mut magnitude = vec![0f64; g.oc];
    for n in 0..g.n {
        for o in 0..g.oc {
            let start = (n * g.oc + o) * plane;
            for &v in &gy[start..start + plane] {
                values[o] += v as f64;
                magnitude[o] += (v as f64).abs();
            }
        }
    }
    Reference {
        shape: vec![g.oc],
        values,
        magnitude,
        terms: g.n * plane,
    }
}
