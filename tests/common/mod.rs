//! Shared by the GPU test binaries: one context per binary, and the bound check.
#![allow(dead_code)]

use std::sync::OnceLock;

use wgpu_conv::cpu::{compare, Reference};
use wgpu_conv::GpuContext;

/// The context every GPU test in this binary shares. No adapter is a failure with a message,
/// never a silent pass: to skip GPU tests build with `RUSTFLAGS="--cfg no_gpu"`, which marks
/// them ignored.
pub fn ctx() -> &'static GpuContext {
    static CTX: OnceLock<GpuContext> = OnceLock::new();
    CTX.get_or_init(|| match GpuContext::new() {
        Ok(c) => {
            eprintln!("GPU tests run on {}", c.describe());
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

/// A small deterministic generator for test data (SplitMix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.uniform()).collect()
    }
}
