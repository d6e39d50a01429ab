#!/usr/bin/env python3
"""Reads the stderr of tools/isa (wgpu-conv-isa) run under RADV_DEBUG=shaders,shaderstats and
prints, per kernel and shape, the instructions per FMA of its hottest loop, its VGPRs and its
spills. Used by scripts/isa-report.sh; see there.

A loop is a backward branch to a block label of the disassembly and the instructions from that
label to the branch. The hottest loop is the outermost loop with the most FMA lanes per
iteration, each loop inside it counted as many times as it runs (its trip count read from its
counter's s_cmp bound and s_add step; where that cannot be read, no figure). Where a loop
branches, its hottest path takes the way with the most FMA lanes: the GEMM core runs one of
its FMA variants a step (the live halves of its tile), and the full tile's is the figure. FMA
lanes count v_fma_f32 / v_fmac_f32 / v_fmamk / v_fmaak as 1, v_pk_fma_f32 as 2 and a VOPD pair as one per
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


UNCOND = re.compile(r"^\s+s_branch\s+(BB\d+)")
END = re.compile(r"^\s+s_endpgm")


def analyse(lines):
    """The hottest loop of one disassembly (the lines after `disasm:`): of the outermost loops,
    the one whose hottest path (below) has the most FMA lanes. A loop's hottest path runs
    through its blocks from its head to its back edge, taking at each branch the way with the
    most FMA lanes (then the most instructions), each loop inside it counted as many times as it
    runs. Returns (instructions per FMA, FMA lanes, instructions) along that path per iteration,
    or None where there is no loop with FMAs or an inner loop's trip count cannot be read."""
    blocks = [[None, []]]  # [label, instructions], in order; the first has no label
    for line in lines:
        m = LABEL.match(line)
        if m:
            blocks.append([m.group(1), []])
        elif INSTR.match(line):
            blocks[-1][1].append(line)
    index = {b[0]: i for i, b in enumerate(blocks) if b[0]}

    def succ(i):
        ins = blocks[i][1]
        last = ins[-1] if ins else ""
        nxt = [i + 1] if i + 1 < len(blocks) else []
        m = UNCOND.match(last)
        if m:
            return [index[m.group(1)]] if m.group(1) in index else []
        if END.match(last):
            return []
        m = BRANCH.match(last)
        if m and m.group(1) in index:
            return [index[m.group(1)]] + nxt
        return nxt

    # a loop: a back edge from block e to block h <= e; its blocks h..e
    loops = sorted({(j, i) for i in range(len(blocks)) for j in succ(i) if j <= i})

    def inside(inner, outer):
        return outer[0] <= inner[0] and inner[1] <= outer[1] and inner != outer

    def hot(l):
        """(instructions, FMA lanes) of loop l's hottest path, or None."""
        kids = [k for k in loops if inside(k, l)]
        kids = [k for k in kids if not any(inside(k, o) for o in kids)]
        node = {}  # block -> its node: itself, or the head of the inner loop that holds it
        weight = {}
        for i in range(l[0], l[1] + 1):
            node[i] = i
        for k in kids:
            span = [x for i in range(k[0], k[1] + 1) for x in blocks[i][1]]
            n, sub = trips(span), hot(k)
            if sub is None or (n is None and sub[1]):
                return None
            for i in range(k[0], k[1] + 1):
                node[i] = k[0]
            weight[k[0]] = (sub[0] * (n or 1), sub[1] * (n or 1))
        for i in range(l[0], l[1] + 1):
            if node[i] == i and i not in weight:
                ins = blocks[i][1]
                weight[i] = (len(ins), sum(fma_lanes(x) for x in ins))
        # forward edges between nodes (the back edges to l's head and the exits left out)
        edges = {}
        for i in range(l[0], l[1] + 1):
            for j in succ(i):
                if l[0] < j <= l[1] and node[j] != node[i]:
                    edges.setdefault(node[i], set()).add(node[j])
        # the path of most FMA lanes (then instructions) from the head to the back edge, in
        # block order (forward edges only: a DAG)
        best = {node[l[0]]: weight[node[l[0]]]}
        for i in sorted(set(node.values())):
            if i not in best:
                continue
            for j in edges.get(i, ()):
                w = (best[i][0] + weight[j][0], best[i][1] + weight[j][1])
                if j not in best or (w[1], w[0]) > (best[j][1], best[j][0]):
                    best[j] = w
        return best.get(node[l[1]])

    best = None
    for l in loops:
        if any(inside(l, o) for o in loops):
            continue
        w = hot(l)
        if w is None:
            if any(fma_lanes(x) for i in range(l[0], l[1] + 1) for x in blocks[i][1]):
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
