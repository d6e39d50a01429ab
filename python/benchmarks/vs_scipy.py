"""Times, in one process on this machine's default adapter: the first import and the first
call (device start and pipeline builds included), then wgpu_conv.conv2d against
scipy.ndimage.correlate on a 4096x4096 image with a 5x5 kernel (medians of --runs), checking
that the two agree within the float32 bound first. `python python/benchmarks/vs_scipy.py [--runs N]`."""

import argparse
import time

t0 = time.perf_counter()
import numpy as np  # noqa: E402

import wgpu_conv as wc  # noqa: E402

t_import = time.perf_counter() - t0

import scipy.ndimage  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", type=int, default=4096)
    a = ap.parse_args()
    t = time.perf_counter()
    wc.corr2d(np.ones((3, 3), np.float32), np.ones((2, 2), np.float32))
    t_first = time.perf_counter() - t
    print(f"adapter: {wc.default_context().describe()}")
    print(f"first import {t_import * 1e3:.0f} ms, first call {t_first * 1e3:.0f} ms")
    r = np.random.default_rng(0)
    n = a.size
    x = r.uniform(0, 1, (n, n)).astype(np.float32)
    k = r.uniform(-1, 1, (5, 5)).astype(np.float32)
    gpu = wc.conv2d(x[None], k[None, None], padding="same", padding_mode="replicate")[0]
    ref = scipy.ndimage.correlate(x, k, mode="nearest")
    mag = scipy.ndimage.correlate(np.abs(x), np.abs(k), mode="nearest").astype(np.float64)
    err = np.abs(gpu.astype(np.float64) - scipy.ndimage.correlate(x.astype(np.float64), k.astype(np.float64), mode="nearest"))
    assert np.all(err <= 26 * 2.0**-24 * mag * 1.01 + 1e-30), "wgpu_conv and scipy disagree"
    del ref

    def median(f):
        ts = []
        for _ in range(a.runs):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
        return sorted(ts)[len(ts) // 2]

    flops = 2 * n * n * 25
    tg = median(lambda: wc.conv2d(x[None], k[None, None], padding="same", padding_mode="replicate"))
    ts = median(lambda: scipy.ndimage.correlate(x, k, mode="nearest"))
    print(f"{n}x{n} image, 5x5 kernel, float32, replicate border, median of {a.runs}:")
    print(f"  wgpu_conv.conv2d          {tg * 1e3:8.1f} ms  {flops / tg / 1e9:6.2f} GFLOP/s")
    print(f"  scipy.ndimage.correlate   {ts * 1e3:8.1f} ms  {flops / ts / 1e9:6.2f} GFLOP/s")


if __name__ == "__main__":
    main()
