use super::Reference;
use crate::options::Conv2dGeometry;

/// Forward convolution: `y[n,o,i,j] = bias[o] + sum_{c,a,b} xpad[n, g*C/G + c, i*sh + a*dh, j*sw + b*dw] * w[o,c,tap(a,b)]`
/// where `xpad` is the input with the padding mode applied and `tap` flips for convolution.
pub fn conv2d_forward(g: &Conv2dGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Reference {
    let [n_, _c, h, wd] = g.input_shape();
    let (cpg, ocpg) = (g.cpg(), g.ocpg());
    let out_len: usize = g.output_shape().iter().product();
    let mut values = Vec::with_capacity(out_len);
    let mut magnitude = Vec::with_capacity(out_len);
    for n in 0..n_ {
        for o in 0..g.oc {
            let grp = o / ocpg;
            for i in 0..g.oh {
                for j in 0..g.ow {
                    let mut acc = 0f64;
                    let mut mag = 0f64;
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
                                let xv = x[((n * g.c + c) * h + sy) * wd + sx] as f64;
                                let wv = w[((o * cpg + ci) * g.kh + ta) * g.kw + tb] as f64;
                                acc += xv * wv;
                                mag += (xv * wv).abs();
                            }
                        }
                    }
                    if let Some(b) = bias {
                        acc += b[o] as f64;
                        mag += (b[o] as f64).abs();
                    }
                    values.push(acc);
                    magnitude.push(mag);
                }
            }
        }
    }
    Reference {
        shape: g.output_shape().to_vec(),
        values,
        magnitude,
        terms: g.taps() + usize::from(bias.is_some()),
    }
}

/// One element of [`conv2d_forward`] (flat output index `i`): `(value, magnitude, terms)`.
/// For checking a sample of a large output without computing all of it.
pub fn conv2d_forward_at(
    g: &Conv2dGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    i: usize,
) -> (f64, f64, usize) {
    let (j, t) = (i % g.ow, i / g.ow);
    let (oy, t) = (t % g.oh, t / g.oh);
    let (o, n) = (t % g.oc, t / g.oc);
    let (cpg, grp) = (g.cpg(), o / g.ocpg());
    let (mut acc, mut mag) = (0f64, 0f64);
    for ci in 0..cpg {
        let c = grp * cpg + ci;
        for a in 0..g.kh {
            let py = (oy * g.stride.h + a * g.dilation.h) as isize - g.pad_top as isize;
            let Some(sy) = g.padding_mode.source(py, g.h) else {
                continue;
            };
            for b in 0..g.kw {
                let px = (j * g.stride.w + b * g.dilation.w) as isize - g.pad_left as isize;
                let Some(sx) = g.padding_mode.source(px, g.w) else {
                    continue;
                };
                let (ta, tb) = g.tap(a, b);
                let v = x[((n * g.c + c) * g.h + sy) * g.w + sx] as f64
                    * w[((o * cpg + ci) * g.kh + ta) * g.kw + tb] as f64;
                acc += v;
                mag += v.abs();
            }
        }
    }
    if let Some(b) = bias {
        acc += b[o] as f64;
        mag += (b[o] as f64).abs();
    }
    (acc, mag, g.taps() + usize::from(bias.is_some()))
}
