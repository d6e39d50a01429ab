//! Shared by the GPU test binaries: one context per binary, and the bound check.
#![allow(dead_code)]

use std::sync::OnceLock;

use wgpu_conv::cpu::{compare, Reference};
use wgpu_conv::GpuContext;

/// The context every GPU test in this binary shares, its scratch poisoned (NaN before every
/// plan: a kernel reading scratch its plan did not write fails the test, even where the
/// buffer pool would hand it zeros). No adapter is a failure with a message, never a silent
/// pass: to skip GPU tests build with `RUSTFLAGS="--cfg no_gpu"`, which marks them ignored.
pub fn ctx() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(|| match GpuContext::new() {
        Ok(c) => {
            eprintln!("GPU tests run on {}", c.describe());
            c.set_scratch_poison(true);
            c
        }
        Err(e) => panic!(
            "GPU tests could not create a GPU context: {e}\n\
             (to skip GPU tests explicitly, build with RUSTFLAGS=\"--cfg no_gpu\"; they then show as ignored)"
        ),
    })
}

/// Asserts `got` is within the reference's bound everywhere.
#[track_caller]
pub fn assert_within(got: &[f32], reference: &Reference, what: &str) {
    let c = compare(got, reference);
    assert!(c.ok(), "{what}: {c}");
}

/// Small non-zero integers in {-2, -1, 1, 2}: no operand (a 1x1 weight, say) can be all zero
/// and make a test vacuous, and any order of f32 additions of their products is exact (while
/// the sums stay below 2^24).
pub fn ints(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| [-2.0, -1.0, 1.0, 2.0][(rng.next_u64() % 4) as usize])
        .collect()
}

/// Asserts `got` equals the reference exactly, element by element, where the reference is not
/// all zeros (which would prove nothing) and exact in f32.
#[track_caller]
pub fn assert_exact(got: &[f32], reference: &Reference, what: &str) {
    assert_eq!(got.len(), reference.values.len(), "{what}: length");
    assert!(
        reference.values.iter().any(|&v| v != 0.0),
        "{what}: the exact result is all zeros; this test would prove nothing"
    );
    for (i, (&g, &r)) in got.iter().zip(&reference.values).enumerate() {
        assert!(
            r.abs() < f64::from(1u32 << 24),
            "{what}: reference {r} is not exact in f32"
        );
        assert_eq!(
            f64::from(g),
            r,
            "{what}: element {i} of {} is {g}, exactly {r}",
            got.len()
        );
    }
}

/// Largest kernel the planes kernels take, and the channel count from which they load weights
/// per lane: the boundaries the planes tests are built around (`tests/plans.rs` checks that the
/// planner draws them here).
pub const PLANES_MAX_KERNEL: (usize, usize) = (7, 8);
pub const PLANES_PER_LANE_FROM: usize = 16;

/// Deterministic test data: proptest's seeded ChaCha generator, drawing uniformly from [-1, 1).
pub struct Rng(proptest::test_runner::TestRng);

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        Self(proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &bytes,
        ))
    }
    pub fn next_u64(&mut self) -> u64 {
        proptest::prelude::Rng::next_u64(&mut self.0)
    }
    /// Uniform in [-1, 1), on a grid of 2^-23 (24 random bits).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.uniform()).collect()
    }
}

use wgpu_conv::{Conv2dOptions, ConvMode, Padding, PaddingMode};

/// One awkward case: input `[N, C, H, W]`, weight `[OC, C/groups, KH, KW]`, options, bias.
pub struct Case {
    pub name: &'static str,
    pub x: [usize; 4],
    pub w: [usize; 4],
    pub opts: Conv2dOptions,
    pub bias: bool,
}

