//! The `Conv2d` layer (weight, optional bias, options) and `Sequential`, a stack of them.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::grads::{Conv2dGrads, Wanted};
use crate::ops::{geometry, GpuTensor};
use crate::options::{Conv2dOptions, Hw};
use crate::tensor::Tensor;

/// A small seedable generator (SplitMix64) for weight initialisation.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    /// Seeded generator.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// Next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[lo, hi)`.
    pub(crate) fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
}

/// A 2-D convolution layer: `y = conv(x, weight) + bias`.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    options: Conv2dOptions,
}

impl Conv2d {
    /// A layer with `weight` of shape `(out, in/groups, kh, kw)` drawn uniformly from
    /// `±1/sqrt(fan_in)` (`fan_in = in/groups * kh * kw`, PyTorch's default bound) with `seed`,
    /// and a zero bias of `out` elements if `bias`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: impl Into<Hw>,
        bias: bool,
        options: Conv2dOptions,
        seed: u64,
    ) -> Result<Self> {
        let k = kernel.into();
        let groups = options.groups;
        if groups == 0
            || !in_channels.is_multiple_of(groups)
            || !out_channels.is_multiple_of(groups)
        {
            return Err(Error::option(format!(
                "groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}"
            )));
        }
        if in_channels == 0 || out_channels == 0 || k.h == 0 || k.w == 0 {
            return Err(Error::shape("channels and kernel sizes must be at least 1"));
        }
        let fan_in = in_channels / groups * k.h * k.w;
        let bound = 1.0 / (fan_in as f32).sqrt();
        let mut rng = SplitMix64::new(seed);
        let weight = Tensor::from_fn([out_channels, in_channels / groups, k.h, k.w], |_| {
            rng.uniform(-bound, bound)
        });
        let bias = bias.then(|| Tensor::zeros([out_channels]));
        Ok(Self {
            weight,
            bias,
            options,
        })
    }

    /// A layer with the given weight `(OC, C/groups, KH, KW)` (or `(KH, KW)`) and bias `(OC,)`.
    pub fn from_weight(
        weight: Tensor,
        bias: Option<Tensor>,
        options: Conv2dOptions,
    ) -> Result<Self> {
        let w = weight_shape4(weight.shape())?;
        let weight = weight.reshape(w.to_vec())?;
        if let Some(b) = &bias {
            if b.len() != w[0] {
                return Err(Error::shape(format!(
                    "bias has {} elements, the weight {} output channels",
                    b.len(),
                    w[0]
                )));
            }
        }
        let bias = bias.map(|b| b.reshape(vec![w[0]])).transpose()?;
        Ok(Self {
            weight,
            bias,
            options,
        })
    }

    /// The weight, `(OC, C/groups, KH, KW)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
    /// The bias, `(OC,)`, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
    /// The options.
    pub fn options(&self) -> &Conv2dOptions {
        &self.options
    }
    /// Replaces the weight (same shape).
    pub fn set_weight(&mut self, w: Tensor) -> Result<()> {
        if w.len() != self.weight.len() {
            return Err(Error::shape(format!(
                "new weight {:?} does not match {:?}",
                w.shape(),
                self.weight.shape()
            )));
        }
        self.weight = w.reshape(self.weight.shape().to_vec())?;
        Ok(())
    }
    /// Replaces the bias (same number of elements; the layer must have one).
    pub fn set_bias(&mut self, b: Tensor) -> Result<()> {
        match &self.bias {
            Some(old) if old.len() == b.len() => {
                self.bias = Some(b.reshape(vec![old.len()])?);
                Ok(())
            }
            Some(old) => Err(Error::shape(format!(
                "new bias has {} elements, expected {}",
                b.len(),
                old.len()
            ))),
            None => Err(Error::shape("this layer was built without a bias")),
        }
    }

    /// The forward pass on the GPU; the output has the input's rank.
    pub fn forward(&self, ctx: &GpuContext, x: &Tensor) -> Result<Tensor> {
        ctx.conv2d(x, &self.weight, self.bias.as_ref(), &self.options)
    }

    /// The gradients of `sum(forward(x) * grad_output)` with respect to weight, input and bias
    /// (the bias gradient only if the layer has a bias).
    pub fn backward(
        &self,
        ctx: &GpuContext,
        x: &Tensor,
        grad_output: &Tensor,
    ) -> Result<Conv2dGrads> {
        let wanted = Wanted {
            weight: true,
            input: true,
            bias: self.bias.is_some(),
        };
        ctx.conv2d_backward(x, &self.weight, grad_output, &self.options, wanted)
    }
}

fn weight_shape4(s: &[usize]) -> Result<[usize; 4]> {
    match s {
        [kh, kw] => Ok([1, 1, *kh, *kw]),
        [o, c, kh, kw] => Ok([*o, *c, *kh, *kw]),
        _ => Err(Error::shape(format!(
            "a weight is rank 4 (OC, C/groups, KH, KW) or rank 2, got {s:?}"
        ))),
    }
}

/// Layers applied one after the other (no activation between them), with backpropagation
/// through all of them in one submission.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sequential {
    /// The layers, first applied first.
    pub layers: Vec<Conv2d>,
}

