//! CPU-only: option parsing, output-size arithmetic, every invalid combination as a typed
//! error, padding-mode sources, and the CPU reference on the chapter's exact values.

use wgpu_conv::cpu;
use wgpu_conv::{
    geometry, output_size, Conv2dOptions, ConvMode, Error, Hw, Limit, Padding, PaddingMode,
};

#[test]
fn output_size_is_pytorchs_formula() {
    assert_eq!(output_size(3, 2, 1, 0, 1), 2); // the chapter: n - k + 1
    assert_eq!(output_size(224, 7, 2, 6, 1), 112); // ResNet stem
    assert_eq!(output_size(10, 3, 3, 2, 2), 3); // floor((10+2-4-1)/3)+1
    assert_eq!(output_size(5, 5, 1, 0, 1), 1); // kernel = input
}

#[test]
fn parsing() {
    assert_eq!("2".parse::<Hw>().unwrap(), Hw::new(2, 2));
    assert_eq!("1,2".parse::<Hw>().unwrap(), Hw::new(1, 2));
    assert!("1,2,3".parse::<Hw>().is_err());
    assert!("-1".parse::<Hw>().is_err());
    assert!("x".parse::<Hw>().is_err());
    assert_eq!("1".parse::<Padding>().unwrap(), Padding::from(1));
    assert_eq!(
        "1,2".parse::<Padding>().unwrap(),
        Padding::Explicit {
            top: 1,
            left: 2,
            bottom: 1,
            right: 2
        }
    );
    assert_eq!(
        "1,2,3,4".parse::<Padding>().unwrap(),
        Padding::Explicit {
            top: 1,
            left: 2,
            bottom: 3,
            right: 4
        }
    );
    assert_eq!("same".parse::<Padding>().unwrap(), Padding::Same);
    assert_eq!("VALID".parse::<Padding>().unwrap(), Padding::Valid);
    assert!("1,2,3".parse::<Padding>().is_err());
    assert!("-1".parse::<Padding>().is_err());
    assert_eq!(
        "reflect".parse::<PaddingMode>().unwrap(),
        PaddingMode::Reflect
    );
    assert!("mirror".parse::<PaddingMode>().is_err());
    assert_eq!(
        "convolution".parse::<ConvMode>().unwrap(),
        ConvMode::Convolution
    );
    assert!("conv".parse::<ConvMode>().is_err());
}

#[test]
fn same_padding_puts_the_odd_one_bottom_right() {
    let g = Conv2dOptions::new()
        .padding(Padding::Same)
        .resolve([1, 1, 7, 7], [1, 1, 4, 2])
        .unwrap();
    assert_eq!(
        (g.pad_top, g.pad_bottom, g.pad_left, g.pad_right),
        (1, 2, 0, 1)
    );
    assert_eq!((g.oh, g.ow), (7, 7));
    let g = Conv2dOptions::new()
        .padding(Padding::Same)
        .dilation(2)
        .resolve([1, 1, 9, 9], [1, 1, 3, 4])
        .unwrap();
    assert_eq!(
        (g.pad_top, g.pad_bottom, g.pad_left, g.pad_right),
        (2, 2, 3, 3)
    );
    assert_eq!((g.oh, g.ow), (9, 9));
}

fn err(opts: Conv2dOptions, x: [usize; 4], w: [usize; 4]) -> Error {
    opts.resolve(x, w).expect_err("should be rejected")
}

#[test]
fn invalid_combinations_are_typed_errors() {
    let o = Conv2dOptions::new;
    assert!(matches!(
        err(o().stride(0), [1, 1, 4, 4], [1, 1, 2, 2]),
        Error::InvalidOption(_)
    ));
    assert!(matches!(
        err(o().stride((1, 0)), [1, 1, 4, 4], [1, 1, 2, 2]),
        Error::InvalidOption(_)
    ));
    assert!(matches!(
        err(o().dilation(0), [1, 1, 4, 4], [1, 1, 2, 2]),
        Error::InvalidOption(_)
    ));
    assert!(matches!(
        err(o().groups(0), [1, 1, 4, 4], [1, 1, 2, 2]),
        Error::InvalidOption(_)
    ));
    assert!(matches!(
        err(o().groups(2), [1, 3, 4, 4], [2, 1, 2, 2]),
        Error::InvalidOption(_)
    ));
    assert!(matches!(
        err(o().groups(2), [1, 4, 4, 4], [3, 2, 2, 2]),
        Error::InvalidOption(_)
    ));
    assert!(matches!(
        err(o(), [1, 3, 4, 4], [1, 2, 2, 2]),
        Error::InvalidShape(_)
    ));
    assert!(matches!(
        err(o(), [1, 1, 2, 2], [1, 1, 3, 3]),
        Error::InvalidShape(_)
    ));
    assert!(matches!(
        err(o().dilation(4), [1, 1, 4, 4], [1, 1, 2, 2]),
        Error::InvalidShape(_)
    ));
    assert!(matches!(
        err(
            o().padding(Padding::Same).stride(2),
            [1, 1, 4, 4],
            [1, 1, 3, 3]
        ),
        Error::InvalidOption(_)
    ));
    assert!(matches!(
        err(
            o().padding(4).padding_mode(PaddingMode::Reflect),
            [1, 1, 4, 9],
            [1, 1, 2, 2]
        ),
        Error::InvalidOption(_)
    ));
    assert!(matches!(
        err(
            o().padding(5).padding_mode(PaddingMode::Circular),
            [1, 1, 4, 9],
            [1, 1, 2, 2]
        ),
        Error::InvalidOption(_)
    ));
    assert!(matches!(
        err(o(), [0, 1, 4, 4], [1, 1, 2, 2]),
        Error::InvalidShape(_)
    ));
    assert!(matches!(
        err(o(), [1, 1, 4, 4], [1, 1, 0, 2]),
        Error::InvalidShape(_)
    ));
    assert!(matches!(
        err(o().padding(usize::MAX / 2), [1, 1, 4, 4], [1, 1, 2, 2]),
        Error::InvalidOption(_)
    ));
    assert!(matches!(
        err(o(), [70000, 1, 70000, 1], [1, 1, 1, 1]),
        Error::TooLarge {
            limit: Limit::Index,
            needed: 4_900_000_000,
            ..
        }
    ));
    // reflect padding just under the size, and circular padding equal to it, are allowed
    assert!(o()
        .padding(3)
        .padding_mode(PaddingMode::Reflect)
        .resolve([1, 1, 4, 4], [1, 1, 2, 2])
        .is_ok());
    assert!(o()
        .padding(4)
        .padding_mode(PaddingMode::Circular)
        .resolve([1, 1, 4, 4], [1, 1, 2, 2])
        .is_ok());
    // operand shapes
    assert!(matches!(
        geometry(&[4], &[2, 2], None, &o()),
        Err(Error::InvalidShape(_))
    ));
    assert!(matches!(
        geometry(&[4, 4], &[2, 2, 2], None, &o()),
        Err(Error::InvalidShape(_))
    ));
    assert!(matches!(
        geometry(&[4, 4], &[2, 2], Some(3), &o()),
        Err(Error::InvalidShape(_))
    ));
    // messages are one line and say what is wrong
    let msg = err(o().groups(2), [1, 3, 4, 4], [2, 1, 2, 2]).to_string();
    assert!(msg.contains("groups=2") && !msg.contains('\n'), "{msg}");
}

