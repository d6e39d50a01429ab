//! # wgpu-conv
//!
//! 2-D convolution layers on any GPU through [wgpu] and WGSL compute shaders: the forward
//! cross-correlation, the weight, input and bias gradients, and training by gradient descent,
//! with PyTorch's `nn.Conv2d` semantics (batches, channels, stride, padding and padding modes,
//! dilation, groups, bias). It is one layer done thoroughly, not a framework: it runs on a
//! device of its own or on yours, into your command encoder, on your buffers.
//!
//! ```no_run
//! use wgpu_conv::{Conv2d, Conv2dOptions, GpuContext, Tensor};
//!
//! # fn main() -> Result<(), wgpu_conv::Error> {
//! let ctx = GpuContext::new()?; // WGPU_BACKEND / WGPU_ADAPTER_NAME are honoured
//! let x = Tensor::from_rows(&[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]);
//! let k = Tensor::from_rows(&[[0.0, 1.0], [2.0, 3.0]]);
//! assert_eq!(ctx.corr2d(&x, &k)?.data(), &[19.0, 25.0, 37.0, 43.0]);
//!
//! let layer = Conv2d::new(3, 8, 3, true, Conv2dOptions::new().padding(1), 42)?;
//! let y = layer.forward(&ctx, &Tensor::zeros([2, 3, 16, 16])?)?;
//! assert_eq!(y.shape(), &[2, 8, 16, 16]);
//! # Ok(()) }
//! ```
//!
//! ## The pieces
//!
//! - [`GpuContext`]: an adapter and device ([`GpuContext::new`], or
//!   [`GpuContext::from_device`] for yours), its buffer pool and pipelines. Its calls:
//!   [`conv2d`](GpuContext::conv2d), [`conv2d_backward`](GpuContext::conv2d_backward) (any of
//!   the weight, input and bias gradients, [`Wanted`]), [`corr2d`](GpuContext::corr2d);
//!   [`upload`](GpuContext::upload) / [`download`](GpuContext::download) between [`Tensor`]
//!   (host, row-major `f32`) and [`GpuTensor`] (a device buffer, or one of yours through
//!   [`GpuTensor::from_buffer`]); `record_forward` and `record_backward` into your own encoder.
//! - [`Conv2dOptions`]: stride, [`Padding`], [`PaddingMode`], dilation, groups and
//!   [`ConvMode`] (cross-correlation, or strict convolution); resolved against shapes into a
//!   [`Conv2dGeometry`].
//! - [`Conv2d`] (a layer: weight, optional bias, seeded init, resident on the device once used),
//!   [`Sequential`] (layers stacked, backpropagated through), [`Trainer`] (a training step,
//!   squared error and [`Sgd`], as one submission).
//! - [`plan_forward`] and its siblings: what a call will run, as a [`Plan`] you can print and
//!   [`validate`](Plan::validate) against a [`DeviceProfile`], with no GPU at all.
//! - [`filters`]: the chapter's hand-made kernels and [`filters::apply`] on images;
//!   `images` (feature `image`): PNG and JPEG in and out of tensors.
//! - [`cpu`]: the CPU reference of every kernel, accumulating in `f64` and returning each
//!   element's error bound, `(L + 1) * 2^-24 * sum |a*b|` for a sum of `L` products.
//! - [`Error`]: one error type; misuse (shapes, options, another context's tensor, aliased
//!   operands, sizes past the device's limits) is an error, never a wrong result or a panic.
//!
//! ## Features and platforms
//!
//! | feature | gives | adds |
//! |---|---|---|
//! | (none) | the library | wgpu, bytemuck, pollster, futures-intrusive, thiserror, log |
//! | `image` | `images`, `Tensor::from_luma` / `from_rgb` | image (PNG, JPEG) |
//! | `ndarray` | `Tensor::try_from(&array)`, `ArrayD::from(tensor)` | ndarray |
//! | `cli` | the `wgpu-conv` command (`cargo install wgpu-conv --features cli`) | clap, npyz, plotters, indicatif, ... |
//!
//! Natively every call exists in a blocking form and an async one (`conv2d_async`,
//! `download_async`, ...: futures that any executor drives). On `wasm32` in a browser only the
//! async half exists, as a browser cannot block; the items that need a blocking wait are
//! marked on docs.rs. Operands past the device's largest storage binding are split into pieces
//! that fit (the blocking calls), or refused with [`Error::TooLarge`].

// In a browser (wasm32) the blocking half of the API is configured out, and with it the uses
// of some helpers; the native build, where the lints are enforced, has them all.
#![cfg_attr(target_arch = "wasm32", allow(unused_imports, dead_code))]
// docs.rs labels the items a feature or platform gates
#![cfg_attr(docsrs, feature(doc_cfg))]

mod autotune;
mod context;
pub mod cpu;
mod error;
pub mod filters;
mod grads;
#[cfg(feature = "image")]
#[cfg_attr(docsrs, doc(cfg(feature = "image")))]
pub mod images;
mod kernels;
mod layer;
mod ops;
mod options;
pub mod pixels;
mod planner;
mod receptive_field;
mod resident;
mod runtime;
mod shapes;
mod split;
mod tensor;
mod timing;
mod train;

#[cfg(not(target_arch = "wasm32"))]
pub use context::list_adapters;
pub use context::{check_backend_env, describe_adapter, AdapterInfo, GpuContext, BACKEND_NAMES};
pub use error::{Error, Limit, Result};
pub use grads::{Conv2dGrads, Wanted};
pub use kernels::{
    kernel_names, Algorithm, DeviceProfile, Family, Op, Pass, PassModel, Plan, Sgd,
    AUTO_BLOCKED_FROM, MAX_DISPATCHES, REFERENCE_SMS,
};
pub use layer::{Conv2d, Sequential, SequentialGrads};
pub use ops::{geometry, GpuTensor};
pub use options::{output_size, Conv2dGeometry, Conv2dOptions, ConvMode, Hw, Padding, PaddingMode};
pub use planner::tuned::{cache_dir, Tuned};
pub use planner::{
    candidates, plan, plan_bias_grad, plan_forward, plan_input_grad, plan_weight_grad,
};
pub use receptive_field::{receptive_field, Field};
pub use runtime::pool::{PoolStats, MAX_IDLE_BYTES};
pub use shapes::{bench_shapes, BenchShape};
pub use tensor::Tensor;
pub use timing::GpuTime;
pub use train::{target_fits, train_cpu, Trainer, MAX_PENDING_STEPS};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
