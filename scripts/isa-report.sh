#!/usr/bin/env bash
# The GPU kernels' machine code, without a GPU: every kernel of the GPU family's plans for the
# bench shapes is compiled as wgpu-conv compiles it (naga, WGSL with the plan's override
# constants to SPIR-V, naga's runtime checks off for trusted kernels) and built by Mesa's RADV
# on a null device (RADV_FORCE_FAMILY; the radeon ICD of mesa-vulkan-drivers, no AMD hardware)
# with RADV_DEBUG=shaders,shaderstats. Prints each pipeline's hottest loop's instructions per
# FMA, its VGPRs and its spills: a proxy for relative change, never a speed.
#
#   scripts/isa-report.sh [--json] [--check] [--checked] [--family F] [--shapes a,b] [--ops ...]
#
#   --json     one JSON object per kernel and shape: kernel, shape, op, trusted,
#              loop_instructions_per_fma, loop_fmas, loop_instructions, vgprs, spills
#   --check    exit 1 unless the GEMM core (conv2d_core, conv2d_weight_grad_core) keeps at most 2.0 instructions per FMA
#              in its K loop, with no spills, on every bench shape and op it runs
#   --checked  naga's checks on every kernel (as WGPU_CONV_CHECKED=1)
#   --family   the AMD family RADV compiles for (default navi21, RDNA2)
#   RADV_ICD   the radeon ICD file to use (default: the system's)
set -euo pipefail
cd "$(dirname "$0")/.."

json=0 check=0 family=navi21 pass=()
while [ $# -gt 0 ]; do
    case "$1" in
        --json) json=1 ;;
        --check) check=1 ;;
        --family) family="$2"; shift ;;
        --checked|--shapes|--ops) pass+=("$1"); [ "$1" = --checked ] || { pass+=("$2"); shift; } ;;
        *) echo "isa-report.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

icd="${RADV_ICD:-}"
if [ -z "$icd" ]; then
    for f in /usr/share/vulkan/icd.d/radeon_icd.*.json /etc/vulkan/icd.d/radeon_icd.*.json; do
        [ -f "$f" ] && { icd="$f"; break; }
    done
fi
[ -n "$icd" ] || { echo "isa-report.sh: no radeon ICD; install mesa-vulkan-drivers" >&2; exit 1; }

cargo build --release --quiet -p wgpu-conv-isa
log=$(mktemp)
trap 'rm -f "$log"' EXIT
VK_ICD_FILENAMES="$icd" VK_DRIVER_FILES="$icd" RADV_FORCE_FAMILY="$family" \
    RADV_DEBUG=shaders,shaderstats MESA_SHADER_CACHE_DISABLE=true \
    target/release/wgpu-conv-isa "${pass[@]}" 2> "$log" \
    || { grep -v '^\s' "$log" | tail -5 >&2; echo "isa-report.sh: the build failed" >&2; exit 1; }
device=$(sed -n 's/^=== wgpu-conv-isa device=//p' "$log" | head -1)
[ "$json" = 1 ] || echo "device: $device, $(basename "$icd"), family $family"
if [ "$json" = 1 ]; then
    python3 scripts/isa_parse.py --json < "$log"
else
    python3 scripts/isa_parse.py < "$log"
fi
if [ "$check" = 1 ]; then
    python3 - "$log" <<'PY'
import sys
sys.path.insert(0, "scripts")
import isa_parse
CORES = ("conv2d_core", "conv2d_weight_grad_core")
rows = [r for r in isa_parse.report(open(sys.argv[1]).read()) if r["kernel"] in CORES]
bad = [r for r in rows if r["loop_instructions_per_fma"] is None
       or r["loop_instructions_per_fma"] > 2.0 or r["spills"] > 0 or r["scratch_bytes"] > 0]
if not rows:
    sys.exit("isa-report.sh --check: no core pipeline was built")
for r in bad:
    print(f"isa-report.sh --check: {r['kernel']} {r['shape']} {r['op']}: "
          f"{r['loop_instructions_per_fma']} instructions per FMA (<= 2.0), "
          f"{r['spills']} spills, {r['scratch_bytes']} scratch bytes (0)", file=sys.stderr)
if bad:
    sys.exit(1)
print(f"isa-report.sh --check: the GEMM core kernels within 2.0 instructions per FMA, no spills, "
      f"on {len(rows)} pipelines")
PY
fi