/// What [`Sequential::backward`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct SequentialGrads {
    /// Per layer: weight and bias gradients (the input field is `None`).
    pub layers: Vec<Conv2dGrads>,
    /// Gradient with respect to the stack's input, in the input's shape.
    pub input: Tensor,
}

impl Sequential {
    /// A stack of layers.
    pub fn new(layers: Vec<Conv2d>) -> Self {
        Self { layers }
    }

    /// The forward pass through every layer (one submission).
    pub fn forward(&self, ctx: &GpuContext, x: &Tensor) -> Result<Tensor> {
        ctx.leased(|| {
            ctx.scoped("sequential forward", || {
                let (enc, acts, _) = self.record_forward(ctx, x)?;
                let last = acts
                    .last()
                    .ok_or_else(|| Error::shape("an empty Sequential"))?;
                let mut out = ctx.submit_and_read(enc, &[last.buffer()])?;
                let mut d = out.pop().unwrap_or_default();
                d.truncate(last.len());
                Tensor::new(last.shape().to_vec(), d)
            })
        })
    }

    #[allow(clippy::type_complexity)]
    fn record_forward(
        &self,
        ctx: &GpuContext,
        x: &Tensor,
    ) -> Result<(
        wgpu::CommandEncoder,
        Vec<GpuTensor>,
        Vec<(crate::Conv2dGeometry, GpuTensor, Option<GpuTensor>)>,
    )> {
        if self.layers.is_empty() {
            return Err(Error::shape("an empty Sequential"));
        }
        let mut enc = ctx.encoder("sequential");
        let mut shape = x.shape().to_vec();
        let mut acts = Vec::with_capacity(self.layers.len() + 1);
        let mut params = Vec::with_capacity(self.layers.len());
        for (i, l) in self.layers.iter().enumerate() {
            let g = geometry(
                &shape,
                l.weight.shape(),
                l.bias.as_ref().map(Tensor::len),
                &l.options,
            )?;
            if i == 0 {
                acts.push(ctx.upload_slice(&g.input_shape(), x.data(), "sequential: input")?);
            }
            let w = ctx.upload(&l.weight)?;
            let b = l.bias.as_ref().map(|b| ctx.upload(b)).transpose()?;
            let y = ctx.empty(&g.output_shape(), "sequential: activation")?;
            ctx.record_forward(&mut enc, &g, &acts[i], &w, b.as_ref(), &y)?;
            acts.push(y);
            params.push((g, w, b));
            shape = g.output_shape().to_vec();
        }
        Ok((enc, acts, params))
    }

    /// Backpropagates `grad_output` (the gradient of the loss with respect to the last output)
    /// through every layer, in one submission.
    pub fn backward(
        &self,
        ctx: &GpuContext,
        x: &Tensor,
        grad_output: &Tensor,
    ) -> Result<SequentialGrads> {
        ctx.leased(|| {
            ctx.scoped("sequential backward", || {
                let (mut enc, acts, params) = self.record_forward(ctx, x)?;
                let out = acts.last().expect("at least one layer");
                if grad_output.len() != out.len() {
                    return Err(Error::shape(format!(
                        "grad_output has {} elements, the last output {:?}",
                        grad_output.len(),
                        out.shape()
                    )));
                }
                let mut gy =
                    ctx.upload_slice(out.shape(), grad_output.data(), "sequential: grad_output")?;
                let mut grads = Vec::new();
                for (i, (g, w, b)) in params.iter().enumerate().rev() {
                    let gw = ctx.empty(&g.weight_shape(), "sequential: grad_weight")?;
                    let gb = b
                        .as_ref()
                        .map(|_| ctx.empty(&[g.oc, 1, 1, 1], "sequential: grad_bias"))
                        .transpose()?;
                    let gx = ctx.empty(&g.input_shape(), "sequential: grad_input")?;
                    ctx.record_backward(
                        &mut enc,
                        g,
                        &acts[i],
                        w,
                        &gy,
                        Some(&gw),
                        Some(&gx),
                        gb.as_ref(),
                    )?;
                    grads.push((gw, gb));
                    gy = gx;
                }
                grads.reverse();
                let mut bufs: Vec<&wgpu::Buffer> = vec![gy.buffer()];
                for (gw, gb) in &grads {
                    bufs.push(gw.buffer());
                    if let Some(gb) = gb {
                        bufs.push(gb.buffer());
                    }
                }
                let mut data = ctx.submit_and_read(enc, &bufs)?.into_iter();
                let mut next = |len: usize, shape: Vec<usize>| -> Result<Tensor> {
                    let mut d = data.next().unwrap_or_default();
                    d.truncate(len);
                    Tensor::new(shape, d)
                };
                let input = next(x.len(), x.shape().to_vec())?;
                let mut layers = Vec::new();
                for (l, (gw, gb)) in self.layers.iter().zip(&grads) {
                    let weight = next(gw.len(), l.weight.shape().to_vec())?;
                    let bias = match gb {
                        Some(gb) => Some(next(gb.len(), vec![gb.len()])?),
                        None => None,
                    };
                    layers.push(Conv2dGrads {
                        weight: Some(weight),
                        input: None,
                        bias,
                    });
                }
                Ok(SequentialGrads { layers, input })
            })
        })
    }
}