/// The table the forward and gradient tests run over: every option, odd sizes, edge cases.
pub fn cases() -> Vec<Case> {
    let o = Conv2dOptions::new;
    let c = |name, x, w, opts, bias| Case {
        name,
        x,
        w,
        opts,
        bias,
    };
    vec![
        c("chapter_figure", [1, 1, 3, 3], [1, 1, 2, 2], o(), false),
        c(
            "batch3_odd_channels_bias",
            [3, 5, 7, 6],
            [4, 5, 3, 2],
            o(),
            true,
        ),
        c(
            "stride2_pad1",
            [2, 3, 11, 9],
            [5, 3, 3, 3],
            o().stride(2).padding(1),
            true,
        ),
        c(
            "stride_hw_dilation_hw_pad_hw",
            [1, 2, 13, 17],
            [3, 2, 3, 2],
            o().stride((2, 3)).dilation((2, 1)).padding((1, 2)),
            false,
        ),
        c(
            // stride 2, output rows padded to 4 = the input's width, 64 taps (a whole chunk, so
            // no zero region): the input is still not its own GEMM copy
            "pointwise_stride_w2",
            [1, 64, 3, 4],
            [3, 64, 1, 1],
            o().stride((1, 2)),
            false,
        ),
        c(
            "groups3",
            [2, 6, 8, 7],
            [9, 2, 3, 3],
            o().groups(3).padding(1),
            true,
        ),
        c(
            "depthwise",
            [2, 4, 9, 9],
            [4, 1, 3, 3],
            o().groups(4).padding(1),
            true,
        ),
        c(
            // rows of whole vec4s and zero padding: the planes kernels read vec4s of the input
            // itself (a 5-wide kernel against 2 columns of left padding)
            "depthwise_rows_of_vec4",
            [2, 5, 7, 12],
            [5, 1, 3, 5],
            o().groups(5).padding((1, 2)),
            true,
        ),
        c(
            "depthwise_multiplier2",
            [1, 3, 6, 5],
            [6, 1, 2, 3],
            o().groups(3),
            false,
        ),
        c(
            "pad_four_sides",
            [1, 2, 7, 5],
            [2, 2, 3, 3],
            o().padding([2, 0, 1, 3]),
            false,
        ),
        c(
            "same_even_kernel",
            [1, 2, 7, 6],
            [3, 2, 4, 2],
            o().padding(Padding::Same),
            true,
        ),
        c(
            "same_dilated",
            [1, 1, 9, 8],
            [2, 1, 3, 3],
            o().padding(Padding::Same).dilation(2),
            false,
        ),
        c(
            "reflect_stride2",
            [2, 2, 6, 7],
            [3, 2, 3, 3],
            o().padding((2, 3))
                .padding_mode(PaddingMode::Reflect)
                .stride(2),
            true,
        ),
        c(
            "replicate_wide_pad",
            [1, 3, 5, 4],
            [2, 3, 3, 3],
            o().padding([3, 1, 0, 2])
                .padding_mode(PaddingMode::Replicate),
            false,
        ),
        c(
            "circular",
            [2, 1, 5, 6],
            [2, 1, 3, 4],
            o().padding((2, 3)).padding_mode(PaddingMode::Circular),
            true,
        ),
        c(
            // an image filter bank: one channel in, three out (each reads the one input)
            "one_to_three_reflect",
            [2, 1, 9, 13],
            [3, 1, 3, 3],
            o().padding(1).padding_mode(PaddingMode::Reflect),
            true,
        ),
        c(
            // a Sobel-like pair on rows of whole vec4s, zero padding: the input read in place
            "one_to_two_zero_pad",
            [1, 1, 8, 16],
            [2, 1, 3, 3],
            o().padding(1),
            false,
        ),
        c(
            "circular_pad_equals_size",
            [1, 1, 3, 4],
            [1, 1, 2, 2],
            o().padding((3, 4)).padding_mode(PaddingMode::Circular),
            false,
        ),
        c(
            "convolution_stride2_pad1",
            [2, 3, 8, 9],
            [4, 3, 3, 2],
            o().mode(ConvMode::Convolution).padding(1).stride(2),
            true,
        ),
        c(
            "convolution_reflect_dilated",
            [1, 2, 9, 9],
            [2, 2, 3, 3],
            o().mode(ConvMode::Convolution)
                .padding(2)
                .dilation(2)
                .padding_mode(PaddingMode::Reflect),
            false,
        ),
        c(
            "convolution_groups_replicate",
            [1, 4, 6, 5],
            [2, 2, 2, 3],
            o().mode(ConvMode::Convolution)
                .groups(2)
                .padding(1)
                .padding_mode(PaddingMode::Replicate),
            true,
        ),
        c(
            // single planes (the planes kernels) under strict convolution
            "convolution_depthwise_circular",
            [2, 3, 7, 10],
            [3, 1, 3, 2],
            o().mode(ConvMode::Convolution)
                .groups(3)
                .padding(1)
                .padding_mode(PaddingMode::Circular),
            true,
        ),
        c("kernel_equals_input", [2, 3, 5, 7], [4, 3, 5, 7], o(), true),
        c("one_wide", [1, 2, 9, 1], [3, 2, 3, 1], o(), false),
        c("one_tall", [1, 1, 1, 13], [1, 1, 1, 2], o(), false),
        c("one_by_one", [2, 16, 5, 5], [8, 16, 1, 1], o(), true),
        c(
            "primes_stride3_dilation2",
            [1, 3, 31, 29],
            [7, 3, 5, 5],
            o().stride(3).padding(2).dilation(2),
            true,
        ),
        c(
            // the dilated kernel reaches 8 columns past an output column at stride 1: the
            // padded copies' rows must be that much longer (GEMM forward and weight gradient)
            "dilated_gemm_reach",
            [1, 2, 40, 12],
            [4, 2, 3, 5],
            o().dilation((1, 2)),
            true,
        ),
        c(
            "stride_larger_than_kernel",
            [1, 2, 10, 11],
            [2, 2, 2, 2],
            o().stride((4, 5)),
            false,
        ),
    ]
}

/// Random data for a case: (input, weight, bias).
pub fn case_data(case: &Case, seed: u64) -> (Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
    let mut rng = Rng::new(seed);
    let x = rng.vec(case.x.iter().product());
    let w = rng.vec(case.w.iter().product());
    let b = case.bias.then(|| rng.vec(case.w[0]));
    (x, w, b)
}
