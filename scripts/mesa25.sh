#!/usr/bin/env bash
# Fetches Mesa 25's lavapipe from Debian bookworm-backports (on the mirror the machine's apt
# configuration names for bookworm) and unpacks it privately under
# target/mesa25 (the system's drivers are not touched). Prints the ICD file to pass as
# VK_DRIVER_FILES. Exits non-zero, with a message, when it cannot be had (no apt, no network).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$PWD/target/mesa25"
icd="$dir/lvp_icd.json"
if [ -f "$icd" ] && [ -f "$dir/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so" ]; then
    echo "$icd"
    exit 0
fi
command -v apt-get >/dev/null || { echo "mesa25.sh: apt-get not found" >&2; exit 1; }
mkdir -p "$dir/lists/partial" "$dir/cache/partial"
# the Debian archive this machine's own apt configuration uses for bookworm (whatever mirror
# that is), with the suite changed to bookworm-backports
mirror=$(apt-cache policy 2>/dev/null | awk '$3 == "bookworm/main" {print $2; exit}')
[ -n "$mirror" ] || { echo "mesa25.sh: no Debian bookworm source in this machine's apt configuration" >&2; exit 1; }
echo "deb $mirror bookworm-backports main" > "$dir/sources.list"
opts=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o "Dir::Etc::sourceparts=-"
      -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache::archives=$dir/cache")
apt-get "${opts[@]}" update -qq >&2
version=$(apt-cache "${opts[@]}" madison mesa-vulkan-drivers | awk '/bookworm-backports/ {print $3; exit}')
[ -n "$version" ] || { echo "mesa25.sh: no mesa-vulkan-drivers in bookworm-backports" >&2; exit 1; }
(cd "$dir" && apt-get "${opts[@]}" download "mesa-vulkan-drivers=$version" >&2)
dpkg -x "$dir"/mesa-vulkan-drivers_*.deb "$dir/root"
so="$dir/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so"
[ -f "$so" ] || { echo "mesa25.sh: libvulkan_lvp.so not in the package" >&2; exit 1; }
sed "s|\"library_path\": \"[^\"]*\"|\"library_path\": \"$so\"|" \
    "$dir/root/usr/share/vulkan/icd.d/lvp_icd.json" > "$icd"
echo "$icd"
