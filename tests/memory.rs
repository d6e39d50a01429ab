//! Resident memory over many calls, in a test binary of its own: tests running beside it in
//! one process would allocate inside its measurement.

use wgpu_conv::{Conv2dOptions, GpuContext, Tensor};

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// 10,000 consecutive calls (after a warm-up) do not grow the resident memory: buffers are freed
/// once their submission is done.
#[test]
#[cfg_attr(no_gpu, ignore = "GPU tests opted out with --cfg no_gpu")]
fn ten_thousand_calls_do_not_grow_memory() {
    let ctx = GpuContext::new().unwrap();
    let x = Tensor::from_fn([1, 1, 3, 3], |i| (i[2] * 3 + i[3]) as f32).unwrap();
    let k = Tensor::from_fn([1, 1, 2, 2], |i| (i[2] * 2 + i[3]) as f32).unwrap();
    for _ in 0..500 {
        ctx.conv2d(&x, &k, None, &Conv2dOptions::new()).unwrap();
    }
    let before = resident_bytes();
    let t = std::time::Instant::now();
    for _ in 0..10_000 {
        let y = ctx.conv2d(&x, &k, None, &Conv2dOptions::new()).unwrap();
        assert_eq!(y.data()[0], 19.0);
    }
    let after = resident_bytes();
    eprintln!(
        "resident memory before/after 10,000 calls: {:.1} / {:.1} MiB ({:.0} us per call) on {}",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        t.elapsed().as_secs_f64() * 1e6 / 10_000.0,
        ctx.describe()
    );
    assert!(
        after < before + 16 * 1048576,
        "resident memory grew from {before} to {after} bytes"
    );
}
