#!/usr/bin/env bash
# The library in a browser (WebGPU): the JavaScript/TypeScript package and the chapter's page,
# built for wasm32 and tested in headless Chromium.
#   scripts/web.sh setup       rustup's wasm32-unknown-unknown target (or, where rustup cannot
#                              add it, Debian's rustc-web), chromium, wasm-bindgen-cli, and
#                              playwright-core (npm) for the page tests; says what it did
#   scripts/web.sh build       builds the package and the page into target/web/
#   scripts/web.sh test        the wasm-bindgen-test suite (tests/web.rs) in headless Chromium,
#                              then the page and the package driven by Playwright (web/tests/)
#   scripts/web.sh lint        rustfmt and clippy (warnings denied) on the wasm crate web/
#   scripts/web.sh serve [P]   serves target/web/ on 127.0.0.1:P (default 8000)
#   scripts/web.sh screenshot  loads the page headless, uploads docs/cups.jpg, and saves
#                              target/web/screenshot.png
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
WASM_BINDGEN_VERSION=0.2.130

# rustup's wasm32 target where it is installed; else Debian's rustc-web, by path (rustup's
# proxies come first on PATH), which builds std from source. WEB_TOOLCHAIN=debian picks the
# second where both are there.
rustup_wasm() {
    [ "${WEB_TOOLCHAIN:-}" != debian ] && command -v rustup >/dev/null &&
        rustup target list --installed 2>/dev/null |
        grep -qx wasm32-unknown-unknown
}
# wasm_cargo SUBCOMMAND ARGS...: cargo for wasm32 (the target right after the subcommand, so
# that arguments after `--` stay the tool's)
wasm_cargo() {
    local sub=$1
    shift
    if rustup_wasm; then
        CARGO_TARGET_DIR="$root/target/wasm" cargo "$sub" --target wasm32-unknown-unknown "$@"
    else
        RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
            CARGO_TARGET_DIR="$root/target/wasm" /usr/bin/cargo "$sub" \
            --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort "$@"
    fi
}
bindgen_dir="$root/target/wasm-bindgen-cli"
export PATH="$bindgen_dir/bin:$PATH"
export CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}

setup() {
    export DEBIAN_FRONTEND=noninteractive
    local pkgs="chromium chromium-driver"
    if rustup_wasm || rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
        echo "web.sh setup: rustup's wasm32-unknown-unknown target is installed"
    else
        pkgs="$pkgs rustc-web cargo-web rust-web-src lld-22"
        echo "web.sh setup: rustup cannot add wasm32-unknown-unknown here; Debian's rustc-web instead"
    fi
    if ! dpkg -s $pkgs >/dev/null 2>&1; then
        apt-get update -qq
        apt-get install -y -qq $pkgs >/dev/null
        echo "web.sh setup: installed $pkgs (apt)"
    else
        echo "web.sh setup: $pkgs already installed"
    fi
    if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
        # not --locked: one of its locked dependency versions is missing from the registry here
        cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$bindgen_dir"
        echo "web.sh setup: installed wasm-bindgen-cli $WASM_BINDGEN_VERSION into $bindgen_dir"
    else
        echo "web.sh setup: wasm-bindgen-cli $WASM_BINDGEN_VERSION already installed"
    fi
    (cd web/tests && npm ci --no-audit --no-fund --silent)
    echo "web.sh setup: playwright-core $(node -p "require('./web/tests/node_modules/playwright-core/package.json').version") in web/tests/node_modules"
}

build() {
    (cd web && wasm_cargo build --release --lib)
    rm -rf target/web && mkdir -p target/web
    wasm-bindgen --target web --out-name wgpu_conv --out-dir target/web \
        target/wasm/wasm32-unknown-unknown/release/wgpu_conv_web.wasm
    cp web/index.html web/test.html web/package.json web/README.md target/web/
    echo "web.sh build: target/web/ ($(du -sh target/web | cut -f1)), $(rustup_wasm && echo "rustup's wasm32 target" || echo "Debian's rustc-web")"
}

# Serves target/web/ on 127.0.0.1:$1 in the background; its PID in $server.
start_server() {
    python3 -m http.server "$1" --bind 127.0.0.1 --directory target/web >/dev/null 2>&1 &
    server=$!
    for _ in $(seq 50); do
        python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$1/')" \
            2>/dev/null && return 0
        sleep 0.1
    done
    echo "web.sh: the server on port $1 did not start" >&2
    return 1
}

# The Playwright tests of web/tests/ against target/web/ served on port $1.
page_tests() {
    [ -f target/web/index.html ] || build
    local port=${1:-8765}
    start_server "$port"
    trap 'kill $server 2>/dev/null || true' RETURN
    # the CLI whose answers the page must give
    cargo build -q --release --features cli --bin wgpu-conv
    WEB_URL="http://127.0.0.1:$port" WGPU_CONV_BIN="$root/target/release/wgpu-conv" \
        node --test --test-concurrency=1 web/tests/
}

case "${1:-}" in
    setup) setup ;;
    build) build ;;
    lint)
        (cd web && cargo fmt --check && wasm_cargo clippy -- -D warnings)
        ;;
    test)
        CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
            WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-900} \
            wasm_cargo test --release --no-default-features --test web
        build
        page_tests 8765
        ;;
    serve)
        [ -f target/web/index.html ] || build
        echo "web.sh serve: http://127.0.0.1:${2:-8000}/ (a browser with WebGPU; Ctrl-C stops)"
        exec python3 -m http.server "${2:-8000}" --bind 127.0.0.1 --directory target/web
        ;;
    screenshot)
        [ -f target/web/index.html ] || build
        start_server 8766
        trap 'kill $server 2>/dev/null || true' EXIT
        WEB_URL="http://127.0.0.1:8766" node web/tests/screenshot.mjs target/web/screenshot.png
        ;;
    *)
        sed -n '2,12p' "$0"
        exit 2
        ;;
esac
