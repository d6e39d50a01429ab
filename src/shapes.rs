//! The named benchmark shapes (the `bench` command's `--shapes`, and the criterion benches).

use crate::options::{Conv2dOptions, Padding};

/// A benchmark shape: input `[N, C, H, W]`, weight `[OC, C/groups, KH, KW]`, options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchShape {
    /// Name, as `--shapes` takes it.
    pub name: &'static str,
    /// Input shape.
    pub input: [usize; 4],
    /// Weight shape.
    pub weight: [usize; 4],
    /// Options.
    pub options: Conv2dOptions,
}

/// Every named shape: ResNet-like layers (a downsampling one among them), a depthwise layer, two single-channel images and the
/// chapter's figure.
pub fn bench_shapes() -> Vec<BenchShape> {
    let o = Conv2dOptions::new;
    let s = |name, input, weight, options| BenchShape {
        name,
        input,
        weight,
        options,
    };
    vec![
        s(
            "resnet_3x3",
            [8, 64, 56, 56],
            [64, 64, 3, 3],
            o().padding(1),
        ),
        s("resnet_1x1", [8, 256, 28, 28], [128, 256, 1, 1], o()),
        s(
            "resnet_down",
            [8, 128, 28, 28],
            [256, 128, 3, 3],
            o().stride(2).padding(1),
        ),
        s(
            "stem_7x7",
            [8, 3, 224, 224],
            [64, 3, 7, 7],
            o().stride(2).padding(3),
        ),
        s(
            "depthwise",
            [8, 128, 56, 56],
            [128, 1, 3, 3],
            o().groups(128).padding(1),
        ),
        s(
            "blur_img",
            [1, 1, 2048, 2048],
            [1, 1, 5, 5],
            o().padding(Padding::Valid),
        ),
        s("edge_img", [1, 1, 1024, 1024], [1, 1, 1, 2], o()),
        s("d2l_fig", [1, 1, 3, 3], [1, 1, 2, 2], o()),
    ]
}
