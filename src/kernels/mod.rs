//! Host side of the WGSL kernels: one module per shader with the same stem, the uniform structs
//! (kept in sync with the `.wgsl` files, checked by `tests/shaders.rs`), and the pipelines,
//! built once per device.

use wgpu::util::DeviceExt;

use crate::error::{Error, Result};
use crate::options::{Conv2dGeometry, ConvMode};

pub mod budget;
mod conv2d_bias_grad;
mod conv2d_forward;
mod conv2d_input_grad;
mod conv2d_weight_grad;
mod gemm;
mod mse_loss;
mod reduce_partials;
mod sgd_step;

pub use conv2d_weight_grad::REDUCTION_SLICE;
pub use sgd_step::Sgd;
pub(crate) use {
    conv2d_bias_grad::encode as encode_bias_grad, conv2d_forward::encode as encode_forward,
    conv2d_input_grad::encode as encode_input_grad,
    conv2d_weight_grad::encode as encode_weight_grad, mse_loss::encode as encode_mse_loss,
    sgd_step::encode as encode_sgd_step,
};

/// Which kernel computes a pass. `Auto` picks by shape (see [`Algorithm::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// Chosen by shape.
    #[default]
    Auto,
    /// One invocation per output element (forward) or per weight element and slice (weight
    /// gradient): the simple reference kernels.
    Direct,
    /// Register-blocked kernels: 8 output channels x 4 pixels (forward; 16 pixels of one channel
    /// where each group has one output channel), 4 output channels x 4 taps per slice (weight
    /// gradient), 4 input channels per pixel (input gradient).
    Tiled,
    /// The forward pass as an implicit GEMM over padded input copies, with the weights in
    /// uniform blocks (`shaders/conv2d_forward_gemm.wgsl`) where each group has several output
    /// channels; otherwise, and for the gradients, the same kernels as `Tiled`.
    Gemm,
}

impl Algorithm {
    /// Every explicit choice (all but `Auto`): what the tests run each case with.
    pub const ALL: [Algorithm; 3] = [Algorithm::Direct, Algorithm::Tiled, Algorithm::Gemm];

    /// What `Auto` means for `g`: the direct kernels for outputs too small to fill the device
    /// with blocks (under 256 output elements), `Gemm` otherwise.
    pub fn resolve(self, g: &Conv2dGeometry) -> Algorithm {
        match self {
            Algorithm::Auto => {
                if g.output_shape().iter().product::<usize>() < 256 {
                    Algorithm::Direct
                } else {
                    Algorithm::Gemm
                }
            }
            a => a,
        }
    }
}

/// Invocations per workgroup of the kernels dispatched as a line of work items (their `.wgsl`
/// files say `@workgroup_size(64)`; `tests/shaders.rs` checks every size against
/// [`workgroup_size`]).
pub const WORKGROUP_SIZE: u32 = 64;

/// Workgroup shape of the tiled forward and input-gradient kernels (3-D grids over columns,
/// rows and batch x channel blocks).
pub const TILE_WORKGROUP: [u32; 3] = [8, 8, 1];

/// The `@workgroup_size` each kernel declares.
pub fn workgroup_size(kernel: &str) -> [u32; 3] {
    match kernel {
        "conv2d_forward_tiled"
        | "conv2d_forward_rows"
        | "conv2d_input_grad_tiled"
        | "conv2d_pad_copies"
        | "conv2d_forward_gemm"
        | "conv2d_unpad_output"
        | "conv2d_weight_grad_gemm"
        | "conv2d_forward_planes" => TILE_WORKGROUP,
        _ => [WORKGROUP_SIZE, 1, 1],
    }
}

