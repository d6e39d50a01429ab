#!/usr/bin/env bash
# The library in a browser (WebGPU): wasm32 builds with Debian's rustc-web, tests in headless
# Chromium, and the chapter as a web page.
#   scripts/web.sh setup       installs rustc-web, lld, chromium, chromedriver (apt) and
#                              wasm-bindgen-cli (cargo), and says what it did
#   scripts/web.sh build       builds the page into target/web/
#   scripts/web.sh test        the wasm-bindgen-test suite (tests/web.rs) in headless Chromium,
#                              then the built page, which must print its success line
#   scripts/web.sh serve [P]   serves target/web/ on 127.0.0.1:P (default 8000)
#   scripts/web.sh screenshot  loads the page headless, waits for its line, saves
#                              target/web/screenshot.png
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
WASM_BINDGEN_VERSION=0.2.130
# rustup's proxies come first on PATH and have no wasm32 std here: Debian's toolchain, by path
wasm_cargo() {
    RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
        CARGO_TARGET_DIR="$root/target/wasm" /usr/bin/cargo "$@" \
        --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort
}
bindgen_dir="$root/target/wasm-bindgen-cli"
export PATH="$bindgen_dir/bin:$PATH"
export CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}

setup() {
    export DEBIAN_FRONTEND=noninteractive
    local pkgs="rustc-web cargo-web rust-web-src lld-22 chromium chromium-driver"
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
}

build() {
    (cd web && wasm_cargo build --release --lib)
    rm -rf target/web && mkdir -p target/web
    wasm-bindgen --target web --no-typescript --out-dir target/web \
        target/wasm/wasm32-unknown-unknown/release/wgpu_conv_web.wasm
    cp web/index.html target/web/
    echo "web.sh build: target/web/ ($(du -sh target/web | cut -f1))"
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

page_check() {
    [ -f target/web/index.html ] || build
    local port=${1:-8765}
    start_server "$port"
    trap 'kill $server 2>/dev/null || true' RETURN
    python3 scripts/webdriver.py "http://127.0.0.1:$port/index.html" ${2:+--screenshot "$2"}
}

case "${1:-}" in
    setup) setup ;;
    build) build ;;
    test)
        CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
            WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-900} \
            wasm_cargo test --release --no-default-features --test web
        build
        page_check 8765
        ;;
    serve)
        [ -f target/web/index.html ] || build
        echo "web.sh serve: http://127.0.0.1:${2:-8000}/ (a browser with WebGPU; Ctrl-C stops)"
        exec python3 -m http.server "${2:-8000}" --bind 127.0.0.1 --directory target/web
        ;;
    screenshot) page_check 8766 target/web/screenshot.png ;;
    *)
        sed -n '2,12p' "$0"
        exit 2
        ;;
esac
