//! `wgpu-conv bench`: throughput of the kernels on named shapes, each result checked against
//! the CPU reference first.

use std::time::{Duration, Instant};

mod floor;

use anyhow::{bail, Result};
use wgpu_conv::{bench_shapes, BenchShape};
use wgpu_conv::{cpu, Algorithm, Conv2dGeometry, GpuContext, GpuTensor, Op, Plan, Tensor};

use super::{context, BenchArgs};
use floor::Floor;

/// Elements checked against the reference per result (all of them for small results).
const SAMPLES: usize = 384;
/// The CPU reference runs in full only below this many FLOPs (a few seconds at ~1 GFLOP/s).
const CPU_FLOP_LIMIT: f64 = 2.5e9;

/// The named shape `name`.
pub fn shape(name: &str) -> Result<BenchShape> {
    let all = bench_shapes();
    all.iter().find(|s| s.name == name).copied().ok_or_else(|| {
        anyhow::anyhow!(
            "unknown shape {name:?}; one of: {}",
            all.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
        )
    })
}

/// An op `bench` times: forward, weight_grad or input_grad.
pub fn parse_op(s: &str) -> Result<Op> {
    match s.parse::<Op>()? {
        op @ (Op::Forward | Op::WeightGrad | Op::InputGrad) => Ok(op),
        _ => bail!("bench times forward, weight_grad or input_grad, not {s}"),
    }
}

struct Data {
    g: Conv2dGeometry,
    x: Vec<f32>,
    w: Vec<f32>,
    gy: Vec<f32>,
    /// the same values as host tensors, for whole calls
    xt: Tensor,
    wt: Tensor,
    gyt: Tensor,
    xg: GpuTensor,
    wg: GpuTensor,
    gyg: GpuTensor,
    out: GpuTensor,
}

fn values(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i + seed) * 7919) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

fn record(
    ctx: &GpuContext,
    d: &Data,
    op: Op,
    algorithm: Algorithm,
    enc: &mut wgpu::CommandEncoder,
) -> Result<()> {
    match op {
        Op::Forward => ctx.record_forward_with(enc, &d.g, &d.xg, &d.wg, None, &d.out, algorithm)?,
        Op::WeightGrad => ctx.record_backward_with(
            enc,
            &d.g,
            &d.xg,
            &d.wg,
            &d.gyg,
            Some(&d.out),
            None,
            None,
            algorithm,
        )?,
        Op::InputGrad => ctx.record_backward_with(
            enc,
            &d.g,
            &d.xg,
            &d.wg,
            &d.gyg,
            None,
            Some(&d.out),
            None,
            algorithm,
        )?,
        other => bail!("bench does not time {}", other.name()),
    }
    Ok(())
}