/// Every kernel: (stem = entry point, complete source). The `conv2d_*` kernels are
/// `shaders/conv2d_common.wgsl` followed by their own file.
pub const SHADERS: &[(&str, &str)] = &[
    (
        "conv2d_forward",
        concat!(
            include_str!("../../shaders/conv2d_common.wgsl"),
            include_str!("../../shaders/conv2d_forward.wgsl")
        ),
    ),
    (
        "conv2d_weight_grad",
        concat!(
            include_str!("../../shaders/conv2d_common.wgsl"),
            include_str!("../../shaders/conv2d_weight_grad.wgsl")
        ),
    ),
    (
        "conv2d_input_grad",
        concat!(
            include_str!("../../shaders/conv2d_common.wgsl"),
            include_str!("../../shaders/conv2d_input_grad.wgsl")
        ),
    ),
    (
        "conv2d_bias_grad",
        concat!(
            include_str!("../../shaders/conv2d_common.wgsl"),
            include_str!("../../shaders/conv2d_bias_grad.wgsl")
        ),
    ),
    (
        "conv2d_forward_tiled",
        concat!(
            include_str!("../../shaders/conv2d_common.wgsl"),
            include_str!("../../shaders/conv2d_forward_tiled.wgsl")
        ),
    ),
    (
        "conv2d_forward_rows",
        concat!(
            include_str!("../../shaders/conv2d_common.wgsl"),
            include_str!("../../shaders/conv2d_forward_rows.wgsl")
        ),
    ),
    (
        "conv2d_weight_grad_tiled",
        concat!(
            include_str!("../../shaders/conv2d_common.wgsl"),
            include_str!("../../shaders/conv2d_weight_grad_tiled.wgsl")
        ),
    ),
    (
        "conv2d_input_grad_tiled",
        concat!(
            include_str!("../../shaders/conv2d_common.wgsl"),
            include_str!("../../shaders/conv2d_input_grad_tiled.wgsl")
        ),
    ),
    (
        "conv2d_pad_copies",
        concat!(
            include_str!("../../shaders/conv2d_common.wgsl"),
            include_str!("../../shaders/conv2d_gemm_common.wgsl"),
            include_str!("../../shaders/conv2d_pad_copies.wgsl")
        ),
    ),
    (
        "conv2d_pack_chunks",
        concat!(
            include_str!("../../shaders/conv2d_common.wgsl"),
            include_str!("../../shaders/conv2d_gemm_common.wgsl"),
            include_str!("../../shaders/conv2d_pack_chunks.wgsl")
        ),
    ),
    (
        "conv2d_forward_gemm",
        concat!(
            include_str!("../../shaders/conv2d_common.wgsl"),
            include_str!("../../shaders/conv2d_gemm_common.wgsl"),
            include_str!("../../shaders/conv2d_forward_gemm.wgsl")
        ),
    ),
    (
        "conv2d_unpad_output",
        concat!(
            include_str!("../../shaders/conv2d_common.wgsl"),
            include_str!("../../shaders/conv2d_gemm_common.wgsl"),
            include_str!("../../shaders/conv2d_unpad_output.wgsl")
        ),
    ),
    (
        "conv2d_forward_planes",
        concat!(
            include_str!("../../shaders/conv2d_common.wgsl"),
            include_str!("../../shaders/conv2d_gemm_common.wgsl"),
            include_str!("../../shaders/conv2d_planes_common.wgsl"),
            include_str!("../../shaders/conv2d_forward_planes.wgsl")
        ),
    ),
    (
        "conv2d_pack_planes",
        concat!(
            include_str!("../../shaders/conv2d_common.wgsl"),
            include_str!("../../shaders/conv2d_gemm_common.wgsl"),
            include_str!("../../shaders/conv2d_pack_planes.wgsl")
        ),
    ),
    (
        "conv2d_weight_grad_planes",
        concat!(
            include_str!("../../shaders/conv2d_common.wgsl"),
            include_str!("../../shaders/conv2d_gemm_common.wgsl"),
            include_str!("../../shaders/conv2d_planes_common.wgsl"),
            include_str!("../../shaders/conv2d_weight_grad_planes.wgsl")
        ),
    ),
    (
        "conv2d_weight_grad_gemm",
        concat!(
            include_str!("../../shaders/conv2d_common.wgsl"),
            include_str!("../../shaders/conv2d_gemm_common.wgsl"),
            include_str!("../../shaders/conv2d_weight_grad_gemm.wgsl")
        ),
    ),
    (
        "reduce_partials",
        include_str!("../../shaders/reduce_partials.wgsl"),
    ),
    ("mse_loss", include_str!("../../shaders/mse_loss.wgsl")),
    ("sgd_step", include_str!("../../shaders/sgd_step.wgsl")),
];

