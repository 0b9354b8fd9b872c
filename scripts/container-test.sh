#!/usr/bin/env bash
# The OCI runtime lane: cg-test as PID 1 of real containers made by runc, with Docker's
# defaults reproduced, and with the privileged variant.
#
#   1. installs runc, busybox-static and jq (apt-get) when missing;
#   2. builds the static cg-test and its test fixture (scripts/build-static.sh);
#   3. gets Docker's default seccomp profile (moby's profiles/seccomp/default.json, from
#      Debian's golang-github-docker-docker-dev package; Apache-2.0, see below) and
#      resolves it for this architecture and Docker's default capabilities into the
#      OCI `linux.seccomp` section, as dockerd does;
#   4. makes a rootfs (busybox, cg-test, cg-test-fixture) and, per container, a bundle
#      whose config.json is `runc spec` edited into one of the variants below;
#   5. runs every scenario in every variant: escaped daemons and a TERM-ignorer in each,
#      then checks the host's process table for the scenario's markers and the host's
#      cgroup trees for the container's cgroup and any cg-test leaf;
#   6. prints PASS/FAIL per scenario and `N passed, N failed`; exits non-zero on failure.
# Every container and bundle is removed on every path (trap), also after a failure.
#
# Variants (what the container gets; all have private pid, mount, ipc, uts, network and
# cgroup namespaces, as Docker gives on a cgroup v2 host):
#   docker      Docker's defaults: its 14 default capabilities (no CAP_SYS_ADMIN), its
#               seccomp profile, /sys and /sys/fs/cgroup read-only with runc's own cgroup
#               mount. On a hybrid host runc mounts only the v1 hierarchies there, so the
#               container sees no cgroup2 at all.
#   docker-v2   the same, but /sys/fs/cgroup is cgroup2, read-only: what Docker gives on
#               a pure cgroup v2 host (an explicit cgroup2 mount on a hybrid one).
#   docker-rw   the same with cgroup2 read-write (a delegated cgroupfs): the leaf works,
#               and the seccomp profile's ENOSYS for clone3 forces the fork path.
#   privileged  `docker run --privileged`: every capability, no seccomp, /sys and cgroup2
#               read-write; the namespace root holds cg-test itself.
#
# Usage: scripts/container-test.sh [GLOB]
#   GLOB  run only the scenarios whose id (`name[variant]`) matches, e.g. 'stop*' or
#         '*privileged*'
# Environment: CONTAINER_TEST_KEEP=1 keeps the work directory (bundles, logs).
#   CONTAINER_TEST_SECCOMP_OUT=FILE  only resolve Docker's seccomp profile (step 3) into
#                FILE (the OCI `linux.seccomp` object) and Docker's default capabilities
#                into FILE.caps (a JSON list), then exit 0: no build, no container. The
#                VM lane (scripts/vm-test.sh) uses this, with CONTAINER_TEST_KERNEL=VERSION
#                (default: this host's `uname -r`) naming the kernel the profile's
#                minKernel rules are resolved for.
# Needs root (runc).
#
# Adding a scenario is one function `scn_NAME VARIANT` plus its name in SCENARIOS; it
# starts containers with `start_ctr VARIANT ARGV...` and checks with the helpers below
# (wait_ready, wait_ctr, expect_done, check_isolation, assert_no_survivors, finish_ctr,
# assert_no_late). Issue 12's flags:
#   --pid-ns      scn_pid_ns: cg-test --pid-ns (no watchdog) under a non-cg-test PID 1
#                 (the fixture's sleep), `kill -KILL` cg-test from the host, nothing of
#                 the run left in 1 s; in the docker variants it refuses with 125 (no
#                 CAP_SYS_ADMIN, seccomp denies unshare).
#   --harden      scn_harden: a root child writes its pid into the namespace root's
#                 cgroup.procs: refused with --harden (privileged), succeeds without
#                 (the control); --harden itself refused with 125 without CAP_SYS_ADMIN.
#   --forward-to  scn_forward_to: `runc kill ID USR1` reaches the command's group.
#   kill(-1)      check_teardown_sweep VARIANT: the -v lines saying PID 1 starts no
#                 watchdog and that its pgroup kill is kill(-1, SIGKILL).
set -uo pipefail
shopt -s nullglob

only=${1:-*}
started=$SECONDS

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1

say() { echo "container-test: $*"; }
die() {
    echo "container-test: error: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

[[ $(id -u) == 0 ]] || die "must run as root (runc creates namespaces and cgroups)"

# --- 1. packages -------------------------------------------------------------------
missing=()
for p in runc busybox-static jq; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]} (apt-get)"
    command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} by hand"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null ||
        die "apt-get install ${missing[*]} failed"
fi
command -v runc >/dev/null || die "runc not found after installing the runc package"
busybox=/bin/busybox
[[ -x $busybox ]] || die "$busybox not found after installing busybox-static"
say "$(runc --version | head -n 1), host kernel $(uname -r)"

# --- 2. static binaries --------------------------------------------------------------
seccomp_only=${CONTAINER_TEST_SECCOMP_OUT:-}
if [[ -z $seccomp_only ]]; then
    say "building the static cg-test and cg-test-fixture (scripts/build-static.sh)"
    cgt_bin=$(bash scripts/build-static.sh --with-fixture 2>"${TMPDIR:-/tmp}/container-test-build.$$.log" | tail -n 1) || {
        cat "${TMPDIR:-/tmp}/container-test-build.$$.log" >&2
        die "scripts/build-static.sh failed"
    }
    rm -f "${TMPDIR:-/tmp}/container-test-build.$$.log"
    fix_bin=$(dirname "$cgt_bin")/cg-test-fixture
    [[ -x $cgt_bin && -x $fix_bin ]] || die "build-static.sh did not produce $cgt_bin and $fix_bin"
fi

# --- work directory, and cleanup on every path ---------------------------------------
W=$(mktemp -d /tmp/cgtc.XXXXXX) || die "mktemp failed"
RUNC=(runc --root "$W/state")
# Every container id, marker and cgroup of this run starts with this, so cleanup and the
# hygiene checks only ever touch what this run made.
TAG=cgtc-$$

# The host's cgroup mounts (v1 hierarchies and cgroup2), from mountinfo.
cgroup_mounts() { awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break; t = $(i + 1) } t == "cgroup" || t == "cgroup2" { print $5 }' /proc/self/mountinfo; }
host_cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break } $(i + 1) == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
host_layout=none
if [[ -n $host_cg2 ]]; then
    if awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break } $(i + 1) == "cgroup" && $(i + 3) !~ /name=/ { f = 1 } END { exit !f }' /proc/self/mountinfo; then
        host_layout=hybrid
    else
        host_layout=pure-v2
    fi
fi

