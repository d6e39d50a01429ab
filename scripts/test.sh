#!/usr/bin/env bash
# Runs the whole test suite twice: on the Vulkan software adapter (Mesa's lavapipe, or whatever
# Vulkan adapter is present) and on the GL adapter (Mesa's llvmpipe). On a machine with no
# Vulkan driver it installs Mesa's software drivers first when it can (root and apt-get), and
# says so; otherwise it stops and says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

have_vulkan_icd() {
    ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json 2>/dev/null | grep -q .
}
have_egl_mesa() {
    ls /usr/lib/*/libEGL_mesa.so* 2>/dev/null | grep -q .
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
    echo "== cargo test --release with WGPU_BACKEND=$backend"
    WGPU_BACKEND=$backend cargo test --release "$@"
done