/// Uniform of the `conv2d_*` kernels. Keep in sync with `struct Params` in `shaders/conv2d_*.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ConvParams {
    /// Input `[N, C, H, W]`.
    pub n: u32,
    /// Input channels.
    pub c: u32,
    /// Input height.
    pub h: u32,
    /// Input width.
    pub w: u32,
    /// Output channels.
    pub oc: u32,
    /// Kernel height.
    pub kh: u32,
    /// Kernel width.
    pub kw: u32,
    /// Input channels per group.
    pub cpg: u32,
    /// Output height.
    pub oh: u32,
    /// Output width.
    pub ow: u32,
    /// Groups.
    pub groups: u32,
    /// Output channels per group.
    pub ocpg: u32,
    /// Stride along the height.
    pub stride_h: u32,
    /// Stride along the width.
    pub stride_w: u32,
    /// Dilation along the height.
    pub dil_h: u32,
    /// Dilation along the width.
    pub dil_w: u32,
    /// Padding above.
    pub pad_top: u32,
    /// Padding on the left.
    pub pad_left: u32,
    /// Padding below.
    pub pad_bottom: u32,
    /// Padding on the right.
    pub pad_right: u32,
    /// `PaddingMode::code`.
    pub pad_mode: u32,
    /// 1 for strict convolution (flipped kernel).
    pub flip: u32,
    /// 1 when a bias is added.
    pub has_bias: u32,
    /// Invocations that do work (one per output or input element).
    pub total: u32,
    /// Length of one slice of a reduction.
    pub slice_len: u32,
    /// Number of slices of a reduction.
    pub slices: u32,
    /// First work item of this dispatch (long passes are cut into several dispatches).
    pub base: u32,
    /// 1 where this piece of a reduction adds to what the pieces before it wrote.
    pub accumulate: u32,
    /// Start of this piece's range of its kernel's outermost loop (see [`budget`]).
    pub lo0: u32,
    /// End of that range.
    pub hi0: u32,
    /// Range of the second loop level.
    pub lo1: u32,
    /// End of that range.
    pub hi1: u32,
    /// Range of the third loop level.
    pub lo2: u32,
    /// End of that range.
    pub hi2: u32,
    /// Range of the fourth loop level.
    pub lo3: u32,
    /// End of that range.
    pub hi3: u32,
    /// Range of the fifth loop level.
    pub lo4: u32,
    /// End of that range.
    pub hi4: u32,
    /// Padding to 16 bytes.
    pub _pad0: u32,
    /// Padding to 16 bytes.
    pub _pad1: u32,
}

impl ConvParams {
    pub(crate) fn new(g: &Conv2dGeometry) -> Self {
        let u = |v: usize| v as u32; // resolve() bounds every size by u32::MAX
        Self {
            n: u(g.n),
            c: u(g.c),
            h: u(g.h),
            w: u(g.w),
            oc: u(g.oc),
            kh: u(g.kh),
            kw: u(g.kw),
            cpg: u(g.cpg()),
            oh: u(g.oh),
            ow: u(g.ow),
            groups: u(g.groups),
            ocpg: u(g.ocpg()),
            stride_h: u(g.stride.h),
            stride_w: u(g.stride.w),
            dil_h: u(g.dilation.h),
            dil_w: u(g.dilation.w),
            pad_top: u(g.pad_top),
            pad_left: u(g.pad_left),
            pad_bottom: u(g.pad_bottom),
            pad_right: u(g.pad_right),
            pad_mode: g.padding_mode.code(),
            flip: u32::from(g.mode == ConvMode::Convolution),
            has_bias: 0,
            total: 0,
            slice_len: 0,
            slices: 0,
            base: 0,
            accumulate: 0,
            lo0: 0,
            hi0: 0,
            lo1: 0,
            hi1: 0,
            lo2: 0,
            hi2: 0,
            lo3: 0,
            hi3: 0,
            lo4: 0,
            hi4: 0,
            _pad0: 0,
            _pad1: 0,
        }
    }

