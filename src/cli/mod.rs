//! The command-line interface.

mod bench;
mod conv;
mod files;
mod images;
mod info;
mod npy;
mod plan;
mod plot;
mod train;
mod walkthrough;

use std::path::PathBuf;

pub use files::{check_outputs, is_stdio, read_stdin, write_atomic, write_stdout};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use wgpu_conv::{
    Algorithm, Conv2dOptions, ConvMode, Family, GpuContext, Hw, Op, Padding, PaddingMode,
};

/// 2-D convolution layers on any GPU (wgpu + WGSL). With no command, runs the walkthrough of
/// the "Convolutions for Images" chapter on the GPU.
#[derive(Debug, Parser)]
#[command(name = "wgpu-conv", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The chapter, computed on the GPU, each result beside its expected value.
    Walkthrough(WalkthroughArgs),
    /// Edge maps of PNG or JPEG images (grayscale), written as PNG or JPEG: one image, or
    /// many with --out-dir (one GPU start for all).
    #[command(override_usage = IMAGE_USAGE)]
    Edges(EdgesArgs),
    /// Applies any kernel (KH, KW) from a .npy file to PNG or JPEG images: gray, or each colour
    /// plane with --color.
    #[command(override_usage = IMAGE_USAGE)]
    Filter(FilterArgs),
    /// Forward convolution of X.npy with W.npy (and B.npy), written to Y.npy.
    Forward(ForwardArgs),
    /// Gradients of sum(Y * GY) with respect to the weight, the input and the bias.
    Backward(BackwardArgs),
    /// Learns a kernel mapping X.npy to Y.npy by gradient descent on the squared error.
    Train(TrainArgs),
    /// The adapters found, the one chosen and why, and the limits that matter here.
    Info,
    /// How an op would run, computing nothing: its passes (kernel, dispatches, largest grid and
    /// its invocations, loop iterations per invocation), scratch bytes, and the reason for each
    /// choice, for this machine's adapter or WebGPU's default limits.
    Plan(PlanArgs),
    /// Throughput (GFLOP/s) of the kernels on named shapes, each result checked against the
    /// CPU reference first.
    Bench(BenchArgs),
}

/// The arguments of `walkthrough`.
#[derive(Debug, Args)]
struct WalkthroughArgs {
    /// Also write the edge maps as PNG files into this folder.
    #[arg(long)]
    save: Option<PathBuf>,
}

/// The arguments of `edges`.
#[derive(Debug, Args)]
struct EdgesArgs {
    #[command(flatten)]
    files: ImageFiles,
    /// Kernel: edge, edge-t, sobel (gradient magnitude), sobel-x, sobel-y, prewitt, prewitt-x,
    /// prewitt-y, laplacian, second-derivative, gaussian, box.
    #[arg(long, default_value = "sobel")]
    kernel: String,
    /// What fills the border.
    #[arg(long, default_value = "replicate")]
    padding_mode: PaddingMode,
    /// How responses become gray levels.
    #[arg(long, value_enum, default_value_t = images::Map::Auto)]
    map: images::Map,
    /// Largest input image, in pixels, checked before decoding.
    #[arg(long, default_value_t = images::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
}

/// The arguments of `filter`.
#[derive(Debug, Args)]
struct FilterArgs {
    #[command(flatten)]
    files: ImageFiles,
    /// The kernel, (KH, KW) or (OC, 1, KH, KW) (`-`: standard input).
    #[arg(long)]
    weight: PathBuf,
    /// Filter the red, green and blue planes each and write a colour image (gray otherwise).
    #[arg(long)]
    color: bool,
    /// What fills the border.
    #[arg(long, default_value = "replicate")]
    padding_mode: PaddingMode,
    /// How responses become levels.
    #[arg(long, value_enum, default_value_t = images::Map::Auto)]
    map: images::Map,
    /// Largest input image, in pixels, checked before decoding.
    #[arg(long, default_value_t = images::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
}

/// The arguments of `forward`.
#[derive(Debug, Args)]
struct ForwardArgs {
    /// Input, float32 (H, W), (C, H, W) or (N, C, H, W).
    #[arg(long)]
    input: PathBuf,
    /// Weight, (KH, KW) or (OC, C/groups, KH, KW).
    #[arg(long)]
    weight: PathBuf,
    /// Bias, (OC,).
    #[arg(long)]
    bias: Option<PathBuf>,
    /// Where to write the output.
    #[arg(long)]
    output: PathBuf,
    #[command(flatten)]
    conv: ConvArgs,
}

