#!/usr/bin/env bash
# wgpu-conv against burn (its wgpu backend, WGSL; tools/peer-burn) on the same adapter,
# alternating in the same minutes: per round, our `bench` (the family given, Auto by default),
# then burn's timing of the same shapes and ops. Prints one row per round, shape and op, with
# our GFLOP/s (GPU time per op in a batch, and wall time per call), burn's (wall time per op in
# a batch of 8) and the ratios, then the medians over the rounds.
#
#   scripts/peer-bench.sh [--rounds R] [--shapes a,b] [--ops forward,weight_grad] [--family F]
#                         [--runs N]
#
# The driver is the environment's: WGPU_BACKEND (ours) and WGPU_BACKEND / VK_DRIVER_FILES /
# VK_ICD_FILENAMES (both; for Mesa 25's lavapipe, VK_DRIVER_FILES=$(scripts/mesa25.sh)).
# burn builds once into target/peer-burn (several minutes the first time).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=2 shapes=resnet_1x1 ops=forward,weight_grad family=auto runs=5
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds="$2"; shift ;;
        --shapes) shapes="$2"; shift ;;
        --ops) ops="$2"; shift ;;
        --family) family="$2"; shift ;;
        --runs) runs="$2"; shift ;;
        *) echo "peer-bench.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

cargo build --release --quiet --features cli
(cd tools/peer-burn && CARGO_TARGET_DIR="$PWD/../../target/peer-burn" cargo build --release --quiet)
burn=target/peer-burn/release/wgpu-conv-peer-burn
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for r in $(seq 1 "$rounds"); do
    target/release/wgpu-conv bench --json --shapes "$shapes" --ops "$ops" --runs "$runs" \
        --family "$family" 2>/dev/null | sed "s/^{/{\"round\":$r,\"who\":\"ours\",/" >> "$log"
    "$burn" "$shapes" "$ops" "$runs" 2>/dev/null | sed "s/^{/{\"round\":$r,\"who\":\"burn\",/" >> "$log"
done
python3 - "$log" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ours = {(r["round"], r["shape"], r["op"]): r for r in rows if r["who"] == "ours"}
burn = {(r["round"], r["shape"], r["op"]): r for r in rows if r["who"] == "burn"}
adapter = next((f"{r['adapter']} ({r['driver']})" for r in ours.values()), "?")
print(f"adapter: {adapter}")
print(f"{'round':>5} {'shape':11} {'op':12} {'ours GPU':>9} {'ours wall':>9} {'burn':>7} "
      f"{'GPU/burn':>8} {'wall/burn':>9}  kernels")
per = {}
for key in sorted(ours):
    o, b = ours[key], burn.get(key)
    if b is None:
        continue
    g, w, bb = o["gflops"], o["wall_gflops"], b["gflops"]
    per.setdefault(key[1:], []).append((g, w, bb))
    print(f"{key[0]:>5} {key[1]:11} {key[2]:12} {g:9.2f} {w:9.2f} {bb:7.2f} {g / bb:8.2f} "
          f"{w / bb:9.2f}  {'+'.join(o['kernels'])} ({o['family']})")
print("medians over the rounds (GFLOP/s):")
for (shape, op), v in sorted(per.items()):
    g, w, b = (statistics.median(x[i] for x in v) for i in range(3))
    print(f"      {shape:11} {op:12} {g:9.2f} {w:9.2f} {b:7.2f} {g / b:8.2f} {w / b:9.2f}")
PY