    /// Sets the loop ranges of one piece of a nest cut by [`budget::split_nest`] (up to five
    /// levels, outermost first); the piece adds to the pieces before it unless it is the first.
    pub(crate) fn set_piece(&mut self, index: usize, ranges: &[std::ops::Range<usize>]) {
        let mut r = ranges.iter().map(|r| (r.start as u32, r.end as u32));
        let mut next = || r.next().unwrap_or((0, 0));
        (self.lo0, self.hi0) = next();
        (self.lo1, self.hi1) = next();
        (self.lo2, self.hi2) = next();
        (self.lo3, self.hi3) = next();
        (self.lo4, self.hi4) = next();
        self.accumulate = u32::from(index > 0);
    }
}

/// Uniform of the GEMM kernels (`conv2d_pad_copies`, `conv2d_pack_chunks`,
/// `conv2d_forward_gemm`, `conv2d_unpad_output`). Keep in sync with `struct Gemm` in
/// `shaders/conv2d_gemm_common.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct GemmParams {
    /// Batch.
    pub n: u32,
    /// Input channels.
    pub c: u32,
    /// Input height.
    pub h: u32,
    /// Input width.
    pub w: u32,
    /// Output channels.
    pub oc: u32,
    /// Kernel height.
    pub kh: u32,
    /// Kernel width.
    pub kw: u32,
    /// Input channels per group.
    pub cpg: u32,
    /// Output height.
    pub oh: u32,
    /// Output width.
    pub ow: u32,
    /// Groups.
    pub groups: u32,
    /// Output channels per group.
    pub ocpg: u32,
    /// Stride along the height.
    pub stride_h: u32,
    /// Stride along the width.
    pub stride_w: u32,
    /// Dilation along the height.
    pub dil_h: u32,
    /// Dilation along the width.
    pub dil_w: u32,
    /// Padding above.
    pub pad_top: u32,
    /// Padding on the left.
    pub pad_left: u32,
    /// Padding on the right.
    pub pad_right: u32,
    /// `PaddingMode::code`.
    pub pad_mode: u32,
    /// Padded input rows.
    pub hp: u32,
    /// Row length of one padded copy (a multiple of 4).
    pub wq: u32,
    /// Output row length rounded up to a multiple of 4.
    pub ow4: u32,
    /// Floats in one padded copy (a multiple of 4).
    pub copy_len: u32,
    /// 1 when a bias is added.
    pub has_bias: u32,
    /// Taps per output channel: `cpg * kh * kw`.
    pub taps: u32,
    /// Blocks of 8 output channels per group.
    pub ocb: u32,
    /// Chunks of [`CHUNK_TAPS`] taps per block.
    pub chunks: u32,
    /// 1 for strict convolution (flipped kernel).
    pub flip: u32,
    /// First z workgroup of this dispatch.
    pub base: u32,
    /// Bit `r * 4 + t` set: padded copy (r, t) is read by some tap and stored.
    pub copy_mask: u32,
    /// Offset, in vec4s, of the zero region that a short last chunk's padding taps read.
    pub zero_offset: u32,
    /// Weight gradient: slices of the `N * OH` output rows.
    pub slices: u32,
    /// Weight gradient: output rows per slice.
    pub slice_rows: u32,
    /// 1 where the weight buffer holds a layer's weight `[C, OC/groups, KH, KW]` whose
    /// transpose this pass applies (the input gradient as a forward pass).
    pub transposed: u32,
    /// Zero insertion along the height: the input buffer holds every `up_h`-th row of the
    /// `h` logical rows (1: none).
    pub up_h: u32,
    /// Zero insertion along the width (1: none).
    pub up_w: u32,
    /// Padding to 16 bytes.
    pub _pad0: u32,
    /// Padding to 16 bytes.
    pub _pad1: u32,
    /// Padding to 16 bytes.
    pub _pad2: u32,
}

/// Bytes between two output channels' uniform blocks in `conv2d_forward_planes` (`struct Plane`,
/// `PLANE_WORDS` in the shaders).
pub const PLANE_BYTES: u64 = 256;

/// Output channels from which `conv2d_forward_planes` loads weights per lane in one dispatch
/// instead of dispatching once per channel with the weights in a uniform block.
pub const PLANES_PER_LANE_FROM: usize = 16;

