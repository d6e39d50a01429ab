//! The kernel layer: plan, then record.
//!
//! - [`spec`]: one [`spec::KernelSpec`] per kernel entry point (source, workgroup size,
//!   bindings, uniform) in one list, [`spec::SPECS`].
//! - One module per kernel entry point (`conv2d_forward`, ..., `sgd_step`): its `SPEC` and
//!   the function that builds its pass (dispatches, uniforms, loop-iteration worst case) for a
//!   geometry.
//! - The bias gradient, loss and SGD step plan themselves in their modules; the convolution's
//!   three ops are chosen among candidates by `crate::planner`.
//! - [`record()`]: records a [`Plan`] into a command encoder.
//! - [`budget`]: the loop budget every pass keeps to.

pub(crate) mod budget;
pub(crate) mod grid;
pub(crate) mod model;
pub(crate) mod phases;
pub(crate) mod plan;
pub(crate) mod profile;
pub(crate) mod spec;
pub(crate) mod uniforms;

pub(crate) mod conv2d_bias_grad;
pub(crate) mod conv2d_core;
pub(crate) mod conv2d_forward;
pub(crate) mod conv2d_forward_gemm;
pub(crate) mod conv2d_forward_mm;
pub(crate) mod conv2d_forward_planes;
pub(crate) mod conv2d_forward_rows;
pub(crate) mod conv2d_forward_tiled;
pub(crate) mod conv2d_input_grad;
pub(crate) mod conv2d_input_grad_phase;
pub(crate) mod conv2d_input_grad_tiled;
pub(crate) mod conv2d_pack_chunks;
pub(crate) mod conv2d_pack_core;
pub(crate) mod conv2d_pack_planes;
pub(crate) mod conv2d_pad_copies;
pub(crate) mod conv2d_unpad_output;
pub(crate) mod conv2d_weight_grad;
pub(crate) mod conv2d_weight_grad_core;
pub(crate) mod conv2d_weight_grad_gemm;
pub(crate) mod conv2d_weight_grad_mm;
pub(crate) mod conv2d_weight_grad_planes;
pub(crate) mod conv2d_weight_grad_tiled;
pub(crate) mod conv2d_zero_phase;
pub(crate) mod mse_loss;
pub(crate) mod reduce_partials;
pub(crate) mod sgd_step;
pub(crate) mod train_step_small;

pub(crate) use uniforms::GemmParams;

pub use model::{PassModel, REFERENCE_SMS};
pub use plan::{Op, Pass, Plan, MAX_DISPATCHES};
pub use profile::{DeviceProfile, Family};
pub use sgd_step::Sgd;
pub use spec::kernel_names;
pub(crate) use spec::{kernel_set_version, required_storage_buffers};

use crate::options::Conv2dGeometry;

/// Which kernels compute a pass. `Auto` picks by shape (see [`Algorithm::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// Chosen by shape.
    #[default]
    Auto,
    /// One invocation per output element (forward) or per weight element and slice (weight
    /// gradient): the simple reference kernels, which every device runs.
    Direct,
    /// Register-blocked kernels: 8 output channels x 4 pixels (forward; 16 pixels of one channel
    /// where each group has one output channel), 4 output channels x 4 taps per slice (weight
    /// gradient), 4 input channels per pixel (input gradient).
    Tiled,
    /// The forward pass as an implicit GEMM over padded input copies, with the weights in
    /// uniform blocks, and the planes kernels for one channel per group; the weight gradient
    /// likewise; otherwise the same kernels as `Tiled`. The CPU family's fastest.
    Gemm,
    /// The GPU family: one large dispatch per op with tiles in workgroup memory (the forward
    /// pass as one tiled implicit GEMM, the weight gradient as a split-K GEMM), and the planes
    /// kernels for one channel per group; otherwise as `Gemm`.
    Gpu,
}

impl std::str::FromStr for Algorithm {
    type Err = crate::error::Error;

    fn from_str(s: &str) -> crate::error::Result<Self> {
        [Algorithm::Auto]
            .into_iter()
            .chain(Algorithm::ALL)
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                crate::error::Error::option(format!(
                    "unknown algorithm {s:?}: auto, direct, tiled, gemm or gpu"
                ))
            })
    }
}

/// Output elements from which `Auto` takes the blocked kernels: fewer do not fill the device
/// with blocks.
pub const AUTO_BLOCKED_FROM: usize = 256;

impl Algorithm {
    /// Every explicit choice (all but `Auto`): what the tests run each case with.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Direct,
        Algorithm::Tiled,
        Algorithm::Gemm,
        Algorithm::Gpu,
    ];

    /// What `Auto` means for `g` on `profile`: the direct kernels for outputs of fewer than
    /// [`AUTO_BLOCKED_FROM`] elements; otherwise the family's fastest: `Gemm` for the CPU
    /// family, `Gpu` for the GPU family (see [`DeviceProfile::resolved_family`]).
    pub fn resolve(self, g: &Conv2dGeometry, profile: &DeviceProfile) -> Algorithm {
        match self {
            Algorithm::Auto if g.output_shape().iter().product::<usize>() < AUTO_BLOCKED_FROM => {
                Algorithm::Direct
            }
            Algorithm::Auto => match profile.resolved_family() {
                profile::Family::Cpu => Algorithm::Gemm,
                _ => Algorithm::Gpu,
            },
            a => a,
        }
    }

    /// The name `--algorithm` takes.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Auto => "auto",
            Algorithm::Direct => "direct",
            Algorithm::Tiled => "tiled",
            Algorithm::Gemm => "gemm",
            Algorithm::Gpu => "gpu",
        }
    }
}

/// Where `Auto` was resolved, the plan says so.
pub(crate) fn resolved(
    plan: &mut plan::Plan,
    g: &Conv2dGeometry,
    profile: &DeviceProfile,
    algorithm: Algorithm,
) -> Algorithm {
    let a = algorithm.resolve(g, profile);
    if algorithm == Algorithm::Auto {
        let outputs: usize = g.output_shape().iter().product();
        plan.reason(format!(
            "auto -> {}: {outputs} output elements {} {AUTO_BLOCKED_FROM}, {} family ({})",
            a.name(),
            if a == Algorithm::Direct { "<" } else { ">=" },
            profile.resolved_family().name(),
            if profile.family == profile::Family::Auto {
                format!("{:?} device", profile.device_type)
            } else {
                "asked for".to_string()
            }
        ));
    }
    a
}
