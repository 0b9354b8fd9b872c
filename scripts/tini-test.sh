#!/usr/bin/env bash
# tini's own test suite against cg-test: the six tests of tini's test/run_inner_tests.py
# (exit codes, reaping, signals, process group, signal configuration, parent death),
# with tini's own test programs and only the init's invocation adapted
# (tests/tini/run.py says how, and why two tests need --pid-ns or no watchdog).
#
#   1. gets tini's source with its test/ directory from Debian's `tini` source package
#      (apt-get source, with a deb-src list of its own in the work directory, so the
#      machine's apt configuration is untouched); cached in target/tini-test/. tini is
#      MIT-licensed (Copyright (c) 2015 Thomas Orozco); its files are never copied into
#      this repository;
#   2. a Python venv in a temp directory with psutil (PyPI), which tini's tests import;
#   3. compiles tini's test/sigconf/sigconf-test.c with cc;
#   4. builds cg-test (cargo build) and runs tests/tini/run.py in a cgroup of its own
#      (when cgroup2 is writable), which must hold no cg-test leaf afterwards.
# Prints PASS/FAIL per test and `N passed, N failed`; exits non-zero on any failure.
# Needs root for the cgroup and apt; python3 with venv, cc.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
say() { echo "tini-test: $*"; }
die() {
    echo "tini-test: error: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

command -v python3 >/dev/null || die "python3 not found"
command -v cc >/dev/null || die "cc not found (apt-get install gcc)"

W=$(mktemp -d /tmp/cgt-tini.XXXXXX) || die "mktemp failed"
own_cg=""
cleanup() {
    if [[ -n $own_cg && -d $own_cg ]]; then
        # Back to where we came from, then remove ours (empty unless a leaf leaked, which
        # the check below reports).
        echo $$ >"$own_cg/../cgroup.procs" 2>/dev/null
        rmdir "$own_cg" 2>/dev/null
    fi
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- 1. tini's source --------------------------------------------------------------
cache=${CARGO_TARGET_DIR:-$repo/target}/tini-test
mkdir -p "$cache"
src=$(find "$cache" -mindepth 1 -maxdepth 1 -type d -name 'tini-[0-9]*' | head -n 1)
if [[ -z $src || ! -d $src/test ]]; then
    say "fetching tini's source (apt-get source tini, Debian's deb-src)"
    apt=$W/apt
    mkdir -p "$apt/lists/partial" "$apt/dl"
    chmod 777 "$apt/dl"
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    cat >"$apt/src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    opts=(-o "Dir::Etc::SourceParts=/dev/null" -o "Dir::Etc::sourcelist=$apt/src.sources"
        -o "Dir::State::Lists=$apt/lists" -o "Debug::NoLocking=1")
    apt-get "${opts[@]}" update -qq </dev/null >"$W/apt.log" 2>&1 ||
        { cat "$W/apt.log" >&2; die "apt-get update of the deb-src list failed"; }
    (cd "$apt/dl" && apt-get "${opts[@]}" source --download-only tini </dev/null >>"$W/apt.log" 2>&1) ||
        { cat "$W/apt.log" >&2; die "apt-get source tini failed"; }
    orig=("$apt"/dl/tini_*.orig.tar.*)
    [[ -e ${orig[0]} ]] || die "no tini orig tarball in $apt/dl"
    tar -xf "${orig[0]}" -C "$cache" || die "cannot unpack ${orig[0]}"
    src=$(find "$cache" -mindepth 1 -maxdepth 1 -type d -name 'tini-[0-9]*' | head -n 1)
fi
[[ -d $src/test/reaping && -d $src/test/pgroup ]] || die "no test/ directory in $src"
say "tini's tests from $(basename "$src") (Debian source package; upstream github.com/krallin/tini, MIT)"

# --- 2. venv with psutil --------------------------------------------------------------
say "python venv with psutil in $W/venv"
python3 -m venv "$W/venv" >/dev/null 2>&1 || die "python3 -m venv failed (apt-get install python3-venv)"
"$W/venv/bin/pip" install -q --disable-pip-version-check psutil </dev/null >"$W/pip.log" 2>&1 ||
    { cat "$W/pip.log" >&2; die "pip install psutil failed"; }
# tini's stage scripts start with `#!/usr/bin/env python` or `python3`: the venv's.
export PATH=$W/venv/bin:$PATH

# --- 3. sigconf-test ---------------------------------------------------------------------
cc -O2 -o "$W/sigconf-test" "$src/test/sigconf/sigconf-test.c" || die "cc sigconf-test.c failed"

# --- 4. cg-test, a cgroup of our own, and the runner -------------------------------------
say "building cg-test (cargo build)"
cargo build --locked --bin cg-test -q 2>"$W/build.log" || { cat "$W/build.log" >&2; die "cargo build failed"; }
cg_test=${CARGO_TARGET_DIR:-$repo/target}/debug/cg-test

cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break } $(i + 1) == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
mine=$(sed -n 's/^0:://p' /proc/self/cgroup)
if [[ -n $cg2 && -w $cg2${mine%/}/cgroup.procs ]]; then
    own_cg=$cg2${mine%/}/cgt-tini-$$
    if mkdir "$own_cg" 2>/dev/null && echo $$ >"$own_cg/cgroup.procs"; then
        say "running in the cgroup ${own_cg#"$cg2"}"
    else
        rmdir "$own_cg" 2>/dev/null
        own_cg=""
    fi
fi

CG_TEST=$cg_test TINI_TEST_DIR=$src/test SIGCONF_TEST=$W/sigconf-test \
    python3 "$repo/tests/tini/run.py" </dev/null | tee "$W/result"
rc=${PIPESTATUS[0]}
if [[ -n $own_cg ]]; then
    left=$(find "$own_cg" -mindepth 1 -maxdepth 1 -type d -name 'cg-test-*')
    if [[ -n $left ]]; then
        echo "FAIL hygiene: cg-test leaves left: $left"
        rc=1
    fi
fi
exit "$rc"
