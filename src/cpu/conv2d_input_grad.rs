use super::Reference;
use crate::options::Conv2dGeometry;

/// Input gradient of `sum(y * gy)`, written as the scatter it is: every product `gy * w` of the
/// forward pass is added to the input pixel the padded position was read from, so reflected,
/// replicated and wrapped border pixels receive the gradient of every copy of them.
pub fn conv2d_input_grad(g: &Conv2dGeometry, w: &[f32], gy: &[f32]) -> Reference {
    let [n_, _c, h, wd] = g.input_shape();
    let (cpg, ocpg) = (g.cpg(), g.ocpg());
    let len: usize = g.input_shape().iter().product();
    let mut values = vec![0f64; len];
    let mut magnitude = vec![0f64; len];
    let mut count = vec![0usize; len];
    for n in 0..n_ {
        for o in 0..g.oc {
            let grp = o / ocpg;
            for i in 0..g.oh {
                for j in 0..g.ow {
                    let gv = gy[((n * g.oc + o) * g.oh + i) * g.ow + j] as f64;
                    for ci in 0..cpg {
                        let c = grp * cpg + ci;
                        for a in 0..g.kh {
                            let py =
                                (i * g.stride.h + a * g.dilation.h) as isize - g.pad_top as isize;
                            let Some(sy) = g.padding_mode.source(py, h) else {
                                continue;
                            };
                            for b in 0..g.kw {
                                let px = (j * g.stride.w + b * g.dilation.w) as isize
                                    - g.pad_left as isize;
                                let Some(sx) = g.padding_mode.source(px, wd) else {
                                    continue;
                                };
                                let (ta, tb) = g.tap(a, b);
                                let wv = w[((o * cpg + ci) * g.kh + ta) * g.kw + tb] as f64;
                                let k = ((n * g.c + c) * h + sy) * wd + sx;
                                values[k] += gv * wv;
                                magnitude[k] += (gv * wv).abs();
                                count[k] += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    Reference {
        shape: g.input_shape().to_vec(),
        values,
        magnitude,
        terms: count.into_iter().max().unwrap_or(0),
    }
}

/// One element of [`conv2d_input_grad`] (flat input index `i`): `(value, magnitude, terms)`,
/// by gathering every (output, tap) whose padded read lands on this pixel.
pub fn conv2d_input_grad_at(
    g: &Conv2dGeometry,
    w: &[f32],
    gy: &[f32],
    i: usize,
) -> (f64, f64, usize) {
    let (ix, t) = (i % g.w, i / g.w);
    let (iy, t) = (t % g.h, t / g.h);
    let (c, n) = (t % g.c, t / g.c);
    let (cpg, ocpg) = (g.cpg(), g.ocpg());
    let (grp, ci) = (c / cpg, c % cpg);
    let (mut acc, mut mag, mut terms) = (0f64, 0f64, 0usize);
    for o in grp * ocpg..(grp + 1) * ocpg {
        for oy in 0..g.oh {
            for a in 0..g.kh {
                let py = (oy * g.stride.h + a * g.dilation.h) as isize - g.pad_top as isize;
                if g.padding_mode.source(py, g.h) != Some(iy) {
                    continue;
                }
                for ox in 0..g.ow {
                    for b in 0..g.kw {
                        let px =
                            (ox * g.stride.w + b * g.dilation.w) as isize - g.pad_left as isize;
                        if g.padding_mode.source(px, g.w) != Some(ix) {
                            continue;
                        }
                        let (ta, tb) = g.tap(a, b);
                        let v = gy[((n * g.oc + o) * g.oh + oy) * g.ow + ox] as f64
                            * w[((o * cpg + ci) * g.kh + ta) * g.kw + tb] as f64;
                        acc += v;
                        mag += v.abs();
                        terms += 1;
                    }
                }
            }
        }
    }
    (acc, mag, terms)
}
