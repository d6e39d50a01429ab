#!/usr/bin/env bash
# The package as a user gets it: `cargo package`, the .crate unpacked, added with
# `cargo add --path` to a fresh project that runs the README's first example; its dependency
# tree must hold none of the CLI's crates. Then `cargo install` of the CLI from the unpacked
# package, and its walkthrough. Builds share this checkout's target folder and lockfile, so
# only what differs is compiled.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CARGO_TARGET_DIR="$root/target"

version=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "wgpu-conv"))')
cargo package --quiet --allow-dirty --no-verify
tar xzf "target/package/wgpu-conv-$version.crate" -C "$work"
pkg="$work/wgpu-conv-$version"
echo "package-check: unpacked $(find "$pkg" -type f | wc -l) files into $pkg"

cargo new --quiet --vcs none "$work/user"
cd "$work/user"
cargo add --quiet --path "$pkg"
cargo add --quiet pollster
# the locked versions this checkout is tested with
cp "$root/Cargo.lock" .
# the README's first Rust example, as the user's main.rs
python3 - "$root/README.md" > src/main.rs <<'PY'
import re, sys
text = open(sys.argv[1]).read()
block = re.search(r"```rust\n(.*?)```", text, re.S)
if not block:
    sys.exit("package-check: the README has no ```rust example")
print(block.group(1))
PY
if cargo tree -e normal --prefix none | grep -E '^(clap|image|plotters|npyz|indicatif|anyhow|tempfile) '; then
    echo "package-check: a library user gets the CLI's dependencies above" >&2
    exit 1
fi
echo "package-check: $(cargo tree -e normal --prefix none | sort -u | wc -l) crates for a library user, none of the CLI's"
cargo run --quiet --release
echo "package-check: the README's first example ran in a fresh project"

cargo install --quiet --path "$pkg" --features cli --root "$work/bin" --locked
"$work/bin/bin/wgpu-conv" walkthrough | tail -n 1
echo "package-check: cargo install --features cli and its walkthrough work from the package"