# Pids of live processes whose command line contains $1 (never this script). One grep
# over every /proc/*/cmdline, then the state of the few that match (zombies are dead).
marker_pids() {
    local f p st
    # A word list, not a `while read` pipe: grep's own cmdline holds the marker, and it
    # must have exited before the states are read. /proc paths have no spaces.
    # shellcheck disable=SC2013
    for f in $(grep -alF -- "$1" /proc/[0-9]*/cmdline 2>/dev/null); do
        p=${f#/proc/}
        p=${p%/cmdline}
        [[ $p == "$$" || $p == "$BASHPID" ]] && continue
        st=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$p/stat" 2>/dev/null) || continue
        [[ -n $st && $st != Z ]] && echo "$p"
    done
}

# Pids of live fixture processes (argv[0] is the fixture) carrying $1: the victims,
# not the cg-test or sh whose arguments mention the marker.
victim_pids() {
    local p
    for p in $(marker_pids "$1"); do
        [[ $(tr '\0' '\n' 2>/dev/null <"/proc/$p/cmdline" | head -n 1) == *cg-test-fixture ]] && echo "$p"
    done
}

# Cgroups of this run left in any host hierarchy (the containers' own and below).
our_cgroups() {
    local m
    for m in $(cgroup_mounts); do
        find "$m" -maxdepth 8 -type d -name "$TAG-*" 2>/dev/null
    done
}

remove_containers() {
    local id
    for id in $("${RUNC[@]}" list -q 2>/dev/null); do
        "${RUNC[@]}" kill "$id" KILL >/dev/null 2>&1
        "${RUNC[@]}" delete -f "$id" >/dev/null 2>&1
    done
}

cleanup() {
    remove_containers
    local p
    for p in $(marker_pids "$TAG-"); do kill -KILL "$p" 2>/dev/null; done
    # runc delete removes a container's cgroups; this only catches what a runc that
    # was itself killed left, deepest first, and only cgroups named by this run.
    our_cgroups | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2- | while read -r d; do rmdir "$d" 2>/dev/null; done
    if [[ -n ${CONTAINER_TEST_KEEP:-} ]]; then
        say "kept $W"
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- 3. Docker's seccomp profile -------------------------------------------------------
# moby's profiles/seccomp/default.json (Apache-2.0, Copyright Docker, Inc.) as Debian
# ships it in golang-github-docker-docker-dev (the source of Debian's docker.io 20.10).
# It is downloaded with apt at test time, never copied into this repository; the jq
# program below is ours and does what dockerd's setupSeccomp does: keep the rules whose
# `includes` (capabilities, architectures, minimum kernel) hold and whose `excludes` do
# not, for amd64 and Docker's default capability set.
cache=${CARGO_TARGET_DIR:-$repo/target}/container-test
mkdir -p "$cache"
profile_src=$cache/moby-seccomp-default.json
if [[ ! -s $profile_src ]]; then
    say "fetching Docker's default seccomp profile (apt-get download golang-github-docker-docker-dev)"
    dl=$W/deb
    mkdir -p "$dl" && chmod 777 "$dl"
    (cd "$dl" && apt-get download golang-github-docker-docker-dev </dev/null >/dev/null 2>&1) ||
        { apt-get update -qq </dev/null && (cd "$dl" && apt-get download golang-github-docker-docker-dev </dev/null >/dev/null 2>&1); } ||
        die "apt-get download golang-github-docker-docker-dev failed (it carries moby's profiles/seccomp/default.json)"
    deb=("$dl"/golang-github-docker-docker-dev_*.deb)
    dpkg-deb --fsys-tarfile "${deb[0]}" |
        tar -xO ./usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json >"$profile_src.tmp" ||
        die "profiles/seccomp/default.json not found in ${deb[0]}"
    mv "$profile_src.tmp" "$profile_src"
    dpkg-deb -f "${deb[0]}" Version >"$cache/moby-seccomp-default.version"
fi
say "seccomp: moby profiles/seccomp/default.json from golang-github-docker-docker-dev $(cat "$cache/moby-seccomp-default.version" 2>/dev/null)"

# Docker's default capabilities (moby oci/caps/defaults.go): no CAP_SYS_ADMIN.
docker_caps='["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"]'
# Every capability this kernel has (privileged), that is every one in our own bounding
# set: runc cannot grant what it lacks itself (on the development hosts the sandbox
# withholds CAP_SYS_RESOURCE, and dockerd there would be in the same position).
cap_names=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP
    LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER
    SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE
    SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP
    MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF
    CHECKPOINT_RESTORE)
cap_bnd=$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)
all_caps=$(for i in "${!cap_names[@]}"; do
    (((16#$cap_bnd >> i) & 1)) && echo "CAP_${cap_names[i]}"
done | jq -R . | jq -sc .)
missing_caps=$(for i in "${!cap_names[@]}"; do
    (((16#$cap_bnd >> i) & 1)) || echo "CAP_${cap_names[i]}"
done | tr '\n' ' ')

case $(uname -m) in
    x86_64) scmp_native=SCMP_ARCH_X86_64 go_arch=amd64 ;;
    aarch64) scmp_native=SCMP_ARCH_AARCH64 go_arch=arm64 ;;
    *) die "no seccomp architecture mapping for $(uname -m)" ;;
esac
seccomp_oci=$W/seccomp-docker-default.oci.json
jq --arg native "$scmp_native" --arg arch "$go_arch" --arg kernel "${CONTAINER_TEST_KERNEL:-$(uname -r)}" --argjson caps "$docker_caps" '
  def kver: split("-")[0] | split(".") | map(tonumber? // 0);
  def kernel_at_least($min): ($kernel | kver)[0:2] >= ($min | kver)[0:2];
  . as $p
  | ($p.archMap[] | select(.architecture == $native)) as $am
  | {
      defaultAction: $p.defaultAction,
      architectures: ([$am.architecture] + ($am.subArchitectures // [])),
      syscalls: [
        $p.syscalls[]
        | select((.includes.caps // []) | all(. as $c | $caps | index($c)))
        | select((.includes.arches // []) | length == 0 or index($arch))
        | select(.includes.minKernel == null or kernel_at_least(.includes.minKernel))
        | select(((.excludes.caps // []) | any(. as $c | $caps | index($c))) | not)
        | select(((.excludes.arches // []) | index($arch)) | not)
        | {names: (.names // [.name]), action}
          + (if .errnoRet != null then {errnoRet} else {} end)
          + (if (.args // []) | length > 0
             then {args: [.args[] | {index, value, op} + (if .valueTwo then {valueTwo} else {} end)]}
             else {} end)
      ]
    }
  | if $p.defaultErrnoRet != null then .defaultErrnoRet = $p.defaultErrnoRet else . end
' "$profile_src" >"$seccomp_oci" || die "could not resolve the seccomp profile with jq"
jq -e '[.syscalls[] | select(.names == ["clone3"] and .action == "SCMP_ACT_ERRNO" and .errnoRet == 38)] | length == 1' \
    "$seccomp_oci" >/dev/null || die "the resolved seccomp profile does not answer ENOSYS to clone3; is it Docker's?"
if [[ -n $seccomp_only ]]; then
    { cp "$seccomp_oci" "$seccomp_only" && echo "$docker_caps" >"$seccomp_only.caps"; } ||
        die "cannot write $seccomp_only"
    say "Docker's seccomp profile (for kernel ${CONTAINER_TEST_KERNEL:-$(uname -r)}) in $seccomp_only, its capabilities in $seccomp_only.caps"
    exit 0
fi

# --- 4. rootfs and bundles ---------------------------------------------------------------
rootfs=$W/rootfs
mkdir -p "$rootfs"/{bin,proc,sys,dev,tmp,x,etc}
install -m 755 "$busybox" "$rootfs/bin/busybox"
for a in $("$busybox" --list); do [[ -e $rootfs/bin/$a ]] || ln -s busybox "$rootfs/bin/$a"; done
install -m 755 "$cgt_bin" "$rootfs/bin/cg-test"
install -m 755 "$fix_bin" "$rootfs/bin/cg-test-fixture"
runc spec --bundle "$W" || die "runc spec failed"
mv "$W/config.json" "$W/spec.json"

# make_config VARIANT XDIR ARG... : the config.json of one container on stdout. XDIR is
# bind-mounted at /x (ready and late files the host checks); the rootfs is read-only.
make_config() {
    local variant=$1 xdir=$2
    shift 2
    local cg2_opts='["nosuid","noexec","nodev","relatime","ro"]' caps=$docker_caps seccomp=$seccomp_oci
    local cgmount=runc priv=false
    case $variant in
        docker) ;;
        docker-v2) cgmount=cgroup2 ;;
        docker-rw) cgmount=cgroup2 cg2_opts='["nosuid","noexec","nodev","relatime","rw"]' ;;
        privileged) cgmount=cgroup2 cg2_opts='["nosuid","noexec","nodev","relatime","rw"]' caps=$all_caps seccomp="" priv=true ;;
        *) echo "unknown variant $variant" >&2; return 1 ;;
    esac
    jq --argjson args "$(printf '%s\n' "$@" | jq -R . | jq -sc .)" \
        --arg rootfs "$rootfs" --arg xdir "$xdir" --argjson caps "$caps" \
        --arg cgmount "$cgmount" --argjson cg2opts "$cg2_opts" --argjson priv "$priv" \
        --slurpfile seccomp "${seccomp:-/dev/null}" '
      .root = {path: $rootfs, readonly: true}
      | .hostname = "cgtc"
      | .process.terminal = false
      | .process.args = $args
      | .process.env = ["PATH=/bin", "HOME=/"]
      | .process.noNewPrivileges = false
      | .process.capabilities = {bounding: $caps, effective: $caps, permitted: $caps}
      | .linux.namespaces = [{type: "pid"}, {type: "network"}, {type: "ipc"}, {type: "uts"}, {type: "mount"}, {type: "cgroup"}]
      | .mounts += [
          {destination: "/x", type: "bind", source: $xdir, options: ["rbind", "rw"]},
          {destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"]}
        ]
      | if $cgmount == "cgroup2" then
          .mounts |= map(if .destination == "/sys/fs/cgroup"
            then {destination: "/sys/fs/cgroup", type: "cgroup2", source: "cgroup2", options: $cg2opts}
            else . end)
        else . end
      | if $priv then
          .mounts |= map(if .destination == "/sys" then .options = ["nosuid", "noexec", "nodev", "rw"] else . end)
          | .linux.maskedPaths = [] | .linux.readonlyPaths = []
          | del(.linux.seccomp)
        else .linux.seccomp = $seccomp[0] end
    ' "$W/spec.json"
}

# --- helpers for scenarios (run in a subshell each; `fail` ends the scenario) -----------
fail() {
    echo "FAIL: $*"
    exit 1
}
note() { echo "NOTE: $*"; }

now() { date +%s.%N; }
# Seconds since $1 (a `now` value), as a decimal.
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# Sleep until the time $1 (a `now` value) has passed.
sleep_until() {
    local left
    left=$(awk -v a="$1" -v b="$(now)" 'BEGIN { d = a - b; printf "%.2f", (d > 0 ? d : 0) }')
    sleep "$left"
}

# start_ctr VARIANT ARG... : write a bundle and start `runc run --keep` in the
# background. Sets CID (container id), RUNPID (runc's pid), X (host dir = /x inside),
# OUT and ERR (the container's stdout and stderr).
ctr_seq=0
start_ctr() {
    local variant=$1
    shift
    ctr_seq=$((ctr_seq + 1))
    CID=$TAG-$SCN_SEQ-$ctr_seq
    local b=$W/bundles/$CID
    X=$W/x/$CID
    CGDIR=""
    mkdir -p "$b" "$X/ready"
    OUT=$X/stdout ERR=$X/stderr
    make_config "$variant" "$X" "$@" >"$b/config.json" || fail "make_config $variant failed"
    # runc's own cgroup path for the container; relative, so runc puts it below its own
    # cgroup in every hierarchy, named by this run.
    jq --arg cg "$CID" '.linux.cgroupsPath = $cg' "$b/config.json" >"$b/c" && mv "$b/c" "$b/config.json"
    "${RUNC[@]}" run --keep --bundle "$b" "$CID" >"$OUT" 2>"$ERR" </dev/null &
    RUNPID=$!
}

# The container init's host pid (0 once stopped).
init_pid() { "${RUNC[@]}" state "$CID" 2>/dev/null | jq -r '.pid // 0'; }
ctr_status() { "${RUNC[@]}" state "$CID" 2>/dev/null | jq -r '.status // "gone"'; }

# The container's cgroup v2 directory on the host (from its init's /proc/PID/cgroup).
ctr_cgdir() {
    local pid p
    pid=$(init_pid)
    p=$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>/dev/null)
    [[ -n $p && -n $host_cg2 ]] || return 1
    echo "$host_cg2${p%/}"
}

# wait_ctr LIMIT: wait for `runc run` to return (the container's init exited); sets RC.
wait_ctr() {
    local end=$((SECONDS + $1))
    while kill -0 "$RUNPID" 2>/dev/null; do
        if ((SECONDS >= end)); then
            "${RUNC[@]}" kill "$CID" KILL 2>/dev/null
            wait "$RUNPID" 2>/dev/null
            fail "container $CID still running after $1 s; killed it. stderr: $(tail -n 5 "$ERR" | tr '\n' '|')"
        fi
        sleep 0.05
    done
    wait "$RUNPID"
    RC=$?
}

# wait_ready DIR N LIMIT: N ready files in DIR within LIMIT seconds; sets READY_AT.
wait_ready() {
    local end=$((SECONDS + $3)) files
    while :; do
        files=("$1"/*)
        ((${#files[@]} >= $2)) && break
        ((SECONDS >= end)) && fail "only ${#files[@]} of $2 victims became ready within $3 s; stderr: $(tail -n 5 "$ERR" | tr '\n' '|')"
        sleep 0.05
    done
    READY_AT=$(now)
}

expect_rc() { [[ $1 == "$2" ]] || fail "$3: exit code $1, expected $2; stderr: $(tail -n 8 "$ERR" | tr '\n' '|')"; }
expect_line() { grep -q -- "$2" "$1" || fail "no line matching '$2' in $(basename "$1"): $(tail -n 8 "$1" | tr '\n' '|')"; }

# expect_done ISOLATION OUTCOME EXIT: cg-test's summary line.
expect_done() { expect_line "$ERR" "^cg-test: done: isolation=$1 outcome=$2 exit=$3 "; }

# What cg-test's isolation must be in each variant, and the lines that prove the path.
isolation_of() {
    case $1 in
        docker | docker-v2) echo pgroup ;;
        *) echo cgroup ;;
    esac
}
check_isolation() {
    local variant=$1 notes
    case $variant in
        docker)
            if [[ $host_layout == hybrid ]]; then
                expect_line "$ERR" '^cg-test: no cgroup2 filesystem is mounted .*; using process group'
            else
                expect_line "$ERR" '^cg-test: no cgroup2 mount .* can be used: /sys/fs/cgroup is mounted read-only .*Read-only file system.*; using process group'
            fi
            ;;
        docker-v2) expect_line "$ERR" '^cg-test: no cgroup2 mount .* can be used: /sys/fs/cgroup is mounted read-only .*Read-only file system.*; using process group' ;;
        docker-rw)
            expect_line "$ERR" '^cg-test: created /sys/fs/cgroup/cg-test-1-'
            expect_line "$ERR" 'clone3(CLONE_INTO_CGROUP) failed (Function not implemented'
            expect_line "$ERR" '^cg-test: spawned pid [0-9]* (fork)$'
            ;;
        privileged)
            expect_line "$ERR" '^cg-test: created /sys/fs/cgroup/cg-test-1-'
            expect_line "$ERR" '^cg-test: spawned pid [0-9]* (clone3 into the leaf)$'
            ;;
    esac
    if [[ $(isolation_of "$variant") == pgroup ]]; then
        notes=$(grep -c 'using process group' "$ERR")
        [[ $notes == 1 ]] || fail "auto's fallback note should appear once, appeared $notes times"
    fi
    check_teardown_sweep "$variant"
}

# As the init of the container's pid namespace cg-test starts no watchdog (its death
# kills the namespace), and on the pgroup path its kill is kill(-1, SIGKILL), which
# reaches every process of the namespace; both say so in -v. (Every scenario that calls
# check_isolation has a TERM-ignorer, so the kill step always runs.)
check_teardown_sweep() {
    expect_line "$ERR" '^cg-test: no watchdog: cg-test is the init of its pid namespace'
    if [[ $(isolation_of "$1") == pgroup ]]; then
        expect_line "$ERR" '^cg-test: kill(-1, SIGKILL): cg-test is the init of its pid namespace'
    elif grep -q 'kill(-1' "$ERR"; then
        fail "kill(-1) on the cgroup path: $(grep 'kill(-1' "$ERR")"
    fi
}

# assert_no_survivors MARKER: nothing alive carries it (a few scans).
assert_no_survivors() {
    local i left
    for i in 1 2 3 4 5; do
        left=$(marker_pids "$1")
        [[ -z $left ]] && return 0
        sleep 0.2
    done
    fail "processes with marker $1 survived: $(for p in $left; do echo "[$p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)]"; done)"
}

# assert_no_late FILE LATE_AFTER: the late marker must never appear. It is due
# LATE_AFTER s after the victims were ready; rather than wait for it here, the check is
# recorded and done once for all scenarios at the end of the lane (check_late_markers),
# so LATE_AFTER can be generous (a loaded machine makes `runc` itself slow, and a marker
# written before the kill was even sent would prove nothing) without costing time.
LATE=15
assert_no_late() {
    echo "$SCN_ID $1 $(awk -v a="$READY_AT" -v l="$2" 'BEGIN { printf "%.2f", a + l + 1 }')" >>"$W/late-checks"
}

# finish_ctr: the container has exited (runc run --keep keeps it): its cgroup on the
# host must hold no process and no cg-test leaf; then delete it and check its cgroups
# are gone from every hierarchy. LEAF_EXPECTED=left allows an empty leaf (cg-test was
# SIGKILLed and could not remove it; runc delete does).
finish_ctr() {
    local cgdir=${CGDIR:-} leaves
    if [[ -n $cgdir && -d $cgdir ]]; then
        leaves=$(find "$cgdir" -mindepth 1 -type d -name 'cg-test-*')
        if [[ -n $leaves ]]; then
            if [[ ${LEAF_EXPECTED:-} == left ]]; then
                local l
                for l in $leaves; do
                    grep -q '^populated 0$' "$l/cgroup.events" || fail "leaf $l of the killed cg-test still has processes: $(cat "$l/cgroup.procs")"
                done
                note "cg-test's leaf was left (empty) by the SIGKILLed cg-test; runc delete removes it"
            else
                fail "cg-test leaves left in the container's cgroup: $leaves"
            fi
        fi
        grep -q '^populated 0$' "$cgdir/cgroup.events" 2>/dev/null || fail "the container's cgroup $cgdir still has processes"
    fi
    "${RUNC[@]}" delete -f "$CID" >/dev/null 2>&1 || fail "runc delete $CID failed"
    local left
    left=$(our_cgroups | grep -- "/$CID\(/\|$\)")
    [[ -z $left ]] || fail "cgroups of $CID left after runc delete: $left"
}

# victims_cmd MARKER LATE_AFTER: shell words that start an escaped daemon (double fork +
# setsid, exits 0) and then become a TERM-ignorer.
victims_cmd() {
    local f="cg-test-fixture --marker $1 --life 30 --ready /x/ready --late /x/late --late-after $2"
    echo "$f daemon --exit 0; exec $f ignore-term"
}

# --- 5. scenarios -----------------------------------------------------------------------

# Exit codes pass through runc: the command exits 7 after starting the victims, which
# cg-test reports as leaked and kills (-k 1s); a command killed by a signal gives 128+N.
scn_exit_code() {
    local v=$1 m=$TAG-$SCN_SEQ-ec late=$LATE
    local f="cg-test-fixture --marker $m --life 30 --ready /x/ready --late /x/late --late-after $late"
    # shellcheck disable=SC2016 # expanded by the container's shell
    local wait_two='i=0; while [ "$(ls /x/ready | wc -l)" -lt 2 ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done'
    start_ctr "$v" cg-test -v -k 1s -- sh -c "$f daemon --exit 0; $f ignore-term & $wait_two; exit 7"
    wait_ready "$X/ready" 2 20
    CGDIR=$(ctr_cgdir)
    wait_ctr 30
    expect_rc "$RC" 7 "runc run (cg-test -- sh -c '... exit 7')"
    expect_done "$(isolation_of "$v")" failure 7
    expect_line "$ERR" '^cg-test: 2 process(es) outlived the command'
    check_isolation "$v"
    assert_no_survivors "$m"
    finish_ctr
    assert_no_late "$X/late" "$late"

    start_ctr "$v" cg-test -- sh -c 'kill -USR1 $$'
    wait_ctr 30
    expect_rc "$RC" 138 "runc run (cg-test -- a command killed by SIGUSR1)"
    expect_done "$(isolation_of "$v")" killed-by-signal 138
    finish_ctr
}

# `docker stop`: TERM to PID 1. cg-test runs the ladder (TERM to all, 1 s grace, kill)
# and exits 143; the TERM-ignorer and the escaped daemon die.
scn_stop() {
    local v=$1 m=$TAG-$SCN_SEQ-stop late=$LATE
    start_ctr "$v" cg-test -v -k 1s -- sh -c "$(victims_cmd "$m" $late)"
    wait_ready "$X/ready" 2 20
    CGDIR=$(ctr_cgdir)
    [[ $(victim_pids "$m" | wc -l) == 2 ]] || fail "the 2 victims are not alive on the host before the stop: $(victim_pids "$m")"
    "${RUNC[@]}" kill "$CID" TERM || fail "runc kill $CID TERM failed"
    wait_ctr 30
    expect_rc "$RC" 143 "runc run after runc kill TERM"
    expect_line "$ERR" 'received SIGTERM'
    expect_done "$(isolation_of "$v")" interrupted 143
    check_isolation "$v"
    assert_no_survivors "$m"
    finish_ctr
    assert_no_late "$X/late" "$late"
}

# `docker kill -s KILL`: cg-test (PID 1) dies at once; the kernel kills the rest of the
# pid namespace, so nothing survives even though cg-test could not run its ladder.
scn_kill() {
    local v=$1 m=$TAG-$SCN_SEQ-kill late=$LATE
    start_ctr "$v" cg-test -v -k 1s -- sh -c "$(victims_cmd "$m" $late)"
    wait_ready "$X/ready" 2 20
    CGDIR=$(ctr_cgdir)
    [[ $(victim_pids "$m" | wc -l) == 2 ]] || fail "the 2 victims are not alive on the host before the kill: $(victim_pids "$m")"
    "${RUNC[@]}" kill "$CID" KILL || fail "runc kill $CID KILL failed"
    wait_ctr 30
    expect_rc "$RC" 137 "runc run after runc kill KILL"
    assert_no_survivors "$m"
    LEAF_EXPECTED=left finish_ctr
    assert_no_late "$X/late" "$late"
}

# orphans_via_exec MARKER N: `runc exec` a shell that starts N fixture sleepers in the
# background and exits: the docker-exec case. Their parent dies inside the container,
# so they reparent to the container's init, and when they die only the init can reap
# them. Checks that, and sets ORPHANS (their host pids).
orphans_via_exec() {
    local m=$1 n=$2 i script=""
    mkdir -p "$X/orph"
    for ((i = 0; i < n; i++)); do
        # Their stdio goes to /dev/null: `runc exec` (like `docker exec`) copies the
        # process's output through pipes and returns only when every writer is gone.
        script+="cg-test-fixture --marker $m --life 30 --ready /x/orph sleep </dev/null >/dev/null 2>&1 & "
    done
    "${RUNC[@]}" exec "$CID" sh -c "${script}exit 0" </dev/null >"$X/exec.out" 2>&1 ||
        fail "runc exec failed: $(cat "$X/exec.out")"
    local end=$((SECONDS + 15)) files
    while files=("$X/orph"/*) && ((${#files[@]} < n)); do
        ((SECONDS >= end)) && fail "only ${#files[@]} of $n exec'd orphans became ready"
        sleep 0.05
    done
    ORPHANS=$(victim_pids "$m")
    [[ $(wc -w <<<"$ORPHANS") == "$n" ]] || fail "expected $n orphans with marker $m on the host, found: $ORPHANS"
    local init p
    init=$(init_pid)
    for p in $ORPHANS; do
        [[ $(ppid_of "$p") == "$init" ]] || fail "orphan $p has parent $(ppid_of "$p"), not the container's init $init"
    done
}

# kill_orphans: SIGKILL each orphan by pid (ours: found by this scenario's marker), so
# that each becomes a zombie only the container's init can reap.
kill_orphans() {
    local p
    for p in $ORPHANS; do kill -KILL "$p"; done
}

# ppid_of PID, state_of PID (from /proc/PID/stat, after the `(comm)` field).
ppid_of() { awk '{ sub(/.*\) /, ""); print $2 }' "/proc/$1/stat" 2>/dev/null; }
state_of() { awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null; }

# `docker exec`: processes cg-test did not start, whose parent dies inside the
# container, reparent to cg-test (PID 1), which reaps them when they exit: no zombie is
# left. The run itself (daemon + TERM-ignorer) is then stopped with TERM.
scn_exec_orphans() {
    local v=$1 m=$TAG-$SCN_SEQ-run om=$TAG-$SCN_SEQ-orph late=$LATE
    start_ctr "$v" cg-test -v -k 1s -- sh -c "$(victims_cmd "$m" $late)"
    wait_ready "$X/ready" 2 20
    CGDIR=$(ctr_cgdir)
    orphans_via_exec "$om" 3
    # Killed, each must be reaped by cg-test (PID 1), not left a zombie.
    kill_orphans
    local end=$((SECONDS + 10)) left p
    while :; do
        left=""
        for p in $ORPHANS; do [[ -e /proc/$p ]] && left+="$p($(state_of "$p")) "; done
        [[ -z $left ]] && break
        ((SECONDS >= end)) && fail "exec'd orphans not reaped by cg-test as PID 1 within 10 s: $left"
        sleep 0.1
    done
    "${RUNC[@]}" kill "$CID" TERM || fail "runc kill $CID TERM failed"
    wait_ctr 30
    expect_rc "$RC" 143 "runc run after runc kill TERM"
    expect_done "$(isolation_of "$v")" interrupted 143
    check_isolation "$v"
    assert_no_survivors "$m"
    assert_no_survivors "$om"
    finish_ctr
    assert_no_late "$X/late" "$late"
}

# Negative control for scn_exec_orphans: with an init that never reaps (the fixture's
# sleep mode as PID 1), the same orphans stay zombies. The check above can fail.
scn_exec_orphans_control() {
    local v=$1 m=$TAG-$SCN_SEQ-init om=$TAG-$SCN_SEQ-orph
    start_ctr "$v" cg-test-fixture --marker "$m" --life 30 --ready /x/ready sleep
    wait_ready "$X/ready" 1 20
    CGDIR=$(ctr_cgdir)
    local init p zombies=0
    init=$(init_pid)
    orphans_via_exec "$om" 3
    kill_orphans
    local end=$((SECONDS + 10))
    while ((zombies < 3)); do
        zombies=0
        for p in $ORPHANS; do
            [[ $(state_of "$p") == Z && $(ppid_of "$p") == "$init" ]] && zombies=$((zombies + 1))
        done
        ((SECONDS >= end)) && fail "with a non-reaping init the orphans should stay zombies; $zombies of 3 did"
        sleep 0.1
    done
    note "control: a non-reaping PID 1 leaves the 3 exec'd orphans as zombies"
    "${RUNC[@]}" kill "$CID" KILL
    wait_ctr 30
    assert_no_survivors "$m"
    finish_ctr
}

# The timeout: a read-only or absent cgroupfs makes `auto` fall back with its one note;
# a writable one gets the leaf below the namespace root, which (seen from the host) sits
# in the container's cgroup next to cg-test itself, and is gone afterwards. 124 either
# way, with the daemon and the TERM-ignorer killed.
scn_timeout() {
    local v=$1 m=$TAG-$SCN_SEQ-to late=$LATE
    # 6 s: long enough to look at the leaf from the host while the run is on, even on a
    # loaded machine.
    start_ctr "$v" cg-test -v -t 6s -k 1s -- sh -c "$(victims_cmd "$m" $late)"
    wait_ready "$X/ready" 2 20
    CGDIR=$(ctr_cgdir)
    local init
    init=$(init_pid)
    if [[ $(isolation_of "$v") == cgroup ]]; then
        local leaf p
        leaf=$(find "$CGDIR" -mindepth 1 -maxdepth 1 -type d -name 'cg-test-1-*')
        [[ -n $leaf ]] || fail "no cg-test leaf in the container's cgroup $CGDIR while the run is on"
        grep -qx "$init" "$CGDIR/cgroup.procs" || fail "cg-test ($init) is not in the namespace root $CGDIR: $(tr '\n' ' ' <"$CGDIR/cgroup.procs")"
        [[ $(victim_pids "$m" | wc -l) == 2 ]] || fail "the 2 victims are not alive on the host: $(victim_pids "$m")"
        for p in $(victim_pids "$m"); do
            grep -qx "$p" "$leaf/cgroup.procs" || fail "victim $p is not in the leaf $leaf"
        done
        note "leaf on the host: ${leaf#"$host_cg2"}; the namespace root holds cg-test (host pid $init)"
    fi
    wait_ctr 30
    expect_rc "$RC" 124 "runc run (cg-test -t 6s)"
    expect_done "$(isolation_of "$v")" timeout 124
    check_isolation "$v"
    [[ $(isolation_of "$v") == cgroup ]] && expect_line "$ERR" '^cg-test: removed /sys/fs/cgroup/cg-test-1-'
    assert_no_survivors "$m"
    finish_ctr
    assert_no_late "$X/late" "$late"
}

# `cg-test doctor --json` as the container's PID 1: what it sees in each variant.
scn_doctor() {
    local v=$1 checks
    start_ctr "$v" cg-test doctor --json
    wait_ctr 30
    expect_rc "$RC" 0 "cg-test doctor --json"
    jq -e . "$OUT" >/dev/null || fail "doctor --json is not JSON: $(head -c 300 "$OUT")"
    checks='.pid1 == true and .pid_namespace.initial == false and .cgroup.namespace == "private"'
    case $v in
        docker)
            checks+=' and .seccomp == "filter" and .cap_sys_admin == false and .clone3.ok == false
                and (.clone3.detail | startswith("ENOSYS")) and .auto.isolation == "pgroup"
                and .user_namespace.ok == false and .pid_namespace.unshare.ok == false'
            if [[ $host_layout == hybrid ]]; then
                checks+=' and .cgroup.layout == "v1-only" and .cgroup.cgroup2_mount == null'
            fi
            ;;
        docker-v2)
            checks+=' and .cgroup.layout == "pure-v2" and .cgroup.cgroup2_read_only == true
                and .cgroup.position == "namespace-root" and .cgroup.writable == false
                and .auto.isolation == "pgroup" and (.auto.reason | contains("Read-only file system"))'
            ;;
        docker-rw)
            checks+=' and .cgroup.position == "namespace-root" and .clone_into_cgroup.ok == false
                and (.clone_into_cgroup.detail | startswith("ENOSYS")) and .migrate.ok == true
                and .auto.isolation == "cgroup" and .auto.spawn == "fork" and .auto.kill == "cgroup.kill"'
            ;;
        privileged)
            checks+=' and .seccomp == "none" and .cap_sys_admin == true
                and .cgroup.position == "namespace-root" and .cgroup.writable == true
                and .clone_into_cgroup.ok == true and .auto.isolation == "cgroup"
                and .auto.spawn == "clone3" and .pid_namespace.unshare.ok == true'
            ;;
    esac
    jq -e "$checks" "$OUT" >/dev/null || fail "doctor in $v does not satisfy: $checks; got: $(jq -c '{layout: .cgroup.layout, mount: .cgroup.cgroup2_mount, ro: .cgroup.cgroup2_read_only, position: .cgroup.position, clone3: .clone3.ok, into: .clone_into_cgroup, migrate: .migrate.ok, seccomp, cap_sys_admin, auto}' "$OUT")"
    note "doctor: $(jq -r '"layout \(.cgroup.layout), cgroup2 \(.cgroup.cgroup2_mount // "none")\(if .cgroup.cgroup2_read_only then " (ro)" else "" end), clone3 \(.clone3.ok), into cgroup \(.clone_into_cgroup.ok), controllers a leaf could get: \(.cgroup.controllers.leaf_could_get | join(" ") | if . == "" then "none" else . end); auto \(.auto.isolation)/\(.auto.spawn)\(if .auto.reason then " (" + (.auto.reason | .[0:60]) + "...)" else "" end)"' "$OUT")"
    finish_ctr
}

# exec_bg OUT ERR ARG... : `runc exec` ARG... in the container, in the background, its
# output in files; sets EXECPID (the host pid of `runc exec`).
exec_bg() {
    local out=$1 err=$2
    shift 2
    "${RUNC[@]}" exec "$CID" "$@" </dev/null >"$out" 2>"$err" &
    EXECPID=$!
}

# The host pid of the cg-test (not its --pid-ns init, whose parent is cg-test) whose
# command line carries MARKER.
cg_test_pid() {
    local p parent
    for p in $(marker_pids "$1"); do
        [[ $(tr '\0' '\n' 2>/dev/null <"/proc/$p/cmdline" | head -n 1) == cg-test ]] || continue
        parent=$(ppid_of "$p")
        [[ $(tr '\0' '\n' 2>/dev/null <"/proc/$parent/cmdline" | head -n 1) == cg-test ]] && continue
        echo "$p"
    done
}

# --pid-ns (issue 12) under a container init that is not cg-test (the fixture's sleep):
# where the container has CAP_SYS_ADMIN (privileged), the run is an escaped daemon and
# a TERM-ignorer in a pid namespace of their own; cg-test runs without its watchdog, so
# only the namespace can kill them when cg-test is SIGKILLed from the host: nothing of
# the run may be left 1 s later. In the docker variants (no CAP_SYS_ADMIN, and the
# seccomp profile denies unshare): exit 125, one line, nothing run.
scn_pid_ns() {
    local v=$1 mi=$TAG-$SCN_SEQ-init m=$TAG-$SCN_SEQ-pidns late=$LATE
    start_ctr "$v" cg-test-fixture --marker "$mi" --life 60 --ready /x/ready sleep
    wait_ready "$X/ready" 1 20
    CGDIR=$(ctr_cgdir)
    if [[ $v != privileged ]]; then
        "${RUNC[@]}" exec "$CID" cg-test --pid-ns -- sh -c ": $m; touch /x/ran" </dev/null >"$X/exec.out" 2>"$X/exec.err"
        expect_rc $? 125 "cg-test --pid-ns without CAP_SYS_ADMIN"
        [[ $(wc -l <"$X/exec.err") == 1 ]] || fail "expected one line, got: $(cat "$X/exec.err")"
        expect_line "$X/exec.err" '^cg-test: --pid-ns: cg-test lacks CAP_SYS_ADMIN'
        [[ ! -e $X/ran ]] || fail "the command ran"
        note "refused: $(cut -c1-110 "$X/exec.err")..."
    else
        exec_bg "$X/pidns.out" "$X/pidns.err" cg-test -v --pid-ns --compat no-watchdog -- sh -c "$(victims_cmd "$m" $late)"
        wait_ready "$X/ready" 3 20
        local cgt end
        cgt=$(cg_test_pid "$m")
        [[ -n $cgt && $(wc -w <<<"$cgt") == 1 ]] || fail "cannot tell cg-test's host pid: '$cgt'"
        [[ $(victim_pids "$m" | wc -l) == 2 ]] || fail "the 2 victims are not alive: $(victim_pids "$m")"
        local leaf
        leaf=$(find "$CGDIR" -mindepth 1 -maxdepth 1 -type d -name 'cg-test-*')
        [[ -n $leaf && -e $leaf/cgroup.events ]] || fail "no cg-test leaf in $CGDIR while the run goes on"
        kill -KILL "$cgt"
        end=$(awk -v t="$(now)" 'BEGIN { printf "%.2f", t + 1 }')
        # Every process of the run is in the leaf: `populated 0` means all are dead (one
        # read per check, so the check's own cost does not eat the second).
        while grep -q '^populated 1' "$leaf/cgroup.events"; do
            [[ $(awk -v e="$end" -v t="$(now)" 'BEGIN { print (t > e) }') == 1 ]] &&
                fail "the run's processes alive 1 s after cg-test was SIGKILLed: $(tr '\n' ' ' <"$leaf/cgroup.procs")"
            sleep 0.02
        done
        [[ -z $(victim_pids "$m") ]] || fail "victims alive after their leaf emptied: $(victim_pids "$m")"
        wait "$EXECPID"
        expect_line "$X/pidns.err" 'is pid 2 of a new pid namespace whose init is pid'
        note "SIGKILL of cg-test (host pid $cgt), no watchdog: the namespace took the run with it"
        LEAF_EXPECTED=left
    fi
    "${RUNC[@]}" kill "$CID" KILL
    wait_ctr 30
    assert_no_survivors "$m"
    finish_ctr
    [[ $v == privileged ]] && assert_no_late "$X/late" "$late"
    return 0
}

# --harden (issue 12): a root child of the command writes its pid into
# /sys/fs/cgroup/cgroup.procs, which without --harden is the cgroup namespace's root
# (the leaf's parent). privileged: under --harden the child's /sys/fs/cgroup shows only
# its leaf, so the host still finds it in the leaf, and it dies at the timeout; without
# --harden (the control) the host finds it in the namespace root, outside the leaf.
# Elsewhere (no CAP_SYS_ADMIN): --harden is refused with exit 125, one line, nothing run.
scn_harden() {
    local v=$1 m=$TAG-$SCN_SEQ-hard late=$LATE p
    # shellcheck disable=SC2016 # expanded by the container's shell
    local child='echo $$ > /sys/fs/cgroup/cgroup.procs; exec cg-test-fixture --marker '"$m"' --life 30 --ready /x/ready --late /x/late --late-after '"$late"' sleep'
    if [[ $v != privileged ]]; then
        start_ctr "$v" cg-test --harden -- sh -c ": $m; touch /x/ran"
        wait_ctr 30
        expect_rc "$RC" 125 "cg-test --harden without CAP_SYS_ADMIN"
        [[ $(wc -l <"$ERR") == 1 ]] || fail "expected one line, got: $(cat "$ERR")"
        expect_line "$ERR" '^cg-test: --harden: cg-test lacks CAP_SYS_ADMIN'
        [[ ! -e $X/ran ]] || fail "the command ran"
        finish_ctr
        return 0
    fi
    start_ctr "$v" cg-test -v --harden -t 4s -k 1s -- sh -c ": $m; sh -c '$child' & wait"
    wait_ready "$X/ready" 1 20
    CGDIR=$(ctr_cgdir)
    p=$(victim_pids "$m")
    [[ -n $p ]] || fail "the child is not alive"
    grep -qx "$p" "$CGDIR"/cg-test-1-*/cgroup.procs || fail "under --harden the child $p should still be in the leaf"
    wait_ctr 30
    expect_rc "$RC" 124 "cg-test --harden -t 4s"
    assert_no_survivors "$m"
    finish_ctr
    assert_no_late "$X/late" "$late"

    # The control: the same without --harden leaves the leaf (it dies with the
    # namespace when cg-test, PID 1, exits).
    start_ctr "$v" cg-test -v -t 4s -k 1s -- sh -c ": $m; sh -c '$child' & wait"
    wait_ready "$X/ready" 1 20
    CGDIR=$(ctr_cgdir)
    p=$(victim_pids "$m")
    grep -qx "$p" "$CGDIR/cgroup.procs" || fail "without --harden the child $p should be in the namespace root $CGDIR"
    note "control: without --harden the child moved itself to the namespace root (host: ${CGDIR#"$host_cg2"})"
    wait_ctr 30
    assert_no_survivors "$m"
    finish_ctr
}

# --forward-to group (issue 12): `runc kill ID USR1` (docker kill -s USR1) reaches the
# command's process group: a child of the command records it and exits, the command
# (which has its own no-op handler) then exits 5. The control (docker variant): with the
# default, the child never sees it, and a TERM ends the run (143).
scn_forward_to() {
    local v=$1 m=$TAG-$SCN_SEQ-fwd
    # shellcheck disable=SC2016 # expanded by the container's shell
    local child=': '"$m"'; trap "touch /x/got; exit 0" USR1; touch /x/ready/1; i=0; while [ ! -e /x/got ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done'
    # shellcheck disable=SC2016
    local cmd=": $m; trap : USR1; sh -c '$child' & until wait; do :; done; exit 5"
    start_ctr "$v" cg-test -v --forward-to group -- sh -c "$cmd"
    wait_ready "$X/ready" 1 20
    "${RUNC[@]}" kill "$CID" USR1 || fail "runc kill $CID USR1 failed"
    wait_ctr 30
    expect_rc "$RC" 5 "cg-test --forward-to group, after runc kill USR1"
    [[ -e $X/got ]] || fail "the command's group did not get USR1"
    assert_no_survivors "$m"
    finish_ctr
    [[ $v == docker ]] || return 0
    start_ctr "$v" cg-test -v -k 1s -- sh -c "$cmd"
    wait_ready "$X/ready" 1 20
    "${RUNC[@]}" kill "$CID" USR1 || fail "runc kill $CID USR1 failed"
    sleep 1
    [[ ! -e $X/got ]] || fail "with --forward-to command the child got USR1"
    "${RUNC[@]}" kill "$CID" TERM
    wait_ctr 30
    expect_rc "$RC" 143 "the control, after runc kill TERM"
    note "control: with the default --forward-to command, USR1 reached the command alone"
    assert_no_survivors "$m"
    finish_ctr
}

VARIANTS=(docker docker-v2 docker-rw privileged)
SCENARIOS=(doctor exit_code stop kill exec_orphans timeout pid_ns harden forward_to)

# --- 6. run -------------------------------------------------------------------------------
passed=0 failed=0 SCN_SEQ=0
run_one() { # run_one SCENARIO VARIANT
    local id="${1//_/-}[$2]" log rc t0=$SECONDS dirty=""
    # shellcheck disable=SC2254 # the filter is a glob on purpose
    case $id in $only) ;; *) return 0 ;; esac
    SCN_SEQ=$((SCN_SEQ + 1))
    SCN_ID=$id
    log=$W/logs/$SCN_SEQ.log
    mkdir -p "$W/logs"
    (
        ctr_seq=0
        "scn_$1" "$2"
    ) >"$log" 2>&1
    rc=$?
    # Hygiene, whatever the verdict: no container, process or cgroup of this scenario.
    [[ -n $("${RUNC[@]}" list -q 2>/dev/null) ]] && dirty+=" containers left: $("${RUNC[@]}" list -q | tr '\n' ' ')"
    [[ -n $(marker_pids "$TAG-$SCN_SEQ-") ]] && dirty+=" processes left: $(marker_pids "$TAG-$SCN_SEQ-" | tr '\n' ' ')"
    [[ -n $(our_cgroups) ]] && dirty+=" cgroups left: $(our_cgroups | tr '\n' ' ')"
    sed -n "s/^NOTE: /  note: /p" "$log"
    if ((rc == 0)) && [[ -z $dirty ]]; then
        echo "PASS $id ($((SECONDS - t0))s)"
        passed=$((passed + 1))
    else
        echo "FAIL $id: $(sed -n 's/^FAIL: //p' "$log" | tail -n 1)${dirty:+ after the scenario:$dirty}"
        [[ $rc == 0 ]] || tail -n 20 "$log" | sed 's/^/  | /'
        failed=$((failed + 1))
        remove_containers
        local p
        for p in $(marker_pids "$TAG-$SCN_SEQ-"); do kill -KILL "$p" 2>/dev/null; done
    fi
}

say "host cgroup layout: $host_layout${host_cg2:+ (cgroup2 at $host_cg2)}; variants: ${VARIANTS[*]}"
for s in "${SCENARIOS[@]}"; do
    for v in "${VARIANTS[@]}"; do
        run_one "$s" "$v"
    done
done
run_one exec_orphans_control docker

# The late markers of every scenario, once: wait until the last is due, then none may
# exist. One result line for all of them.
check_late_markers() {
    [[ -s $W/late-checks ]] || return 0
    local last bad="" id file n
    last=$(awk '$3 > m { m = $3 } END { print m }' "$W/late-checks")
    say "waiting $(awk -v a="$last" -v b="$(now)" 'BEGIN { d = a - b; printf "%d", (d > 0 ? d : 0) }') s for the last late marker to fall due"
    sleep_until "$last"
    n=0
    while read -r id file _; do
        n=$((n + 1))
        [[ -e $file ]] && bad+=" $id (pid $(cat "$file"))"
    done <"$W/late-checks"
    if [[ -z $bad ]]; then
        echo "PASS late-markers ($n scenarios: no victim outlived its kill)"
        passed=$((passed + 1))
    else
        echo "FAIL late-markers: a victim outlived the kill in$bad"
        failed=$((failed + 1))
    fi
}
check_late_markers

say "what this lane cannot show here:"
if [[ $host_layout == hybrid ]]; then
    say "  - Docker on this hybrid host: runc mounts only the v1 hierarchies at /sys/fs/cgroup, so the"
    say "    'docker' variant has no cgroup2; cgroup2 in the other variants is an explicit mount in config.json"
    say "  - no v2 controllers here (memory, pids, cpu, io are bound to v1): limits cannot be shown"
fi
[[ -n ${missing_caps// /} ]] && say "  - privileged lacks what this shell's bounding set lacks: $missing_caps"
say "  - Docker itself (no daemon here): its defaults are reproduced in config.json, not taken from dockerd"
say "lane took $((SECONDS - started))s"
echo "$passed passed, $failed failed"
((failed == 0 && passed > 0))