/// Runs once and checks a sample of the result (or all of it) against the CPU reference.
fn check(ctx: &GpuContext, d: &Data, op: Op, algorithm: Algorithm) -> Result<()> {
    let mut enc = ctx.encoder("bench check");
    record(ctx, d, op, algorithm, &mut enc)?;
    ctx.submit_and_wait(enc)?;
    let got = ctx.download(&[&d.out])?.remove(0);
    let len = got.len();
    let idx = cpu::sample_indices(len, SAMPLES);
    let reference = match op {
        Op::Forward => cpu::sampled(&idx, |i| cpu::conv2d_forward_at(&d.g, &d.x, &d.w, None, i)),
        Op::WeightGrad => cpu::sampled(&idx, |i| cpu::conv2d_weight_grad_at(&d.g, &d.x, &d.gy, i)),
        Op::InputGrad => cpu::sampled(&idx, |i| cpu::conv2d_input_grad_at(&d.g, &d.w, &d.gy, i)),
        other => bail!("bench does not time {}", other.name()),
    };
    let picked: Vec<f32> = idx.iter().map(|&i| got.data()[i]).collect();
    let c = cpu::compare(&picked, &reference);
    if !c.ok() {
        bail!(
            "{} {} ({algorithm:?}) disagrees with the CPU reference: {c}; not reporting it",
            d.g.n,
            op.name()
        );
    }
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// What the timed loop measured.
struct Timing {
    /// median wall time of a recorded operation, submitted and waited on
    kernel: Duration,
    /// median wall time of a whole blocking call (upload, dispatch, readback), where timed
    call: Option<Duration>,
    /// median over the pairs of (whole call / kernel run), the two run one after the other
    call_over_kernel: Option<f64>,
    /// median of the floor's round trips, and over the pairs of (whole call / floor)
    floor: Option<(Duration, f64)>,
    /// median GPU time (timestamp queries) of one op, where the device has them: the median
    /// over runs of one submission recording the op `batch` times, divided by `batch`
    gpu: Option<Duration>,
    /// median GPU time of a submission of the op once
    gpu_single: Option<Duration>,
    /// per pass of the plan, the median over the batched runs of its GPU time per op, where
    /// the device times inside compute passes (else empty)
    gpu_passes: Vec<Duration>,
    /// ops per timed submission
    batch: usize,
}

/// Wall time the adapter is kept busy before anything is timed (a GPU idling at a low clock
/// takes this long to reach its working clock).
const WARM_UP: Duration = Duration::from_millis(200);
/// GPU time a batched submission aims for: ops per submission = this / one op's wall time
/// (1 to [`MOST_BATCH`]), so that a submission's fixed cost is a small part of what it times.
const BATCH_TARGET: Duration = Duration::from_millis(20);
const MOST_BATCH: usize = 64;

/// One kernel run: recorded before its clock starts, submitted and waited on to the end.
fn kernel_run(ctx: &GpuContext, d: &Data, op: Op, algorithm: Algorithm) -> Result<Duration> {
    let mut enc = ctx.encoder("bench");
    record(ctx, d, op, algorithm, &mut enc)?;
    let t = Instant::now();
    ctx.submit_and_wait(enc)?;
    Ok(t.elapsed())
}

/// `runs` kernel runs, each followed by a whole blocking call and a round trip of the floor
/// where `calls` (so that the machine's drift cancels in their ratios), after one untimed run
/// of each; then, where the device has timestamp queries, the GPU time of as many more kernel
/// runs.
fn time(
    ctx: &GpuContext,
    d: &Data,
    op: Op,
    algorithm: Algorithm,
    runs: usize,
    calls: Option<&BenchShape>,
) -> Result<Timing> {
    // warm the adapter up: at least one run, and about WARM_UP of them
    let warm = Instant::now();
    kernel_run(ctx, d, op, algorithm)?;
    while warm.elapsed() < WARM_UP {
        kernel_run(ctx, d, op, algorithm)?;
    }
    let floor = calls.map(|_| Floor::new(ctx, d.out.len()));
    if let (Some(s), Some(f)) = (calls, &floor) {
        call(ctx, s, d, op)?;
        f.round_trip(ctx)?;
    }
    let mut kernels = Vec::with_capacity(runs);
    let mut whole = Vec::with_capacity(runs);
    let mut ratios = Vec::with_capacity(runs);
    let mut floors = Vec::with_capacity(runs);
    let mut over_floor = Vec::with_capacity(runs);
    for _ in 0..runs {
        let k = kernel_run(ctx, d, op, algorithm)?;
        kernels.push(k);
        if let (Some(s), Some(f)) = (calls, &floor) {
            let c = call(ctx, s, d, op)?;
            let fl = f.round_trip(ctx)?;
            whole.push(c);
            floors.push(fl);
            ratios.push(c.as_secs_f64() / k.as_secs_f64().max(1e-9));
            over_floor.push(c.as_secs_f64() / fl.as_secs_f64().max(1e-9));
        }
    }
    let kernel = median(kernels);
    let batch = (BATCH_TARGET.as_secs_f64() / kernel.as_secs_f64().max(1e-9))
        .clamp(1.0, MOST_BATCH as f64) as usize;
    let ((gpu, gpu_passes), gpu_single) = if ctx.has_timestamps() {
        (
            gpu_times(ctx, d, op, algorithm, runs, batch)?,
            gpu_times(ctx, d, op, algorithm, runs, 1)?.0,
        )
    } else {
        ((None, Vec::new()), None)
    };
    ratios.sort_by(f64::total_cmp);
    over_floor.sort_by(f64::total_cmp);
    let floor = (!floors.is_empty()).then(|| (median(floors), over_floor[over_floor.len() / 2]));
    Ok(Timing {
        floor,
        kernel,
        call: (!whole.is_empty()).then(|| median(whole)),
        call_over_kernel: ratios.get(ratios.len() / 2).copied(),
        gpu,
        gpu_single,
        gpu_passes,
        batch,
    })
}

/// The median over `runs` submissions, each recording the op `batch` times, of their GPU time
/// divided by `batch`, `None` where a measurement gave no time; and per pass of the plan, the
/// median of its time divided by `batch`, where the device times inside compute passes.
fn gpu_times(
    ctx: &GpuContext,
    d: &Data,
    op: Op,
    algorithm: Algorithm,
    runs: usize,
    batch: usize,
) -> Result<(Option<Duration>, Vec<Duration>)> {
    let mut gpu = Vec::with_capacity(runs);
    let mut passes: Vec<Vec<Duration>> = Vec::new();
    for _ in 0..runs {
        let mut failed = None;
        let timed = ctx.time_passes_on_gpu(|enc| {
            for _ in 0..batch {
                if failed.is_none() {
                    failed = record(ctx, d, op, algorithm, enc).err();
                }
            }
            Ok(())
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        let Some(t) = timed else {
            return Ok((None, Vec::new()));
        };
        gpu.push(t.total / batch as u32);
        if passes.len() < t.passes.len() {
            passes.resize(t.passes.len(), Vec::new());
        }
        for (i, p) in t.passes.iter().enumerate() {
            passes[i].push(*p / batch as u32);
        }
    }
    // a pass timed in some runs only (the stamps ran out) gets no figure
    let passes = if passes.iter().all(|p| p.len() == runs) {
        passes.into_iter().map(median).collect()
    } else {
        Vec::new()
    };
    Ok(((runs > 0).then(|| median(gpu)), passes))
}

/// CPU reference throughput (GFLOP/s) on the whole shape, or why it was skipped.
fn cpu_gflops(d: &Data, op: Op) -> std::result::Result<f64, String> {
    let flops = d.g.flops();
    if flops > CPU_FLOP_LIMIT {
        return Err(format!(
            "skipped: {:.1} GFLOP would take more than a few seconds",
            flops / 1e9
        ));
    }
    let t = Instant::now();
    let r = match op {
        Op::Forward => cpu::conv2d_forward(&d.g, &d.x, &d.w, None),
        Op::WeightGrad => cpu::conv2d_weight_grad(&d.g, &d.x, &d.gy),
        Op::InputGrad => cpu::conv2d_input_grad(&d.g, &d.w, &d.gy),
        other => return Err(format!("no CPU timing for {}", other.name())),
    };
    std::hint::black_box(r);
    Ok(flops / t.elapsed().as_secs_f64() / 1e9)
}

/// What one line of the report holds.
pub struct Row {
    shape: &'static str,
    op: &'static str,
    median_s: f64,
    flops: f64,
    /// GFLOP/s from the GPU time where there is one, else from `median_s`
    gflops: f64,
    /// median GPU time of one op in a batched submission (timestamp queries), where the device
    /// has them; of one op submitted alone; ops per batched submission
    gpu_s: Option<f64>,
    gpu_single_s: Option<f64>,
    /// per pass of the plan, its GPU time per op in the batched runs (empty where not timed)
    gpu_passes_s: Vec<f64>,
    batch: usize,
    call_us: f64,
    /// median over alternating pairs of (whole call / kernel run)
    call_over_kernel: f64,
    /// the floor's round trip (µs) and median of (whole call / floor)
    floor: Option<(f64, f64)>,
    direct: Option<(f64, f64)>,
    cpu: std::result::Result<f64, String>,
    plan: Plan,
    /// what autotuning chose, where it is on
    tuned: Option<wgpu_conv::Tuned>,
}

/// The plan `Auto` makes for `op` on `g` on this context's device (after autotuning, where it
/// is on).
pub fn plan_of(ctx: &GpuContext, g: &Conv2dGeometry, op: Op, bias: bool) -> Result<Plan> {
    Ok(ctx.plan(op, g, bias, Algorithm::Auto)?)
}

fn prepare(ctx: &GpuContext, s: &BenchShape, op: Op) -> Result<Data> {
    let g = s.options.resolve(s.input, s.weight)?;
    let x = values(s.input.iter().product(), 1);
    let w = values(s.weight.iter().product(), 2);
    let gy = values(g.output_shape().iter().product(), 3);
    let out_shape = match op {
        Op::Forward => g.output_shape(),
        Op::WeightGrad => g.weight_shape(),
        Op::InputGrad => g.input_shape(),
        other => bail!("bench does not time {}", other.name()),
    };
    Ok(Data {
        xg: ctx.upload(&Tensor::new(g.input_shape().to_vec(), x.clone())?)?,
        wg: ctx.upload(&Tensor::new(g.weight_shape().to_vec(), w.clone())?)?,
        gyg: ctx.upload(&Tensor::new(g.output_shape().to_vec(), gy.clone())?)?,
        out: ctx.empty(&out_shape, "bench: output")?,
        xt: Tensor::new(s.input.to_vec(), x.clone())?,
        wt: Tensor::new(s.weight.to_vec(), w.clone())?,
        gyt: Tensor::new(g.output_shape().to_vec(), gy.clone())?,
        g,
        x,
        w,
        gy,
    })
}

/// One whole blocking call (upload, dispatch, readback) of `op` on the shape's data.
fn call(ctx: &GpuContext, s: &BenchShape, d: &Data, op: Op) -> Result<Duration> {
    let wanted = |weight, input| wgpu_conv::Wanted {
        weight,
        input,
        bias: false,
    };
    let t = Instant::now();
    match op {
        Op::Forward => drop(ctx.conv2d(&d.xt, &d.wt, None, &s.options)?),
        Op::WeightGrad => {
            drop(ctx.conv2d_backward(&d.xt, &d.wt, &d.gyt, &s.options, wanted(true, false))?)
        }
        Op::InputGrad => {
            drop(ctx.conv2d_backward(&d.xt, &d.wt, &d.gyt, &s.options, wanted(false, true))?)
        }
        other => bail!("bench does not time {}", other.name()),
    }
    Ok(t.elapsed())
}

/// Runs the benchmark and prints the table (or JSON lines).
pub fn run(
    ctx: &GpuContext,
    shapes: &[String],
    ops: &[Op],
    runs: usize,
    json: bool,
    direct: bool,
) -> Result<()> {
    let picked: Vec<BenchShape> = if shapes.is_empty() {
        bench_shapes()
    } else {
        shapes.iter().map(|n| shape(n)).collect::<Result<_>>()?
    };
    let info = ctx.adapter_info();
    let adapter = info.name.clone();
    let backend = format!("{:?}", info.backend);
    let driver = format!("{} {}", info.driver, info.driver_info)
        .trim()
        .to_string();
    let family = ctx.profile().resolved_family().name();
    if !json {
        let stamps = if ctx.has_timestamps() {
            "GFLOP/s from the GPU time (timestamp queries) of one op in a batch of up to 64 \
             in one submission, after 0.2 s of warm-up"
        } else {
            "no timestamp queries on this device: GFLOP/s from the median wall time"
        };
        println!("adapter: {}, {family} kernels; {stamps}", ctx.describe());
        println!(
            "{:<11} {:<12} {:>11} {:>9} {:>15} {:>11} {:>6} {:>11} {:>6} {:>22} {:>10}  kernel",
            "shape",
            "op",
            "median",
            "GFLOP/s",
            "GPU time",
            "call",
            "c/k",
            "floor",
            "c/f",
            "direct kernel",
            "CPU ref"
        );
    }
    let total = (picked.len() * ops.len()) as u64;
    let bar = super::progress(if json { 0 } else { total }, "bench");
    for s in &picked {
        for &op in ops {
            let d = prepare(ctx, s, op)?;
            // autotuning (where it is on) measures here, before anything is timed
            let tuned = ctx.autotuned(op, &d.g, false)?;
            check(ctx, &d, op, Algorithm::Auto)?;
            let timing = time(ctx, &d, op, Algorithm::Auto, runs, Some(s))?;
            let t = timing.kernel.as_secs_f64();
            let direct_fig = if direct && op != Op::InputGrad {
                check(ctx, &d, op, Algorithm::Direct)?;
                let td = time(ctx, &d, op, Algorithm::Direct, runs.min(3), None)?
                    .kernel
                    .as_secs_f64();
                Some((td, d.g.flops() / td / 1e9))
            } else {
                None
            };
            let gpu_s = timing.gpu.map(|g| g.as_secs_f64());
            let row = Row {
                shape: s.name,
                op: op.name(),
                median_s: t,
                flops: d.g.flops(),
                gflops: d.g.flops() / gpu_s.unwrap_or(t) / 1e9,
                gpu_s,
                gpu_single_s: timing.gpu_single.map(|g| g.as_secs_f64()),
                gpu_passes_s: timing
                    .gpu_passes
                    .iter()
                    .map(Duration::as_secs_f64)
                    .collect(),
                batch: timing.batch,
                call_us: timing.call.map_or(0.0, |c| c.as_secs_f64() * 1e6),
                call_over_kernel: timing.call_over_kernel.unwrap_or(f64::NAN),
                floor: timing.floor.map(|(f, r)| (f.as_secs_f64() * 1e6, r)),
                direct: direct_fig,
                cpu: cpu_gflops(&d, op),
                plan: plan_of(ctx, &d.g, op, false)?,
                tuned,
            };
            bar.suspend(|| print_row(&row, json, family, &adapter, &backend, &driver));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// The plan's passes as JSON objects: kernel, useful FLOPs (the op's for its main kernel where
/// the kernel states none, 0 for a pass without FMAs), its GPU time per op (`gpu_s`, where the
/// device times inside compute passes, else null) and the warp model's fields (null where they
/// do not apply).
fn passes_json(plan: &Plan, flops: f64, gpu_s: &[f64]) -> String {
    let num = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.4}"));
    let main = plan.main_kernel();
    plan.passes()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let m = p.model();
            let f = m
                .flops
                .unwrap_or(if Some(p.kernel()) == main { flops } else { 0.0 });
            let gpu = gpu_s
                .get(i)
                .map_or("null".to_string(), |s| format!("{s:.6e}"));
            format!(
                "{{\"kernel\":\"{}\",\"flops\":{f:.6e},\"gpu_s\":{gpu},\"workgroups\":{},\"workgroups_per_sm\":{:.3},\"tail_efficiency\":{:.3},\"fma_per_wgmem_word\":{},\"fma_per_barrier\":{},\"wgmem_store_conflict\":{},\"gather_sectors_per_warp_load\":{},\"wasted_fma_fraction\":{}}}",
                p.kernel(),
                m.workgroups,
                m.workgroups_per_sm,
                m.tail_efficiency,
                num(m.fma_per_wgmem_word),
                num(m.fma_per_barrier),
                m.wgmem_store_conflict
                    .map_or("null".to_string(), |w| w.to_string()),
                num(m.gather_sectors_per_warp_load),
                num(m.wasted_fma_fraction),
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn print_row(r: &Row, json: bool, family: &str, adapter: &str, backend: &str, driver: &str) {
    if json {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let direct = match r.direct {
            Some((s, g)) => format!(",\"direct_median_s\":{s:.6e},\"direct_gflops\":{g:.3}"),
            None => String::new(),
        };
        let cpu = match &r.cpu {
            Ok(g) => format!(",\"cpu_gflops\":{g:.3}"),
            Err(note) => format!(",\"cpu_gflops\":null,\"cpu_note\":\"{}\"", esc(note)),
        };
        let floor = match r.floor {
            Some((us, ratio)) => {
                format!(",\"floor_us\":{us:.1},\"call_over_floor\":{ratio:.3}")
            }
            None => String::new(),
        };
        let num = |v: Option<f64>| v.map_or("null".to_string(), |s| format!("{s:.6e}"));
        let gpu = format!(
            ",\"gpu_median_s\":{},\"gpu_single_s\":{},\"gpu_batch\":{},\"wall_gflops\":{:.3}",
            num(r.gpu_s),
            num(r.gpu_single_s),
            r.batch,
            r.flops / r.median_s / 1e9
        );
        let kernels = r
            .plan
            .kernels()
            .iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(",");
        let tuned = match &r.tuned {
            Some(t) => format!(
                ",\"autotune\":\"{}\",\"tuned_algorithm\":\"{}\"",
                if t.from_cache { "cache" } else { "measured" },
                t.algorithm.name()
            ),
            None => ",\"autotune\":null".to_string(),
        };
        let plan = format!(
            "{tuned},\"family\":\"{family}\",\"kernels\":[{kernels}],\"dispatches\":{},\"invocations\":{},\"scratch_bytes\":{},\"passes\":[{}]",
            r.plan.dispatches(),
            r.plan.max_invocations(),
            r.plan.scratch_bytes(),
            passes_json(&r.plan, r.flops, &r.gpu_passes_s)
        );
        println!(
            "{{\"shape\":\"{}\",\"op\":\"{}\",\"median_s\":{:.6e},\"gflops\":{:.3}{gpu},\"call_us\":{:.1},\"call_over_kernel\":{:.3}{floor}{direct}{cpu}{plan},\"adapter\":\"{}\",\"backend\":\"{}\",\"driver\":\"{}\"}}",
            r.shape,
            r.op,
            r.median_s,
            r.gflops,
            r.call_us,
            r.call_over_kernel,
            esc(adapter),
            esc(backend),
            esc(driver)
        );
    } else {
        let direct = match r.direct {
            Some((s, g)) => format!("{:>9.3} ms {:>7.2} GF", s * 1e3, g),
            None => "-".to_string(),
        };
        let cpu = match &r.cpu {
            Ok(g) => format!("{g:.2} GF"),
            Err(_) => "skipped".to_string(),
        };
        let gpu = match r.gpu_s {
            Some(s) => format!("{:.3} ms", s * 1e3),
            None => "-".to_string(),
        };
        let gpu = if r.batch > 1 && r.gpu_s.is_some() {
            format!("{gpu} x{}", r.batch)
        } else {
            gpu
        };
        println!(
            "{:<11} {:<12} {:>8.3} ms {:>9.2} {:>15} {:>8.0} us {:>6.2} {:>8.0} us {:>6.2} {:>22} {:>10}  {}{}",
            r.shape,
            r.op,
            r.median_s * 1e3,
            r.gflops,
            gpu,
            r.call_us,
            r.call_over_kernel,
            r.floor.map_or(f64::NAN, |f| f.0),
            r.floor.map_or(f64::NAN, |f| f.1),
            direct,
            cpu,
            r.plan.main_kernel().unwrap_or("-"),
            match &r.tuned {
                Some(t) if t.from_cache =>
                    format!(" (autotuned: {}, from the cache)", t.algorithm.name()),
                Some(t) => format!(" (autotuned: {}, measured now)", t.algorithm.name()),
                None => String::new(),
            }
        );
    }
}

/// `wgpu-conv bench`.
pub fn command(args: BenchArgs) -> Result<()> {
    let BenchArgs {
        shapes,
        ops,
        json,
        runs,
        direct,
        family,
    } = args;
    let runs = runs as usize;
    let ops = ops
        .iter()
        .map(|o| parse_op(o))
        .collect::<Result<Vec<_>>>()?;
    let ctx = context()?;
    let families = if family.is_empty() {
        vec![ctx.family()]
    } else {
        family
    };
    for f in families {
        ctx.set_family(f);
        run(&ctx, &shapes, &ops, runs, json, direct)?;
    }
    Ok(())
}
