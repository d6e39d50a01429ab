//! Plans: what an operation will record, computed from its geometry and a [`DeviceProfile`]
//! alone, with no GPU. A [`Plan`] names each pass (kernel, constants, bindings, and every
//! dispatch with its grid and uniform), the scratch buffers and their bytes, and the reason for
//! each choice; [`super::record`] records one. [`Plan::validate`] checks a plan against a
//! profile's limits and the loop budget.

use std::fmt;

use super::budget::LOOP_BUDGET;
use super::profile::DeviceProfile;
use super::spec::KernelSpec;
use crate::error::{Error, Limit, Result};

/// The operation a plan records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `y = conv(x, w) + bias`; operands `[x, w, bias, y]`.
    Forward,
    /// The weight gradient; operands `[x, grad_output, grad_weight]`.
    WeightGrad,
    /// The input gradient; operands `[w, grad_output, grad_input]`.
    InputGrad,
    /// The bias gradient; operands `[grad_output, grad_bias]`.
    BiasGrad,
    /// The squared-error loss and its gradient; operands `[pred, target, grad, loss]`.
    MseLoss,
    /// One SGD step; operands `[grad, weight, velocity]`.
    SgdStep,
    /// A whole training step of a small layer; operands `[data (input, then target), state
    /// (weight, bias and their velocities), loss]`.
    TrainStep,
}

impl std::str::FromStr for Op {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        [
            Op::Forward,
            Op::WeightGrad,
            Op::InputGrad,
            Op::BiasGrad,
            Op::MseLoss,
            Op::SgdStep,
            Op::TrainStep,
        ]
        .into_iter()
        .find(|op| op.name() == s)
        .ok_or_else(|| {
            Error::option(format!(
                "unknown op {s:?}: forward, weight_grad, input_grad, bias_grad, mse_loss, sgd_step or train_step"
            ))
        })
    }
}

impl Op {
    /// The name `wgpu-conv plan` and `bench` use.
    pub fn name(self) -> &'static str {
        match self {
            Op::Forward => "forward",
            Op::WeightGrad => "weight_grad",
            Op::InputGrad => "input_grad",
            Op::BiasGrad => "bias_grad",
            Op::MseLoss => "mse_loss",
            Op::SgdStep => "sgd_step",
            Op::TrainStep => "train_step",
        }
    }
}

/// A buffer a pass binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Buf {
    /// The operation's operand `i` (see [`Op`]).
    Operand(usize),
    /// The plan's scratch buffer `i`.
    Scratch(usize),
    /// A small zero buffer, bound where an optional input (the bias) is absent.
    Zeros,
    /// A small buffer bound to an output that a kernel's variant never writes.
    Discard,
}

/// One binding after the uniform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Bind {
    pub buf: Buf,
    /// `Some(bytes)`: a uniform block of that size at each dispatch's dynamic offset.
    pub block: Option<u64>,
}

impl From<Buf> for Bind {
    fn from(buf: Buf) -> Self {
        Bind { buf, block: None }
    }
}

/// One dispatch: its grid of workgroups, its uniform (an index into the pass's), and the byte
/// offset of its block where the kernel binds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Dispatch {
    pub grid: [u32; 3],
    pub uniform: usize,
    pub block: u32,
}

/// The most dispatches one pass of a plan may hold (at 15-20 us each on a software adapter,
/// about a second of dispatching; at about 100 bytes each, a few MB of plan).
pub const MAX_DISPATCHES: usize = 1 << 16;

/// One kernel's dispatches, in order.
#[derive(Debug, Clone)]
pub struct Pass {
    pub(crate) spec: &'static KernelSpec,
    pub(crate) constants: Vec<(&'static str, u32)>,
    pub(crate) bindings: Vec<Bind>,
    pub(crate) uniforms: Vec<Vec<u8>>,
    pub(crate) dispatches: Vec<Dispatch>,
    pub(crate) loop_iterations: u64,
    /// What the kernel module states for the warp model, where it has one.
    pub(crate) model: Option<super::model::KernelModel>,
}

impl Pass {
    /// A pass of `spec` with `bindings` (after the uniform), whose invocations each run at most
    /// `loop_iterations` loop iterations.
    pub(crate) fn new(
        spec: &'static KernelSpec,
        bindings: impl IntoIterator<Item = Bind>,
        loop_iterations: u64,
    ) -> Self {
        Self {
            spec,
            constants: Vec::new(),
            bindings: bindings.into_iter().collect(),
            uniforms: Vec::new(),
            dispatches: Vec::new(),
            loop_iterations,
            model: None,
        }
    }

