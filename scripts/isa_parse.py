#!/usr/bin/env python3
"""Reads the stderr of tools/isa (wgpu-conv-isa) run under RADV_DEBUG=shaders,shaderstats and
prints, per kernel and shape, the instructions per FMA of its hottest loop, its VGPRs and its
spills. Used by scripts/isa-report.sh; see there.

A loop is a backward branch to a block label of the disassembly and the instructions from that
label to the branch. The hottest loop is the outermost loop with the most FMA lanes per
iteration, each loop inside it counted as many times as it runs (its trip count read from its
counter's s_cmp bound and s_add step; where that cannot be read, no figure). FMA lanes count
v_fma_f32 / v_fmac_f32 / v_fmamk / v_fmaak as 1, v_pk_fma_f32 as 2 and a VOPD pair as one per
FMA half."""
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


CMP = re.compile(r"^\s+s_cmpk?_(?:ge|gt|lg|eq|lt|le)_[ui]32\s+(s\d+),\s+(0x[0-9a-f]+|\d+)")
ADD = re.compile(r"^\s+s_add_[ui]32\s+(s\d+),\s+(s\d+),\s+(0x[0-9a-f]+|\d+)")


def trips(span):
    """The trip count of a loop whose counter starts at 0: an s_cmp of a register with an
    immediate (the bound) and an s_add of that register to itself with an immediate (the step)
    in its instructions; None when they are not there."""
    bounds = {}
    for l in span:
        m = CMP.match(l)
        if m:
            bounds[m.group(1)] = int(m.group(2), 0)
    for l in span:
        m = ADD.match(l)
        if m and m.group(1) == m.group(2) and m.group(1) in bounds:
            step = int(m.group(3), 0)
            if step > 0:
                return -(-bounds[m.group(1)] // step)
    return None


def analyse(lines):
    """The hottest loop of one disassembly (the lines after `disasm:`): the outermost loop with
    the most FMA lanes per iteration, inner loops weighted by their trip counts. Returns
    (instructions per FMA, FMA lanes, instructions) per iteration, or None where there is no
    loop with FMAs or an inner loop's trip count cannot be read."""
    labels = {}
    body = []  # instructions and labels, in order
    for line in lines:
        m = LABEL.match(line)
        if m:
            labels[m.group(1)] = len(body)
            body.append(("label", line))
            continue
        if INSTR.match(line):
            body.append(("instr", line))
    loops = []
    for i, (kind, line) in enumerate(body):
        m = BRANCH.match(line) if kind == "instr" else None
        if m and m.group(1) in labels and labels[m.group(1)] <= i:
            loops.append((labels[m.group(1)], i))
    loops = sorted(set(loops))

    def inside(inner, outer):
        return outer[0] <= inner[0] and inner[1] <= outer[1] and inner != outer

    def children(l):
        kids = [k for k in loops if inside(k, l)]
        return [k for k in kids if not any(inside(k, o) for o in kids)]

    def weigh(l):
        kids = children(l)
        covered = set()
        for k in kids:
            covered.update(range(k[0], k[1] + 1))
        direct = [body[j][1] for j in range(l[0], l[1] + 1)
                  if body[j][0] == "instr" and j not in covered]
        instrs, fmas = len(direct), sum(fma_lanes(x) for x in direct)
        for k in kids:
            span = [body[j][1] for j in range(k[0], k[1] + 1) if body[j][0] == "instr"]
            n = trips(span)
            sub = weigh(k)
            if sub is None or (n is None and sub[1]):
                return None
            instrs += sub[0] * (n or 1)
            fmas += sub[1] * (n or 1)
        return instrs, fmas

    best = None
    for l in loops:
        if any(inside(l, o) for o in loops):
            continue
        w = weigh(l)
        if w is None:
            if any(fma_lanes(body[j][1]) for j in range(l[0], l[1] + 1) if body[j][0] == "instr"):
                return None
            continue
        instrs, fmas = w
        if fmas and (best is None or fmas > best[1]):
            best = (instrs / fmas, fmas, instrs)
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
