//! The chapter's exercises as library calls: hand-made kernels on polynomials, cross-correlation
//! as a matrix multiplication, receptive fields against backpropagation, and the `edges` command
//! on a generated image.

mod common;

use common::{ctx, Rng};
use proptest::prelude::*;
use wgpu_conv::{
    cpu, filters, receptive_field, Conv2d, Conv2dOptions, ConvMode, Sequential, Tensor,
};

/// Samples `sum_k c_k x^k` at `x = x0 + i*h`, `i < n`, as a 1 x n row (in f64, then f32).
fn poly_row(coeffs: &[f64], x0: f64, h: f64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let x = x0 + i as f64 * h;
            coeffs.iter().rev().fold(0.0, |acc, c| acc * x + c) as f32
        })
        .collect()
}

/// The d-th difference of a degree-d polynomial on a grid of step h is d! a_d h^d; of a
/// polynomial of degree d-1 it is 0. Checked on the CPU reference exactly (small integers and
/// powers of two keep every value exact) and on the GPU.
#[test]
fn finite_differences_of_polynomials() {
    for d in 0..=5usize {
        let k = filters::finite_difference(d);
        assert_eq!(k.shape(), [1, d + 1], "smallest kernel for order {d}");
        let fact: f64 = (1..=d).map(|v| v as f64).product();
        for (a, h) in [(1.0, 1.0), (3.0, 0.5), (-2.0, 2.0)] {
            let mut coeffs = vec![1.0, -2.0, 0.5, 1.0, -1.0, 0.25][..d].to_vec();
            coeffs.push(a);
            let xs = poly_row(&coeffs, -3.0, h, 16);
            let g = Conv2dOptions::new()
                .resolve([1, 1, 1, 16], [1, 1, 1, d + 1])
                .unwrap();
            let r = cpu::conv2d_forward(&g, &xs, k.data(), None);
            let expect = fact * a * h.powi(d as i32);
            // The samples are rounded to f32 (half an ulp each); the kernel's taps sum to 2^d in
            // magnitude, so the difference of the rounded samples is off by at most
            // 2^d * max|sample| * 2^-24 from the exact value.
            let bound = |row: &[f32]| {
                (1u64 << d) as f64
                    * row.iter().map(|v| v.abs() as f64).fold(0.0, f64::max)
                    * 2f64.powi(-24)
                    * 1.01
            };
            for v in &r.values {
                assert!(
                    (v - expect).abs() <= bound(&xs),
                    "d={d} a={a} h={h}: {v} vs {expect}"
                );
            }
            if d > 0 {
                let lower = poly_row(&coeffs[..d], -3.0, h, 16);
                let r = cpu::conv2d_forward(&g, &lower, k.data(), None);
                for v in &r.values {
                    assert!(v.abs() <= bound(&lower), "d={d}: lower degree gives {v}");
                }
            }
        }
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn finite_differences_on_the_gpu() {
    for d in 1..=4usize {
        let xs: Vec<f32> = (0..12).map(|i| (i as f32).powi(d as i32)).collect();
        let y = ctx()
            .corr2d(
                &Tensor::new(vec![1, 12], xs).unwrap(),
                &filters::finite_difference(d),
            )
            .unwrap();
        let fact: f32 = (1..=d).map(|v| v as f32).product();
        assert!(y.data().iter().all(|&v| v == fact), "d={d}: {:?}", y.data());
    }
    let sq: Vec<f32> = (0..8).map(|i| 3.0 * (i * i) as f32).collect();
    let y = ctx()
        .corr2d(
            &Tensor::new(vec![1, 8], sq).unwrap(),
            &filters::second_derivative(),
        )
        .unwrap();
    assert!(y.data().iter().all(|&v| v == 6.0));
    // Laplacian of x^2 + y^2 is 4; integral of a constant c over n samples is n*c
    let img = Tensor::from_fn([6, 7], |i| (i[0] * i[0] + i[1] * i[1]) as f32).unwrap();
    assert!(ctx()
        .corr2d(&img, &filters::laplacian())
        .unwrap()
        .data()
        .iter()
        .all(|&v| v == 4.0));
    let y = ctx()
        .corr2d(
            &Tensor::from_fn([2, 9], |_| 1.5).unwrap(),
            &filters::integral(5).unwrap(),
        )
        .unwrap();
    assert!(y.data().iter().all(|&v| v == 7.5));
}

#[test]
fn image_kernels() {
    assert_eq!(
        filters::sobel_y().data(),
        [-1.0, -2.0, -1.0, 0.0, 0.0, 0.0, 1.0, 2.0, 1.0]
    );
    let g = filters::gaussian(5, 1.0).unwrap();
    assert!((g.data().iter().sum::<f32>() - 1.0).abs() < 1e-6);
    assert_eq!(g.at(&[0, 1]), g.at(&[1, 0]));
    assert!(
        filters::gaussian(4, 1.0).is_err()
            && filters::gaussian(5, 0.0).is_err()
            && filters::integral(0).is_err()
    );
    assert!((filters::box_blur(3).unwrap().data().iter().sum::<f32>() - 1.0).abs() < 1e-6);
    for name in filters::NAMES {
        assert!(filters::by_name(name).is_ok(), "{name}");
    }
    assert!(filters::by_name("nope").is_err());
    let k = Tensor::from_fn([2, 3, 2, 3], |i| {
        (i[0] * 100 + i[1] * 10 + i[2] * 3 + i[3]) as f32
    })
    .unwrap();
    let f = filters::flip(&k);
    assert_eq!(f.at(&[1, 2, 0, 0]), k.at(&[1, 2, 1, 2]));
    assert_eq!(filters::flip(&f), k);
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn strict_convolution_is_correlation_with_the_flipped_kernel() {
    let mut rng = Rng::new(1);
    let x = Tensor::new(vec![2, 3, 7, 6], rng.vec(2 * 3 * 42)).unwrap();
    let w = Tensor::new(vec![4, 3, 3, 2], rng.vec(4 * 18)).unwrap();
    let o = Conv2dOptions::new().padding(1);
    let a = ctx()
        .conv2d(&x, &w, None, &o.mode(ConvMode::Convolution))
        .unwrap();
    let b = ctx().conv2d(&x, &filters::flip(&w), None, &o).unwrap();
    assert_eq!(a.data(), b.data());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// vec(corr2d(x, k)) = M vec(x), M from `corr2d_matrix`, on random shapes (CPU side: the
    /// product in f64 against the CPU reference; exact for small integers).
    #[test]
    fn corr2d_is_a_matrix_product(h in 1usize..8, w in 1usize..8, kh in 1usize..4, kw in 1usize..4, seed in any::<u64>()) {
        prop_assume!(kh <= h && kw <= w);
        let mut rng = Rng::new(seed);
        let x: Vec<f32> = (0..h * w).map(|_| (rng.next_u64() % 9) as f32 - 4.0).collect();
        let k = Tensor::new(vec![kh, kw], (0..kh * kw).map(|_| (rng.next_u64() % 5) as f32 - 2.0).collect()).unwrap();
        let m = filters::corr2d_matrix(&k, h, w).unwrap();
        let (rows, cols) = (m.shape()[0], m.shape()[1]);
        let mx: Vec<f64> = (0..rows).map(|r| (0..cols).map(|c| m.data()[r * cols + c] as f64 * x[c] as f64).sum()).collect();
        let g = Conv2dOptions::new().resolve([1, 1, h, w], [1, 1, kh, kw]).unwrap();
        prop_assert_eq!(mx, cpu::conv2d_forward(&g, &x, k.data(), None).values);
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn corr2d_matrix_on_the_gpu() {
    let mut rng = Rng::new(8);
    for (h, w, kh, kw) in [(3, 3, 2, 2), (5, 7, 3, 2), (4, 1, 2, 1), (6, 6, 6, 6)] {
        let x = Tensor::new(
            vec![h, w],
            (0..h * w)
                .map(|_| (rng.next_u64() % 9) as f32 - 4.0)
                .collect(),
        )
        .unwrap();
        let k = Tensor::new(
            vec![kh, kw],
            (0..kh * kw)
                .map(|_| (rng.next_u64() % 5) as f32 - 2.0)
                .collect(),
        )
        .unwrap();
        let m = filters::corr2d_matrix(&k, h, w).unwrap();
        let (rows, cols) = (m.shape()[0], m.shape()[1]);
        let mv = ctx()
            .conv2d(
                &x.clone().reshape(vec![1, cols, 1, 1]).unwrap(),
                &m.reshape(vec![rows, cols, 1, 1]).unwrap(),
                None,
                &Conv2dOptions::new(),
            )
            .unwrap();
        assert_eq!(
            mv.data(),
            ctx().corr2d(&x, &k).unwrap().data(),
            "{h}x{w} {kh}x{kw}"
        );
    }
}

/// The receptive field from the recurrence equals the set of inputs that backpropagation from
/// one output element reaches (all-positive weights, so nothing cancels), for random stacks.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn receptive_fields_match_backpropagation() {
    let mut rng = Rng::new(21);
    let (mut checked, mut exact) = (0, 0);
    while checked < 16 {
        let depth = 1 + (rng.next_u64() % 3) as usize;
        let mut stack = Vec::new();
        for _ in 0..depth {
            let k = (
                1 + (rng.next_u64() % 3) as usize,
                1 + (rng.next_u64() % 3) as usize,
            );
            let o = Conv2dOptions::new()
                .stride((
                    1 + (rng.next_u64() % 2) as usize,
                    1 + (rng.next_u64() % 2) as usize,
                ))
                .dilation((1 + (rng.next_u64() % 2) as usize, 1))
                .padding((rng.next_u64() % 2) as usize);
            stack.push((k, o));
        }
        let n = 21;
        let layers: Vec<Conv2d> = stack
            .iter()
            .map(|((kh, kw), o)| {
                Conv2d::from_weight(
                    Tensor::from_fn([1, 1, *kh, *kw], |_| 1.0).unwrap(),
                    None,
                    *o,
                )
                .unwrap()
            })
            .collect();
        let seq = Sequential::new(layers);
        let x = Tensor::from_fn([1, 1, n, n], |_| 1.0).unwrap();
        let Ok(out) = seq.forward(ctx(), &x) else {
            continue;
        };
        let (oh, ow) = (out.shape()[2], out.shape()[3]);
        let (i, j) = (oh / 2, ow / 2);
        let g = Tensor::from_fn(out.shape().to_vec(), |ix| {
            if ix[2] == i && ix[3] == j {
                1.0
            } else {
                0.0
            }
        })
        .unwrap();
        let back = seq.backward(ctx(), &x, &g).unwrap();
        let (fh, fw) = receptive_field(&stack).unwrap();
        // Every input reached lies in the field; where the field lies wholly inside the input, the
        // reached inputs span it exactly (strides and dilation can leave holes inside, so it is
        // their bounding box).
        let reached: Vec<(usize, usize)> = (0..n * n)
            .filter(|p| back.input.data()[*p] != 0.0)
            .map(|p| (p / n, p % n))
            .collect();
        let (rr, rc) = (fh.range(i, n), fw.range(j, n));
        assert!(
            reached
                .iter()
                .all(|(a, b)| rr.contains(a) && rc.contains(b)),
            "{stack:?} ({i},{j}): {reached:?} outside {rr:?} x {rc:?}"
        );
        let span = |v: Vec<usize>| {
            v.iter()
                .min()
                .copied()
                .zip(v.iter().max().map(|m| m + 1))
                .map(|(lo, hi)| lo..hi)
        };
        let inside = |f: &wgpu_conv::Field, i: usize| {
            f.start + (i * f.jump) as isize >= 0
                && f.start + (i * f.jump + f.size) as isize <= n as isize
        };
        if inside(&fh, i) {
            assert_eq!(
                span(reached.iter().map(|p| p.0).collect()),
                Some(rr.clone()),
                "{stack:?} ({i},{j}) rows"
            );
            exact += 1;
        }
        if inside(&fw, j) {
            assert_eq!(
                span(reached.iter().map(|p| p.1).collect()),
                Some(rc.clone()),
                "{stack:?} ({i},{j}) cols"
            );
            exact += 1;
        }
        checked += 1;
    }
    assert!(
        exact >= 16,
        "only {exact} axes had a field inside the input"
    );
}

/// The exercise's diagonal edge: with `K` the edge shows on the diagonal; transposing the image
/// moves it below the diagonal with the opposite sign; transposing the kernel instead gives the
/// transpose of that (vertical differences).
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn diagonal_edges_with_transposed_image_or_kernel() {
    let n = 7;
    let x = filters::diagonal_image(n).unwrap();
    let y = ctx().corr2d(&x, &filters::edge()).unwrap();
    let y_xt = ctx()
        .corr2d(&x.transpose2().unwrap(), &filters::edge())
        .unwrap();
    let y_kt = ctx().corr2d(&x, &filters::edge_t()).unwrap();
    for i in 0..n {
        for j in 0..n - 1 {
            assert_eq!(
                y.at(&[i, j]),
                if j == i { 1.0 } else { 0.0 },
                "K at ({i},{j})"
            );
            assert_eq!(
                y_xt.at(&[i, j]),
                if j + 1 == i { -1.0 } else { 0.0 },
                "X.T at ({i},{j})"
            );
            assert_eq!(y_kt.at(&[j, i]), y_xt.at(&[i, j]), "K.T at ({j},{i})");
        }
    }
}

/// Images in and out of tensors (feature `image`): gray and colour planes with alpha composited
/// over white, and `filters::apply` on each colour plane against the CPU reference.
#[cfg(feature = "image")]
mod images {
    use super::common::{assert_within, ctx};
    use wgpu_conv::images::image::{self, DynamicImage};
    use wgpu_conv::images::{self as im, Color, Map};
    use wgpu_conv::{cpu, filters, Conv2dOptions, Padding, PaddingMode, Tensor};

    /// A 7x5 RGBA image: every pixel's colour and opacity differ.
    fn rgba() -> image::RgbaImage {
        image::RgbaImage::from_fn(7, 5, |x, y| {
            image::Rgba([
                (x * 36) as u8,
                (y * 60) as u8,
                (x * y * 9) as u8,
                255 - (x + y) as u8 * 20,
            ])
        })
    }

    /// The browser's path (RGBA bytes of a canvas, `pixels`) gives the levels the file path
    /// (`from_luma`, `to_image`) gives: the same formulas, bit for bit.
    #[test]
    fn canvas_pixels_and_image_files_give_the_same_levels() {
        let img = rgba();
        let (w, h) = (img.width() as usize, img.height() as usize);
        let from_bytes = wgpu_conv::pixels::gray_from_rgba8(img.as_raw(), w, h).unwrap();
        let from_file = Tensor::from_luma(&DynamicImage::ImageRgba8(img.clone())).unwrap();
        assert_eq!(from_bytes.shape(), [h, w]);
        assert_eq!(from_bytes.data(), from_file.data());
        let signed =
            Tensor::from_fn([h, w], |i| (i[0] as f32 - 2.0) * (i[1] as f32 - 3.0)).unwrap();
        for map in [Map::Abs, Map::Signed, Map::Clamp] {
            let levels = wgpu_conv::pixels::levels(&signed, map).unwrap();
            let image = im::to_image(&signed, map).unwrap();
            assert_eq!(levels.data, image.to_luma8().into_raw(), "{map:?}");
            let rgba = levels.to_rgba8();
            assert!(rgba
                .chunks(4)
                .zip(&levels.data)
                .all(|(p, &g)| p == [g, g, g, 255]));
        }
        assert!(wgpu_conv::pixels::gray_from_rgba8(&[0; 15], 2, 2).is_err());
        assert_eq!(
            filters::edge_kernel("edge").unwrap().shape(),
            [1, 1, 1, 2],
            "one kernel is one response"
        );
        assert!(filters::edge_kernel("nope").is_err());
    }

    #[test]
    fn from_rgb_and_from_luma_composite_alpha_over_white() {
        let img = DynamicImage::ImageRgba8(rgba());
        let rgb = Tensor::from_rgb(&img).unwrap();
        let gray = Tensor::from_luma(&img).unwrap();
        assert_eq!(rgb.shape(), [3, 5, 7]);
        assert_eq!(gray.shape(), [5, 7]);
        let plane = 35;
        for (i, px) in rgba().pixels().enumerate() {
            let a = f32::from(px[3]) / 255.0;
            let over = |c: u8| f32::from(c) / 255.0 * a + (1.0 - a);
            for k in 0..3 {
                let want = over(px[k]);
                assert!(
                    (rgb.data()[k * plane + i] - want).abs() < 1e-6,
                    "plane {k} pixel {i}"
                );
            }
            let luma =
                0.2126 * f32::from(px[0]) + 0.7152 * f32::from(px[1]) + 0.0722 * f32::from(px[2]);
            let want = luma / 255.0 * a + (1.0 - a);
            assert!((gray.data()[i] - want).abs() < 1e-6, "gray pixel {i}");
        }
        // 16-bit samples read at their own precision
        let deep = DynamicImage::ImageLuma16(image::ImageBuffer::from_fn(3, 2, |x, y| {
            image::Luma([(x * 20_000 + y * 7) as u16])
        }));
        let t = Tensor::from_luma(&deep).unwrap();
        assert_eq!(t.data()[2], 40_000.0 / 65_535.0);
        assert_eq!(t.data()[5], 40_007.0 / 65_535.0);
    }

    #[test]
    fn to_image_maps_and_round_trips() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(6, 4, |x, y| {
            image::Rgb([(x * 40) as u8, (y * 80) as u8, 200])
        }));
        let t = Tensor::from_rgb(&img).unwrap();
        assert_eq!(
            im::to_image(&t, Map::Clamp).unwrap(),
            img,
            "clamp is the identity on [0, 1]"
        );
        let signed = Tensor::new(vec![1, 3], vec![-2.0, 0.0, 2.0])
            .unwrap()
            .reshape(vec![1, 3])
            .unwrap();
        let g = im::to_image(&signed, Map::Signed).unwrap().into_luma8();
        assert_eq!(g.as_raw(), &[0, 128, 255]);
        let g = im::to_image(&signed, Map::Abs).unwrap().into_luma8();
        assert_eq!(g.as_raw(), &[255, 0, 255]);
        assert!(
            im::to_image(&Tensor::new(vec![2, 2, 2], vec![0.0; 8]).unwrap(), Map::Abs).is_err()
        );
        assert_eq!(Map::for_kernel(&filters::box_blur(3).unwrap()), Map::Clamp);
        assert_eq!(Map::for_kernel(&filters::laplacian()), Map::Abs);
    }

    #[test]
    fn decode_refuses_what_it_cannot_read_with_a_typed_error() {
        let mut png = Vec::new();
        DynamicImage::ImageRgba8(rgba())
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let t = im::decode(&png, "memory", Color::Rgb, im::DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!(t.shape(), [3, 5, 7]);
        for (bytes, what) in [
            (&png[..png.len() / 2], "a cut PNG"),
            (&b"GIF89a not an image"[..], "not PNG or JPEG"),
        ] {
            let e = im::decode(bytes, what, Color::Gray, im::DEFAULT_MAX_PIXELS).unwrap_err();
            assert!(matches!(e, wgpu_conv::Error::Image(_)), "{what}: {e}");
        }
        let e = im::decode(&png, "memory", Color::Gray, 34).unwrap_err();
        assert!(e.to_string().contains("over the limit of 34"), "{e}");
    }

    /// Each plane of a colour image filtered alone: the GPU against the CPU reference of a
    /// one-plane image, within its bound; a two-response kernel gives the Euclidean norm.
    #[test]
    #[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
    fn apply_filters_each_colour_plane() {
        let img = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(37, 23, |x, y| {
            image::Rgba([(x * 7) as u8, (y * 11) as u8, ((x ^ y) * 5) as u8, 255])
        }));
        let rgb = Tensor::from_rgb(&img).unwrap();
        for mode in [PaddingMode::Replicate, PaddingMode::Reflect] {
            let kernel = filters::gaussian(5, 1.2).unwrap();
            let y = filters::apply(ctx(), &rgb, &kernel, mode).unwrap();
            assert_eq!(y.shape(), rgb.shape());
            let g = Conv2dOptions::new()
                .padding(Padding::Same)
                .padding_mode(mode)
                .resolve([1, 1, 23, 37], [1, 1, 5, 5])
                .unwrap();
            let plane = 23 * 37;
            for c in 0..3 {
                let r =
                    cpu::conv2d_forward(&g, &rgb.data()[c * plane..][..plane], kernel.data(), None);
                assert_within(
                    &y.data()[c * plane..][..plane],
                    &r,
                    &format!("plane {c}, {mode:?}"),
                );
            }
        }
        // sobel x and y: sqrt(gx^2 + gy^2) of the gray image
        let gray = Tensor::from_luma(&img).unwrap();
        let pair = filters::edge_kernel("sobel").unwrap();
        assert_eq!(pair.shape(), [2, 1, 3, 3]);
        assert_eq!(&pair.data()[..9], filters::sobel_x().data());
        assert_eq!(&pair.data()[9..], filters::sobel_y().data());
        let y = filters::apply(ctx(), &gray, &pair, PaddingMode::Replicate).unwrap();
        // the async call (the browser's) is the same computation
        let y_async = pollster::block_on(filters::apply_async(
            ctx(),
            &gray,
            &pair,
            PaddingMode::Replicate,
        ))
        .unwrap();
        assert_eq!(y.data(), y_async.data());
        let g = Conv2dOptions::new()
            .padding(Padding::Same)
            .padding_mode(PaddingMode::Replicate)
            .resolve([1, 1, 23, 37], [2, 1, 3, 3])
            .unwrap();
        let r = cpu::conv2d_forward(&g, gray.data(), pair.data(), None);
        let plane = 23 * 37;
        for p in 0..plane {
            let (gx, gy) = (r.values[p], r.values[plane + p]);
            let want = (gx * gx + gy * gy).sqrt();
            // |norm(a') - norm(a)| <= |a' - a| <= ex + ey, each response within its bound;
            // squaring, adding and the square root in f32 add a few ulps of the norm
            let unit = (r.terms + 1) as f64 * 2f64.powi(-24);
            let err = unit * (r.magnitude[p] + r.magnitude[plane + p]) + 2f64.powi(-21) * want;
            assert!(
                (f64::from(y.data()[p]) - want).abs() <= err,
                "pixel {p}: {} vs {want}",
                y.data()[p]
            );
        }
        let e = filters::apply(
            ctx(),
            &Tensor::new(vec![4], vec![0.0; 4]).unwrap(),
            &pair,
            PaddingMode::Zeros,
        );
        assert!(matches!(e, Err(wgpu_conv::Error::InvalidShape(_))));
    }
}

/// Tensors to and from ndarray (feature `ndarray`): the logical order of a transposed view is
/// kept, ranks past 4 are refused, and a convolution of a converted array equals the CPU
/// reference.
#[cfg(feature = "ndarray")]
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn ndarray_arrays_convert_both_ways() {
    use ndarray::{Array, ArrayD, IxDyn};
    let a = Array::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f32);
    let t = Tensor::try_from(&a.t()).unwrap();
    assert_eq!(t.shape(), [4, 3]);
    assert_eq!(&t.data()[..4], &[0.0, 4.0, 8.0, 1.0]);
    let back: ArrayD<f32> = (&t).into();
    assert_eq!(back, a.t().into_dyn());
    let five = ArrayD::<f32>::zeros(IxDyn(&[1, 1, 1, 1, 2]));
    assert!(matches!(
        Tensor::try_from(&five),
        Err(wgpu_conv::Error::InvalidShape(_))
    ));
    let x = Array::from_shape_fn((3, 3), |(i, j)| (i * 3 + j) as f32);
    let k = Array::from_shape_vec((2, 2), vec![0.0f32, 1.0, 2.0, 3.0]).unwrap();
    let y = ctx()
        .corr2d(
            &Tensor::try_from(&x).unwrap(),
            &Tensor::try_from(&k).unwrap(),
        )
        .unwrap();
    let y: ArrayD<f32> = y.into();
    assert_eq!(
        y,
        Array::from_shape_vec((2, 2), vec![19.0f32, 25.0, 37.0, 43.0])
            .unwrap()
            .into_dyn()
    );
}