/// Largest kernel (height, width) `conv2d_forward_planes` takes.
pub const PLANES_MAX_KERNEL: (usize, usize) = (7, 8);

/// Taps one dispatch of `conv2d_forward_gemm` adds (`CHUNK_TAPS` in the shaders).
pub const CHUNK_TAPS: usize = 64;

/// Bytes between two chunks' uniform blocks: `struct Chunk` (2320 bytes) rounded up to the
/// 256-byte uniform offset alignment that every adapter accepts (`CHUNK_WORDS` in the shaders).
pub const CHUNK_BYTES: u64 = 2560;

/// Uniform of `reduce_partials`. Keep in sync with `shaders/reduce_partials.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ReduceParams {
    /// Sums to produce: elements x groups.
    pub count: u32,
    /// Partials per element.
    pub slices: u32,
    /// Consecutive partials per sum (`slices` in a single pass; fewer where the loop budget
    /// makes the reduction a tree of passes).
    pub group: u32,
    /// Padding.
    pub _pad1: u32,
}

/// Uniform of `mse_loss`. Keep in sync with `shaders/mse_loss.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LossParams {
    /// Elements.
    pub count: u32,
    /// Elements per workgroup.
    pub slice_len: u32,
    /// Workgroups.
    pub slices: u32,
    /// Loss scale (1 for the chapter's sum).
    pub scale: f32,
}

/// Uniform of `sgd_step`. Keep in sync with `shaders/sgd_step.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SgdParams {
    /// Parameters.
    pub count: u32,
    /// Learning rate.
    pub lr: f32,
    /// Momentum (0: plain SGD).
    pub momentum: f32,
    /// L2 weight decay.
    pub weight_decay: f32,
}

/// A compute pipeline and its bind group layout.
pub(crate) struct Kernel {
    name: &'static str,
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

/// Every pipeline, built once per device.
pub(crate) struct Kernels {
    pub(crate) conv2d_forward: Kernel,
    pub(crate) conv2d_forward_tiled: Kernel,
    pub(crate) conv2d_forward_rows: Kernel,
    pub(crate) conv2d_forward_gemm: Kernel,
    pub(crate) conv2d_pack_chunks: Kernel,
    pub(crate) conv2d_unpad_output: Kernel,
    pub(crate) conv2d_weight_grad_gemm: Kernel,
    pub(crate) conv2d_pack_planes: Kernel,
    /// Kernels specialised by override constants (`conv2d_forward_planes`,
    /// `conv2d_weight_grad_planes`), built on first use, by name and constants.
    specialised: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<Kernel>>>,
    pub(crate) conv2d_weight_grad_tiled: Kernel,
    pub(crate) conv2d_input_grad_tiled: Kernel,
    pub(crate) conv2d_weight_grad: Kernel,
    pub(crate) conv2d_input_grad: Kernel,
    pub(crate) conv2d_bias_grad: Kernel,
    pub(crate) reduce_partials: Kernel,
    pub(crate) mse_loss: Kernel,
    pub(crate) sgd_step: Kernel,
    /// Bound where a kernel's optional input (the bias) is absent.
    pub(crate) placeholder: wgpu::Buffer,
    /// Bound to an output binding that a kernel's variant never writes.
    pub(crate) placeholder_out: wgpu::Buffer,
}

/// A binding after the parameters: read-only storage, read-write storage, or a uniform block.
#[derive(Clone, Copy)]
pub(crate) enum Access {
    Read,
    Write,
    Uniform,
}

impl Kernels {
    pub(crate) fn new(device: &wgpu::Device) -> Result<Self> {
        use Access::{Read, Uniform, Write};
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let k = Self {
            conv2d_forward: Kernel::new(device, "conv2d_forward", &[Read, Read, Read, Write]),
            conv2d_forward_tiled: Kernel::new(
                device,
                "conv2d_forward_tiled",
                &[Read, Read, Read, Write],
            ),
            conv2d_forward_rows: Kernel::new(
                device,
                "conv2d_forward_rows",
                &[Read, Read, Read, Write],
            ),
            conv2d_forward_gemm: Kernel::new(
                device,
                "conv2d_forward_gemm",
                &[Uniform, Read, Read, Write],
            ),
            conv2d_pack_chunks: Kernel::new(device, "conv2d_pack_chunks", &[Read, Write]),
            conv2d_unpad_output: Kernel::new(device, "conv2d_unpad_output", &[Read, Write]),
            conv2d_weight_grad_gemm: Kernel::new(
                device,
                "conv2d_weight_grad_gemm",
                &[Read, Read, Write],
            ),
            conv2d_pack_planes: Kernel::new(device, "conv2d_pack_planes", &[Read, Write]),
            specialised: Default::default(),
            conv2d_input_grad_tiled: Kernel::new(
                device,
                "conv2d_input_grad_tiled",
                &[Read, Read, Write],
            ),
            conv2d_weight_grad_tiled: Kernel::new(
                device,
                "conv2d_weight_grad_tiled",
                &[Read, Read, Write],
            ),
            conv2d_weight_grad: Kernel::new(device, "conv2d_weight_grad", &[Read, Read, Write]),
            conv2d_input_grad: Kernel::new(device, "conv2d_input_grad", &[Read, Read, Write]),
            conv2d_bias_grad: Kernel::new(device, "conv2d_bias_grad", &[Read, Write]),
            reduce_partials: Kernel::new(device, "reduce_partials", &[Read, Write]),
            mse_loss: Kernel::new(device, "mse_loss", &[Read, Read, Write, Write]),
            sgd_step: Kernel::new(device, "sgd_step", &[Read, Write, Write]),
            placeholder: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgpu-conv: placeholder"),
                size: 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            }),
            placeholder_out: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgpu-conv: unwritten output placeholder"),
                size: 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            }),
        };
        if let Some(e) = pollster::block_on(validation.pop()) {
            return Err(Error::Validation {
                label: "building pipelines".into(),
                message: e.to_string(),
            });
        }
        if let Some(e) = pollster::block_on(oom.pop()) {
            return Err(Error::OutOfMemory(format!("building pipelines: {e}")));
        }
        Ok(k)
    }
}

