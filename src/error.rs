//! The library's one error type.

use thiserror::Error;

/// Everything that can go wrong in `wgpu_conv`.
///
/// Messages are one line and say what to do where there is something to do.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// No GPU adapter (hardware or software) could be found; in a browser, no WebGPU.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        error(
            "no GPU adapter found{detail}: install a software adapter with \
             `apt-get install mesa-vulkan-drivers` (Vulkan, lavapipe) or Mesa's GL driver, \
             or set WGPU_BACKEND=vulkan|gl|metal|dx12 to pick a backend"
        )
    )]
    #[cfg_attr(
        target_arch = "wasm32",
        error(
            "this browser gave no WebGPU adapter{detail}. WebGPU is on by default in Chrome \
             and Edge 113+ on Windows, macOS and ChromeOS (121+ on Android), Safari 26 and \
             Firefox 141+ on Windows; on Linux, Chrome needs chrome://flags/#enable-unsafe-webgpu \
             (or --enable-unsafe-webgpu on its command line), and Firefox needs dom.webgpu.enabled \
             in about:config"
        )
    )]
    NoAdapter {
        /// What was asked for (backend or adapter name), empty if nothing.
        detail: String,
    },
    /// `WGPU_ADAPTER_NAME` named an adapter that is not present.
    #[error("no adapter matches WGPU_ADAPTER_NAME={name:?}; adapters present: {available}")]
    AdapterNotFound {
        /// The requested (sub)string.
        name: String,
        /// Names of the adapters that were found.
        available: String,
    },
    /// The adapter refused to create a device.
    #[error("could not create a device on adapter {adapter:?}: {reason}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// What wgpu said.
        reason: String,
    },
    /// An option is out of range (stride 0, dilation 0, groups 0, ...).
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// Tensor shapes do not fit together or do not fit the options.
    #[error("invalid shape: {0}")]
    InvalidShape(String),
    /// Something is too large for one of the device's limits (or the kernels' `u32` index
    /// arithmetic) and could not be split to fit.
    #[error("too large: {what}: {}", detail(*limit, *needed, *allowed))]
    TooLarge {
        /// What was too large.
        what: String,
        /// Which limit it passed.
        limit: Limit,
        /// How much it needed.
        needed: u64,
        /// How much the limit allows.
        allowed: u64,
    },
    /// wgpu reported a validation error (a bug in this crate if it ever shows).
    #[error("GPU validation error in {label}: {message}")]
    Validation {
        /// Which operation was being recorded.
        label: String,
        /// wgpu's description.
        message: String,
    },
    /// The device ran out of memory.
    #[error("GPU out of memory in {0}: try a smaller batch or image")]
    OutOfMemory(String),
    /// A check inside this crate failed: a bug to report, never silently run.
    #[error("internal error (please report): {0}")]
    Internal(String),
    /// The host could not allocate a buffer a result needs.
    #[error("out of host memory: {0}; try a smaller batch or image")]
    HostOutOfMemory(String),
    /// The device was lost (driver reset, `destroy`, ...); build a new context.
    #[error("GPU device lost: {0}; create a new GpuContext")]
    DeviceLost(String),
    /// Mapping a buffer for readback failed.
    #[error("reading results back from the GPU failed: {0}")]
    Readback(String),
    /// A caller's buffer cannot hold a tensor ([`crate::GpuTensor::from_buffer`]).
    #[error("unusable buffer: {0}")]
    UnusableBuffer(String),
    /// A device tensor was made by another [`crate::GpuContext`] than the one it was used with
    /// (each context has a device of its own; its buffers mean nothing to another).
    #[error(
        "the {operand} tensor belongs to another GpuContext: upload it to this one \
         (ctx.upload) or call the context it was made with"
    )]
    WrongContext {
        /// Which operand ("input", "weight", "grad_output", ...).
        operand: String,
    },
    /// An operation would write an operand that it also reads (or writes twice): the two roles
    /// share one buffer.
    #[error(
        "the {written} tensor aliases the {other} tensor (one buffer): give the {written} a \
         buffer of its own"
    )]
    Aliased {
        /// The role that is written.
        written: String,
        /// The role it overlaps.
        other: String,
    },
    /// The context is busy with something that takes one caller at a time.
    #[error("busy: {0}")]
    Busy(String),
    /// An image file or buffer could not be read, decoded or written (feature `image`).
    #[error("image: {0}")]
    Image(String),
}

/// A limit that an operation can pass (see [`Error::TooLarge`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// The device's largest storage binding (bytes), or the cap set on it.
    Binding,
    /// The device's workgroups per dispatch dimension.
    WorkgroupsPerDimension,
    /// The loop iterations one invocation may run (see the README's "loop budget").
    LoopIterations,
    /// The kernels' `u32` index arithmetic.
    Index,
    /// Storage buffers per shader stage.
    StorageBuffers,
    /// What the host can allocate (bytes).
    HostMemory,
    /// The dispatches one operation's plan may hold (a plan past it would take longer to build
    /// than any device would take to run it).
    Dispatches,
    /// Elements of one tensor (`usize` products of its shape).
    Elements,
}

impl Limit {
    /// What the limit counts.
    pub fn unit(self) -> &'static str {
        match self {
            Limit::Binding | Limit::HostMemory => "bytes",
            Limit::WorkgroupsPerDimension => "workgroups",
            Limit::LoopIterations => "loop iterations",
            Limit::Index => "",
            Limit::StorageBuffers => "storage buffers",
            Limit::Dispatches => "dispatches",
            Limit::Elements => "elements",
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::Binding => "largest storage binding",
            Limit::WorkgroupsPerDimension => "workgroups per dispatch dimension",
            Limit::LoopIterations => "loop budget per invocation",
            Limit::Index => "u32 index range",
            Limit::StorageBuffers => "storage buffers per shader stage",
            Limit::HostMemory => "host memory",
            Limit::Dispatches => "dispatch budget of one plan",
            Limit::Elements => "elements a tensor can index",
        })
    }
}

/// "N units needed, M allowed (the LIMIT)".
fn detail(limit: Limit, needed: u64, allowed: u64) -> String {
    let unit = match limit.unit() {
        "" => String::new(),
        u => format!(" {u}"),
    };
    format!("{needed}{unit} needed, {allowed}{unit} allowed (the {limit})")
}

/// `Result` with this crate's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn option(msg: impl Into<String>) -> Self {
        Error::InvalidOption(msg.into())
    }
    pub(crate) fn shape(msg: impl Into<String>) -> Self {
        Error::InvalidShape(msg.into())
    }
    pub(crate) fn too_large(
        what: impl Into<String>,
        limit: Limit,
        needed: u64,
        allowed: u64,
    ) -> Self {
        Error::TooLarge {
            what: what.into(),
            limit,
            needed,
            allowed,
        }
    }
}

/// The value of environment variable `name`: `None` when unset, an error naming it when it is
/// not UTF-8 (never taken as unset).
pub(crate) fn env_var(name: &str) -> Result<Option<String>> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(Error::InvalidOption(format!(
            "{name} is not UTF-8 ({}): unset it or give it a value in UTF-8",
            quoted(&v.to_string_lossy())
        ))),
    }
}

/// `s` in quotes for an error message, cut to its first 40 characters.
pub(crate) fn quoted(s: &str) -> String {
    const SHOWN: usize = 40;
    let mut cut: String = s.chars().take(SHOWN).collect();
    if cut.len() < s.len() {
        cut.push_str("...");
        format!("{cut:?} ({} characters)", s.chars().count())
    } else {
        format!("{cut:?}")
    }
}
