//! The command-line interface.

mod bench;
mod images;
mod npy;
mod plot;
mod walkthrough;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use wgpu_conv::images::Color;
use wgpu_conv::{
    filters, geometry, Algorithm, Conv2d, Conv2dOptions, ConvMode, DeviceProfile, Family,
    GpuContext, Hw, Op, Padding, PaddingMode, Sgd, Tensor, Trainer, Wanted,
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
    Walkthrough {
        /// Also write the edge maps as PNG files into this folder.
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// Edge maps of PNG or JPEG images (grayscale), written as PNG or JPEG: one image, or
    /// many with --out-dir (one GPU start for all).
    #[command(override_usage = IMAGE_USAGE)]
    Edges {
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
    },
    /// Applies any kernel (KH, KW) from a .npy file to PNG or JPEG images: gray, or each colour
    /// plane with --color.
    #[command(override_usage = IMAGE_USAGE)]
    Filter {
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
    },
    /// Forward convolution of X.npy with W.npy (and B.npy), written to Y.npy.
    Forward {
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
    },
    /// Gradients of sum(Y * GY) with respect to the weight, the input and the bias.
    Backward {
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
    },
    /// Learns a kernel mapping X.npy to Y.npy by gradient descent on the squared error.
    Train {
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
    },
    /// The adapters found, the one chosen and why, and the limits that matter here.
    Info,
    /// How an op would run, computing nothing: its passes (kernel, dispatches, largest grid and
    /// its invocations, loop iterations per invocation), scratch bytes, and the reason for each
    /// choice, for this machine's adapter or WebGPU's default limits.
    Plan {
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
    },
    /// Throughput (GFLOP/s) of the kernels on named shapes, each result checked against the
    /// CPU reference first.
    Bench {
        /// Shapes: resnet_3x3, resnet_1x1, stem_7x7, depthwise, blur_img, edge_img, d2l_fig
        /// (all when omitted).
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
    },
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

/// Filters every input image of `files` with `weight` on one context and writes each result.
fn image_command(
    files: &ImageFiles,
    other_inputs: &[&Path],
    weight: &Tensor,
    color: Color,
    mode: PaddingMode,
    map: images::Map,
    max_pixels: u64,
) -> Result<()> {
    let pairs = files.pairs()?;
    let mut inputs: Vec<&Path> = pairs.iter().map(|p| p.0.as_path()).collect();
    inputs.extend(other_inputs);
    let outputs: Vec<&Path> = pairs.iter().map(|p| p.1.as_path()).collect();
    check_outputs(&inputs, &outputs)?;
    let map = map.resolve(weight);
    let ctx = context()?;
    let bar = if pairs.len() > 1 {
        progress(pairs.len() as u64, "images")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let t = std::time::Instant::now();
    for (input, output) in &pairs {
        let img = images::load(input, color, max_pixels)?;
        let y = filters::apply(&ctx, &img, weight, mode)?;
        images::save(output, &y, map)?;
        bar.inc(1);
        if pairs.len() == 1 {
            let r = img.shape().len();
            let (h, w) = (img.shape()[r - 2], img.shape()[r - 1]);
            eprintln!(
                "{w}x{h} image, kernel {:?}, {:.1} ms on {} -> {}",
                weight.shape(),
                t.elapsed().as_secs_f64() * 1e3,
                ctx.describe(),
                output.display()
            );
        }
    }
    bar.finish_and_clear();
    if let (true, Some(dir)) = (pairs.len() > 1, &files.out_dir) {
        eprintln!(
            "{} images, kernel {:?}, {:.2} s on {} -> {}",
            pairs.len(),
            weight.shape(),
            t.elapsed().as_secs_f64(),
            ctx.describe(),
            dir.display()
        );
    }
    Ok(())
}

/// Whether a file argument is `-`: standard input or output.
pub fn is_stdio(path: &Path) -> bool {
    path == Path::new("-")
}

/// All of standard input.
pub fn read_stdin() -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes)
        .context("cannot read standard input")?;
    Ok(bytes)
}

/// `bytes` to standard output (a closed pipe is an error, as for a file).
pub fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(&mut out, bytes)
        .and_then(|()| std::io::Write::flush(&mut out))
        .context("cannot write to standard output")
}

