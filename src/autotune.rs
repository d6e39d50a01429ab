//! Optional autotuning (`WGPU_CONV_AUTOTUNE=1`, or [`GpuContext::set_autotune`]): where a call
//! asks for [`Algorithm::Auto`], the candidate algorithms for its operation and shape are timed
//! once, each checked against the CPU reference before it is trusted, and the fastest is kept in
//! a cache file, keyed by adapter, driver, backend, shape bucket and the kernel set's version.
//! From then on that shape bucket always gets that algorithm, in this process and the next, so
//! results stay reproducible. Off by default: `Auto` then picks by rules alone.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::context::GpuContext;
use crate::cpu;
use crate::error::Result;
use crate::kernels::{self, Algorithm, Op};
use crate::options::Conv2dGeometry;
use crate::planner::tuned::{bucket, field, read_cache, write_entry, Times, Tuned};

/// Timed runs per candidate (after one checked run); the median counts.
const RUNS: usize = 3;
/// Result elements checked against the CPU reference per candidate.
const SAMPLES: usize = 256;
/// The direct kernels are candidates only below this much work (elsewhere they lose by far,
/// and timing them would cost the most).
const DIRECT_FLOP_LIMIT: f64 = (1u64 << 26) as f64;
/// Deterministic small-integer data (-2 ..= 2): the CPU reference is then exact, and any
/// correct summation order on the device too.
fn data(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i.wrapping_mul(7919).wrapping_add(seed * 104_729)) % 5) as f32 - 2.0)
        .collect()
}

