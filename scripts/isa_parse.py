#!/usr/bin/env python3
"""Reads the stderr of tools/isa (wgpu-conv-isa) run under RADV_DEBUG=shaders,shaderstats and
prints, per kernel and shape, the instructions per FMA of its hottest loop, its VGPRs and its
spills. Used by scripts/isa-report.sh; see there.

The hottest loop is the loop (a backward branch to a block label of the disassembly, and the
instructions from that label to the branch) with the most FMA lanes. FMA lanes count
v_fma_f32 / v_fmac_f32 / v_fmamk / v_fmaak as 1, v_pk_fma_f32 as 2 and a VOPD pair as one per
FMA half. Loops inside it are counted once (the core kernels have none)."""
import json
import re
import sys

MARK = re.compile(r"^=== wgpu-conv-isa kernel=(\S+) shape=(\S+) op=(\S+) trusted=(\S+)")
LABEL = re.compile(r"^(BB\d+):")
BRANCH = re.compile(r"^\s+s_c?branch\S*\s+(BB\d+)")
INSTR = re.compile(r"^\s+([a-z][a-z0-9_]*)")
STAT = re.compile(r"^(VGPRs|Spilled VGPRs|Spilled SGPRs|Scratch size|Instructions): (\d+)")


def fma_lanes(line):
    m = INSTR.match(line)
    if not m:
        return 0
    op = m.group(1)
    lanes = 0
    if op.startswith("v_pk_fma_f32"):
        lanes = 2
    elif op.startswith(("v_fma_f32", "v_fmac_f32", "v_fmamk_f32", "v_fmaak_f32")):
        lanes = 1
    if op.startswith("v_dual_"):
        lanes = line.count("fmac_f32") + line.count("fmamk_f32") + line.count("fmaak_f32")
    return lanes


def analyse(lines):
    """(instructions per FMA of the hottest loop, its FMA lanes, its instructions) of one
    disassembly (the lines after `disasm:`)."""
    labels = {}
    body = []  # (index, line) of instructions and labels
    for line in lines:
        m = LABEL.match(line)
        if m:
            labels[m.group(1)] = len(body)
            body.append(("label", line))
            continue
        if INSTR.match(line):
            body.append(("instr", line))
    best = None
    for i, (kind, line) in enumerate(body):
        if kind != "instr":
            continue
        m = BRANCH.match(line)
        if not m or m.group(1) not in labels or labels[m.group(1)] > i:
            continue
        start = labels[m.group(1)]
        span = [l for k, l in body[start : i + 1] if k == "instr"]
        fmas = sum(fma_lanes(l) for l in span)
        if fmas and (best is None or fmas > best[1]):
            best = (len(span) / fmas, fmas, len(span))
    return best


def sections(text):
    cur = None
    for line in text.splitlines():
        m = MARK.match(line)
        if m or line.startswith("=== wgpu-conv-isa end"):
            if cur:
                yield cur
            cur = None
            if m:
                cur = {"kernel": m.group(1), "shape": m.group(2), "op": m.group(3),
                       "trusted": m.group(4) == "true", "lines": []}
            continue
        if cur is not None:
            cur["lines"].append(line)
    if cur:
        yield cur


def report(text):
    rows = []
    for s in sections(text):
        lines = s.pop("lines")
        # the last disassembly of the section is the final one (after register allocation)
        starts = [i for i, l in enumerate(lines) if l.strip() == "disasm:"]
        stats = {}
        for l in lines:
            m = STAT.match(l)
            if m:
                stats[m.group(1)] = int(m.group(2))
        loop = analyse(lines[starts[-1] + 1:]) if starts else None
        s.update({
            "loop_instructions_per_fma": round(loop[0], 3) if loop else None,
            "loop_fmas": loop[1] if loop else 0,
            "loop_instructions": loop[2] if loop else 0,
            "vgprs": stats.get("VGPRs"),
            "spills": stats.get("Spilled VGPRs", 0) + stats.get("Spilled SGPRs", 0),
            "scratch_bytes": stats.get("Scratch size", 0),
        })
        rows.append(s)
    return rows


def main():
    as_json = "--json" in sys.argv
    rows = report(sys.stdin.read())
    if not rows:
        sys.exit("isa_parse.py: no pipelines in the input (was RADV_DEBUG=shaders,shaderstats set?)")
    if as_json:
        for r in rows:
            print(json.dumps(r))
        return
    print(f"{'kernel':28} {'shape':11} {'op':12} {'checks':7} {'instr/FMA':>9} {'FMAs':>5} {'VGPRs':>5} {'spills':>6}")
    for r in rows:
        ipf = "-" if r["loop_instructions_per_fma"] is None else f"{r['loop_instructions_per_fma']:.2f}"
        print(f"{r['kernel']:28} {r['shape']:11} {r['op']:12} {'off' if r['trusted'] else 'on':7} "
              f"{ipf:>9} {r['loop_fmas']:>5} {r['vgprs']!s:>5} {r['spills']:>6}")


if __name__ == "__main__":
    main()
