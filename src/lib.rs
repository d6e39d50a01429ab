//! # wgpu-conv
//!
//! 2-D convolution layers on any GPU through [wgpu] and WGSL compute shaders: the forward
//! cross-correlation, the weight, input and bias gradients, and training by gradient descent,
//! with PyTorch's `nn.Conv2d` semantics (batches, channels, stride, padding and padding modes,
//! dilation, groups, bias). Every kernel has a CPU twin in [`cpu`] that the tests check it
//! against with a stated error bound.
//!
//! ```no_run
//! use wgpu_conv::{GpuContext, Tensor};
//!
//! # fn main() -> Result<(), wgpu_conv::Error> {
//! let ctx = GpuContext::new()?; // WGPU_BACKEND / WGPU_ADAPTER_NAME are honoured
//! let x = Tensor::from_rows(&[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]);
//! let k = Tensor::from_rows(&[[0.0, 1.0], [2.0, 3.0]]);
//! let y = ctx.corr2d(&x, &k)?;
//! assert_eq!(y.data(), &[19.0, 25.0, 37.0, 43.0]);
//! # Ok(()) }
//! ```

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
mod planning;
mod pool;
mod readback;
mod receptive_field;
mod resident;
mod shapes;
mod split;
mod tensor;
mod timing;
mod train;

pub use autotune::{cache_dir, Tuned};
#[cfg(not(target_arch = "wasm32"))]
pub use context::list_adapters;
pub use context::{check_backend_env, describe_adapter, AdapterInfo, GpuContext, BACKEND_NAMES};
pub use error::{Error, Limit, Result};
pub use grads::{Conv2dGrads, Wanted};
pub use kernels::{
    kernel_names, Algorithm, DeviceProfile, Family, Op, Pass, Plan, Sgd, AUTO_BLOCKED_FROM,
    MAX_DISPATCHES,
};
pub use layer::{Conv2d, Sequential, SequentialGrads};
pub use ops::{geometry, GpuTensor};
pub use options::{output_size, Conv2dGeometry, Conv2dOptions, ConvMode, Hw, Padding, PaddingMode};
pub use planning::{plan_bias_grad, plan_forward, plan_input_grad, plan_weight_grad};
pub use pool::{PoolStats, MAX_IDLE_BYTES};
pub use receptive_field::{receptive_field, Field};
pub use shapes::{bench_shapes, BenchShape};
pub use tensor::Tensor;
pub use train::{target_fits, train_cpu, Trainer, MAX_PENDING_STEPS};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
