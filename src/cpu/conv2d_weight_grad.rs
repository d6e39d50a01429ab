use super::Reference;
use crate::options::Conv2dGeometry;

/// Weight gradient of `sum(y * gy)`:
/// `gw[o,c,tap(a,b)] = sum_{n,i,j} gy[n,o,i,j] * xpad[n, g*C/G + c, i*sh + a*dh, j*sw + b*dw]`.
pub fn conv2d_weight_grad(g: &Conv2dGeometry, x: &[f32], gy: &[f32]) -> Reference {
    let [n_, _c, h, wd] = g.input_shape();
    let (cpg, ocpg) = (g.cpg(), g.ocpg());
    let len: usize = g.weight_shape().iter().product();
    let mut values = vec![0f64; len];
    let mut magnitude = vec![0f64; len];
    for o in 0..g.oc {
        let grp = o / ocpg;
        for ci in 0..cpg {
            let c = grp * cpg + ci;
            for a in 0..g.kh {
                for b in 0..g.kw {
                    let (ta, tb) = g.tap(a, b);
                    let mut acc = 0f64;
                    let mut mag = 0f64;
                    for n in 0..n_ {
                        for i in 0..g.oh {
                            let py =
                                (i * g.stride.h + a * g.dilation.h) as isize - g.pad_top as isize;
                            let Some(sy) = g.padding_mode.source(py, h) else {
                                continue;
                            };
                            for j in 0..g.ow {
                                let px = (j * g.stride.w + b * g.dilation.w) as isize
                                    - g.pad_left as isize;
                                let Some(sx) = g.padding_mode.source(px, wd) else {
                                    continue;
                                };
                                let xv = x[((n * g.c + c) * h + sy) * wd + sx] as f64;
                                let gv = gy[((n * g.oc + o) * g.oh + i) * g.ow + j] as f64;
                                acc += xv * gv;
                                mag += (xv * gv).abs();
                            }
                        }
                    }
                    let k = ((o * cpg + ci) * g.kh + ta) * g.kw + tb;
                    values[k] = acc;
                    magnitude[k] = mag;
                }
            }
        }
    }
    Reference {
        shape: g.weight_shape().to_vec(),
        values,
        magnitude,
        terms: n_ * g.oh * g.ow,
    }
}

/// One element of [`conv2d_weight_grad`] (flat weight index `i`): `(value, magnitude, terms)`.
pub fn conv2d_weight_grad_at(
    g: &Conv2dGeometry,
    x: &[f32],
    gy: &[f32],
    i: usize,
) -> (f64, f64, usize) {
    let (kb, t) = (i % g.kw, i / g.kw);
    let (ka, t) = (t % g.kh, t / g.kh);
    let (ci, o) = (t % g.cpg(), t / g.cpg());
    let (a, b) = g.tap(ka, kb);
    let c = (o / g.ocpg()) * g.cpg() + ci;
    let (mut acc, mut mag) = (0f64, 0f64);
    for n in 0..g.n {
        for oy in 0..g.oh {
            let py = (oy * g.stride.h + a * g.dilation.h) as isize - g.pad_top as isize;
            let Some(sy) = g.padding_mode.source(py, g.h) else {
                continue;
            };
            for ox in 0..g.ow {
                let px = (ox * g.stride.w + b * g.dilation.w) as isize - g.pad_left as isize;
                let Some(sx) = g.padding_mode.source(px, g.w) else {
                    continue;
                };
                let v = x[((n * g.c + c) * g.h + sy) * g.w + sx] as f64
                    * gy[((n * g.oc + o) * g.oh + oy) * g.ow + ox] as f64;
                acc += v;
                mag += v.abs();
            }
        }
    }
    (acc, mag, g.n * g.oh * g.ow)
}
