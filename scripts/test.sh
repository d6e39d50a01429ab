#!/usr/bin/env bash
# The test suite.
#
#   scripts/test.sh [CARGO TEST ARGS]        once, on the default adapter (Mesa's lavapipe on a
#                                            machine with no GPU), with the kernel family that
#                                            adapter gets (the test table runs every case with
#                                            the GPU family too); then every example. About
#                                            9 minutes from a fresh clone on 2 cores.
#   scripts/test.sh --all [CARGO TEST ARGS]  the full matrix: lavapipe (Vulkan) and llvmpipe (GL),
#                                            then, where Debian's bookworm-backports can be
#                                            reached, Mesa 25's lavapipe unpacked privately (a
#                                            second driver version: results that differ between
#                                            drivers are bugs to find), each with both kernel
#                                            families; lavapipe once more with the GPU family
#                                            and naga's runtime checks on every kernel
#                                            (WGPU_CONV_CHECKED=1); the examples on each driver; the package
#                                            as a user gets it (scripts/package-check.sh); the
#                                            Python package in a fresh venv and its pytest suite
#                                            (scripts/python-test.sh); the browser
#                                            (scripts/web.sh: wasm32, headless Chromium)
#
# On a machine with no Vulkan driver it installs Mesa's software drivers first when it can (root
# and apt-get), and says so; otherwise it stops and says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

all=0
if [ "${1:-}" = --all ]; then
    all=1
    shift
fi

have_vulkan_icd() {
    compgen -G "/usr/share/vulkan/icd.d/*.json" >/dev/null || compgen -G "/etc/vulkan/icd.d/*.json" >/dev/null
}
have_egl_mesa() {
    compgen -G "/usr/lib/*/libEGL_mesa.so*" >/dev/null
}

if ! have_vulkan_icd || ! have_egl_mesa; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "test.sh: no Vulkan or EGL driver found; installing Mesa's software adapters (mesa-vulkan-drivers, libegl-mesa0, libgl1-mesa-dri)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq mesa-vulkan-drivers libegl1 libegl-mesa0 libgl1-mesa-dri >/dev/null
    else
        echo "test.sh: no Vulkan/EGL driver found. Install a software adapter: sudo apt-get install mesa-vulkan-drivers libegl-mesa0 libgl1-mesa-dri" >&2
        exit 1
    fi
fi

# Every feature: the CLI's tests and the image and ndarray tests would otherwise be left out.
features=(--all-features)

# One pass of the suite under the environment given as NAME=VALUE arguments before `--`.
pass() {
    local envs=()
    while [ "$1" != -- ]; do
        envs+=("$1")
        shift
    done
    shift
    echo "== cargo test --release ${envs[*]}"
    env "${envs[@]}" cargo run --release -q "${features[@]}" -- info 2>/dev/null | grep '^chosen' || true
    env "${envs[@]}" cargo test --release "${features[@]}" "$@"
}

# Every example, each run to its end (each checks its own results).
examples() {
    for f in examples/*.rs; do
        name=$(basename "$f" .rs)
        echo "== example $name $*"
        env "$@" cargo run --release -q "${features[@]}" --example "$name" 2>&1 | grep -v XDG_RUNTIME_DIR
    done
}

if [ "$all" = 0 ]; then
    pass WGPU_CONV_KERNELS=auto -- "$@"
    examples WGPU_CONV_KERNELS=auto
    echo "== the suite passed once on the default adapter; scripts/test.sh --all runs the full matrix"
    exit 0
fi

for backend in vulkan gl; do
    for kernels in auto gpu; do
        pass WGPU_BACKEND=$backend WGPU_CONV_KERNELS=$kernels -- "$@"
    done
    examples WGPU_BACKEND=$backend
done
# the kernels the crate trusts (built without naga's runtime checks by default) with the checks
# back on: the same results
pass WGPU_BACKEND=vulkan WGPU_CONV_KERNELS=gpu WGPU_CONV_CHECKED=1 -- "$@"

if icd=$(scripts/mesa25.sh); then
    for kernels in auto gpu; do
        pass VK_DRIVER_FILES="$icd" WGPU_BACKEND=vulkan WGPU_CONV_KERNELS=$kernels -- "$@"
    done
    examples VK_DRIVER_FILES="$icd" WGPU_BACKEND=vulkan
else
    echo "== Mesa 25 lavapipe could not be fetched from bookworm-backports: that third pass did not run"
fi

scripts/package-check.sh
# Python: the package installed into a fresh venv, its pytest suite
scripts/python-test.sh
# The browser: the wasm32 build, tests/web.rs and the page's own checks in headless Chromium on
# its WebGPU (SwiftShader).
scripts/web.sh setup
scripts/web.sh test