    /// With the warp model's figures for it.
    pub(crate) fn with_model(mut self, model: super::model::KernelModel) -> Self {
        self.model = Some(model);
        self
    }

    /// How the pass would run on the reference GPU (132 SMs): its grid's fill and, for the
    /// kernels with a warp model (the GEMM kernels), its workgroup-memory traffic and bank
    /// conflicts, its gather's sectors and the FMAs it wastes.
    pub fn model(&self) -> super::model::PassModel {
        let g = self.largest_grid();
        let workgroups = g.iter().map(|&d| u64::from(d)).product();
        super::model::PassModel::new(workgroups, self.model.as_ref())
    }

    /// With override constants set.
    pub(crate) fn with_constants(mut self, constants: &[(&'static str, u32)]) -> Self {
        self.constants = constants.to_vec();
        self
    }

    /// Adds a dispatch of `grid` with `params` as its uniform.
    pub(crate) fn dispatch(
        &mut self,
        params: &impl bytemuck::Pod,
        grid: [u32; 3],
    ) -> crate::error::Result<()> {
        self.dispatch_block(params, grid, 0)
    }

    /// Adds a dispatch whose block is at byte `block` of the block binding; past
    /// [`MAX_DISPATCHES`] in one pass, [`Error::TooLarge`](crate::Error::TooLarge) (the
    /// planner stops there rather than build millions of dispatches for a shape no device
    /// would run in reasonable time).
    pub(crate) fn dispatch_block(
        &mut self,
        params: &impl bytemuck::Pod,
        grid: [u32; 3],
        block: u32,
    ) -> crate::error::Result<()> {
        if self.dispatches.len() >= MAX_DISPATCHES {
            return Err(crate::error::Error::too_large(
                format!(
                    "the {} pass (a smaller input or kernel, or another algorithm, needs \
                     fewer dispatches)",
                    self.spec.name
                ),
                crate::error::Limit::Dispatches,
                MAX_DISPATCHES as u64 + 1,
                MAX_DISPATCHES as u64,
            ));
        }
        let bytes = bytemuck::bytes_of(params);
        if self.uniforms.last().map(Vec::as_slice) != Some(bytes) {
            self.uniforms.push(bytes.to_vec());
        }
        self.dispatches.push(Dispatch {
            grid,
            uniform: self.uniforms.len() - 1,
            block,
        });
        Ok(())
    }

    /// The kernel's entry point.
    pub fn kernel(&self) -> &'static str {
        self.spec.name
    }

    /// Override constants, as `NAME=value`.
    pub fn constants(&self) -> String {
        self.constants
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The override constants' names and values (what the pipeline is built with).
    pub fn constant_values(&self) -> &[(&'static str, u32)] {
        &self.constants
    }

    /// The complete WGSL source the kernel's pipeline is built from (with its preludes).
    pub fn source(&self) -> &'static str {
        self.spec.source
    }

    /// Whether the kernel is built without naga's runtime checks (unless the context has
    /// `WGPU_CONV_CHECKED=1`): every read and write in bounds by construction.
    pub fn trusted(&self) -> bool {
        self.spec.trusted
    }

    /// Dispatches.
    pub fn dispatches(&self) -> usize {
        self.dispatches.len()
    }

    /// The grid of the dispatch with the most invocations.
    pub fn largest_grid(&self) -> [u32; 3] {
        self.dispatches
            .iter()
            .map(|d| d.grid)
            .max_by_key(|g| g.iter().map(|&d| u64::from(d)).product::<u64>())
            .unwrap_or([0; 3])
    }

    /// Invocations of the largest dispatch.
    pub fn invocations(&self) -> u64 {
        let g = self.largest_grid();
        g.iter().map(|&d| u64::from(d)).product::<u64>()
            * u64::from(self.spec.invocations_per_workgroup())
    }

    /// Worst-case loop iterations of one invocation.
    pub fn loop_iterations(&self) -> u64 {
        self.loop_iterations
    }

    /// Storage buffers the kernel binds.
    pub fn storage_buffers(&self) -> u32 {
        self.spec.storage_buffers()
    }
}

/// A scratch buffer the plan allocates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Scratch {
    pub label: &'static str,
    pub bytes: u64,
    /// Also bound as uniform blocks.
    pub uniform: bool,
    /// Bytes from here to the end are cleared to zero before the passes.
    pub zero_from: Option<u64>,
}

/// What an operation records: its passes in order, its scratch buffers, and why.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(crate) op: Op,
    pub(crate) passes: Vec<Pass>,
    pub(crate) scratch: Vec<Scratch>,
    pub(crate) reasons: Vec<String>,
}

/// Kernels that prepare or finish the work of another (copies, packing, sums of partials).
const HELPERS: [&str; 7] = [
    "conv2d_pad_copies",
    "conv2d_pack_chunks",
    "conv2d_pack_core",
    "conv2d_pack_planes",
    "conv2d_unpad_output",
    "conv2d_zero_phase",
    "reduce_partials",
];

impl Plan {
    pub(crate) fn new(op: Op) -> Self {
        Self {
            op,
            passes: Vec::new(),
            scratch: Vec::new(),
            reasons: Vec::new(),
        }
    }

