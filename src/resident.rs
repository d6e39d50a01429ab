//! A layer's resident state on one context: its weight and bias in device buffers, and per
//! input shape the forward plan and the weight's packed form, kept until the weight changes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::context::GpuContext;
use crate::error::Result;
use crate::kernels::{Algorithm, Family, Op, Plan};
use crate::ops::GpuTensor;
use crate::options::Conv2dGeometry;
use crate::tensor::Tensor;

/// Forward plans (and packed weights) a layer keeps: one per input shape it has seen lately.
const MAX_PLANS: usize = 8;

/// A forward plan for one geometry, and the buffers holding the weight's packed form.
struct Planned {
    g: Conv2dGeometry,
    family: Family,
    plan: Plan,
    /// `(scratch index, buffer)` of each packed form of the weight.
    packed: Vec<(usize, wgpu::Buffer)>,
    /// Set once a submission that packed them has completed on the device, to 1 + the
    /// context's error count when it was recorded: they are filled while that count has not
    /// moved since (wgpu also completes a submission that failed validation). Until then every
    /// forward pass recorded packs them again first: an encoder that packed them may not have
    /// been submitted yet (or ever), or may still be running behind another that reads them.
    done: Arc<AtomicU64>,
}

/// What one layer holds on one context.
struct Resident {
    ctx: u64,
    weight: GpuTensor,
    bias: Option<GpuTensor>,
    /// Whether every weight is finite (the fast input-gradient kernels need it).
    finite: bool,
    plans: Vec<Planned>,
}

/// A layer's resident state, empty until its first call on a context. A clone starts empty
/// (it uploads its own copy on first use), and it takes no part in comparisons.
#[derive(Default)]
pub(crate) struct ResidentCache(Mutex<Option<Resident>>);

impl Clone for ResidentCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for ResidentCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for ResidentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.lock().as_ref().map(|r| r.plans.len());
        match held {
            Some(plans) => write!(f, "resident ({plans} plans)"),
            None => f.write_str("not resident"),
        }
    }
}

impl ResidentCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Resident>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets everything (the weight or bias changed).
    pub(crate) fn clear(&self) {
        *self.lock() = None;
    }

    /// The resident state on `ctx`, uploaded first where it is missing or belongs to another
    /// context.
    fn on<'a>(
        slot: &'a mut Option<Resident>,
        ctx: &GpuContext,
        weight: &Tensor,
        bias: Option<&Tensor>,
    ) -> Result<&'a mut Resident> {
        if slot.as_ref().is_some_and(|r| r.ctx != ctx.uid) {
            *slot = None;
        }
        if slot.is_none() {
            let oc = weight.shape().first().copied().unwrap_or(1);
            *slot = Some(Resident {
                ctx: ctx.uid,
                weight: ctx.upload_resident(weight.shape(), weight.data(), "layer: weight")?,
                bias: bias
                    .map(|b| ctx.upload_resident(&[oc, 1, 1, 1], b.data(), "layer: bias"))
                    .transpose()?,
                finite: weight.data().iter().all(|v| v.is_finite()),
                plans: Vec::new(),
            });
        }
        Ok(slot.as_mut().expect("filled above"))
    }

    /// The weight and bias on `ctx` (handles to the resident buffers) and whether every
    /// weight is finite.
    pub(crate) fn weights(
        &self,
        ctx: &GpuContext,
        weight: &Tensor,
        bias: Option<&Tensor>,
    ) -> Result<(GpuTensor, Option<GpuTensor>, bool)> {
        let mut slot = self.lock();
        let r = Self::on(&mut slot, ctx, weight, bias)?;
        Ok((
            r.weight.handle(),
            r.bias.as_ref().map(GpuTensor::handle),
            r.finite,
        ))
    }

    /// Records the forward pass of `g` from `x` into `y` with the resident weight: the plan is
    /// made, and the weight packed, on the first call for a shape only.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_forward(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        g: &Conv2dGeometry,
        weight: &Tensor,
        bias: Option<&Tensor>,
        x: &GpuTensor,
        y: &GpuTensor,
    ) -> Result<()> {
        let mut slot = self.lock();
        let r = Self::on(&mut slot, ctx, weight, bias)?;
        let family = ctx.family();
        let at = match r.plans.iter().position(|p| p.g == *g && p.family == family) {
            Some(at) => at,
            None => {
                let has_bias = r.bias.is_some();
                let algorithm = ctx.tuned_algorithm(Op::Forward, g, has_bias, Algorithm::Auto)?;
                let plan = crate::planner::forward_piece(g, has_bias, &ctx.profile(), algorithm)?;
                let packed = crate::runtime::encode::weight_packs(&plan)
                    .into_iter()
                    .map(|(s, _)| {
                        let usage = crate::runtime::encode::scratch_usage(&plan, s);
                        let bytes = crate::runtime::encode::scratch_size(&plan, s);
                        (s, ctx.rt.dedicated("layer: packed weight", usage, bytes))
                    })
                    .collect();
                if r.plans.len() == MAX_PLANS {
                    r.plans.remove(0);
                }
                r.plans.push(Planned {
                    g: *g,
                    family,
                    plan,
                    packed,
                    done: Arc::new(AtomicU64::new(0)),
                });
                r.plans.len() - 1
            }
        };
        ctx.check_forward_operands(g, x, y)?;
        let zeros = &ctx.rt.pipelines.zeros;
        let b = r.bias.as_ref().map_or(zeros, GpuTensor::buffer);
        let operands = [x.buffer(), r.weight.buffer(), b, y.buffer()];
        let p = &r.plans[at];
        let errors = ctx.error_count();
        let ready = p.done.load(Ordering::Acquire) == errors + 1;
        let resident: Vec<(usize, &wgpu::Buffer, bool)> =
            p.packed.iter().map(|(s, b)| (*s, b, ready)).collect();
        crate::runtime::encode::prepare(&ctx.rt, &ctx.profile(), &p.plan, &operands, &resident)?
            .encode(&ctx.rt, encoder);
        if !ready && !p.packed.is_empty() {
            // ready once this encoder's work has run (never, if it is dropped unsubmitted),
            // unless an error came after this recording
            let done = Arc::clone(&p.done);
            encoder.on_submitted_work_done(move || done.store(errors + 1, Ordering::Release));
        }
        Ok(())
    }
}
