//! Dispatch grids: work cut into dispatches within the device's per-dispatch budget, and
//! workgroup counts spread over a grid's dimensions within their limit.

use super::profile::DeviceProfile;
use crate::error::{Error, Limit, Result};

/// Cuts `items` work items of `flops_per_item` each into `(first, count)` runs of at most
/// `max_flops` (at least one item each), each aligned to `align` items.
pub(crate) fn dispatch_chunks(
    items: usize,
    flops_per_item: f64,
    align: usize,
    max_flops: f64,
) -> Vec<(usize, usize)> {
    let align = align.max(1);
    let per = ((max_flops / flops_per_item.max(1.0)) as usize / align).max(1) * align;
    (0..items)
        .step_by(per)
        .map(|s| (s, per.min(items - s)))
        .collect()
}

/// Workgroups spread over a 2-D grid `[x, y, 1]` with `x, y <= max`: the kernels rebuild the
/// linear index as `wid.y * nwg.x + wid.x` and skip the excess. The one dispatch of a kernel
/// that reads no `base`.
pub(crate) fn spread(workgroups: usize, max: u32, kernel: &str) -> Result<[u32; 3]> {
    let max = max.max(1) as usize;
    let workgroups = workgroups.max(1);
    let x = workgroups.min(max);
    let y = workgroups.div_ceil(x);
    if y > max {
        return Err(Error::too_large(
            format!("{kernel}: {workgroups} workgroups"),
            Limit::WorkgroupsPerDimension,
            y as u64,
            max as u64,
        ));
    }
    Ok([x as u32, y as u32, 1])
}

/// The one dispatch helper. A kernel's work is `items` items along its offset axis (the one
/// whose first item it reads from the uniform's `base`), `per_workgroup` items to a workgroup,
/// on a grid whose other two dimensions are `other` workgroups. Returns `(first item, grid)`
/// runs that keep every dimension within the profile's per-dimension limit and each dispatch
/// within its FLOP cap. `axis` is 0, 1 or 2; `None` means a linear kernel, whose workgroups
/// are spread over x and y (`other` is then ignored).
pub(crate) fn runs(
    kernel: &str,
    axis: Option<usize>,
    items: usize,
    per_workgroup: usize,
    other: [usize; 2],
    flops_per_item: f64,
    profile: &DeviceProfile,
) -> Result<Vec<(usize, [u32; 3])>> {
    let (max, cap) = (
        profile.max_workgroups_per_dimension,
        profile.max_dispatch_flops,
    );
    let per_workgroup = per_workgroup.max(1);
    let Some(axis) = axis else {
        // A run of more than `max` workgroups is cut into a whole number of rows of `max`
        // (so the spread grid has no excess workgroups to reach into the next run) and the rest.
        let row = (max as usize).max(1);
        let mut out = Vec::new();
        for (first, count) in dispatch_chunks(items, flops_per_item, per_workgroup, cap) {
            let workgroups = count.div_ceil(per_workgroup);
            let whole = if workgroups > row {
                workgroups / row * row
            } else {
                workgroups
            };
            let head = (whole * per_workgroup).min(count);
            out.push((first, spread(whole, max, kernel)?));
            if head < count {
                let rest = (count - head).div_ceil(per_workgroup);
                out.push((first + head, spread(rest, max, kernel)?));
            }
        }
        return Ok(out);
    };
    for &d in &other {
        if d > max as usize {
            return Err(Error::too_large(
                format!("{kernel}: grid"),
                Limit::WorkgroupsPerDimension,
                d as u64,
                u64::from(max),
            ));
        }
    }
    let most = (max as usize).max(1) * per_workgroup;
    let mut out = Vec::new();
    for (first, count) in dispatch_chunks(items, flops_per_item, per_workgroup, cap) {
        for f in (first..first + count).step_by(most) {
            let n = most.min(first + count - f).div_ceil(per_workgroup);
            let mut grid = [0u32; 3];
            let mut o = other.iter();
            for (d, g) in grid.iter_mut().enumerate() {
                *g = if d == axis {
                    n as u32
                } else {
                    (*o.next().unwrap_or(&1)).max(1) as u32
                };
            }
            out.push((f, grid));
        }
    }
    Ok(out)
}

/// Whether a grid whose fixed dimensions are `dims` fits the per-dimension limit.
pub(crate) fn fits(dims: &[usize], max: u32) -> bool {
    dims.iter().all(|&d| d <= max as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: f64 = (1u64 << 28) as f64;

    fn profile(max: u32) -> DeviceProfile {
        let mut p = DeviceProfile::webgpu_defaults();
        p.max_workgroups_per_dimension = max;
        p.max_dispatch_flops = CAP;
        p
    }

    #[test]
    fn dispatch_chunks_cover_everything_once() {
        for (items, flops, align) in [
            (10usize, 1.0, 1usize),
            (1000, CAP / 7.0, 1),
            (5000, CAP / 100.0, 64),
            (3, CAP * 10.0, 1),
        ] {
            let chunks = dispatch_chunks(items, flops, align, CAP);
            let mut next = 0;
            for &(first, count) in &chunks {
                assert_eq!(first, next);
                assert!(count >= 1);
                assert!(first % align == 0);
                assert!(count as f64 * flops <= CAP || count <= align);
                next += count;
            }
            assert_eq!(next, items);
        }
        assert_eq!(dispatch_chunks(1000, CAP / 7.0, 1, CAP).len(), 143);
    }

    #[test]
    fn runs_cover_every_item_once_within_the_limit() {
        for (axis, items, per, other, flops, max) in [
            (Some(2), 70_000usize, 1usize, [1usize, 1], 1.0, 65_535u32),
            (Some(2), 10, 1, [3, 4], CAP / 3.0, 4),
            (Some(0), 9 * 64, 64, [2, 2], 1.0, 4),
            (Some(1), 1, 1, [7, 7], 1.0, 65_535),
            (None, 70_000 * 64, 64, [0, 0], 1.0, 65_535),
            (None, 1000, 64, [0, 0], 1.0, 4),
        ] {
            let mut next = 0;
            for (first, grid) in runs("k", axis, items, per, other, flops, &profile(max)).unwrap() {
                assert_eq!(first, next);
                assert!(grid.iter().all(|&d| d >= 1 && d <= max), "{grid:?} > {max}");
                let n = match axis {
                    Some(a) => grid[a] as usize * per,
                    None => (grid[0] * grid[1]) as usize * per,
                };
                next += n.min(items - first);
            }
            assert_eq!(next, items);
        }
        assert!(runs("k", Some(2), 1, 1, [70_000, 1], 1.0, &profile(65_535)).is_err());
        assert!(runs("k", None, 1 << 40, 1, [0, 0], 0.0, &profile(4)).is_err());
    }
}