fn context() -> Result<GpuContext> {
    GpuContext::new().context("cannot start the GPU")
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command.unwrap_or(Command::Walkthrough { save: None }) {
        Command::Walkthrough { save } => walkthrough::run(&context()?, save.as_deref()),
        Command::Edges {
            files,
            kernel,
            padding_mode,
            map,
            max_pixels,
        } => {
            let weight = wgpu_conv::filters::edge_kernel(&kernel)?;
            image_command(
                &files,
                &[],
                &weight,
                Color::Gray,
                padding_mode,
                map,
                max_pixels,
            )
        }
        Command::Filter {
            files,
            weight,
            color,
            padding_mode,
            map,
            max_pixels,
        } => {
            if is_stdio(&weight) && is_stdio(&files.input) {
                bail!("only one input can be standard input (-): the image or --weight");
            }
            let w = npy::read(&weight)?;
            let w = match w.shape() {
                [kh, kw] => {
                    let (kh, kw) = (*kh, *kw);
                    w.reshape(vec![1, 1, kh, kw])?
                }
                [_, 1, _, _] => w,
                s => bail!(
                    "{}: a kernel is (KH, KW) or (OC, 1, KH, KW), got {s:?}",
                    weight.display()
                ),
            };
            let color = if color { Color::Rgb } else { Color::Gray };
            image_command(&files, &[&weight], &w, color, padding_mode, map, max_pixels)
        }
        Command::Forward {
            input,
            weight,
            bias,
            output,
            conv,
        } => {
            let mut inputs = vec![input.as_path(), weight.as_path()];
            inputs.extend(bias.as_deref());
            check_outputs(&inputs, &[&output])?;
            let x = npy::read(&input)?;
            let w = npy::read(&weight)?;
            let b = bias.as_deref().map(npy::read).transpose()?;
            check_ranks(&x, &w)?;
            let opts = conv.options();
            let g = geometry(x.shape(), w.shape(), b.as_ref().map(Tensor::len), &opts)?;
            let ctx = context()?;
            let y = ctx.conv2d_resolved(&g, &x, &w, b.as_ref(), Algorithm::Auto)?;
            npy::write(&output, &y)
        }
        Command::Backward {
            input,
            weight,
            grad_output,
            bias,
            conv,
            grad_weight,
            grad_input,
            grad_bias,
        } => {
            if grad_bias.is_some() && bias.is_none() {
                bail!("--grad-bias needs --bias");
            }
            if grad_weight.is_none() && grad_input.is_none() && grad_bias.is_none() {
                bail!(
                    "nothing to do: give at least one of --grad-weight, --grad-input, --grad-bias"
                );
            }
            let mut inputs = vec![input.as_path(), weight.as_path(), grad_output.as_path()];
            inputs.extend(bias.as_deref());
            let outputs: Vec<&std::path::Path> = [&grad_weight, &grad_input, &grad_bias]
                .into_iter()
                .flatten()
                .map(PathBuf::as_path)
                .collect();
            // every output path is checked before anything is computed or written
            check_outputs(&inputs, &outputs)?;
            let x = npy::read(&input)?;
            let w = npy::read(&weight)?;
            let gy = npy::read(&grad_output)?;
            let b = bias.as_deref().map(npy::read).transpose()?;
            check_ranks(&x, &w)?;
            let opts = conv.options();
            let g = geometry(x.shape(), w.shape(), b.as_ref().map(Tensor::len), &opts)?;
            let ctx = context()?;
            let wanted = Wanted {
                weight: grad_weight.is_some(),
                input: grad_input.is_some(),
                bias: grad_bias.is_some(),
            };
            let grads = ctx.conv2d_backward_resolved(&g, &x, &w, &gy, wanted, Algorithm::Auto)?;
            for (path, t) in [
                (grad_weight, grads.weight),
                (grad_input, grads.input),
                (grad_bias, grads.bias),
            ] {
                if let (Some(p), Some(t)) = (path, t) {
                    npy::write(&p, &t)?;
                }
            }
            Ok(())
        }
        Command::Train {
            input,
            target,
            kernel_size,
            bias,
            lr,
            momentum,
            weight_decay,
            steps,
            log_every,
            seed,
            output_weight,
            plot,
            conv,
        } => {
            let outputs: Vec<&std::path::Path> = [&output_weight, &plot]
                .into_iter()
                .flatten()
                .map(PathBuf::as_path)
                .collect();
            check_outputs(&[&input, &target], &outputs)?;
            // when standard output carries a file, the report goes to standard error
            let to_stdout = !outputs.iter().any(|p| is_stdio(p));
            let say = |line: String| {
                if to_stdout {
                    println!("{line}");
                } else {
                    eprintln!("{line}");
                }
            };
            let x = npy::read(&input)?;
            let y = npy::read(&target)?;
            if !lr.is_finite() || !momentum.is_finite() || !weight_decay.is_finite() {
                bail!("--lr, --momentum and --weight-decay must be finite numbers");
            }
            if log_every == 0 {
                bail!("--log-every must be at least 1");
            }
            let opts = conv.options();
            let c = x.dims4()?[1];
            let oc = out_channels(&x, &y);
            // the geometry (and so every size) is checked before the weight is allocated
            let wshape = [oc, c / opts.groups.max(1), kernel_size.h, kernel_size.w];
            let g = geometry(x.shape(), &wshape, bias.then_some(oc), &opts)?;
            let out = g.output_shape();
            if !wgpu_conv::target_fits(y.shape(), &out) {
                bail!(
                    "the target has shape {:?} but a {kernel_size} kernel gives an output of {:?}",
                    y.shape(),
                    out
                );
            }
            let layer = Conv2d::new(c, oc, kernel_size, bias, opts, seed)?;
            let ctx = context()?;
            let sgd = Sgd::new(lr).momentum(momentum).weight_decay(weight_decay);
            let mut trainer = Trainer::new(&ctx, &layer, &x, &y, sgd)?;
            let bar = progress(steps as u64, "training");
            let mut points = Vec::new();
            let mut diverged = None;
            for i in 0..steps {
                let log = (i + 1) % log_every == 0;
                // every step's loss is read, so that a diverging run stops at once
                let Some(loss) = trainer.step(true)? else {
                    continue;
                };
                if !loss.is_finite() {
                    diverged = Some((i + 1, loss));
                    break;
                }
                points.push((i + 1, loss));
                if log {
                    bar.suspend(|| say(format!("epoch {}, loss {loss:.3}", i + 1)));
                }
                bar.inc(1);
            }
            bar.finish_and_clear();
            if let Some(p) = &plot {
                let title = match diverged {
                    Some((step, _)) => format!("training loss, lr {lr}: not finite at step {step}"),
                    None => format!("training loss, lr {lr}"),
                };
                plot::loss_svg(p, &points, diverged.map(|d| d.0), &title)?;
                if !is_stdio(p) {
                    eprintln!("loss curve written to {}", p.display());
                }
            }
            if let Some((step, loss)) = diverged {
                bail!("training diverged: the loss is {loss} at step {step} (try a smaller --lr)");
            }
            let learned = trainer.layer()?;
            say(format!(
                "learned kernel {:?}: {:?}",
                learned.weight().shape(),
                learned.weight().data()
            ));
            if let Some(b) = learned.bias() {
                say(format!("learned bias: {:?}", b.data()));
            }
            if let Some(p) = output_weight {
                npy::write(&p, learned.weight())?;
            }
            Ok(())
        }
        Command::Plan {
            shape,
            input,
            weight,
            op,
            algorithm,
            bias,
            webgpu,
            conv,
        } => {
            // checked before anything is printed
            if !matches!(
                op,
                Op::Forward | Op::WeightGrad | Op::InputGrad | Op::BiasGrad
            ) {
                bail!(
                    "{} is not a convolution op: forward, weight_grad, input_grad or bias_grad",
                    op.name()
                );
            }
            let (x, w, opts) = match shape {
                Some(name) => {
                    let s = bench::shape(&name)?;
                    (s.input.to_vec(), s.weight.to_vec(), s.options)
                }
                None if input.is_empty() || weight.is_empty() => {
                    bail!("give --shape, or --input and --weight")
                }
                None => (input, weight, conv.options()),
            };
            let g = geometry(&x, &w, None, &opts)?;
            let ctx = if webgpu {
                println!("profile: WebGPU's default limits");
                None
            } else {
                let ctx = context()?;
                println!("adapter: {}", ctx.describe());
                Some(ctx)
            };
            let profile = ctx
                .as_ref()
                .map_or_else(DeviceProfile::webgpu_defaults, |c| c.profile());
            println!(
                "input {:?}, weight {:?} -> output {:?}, {:.3} GFLOP",
                g.input_shape(),
                g.weight_shape(),
                g.output_shape(),
                g.flops() / 1e9
            );
            if let Some(t) = match &ctx {
                Some(c) if algorithm == Algorithm::Auto => c.autotuned(op, &g, bias)?,
                _ => None,
            } {
                let times: Vec<String> = t
                    .times
                    .iter()
                    .map(|(a, s)| format!("{} {:.3} ms", a.name(), s * 1e3))
                    .collect();
                println!(
                    "autotuned: {} ({}; candidates: {})",
                    t.algorithm.name(),
                    if t.from_cache {
                        "from the cache"
                    } else {
                        "measured now"
                    },
                    times.join(", ")
                );
            }
            let plan = match &ctx {
                Some(c) => c.plan(op, &g, bias, algorithm)?,
                None => match op {
                    Op::Forward => wgpu_conv::plan_forward(&g, bias, &profile, algorithm)?,
                    Op::WeightGrad => wgpu_conv::plan_weight_grad(&g, &profile, algorithm)?,
                    Op::InputGrad => wgpu_conv::plan_input_grad(&g, &profile, algorithm)?,
                    _ => wgpu_conv::plan_bias_grad(&g, &profile)?,
                },
            };
            println!("{plan}");
            Ok(())
        }
        Command::Info => info(),
        Command::Bench {
            shapes,
            ops,
            json,
            runs,
            direct,
            family,
        } => {
            let runs = runs as usize;
            let ops = ops
                .iter()
                .map(|o| bench::parse_op(o))
                .collect::<Result<Vec<_>>>()?;
            let ctx = context()?;
            let families = if family.is_empty() {
                vec![ctx.kernels()]
            } else {
                family
            };
            for f in families {
                ctx.set_kernels(f);
                bench::run(&ctx, &shapes, &ops, runs, json, direct)?;
            }
            Ok(())
        }
    }
}

