//! How a pass would run on a large GPU, computed without one: a small warp model of the GEMM
//! kernels (their loaders' index formulas, as in their shaders, evaluated for the 32 lanes of a
//! warp) and the grid's fill of a reference device. `plan` and `bench --json` print it per
//! pass; the tests hold the GPU family to its targets on the bench shapes.

use crate::options::{Conv2dGeometry, PaddingMode};

/// Streaming multiprocessors of the reference device (an H100 or H200 has 132).
pub const REFERENCE_SMS: usize = 132;
/// Lanes of a warp, banks of workgroup memory (4-byte words), floats of a 32-byte sector.
const WARP: usize = 32;
const BANKS: u64 = 32;
const SECTOR_FLOATS: u64 = 8;

/// What a kernel module states about its pass: the FMAs its lanes issue and the op needs, and
/// the warp model's figures (`None` where the kernel has no workgroup memory or no model).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct KernelModel {
    pub useful_fmas: f64,
    pub issued_fmas: f64,
    pub fma_per_wgmem_word: Option<f64>,
    pub fma_per_barrier: Option<f64>,
    pub wgmem_store_conflict: Option<u32>,
    pub gather_sectors_per_warp_load: Option<f64>,
}

/// A pass as the model sees it on the reference device (see [`crate::Pass::model`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PassModel {
    /// Useful floating-point operations (2 per FMA the op needs), where the kernel states them.
    pub flops: Option<f64>,
    /// Workgroups of its largest dispatch.
    pub workgroups: u64,
    /// Those per SM of the reference device ([`REFERENCE_SMS`]).
    pub workgroups_per_sm: f64,
    /// Workgroups over the SM slots of the whole waves they take (one workgroup an SM a wave):
    /// 1.0 when the last wave is full.
    pub tail_efficiency: f64,
    /// FMAs per 4-byte word read from workgroup memory in the compute phase, per invocation, in
    /// a full tile (an edge tile that runs half its columns reads fewer words for fewer FMAs).
    pub fma_per_wgmem_word: Option<f64>,
    /// FMAs per workgroup barrier, per invocation.
    pub fma_per_barrier: Option<f64>,
    /// The worst bank conflict of the loaders' workgroup-memory stores (ways; 1 is none).
    pub wgmem_store_conflict: Option<u32>,
    /// 32-byte sectors one warp-wide global load of the gather touches, on average (4 is a
    /// warp reading 32 consecutive floats).
    pub gather_sectors_per_warp_load: Option<f64>,
    /// FMAs issued that the op does not need (tile and K padding, masked lanes, inserted
    /// zeros), over those issued.
    pub wasted_fma_fraction: Option<f64>,
}

impl PassModel {
    pub(crate) fn new(workgroups: u64, k: Option<&KernelModel>) -> Self {
        let sms = REFERENCE_SMS as u64;
        let waves = workgroups.div_ceil(sms).max(1);
        Self {
            flops: k.map(|k| 2.0 * k.useful_fmas),
            workgroups,
            workgroups_per_sm: workgroups as f64 / sms as f64,
            tail_efficiency: workgroups as f64 / (waves * sms) as f64,
            fma_per_wgmem_word: k.and_then(|k| k.fma_per_wgmem_word),
            fma_per_barrier: k.and_then(|k| k.fma_per_barrier),
            wgmem_store_conflict: k.and_then(|k| k.wgmem_store_conflict),
            gather_sectors_per_warp_load: k.and_then(|k| k.gather_sectors_per_warp_load),
            wasted_fma_fraction: k
                .filter(|k| k.issued_fmas > 0.0)
                .map(|k| (1.0 - k.useful_fmas / k.issued_fmas).max(0.0)),
        }
    }
}

/// The worst bank conflict of one store instruction whose lane `l` writes the 4-byte words
/// `words(l)` (1 word for a scalar store, 4 consecutive for a vec4 one): lanes are served in
/// phases of 128 bytes (32 lanes of scalars, 8 of vec4s), and a phase takes as many cycles as
/// the most distinct words any bank holds.
pub(crate) fn store_ways(width: usize, word: impl Fn(usize) -> u64) -> u32 {
    let per_phase = WARP / width;
    let mut worst = 1;
    for phase in 0..width {
        let mut banks: Vec<Vec<u64>> = vec![Vec::new(); BANKS as usize];
        for lane in phase * per_phase..(phase + 1) * per_phase {
            for w in 0..width as u64 {
                let a = word(lane) + w;
                let b = &mut banks[(a % BANKS) as usize];
                if !b.contains(&a) {
                    b.push(a);
                }
            }
        }
        worst = worst.max(banks.iter().map(Vec::len).max().unwrap_or(1) as u32);
    }
    worst
}

