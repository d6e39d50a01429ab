//! The candidate protocol: an op's kernels as an ordered list, each taking the geometry or
//! declining with a reason, and the driver that asks them in turn and writes every answer into
//! the plan.

use crate::error::{Error, Result};
use crate::kernels::{Algorithm, Plan};

/// What a candidate answers for a geometry on a device.
pub(crate) enum Outcome {
    /// It runs the op: its passes, scratch and reasons.
    Taken(Plan),
    /// It does not, and why.
    Declined(String),
}

impl From<std::result::Result<Plan, String>> for Outcome {
    fn from(r: std::result::Result<Plan, String>) -> Self {
        match r {
            Ok(p) => Outcome::Taken(p),
            Err(why) => Outcome::Declined(why),
        }
    }
}

/// One way of running an op: its name in the plan's reasons, the algorithms that may take it,
/// and its attempt at a plan for the op's input `I` (the geometry, operands and profile).
pub(crate) struct Candidate<I> {
    pub name: &'static str,
    pub algorithms: &'static [Algorithm],
    pub try_plan: fn(&I) -> Result<Outcome>,
}

/// The algorithms sets the lists use.
pub(crate) const EVERY: &[Algorithm] = &[
    Algorithm::Direct,
    Algorithm::Tiled,
    Algorithm::Gemm,
    Algorithm::Gpu,
];
pub(crate) const BLOCKED: &[Algorithm] = &[Algorithm::Tiled, Algorithm::Gemm, Algorithm::Gpu];
pub(crate) const GEMM_FAMILY: &[Algorithm] = &[Algorithm::Gemm, Algorithm::Gpu];
pub(crate) const GPU_FAMILY: &[Algorithm] = &[Algorithm::Gpu];

/// Asks the candidates `algorithm` may take, in order, and appends the first plan taken to
/// `plan`; each one declined before it leaves `name: not used: why`. The last candidate of a
/// list takes every geometry, so one always does.
pub(crate) fn choose<I>(
    plan: &mut Plan,
    algorithm: Algorithm,
    list: &[Candidate<I>],
    input: &I,
) -> Result<()> {
    for c in list.iter().filter(|c| c.algorithms.contains(&algorithm)) {
        match (c.try_plan)(input)? {
            Outcome::Taken(p) => {
                plan.append(p);
                return Ok(());
            }
            Outcome::Declined(why) => plan.reason(format!("{}: not used: {why}", c.name)),
        }
    }
    Err(Error::Internal(format!(
        "no candidate took {} with {}",
        plan.op.name(),
        algorithm.name()
    )))
}

/// A list's order of choice: each candidate's name and the algorithms that may take it.
pub(crate) fn order<I>(list: &[Candidate<I>]) -> Vec<(&'static str, &'static [Algorithm])> {
    list.iter().map(|c| (c.name, c.algorithms)).collect()
}