impl Kernels {
    /// `conv2d_forward_planes` for a `kh` x `kw` kernel (the override constants KH and KW),
    /// with its weights per lane or in uniform blocks (PER_LANE_WEIGHTS), float or vec4
    /// stores (FLOAT_OUT), and reading the input itself with `direct_pad_left` columns of zero
    /// padding or copy 0 (`None`; DIRECT_PAD_LEFT), built on first use.
    pub(crate) fn forward_planes(
        &self,
        device: &wgpu::Device,
        kh: u32,
        kw: u32,
        per_lane: bool,
        float_out: bool,
        direct_pad_left: Option<u32>,
    ) -> std::sync::Arc<Kernel> {
        use Access::{Read, Uniform, Write};
        self.specialised(
            device,
            "conv2d_forward_planes",
            &[Uniform, Read, Read, Write, Read, Write],
            &[
                ("KH", kh),
                ("KW", kw),
                ("PER_LANE_WEIGHTS", u32::from(per_lane)),
                ("FLOAT_OUT", u32::from(float_out)),
                ("DIRECT_PAD_LEFT", direct_pad_left.unwrap_or(255)),
            ],
        )
    }

    /// `conv2d_pad_copies`, for inputs upsampled by zero insertion or not (UPSAMPLED), built
    /// on first use.
    pub(crate) fn pad_copies(
        &self,
        device: &wgpu::Device,
        upsampled: bool,
    ) -> std::sync::Arc<Kernel> {
        use Access::{Read, Write};
        self.specialised(
            device,
            "conv2d_pad_copies",
            &[Read, Write],
            &[("UPSAMPLED", u32::from(upsampled))],
        )
    }

    /// `conv2d_weight_grad_planes` for a `kh` x `kw` kernel, built on first use.
    pub(crate) fn weight_grad_planes(
        &self,
        device: &wgpu::Device,
        kh: u32,
        kw: u32,
    ) -> std::sync::Arc<Kernel> {
        use Access::{Read, Write};
        self.specialised(
            device,
            "conv2d_weight_grad_planes",
            &[Read, Read, Write],
            &[("KH", kh), ("KW", kw)],
        )
    }