/// 32-byte sectors one warp-wide load touches: lane `l` reads float `at(l)`, `None` where the
/// lane is masked. `None` where every lane is masked.
pub(crate) fn sectors(at: impl Fn(usize) -> Option<u64>) -> Option<usize> {
    let mut s: Vec<u64> = (0..WARP)
        .filter_map(&at)
        .map(|a| a / SECTOR_FLOATS)
        .collect();
    if s.is_empty() {
        return None;
    }
    s.sort_unstable();
    s.dedup();
    Some(s.len())
}

/// The mean of the sector counts of `loads`, skipping loads with every lane masked.
pub(crate) fn mean_sectors(loads: impl Iterator<Item = Option<usize>>) -> Option<f64> {
    let v: Vec<usize> = loads.flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<usize>() as f64 / v.len() as f64)
}

/// The input float that tap `k` of the GEMM formulation reads for output pixel `q` (group
/// `grp`), `None` in zero padding, past K or past the last pixel; for the other padding modes
/// the folded coordinate.
pub(crate) fn input_at(g: &Conv2dGeometry, grp: usize, q: usize, k: usize) -> Option<u64> {
    let (taps, plane) = (g.kh * g.kw, g.oh * g.ow);
    if k >= g.cpg() * taps || q >= g.n * plane {
        return None;
    }
    let (img, r) = (q / plane, q % plane);
    let (oy, ox) = (r / g.ow, r % g.ow);
    let (c, t) = (k / taps, k % taps);
    let (a, b) = (t / g.kw, t % g.kw);
    let iy = (oy * g.stride.h + a * g.dilation.h) as i64 - g.pad_top as i64;
    let ix = (ox * g.stride.w + b * g.dilation.w) as i64 - g.pad_left as i64;
    let fold = |i: i64, n: i64| -> Option<i64> {
        if (0..n).contains(&i) {
            return Some(i);
        }
        match g.padding_mode {
            PaddingMode::Zeros => None,
            PaddingMode::Reflect => Some(if i < 0 { -i } else { 2 * (n - 1) - i }),
            PaddingMode::Replicate => Some(i.clamp(0, n - 1)),
            PaddingMode::Circular => Some(i.rem_euclid(n)),
        }
    };
    let sy = fold(iy, g.h as i64)? as u64;
    let sx = fold(ix, g.w as i64)? as u64;
    let chan = (img * g.c + grp * g.cpg() + c) as u64;
    Some((chan * g.h as u64 + sy) * g.w as u64 + sx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_along_a_row_are_conflict_free_and_down_a_column_are_not() {
        assert_eq!(store_ways(1, |l| l as u64), 1);
        assert_eq!(store_ways(4, |l| 4 * l as u64), 1);
        // 16 lanes 64 words apart, twice: 16 distinct words in one bank
        assert_eq!(
            store_ways(1, |l| (l % 16) as u64 * 64 + (l / 16) as u64),
            16
        );
        assert_eq!(store_ways(1, |_| 7), 1);
    }

    #[test]
    fn sectors_count_distinct_32_byte_pieces() {
        assert_eq!(sectors(|l| Some(l as u64)), Some(4));
        assert_eq!(sectors(|l| Some(l as u64 + 4)), Some(5));
        assert_eq!(sectors(|l| Some(64 * l as u64)), Some(32));
        assert_eq!(sectors(|_| None), None);
        assert_eq!(
            mean_sectors([Some(4), None, Some(6)].into_iter()),
            Some(5.0)
        );
    }

    #[test]
    fn the_reference_fill_counts_whole_waves() {
        let m = PassModel::new(198, None);
        assert_eq!(m.workgroups_per_sm, 1.5);
        assert_eq!(m.tail_efficiency, 0.75);
        assert!(m.fma_per_wgmem_word.is_none() && m.wasted_fma_fraction.is_none());
    }
}