    /// Records why a choice was made.
    pub(crate) fn reason(&mut self, why: impl Into<String>) {
        self.reasons.push(why.into());
    }

    /// A scratch buffer of `bytes`, or `None` past the profile's binding limit.
    pub(crate) fn scratch(
        &mut self,
        profile: &DeviceProfile,
        label: &'static str,
        bytes: u64,
        uniform: bool,
    ) -> Option<Buf> {
        (bytes <= profile.max_binding_bytes).then(|| {
            self.scratch.push(Scratch {
                label,
                bytes,
                uniform,
                zero_from: None,
            });
            Buf::Scratch(self.scratch.len() - 1)
        })
    }

    /// A scratch buffer of `floats` floats, or a [`Limit::Binding`] error.
    pub(crate) fn scratch_floats(
        &mut self,
        profile: &DeviceProfile,
        label: &'static str,
        floats: usize,
    ) -> Result<Buf> {
        let bytes = (floats.max(1) as u64).saturating_mul(4);
        self.scratch(profile, label, bytes, false).ok_or_else(|| {
            Error::too_large(label, Limit::Binding, bytes, profile.max_binding_bytes)
        })
    }

    /// Appends the passes, scratch buffers and reasons of `other` (whose scratch indices are
    /// renumbered after this plan's).
    pub(crate) fn append(&mut self, other: Plan) {
        let offset = self.scratch.len();
        self.scratch.extend(other.scratch);
        self.reasons.extend(other.reasons);
        for mut pass in other.passes {
            for b in &mut pass.bindings {
                if let Buf::Scratch(i) = &mut b.buf {
                    *i += offset;
                }
            }
            self.passes.push(pass);
        }
    }

    /// A hash of everything recording depends on: kernels, constants, bindings, uniforms,
    /// dispatches, scratch buffers (not the reasons).
    pub(crate) fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.op.hash(&mut h);
        for p in &self.passes {
            p.spec.name.hash(&mut h);
            p.constants.hash(&mut h);
            p.bindings.hash(&mut h);
            p.uniforms.hash(&mut h);
            p.dispatches.hash(&mut h);
        }
        self.scratch.hash(&mut h);
        h.finish()
    }

    /// The operation.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The passes, in recording order.
    pub fn passes(&self) -> &[Pass] {
        &self.passes
    }