    fn specialised(
        &self,
        device: &wgpu::Device,
        name: &'static str,
        storage: &[Access],
        constants: &[(&str, u32)],
    ) -> std::sync::Arc<Kernel> {
        let mut cache = self
            .specialised
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache
            .entry(format!("{name} {constants:?}"))
            .or_insert_with(|| {
                let constants: Vec<(&str, f64)> =
                    constants.iter().map(|&(k, v)| (k, f64::from(v))).collect();
                std::sync::Arc::new(Kernel::with_constants(device, name, storage, &constants))
            })
            .clone()
    }
}

impl Kernel {
    fn new(device: &wgpu::Device, name: &'static str, storage: &[Access]) -> Self {
        Self::with_constants(device, name, storage, &[])
    }

    /// A kernel with its override constants set.
    fn with_constants(
        device: &wgpu::Device,
        name: &'static str,
        storage: &[Access],
        constants: &[(&str, f64)],
    ) -> Self {
        let source = SHADERS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
            .expect("every kernel is listed in SHADERS");
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }];
        for (i, a) in storage.iter().enumerate() {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match a {
                        Access::Uniform => wgpu::BufferBindingType::Uniform,
                        a => wgpu::BufferBindingType::Storage {
                            read_only: matches!(a, Access::Read),
                        },
                    },
                    has_dynamic_offset: matches!(a, Access::Uniform),
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(&format!("{name}: bind group layout")),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&format!("{name}: pipeline layout")),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&format!("{name}: pipeline")),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(name),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants,
                ..Default::default()
            },
            cache: None,
        });
        Self {
            name,
            pipeline,
            layout,
        }
    }

    /// Records one dispatch of a 3-D grid of workgroups.
    pub(crate) fn dispatch_grid(
        &self,
        device: &wgpu::Device,
        limits: &wgpu::Limits,
        encoder: &mut wgpu::CommandEncoder,
        params: &[u8],
        buffers: &[&wgpu::Buffer],
        grid: [u32; 3],
    ) -> Result<()> {
        let max = limits.max_compute_workgroups_per_dimension;
        if grid.iter().any(|&d| d > max) {
            return Err(Error::TooLarge(format!(
                "{}: grid {grid:?} exceeds {max} workgroups per dimension",
                self.name
            )));
        }
        let bind_group = self.bind(device, params, buffers);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(self.name),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(grid[0].max(1), grid[1].max(1), grid[2].max(1));
        Ok(())
    }

    /// A bind group of `resources` at bindings 0, 1, ... (the parameters included).
    pub(crate) fn bind_resources(
        &self,
        device: &wgpu::Device,
        resources: &[wgpu::BindingResource<'_>],
    ) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = resources
            .iter()
            .enumerate()
            .map(|(i, r)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: r.clone(),
            })
            .collect();
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&format!("{}: bind group", self.name)),
            layout: &self.layout,
            entries: &entries,
        })
    }

    /// The compute pipeline.
    pub(crate) fn pipeline(&self) -> &wgpu::ComputePipeline {
        &self.pipeline
    }

    fn bind(
        &self,
        device: &wgpu::Device,
        params: &[u8],
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(&format!("{}: params", self.name)),
            contents: params,
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.as_entire_binding(),
            });
        }
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&format!("{}: bind group", self.name)),
            layout: &self.layout,
            entries: &entries,
        })
    }

    /// Records one dispatch of `workgroups` workgroups (spread over x and y so that neither
    /// passes the device's per-dimension limit) with `params` as the uniform and `buffers` bound
    /// at 1, 2, ...
    pub(crate) fn dispatch(
        &self,
        device: &wgpu::Device,
        limits: &wgpu::Limits,
        encoder: &mut wgpu::CommandEncoder,
        params: &[u8],
        buffers: &[&wgpu::Buffer],
        workgroups: u32,
    ) -> Result<()> {
        let (x, y) =
            grid(workgroups, limits.max_compute_workgroups_per_dimension).ok_or_else(|| {
                Error::TooLarge(format!(
                    "{}: {workgroups} workgroups do not fit one dispatch",
                    self.name
                ))
            })?;
        self.dispatch_grid(device, limits, encoder, params, buffers, [x, y, 1])
    }
}