/// Checks, before any work, that every output can be written: its folder exists, it is not a
/// folder itself, no two outputs are the same file and no output is one of the inputs.
fn check_outputs(inputs: &[&Path], outputs: &[&Path]) -> Result<()> {
    let key = |p: &Path| -> Option<PathBuf> {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Some(dir.canonicalize().ok()?.join(p.file_name()?))
    };
    let ins: Vec<PathBuf> = inputs
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    if inputs.iter().filter(|p| is_stdio(p)).count() > 1 {
        bail!("only one input can be standard input (-)");
    }
    if outputs.iter().filter(|p| is_stdio(p)).count() > 1 {
        bail!("only one output can be standard output (-)");
    }
    let mut seen: Vec<PathBuf> = Vec::new();
    for &out in outputs {
        if out == Path::new("-") {
            continue;
        }
        if out.is_dir() {
            bail!("{} is a folder; give a file name to write", out.display());
        }
        let Some(k) = key(out) else {
            bail!("cannot write {}: its folder does not exist", out.display());
        };
        let k = k.canonicalize().unwrap_or(k);
        if ins.contains(&k) {
            bail!(
                "{} is also an input; write the result elsewhere",
                out.display()
            );
        }
        if seen.contains(&k) {
            bail!("{} is given as two outputs", out.display());
        }
        seen.push(k);
    }
    Ok(())
}