    /// Why each choice was made, in the order they were made.
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }

    /// Each pass's kernel, in order.
    pub fn kernels(&self) -> Vec<&'static str> {
        self.passes.iter().map(Pass::kernel).collect()
    }

    /// The kernel that does the convolution's (or reduction's) arithmetic: the first that is
    /// not a copy, packing or sum of partials.
    pub fn main_kernel(&self) -> Option<&'static str> {
        self.kernels()
            .into_iter()
            .find(|k| !HELPERS.contains(k))
            .or_else(|| self.kernels().first().copied())
    }

    /// Dispatches over all passes.
    pub fn dispatches(&self) -> usize {
        self.passes.iter().map(Pass::dispatches).sum()
    }

    /// Invocations of the largest dispatch.
    pub fn max_invocations(&self) -> u64 {
        self.passes.iter().map(Pass::invocations).max().unwrap_or(0)
    }

    /// Worst-case loop iterations of any invocation.
    pub fn max_loop_iterations(&self) -> u64 {
        self.passes
            .iter()
            .map(Pass::loop_iterations)
            .max()
            .unwrap_or(0)
    }

    /// Bytes of scratch memory.
    pub fn scratch_bytes(&self) -> u64 {
        self.scratch.iter().map(|s| s.bytes).sum()
    }

    /// Checks the plan against `profile`: no grid dimension over the per-dimension limit, no
    /// scratch buffer over the binding limit, no kernel binding more storage buffers than the
    /// device allows, no invocation over the loop budget.
    pub fn validate(&self, profile: &DeviceProfile) -> Result<()> {
        let max = profile.max_workgroups_per_dimension;
        for p in &self.passes {
            let name = p.spec.name;
            if p.loop_iterations > LOOP_BUDGET {
                return Err(Error::too_large(
                    name,
                    Limit::LoopIterations,
                    p.loop_iterations,
                    LOOP_BUDGET,
                ));
            }
            if p.storage_buffers() > profile.max_storage_buffers_per_stage {
                return Err(Error::too_large(
                    name,
                    Limit::StorageBuffers,
                    u64::from(p.storage_buffers()),
                    u64::from(profile.max_storage_buffers_per_stage),
                ));
            }
            for d in &p.dispatches {
                if let Some(&over) = d.grid.iter().find(|&&v| v > max) {
                    return Err(Error::too_large(
                        format!("{name}: grid {:?}", d.grid),
                        Limit::WorkgroupsPerDimension,
                        u64::from(over),
                        u64::from(max),
                    ));
                }
                if d.grid.contains(&0) {
                    return Err(Error::Internal(format!("{name}: empty grid {:?}", d.grid)));
                }
            }
        }
        for s in &self.scratch {
            if s.bytes > profile.max_binding_bytes {
                return Err(Error::too_large(
                    s.label,
                    Limit::Binding,
                    s.bytes,
                    profile.max_binding_bytes,
                ));
            }
        }
        Ok(())
    }
}

/// Bytes as KiB / MiB / GiB.
fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", b / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", b / 1_048_576.0),
        _ => format!("{:.2} GiB", b / 1_073_741_824.0),
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} plan", self.op.name())?;
        writeln!(f, "  choices:")?;
        for r in &self.reasons {
            writeln!(f, "    - {r}")?;
        }
        writeln!(f, "  passes:")?;
        for (i, p) in self.passes.iter().enumerate() {
            writeln!(
                f,
                "    {}. {}{}{}: {} dispatch{}, largest grid {:?} ({} invocations), \
                 <= {} loop iterations per invocation",
                i + 1,
                p.kernel(),
                if p.constants.is_empty() { "" } else { " " },
                p.constants(),
                p.dispatches(),
                if p.dispatches() == 1 { "" } else { "es" },
                p.largest_grid(),
                p.invocations(),
                p.loop_iterations(),
            )?;
            let m = p.model();
            write!(
                f,
                "       model: {} workgroups, {:.2} per SM of {} (tail {:.2})",
                m.workgroups,
                m.workgroups_per_sm,
                super::model::REFERENCE_SMS,
                m.tail_efficiency,
            )?;
            if p.model.is_some() {
                let opt = |v: Option<f64>, digits: usize| {
                    v.map_or("-".to_string(), |v| format!("{v:.digits$}"))
                };
                write!(
                    f,
                    "; FMA per workgroup-memory word {}, per barrier {}; store conflict {}; \
                     gather {} sectors per warp load; wasted FMAs {}",
                    opt(m.fma_per_wgmem_word, 1),
                    opt(m.fma_per_barrier, 0),
                    m.wgmem_store_conflict
                        .map_or("-".to_string(), |w| format!("{w}-way")),
                    opt(m.gather_sectors_per_warp_load, 1),
                    m.wasted_fma_fraction
                        .map_or("-".to_string(), |w| format!("{:.1} %", w * 100.0)),
                )?;
            }
            writeln!(f)?;
        }
        write!(f, "  scratch: {}", human(self.scratch_bytes()))?;
        for s in &self.scratch {
            write!(f, "\n    - {}: {}", s.label, human(s.bytes))?;
        }
        Ok(())
    }
}