#[test]
fn padding_sources_match_pytorch() {
    // n = 4: a b c d
    let src = |m: PaddingMode| {
        (-3..7)
            .map(|i| m.source(i, 4).map(|s| s as isize).unwrap_or(-1))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        src(PaddingMode::Zeros),
        [-1, -1, -1, 0, 1, 2, 3, -1, -1, -1]
    );
    assert_eq!(src(PaddingMode::Reflect), [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
    assert_eq!(src(PaddingMode::Replicate), [0, 0, 0, 0, 1, 2, 3, 3, 3, 3]);
    assert_eq!(src(PaddingMode::Circular), [1, 2, 3, 0, 1, 2, 3, 0, 1, 2]);
}

#[test]
fn cpu_reference_gives_the_chapters_values() {
    let g = Conv2dOptions::new()
        .resolve([1, 1, 3, 3], [1, 1, 2, 2])
        .unwrap();
    let x: Vec<f32> = (0..9).map(|v| v as f32).collect();
    let k = [0.0, 1.0, 2.0, 3.0];
    let r = cpu::conv2d_forward(&g, &x, &k, None);
    assert_eq!(r.values, [19.0, 25.0, 37.0, 43.0]);
    assert_eq!(r.terms, 4);
    // strict convolution flips the kernel
    let g = Conv2dOptions::new()
        .mode(ConvMode::Convolution)
        .resolve([1, 1, 3, 3], [1, 1, 2, 2])
        .unwrap();
    let flipped = [3.0, 2.0, 1.0, 0.0];
    assert_eq!(
        cpu::conv2d_forward(&g, &x, &flipped, None).values,
        [19.0, 25.0, 37.0, 43.0]
    );
}

#[test]
fn compare_flags_errors_beyond_the_bound() {
    let g = Conv2dOptions::new()
        .resolve([1, 1, 3, 3], [1, 1, 2, 2])
        .unwrap();
    let x: Vec<f32> = (0..9).map(|v| v as f32).collect();
    let r = cpu::conv2d_forward(&g, &x, &[0.0, 1.0, 2.0, 3.0], None);
    assert!(cpu::compare(&[19.0, 25.0, 37.0, 43.0], &r).ok());
    let c = cpu::compare(&[19.0, 25.0, 37.001, 43.0], &r);
    assert!(!c.ok());
    assert_eq!(c.worst_index, 2);
    assert!(!cpu::compare(&[19.0, f32::NAN, 37.0, 43.0], &r).ok());
    assert!(!cpu::compare(&[19.0, 25.0, 37.0], &r).ok());
}

/// A rank-2 input gives a rank-2 output, which holds one channel: a weight with more output
/// channels is refused by name (it once reached the output's allocation and failed there with
/// an element count).
#[test]
fn a_rank_two_input_takes_a_one_channel_weight() {
    let opts = Conv2dOptions::new();
    for w in [&[2usize, 1, 3, 3][..], &[4, 1, 1, 1]] {
        let e = wgpu_conv::geometry(&[5, 5], w, None, &opts).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidShape(m) if m.contains("rank-2 input")),
            "{w:?}: {e}"
        );
    }
    for w in [&[3usize, 3][..], &[1, 1, 3, 3]] {
        let g = wgpu_conv::geometry(&[5, 5], w, None, &opts).unwrap();
        assert_eq!((g.oc, g.oh, g.ow), (1, 3, 3));
    }
    assert!(wgpu_conv::geometry(&[1, 5, 5], &[2, 1, 3, 3], None, &opts).is_ok());
}