/// Writes `path` safely: `write` fills a new temporary file in the same folder, which then
/// replaces `path` in one rename, so that a reader (or a second writer) sees the old file or
/// the whole new one, never a mix, and a failed write leaves no partial file.
pub fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let suffix = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let mut builder = tempfile::Builder::new();
    builder.prefix(".wgpu-conv-").suffix(&suffix);
    // tempfile's files are 0600: ask for 0666 instead, which the umask then narrows (0644
    // under 022), as for any file a program creates
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // a file that is replaced keeps its mode
    if let Ok(old) = std::fs::metadata(path) {
        if old.is_file() {
            let _ = std::fs::set_permissions(tmp.path(), old.permissions());
        }
    }
    write(tmp.path())?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| anyhow!("cannot write {}: {}", path.display(), e.error))?;
    Ok(())
}

/// The output channel count the target implies: its channel dimension, or 1 for rank 2.
fn out_channels(x: &Tensor, y: &Tensor) -> usize {
    match y.shape() {
        [_, oc, _, _] => *oc,
        [oc, _, _] if x.shape().len() == 3 => *oc,
        _ => 1,
    }
}

/// The CLI's rank rules: input rank 2 with weight rank 2, or input rank 4 (or 3) with weight rank 4.
fn check_ranks(x: &Tensor, w: &Tensor) -> Result<()> {
    match (x.shape().len(), w.shape().len()) {
        (2, 2) | (3, 4) | (4, 4) => Ok(()),
        (2, r) => bail!("a rank-2 input (H, W) needs a rank-2 weight (KH, KW), got rank {r} {:?}", w.shape()),
        (3, r) => bail!("a rank-3 input (C, H, W) needs a rank-4 weight (OC, C/groups, KH, KW), got rank {r} {:?}", w.shape()),
        (4, r) => bail!("a rank-4 input (N, C, H, W) needs a rank-4 weight (OC, C/groups, KH, KW), got rank {r} {:?}", w.shape()),
        (r, _) => bail!("the input must be rank 2 (H, W), 3 (C, H, W) or 4 (N, C, H, W), got rank {r} {:?}", x.shape()),
    }
}

