#!/usr/bin/env bash
# Checks that Cargo.toml's rust-version is true: no locked dependency (of any target or kind)
# declares a newer rust-version. Prints the offenders and exits 1 if one does.
set -euo pipefail
cd "$(dirname "$0")/.."
meta=$(mktemp)
trap 'rm -f "$meta"' EXIT
cargo metadata --locked --format-version 1 >"$meta"
python3 - "$meta" <<'PY'
import json
import sys


def version(v):
    return tuple(int(x) for x in (v.split(".") + ["0", "0"])[:3])


meta = json.load(open(sys.argv[1]))
members = set(meta["workspace_members"])
mine = next(p["rust_version"] for p in meta["packages"] if p["id"] in members)
deps = [p for p in meta["packages"] if p["id"] not in members and p.get("rust_version")]
newer = sorted((p["name"], p["version"], p["rust_version"]) for p in deps
               if version(p["rust_version"]) > version(mine))
if newer:
    print(f"msrv-check: rust-version = {mine} in Cargo.toml, but locked dependencies need newer:")
    for name, v, rv in newer:
        print(f"  {name} {v}: rust-version {rv}")
    sys.exit(1)
top = max(deps, key=lambda p: version(p["rust_version"]))
print(f"msrv-check: rust-version = {mine}; the newest any locked dependency needs is "
      f"{top['rust_version']} ({top['name']} {top['version']})")
PY