/// The arguments of `backward`.
#[derive(Debug, Args)]
struct BackwardArgs {
    /// Input, float32 (H, W), (C, H, W) or (N, C, H, W).
    #[arg(long)]
    input: PathBuf,
    /// Weight, (KH, KW) or (OC, C/groups, KH, KW).
    #[arg(long)]
    weight: PathBuf,
    /// Gradient of the loss with respect to the output, in the output's shape.
    #[arg(long)]
    grad_output: PathBuf,
    /// Bias, (OC,): needed for --grad-bias.
    #[arg(long)]
    bias: Option<PathBuf>,
    #[command(flatten)]
    conv: ConvArgs,
    /// Where to write dL/dW.
    #[arg(long)]
    grad_weight: Option<PathBuf>,
    /// Where to write dL/dX.
    #[arg(long)]
    grad_input: Option<PathBuf>,
    /// Where to write dL/db (needs --bias).
    #[arg(long)]
    grad_bias: Option<PathBuf>,
}

/// The arguments of `train`.
#[derive(Debug, Args)]
struct TrainArgs {
    /// Input, float32 (H, W), (C, H, W) or (N, C, H, W).
    #[arg(long)]
    input: PathBuf,
    /// Target output, in the output's shape.
    #[arg(long)]
    target: PathBuf,
    /// Kernel size KH,KW (or K).
    #[arg(long)]
    kernel_size: Hw,
    /// Learn a bias too.
    #[arg(long)]
    bias: bool,
    /// Learning rate.
    #[arg(long, default_value_t = 0.03, allow_negative_numbers = true)]
    lr: f32,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    momentum: f32,
    /// L2 weight decay.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    weight_decay: f32,
    /// Steps.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Print the loss every this many steps.
    #[arg(long, default_value_t = 2)]
    log_every: usize,
    /// Seed of the weight initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to write the learned weight.
    #[arg(long)]
    output_weight: Option<PathBuf>,
    /// Write the loss of every step as a chart (SVG).
    #[arg(long)]
    plot: Option<PathBuf>,
    #[command(flatten)]
    conv: ConvArgs,
}

/// The arguments of `plan`.
#[derive(Debug, Args)]
struct PlanArgs {
    /// A named shape (see `bench --shapes`) instead of --input, --weight and the options
    /// (which it takes from the shape: giving them too is an error).
    #[arg(
        long,
        conflicts_with_all = [
            "input", "weight", "stride", "padding", "dilation", "groups", "padding_mode",
            "mode",
        ]
    )]
    shape: Option<String>,
    /// Input shape N,C,H,W (or C,H,W or H,W).
    #[arg(long, value_delimiter = ',')]
    input: Vec<usize>,
    /// Weight shape OC,C/groups,KH,KW (or KH,KW).
    #[arg(long, value_delimiter = ',')]
    weight: Vec<usize>,
    /// forward, weight_grad, input_grad or bias_grad.
    #[arg(long, default_value = "forward")]
    op: Op,
    /// auto, direct, tiled, gemm or gpu.
    #[arg(long, default_value = "auto")]
    algorithm: Algorithm,
    /// The forward pass adds a bias.
    #[arg(long)]
    bias: bool,
    /// Plan for WebGPU's default limits (no adapter needed).
    #[arg(long)]
    webgpu: bool,
    #[command(flatten)]
    conv: ConvArgs,
}

/// The arguments of `bench`.
#[derive(Debug, Args)]
struct BenchArgs {
    /// Shapes: resnet_3x3, resnet_1x1, resnet_down, stem_7x7, depthwise, blur_img, edge_img,
    /// d2l_fig (all when omitted).
    #[arg(long, value_delimiter = ',')]
    shapes: Vec<String>,
    /// Ops: forward, weight_grad, input_grad.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "forward,weight_grad,input_grad"
    )]
    ops: Vec<String>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Timed runs per shape and op (the median is reported), 1 to 10000.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=MAX_BENCH_RUNS))]
    runs: u32,
    /// Also time the direct (naive) kernels, for comparison.
    #[arg(long)]
    direct: bool,
    /// Kernel families to run, each in turn: auto, cpu, gpu (WGPU_CONV_KERNELS's, or auto,
    /// when omitted).
    #[arg(long, value_delimiter = ',')]
    family: Vec<Family>,
}