fn info() -> Result<()> {
    wgpu_conv::check_backend_env()?;
    let adapters = wgpu_conv::list_adapters();
    if adapters.is_empty() {
        println!("no adapters found");
    } else {
        println!("adapters found ({}):", adapters.len());
        for a in &adapters {
            println!("  {}", wgpu_conv::describe_adapter(a));
        }
    }
    let ctx = context()?;
    let why = match std::env::var("WGPU_ADAPTER_NAME") {
        Ok(n) if !n.is_empty() => format!("its name contains WGPU_ADAPTER_NAME={n:?}"),
        _ => "best ranked: Vulkan/Metal/DX12 before GL (GL only when they have none), then discrete > integrated > virtual > CPU"
            .to_string(),
    };
    println!("chosen: {} ({why})", ctx.describe());
    if let Ok(b) = std::env::var("WGPU_BACKEND") {
        println!("WGPU_BACKEND={b}");
    }
    let l = ctx.limits();
    println!("limits:");
    println!(
        "  max_storage_buffer_binding_size: {} bytes",
        l.max_storage_buffer_binding_size
    );
    println!("  max_buffer_size: {} bytes", l.max_buffer_size);
    println!(
        "  max_compute_workgroups_per_dimension: {}",
        l.max_compute_workgroups_per_dimension
    );
    println!(
        "  max_compute_workgroup_storage_size: {} bytes",
        l.max_compute_workgroup_storage_size
    );
    println!(
        "  max_compute_invocations_per_workgroup: {}",
        l.max_compute_invocations_per_workgroup
    );
    println!(
        "  max_storage_buffers_per_shader_stage: {}",
        l.max_storage_buffers_per_shader_stage
    );
    Ok(())
}
