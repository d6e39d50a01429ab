//! The `wgpu-conv` binary: forward, backward and train on `.npy` files, and bad input ending
//! with a one-line error and a non-zero exit, never a panic.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{assert_within, Rng};
use npyz::WriterBuilder;
use wgpu_conv::{cpu, Conv2dOptions, ConvMode, PaddingMode};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wgpu-conv"))
}

struct Dir(PathBuf);
impl Dir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("wgpu-conv-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_npy<T: npyz::Serialize + npyz::AutoSerialize + Copy>(
    path: &Path,
    shape: &[usize],
    data: &[T],
) {
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(std::io::BufWriter::new(
            std::fs::File::create(path).unwrap(),
        ))
        .begin_nd()
        .unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
}

fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let f = npyz::NpyFile::new(std::fs::File::open(path).unwrap()).unwrap();
    let shape = f.shape().iter().map(|&d| d as usize).collect();
    (shape, f.into_vec::<f32>().unwrap())
}

fn run(args: &[&str]) -> Output {
    let out = bin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    out
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn forward_rank2_is_the_chapters_corr2d() {
    let d = Dir::new("rank2");
    write_npy(
        &d.path("x.npy"),
        &[3, 3],
        &(0..9).map(|v| v as f32).collect::<Vec<_>>(),
    );
    write_npy(&d.path("k.npy"), &[2, 2], &[0.0f32, 1.0, 2.0, 3.0]);
    let out = run(&[
        "forward",
        "--input",
        arg(&d.path("x.npy")),
        "--weight",
        arg(&d.path("k.npy")),
        "--output",
        arg(&d.path("y.npy")),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        read_npy(&d.path("y.npy")),
        (vec![2, 2], vec![19.0, 25.0, 37.0, 43.0])
    );
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn forward_and_backward_rank4_with_options() {
    let d = Dir::new("rank4");
    let opts = Conv2dOptions::new()
        .stride((2, 1))
        .padding([1, 2, 0, 1])
        .dilation((1, 2))
        .groups(2)
        .padding_mode(PaddingMode::Reflect)
        .mode(ConvMode::Convolution);
    let (xs, ws) = ([2, 4, 7, 8], [6, 2, 3, 2]);
    let g = opts.resolve(xs, ws).unwrap();
    let mut rng = Rng::new(1);
    let x = rng.vec(xs.iter().product());
    let w = rng.vec(ws.iter().product());
    let b = rng.vec(6);
    let gy = rng.vec(g.output_shape().iter().product());
    write_npy(&d.path("x.npy"), &xs, &x);
    write_npy(&d.path("w.npy"), &ws, &w);
    write_npy(&d.path("b.npy"), &[6], &b);
    write_npy(&d.path("gy.npy"), &g.output_shape(), &gy);
    let common = [
        "--stride",
        "2,1",
        "--padding",
        "1,2,0,1",
        "--dilation",
        "1,2",
        "--groups",
        "2",
        "--padding-mode",
        "reflect",
        "--mode",
        "convolution",
    ];
    let f = |name: &str| d.path(name).to_str().unwrap().to_string();
    let (xp, wp, bp, yp, gyp) = (f("x.npy"), f("w.npy"), f("b.npy"), f("y.npy"), f("gy.npy"));
    let (gwp, gxp, gbp) = (f("gw.npy"), f("gx.npy"), f("gb.npy"));
    let mut args = vec![
        "forward", "--input", &xp, "--weight", &wp, "--bias", &bp, "--output", &yp,
    ];
    args.extend(common);
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (shape, y) = read_npy(&d.path("y.npy"));
    assert_eq!(shape, g.output_shape());
    assert_within(
        &y,
        &cpu::conv2d_forward(&g, &x, &w, Some(&b)),
        "cli forward",
    );

    let mut args = vec![
        "backward",
        "--input",
        &xp,
        "--weight",
        &wp,
        "--bias",
        &bp,
        "--grad-output",
        &gyp,
    ];
    args.extend([
        "--grad-weight",
        &gwp,
        "--grad-input",
        &gxp,
        "--grad-bias",
        &gbp,
    ]);
    args.extend(common);
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_within(
        &read_npy(&d.path("gw.npy")).1,
        &cpu::conv2d_weight_grad(&g, &x, &gy),
        "cli weight_grad",
    );
    assert_within(
        &read_npy(&d.path("gx.npy")).1,
        &cpu::conv2d_input_grad(&g, &w, &gy),
        "cli input_grad",
    );
    assert_within(
        &read_npy(&d.path("gb.npy")).1,
        &cpu::conv2d_bias_grad(&g, &gy),
        "cli bias_grad",
    );
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn train_learns_the_edge_kernel() {
    let d = Dir::new("train");
    let x: Vec<f32> = (0..48)
        .map(|i| if (2..6).contains(&(i % 8)) { 0.0 } else { 1.0 })
        .collect();
    let y: Vec<f32> = (0..42)
        .map(|i| {
            let (r, c) = (i / 7, i % 7);
            x[r * 8 + c] - x[r * 8 + c + 1]
        })
        .collect();
    write_npy(&d.path("x.npy"), &[1, 1, 6, 8], &x);
    write_npy(&d.path("y.npy"), &[1, 1, 6, 7], &y);
    let out = run(&[
        "train",
        "--input",
        arg(&d.path("x.npy")),
        "--target",
        arg(&d.path("y.npy")),
        "--kernel-size",
        "1,2",
        "--lr",
        "0.03",
        "--steps",
        "10",
        "--log-every",
        "2",
        "--seed",
        "3",
        "--output-weight",
        arg(&d.path("k.npy")),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let epochs: Vec<&str> = stdout.lines().filter(|l| l.starts_with("epoch ")).collect();
    assert_eq!(epochs.len(), 5, "{stdout}");
    assert!(epochs[0].starts_with("epoch 2, loss "), "{stdout}");
    let (shape, k) = read_npy(&d.path("k.npy"));
    assert_eq!(shape, [1, 1, 1, 2]);
    assert!(
        (k[0] - 1.0).abs() < 0.1 && (k[1] + 1.0).abs() < 0.1,
        "{k:?}"
    );
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn float64_and_fortran_order_are_converted() {
    let d = Dir::new("convert");
    write_npy(
        &d.path("x.npy"),
        &[3, 3],
        &(0..9).map(|v| v as f64).collect::<Vec<_>>(),
    );
    // Fortran order: the 2x2 kernel [[0, 1], [2, 3]] stored column by column
    let shape = [2u64, 2];
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .order(npyz::Order::Fortran)
        .writer(std::fs::File::create(d.path("k.npy")).unwrap())
        .begin_nd()
        .unwrap();
    w.extend([0.0f32, 2.0, 1.0, 3.0]).unwrap();
    w.finish().unwrap();
    let out = run(&[
        "forward",
        "--input",
        arg(&d.path("x.npy")),
        "--weight",
        arg(&d.path("k.npy")),
        "--output",
        arg(&d.path("y.npy")),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read_npy(&d.path("y.npy")).1, [19.0, 25.0, 37.0, 43.0]);
}

/// Every bad input: non-zero exit, one line on stderr starting with "error", no panic.
#[test]
fn bad_input_gives_one_line_errors() {
    let d = Dir::new("errors");
    let p = |f: &str| d.path(f).to_str().unwrap().to_string();
    write_npy(&d.path("x2.npy"), &[4, 4], &[1.0f32; 16]);
    write_npy(&d.path("x4.npy"), &[1, 3, 4, 4], &[1.0f32; 48]);
    write_npy(&d.path("w2.npy"), &[2, 2], &[1.0f32; 4]);
    write_npy(&d.path("w4.npy"), &[2, 3, 2, 2], &[1.0f32; 24]);
    write_npy(&d.path("w4bad.npy"), &[2, 2, 2, 2], &[1.0f32; 16]);
    write_npy(&d.path("big_k.npy"), &[5, 5], &[1.0f32; 25]);
    write_npy(&d.path("b3.npy"), &[3], &[1.0f32; 3]);
    write_npy(&d.path("x3d.npy"), &[1, 4, 4], &[1.0f32; 16]);
    let dtype = |descr: &str, bytes: usize| {
        let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2, 2), }}");
        raw_npy(&header, &vec![0u8; 4 * bytes])
    };
    std::fs::write(d.path("complex.npy"), dtype("<c8", 8)).unwrap();
    std::fs::write(d.path("text.npy"), "not a numpy file").unwrap();
    let full = std::fs::read(d.path("x4.npy")).unwrap();
    std::fs::write(d.path("trunc.npy"), &full[..full.len() - 10]).unwrap();
    write_npy(&d.path("empty.npy"), &[0, 4], &[] as &[f32]);
    write_npy(&d.path("empty_w.npy"), &[0, 2], &[] as &[f32]);
    write_npy(&d.path("rank5.npy"), &[1, 1, 1, 2, 2], &[1.0f32; 4]);
    std::fs::write(d.path("unicode.npy"), dtype("<U1", 4)).unwrap();
    std::fs::write(d.path("float128.npy"), dtype("<f16", 16)).unwrap();
    write_npy(&d.path("scalar.npy"), &[], &[1.0f32]);
    // a header claiming 2^32 x 2^32 elements, and no data
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }";
    let mut huge = b"\x93NUMPY\x01\x00".to_vec();
    let pad = 64 - (10 + header.len() + 1) % 64;
    let hlen = (header.len() + pad + 1) as u16;
    huge.extend_from_slice(&hlen.to_le_bytes());
    huge.extend_from_slice(header.as_bytes());
    huge.extend(std::iter::repeat_n(b' ', pad));
    huge.push(b'\n');
    std::fs::write(d.path("huge.npy"), &huge).unwrap();
    let fwd = |x: &str, w: &str, extra: &[&str]| {
        let mut a = vec![
            "forward".to_string(),
            "--input".into(),
            p(x),
            "--weight".into(),
            p(w),
            "--output".into(),
            p("y.npy"),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("missing file", fwd("nope.npy", "w2.npy", &[])),
        ("not npy", fwd("text.npy", "w2.npy", &[])),
        ("truncated", fwd("trunc.npy", "w4.npy", &[])),
        ("complex64 dtype", fwd("complex.npy", "w2.npy", &[])),
        ("empty array", fwd("empty.npy", "w2.npy", &[])),
        ("rank 2 input, rank 4 weight", fwd("x2.npy", "w4.npy", &[])),
        ("rank 4 input, rank 2 weight", fwd("x4.npy", "w2.npy", &[])),
        ("rank 3 input, rank 2 weight", fwd("x3d.npy", "w2.npy", &[])),
        ("channel mismatch", fwd("x4.npy", "w4bad.npy", &[])),
        ("kernel larger than input", fwd("x2.npy", "big_k.npy", &[])),
        (
            "bias length",
            fwd("x4.npy", "w4.npy", &["--bias", &p("b3.npy")]),
        ),
        ("stride 0", fwd("x2.npy", "w2.npy", &["--stride", "0"])),
        (
            "dilation 0",
            fwd("x2.npy", "w2.npy", &["--dilation", "0,1"]),
        ),
        (
            "negative padding",
            fwd("x2.npy", "w2.npy", &["--padding", "-1"]),
        ),
        (
            "three paddings",
            fwd("x2.npy", "w2.npy", &["--padding", "1,2,3"]),
        ),
        (
            "absurd padding",
            fwd("x2.npy", "w2.npy", &["--padding", "99999999999"]),
        ),
        ("groups 0", fwd("x4.npy", "w4.npy", &["--groups", "0"])),
        (
            "groups not dividing",
            fwd("x4.npy", "w4.npy", &["--groups", "2"]),
        ),
        (
            "reflect too wide",
            fwd(
                "x2.npy",
                "w2.npy",
                &["--padding", "4", "--padding-mode", "reflect"],
            ),
        ),
        (
            "same with stride",
            fwd("x2.npy", "w2.npy", &["--padding", "same", "--stride", "2"]),
        ),
        (
            "unknown padding mode",
            fwd("x2.npy", "w2.npy", &["--padding-mode", "mirror"]),
        ),
        ("unknown mode", fwd("x2.npy", "w2.npy", &["--mode", "conv"])),
        ("unknown flag", fwd("x2.npy", "w2.npy", &["--frobnicate"])),
        (
            "missing output",
            vec![
                "forward".into(),
                "--input".into(),
                p("x2.npy"),
                "--weight".into(),
                p("w2.npy"),
            ],
        ),
        (
            "grad-bias without bias",
            vec![
                "backward".into(),
                "--input".into(),
                p("x2.npy"),
                "--weight".into(),
                p("w2.npy"),
                "--grad-output".into(),
                p("x2.npy"),
                "--grad-bias".into(),
                p("gb.npy"),
            ],
        ),
        (
            "grad_output shape",
            vec![
                "backward".into(),
                "--input".into(),
                p("x2.npy"),
                "--weight".into(),
                p("w2.npy"),
                "--grad-output".into(),
                p("x2.npy"),
                "--grad-weight".into(),
                p("gw.npy"),
            ],
        ),
        (
            "train target shape",
            vec![
                "train".into(),
                "--input".into(),
                p("x2.npy"),
                "--target".into(),
                p("x2.npy"),
                "--kernel-size".into(),
                "1,2".into(),
            ],
        ),
        (
            "train log-every 0",
            vec![
                "train".into(),
                "--input".into(),
                p("x2.npy"),
                "--target".into(),
                p("x2.npy"),
                "--kernel-size".into(),
                "1,1".into(),
                "--log-every".into(),
                "0".into(),
            ],
        ),
        ("unknown command", vec!["frobnicate".into()]),
        ("empty weight", fwd("x2.npy", "empty_w.npy", &[])),
        ("rank 5", fwd("rank5.npy", "w2.npy", &[])),
        ("unicode dtype", fwd("unicode.npy", "w2.npy", &[])),
        ("float128 dtype", fwd("float128.npy", "w2.npy", &[])),
        ("0-d array", fwd("scalar.npy", "w2.npy", &[])),
        ("element count overflows", fwd("huge.npy", "w2.npy", &[])),
        (
            "stride beyond usize",
            fwd("x2.npy", "w2.npy", &["--stride", "99999999999999999999999"]),
        ),
        (
            "dilation far too large",
            fwd("x2.npy", "w2.npy", &["--dilation", "4000000000"]),
        ),
        (
            "groups beyond usize",
            fwd("x4.npy", "w4.npy", &["--groups", "-3"]),
        ),
        (
            "same padding with stride 2",
            fwd(
                "x4.npy",
                "w4.npy",
                &["--padding", "same", "--stride", "1,2"],
            ),
        ),
        ("input is a directory", fwd("", "w2.npy", &[])),
    ];
    for (what, args) in &cases {
        let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.contains("XDG_RUNTIME_DIR"))
            .collect();
        assert!(!out.status.success(), "{what}: exited 0");
        assert_eq!(lines.len(), 1, "{what}: stderr is not one line: {stderr}");
        assert!(lines[0].starts_with("error"), "{what}: {stderr}");
    }
    assert_eq!(cases.len(), 40);
}

/// `edges` on an image made here: a bright square on a dark background; the edge map is bright
/// on the square's border and dark inside and outside it.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn edges_on_a_generated_image() {
    let d = Dir::new("edges");
    let (w, h) = (300u32, 200u32);
    let img = image::GrayImage::from_fn(w, h, |x, y| {
        image::Luma([if (100..200).contains(&x) && (50..150).contains(&y) {
            220
        } else {
            30
        }])
    });
    img.save(d.path("in.png")).unwrap();
    for kernel in ["sobel", "edge", "edge-t", "laplacian", "prewitt"] {
        let out = run(&[
            "edges",
            arg(&d.path("in.png")),
            arg(&d.path("out.png")),
            "--kernel",
            kernel,
        ]);
        assert!(
            out.status.success(),
            "{kernel}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let e = image::open(d.path("out.png")).unwrap().to_luma8();
        assert_eq!(e.dimensions(), (w, h));
        let at = |x: u32, y: u32| e.get_pixel(x, y).0[0];
        // flat regions give no response
        assert_eq!(at(20, 20), 0, "{kernel}");
        assert_eq!(at(150, 100), 0, "{kernel}");
        // the vertical sides respond to all but the horizontal-difference kernel
        let left = (97..103).map(|x| at(x, 100)).max().unwrap();
        let top = (47..53).map(|y| at(150, y)).max().unwrap();
        match kernel {
            "edge" => assert!(left > 200 && top == 0, "{kernel}: {left} {top}"),
            "edge-t" => assert!(left == 0 && top > 200, "{kernel}: {left} {top}"),
            _ => assert!(left > 200 && top > 200, "{kernel}: {left} {top}"),
        }
    }
    // filter with a kernel from a file (a box blur keeps flat regions at their level)
    write_npy(&d.path("box.npy"), &[3, 3], &[1.0f32 / 9.0; 9]);
    let out = run(&[
        "filter",
        arg(&d.path("in.png")),
        arg(&d.path("blur.png")),
        "--weight",
        arg(&d.path("box.npy")),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = image::open(d.path("blur.png")).unwrap().to_luma8();
    assert!(
        (b.get_pixel(150, 100).0[0] as i32 - 220).abs() <= 1
            && (b.get_pixel(10, 10).0[0] as i32 - 30).abs() <= 1
    );
    // bad input: not an image, unknown kernel
    std::fs::write(d.path("bad.png"), "nope").unwrap();
    for args in [
        vec!["edges", arg(&d.path("bad.png")), arg(&d.path("o.png"))],
        vec![
            "edges",
            arg(&d.path("in.png")),
            arg(&d.path("o.png")),
            "--kernel",
            "nope",
        ],
    ] {
        let out = run(&args);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr)
            .lines()
            .any(|l| l.starts_with("error")));
    }
}

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn train_plots_the_loss_and_walkthrough_saves_pictures() {
    let d = Dir::new("plot");
    let x: Vec<f32> = (0..48)
        .map(|i| if (2..6).contains(&(i % 8)) { 0.0 } else { 1.0 })
        .collect();
    let y: Vec<f32> = (0..42)
        .map(|i| {
            let (r, c) = (i / 7, i % 7);
            x[r * 8 + c] - x[r * 8 + c + 1]
        })
        .collect();
    write_npy(&d.path("x.npy"), &[6, 8], &x);
    write_npy(&d.path("y.npy"), &[6, 7], &y);
    let out = run(&[
        "train",
        "--input",
        arg(&d.path("x.npy")),
        "--target",
        arg(&d.path("y.npy")),
        "--kernel-size",
        "1,2",
        "--plot",
        arg(&d.path("loss.svg")),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = std::fs::read_to_string(d.path("loss.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("polyline") && svg.contains("loss"),
        "{}",
        &svg[..200.min(svg.len())]
    );
    let out = run(&[
        "train",
        "--input",
        arg(&d.path("x.npy")),
        "--target",
        arg(&d.path("y.npy")),
        "--kernel-size",
        "1,2",
        "--plot",
        arg(&d.path("loss.png")),
    ]);
    assert!(!out.status.success(), "--plot takes .svg only");
    let out = run(&["walkthrough", "--save", arg(&d.path("pics"))]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "edge_input.png",
        "edge_map.png",
        "edge_map_transposed.png",
        "diagonal_edges.png",
    ] {
        assert!(image::open(d.path("pics").join(f)).is_ok(), "{f}");
    }
}

/// NaN and infinity in the data are no error: they propagate as IEEE arithmetic says.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn nan_data_propagates() {
    let d = Dir::new("nan");
    write_npy(
        &d.path("x.npy"),
        &[2, 3],
        &[1.0f32, f32::NAN, 2.0, f32::INFINITY, 1.0, 1.0],
    );
    write_npy(&d.path("k.npy"), &[1, 2], &[1.0f32, 1.0]);
    let out = run(&[
        "forward",
        "--input",
        arg(&d.path("x.npy")),
        "--weight",
        arg(&d.path("k.npy")),
        "--output",
        arg(&d.path("y.npy")),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, y) = read_npy(&d.path("y.npy"));
    assert!(
        y[0].is_nan() && y[1].is_nan() && y[2] == f32::INFINITY && y[3] == 2.0,
        "{y:?}"
    );
}

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    /// A bounded fuzz of the .npy reader: valid files with bytes overwritten or cut short. The
    /// tool either works or ends with an error; it never panics.
    #[test]
    fn mangled_npy_files_never_panic(cut in 0usize..200, flips in prop::collection::vec((0usize..200, any::<u8>()), 0..6)) {
        let d = Dir::new(&format!("fuzz{cut}"));
        write_npy(&d.path("x.npy"), &[3, 4], &[1.5f32; 12]);
        write_npy(&d.path("k.npy"), &[2, 2], &[1.0f32; 4]);
        let mut bytes = std::fs::read(d.path("x.npy")).unwrap();
        for (at, v) in flips {
            if at < bytes.len() {
                bytes[at] = v;
            }
        }
        bytes.truncate(cut.max(1).min(bytes.len()));
        std::fs::write(d.path("x.npy"), &bytes).unwrap();
        let out = bin()
            .args(["forward", "--input", arg(&d.path("x.npy")), "--weight", arg(&d.path("k.npy")), "--output", arg(&d.path("y.npy"))])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        prop_assert!(!stderr.contains("panicked"), "{}", stderr);
        prop_assert!(out.status.code().is_some(), "killed by a signal");
    }
}

/// A `.npy` file with `header` (padded as numpy pads it) and `data` after it.
fn raw_npy(header: &str, data: &[u8]) -> Vec<u8> {
    let pad = (64 - (12 + header.len() + 1) % 64) % 64;
    let mut b = b"\x93NUMPY\x02\x00".to_vec();
    b.extend_from_slice(&((header.len() + pad + 1) as u32).to_le_bytes());
    b.extend_from_slice(header.as_bytes());
    b.extend(std::iter::repeat_n(b' ', pad));
    b.push(b'\n');
    b.extend_from_slice(data);
    b
}

/// The hostile inputs of issue "Never silently wrong": headers that stalled the reader, sizes
/// that aborted, shapes that were accepted scrambled, images and paths that gave wrong bytes.
/// Each ends in one short error line and a non-zero exit, writing nothing.
#[test]
fn hostile_files_sizes_and_paths_end_in_short_errors() {
    let d = Dir::new("hostile");
    let p = |f: &str| d.path(f).to_str().unwrap().to_string();
    let nested = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': {}{}, }}",
        "[".repeat(22),
        "]".repeat(22)
    );
    std::fs::write(d.path("nested.npy"), raw_npy(&nested, &[0; 16])).unwrap();
    std::fs::write(d.path("long.npy"), raw_npy(&"(".repeat(20_000_000), &[])).unwrap();
    write_npy(&d.path("f64big.npy"), &[2, 2], &[1e300f64, 1.0, 2.0, 3.0]);
    let x = [[1.0f32, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]; 6].concat();
    write_npy(&d.path("X.npy"), &[6, 8], &x);
    write_npy(&d.path("Y.npy"), &[6, 7], &[0.5f32; 42]);
    write_npy(&d.path("YT.npy"), &[7, 6], &[0.5f32; 42]);
    write_npy(&d.path("Yflat.npy"), &[42], &[0.5f32; 42]);
    write_npy(&d.path("w2.npy"), &[2, 2], &[1.0f32; 4]);
    let img = image::GrayImage::from_fn(200, 100, |x, _| image::Luma([(x % 256) as u8]));
    img.save(d.path("in.jpg")).unwrap();
    img.save(d.path("in.png")).unwrap();
    let jpg = std::fs::read(d.path("in.jpg")).unwrap();
    std::fs::write(d.path("cut.jpg"), &jpg[..jpg.len() / 2]).unwrap();
    let fwd = |x: &str| -> Vec<String> {
        [
            "forward",
            "--input",
            &p(x),
            "--weight",
            &p("w2.npy"),
            "--output",
            &p("y.npy"),
        ]
        .map(String::from)
        .to_vec()
    };
    let train = |target: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["train", "--input", &p("X.npy"), "--target", &p(target)]
            .map(String::from)
            .to_vec();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let edges = |input: &str, out: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = vec!["edges".into(), p(input), out.to_string()];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("header nested 22 deep", fwd("nested.npy")),
        ("20 MB header", fwd("long.npy")),
        ("float64 beyond float32", fwd("f64big.npy")),
        (
            "train kernel of 10^11 taps",
            train("Y.npy", &["--kernel-size", "99999999999,2"]),
        ),
        (
            "train kernel of 65536 x 65537",
            train("Y.npy", &["--kernel-size", "65536,65537"]),
        ),
        (
            "train target transposed",
            train("YT.npy", &["--kernel-size", "1,2"]),
        ),
        (
            "train target flat",
            train("Yflat.npy", &["--kernel-size", "1,2"]),
        ),
        (
            "train diverges",
            train("Y.npy", &["--kernel-size", "1,2", "--lr", "1e30"]),
        ),
        ("truncated JPEG", edges("cut.jpg", &p("o.png"), &[])),
        (
            "image over the pixel budget",
            edges("in.png", &p("o.png"), &["--max-pixels", "1000"]),
        ),
        ("image output as .svg", edges("in.png", &p("o.svg"), &[])),
        (
            "image output in a missing folder",
            edges("in.png", &p("nodir/o.png"), &[]),
        ),
        (
            "unknown kernel",
            edges("in.png", &p("o.png"), &["--kernel", "sobel-z"]),
        ),
        (
            "backward writes over an input",
            [
                "backward",
                "--input",
                &p("X.npy"),
                "--weight",
                &p("w2.npy"),
                "--grad-output",
                &p("Y.npy"),
                "--grad-weight",
                &p("X.npy"),
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            "backward second output in a missing folder",
            [
                "backward",
                "--input",
                &p("X.npy"),
                "--weight",
                &p("w2.npy"),
                "--grad-output",
                &p("Y.npy"),
                "--grad-weight",
                &p("gw.npy"),
                "--grad-input",
                &p("nodir/g.npy"),
            ]
            .map(String::from)
            .to_vec(),
        ),
    ];
    let before = std::fs::read(d.path("X.npy")).unwrap();
    for (what, args) in &cases {
        let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| {
                !l.trim().is_empty() && !l.contains("XDG_RUNTIME_DIR") && !l.contains("written to")
            })
            .collect();
        assert!(!out.status.success(), "{what}: exited 0");
        assert_eq!(lines.len(), 1, "{what}: stderr is not one line: {stderr}");
        assert!(lines[0].starts_with("error"), "{what}: {stderr}");
        assert!(
            lines[0].len() < 400,
            "{what}: {} bytes of error",
            lines[0].len()
        );
    }
    assert_eq!(
        std::fs::read(d.path("X.npy")).unwrap(),
        before,
        "an input was overwritten"
    );
    for f in ["gw.npy", "o.png", "o.svg", "y.npy"] {
        assert!(!d.path(f).exists(), "{f} was written by a failing command");
    }
    let unknown = run(&edges("in.png", &p("o.png"), &["--kernel", "sobel-z"])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    let msg = String::from_utf8_lossy(&unknown.stderr);
    for name in [
        "sobel-x",
        "sobel-y",
        "prewitt-x",
        "prewitt-y",
        "sobel",
        "prewitt",
    ] {
        assert!(
            msg.contains(name),
            "the unknown-kernel error leaves out {name}: {msg}"
        );
    }
}

/// What the hostile table's fixes must still allow: a negative learning rate written with a
/// space, a target of the output's shape less its leading 1s, a plot that marks divergence,
/// JPEG output for `.jpg`, PNG on standard output, and alpha composited over white.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn fixed_inputs_work_as_documented() {
    let d = Dir::new("documented");
    let p = |f: &str| d.path(f).to_str().unwrap().to_string();
    let x = [[1.0f32, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]; 6].concat();
    write_npy(&d.path("X.npy"), &[6, 8], &x);
    write_npy(&d.path("Y.npy"), &[6, 7], &[0.5f32; 42]);
    let out = run(&[
        "train",
        "--input",
        &p("X.npy"),
        "--target",
        &p("Y.npy"),
        "--kernel-size",
        "1,2",
        "--lr",
        "-0.001",
        "--steps",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "train",
        "--input",
        &p("X.npy"),
        "--target",
        &p("Y.npy"),
        "--kernel-size",
        "1,2",
        "--lr",
        "1e30",
        "--plot",
        &p("loss.svg"),
    ]);
    assert!(!out.status.success());
    let svg = std::fs::read_to_string(d.path("loss.svg")).unwrap();
    assert!(
        svg.contains("not finite at step"),
        "the plot does not mark the divergence"
    );
    // alpha: a transparent square on opaque black has edges (white shows through)
    let img = image::RgbaImage::from_fn(40, 40, |x, y| {
        let inside = (10..30).contains(&x) && (10..30).contains(&y);
        image::Rgba([0, 0, 0, if inside { 0 } else { 255 }])
    });
    img.save(d.path("alpha.png")).unwrap();
    let out = run(&["edges", &p("alpha.png"), &p("e.jpg")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(d.path("e.jpg")).unwrap();
    assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF], ".jpg output is not JPEG");
    let e = image::open(d.path("e.jpg")).unwrap().to_luma8();
    assert!(
        e.get_pixel(10, 20).0[0] > 128,
        "no edge at the transparent square's border"
    );
    assert!(
        e.get_pixel(20, 20).0[0] < 64,
        "an edge inside the uniform square"
    );
    // 16-bit RGBA read at full precision without an f32 copy: the same square, same edges
    let img16 = image::ImageBuffer::<image::Rgba<u16>, Vec<u16>>::from_fn(40, 40, |x, y| {
        let inside = (10..30).contains(&x) && (10..30).contains(&y);
        image::Rgba([0, 0, 0, if inside { 0 } else { 65535 }])
    });
    img16.save(d.path("alpha16.png")).unwrap();
    let out = run(&["edges", &p("alpha16.png"), &p("e16.png")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e16 = image::open(d.path("e16.png")).unwrap().to_luma8();
    assert!(e16.get_pixel(10, 20).0[0] > 128 && e16.get_pixel(20, 20).0[0] < 64);
    let out = run(&["edges", &p("alpha.png"), "-"]);
    assert!(out.status.success());
    assert_eq!(
        &out.stdout[..8],
        b"\x89PNG\r\n\x1a\n",
        "stdout does not carry the PNG alone"
    );
}

/// Two writers of one output never leave a file that mixes them: each write goes to a
/// temporary file renamed into place.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn concurrent_writes_never_mix() {
    let d = Dir::new("concurrent");
    let p = |f: &str| d.path(f).to_str().unwrap().to_string();
    let mut rng = Rng::new(5);
    write_npy(&d.path("x.npy"), &[64, 64], &rng.vec(64 * 64));
    write_npy(&d.path("a.npy"), &[3, 3], &[1.0f32; 9]);
    write_npy(&d.path("b.npy"), &[3, 3], &[-1.0f32; 9]);
    let results: Vec<Vec<f32>> = ["a", "b"]
        .iter()
        .map(|k| {
            let out = run(&[
                "forward",
                "--input",
                &p("x.npy"),
                "--weight",
                &p(&format!("{k}.npy")),
                "--output",
                &p(&format!("y{k}.npy")),
            ]);
            assert!(out.status.success());
            read_npy(&d.path(&format!("y{k}.npy"))).1
        })
        .collect();
    for _ in 0..4 {
        let children: Vec<_> = ["a", "b"]
            .iter()
            .map(|k| {
                bin()
                    .args([
                        "forward",
                        "--input",
                        &p("x.npy"),
                        "--weight",
                        &p(&format!("{k}.npy")),
                        "--output",
                        &p("y.npy"),
                    ])
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        let (_, y) = read_npy(&d.path("y.npy"));
        assert!(
            results.contains(&y),
            "the output mixes the two writers' results"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&d.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".wgpu-conv-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
}

/// `WGPU_CONV_CHECKED`: a bad value is an error naming it; `info` says whether the checks are on.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn the_shader_checks_switch_is_read_and_reported() {
    // the shader-checks switch: a bad value is an error naming it; 1 says the checks are on
    let out = bin()
        .env("WGPU_CONV_CHECKED", "sometimes")
        .arg("info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("WGPU_CONV_CHECKED=\"sometimes\""),
        "{stderr}"
    );
    for (value, says) in [("1", "shader checks: on"), ("0", "shader checks: off")] {
        let out = bin()
            .env("WGPU_CONV_CHECKED", value)
            .arg("info")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains(says), "{value}: {stdout}");
    }
}

/// A padded output too large for the host's memory (under a 3 GB address-space limit) is an
/// error, not an abort; a misspelt `WGPU_BACKEND` is named; `info` with no adapter says so once.
#[test]
fn limits_and_environment_give_clear_errors() {
    let d = Dir::new("limits");
    write_npy(&d.path("x.npy"), &[1, 1, 4, 4], &[1.0f32; 16]);
    write_npy(&d.path("w.npy"), &[1, 1, 1, 1], &[1.0f32]);
    let cmd = format!(
        "ulimit -v 3000000; exec '{}' forward --input '{}' --weight '{}' --output '{}' --padding 20000",
        env!("CARGO_BIN_EXE_wgpu-conv"),
        arg(&d.path("x.npy")),
        arg(&d.path("w.npy")),
        arg(&d.path("y.npy"))
    );
    let out = Command::new("sh").args(["-c", &cmd]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "not a clean error exit: {stderr}"
    );
    assert!(stderr.contains("out of host memory"), "{stderr}");

    let out = bin()
        .env("WGPU_BACKEND", "nonsense")
        .arg("info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("WGPU_BACKEND=\"nonsense\""), "{stderr}");
    assert!(!stderr.contains("mesa-vulkan-drivers"), "{stderr}");

    // a bad autotuning switch is an error naming it, before anything runs
    let out = bin()
        .env("WGPU_CONV_AUTOTUNE", "yes please")
        .args(["plan", "--shape", "d2l_fig"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("WGPU_CONV_AUTOTUNE=\"yes please\""),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // no Metal on Linux: no adapters
    let out = bin()
        .env("WGPU_BACKEND", "metal")
        .arg("info")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("no adapters found"), "{stdout}");
    assert!(!stdout.contains("adapters found (0)"), "{stdout}");
}

/// Issue 11's repro: a depthwise layer of 70,000 channels at stride 2 on a 2x2 input, forward
/// and backward from the command line (it failed under `Auto` with a grid of 70,000 in z).
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn seventy_thousand_depthwise_channels_from_the_command_line() {
    let d = Dir::new("70k");
    let (xs, ws) = ([1usize, 70_000, 2, 2], [70_000usize, 1, 1, 1]);
    let mut rng = Rng::new(11);
    let x = rng.vec(xs.iter().product());
    let w = rng.vec(ws.iter().product());
    let gy = rng.vec(70_000);
    write_npy(&d.path("x.npy"), &xs, &x);
    write_npy(&d.path("w.npy"), &ws, &w);
    write_npy(&d.path("gy.npy"), &[1, 70_000, 1, 1], &gy);
    let opts = ["--groups", "70000", "--stride", "2"];
    let (x_, w_, gy_) = (d.path("x.npy"), d.path("w.npy"), d.path("gy.npy"));
    let (y_, gx_, gw_) = (d.path("y.npy"), d.path("gx.npy"), d.path("gw.npy"));
    let mut args = vec!["forward", "--input", arg(&x_), "--weight", arg(&w_)];
    args.extend(["--output", arg(&y_)]);
    args.extend(opts);
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let g = Conv2dOptions::new()
        .groups(70_000)
        .stride(2)
        .resolve(xs, ws)
        .unwrap();
    let (shape, y) = read_npy(&y_);
    assert_eq!(shape, [1, 70_000, 1, 1]);
    assert_within(&y, &cpu::conv2d_forward(&g, &x, &w, None), "forward");
    let mut args = vec!["backward", "--input", arg(&x_), "--weight", arg(&w_)];
    args.extend(["--grad-output", arg(&gy_), "--grad-input", arg(&gx_)]);
    args.extend(["--grad-weight", arg(&gw_)]);
    args.extend(opts);
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_within(
        &read_npy(&gx_).1,
        &cpu::conv2d_input_grad(&g, &w, &gy),
        "input grad",
    );
    assert_within(
        &read_npy(&gw_).1,
        &cpu::conv2d_weight_grad(&g, &x, &gy),
        "weight grad",
    );
}

/// `plan` prints choices, passes and scratch without an adapter (`--webgpu`), and refuses what
/// it cannot plan with a one-line error.
#[test]
fn plan_prints_a_plan_and_refuses_bad_requests() {
    let out = run(&["plan", "--shape", "resnet_3x3", "--webgpu"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for part in ["choices:", "auto -> gpu", "conv2d_core", "scratch:"] {
        assert!(text.contains(part), "{part}: {text}");
    }
    let out = run(&[
        "plan",
        "--input",
        "1,3,64,64",
        "--weight",
        "3,1,3,3",
        "--groups",
        "3",
        "--padding",
        "1",
        "--op",
        "weight_grad",
        "--algorithm",
        "gemm",
        "--webgpu",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("conv2d_weight_grad_planes"), "{text}");
    for bad in [
        vec!["plan", "--webgpu"],
        vec!["plan", "--shape", "nope", "--webgpu"],
        vec![
            "plan",
            "--shape",
            "resnet_3x3",
            "--op",
            "sgd_step",
            "--webgpu",
        ],
        vec![
            "plan",
            "--shape",
            "resnet_3x3",
            "--algorithm",
            "fast",
            "--webgpu",
        ],
    ] {
        let out = run(&bad);
        assert!(!out.status.success(), "{bad:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.trim().lines().count() <= 3, "{bad:?}: {err}");
    }
}

/// `bench` checks each result against the CPU reference, then times it: one JSON line per shape
/// and op. blur_img's input gradient has 4,194,304 outputs, so the round trip it is compared
/// with (the "floor") needs more than 65,535 workgroups of 64: it once asked for 65,536 in one
/// dimension and panicked.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn bench_reports_every_shape_and_op() {
    let out = bin()
        .args([
            "bench",
            "--shapes",
            "d2l_fig,blur_img",
            "--runs",
            "1",
            "--json",
        ])
        .args(["--ops", "forward,input_grad"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with('{')).collect();
    for shape in ["d2l_fig", "blur_img"] {
        for op in ["forward", "input_grad"] {
            let key = format!("\"shape\":\"{shape}\",\"op\":\"{op}\"");
            let line = lines.iter().find(|l| l.contains(&key));
            let line = line.unwrap_or_else(|| panic!("no line for {shape} {op}:\n{stdout}"));
            assert!(line.contains("\"gflops\":"), "{line}");
            assert!(line.contains("\"call_over_floor\":"), "{line}");
        }
    }
    assert_eq!(lines.len(), 4, "{stdout}");
}

/// Outputs get the umask's mode (tempfile's own would be 0600), and a file that is replaced
/// keeps its mode.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn outputs_get_the_umasks_mode_and_replaced_files_keep_theirs() {
    use std::os::unix::fs::PermissionsExt;
    let d = Dir::new("modes");
    let img =
        image::GrayImage::from_fn(24, 16, |x, y| image::Luma([((x * 9 + y * 5) % 256) as u8]));
    img.save(d.path("in.png")).unwrap();
    write_npy(&d.path("x.npy"), &[3, 3], &[1.0f32; 9]);
    write_npy(&d.path("k.npy"), &[2, 2], &[1.0f32; 4]);
    let exe = env!("CARGO_BIN_EXE_wgpu-conv");
    let sh = |cmd: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("umask 022 && exec {cmd}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let mode = |f: &str| std::fs::metadata(d.path(f)).unwrap().permissions().mode() & 0o777;
    let png = format!(
        "'{exe}' edges '{}' '{}'",
        arg(&d.path("in.png")),
        arg(&d.path("e.png"))
    );
    let npy = format!(
        "'{exe}' forward --input '{}' --weight '{}' --output '{}'",
        arg(&d.path("x.npy")),
        arg(&d.path("k.npy")),
        arg(&d.path("y.npy"))
    );
    sh(&png);
    sh(&npy);
    assert_eq!(mode("e.png"), 0o644, "a new PNG");
    assert_eq!(mode("y.npy"), 0o644, "a new .npy");
    for f in ["e.png", "y.npy"] {
        std::fs::set_permissions(d.path(f), std::fs::Permissions::from_mode(0o664)).unwrap();
    }
    sh(&png);
    sh(&npy);
    assert_eq!(mode("e.png"), 0o664, "a replaced PNG");
    assert_eq!(mode("y.npy"), 0o664, "a replaced .npy");
}

/// A JPEG with data after its end-of-image marker (a phone's motion photo) gives the edges of
/// the JPEG alone; one cut inside its scan is still refused.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn a_jpeg_with_data_after_its_end_is_read_and_one_cut_short_is_not() {
    let d = Dir::new("jpeg-tail");
    let img = image::GrayImage::from_fn(64, 40, |x, y| image::Luma([((x * 7) ^ (y * 3)) as u8]));
    img.save(d.path("a.jpg")).unwrap();
    let jpg = std::fs::read(d.path("a.jpg")).unwrap();
    let mut tail = jpg.clone();
    // 3 MB of trailing data, with marker-like bytes in it
    tail.extend((0..3u32 << 20).map(|i| [0xFF, 0xD8, 0xDA, 0x00, 0x17][(i % 5) as usize]));
    std::fs::write(d.path("tail.jpg"), &tail).unwrap();
    let scan = jpg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    std::fs::write(d.path("cut.jpg"), &jpg[..scan + (jpg.len() - scan) / 2]).unwrap();
    let p = |f: &str| arg(&d.path(f)).to_string();
    for (input, output) in [("a.jpg", "a.png"), ("tail.jpg", "tail.png")] {
        let out = run(&["edges", &p(input), &p(output)]);
        assert!(
            out.status.success(),
            "{input}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        std::fs::read(d.path("a.png")).unwrap(),
        std::fs::read(d.path("tail.png")).unwrap(),
        "the trailing data changed the edges"
    );
    let out = run(&["edges", &p("cut.jpg"), &p("cut.png")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("truncated"), "{err}");
    assert!(!d.path("cut.png").exists());
}

/// clap's whole message on one line: the missing arguments named, the similar command, the
/// possible values.
#[test]
fn argument_errors_keep_claps_whole_message_on_one_line() {
    for (args, wants) in [
        (&["edges"][..], &["<INPUT>", "<OUTPUT>"][..]),
        (&["edge"][..], &["edges"][..]),
        (
            &["edges", "a.png", "b.png", "--map", "ab"][..],
            &["abs"][..],
        ),
    ] {
        let out = run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        for w in wants {
            assert!(err.contains(w), "{args:?}: {w} missing from {err}");
        }
    }
}

/// `.npy` files of uint8 (an image as numpy saves it), int8, uint16, int16, bool and float16
/// are read and converted to float32: the forward pass of each equals the float32 file's.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn npy_files_of_small_integers_bools_and_halves_are_converted() {
    let d = Dir::new("dtypes");
    let values: Vec<u8> = (0..20u8).map(|v| (v * 37) % 7).collect();
    let as_f32: Vec<f32> = values.iter().map(|&v| f32::from(v)).collect();
    let shape = [4, 5];
    write_npy(&d.path("f32.npy"), &shape, &as_f32);
    write_npy(&d.path("u8.npy"), &shape, &values);
    write_npy(
        &d.path("i8.npy"),
        &shape,
        &values.iter().map(|&v| v as i8).collect::<Vec<_>>(),
    );
    write_npy(
        &d.path("u16.npy"),
        &shape,
        &values.iter().map(|&v| u16::from(v)).collect::<Vec<_>>(),
    );
    write_npy(
        &d.path("i16.npy"),
        &shape,
        &values.iter().map(|&v| i16::from(v)).collect::<Vec<_>>(),
    );
    write_npy(
        &d.path("f16.npy"),
        &shape,
        &as_f32
            .iter()
            .map(|&v| half::f16::from_f32(v))
            .collect::<Vec<_>>(),
    );
    let bools: Vec<bool> = values.iter().map(|&v| v % 2 == 1).collect();
    write_npy(&d.path("b1.npy"), &shape, &bools);
    write_npy(
        &d.path("b1f.npy"),
        &shape,
        &bools
            .iter()
            .map(|&b| f32::from(u8::from(b)))
            .collect::<Vec<_>>(),
    );
    write_npy(&d.path("k.npy"), &[2, 2], &[1.0f32, -2.0, 0.5, 3.0]);
    let forward = |input: &str| {
        let out_name = format!("y-{input}");
        let out = run(&[
            "forward",
            "--input",
            arg(&d.path(input)),
            "--weight",
            arg(&d.path("k.npy")),
            "--output",
            arg(&d.path(&out_name)),
        ]);
        assert!(
            out.status.success(),
            "{input}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        read_npy(&d.path(&out_name))
    };
    let want = forward("f32.npy");
    for f in ["u8.npy", "i8.npy", "u16.npy", "i16.npy", "f16.npy"] {
        assert_eq!(forward(f), want, "{f}");
    }
    assert_eq!(forward("b1.npy"), forward("b1f.npy"), "bool");
}

/// Runs the binary with `stdin` fed to it; its whole output.
fn run_piped(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = bin()
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    // fed from a thread, so that a full stdout pipe cannot stall the feeding
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    out
}

fn npy_of(bytes: &[u8]) -> (Vec<usize>, Vec<f32>) {
    let f = npyz::NpyFile::new(bytes).unwrap();
    let shape = f.shape().iter().map(|&d| d as usize).collect();
    (shape, f.into_vec::<f32>().unwrap())
}

/// `-` is standard input or output on every file argument: a shell pipeline of `forward`
/// gives the bytes the files give, `edges - -` the PNG of `edges IN OUT`, `filter --weight -`
/// reads the kernel from the pipe, and `train --output-weight -` moves its report to stderr.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn a_dash_reads_standard_input_and_writes_standard_output() {
    let d = Dir::new("stdio");
    let p = |f: &str| arg(&d.path(f)).to_string();
    let mut rng = Rng::new(24);
    let (x, w) = (rng.vec(2 * 3 * 9 * 11), rng.vec(4 * 3 * 3 * 3));
    write_npy(&d.path("x.npy"), &[2, 3, 9, 11], &x);
    write_npy(&d.path("w.npy"), &[4, 3, 3, 3], &w);
    let args = |input: &str, output: &str| -> Vec<String> {
        [
            "forward",
            "--input",
            input,
            "--weight",
            &p("w.npy"),
            "--output",
            output,
            "--padding",
            "1",
        ]
        .map(String::from)
        .to_vec()
    };
    let files = run(&args(&p("x.npy"), &p("y.npy"))
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    assert!(
        files.status.success(),
        "{}",
        String::from_utf8_lossy(&files.stderr)
    );
    let from_files = std::fs::read(d.path("y.npy")).unwrap();
    // a real shell pipeline
    let line = format!(
        "cat '{}' | '{}' {} > '{}'",
        p("x.npy"),
        env!("CARGO_BIN_EXE_wgpu-conv"),
        args("-", "-")[..].join(" "),
        p("piped.npy")
    );
    let sh = Command::new("sh").arg("-c").arg(&line).output().unwrap();
    assert!(
        sh.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&sh.stderr)
    );
    assert_eq!(
        std::fs::read(d.path("piped.npy")).unwrap(),
        from_files,
        "the pipe's bytes differ"
    );
    let (shape, y) = npy_of(&from_files);
    assert_eq!(shape, [2, 4, 9, 11]);
    let g = Conv2dOptions::new()
        .padding(1)
        .resolve([2, 3, 9, 11], [4, 3, 3, 3])
        .unwrap();
    assert_within(
        &y,
        &cpu::conv2d_forward(&g, &x, &w, None),
        "forward through a pipe",
    );
    assert!(!d.path("-").exists(), "a file named - was written");

    // edges - -
    let img = image::RgbImage::from_fn(45, 31, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 8) as u8, ((x * y) % 256) as u8])
    });
    img.save(d.path("in.png")).unwrap();
    let out = run(&["edges", &p("in.png"), &p("e.png")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_piped(
        &["edges", "-", "-"],
        &std::fs::read(d.path("in.png")).unwrap(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout,
        std::fs::read(d.path("e.png")).unwrap(),
        "edges - - differs"
    );

    // filter --weight -
    let mut kernel = Vec::new();
    {
        let mut wr = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[3, 3])
            .writer(&mut kernel)
            .begin_nd()
            .unwrap();
        wr.extend([0.0f32, 0.25, 0.0, 0.25, 0.0, 0.25, 0.0, 0.25, 0.0])
            .unwrap();
        wr.finish().unwrap();
    }
    std::fs::write(d.path("k.npy"), &kernel).unwrap();
    let out = run(&["filter", &p("in.png"), &p("f.png"), "--weight", &p("k.npy")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_piped(
        &["filter", &p("in.png"), &p("f2.png"), "--weight", "-"],
        &kernel,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(d.path("f.png")).unwrap(),
        std::fs::read(d.path("f2.png")).unwrap()
    );
    // two inputs cannot both be standard input
    let out = run_piped(&["filter", "-", &p("f3.png"), "--weight", "-"], &kernel);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("standard input"),
        "{err}"
    );

    // train --output-weight -: the learned weight on stdout, the report on stderr
    let xe = [[1.0f32, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]; 6].concat();
    let ye = [[0.0f32, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0]; 6].concat();
    write_npy(&d.path("X.npy"), &[6, 8], &xe);
    write_npy(&d.path("Y.npy"), &[6, 7], &ye);
    let out = run(&[
        "train",
        "--input",
        &p("X.npy"),
        "--target",
        &p("Y.npy"),
        "--kernel-size",
        "1,2",
        "--output-weight",
        "-",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("epoch 10, loss") && err.contains("learned kernel"),
        "{err}"
    );
    let (shape, k) = npy_of(&out.stdout);
    assert_eq!(shape, [1, 1, 1, 2]);
    assert!(
        (k[0] - 1.0).abs() < 0.3 && (k[1] + 1.0).abs() < 0.3,
        "{k:?}"
    );
}

/// `filter --color` filters the red, green and blue planes each: every written level is the
/// CPU reference's, clamped and rounded, give or take one level (a rounding boundary).
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn filter_color_filters_each_plane_and_writes_colour() {
    let d = Dir::new("color");
    let p = |f: &str| arg(&d.path(f)).to_string();
    let img = image::RgbImage::from_fn(33, 21, |x, y| {
        image::Rgb([
            (x * 7) as u8,
            255 - (y * 11) as u8,
            (((x / 4) ^ (y / 3)) * 40) as u8,
        ])
    });
    img.save(d.path("in.png")).unwrap();
    let k: Vec<f32> = (0..15).map(|i| (1 + i % 4) as f32 / 37.5).collect();
    write_npy(&d.path("k.npy"), &[3, 5], &k);
    let out = run(&[
        "filter",
        &p("in.png"),
        &p("out.png"),
        "--weight",
        &p("k.npy"),
        "--color",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = image::open(d.path("out.png")).unwrap();
    assert_eq!(
        got.color(),
        image::ColorType::Rgb8,
        "the output is not colour"
    );
    let got = got.into_rgb8();
    let g = Conv2dOptions::new()
        .padding(wgpu_conv::Padding::Same)
        .padding_mode(PaddingMode::Replicate)
        .resolve([1, 1, 21, 33], [1, 1, 3, 5])
        .unwrap();
    let mut differ = 0;
    for c in 0..3 {
        let plane: Vec<f32> = img.pixels().map(|px| f32::from(px[c]) / 255.0).collect();
        let r = cpu::conv2d_forward(&g, &plane, &k, None);
        for (i, v) in r.values.iter().enumerate() {
            let want = (v.clamp(0.0, 1.0) * 255.0).round() as i32;
            let have = i32::from(got.as_raw()[i * 3 + c]);
            assert!(
                (have - want).abs() <= 1,
                "plane {c} pixel {i}: {have} vs {want}"
            );
            differ += usize::from(have != want);
        }
    }
    assert!(differ < 20, "{differ} levels off by one");
    // the planes differ, so a gray result would not pass
    let gray = run(&[
        "filter",
        &p("in.png"),
        &p("gray.png"),
        "--weight",
        &p("k.npy"),
    ]);
    assert!(gray.status.success());
    assert_eq!(
        image::open(d.path("gray.png")).unwrap().color(),
        image::ColorType::L8
    );
}

/// 100 images in one `edges --out-dir` call (one device, one pipeline build) give the PNGs of
/// 100 single calls; both times are printed (`--nocapture` shows them).
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn many_images_in_one_out_dir_call_equal_single_calls() {
    const N: usize = 100;
    let d = Dir::new("many");
    std::fs::create_dir_all(d.path("in")).unwrap();
    let mut inputs = Vec::new();
    for i in 0..N {
        let (w, h) = (24 + (i * 7) % 41, 16 + (i * 5) % 29);
        let img = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let v = ((x as usize * (i + 3) + y as usize * (i % 7 + 1)) % 256) as u8;
            image::Rgb([v, v / 2, 255 - v])
        });
        let name = format!("img{i:03}.{}", if i % 3 == 0 { "jpg" } else { "png" });
        img.save(d.path("in").join(&name)).unwrap();
        inputs.push(d.path("in").join(name));
    }
    let t = std::time::Instant::now();
    let mut args: Vec<String> = vec![
        "edges".into(),
        "--out-dir".into(),
        arg(&d.path("out")).into(),
        "--suffix".into(),
        "_e".into(),
    ];
    args.extend(inputs.iter().map(|p| arg(p).to_string()));
    let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let batch = t.elapsed();
    std::fs::create_dir_all(d.path("single")).unwrap();
    let t = std::time::Instant::now();
    // four processes at a time: each mostly starts a device
    std::thread::scope(|s| {
        for part in 0..4 {
            let (inputs, d) = (&inputs, &d);
            s.spawn(move || {
                for (i, input) in inputs.iter().enumerate().skip(part).step_by(4) {
                    let single = d.path("single").join(format!("{i}.png"));
                    let out = run(&["edges", arg(input), arg(&single)]);
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            });
        }
    });
    let singles = t.elapsed();
    for (i, input) in inputs.iter().enumerate() {
        let stem = input.file_stem().unwrap().to_str().unwrap();
        let batched = std::fs::read(d.path("out").join(format!("{stem}_e.png")))
            .unwrap_or_else(|e| panic!("{stem}_e.png: {e}"));
        let single = std::fs::read(d.path("single").join(format!("{i}.png"))).unwrap();
        assert_eq!(batched, single, "{stem}: the --out-dir result differs");
    }
    assert_eq!(std::fs::read_dir(d.path("out")).unwrap().count(), N);
    eprintln!(
        "{N} images: one --out-dir call {:.2} s, {N} single calls (4 at a time) {:.2} s",
        batch.as_secs_f64(),
        singles.as_secs_f64()
    );
    // two inputs of one name would write one output twice: refused before any work
    std::fs::copy(&inputs[1], d.path("img001.png")).unwrap();
    let out = run(&[
        "edges",
        "--out-dir",
        arg(&d.path("dup")),
        arg(&inputs[1]),
        arg(&d.path("img001.png")),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("two outputs"),
        "{err}"
    );
    // without --out-dir, exactly one input and one output
    let out = run(&[
        "edges",
        arg(&inputs[1]),
        arg(&inputs[2]),
        arg(&d.path("x.png")),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--out-dir"), "{err}");
}
