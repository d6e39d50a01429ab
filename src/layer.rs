//! The `Conv2d` layer (weight, optional bias, options) and `Sequential`, a stack of them.

use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::grads::{Conv2dGrads, Wanted};
use crate::kernels::Algorithm;
use crate::ops::{geometry, output_shape, GpuTensor};
use crate::options::{Conv2dGeometry, Conv2dOptions, Hw};
use crate::resident::ResidentCache;
use crate::split;
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
///
/// The layer keeps its weight and bias resident on the device of the context it is first
/// called with, and per input shape its forward plan and the weight's packed form: repeated
/// calls upload only their input. [`Conv2d::set_weight`] and [`Conv2d::set_bias`] drop that
/// state; a clone starts without it; comparisons ignore it.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    options: Conv2dOptions,
    resident: ResidentCache,
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
        })?;
        let bias = bias.then(|| Tensor::zeros([out_channels])).transpose()?;
        Ok(Self {
            weight,
            bias,
            options,
            resident: ResidentCache::default(),
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
            resident: ResidentCache::default(),
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
        self.resident.clear();
        Ok(())
    }
    /// Replaces the bias (same number of elements; the layer must have one).
    pub fn set_bias(&mut self, b: Tensor) -> Result<()> {
        match &self.bias {
            Some(old) if old.len() == b.len() => {
                self.bias = Some(b.reshape(vec![old.len()])?);
                self.resident.clear();
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

    /// The geometry of this layer on an input of shape `x`.
    pub fn geometry(&self, x: &[usize]) -> Result<Conv2dGeometry> {
        geometry(
            x,
            self.weight.shape(),
            self.bias.as_ref().map(Tensor::len),
            &self.options,
        )
    }

    /// The forward pass on the GPU (blocking); the output has the input's rank. Only the input
    /// is uploaded once the layer is resident (an input past the binding limit is split into
    /// pieces, each uploading its share of the weight, as [`GpuContext::conv2d`] does).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward(&self, ctx: &GpuContext, x: &Tensor) -> Result<Tensor> {
        let g = self.geometry(x.shape())?;
        if split::needed(&g, ctx.binding_limit()).is_some() {
            let bias = self.bias.as_ref();
            return ctx.conv2d_resolved(&g, x, &self.weight, bias, Algorithm::Auto);
        }
        ctx.rt.leased(|| {
            ctx.scoped("layer forward", || {
                let xg = ctx.upload_slice(&g.input_shape(), x.data(), "layer: input")?;
                let y = ctx.empty(&g.output_shape(), "layer: output")?;
                let mut enc = ctx.encoder("layer forward");
                self.record_resolved(ctx, &mut enc, &g, &xg, &y)?;
                let mut out = ctx.submit_and_read(enc, &[y.buffer()])?;
                let mut d = out.pop().unwrap_or_default();
                d.truncate(y.len());
                Tensor::new(output_shape(x.shape().len(), &g), d)
            })
        })
    }

    /// The forward pass from a tensor on the device to a new one, without waiting or reading
    /// back: layers chain on the device, and [`GpuContext::download`] (or `download_async`)
    /// reads the end. The output has the input's rank and a buffer of its own.
    pub fn forward_gpu(&self, ctx: &GpuContext, x: &GpuTensor) -> Result<GpuTensor> {
        let g = self.geometry(x.shape())?;
        ctx.scoped("layer forward_gpu", || {
            let y = ctx.output_tensor(&output_shape(x.shape().len(), &g), "layer: output")?;
            let mut enc = ctx.encoder("layer forward_gpu");
            self.record_resolved(ctx, &mut enc, &g, x, &y)?;
            ctx.rt.queue.submit([enc.finish()]);
            Ok(y)
        })
    }

    /// Records the forward pass from `x` into `y` (which has the output's element count) into
    /// the caller's encoder, with the layer's resident weight.
    pub fn record_forward(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        x: &GpuTensor,
        y: &GpuTensor,
    ) -> Result<()> {
        let g = self.geometry(x.shape())?;
        ctx.scoped("layer record_forward", || {
            self.record_resolved(ctx, encoder, &g, x, y)
        })
    }

    fn record_resolved(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        g: &Conv2dGeometry,
        x: &GpuTensor,
        y: &GpuTensor,
    ) -> Result<()> {
        let (w, b) = (&self.weight, self.bias.as_ref());
        self.resident.record_forward(ctx, encoder, g, w, b, x, y)
    }

    /// The resident weight and bias on `ctx`, and whether every weight is finite.
    fn resident_weights(&self, ctx: &GpuContext) -> Result<(GpuTensor, Option<GpuTensor>, bool)> {
        self.resident.weights(ctx, &self.weight, self.bias.as_ref())
    }

    /// The gradients of `sum(forward(x) * grad_output)` with respect to weight, input and bias
    /// (the bias gradient only if the layer has a bias), with the resident weight.
    #[cfg(not(target_arch = "wasm32"))]
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
        let g = self.geometry(x.shape())?;
        let out_shape = output_shape(x.shape().len(), &g);
        if split::needed(&g, ctx.binding_limit()).is_some() || grad_output.shape() != out_shape {
            // the context's call splits, or names the mismatch
            return ctx.conv2d_backward(x, &self.weight, grad_output, &self.options, wanted);
        }
        ctx.rt.leased(|| {
            ctx.scoped("layer backward", || {
                let (w, _, finite) = self.resident_weights(ctx)?;
                let xg = ctx.upload_slice(&g.input_shape(), x.data(), "layer: input")?;
                let gy = ctx.upload_slice(&g.output_shape(), grad_output.data(), "layer: grad")?;
                let raw = ctx.backward_read(&g, &xg, &w, &gy, wanted, finite, Algorithm::Auto)?;
                Conv2dGrads::from_raw(raw, x.shape(), self.weight.shape(), g.oc)
            })
        })
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
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward(&self, ctx: &GpuContext, x: &Tensor) -> Result<Tensor> {
        ctx.rt.leased(|| {
            ctx.scoped("sequential forward", || {
                let mut enc = ctx.encoder("sequential forward");
                let g = self.first_geometry(x)?;
                let x = ctx.upload_slice(&g.input_shape(), x.data(), "sequential: input")?;
                let (acts, _) = self.record_forward(ctx, &mut enc, x)?;
                let last = acts.last().expect("the input at least");
                let mut out = ctx.submit_and_read(enc, &[last.buffer()])?;
                let mut d = out.pop().unwrap_or_default();
                d.truncate(last.len());
                Tensor::new(last.shape().to_vec(), d)
            })
        })
    }

    /// Records every layer's forward pass (with its resident weight) into `enc`; returns the
    /// activations, the input first, and each layer's geometry.
    fn record_forward(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        x: GpuTensor,
    ) -> Result<(Vec<GpuTensor>, Vec<Conv2dGeometry>)> {
        if self.layers.is_empty() {
            return Err(Error::shape("an empty Sequential"));
        }
        let mut acts = vec![x];
        let mut geometries = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let last = acts.last().expect("the input at least");
            let g = l.geometry(last.shape())?;
            let y = ctx.empty(&g.output_shape(), "sequential: activation")?;
            l.record_resolved(ctx, enc, &g, last, &y)?;
            acts.push(y);
            geometries.push(g);
        }
        Ok((acts, geometries))
    }

    /// The forward pass through every layer from a tensor on the device, in one submission
    /// and without waiting; the output (rank 4) has a buffer of its own.
    pub fn forward_gpu(&self, ctx: &GpuContext, x: &GpuTensor) -> Result<GpuTensor> {
        ctx.scoped("sequential forward_gpu", || {
            let mut enc = ctx.encoder("sequential forward_gpu");
            let mut x = x.handle();
            let last = self.layers.len().saturating_sub(1);
            for (i, l) in self.layers.iter().enumerate() {
                let g = l.geometry(x.shape())?;
                let y = if i == last {
                    ctx.output_tensor(&g.output_shape(), "sequential: output")?
                } else {
                    ctx.empty(&g.output_shape(), "sequential: activation")?
                };
                l.record_resolved(ctx, &mut enc, &g, &x, &y)?;
                x = y;
            }
            if self.layers.is_empty() {
                return Err(Error::shape("an empty Sequential"));
            }
            ctx.rt.queue.submit([enc.finish()]);
            Ok(x)
        })
    }

    /// The first layer's geometry on `x` (which the stack's input is uploaded for).
    fn first_geometry(&self, x: &Tensor) -> Result<Conv2dGeometry> {
        self.layers
            .first()
            .ok_or_else(|| Error::shape("an empty Sequential"))?
            .geometry(x.shape())
    }

    /// Backpropagates `grad_output` (the gradient of the loss with respect to the last output)
    /// through every layer, in one submission.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn backward(
        &self,
        ctx: &GpuContext,
        x: &Tensor,
        grad_output: &Tensor,
    ) -> Result<SequentialGrads> {
        ctx.rt.leased(|| {
            ctx.scoped("sequential backward", || {
                let mut enc = ctx.encoder("sequential backward");
                let g = self.first_geometry(x)?;
                let xg = ctx.upload_slice(&g.input_shape(), x.data(), "sequential: input")?;
                let (acts, geometries) = self.record_forward(ctx, &mut enc, xg)?;
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
                for (i, (g, l)) in geometries.iter().zip(&self.layers).enumerate().rev() {
                    let (w, b, _) = l.resident_weights(ctx)?;
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
                        &w,
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