/// The most floating-point work one dispatch is given (about 0.1 s on a CPU adapter, far less
/// on a GPU), so that no dispatch runs long enough for a driver watchdog to reset the device.
pub const MAX_DISPATCH_FLOPS: f64 = (1u64 << 28) as f64;

/// Cuts `items` work items of `flops_per_item` each into `(first, count)` runs of at most
/// [`MAX_DISPATCH_FLOPS`] (at least one item each), each aligned to `align` items.
pub(crate) fn dispatch_chunks(
    items: usize,
    flops_per_item: f64,
    align: usize,
) -> Vec<(usize, usize)> {
    let align = align.max(1);
    let per = ((MAX_DISPATCH_FLOPS / flops_per_item.max(1.0)) as usize / align).max(1) * align;
    (0..items)
        .step_by(per)
        .map(|s| (s, per.min(items - s)))
        .collect()
}

/// [`dispatch_chunks`] for the z axis of a 3-D grid: runs of at most `max_per_dim` items too.
pub(crate) fn z_chunks(items: usize, flops_per_item: f64, max_per_dim: u32) -> Vec<(usize, usize)> {
    let max = (max_per_dim as usize).max(1);
    dispatch_chunks(items, flops_per_item, 1)
        .into_iter()
        .flat_map(|(first, count)| {
            (first..first + count)
                .step_by(max)
                .map(move |s| (s, max.min(first + count - s)))
        })
        .collect()
}

/// Spreads `workgroups` over a 2-D grid `(x, y)` with `x, y <= max_per_dim`. The shaders
/// rebuild the linear index as `wid.y * nwg.x + wid.x` and skip the excess.
pub fn grid(workgroups: u32, max_per_dim: u32) -> Option<(u32, u32)> {
    let workgroups = workgroups.max(1);
    let x = workgroups.min(max_per_dim.max(1));
    let y = workgroups.div_ceil(x);
    (y <= max_per_dim).then_some((x, y))
}

/// Workgroups needed for one invocation per item.
pub(crate) fn groups_for(items: usize) -> Result<u32> {
    u32::try_from(items.div_ceil(WORKGROUP_SIZE as usize))
        .map_err(|_| Error::TooLarge(format!("{items} invocations do not fit one dispatch")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_chunks_cover_everything_once() {
        for (items, flops, align) in [
            (10usize, 1.0, 1usize),
            (1000, MAX_DISPATCH_FLOPS / 7.0, 1),
            (5000, MAX_DISPATCH_FLOPS / 100.0, 64),
            (3, MAX_DISPATCH_FLOPS * 10.0, 1),
        ] {
            let chunks = dispatch_chunks(items, flops, align);
            let mut next = 0;
            for &(first, count) in &chunks {
                assert_eq!(first, next);
                assert!(count >= 1);
                assert!(first % align == 0);
                assert!(count as f64 * flops <= MAX_DISPATCH_FLOPS || count <= align);
                next += count;
            }
            assert_eq!(next, items);
        }
        assert_eq!(
            dispatch_chunks(1000, MAX_DISPATCH_FLOPS / 7.0, 1).len(),
            143
        );
    }

    #[test]
    fn z_chunks_cover_everything_once_within_the_limit() {
        for (items, flops, max) in [
            (70_000usize, 1.0, 65_535u32),
            (10, MAX_DISPATCH_FLOPS / 3.0, 4),
            (9, 1.0, 4),
            (1, 1.0, 65_535),
        ] {
            let mut next = 0;
            for (first, count) in z_chunks(items, flops, max) {
                assert_eq!(first, next);
                assert!(count >= 1 && count <= max as usize, "{count} > {max}");
                next += count;
            }
            assert_eq!(next, items);
        }
    }

    #[test]
    fn grid_respects_the_limit() {
        assert_eq!(grid(10, 65535), Some((10, 1)));
        assert_eq!(grid(70000, 65535), Some((65535, 2)));
        assert_eq!(grid(u32::MAX, 4), None);
    }
}