impl GpuContext {
    /// Whether autotuning is on (`WGPU_CONV_AUTOTUNE` when the context was made, or
    /// [`GpuContext::set_autotune`]).
    pub fn autotune(&self) -> bool {
        *self.tuner.enabled.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Turns autotuning on or off for this context's later calls.
    pub fn set_autotune(&self, on: bool) {
        *self.tuner.enabled.lock().unwrap_or_else(|e| e.into_inner()) = on;
    }

    /// The key of `op` on `g` in the cache: kernel set, adapter, driver, backend, op, bucket.
    fn tune_key(&self, op: Op, g: &Conv2dGeometry, bias: bool) -> String {
        let info = self.adapter_info();
        format!(
            "{}\t{}\t{}\t{:?}\t{}\t{}",
            kernels::kernel_set_version(),
            field(&info.name),
            field(&format!("{} {}", info.driver, info.driver_info)),
            info.backend,
            op.name(),
            bucket(g, bias)
        )
    }

    /// What autotuning chose for `op` (forward, weight or input gradient) on `g`: from the
    /// cache, or measured now (and cached). `None` while autotuning is off, for other ops, or
    /// where no candidate could be measured (an operand past the binding limit: such calls are
    /// split, and their pieces are tuned).
    pub fn autotuned(&self, op: Op, g: &Conv2dGeometry, bias: bool) -> Result<Option<Tuned>> {
        // in a browser nothing can wait for the candidates' timings: no autotuning there
        if cfg!(target_arch = "wasm32")
            || !self.autotune()
            || !matches!(op, Op::Forward | Op::WeightGrad | Op::InputGrad)
        {
            return Ok(None);
        }
        let key = self.tune_key(op, g, bias);
        {
            let mut table = self.tuner.table.lock().unwrap_or_else(|e| e.into_inner());
            let table = table.get_or_insert_with(read_cache);
            if let Some((algorithm, times)) = table.get(&key) {
                return Ok(Some(Tuned {
                    algorithm: *algorithm,
                    from_cache: true,
                    times: times.clone(),
                }));
            }
        }
        let Some((algorithm, times)) = self.measure(op, g, bias)? else {
            return Ok(None);
        };
        self.tuner
            .table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(BTreeMap::new)
            .insert(key.clone(), (algorithm, times.clone()));
        write_entry(&key, algorithm, &times);
        Ok(Some(Tuned {
            algorithm,
            from_cache: false,
            times,
        }))
    }

    /// The plan a call of `op` on `g` with `algorithm` records on this device (the first
    /// piece's where an operand is split): the profile's choices, after autotuning where it is
    /// on and `algorithm` is `Auto` (which may measure the candidates, as the call would).
    pub fn plan(
        &self,
        op: Op,
        g: &Conv2dGeometry,
        bias: bool,
        algorithm: Algorithm,
    ) -> Result<kernels::Plan> {
        let a = match op {
            Op::Forward => self.tuned_algorithm(op, g, bias, algorithm)?,
            Op::WeightGrad | Op::InputGrad => self.tuned_algorithm(op, g, false, algorithm)?,
            _ => algorithm,
        };
        crate::planner::plan(op, g, bias, &self.profile(), a)
    }

    /// `algorithm`, or where it is `Auto` and autotuning is on, the tuned one.
    pub(crate) fn tuned_algorithm(
        &self,
        op: Op,
        g: &Conv2dGeometry,
        bias: bool,
        algorithm: Algorithm,
    ) -> Result<Algorithm> {
        if algorithm != Algorithm::Auto {
            return Ok(algorithm);
        }
        Ok(self
            .autotuned(op, g, bias)?
            .map_or(Algorithm::Auto, |t| t.algorithm))
    }

    /// In a browser nothing is timed (autotuning is off there).
    #[cfg(target_arch = "wasm32")]
    fn measure(
        &self,
        _op: Op,
        _g: &Conv2dGeometry,
        _bias: bool,
    ) -> Result<Option<(Algorithm, Times)>> {
        Ok(None)
    }

    /// Times each candidate algorithm of `op` on `g` (one checked run, then [`RUNS`] timed
    /// ones) and returns the fastest that matched the CPU reference, with every candidate's
    /// median; candidates whose plans are the same kernels are timed once. `None` where an
    /// operand passes the binding limit.
    #[cfg(not(target_arch = "wasm32"))]
    fn measure(
        &self,
        op: Op,
        g: &Conv2dGeometry,
        bias: bool,
    ) -> Result<Option<(Algorithm, Times)>> {
        self.scoped("autotune", || self.measure_scoped(op, g, bias))
    }

    /// [`GpuContext::measure`], inside its error scopes.
    #[cfg(not(target_arch = "wasm32"))]
    fn measure_scoped(
        &self,
        op: Op,
        g: &Conv2dGeometry,
        bias: bool,
    ) -> Result<Option<(Algorithm, Times)>> {
        let limit = self.binding_limit();
        let fits = |shape: [usize; 4]| (shape.iter().product::<usize>() as u64) * 4 <= limit;
        if !fits(g.input_shape()) || !fits(g.weight_shape()) || !fits(g.output_shape()) {
            return Ok(None);
        }
        let x = data(g.input_shape().iter().product(), 1);
        let w = data(g.weight_shape().iter().product(), 2);
        let gy = data(g.output_shape().iter().product(), 3);
        let b = data(g.oc, 4);
        let xg = self.upload_slice(&g.input_shape(), &x, "wgpu-conv: autotune x")?;
        let wg = self.upload_slice(&g.weight_shape(), &w, "wgpu-conv: autotune w")?;
        let gyg = self.upload_slice(&g.output_shape(), &gy, "wgpu-conv: autotune gy")?;
        let bg = self.upload_slice(&[g.oc], &b, "wgpu-conv: autotune bias")?;
        let out_shape = match op {
            Op::Forward => g.output_shape(),
            Op::WeightGrad => g.weight_shape(),
            _ => g.input_shape(),
        };
        let out = self.empty(&out_shape, "wgpu-conv: autotune out")?;
        let len: usize = out_shape.iter().product();
        let idx = cpu::sample_indices(len, SAMPLES);
        let reference = match op {
            Op::Forward => cpu::sampled(&idx, |i| {
                cpu::conv2d_forward_at(g, &x, &w, bias.then_some(b.as_slice()), i)
            }),
            Op::WeightGrad => cpu::sampled(&idx, |i| cpu::conv2d_weight_grad_at(g, &x, &gy, i)),
            _ => cpu::sampled(&idx, |i| cpu::conv2d_input_grad_at(g, &w, &gy, i)),
        };
        let profile = self.profile();
        let mut candidates = vec![Algorithm::Gpu, Algorithm::Gemm, Algorithm::Tiled];
        if g.flops() < DIRECT_FLOP_LIMIT {
            candidates.push(Algorithm::Direct);
        }
        // plans of the same kernels and dispatches are one candidate
        let mut seen: Vec<(Vec<&'static str>, usize, u64, u64)> = Vec::new();
        let mut times = Vec::new();
        for a in candidates {
            let plan = match op {
                Op::Forward => crate::planner::forward_piece(g, bias, &profile, a)?,
                Op::WeightGrad => crate::planner::weight_grad_piece(g, &profile, a)?,
                _ => crate::planner::input_grad_piece(g, &profile, a, true)?,
            };
            let shape = (
                plan.kernels(),
                plan.dispatches(),
                plan.max_invocations(),
                plan.scratch_bytes(),
            );
            if seen.contains(&shape) {
                continue;
            }
            seen.push(shape);
            let operands: Vec<&wgpu::Buffer> = match op {
                Op::Forward => vec![
                    &xg.buffer(),
                    &wg.buffer(),
                    if bias {
                        &bg.buffer()
                    } else {
                        &self.rt.pipelines.zeros
                    },
                    &out.buffer(),
                ],
                Op::WeightGrad => vec![&xg.buffer(), &gyg.buffer(), &out.buffer()],
                _ => vec![&wg.buffer(), &gyg.buffer(), &out.buffer()],
            };
            let run = |read: bool| -> Result<(Duration, Option<Vec<f32>>)> {
                let mut encoder = self.encoder("wgpu-conv: autotune");
                crate::runtime::encode::record(
                    &self.rt,
                    &self.profile(),
                    &mut encoder,
                    &plan,
                    &operands,
                )?;
                let t = Instant::now();
                if read {
                    let got = self.submit_and_read(encoder, &[out.buffer()])?.remove(0);
                    return Ok((t.elapsed(), Some(got)));
                }
                self.submit_scoped("autotune", encoder)?;
                Ok((t.elapsed(), None))
            };
            let (_, got) = run(true)?;
            let got = got.unwrap_or_default();
            let picked: Vec<f32> = idx.iter().map(|&i| got[i]).collect();
            if !cpu::compare(&picked, &reference).ok() {
                // a candidate that disagrees with the reference is never chosen
                continue;
            }
            let mut runs = Vec::with_capacity(RUNS);
            for _ in 0..RUNS {
                runs.push(run(false)?.0);
            }
            runs.sort();
            times.push((a, runs[RUNS / 2].as_secs_f64()));
        }
        let best = times.iter().min_by(|a, b| a.1.total_cmp(&b.1)).map(|t| t.0);
        Ok(best.map(|a| (a, times)))
    }
}
