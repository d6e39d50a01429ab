#!/usr/bin/env bash
# Benchmark on a machine with a real GPU: which Vulkan/GL drivers are present, what wgpu-conv
# sees (`info`), its `bench --json` over the named shapes with both kernel families (GPU, then
# CPU; `--family` overrides), and, where PyTorch with CUDA is installed, F.conv2d and its weight
# and input gradients on the same shapes (TF32 off) in the same run. About 2 minutes on an H200.
# Usage: scripts/gpu-bench.sh [extra bench flags]   (expects a release build, or builds one)
set -uo pipefail
cd "$(dirname "$0")/.."
echo "== drivers"
ls /usr/share/vulkan/icd.d/ /etc/vulkan/icd.d/ 2>/dev/null | sed 's/^/  vulkan icd: /'
ls /usr/lib/x86_64-linux-gnu/libEGL_nvidia.so* /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so* 2>/dev/null | sed 's/^/  nvidia gl: /'
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
bin=target/release/wgpu-conv
[ -x "$bin" ] || cargo build --release -q --features cli || exit 1
echo "== wgpu-conv info"
"$bin" info
echo "== wgpu-conv bench --json, both kernel families"
case " $* " in
    *" --family"*) "$bin" bench --json --runs 10 "$@" ;;
    *) "$bin" bench --json --runs 10 --family gpu,cpu "$@" ;;
esac
if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "== PyTorch (CUDA, TF32 off)"
    python3 - <<'PY'
import json, time, torch
import torch.nn.functional as F
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
shapes = {
    "resnet_3x3": ((8, 64, 56, 56), (64, 64, 3, 3), dict(padding=1)),
    "resnet_1x1": ((8, 256, 28, 28), (128, 256, 1, 1), {}),
    "stem_7x7": ((8, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3)),
    "depthwise": ((8, 128, 56, 56), (128, 1, 3, 3), dict(padding=1, groups=128)),
    "blur_img": ((1, 1, 2048, 2048), (1, 1, 5, 5), {}),
    "edge_img": ((1, 1, 1024, 1024), (1, 1, 1, 2), {}),
    "d2l_fig": ((1, 1, 3, 3), (1, 1, 2, 2), {}),
}
dev = torch.device("cuda")
for name, (xs, ws, kw) in shapes.items():
    x = torch.randn(xs, device=dev, requires_grad=True)
    w = torch.randn(ws, device=dev, requires_grad=True)
    y = F.conv2d(x, w, **kw).detach()
    flops = 2 * y.numel() * ws[1] * ws[2] * ws[3]
    gy = torch.randn_like(y)
    for op in ("forward", "weight_grad", "input_grad"):
        def run():
            if op == "forward":
                with torch.no_grad():
                    F.conv2d(x, w, **kw)
            else:
                torch.autograd.grad(F.conv2d(x, w, **kw), w if op == "weight_grad" else x, gy)
        for _ in range(3):
            run()
        torch.cuda.synchronize()
        times = []
        for _ in range(10):
            t = time.perf_counter(); run(); torch.cuda.synchronize(); times.append(time.perf_counter() - t)
        med = sorted(times)[len(times) // 2]
        print(json.dumps({"shape": name, "op": op, "median_s": med, "gflops": flops / med / 1e9,
                          "note": "" if op == "forward" else op + " timing includes its forward",
                          "adapter": torch.cuda.get_device_name(), "backend": "cuda (PyTorch %s)" % torch.__version__}))
PY
else
    echo "== PyTorch with CUDA not installed: no PyTorch figures"
fi
