#!/usr/bin/env bash
# Hand-written mutants of the kernels and their planning (WGSL and Rust), each a small plausible
# bug: applied one at a time, the tests named beside it run, and the mutant must make them fail
# ("killed"). A mutant that survives is a gap in the tests (or an equivalent change, which the
# note beside it must explain). Needs a clean checkout of the files it edits; restores each file
# after its run. cargo-mutants covers the Rust side more widely (see the README).
# Usage: scripts/mutants.sh [name ...]   (all when none; WGPU_BACKEND defaults to vulkan)
set -uo pipefail
cd "$(dirname "$0")/.."
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
# naga's runtime checks on: a mutant that indexes out of bounds in a trusted kernel reads or
# writes a clamped element (a wrong result the tests see), not memory past the buffer
export WGPU_CONV_CHECKED=1

# name | file | text | replacement | cargo test arguments
MUTANTS=(
  "gemm_reach_ignores_dilation|src/kernels/uniforms.rs|let q_max = (g.kw - 1) * g.dilation.w / s;|let q_max = (g.kw - 1) / s;|--test forward every_case"
  "pad_copies_skips_copy_2|shaders/conv2d_pad_copies.wgsl|if wanted > 3u {|if wanted > 4u {|--test forward stride_phase"
  "planes_weight_grad_row_4|shaders/conv2d_weight_grad_planes.wgsl|add_row(4u, d, load_row(x0 + 4u * wq4), live);|add_row(4u, d, load_row(x0 + 3u * wq4), live);|--test gradients plane_kernel_size"
  "gemm_weight_grad_tail_mask|shaders/conv2d_weight_grad_gemm.wgsl|rem > 1u|rem > 2u|--test gradients infinity"
  "no_zero_region|src/planner/forward.rs|conv2d_pad_copies::copies(&mut plan, profile, &gp, io.x, tail)?|conv2d_pad_copies::copies(&mut plan, profile, &gp, io.x, false)?|--test forward every_case"
  "loop_budget_lifted|src/kernels/budget.rs|pub const LOOP_BUDGET: u64 = 32_768;|pub const LOOP_BUDGET: u64 = 1 << 40;|--test long_reductions"
  "reduce_without_tree|src/kernels/reduce_partials.rs|if slices > budget {|if slices > budget * 1024 {|--test long_reductions gradient"
  "forward_pieces_overwrite|shaders/conv2d_forward.wgsl|if p.accumulate != 0u {|if p.accumulate == 7u {|--test long_reductions forward"
  "input_grad_scan_restarts|shaders/conv2d_input_grad_tiled.wgsl|for (var kr = p.lo0; kr < p.hi0; kr++) {|for (var kr = 0u; kr < p.hi0; kr++) {|--test long_reductions gradient"
  "nest_ignores_fixed_loops|src/kernels/budget.rs|let mut total = fixed;|let mut total = 0;|--lib budget"
  "candidates_ignore_algorithms|src/planner/candidates.rs|c.algorithms.contains(&algorithm)) {|!c.algorithms.is_empty()) {|--test plans"
  "non_finite_weights_ignored|src/planner/input_grad.rs|if !weights_finite && a != Algorithm::Direct {|if weights_finite && a == Algorithm::Direct {|--test plans non_finite"
  "core_one_buffer|shaders/conv2d_core.wgsl|let nxt = 1u - cur;|let nxt = cur;|--test forward every_case"
  "core_k_tail_dropped|shaders/conv2d_core.wgsl|let steps = (CPG * KH * KW + TILE_K - 1u) / TILE_K;|let steps = (CPG * KH * KW) / TILE_K;|--test forward every_case"
  "core_channel_edge|shaders/conv2d_core.wgsl|    if m >= OCPG {|    if m > OCPG {|--test forward every_case"
  "core_bias_every_slice|shaders/conv2d_core.wgsl|p.has_bias != 0u && wid.z == 0u|p.has_bias != 0u|--test long_reductions forward"
  "pack_core_not_transposed|shaders/conv2d_pack_core.wgsl|v = weight[((grp * CPG + c) * OCPG + m) * taps + r];|v = weight[((grp * OCPG + m) * CPG + c) * taps + r];|--test gradients every_case"
  "pack_core_flip_rows_only|shaders/conv2d_pack_core.wgsl|r = taps - 1u - r;|r = (KH - 1u - r / KW) * KW + r % KW;|--test forward every_case"
  "wgrad_core_slices_overlap|shaders/conv2d_weight_grad_core.wgsl|let first = wid.z * SLICE_STEPS;|let first = wid.z * (SLICE_STEPS - 1u);|--test long_reductions gradient"
  "wgrad_core_one_buffer|shaders/conv2d_weight_grad_core.wgsl|let nxt = 1u - cur;|let nxt = cur;|--test gradients every_case"
  "wgrad_core_swizzle_unmodelled|shaders/conv2d_weight_grad_core.wgsl|const SWIZZLE: u32 = 7u;|const SWIZZLE: u32 = 3u;|--lib tile_sizes"
  "core_half_channels|shaders/conv2d_core.wgsl|let wide_a = m0 + TILE_M / 2u < OCPG;|let wide_a = m0 + TILE_M < OCPG;|--test gradients half_tiles"
  "core_half_pixels|shaders/conv2d_core.wgsl|let wide_b = pix0 + TILE_N / 2u < pixels;|let wide_b = pix0 + TILE_N < pixels;|--test gradients half_tiles"
  "wgrad_core_half_taps|shaders/conv2d_weight_grad_core.wgsl|let wide_b = n0 + TILE_N / 2u < taps;|let wide_b = n0 + TILE_N < taps;|--test gradients half_tiles"
  "core_a0_second_row|shaders/conv2d_core_common.wgsl|fma_row_a0(acc, cur, k + TILE_K / 2u, tx, ty);|fma_row_a0(acc, cur, k, tx, ty);|--test gradients half_tiles"
  "core_b0_second_row|shaders/conv2d_core_common.wgsl|fma_row_b0(acc, cur, k + TILE_K / 2u, tx, ty);|fma_row_b0(acc, cur, k, tx, ty);|--test gradients half_tiles"
  "core_a0b0_second_row|shaders/conv2d_core_common.wgsl|fma_row_a0b0(acc, cur, k + TILE_K / 2u, tx, ty);|fma_row_a0b0(acc, cur, k, tx, ty);|--test gradients half_tiles"
  "phase_first_offset|shaders/conv2d_input_grad_phase.wgsl|return (r + s - pad % s) % s;|return (r + pad % s) % s;|--test gradients by_phase"
  "phase_columns_from_0|shaders/conv2d_input_grad_phase.wgsl|for (var b = rx; b < KW; b += SW) {|for (var b = 0u; b < KW; b += SW) {|--test gradients by_phase"
  "phases_residue_unpadded|src/kernels/phases.rs|let r = (first + pad) % s;|let r = first % s;|--test gradients through_the_core"
  "phases_pad_without_e|src/kernels/phases.rs|let pad = (taps.saturating_sub(1) * dil + e) as isize - u as isize;|let pad = (taps.saturating_sub(1) * dil) as isize - u as isize;|--test gradients through_the_core"
  "core_place_columns_by_row_step|shaders/conv2d_core.wgsl|+ (r % OW) * OUT_SX;|+ (r % OW) * OUT_SY;|--test gradients through_the_core"
  "core_slice_base_of_the_phase|shaders/conv2d_core.wgsl|wid.z * N * OC * OUT_H * OUT_W|wid.z * N * OC * OH * OW|--test gradients through_the_core"
  "zero_phase_first_slice_only|src/kernels/conv2d_zero_phase.rs|let elements = slices * g.n * g.c * rows * cols;|let elements = g.n * g.c * rows * cols;|--test gradients through_the_core"
  "pack_core_row_step_one|shaders/conv2d_pack_core.wgsl|var a = A0 + (r / KW) * AS;|var a = A0 + r / KW;|--test gradients through_the_core"
  "pack_core_never_mirrors|shaders/conv2d_pack_core.wgsl|if MIRROR != 0u {|if MIRROR == 7u {|--test gradients through_the_core"
  "cpu_family_phases_at_2x1|src/planner/input_grad.rs|(i.algorithm == Algorithm::Gemm && s.h * s.w < 4)|(i.algorithm == Algorithm::Gemm && s.h * s.w < 2)|--test plans cpu_family"
  "cpu_family_splits_k|src/planner/input_grad.rs|if !cpu_family {|if cpu_family == cpu_family {|--test plans cpu_family"
  "core_skip_ignored|src/kernels/conv2d_core.rs|(\"PT\", at(g.pad_top, self.skip.h)?),|(\"PT\", at(g.pad_top, 0)?),|--test gradients through_the_core"
  "reduce_sliced_layout|shaders/reduce_partials.wgsl|base = first * p.slice_stride + e;|base = e * p.slice_stride + first;|--test forward --test gradients every_case"
)

want=("$@")
killed=0
survived=0
for m in "${MUTANTS[@]}"; do
    IFS='|' read -r name file from to args <<<"$m"
    if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " == *" $name "* ]]; then
        continue
    fi
    if ! git diff --quiet -- "$file"; then
        echo "mutants.sh: $file has uncommitted changes; commit or stash them first" >&2
        exit 2
    fi
    count=$(grep -cF -- "$from" "$file")
    if [ "$count" != 1 ]; then
        echo "mutants.sh: $name: the text occurs $count times in $file (want 1): update the list" >&2
        exit 2
    fi
    FROM="$from" TO="$to" perl -0pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/' "$file"
    # shellcheck disable=SC2086
    if cargo test --release -q --features cli $args >"/tmp/mutant-$name.log" 2>&1; then
        echo "SURVIVED  $name  ($file; cargo test $args; log /tmp/mutant-$name.log)"
        survived=$((survived + 1))
    else
        echo "killed    $name"
        killed=$((killed + 1))
    fi
    git checkout -q -- "$file"
done
echo "mutants: $killed killed, $survived survived"
[ "$survived" = 0 ]
