mod common;
use wgpu_conv::Tensor;

#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn smoke() {
    let ctx = common::ctx();
    let x = Tensor::from_rows(&[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]);
    let k = Tensor::from_rows(&[[0.0, 1.0], [2.0, 3.0]]);
    let y = ctx.corr2d(&x, &k).unwrap();
    assert_eq!(y.data(), &[19.0, 25.0, 37.0, 43.0]);
}
