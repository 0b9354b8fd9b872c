#!/usr/bin/env bash
# Build a fully static cg-test: the binary for `FROM scratch` / alpine images, initramfs
# images and the VM lane (scripts/vm-test.sh).
#
# It uses the musl target (static-pie, no libc on the target machine needed), adds that
# target with rustup when it is missing, checks that the result really has no dynamic
# loader and no shared-library dependency, and prints each binary's path and size.
#
# Usage: scripts/build-static.sh [--with-fixture]
#   --with-fixture  also build cg-test-fixture, the misbehaving test program the VM lane
#                   runs inside the guest (a test tool, never shipped)
#
# Output: target/x86_64-unknown-linux-musl/release/cg-test (or under $CARGO_TARGET_DIR).
# The last line of stdout is the path of the static cg-test.
set -euo pipefail

TARGET=x86_64-unknown-linux-musl

die() {
    echo "build-static: error: $*" >&2
    exit 1
}

bins=(cg-test)
for arg in "$@"; do
    case "$arg" in
        --with-fixture) bins+=(cg-test-fixture) ;;
        -h | --help)
            sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument: $arg (see --help)" ;;
    esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs)"
command -v rustup >/dev/null || die "rustup not found: it is needed to add the $TARGET target"

if ! rustup target list --installed | grep -qx "$TARGET"; then
    echo "build-static: adding the Rust target $TARGET" >&2
    rustup target add "$TARGET" >&2 ||
        die "'rustup target add $TARGET' failed (no network to static.rust-lang.org?)"
fi

# --no-default-features: no completion and man page generators (the `docs` feature,
# ~180 KB) in the binary meant for container entrypoints.
cargo_args=(build --release --locked --no-default-features --target "$TARGET")
for b in "${bins[@]}"; do cargo_args+=(--bin "$b"); done
echo "build-static: cargo ${cargo_args[*]}" >&2
cargo "${cargo_args[@]}" >&2 || die "cargo build for $TARGET failed"

out_dir="${CARGO_TARGET_DIR:-$repo/target}/$TARGET/release"

# A static binary has no PT_INTERP (no dynamic loader) and no DT_NEEDED entry.
check_static() {
    local f=$1
    if command -v readelf >/dev/null; then
        if readelf -lW "$f" | grep -q 'INTERP'; then
            die "$f asks for a dynamic loader (PT_INTERP): not static"
        fi
        if readelf -dW "$f" | grep -q '(NEEDED)'; then
            die "$f needs shared libraries: $(readelf -dW "$f" | grep '(NEEDED)' | tr -s ' ')"
        fi
    elif command -v file >/dev/null; then
        file -b "$f" | grep -q 'static' || die "$f is not statically linked: $(file -b "$f")"
    else
        die "neither readelf nor file is installed: cannot check that $f is static"
    fi
}

for b in "${bins[@]}"; do
    f="$out_dir/$b"
    [[ -x "$f" ]] || die "cargo finished but $f is missing"
    check_static "$f"
    size=$(stat -c %s "$f")
    printf 'build-static: %s: static, %d bytes (%d KiB)\n' "$f" "$size" $((size / 1024))
done
echo "$out_dir/cg-test"