/// The two forms of the image commands.
const IMAGE_USAGE: &str = "<INPUT> <OUTPUT> [OPTIONS]\n       <INPUT>... --out-dir <DIR> [OPTIONS]";

/// The files of an image command: one input and its output, or many inputs and a folder.
#[derive(Debug, Args)]
struct ImageFiles {
    /// Input image, PNG or JPEG (`-`: standard input).
    #[arg(value_name = "INPUT")]
    input: PathBuf,
    /// Output image, .png or .jpg (`-`: PNG on standard output); with --out-dir, more inputs.
    #[arg(value_name = "OUTPUT", required_unless_present = "out_dir")]
    rest: Vec<PathBuf>,
    /// Writes each input's result into this folder (made if missing) as its file name less
    /// the extension, the suffix and `.png`: one GPU start for all the inputs.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// With --out-dir: what is added to each file name before `.png`.
    #[arg(long, default_value = "", requires = "out_dir")]
    suffix: String,
}

impl ImageFiles {
    /// Each input with its output.
    fn pairs(&self) -> Result<Vec<(PathBuf, PathBuf)>> {
        let Some(dir) = &self.out_dir else {
            return match self.rest.as_slice() {
                [out] => Ok(vec![(self.input.clone(), out.clone())]),
                more => bail!(
                    "give one INPUT and one OUTPUT, or many inputs with --out-dir DIR ({} paths given)",
                    more.len() + 1
                ),
            };
        };
        if self.suffix.contains(std::path::is_separator) {
            bail!("--suffix {:?} holds a path separator", self.suffix);
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
        std::iter::once(&self.input)
            .chain(&self.rest)
            .map(|input| {
                if is_stdio(input) {
                    bail!("standard input (-) cannot be one of the inputs of --out-dir; give INPUT OUTPUT");
                }
                let Some(stem) = input.file_stem() else {
                    bail!("{} has no file name", input.display());
                };
                let mut name = stem.to_os_string();
                name.push(&self.suffix);
                name.push(".png");
                Ok((input.clone(), dir.join(name)))
            })
            .collect()
    }
}

/// The convolution options shared by forward, backward and train.
#[derive(Debug, Args)]
struct ConvArgs {
    /// Stride S or SH,SW.
    #[arg(long, default_value = "1")]
    stride: Hw,
    /// Padding P, PH,PW, TOP,LEFT,BOTTOM,RIGHT, same or valid.
    #[arg(long, default_value = "valid")]
    padding: Padding,
    /// Dilation D or DH,DW.
    #[arg(long, default_value = "1")]
    dilation: Hw,
    /// Groups.
    #[arg(long, default_value_t = 1)]
    groups: usize,
    /// zeros, reflect, replicate or circular.
    #[arg(long, default_value = "zeros")]
    padding_mode: PaddingMode,
    /// cross-correlation or convolution (kernel flipped on both axes).
    #[arg(long, default_value = "cross-correlation")]
    mode: ConvMode,
}

impl ConvArgs {
    fn options(&self) -> Conv2dOptions {
        Conv2dOptions::new()
            .stride(self.stride)
            .padding(self.padding)
            .dilation(self.dilation)
            .groups(self.groups)
            .padding_mode(self.padding_mode)
            .mode(self.mode)
    }
}

/// The most timed runs `bench` takes per shape and op.
const MAX_BENCH_RUNS: i64 = 10_000;

/// A progress bar on stderr for long runs; invisible when stderr is not a terminal.
fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    if len == 0 || (len < 50 && what == "training") {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} [{elapsed}<{eta}]")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

fn context() -> Result<GpuContext> {
    GpuContext::new().context("cannot start the GPU")
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli
        .command
        .unwrap_or(Command::Walkthrough(WalkthroughArgs { save: None }))
    {
        Command::Walkthrough(a) => walkthrough::run(&context()?, a.save.as_deref()),
        Command::Edges(a) => images::edges(a),
        Command::Filter(a) => images::filter(a),
        Command::Forward(a) => conv::forward(a),
        Command::Backward(a) => conv::backward(a),
        Command::Train(a) => train::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Info => info::run(),
        Command::Bench(a) => bench::command(a),
    }
}
