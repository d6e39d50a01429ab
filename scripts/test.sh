#!/usr/bin/env bash
# Runs the whole test suite on the Vulkan software adapter (Mesa's lavapipe, or whatever Vulkan
# adapter is present) and on the GL adapter (Mesa's llvmpipe); then, where Debian's
# bookworm-backports can be reached, once more on Mesa 25's lavapipe, unpacked privately (a
# second driver version: results that differ between drivers are bugs to find). Each driver runs
# the suite twice: with the kernel family its device type gets (the CPU family on software
# adapters) and with the GPU family forced (WGPU_CONV_KERNELS=gpu). On a machine
# with no Vulkan driver it installs Mesa's software drivers first when it can (root and
# apt-get), and says so; otherwise it stops and says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

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

for backend in vulkan gl; do
    for kernels in auto gpu; do
        echo "== cargo test --release with WGPU_BACKEND=$backend WGPU_CONV_KERNELS=$kernels"
        WGPU_BACKEND=$backend cargo run --release -q --features cli -- info 2>/dev/null | grep '^chosen' || true
        WGPU_CONV_KERNELS=$kernels WGPU_BACKEND=$backend cargo test --release --features cli "$@"
    done
done

if icd=$(scripts/mesa25.sh); then
    for kernels in auto gpu; do
        echo "== cargo test --release with WGPU_BACKEND=vulkan WGPU_CONV_KERNELS=$kernels on Mesa 25 lavapipe (VK_DRIVER_FILES=$icd)"
        VK_DRIVER_FILES="$icd" WGPU_BACKEND=vulkan cargo run --release -q --features cli -- info 2>/dev/null | grep '^chosen' || true
        VK_DRIVER_FILES="$icd" WGPU_CONV_KERNELS=$kernels WGPU_BACKEND=vulkan cargo test --release --features cli "$@"
    done
else
    echo "== Mesa 25 lavapipe could not be fetched from bookworm-backports: that third pass did not run"
fi
