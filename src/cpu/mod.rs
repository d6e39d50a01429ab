//! The CPU reference: plain loops, accumulated in `f64`, that the GPU kernels are checked against.
//!
//! Each function has the same stem as its shader (`shaders/conv2d_forward.wgsl` ↔
//! [`conv2d_forward`]) and returns, beside the values, the magnitude sum `sum |a*b|` of the terms
//! of every element, from which [`compare`] derives an honest `f32` error bound.

mod conv2d_bias_grad;
mod conv2d_forward;
mod conv2d_input_grad;
mod conv2d_weight_grad;
mod mse_loss;
mod sgd_step;

pub use conv2d_bias_grad::conv2d_bias_grad;
pub use conv2d_forward::{conv2d_forward, conv2d_forward_at};
pub use conv2d_input_grad::{conv2d_input_grad, conv2d_input_grad_at};
pub use conv2d_weight_grad::{conv2d_weight_grad, conv2d_weight_grad_at};
pub use mse_loss::mse_loss;
pub use sgd_step::sgd_step;

/// Exact-as-possible results of a reference computation.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// Shape of the result.
    pub shape: Vec<usize>,
    /// The values, accumulated in `f64` from the `f32` inputs.
    pub values: Vec<f64>,
    /// Per element, `sum |term|` over the terms added up for it.
    pub magnitude: Vec<f64>,
    /// The largest number of terms added up for any one element (the `L` of the bound).
    pub terms: usize,
}

impl Reference {
    /// The values rounded to `f32`.
    pub fn to_f32(&self) -> Vec<f32> {
        self.values.iter().map(|&v| v as f32).collect()
    }

    /// The error bound for element `i`: `(L + 1) * 2^-24 * sum|term|`, plus room for
    /// subnormals flushed to zero.
    pub fn bound(&self, i: usize) -> f64 {
        let l = self.terms as f64 + 1.0;
        l * f64::from(f32::EPSILON) * 0.5 * self.magnitude[i] + l * f64::from(f32::MIN_POSITIVE)
    }
}

/// The outcome of comparing a GPU result with a [`Reference`].
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Elements outside the bound (or with NaN/infinity where the reference has none, or the
    /// reverse).
    pub failures: usize,
    /// Index of the element with the largest `|error| / bound`.
    pub worst_index: usize,
    /// What the GPU gave there.
    pub got: f32,
    /// What the reference gave there.
    pub expected: f64,
    /// The bound there.
    pub bound: f64,
    /// `|error| / bound` there (at most 1 when everything passed).
    pub worst_ratio: f64,
}

impl Comparison {
    /// True when every element is within its bound.
    pub fn ok(&self) -> bool {
        self.failures == 0
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} element(s) outside the bound; worst at index {}: got {:e}, expected {:e}, bound {:e} (error/bound {:.3})",
            self.failures, self.worst_index, self.got, self.expected, self.bound, self.worst_ratio
        )
    }
}

/// `n` indices spread over `0..len` (a fixed scatter, so that runs compare the same elements),
/// or every index where `len <= n`: the elements to check with [`sampled`].
pub fn sample_indices(len: usize, n: usize) -> Vec<usize> {
    if len <= n {
        return (0..len).collect();
    }
    (0..n).map(|k| (k * 7_919_993 + k * k) % len).collect()
}

/// A [`Reference`] for a sample of elements, from an `*_at` function; `got` must then be the
/// GPU values at the same indices.
pub fn sampled(indices: &[usize], mut at: impl FnMut(usize) -> (f64, f64, usize)) -> Reference {
    let mut r = Reference {
        shape: vec![indices.len()],
        values: Vec::new(),
        magnitude: Vec::new(),
        terms: 0,
    };
    for &i in indices {
        let (v, m, t) = at(i);
        r.values.push(v);
        r.magnitude.push(m);
        r.terms = r.terms.max(t);
    }
    r
}

/// Compares `got` with the reference element by element against [`Reference::bound`].
/// NaN must meet NaN and an infinity the same infinity.
pub fn compare(got: &[f32], reference: &Reference) -> Comparison {
    let mut c = Comparison {
        failures: 0,
        worst_index: 0,
        got: got.first().copied().unwrap_or(0.0),
        expected: reference.values.first().copied().unwrap_or(0.0),
        bound: 0.0,
        worst_ratio: 0.0,
    };
    if got.len() != reference.values.len() {
        c.failures = got.len().max(reference.values.len());
        c.worst_ratio = f64::INFINITY;
        return c;
    }
    for (i, (&g, &e)) in got.iter().zip(&reference.values).enumerate() {
        let bound = reference.bound(i);
        let ratio = if e.is_nan() || g.is_nan() {
            if e.is_nan() && g.is_nan() {
                0.0
            } else {
                f64::INFINITY
            }
        } else if e.is_infinite() || g.is_infinite() {
            // An infinity must meet the same infinity, or an f64 value beyond f32's range.
            let expect_inf = e.is_infinite() || e.abs() > f64::from(f32::MAX);
            if g.is_infinite() && expect_inf && (g as f64).signum() == e.signum() {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            let err = (g as f64 - e).abs();
            if err == 0.0 {
                0.0
            } else {
                err / bound
            }
        };
        if ratio > 1.0 {
            c.failures += 1;
        }
        if ratio > c.worst_ratio || i == 0 {
            c.worst_ratio = ratio;
            c.worst_index = i;
            c.got = g;
            c.expected = e;
            c.bound = bound;
        }
    }
    c
}
