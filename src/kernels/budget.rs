//! The loop budget. Mesa's gallivm (lavapipe, llvmpipe) leaves every loop of a shader
//! invocation once the invocation has run 65,535 loop iterations in total, counted across all
//! its loops (`LP_MAX_TGSI_LOOP_ITERATIONS`), and says nothing: a longer reduction is silently
//! cut short. Real GPUs have watchdogs instead. So no kernel of this crate runs more than
//! [`LOOP_BUDGET`] iterations in one invocation, on any adapter: each kernel module states its
//! kernel's worst case where it plans the dispatch, and cuts longer reductions into pieces
//! (dispatches that each add to the last, or slices whose partial sums are added in a fixed
//! order), so results stay deterministic.

use std::ops::Range;

use crate::error::{Error, Limit, Result};

/// Loop iterations one invocation may run, counted across all its loops: half of gallivm's cap,
/// leaving room for what a worst case might miss.
pub const LOOP_BUDGET: u64 = 32_768;

/// Worst-case loop iterations of one invocation that runs a loop nest whose levels run
/// `sizes` iterations each (level `i + 1` once per iteration of level `i`, none ending
/// early), plus `fixed` iterations of its other loops.
pub fn nest_iterations(sizes: &[usize], fixed: u64) -> u64 {
    let mut total = fixed;
    let mut product = 1u64;
    for &s in sizes {
        product = product.saturating_mul(s as u64);
        total = total.saturating_add(product);
    }
    total
}

/// Cuts a loop nest of `sizes` (outermost first) into boxes, one range per level, whose
/// [`nest_iterations`] with `fixed` stay within [`LOOP_BUDGET`]: the outermost level still
/// longer than one iteration is halved until they do (halving an outer level shortens every
/// level inside it). The boxes cover the nest exactly once, in lexicographic order.
pub fn split_nest(sizes: &[usize], fixed: u64) -> Vec<Vec<Range<usize>>> {
    assert!(
        nest_iterations(&vec![1; sizes.len()], fixed) <= LOOP_BUDGET,
        "a kernel's fixed loops alone exceed the loop budget"
    );
    let mut len: Vec<usize> = sizes.iter().map(|&s| s.max(1)).collect();
    while nest_iterations(&len, fixed) > LOOP_BUDGET {
        let d = len
            .iter()
            .position(|&l| l > 1)
            .expect("a nest of single iterations is within the budget");
        len[d] = len[d].div_ceil(2);
    }
    let mut boxes: Vec<Vec<Range<usize>>> = vec![Vec::new()];
    for (&size, &l) in sizes.iter().zip(&len) {
        let ranges: Vec<Range<usize>> = (0..size.max(1))
            .step_by(l)
            .map(|s| s..(s + l).min(size))
            .collect();
        boxes = boxes
            .into_iter()
            .flat_map(|prefix| {
                ranges.iter().map(move |r| {
                    let mut b = prefix.clone();
                    b.push(r.clone());
                    b
                })
            })
            .collect();
    }
    boxes
}

/// The worst case of [`nest_iterations`] over the boxes of [`split_nest`].
pub fn worst(boxes: &[Vec<Range<usize>>], fixed: u64) -> u64 {
    boxes
        .iter()
        .map(|b| nest_iterations(&b.iter().map(|r| r.len()).collect::<Vec<_>>(), fixed))
        .max()
        .unwrap_or(fixed)
}

/// Checks a kernel's planned worst case against the budget: an error (never a silently
/// shortened loop) where a plan could not keep within it.
pub(crate) fn check(kernel: &str, iterations: u64) -> Result<()> {
    if iterations > LOOP_BUDGET {
        return Err(Error::too_large(
            kernel,
            Limit::LoopIterations,
            iterations,
            LOOP_BUDGET,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(boxes: &[Vec<Range<usize>>]) -> usize {
        boxes
            .iter()
            .map(|b| b.iter().map(|r| r.len()).product::<usize>())
            .sum()
    }

    #[test]
    fn nest_iterations_counts_every_level() {
        assert_eq!(nest_iterations(&[2, 3, 4], 0), 2 + 6 + 24);
        assert_eq!(nest_iterations(&[], 40), 40);
        assert_eq!(nest_iterations(&[256, 16, 16], 0), 256 + 4096 + 65_536);
    }

    #[test]
    fn split_nest_keeps_within_the_budget_and_covers_everything_once() {
        for (sizes, fixed) in [
            (vec![256usize, 16, 16], 40u64),
            (vec![1, 299, 299], 20),
            (vec![1, 1, 70_000], 0),
            (vec![57, 57, 3, 3, 3], 0),
            (vec![601, 601, 1, 1, 1], 4),
            (vec![3, 3, 3], 0),
        ] {
            let boxes = split_nest(&sizes, fixed);
            assert_eq!(covered(&boxes), sizes.iter().product::<usize>());
            for b in &boxes {
                let lens: Vec<usize> = b.iter().map(|r| r.len()).collect();
                assert!(
                    nest_iterations(&lens, fixed) <= LOOP_BUDGET,
                    "{sizes:?}: {b:?}"
                );
                for (r, &s) in b.iter().zip(&sizes) {
                    assert!(r.end <= s && r.start < r.end);
                }
            }
            // lexicographic order, no overlap: each level's ranges are consecutive
            let mut seen = std::collections::HashSet::new();
            for b in &boxes {
                assert!(seen.insert(b.clone()));
            }
        }
        assert_eq!(split_nest(&[3, 3, 3], 0), vec![vec![0..3, 0..3, 0..3]]);
        assert_eq!(split_nest(&[256, 16, 16], 0).len(), 4);
        // exactly the budget is within it: one box
        assert_eq!(split_nest(&[LOOP_BUDGET as usize], 0).len(), 1);
        assert_eq!(split_nest(&[LOOP_BUDGET as usize + 1], 0).len(), 2);
    }

    #[test]
    fn check_refuses_what_is_over() {
        assert!(check("k", LOOP_BUDGET).is_ok());
        assert!(matches!(
            check("k", LOOP_BUDGET + 1),
            Err(Error::TooLarge { .. })
        ));
    }
}
