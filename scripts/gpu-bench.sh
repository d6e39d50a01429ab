#!/usr/bin/env bash
# Benchmark on a machine with a real GPU, in one call of under 5 minutes: which Vulkan/GL
# drivers are present, what wgpu-conv sees (`info`: limits, subgroup size, features,
# cooperative matrices), its `bench --json` over the named shapes with both kernel families
# (GPU, then CPU; `--family` overrides), the GPU family again with naga's runtime checks on
# (WGPU_CONV_CHECKED=1), and, where PyTorch with CUDA is installed, cuDNN's forward, input
# gradient and weight gradient on the same shapes, each on its own, timed with CUDA events
# (TF32 off; cudnn.benchmark off, then on). The SM clock is logged every 100 ms throughout and
# summarised at the end. `bench` warms the GPU up (0.2 s) before each timed op and reports GPU
# time per op from batched submissions.
# Usage: scripts/gpu-bench.sh [extra bench flags]   (expects a release build, or builds one)
set -uo pipefail
cd "$(dirname "$0")/.."
clocks=$(mktemp)
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader,nounits -lms 100 > "$clocks" 2>/dev/null &
    clock_pid=$!
fi
echo "== drivers"
ls /usr/share/vulkan/icd.d/ /etc/vulkan/icd.d/ 2>/dev/null | sed 's/^/  vulkan icd: /'
ls /usr/lib/x86_64-linux-gnu/libEGL_nvidia.so* /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so* 2>/dev/null | sed 's/^/  nvidia gl: /'
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
bin=target/release/wgpu-conv
[ -x "$bin" ] || cargo build --release -q --features cli || exit 1
echo "== wgpu-conv info"
"$bin" info
echo "== wgpu-conv bench --json, both kernel families"
case " $* " in
    *" --family"*) "$bin" bench --json --runs 10 "$@" ;;
    *) "$bin" bench --json --runs 10 --family gpu,cpu "$@" ;;
esac
echo "== wgpu-conv bench --json, the GPU family with naga's runtime checks on (WGPU_CONV_CHECKED=1)"
WGPU_CONV_CHECKED=1 "$bin" bench --json --runs 10 --family gpu --shapes resnet_3x3,resnet_1x1,resnet_down,stem_7x7 "$@"
if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "== PyTorch (CUDA, TF32 off)"
    python3 - <<'PY'
import json, torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_input, conv2d_weight
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
shapes = {
    "resnet_3x3": ((8, 64, 56, 56), (64, 64, 3, 3), dict(padding=1)),
    "resnet_1x1": ((8, 256, 28, 28), (128, 256, 1, 1), {}),
    "resnet_down": ((8, 128, 28, 28), (256, 128, 3, 3), dict(stride=2, padding=1)),
    "stem_7x7": ((8, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3)),
    "depthwise": ((8, 128, 56, 56), (128, 1, 3, 3), dict(padding=1, groups=128)),
    "blur_img": ((1, 1, 2048, 2048), (1, 1, 5, 5), {}),
    "edge_img": ((1, 1, 1024, 1024), (1, 1, 1, 2), {}),
    "d2l_fig": ((1, 1, 3, 3), (1, 1, 2, 2), {}),
}
dev = torch.device("cuda")
for benchmark in (False, True):
    torch.backends.cudnn.benchmark = benchmark
    for name, (xs, ws, kw) in shapes.items():
        x = torch.randn(xs, device=dev)
        w = torch.randn(ws, device=dev)
        y = F.conv2d(x, w, **kw)
        gy = torch.randn_like(y)
        flops = 2 * y.numel() * ws[1] * ws[2] * ws[3]
        ops = {
            "forward": lambda: F.conv2d(x, w, **kw),
            # each gradient on its own: no forward pass, no autograd
            "input_grad": lambda: conv2d_input(xs, w, gy, **kw),
            "weight_grad": lambda: conv2d_weight(x, ws, gy, **kw),
        }
        with torch.no_grad():
            for op, run in ops.items():
                # warm up for about 0.2 s (and let cudnn.benchmark choose)
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                n = 0
                while True:
                    run(); n += 1
                    end.record(); end.synchronize()
                    if start.elapsed_time(end) > 200 or n >= 2000:
                        break
                # then 10 timings of a batch of ops between two events
                per = max(1, min(64, int(20.0 / max(start.elapsed_time(end) / n, 1e-3))))
                times = []
                for _ in range(10):
                    start.record()
                    for _ in range(per):
                        run()
                    end.record(); end.synchronize()
                    times.append(start.elapsed_time(end) / 1e3 / per)
                med = sorted(times)[len(times) // 2]
                print(json.dumps({"shape": name, "op": op, "gpu_median_s": med, "gflops": flops / med / 1e9,
                                  "batch": per, "cudnn_benchmark": benchmark,
                                  "adapter": torch.cuda.get_device_name(),
                                  "backend": "cuDNN %s (PyTorch %s), CUDA events" % (torch.backends.cudnn.version(), torch.__version__)}))
PY
else
    echo "== PyTorch with CUDA not installed: no PyTorch figures"
fi
if [ -n "${clock_pid:-}" ]; then
    kill "$clock_pid" 2>/dev/null
    echo "== SM clock (MHz) over the run, every 100 ms: samples, min, median, max; max clock"
    python3 - "$clocks" <<'PY'
import sys
rows = [l.split(",") for l in open(sys.argv[1]) if l.strip()]
sm = sorted(float(r[0]) for r in rows if r[0].strip().replace(".", "").isdigit())
if sm:
    print(len(sm), sm[0], sm[len(sm) // 2], sm[-1], rows[0][1].strip())
PY
fi
rm -f "$clocks"
