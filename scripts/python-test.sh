#!/usr/bin/env bash
# The Python package as a user installs it: a fresh venv, `pip install ./python` (maturin builds
# the Rust core, in this checkout's target folder), then the pytest suite from outside the
# source tree, so that the installed package is what is tested. Needs python3 with venv and pip.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install -q --upgrade pip
"$py" -m pip install -q "$root/python[test]"
cd "$work"
"$py" -c 'import wgpu_conv, numpy; print("python-test: wgpu_conv on", wgpu_conv.default_context().describe(), "numpy", numpy.__version__)'
"$py" -m pytest -q -p no:cacheprovider "$root/python/tests"
