#!/usr/bin/env bash
# What the Windows tests (tests/it/windows.rs) need, installed and built:
# mingw-w64, Wine, the Rust target x86_64-pc-windows-gnu, the release
# rowhook.exe, and the test-only ProcessPrng stand-in DLL next to a copy of
# it in target/wine-test/ (Wine 8's bcryptprimitives.dll lacks ProcessPrng,
# which Rust's standard library calls; the DLL is never shipped).
# Idempotent; run as root (apt-get). Source it and call ensure_windows, or
# run it. `--build` skips the installs (the tests use it: a missing tool
# fails them, naming this script).

ensure_windows() {
    install_windows_tools
    build_windows_test
}

install_windows_tools() {
    local missing=()
    command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
    command -v wine >/dev/null || missing+=(wine wine64)
    command -v zip >/dev/null || missing+=(zip)
    if ((${#missing[@]})); then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi
    rustup target list --installed | grep -qx x86_64-pc-windows-gnu ||
        rustup target add x86_64-pc-windows-gnu
}

build_windows_test() {
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    (cd "$root" && cargo build --release --locked --target x86_64-pc-windows-gnu)
    local test_dir="${CARGO_TARGET_DIR:-$root/target}/wine-test"
    mkdir -p "$test_dir"
    x86_64-w64-mingw32-gcc -shared -O2 -o "$test_dir/bcryptprimitives.dll" \
        "$root/tests/wine/bcryptprimitives.c" -ladvapi32
    cp "${CARGO_TARGET_DIR:-$root/target}/x86_64-pc-windows-gnu/release/rowhook.exe" "$test_dir/"
    echo "Windows test setup ready in $test_dir ($(wine --version))"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    if [[ "${1:-}" == "--build" ]]; then
        build_windows_test
    else
        ensure_windows
    fi
fi
