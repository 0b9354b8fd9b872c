#!/usr/bin/env bash
# The pure cgroup v2 VM lane: cg-test on a machine whose only cgroup hierarchy is cgroup2
# at /sys/fs/cgroup (what most users run), on Debian 12's kernel (6.1, older than the
# hosts'), in a busybox initramfs under qemu's TCG emulator (nested KVM fails here).
#
#   1. installs qemu-system-x86, linux-image-amd64, busybox-static, runc and jq when
#      missing;
#   2. builds the static cg-test and its test fixture (scripts/build-static.sh);
#   3. packs them with busybox, tests/vm/, runc and two OCI bundles (Docker's defaults,
#      privileged) into an initramfs;
#   4. boots it once for the scenario suite (tests/vm/scenarios/*.sh, each run on the
#      native and the older-kernel code paths), then once per tests/vm/pid1/*.sh with
#      cg-test as the machine's PID 1;
#   5. reads the results from the serial console, prints them, what the VM cannot
#      check, and a closing line `N passed, N failed`.
# Exits non-zero on any failure, a skipped scenario (unless VMTEST_ALLOW_SKIP=1), a guest
# that does not finish in time, or a missing tool.
#
# Usage: scripts/vm-test.sh [SCENARIO-GLOB]
#   SCENARIO-GLOB  run only the suite scenarios whose file name matches (e.g. '1*'), and
#                  no PID-1 boots unless it also matches them (e.g. '*exit*')
# Environment:
#   VMTEST_BUDGET=660     seconds the whole lane may take, install and build included
#   VMTEST_SUITE_TIMEOUT=450  VMTEST_PID1_TIMEOUT=90   limits per boot, in seconds
#   VMTEST_STALL=90       seconds without a byte on the suite's console (the guest's
#                         runner prints a tick every 10 s) after which the guest counts
#                         as stalled: it is killed and booted once more, resuming at the
#                         scenario it stalled in (said loudly; a second stall fails)
#   VMTEST_KEEP=1         keep the work directory (vm-work/run.PID: initramfs, consoles)
#   VMTEST_ALLOW_SKIP=1   a scenario that skips itself (a missing tool) is reported but
#                         not counted as a failure; by default every skip is a failure,
#                         since CI must not pass a lane whose required scenarios never ran
# Needs root (apt-get, device nodes in the initramfs).
set -euo pipefail
shopt -s nullglob

started=$SECONDS
budget=${VMTEST_BUDGET:-660}
allow_skip=${VMTEST_ALLOW_SKIP:-0}
suite_timeout=${VMTEST_SUITE_TIMEOUT:-450}
pid1_timeout=${VMTEST_PID1_TIMEOUT:-90}
stall_limit=${VMTEST_STALL:-90}
only=${1:-*}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

say() { echo "vm-test: $*"; }
die() {
    echo "vm-test: error: $*" >&2
    echo "0 passed, 1 failed"
    exit 1
}

[[ $(id -u) == 0 ]] || die "must run as root (apt-get install, device nodes in the initramfs)"

# --- 1. packages -------------------------------------------------------------------
packages=(qemu-system-x86 linux-image-amd64 busybox-static runc jq)
missing=()
for p in "${packages[@]}"; do
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
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found after installing qemu-system-x86"
busybox=$(command -v busybox) || die "busybox not found after installing busybox-static"
# The kernel package linux-image-amd64 points at: linux-image-<version> -> /boot/vmlinuz-<version>.
kver=$(dpkg-query -W -f='${Depends}' linux-image-amd64 | grep -o 'linux-image-[^ ,]*' | head -n 1 | sed 's/^linux-image-//')
kernel=/boot/vmlinuz-$kver
[[ -r $kernel ]] || die "kernel $kernel (from linux-image-amd64) is missing or unreadable"
say "guest kernel $kver (host runs $(uname -r)); packages ready after $((SECONDS - started))s"

# --- 2. static binaries ------------------------------------------------------------
bash scripts/build-static.sh --with-fixture | sed -n 's/^build-static:/vm-test:/p'
((PIPESTATUS[0] == 0)) || die "scripts/build-static.sh failed"
bin_dir="${CARGO_TARGET_DIR:-$repo/target}/x86_64-unknown-linux-musl/release"
say "built after $((SECONDS - started))s"

# --- 3. initramfs --------------------------------------------------------------------
mkdir -p vm-work
work=$(mktemp -d "$repo/vm-work/run.XXXXXX")
qemu_pid=""
xoff_pid=""
cleanup() {
    if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill "$qemu_pid" 2>/dev/null || true
    fi
    if [[ -n $xoff_pid ]]; then
        kill "$xoff_pid" 2>/dev/null || true
    fi
    [[ ${VMTEST_KEEP:-} == 1 ]] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

root=$work/root
mkdir -p "$root"/{bin,usr/bin,dev,proc,sys,tmp,vm}
install -m 755 "$busybox" "$root/bin/busybox"
install -m 755 "$bin_dir/cg-test" "$bin_dir/cg-test-fixture" "$root/bin/"
install -m 755 tests/vm/init "$root/init"
install -m 644 tests/vm/lib.sh tests/vm/pid1-lib.sh tests/vm/run-scenarios.sh "$root/vm/"
mkdir -p "$root/vm/scenarios" "$root/vm/pid1"
suite_count=0
for f in tests/vm/scenarios/*.sh; do
    # shellcheck disable=SC2053 # $only is a glob on purpose.
    [[ $(basename "$f") == $only ]] || continue
    install -m 644 "$f" "$root/vm/scenarios/"
    suite_count=$((suite_count + 1))
done
pid1_scripts=()
for f in tests/vm/pid1/*.sh; do
    # shellcheck disable=SC2053
    [[ $(basename "$f") == $only ]] || continue
    install -m 755 "$f" "$root/vm/pid1/"
    pid1_scripts+=("$(basename "$f" .sh)")
done
((suite_count + ${#pid1_scripts[@]})) || die "no scenario matches '$only'"
# The kernel opens /dev/console for /init before anything is mounted.
mknod -m 600 "$root/dev/console" c 5 1
# util-linux unshare (busybox's has no --cgroup) with the shared libraries it needs,
# for the container-like scenarios.
if command -v unshare >/dev/null && unshare --help 2>&1 | grep -q -- '--cgroup'; then
    install -m 755 "$(command -v unshare)" "$root/usr/bin/unshare-ul"
    for lib in $(ldd "$(command -v unshare)" | grep -o '/[^ ]*'); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
else
    if [[ $allow_skip == 1 ]]; then
        say "NOTE: util-linux unshare with --cgroup not found on the host: the container-like scenarios will be skipped (VMTEST_ALLOW_SKIP=1)"
    else
        say "NOTE: util-linux unshare with --cgroup not found on the host: the container-like scenarios will skip, which fails the lane (VMTEST_ALLOW_SKIP=1 to allow)"
    fi
fi
# runc (Debian's) with its shared libraries, and two OCI bundles for the 6*-runc-*
# scenarios, written here because the guest has no jq. Both run `sh /x/entry.sh` (the
# scenario writes it into /tmp/vmt-runc-x, bound at /x) in a read-only rootfs of empty
# directories with the guest's /bin (busybox, cg-test, cg-test-fixture) bound read-only;
# private pid, network, ipc, uts, mount and cgroup namespaces. The variants mirror
# scripts/container-test.sh's make_config (docker-v2 and privileged), and Docker's seccomp
# profile and capabilities come from that script itself (CONTAINER_TEST_SECCOMP_OUT),
# resolved for the guest's kernel:
#   docker      Docker's defaults on a pure cgroup v2 host: 14 capabilities (no
#               CAP_SYS_ADMIN), Docker's seccomp (clone3 -> ENOSYS), cgroup2 read-only
#   privileged  every capability, no seccomp, /sys and cgroup2 read-write
runc_dir=$root/vm/runc
mkdir -p "$runc_dir"/rootfs/{bin,proc,sys,dev,tmp,x}
install -m 755 "$(command -v runc)" "$root/usr/bin/runc"
for lib in $(ldd "$(command -v runc)" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
CONTAINER_TEST_SECCOMP_OUT=$work/seccomp.json CONTAINER_TEST_KERNEL=$kver bash scripts/container-test.sh |
    sed -n 's/^container-test:/vm-test:/p'
((PIPESTATUS[0] == 0)) || die "scripts/container-test.sh could not resolve Docker's seccomp profile"
runc spec --bundle "$work" || die "runc spec failed"
all_caps='["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_DAC_READ_SEARCH","CAP_FOWNER","CAP_FSETID","CAP_KILL","CAP_SETGID","CAP_SETUID","CAP_SETPCAP","CAP_LINUX_IMMUTABLE","CAP_NET_BIND_SERVICE","CAP_NET_BROADCAST","CAP_NET_ADMIN","CAP_NET_RAW","CAP_IPC_LOCK","CAP_IPC_OWNER","CAP_SYS_MODULE","CAP_SYS_RAWIO","CAP_SYS_CHROOT","CAP_SYS_PTRACE","CAP_SYS_PACCT","CAP_SYS_ADMIN","CAP_SYS_BOOT","CAP_SYS_NICE","CAP_SYS_RESOURCE","CAP_SYS_TIME","CAP_SYS_TTY_CONFIG","CAP_MKNOD","CAP_LEASE","CAP_AUDIT_WRITE","CAP_AUDIT_CONTROL","CAP_SETFCAP","CAP_MAC_OVERRIDE","CAP_MAC_ADMIN","CAP_SYSLOG","CAP_WAKE_ALARM","CAP_BLOCK_SUSPEND","CAP_AUDIT_READ","CAP_PERFMON","CAP_BPF","CAP_CHECKPOINT_RESTORE"]'
for variant in docker privileged; do
    mkdir -p "$runc_dir/$variant"
    if [[ $variant == docker ]]; then
        caps=$(cat "$work/seccomp.json.caps") cg2=ro priv=false
    else
        caps=$all_caps cg2=rw priv=true
    fi
    jq --argjson caps "$caps" --arg cg2 "$cg2" --argjson priv "$priv" --arg variant "$variant" \
        --slurpfile seccomp "$work/seccomp.json" '
      .root = {path: "/vm/runc/rootfs", readonly: true}
      | .hostname = "vmt-runc"
      | .process.terminal = false
      | .process.args = ["sh", "/x/entry.sh"]
      | .process.env = ["PATH=/bin", "HOME=/"]
      | .process.noNewPrivileges = false
      | .process.capabilities = {bounding: $caps, effective: $caps, permitted: $caps}
      | .linux.namespaces = [{type: "pid"}, {type: "network"}, {type: "ipc"}, {type: "uts"}, {type: "mount"}, {type: "cgroup"}]
      | .linux.cgroupsPath = ("/vmt-runc-" + $variant)
      | .mounts += [
          {destination: "/bin", type: "bind", source: "/bin", options: ["rbind", "ro"]},
          {destination: "/x", type: "bind", source: "/tmp/vmt-runc-x", options: ["rbind", "rw"]},
          {destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"]}
        ]
      | .mounts |= map(if .destination == "/sys/fs/cgroup"
          then {destination: "/sys/fs/cgroup", type: "cgroup2", source: "cgroup2", options: ["nosuid", "noexec", "nodev", "relatime", $cg2]}
          else . end)
      | if $priv then
          .mounts |= map(if .destination == "/sys" then .options = ["nosuid", "noexec", "nodev", "rw"] else . end)
          | .linux.maskedPaths = [] | .linux.readonlyPaths = []
          | del(.linux.seccomp)
        else .linux.seccomp = $seccomp[0] end
    ' "$work/config.json" >"$runc_dir/$variant/config.json" || die "writing the $variant bundle's config.json failed"
done
initrd=$work/initrd.cpio
(cd "$root" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc 2>/dev/null) >"$initrd" ||
    die "packing the initramfs failed"
say "initramfs $(($(stat -c %s "$initrd") / 1024)) KiB: $suite_count suite scenario file(s), ${#pid1_scripts[@]} PID-1 boot(s)"

# --- 4. boots ------------------------------------------------------------------------
# boot LABEL APPEND LIMIT CONSOLE STALL [QEMU-ARGS...]: boot the initramfs with APPEND
# on the kernel command line (and QEMU-ARGS added to qemu's), stream its console, and
# kill it after LIMIT seconds (or when the lane's budget runs out). Returns 124 when it
# had to be killed; with STALL > 0, 125 when the console stayed silent for STALL
# seconds (the guest itself stopped: even the in-guest time limits did not act).
boot() {
    local label=$1 append=$2 limit=$3 console=$4 stall=$5 left rc=0 stalled=0
    local extra=("${@:6}")
    left=$((budget - (SECONDS - started)))
    ((left < limit)) && limit=$left
    if ((limit < 20)); then
        say "$label: not booted, the lane's budget of ${budget}s is spent"
        return 124
    fi
    : >"$console"
    say "$label: booting (limit ${limit}s)"
    timeout -k 5 "$limit" qemu-system-x86_64 -accel tcg -m 512 -smp 2 \
        -nodefaults -no-user-config -display none -no-reboot \
        -serial "file:$console" "${extra[@]}" -kernel "$kernel" -initrd "$initrd" \
        -append "console=ttyS0 quiet panic=-1 $append" </dev/null >"$console.qemu" 2>&1 &
    qemu_pid=$!
    # Stream the console, without the kernel's register dump after "Kernel panic" and
    # without the suite runner's ticks.
    tail -n +1 -s 0.2 -f --pid="$qemu_pid" "$console" |
        sed -u -e 's/\r$//' -e '/^VMTEST TICK/d' \
            -e '/Kernel panic - not syncing/,$ { /Kernel panic/! { /^\[ *[0-9.]*\]/d } }' \
            -e "s/^/  $label| /" &
    local tail_pid=$!
    if ((stall > 0)); then
        local size last=-1 quiet=0
        while kill -0 "$qemu_pid" 2>/dev/null; do
            sleep 1
            size=$(stat -c %s "$console" 2>/dev/null || echo 0)
            if ((size != last)); then
                last=$size quiet=0
            elif ((++quiet >= stall)); then
                say "$label: no console output for ${stall}s: the guest stalled; killing it"
                stalled=1
                kill "$qemu_pid" 2>/dev/null || true # timeout(1) passes it on to qemu
                break
            fi
        done
    fi
    wait "$qemu_pid" || rc=$?
    qemu_pid=""
    wait "$tail_pid" || true
    if ((stalled)); then
        rc=125
    elif ((rc == 124)); then
        say "$label: guest did not finish within ${limit}s; killed"
    elif ((rc != 0)); then
        say "$label: qemu exited with $rc: $(tail -n 3 "$console.qemu" | tr '\n' ' ')"
    fi
    return "$rc"
}

passed=0
failed=0
skipped=0
failures=()
stalls=()
pass() {
    passed=$((passed + 1))
}
fail() {
    failed=$((failed + 1))
    failures+=("$1")
}
# A scenario that skipped itself did not run: in CI that is a failure, unless the
# caller said skips are acceptable (VMTEST_ALLOW_SKIP=1, e.g. a host without a tool).
skip() {
    skipped=$((skipped + 1))
    if [[ $allow_skip == 1 ]]; then
        say "skipped $1"
    else
        say "SKIP counts as a failure (VMTEST_ALLOW_SKIP=1 to allow): $1"
        fail "$1 (skipped; VMTEST_ALLOW_SKIP is not 1)"
    fi
}

if ((suite_count)); then
    console=$work/suite.console
    # A second serial port (the guest's ttyS1) whose line the host keeps stopped: it
    # sends XOFF (^S) every 0.2 s, so once the guest opens ttyS1 (IXON is the default)
    # its output queue fills and never drains. Scenario 25 puts cg-test's stderr there,
    # and releases the line by printing `VMTEST COM2 XON` on the console, after which
    # the host sends XON (^Q) instead (the last close of a stopped serial port would
    # wait 30 s for its queue).
    mkfifo "$work/com2.in" "$work/com2.out"
    : >"$console"
    (
        exec 4<>"$work/com2.in"
        while :; do
            # The resumed boot's console once it exists (a guest after a stall).
            cur=$work/suite-resumed.console
            [[ -e $cur ]] || cur=$console
            if grep -q '^VMTEST COM2 XON' "$cur" 2>/dev/null; then
                printf '\021' >&4
            else
                printf '\023' >&4
            fi
            sleep 0.2
        done
    ) &
    xoff_pid=$!
    # suite_boot LABEL CONSOLE [APPEND...]: one boot of the scenario suite.
    suite_boot() {
        local label=$1 console=$2 rc=0
        boot "$label" "cgtest.mode=suite ${*:3}" "$suite_timeout" "$console" "$stall_limit" \
            -chardev "pipe,id=com2,path=$work/com2" -serial chardev:com2 || rc=$?
        return "$rc"
    }
    boot_rc=0
    suite_boot suite "$work/suite.console" || boot_rc=$?
    clean=$work/suite.txt
    tr -d '\r' <"$work/suite.console" >"$clean"
    # A guest that stalled (not a scenario over its time limit: the guest's own limits
    # did not act either) is booted once more, resuming at the scenario it stalled in.
    # Its result then counts; the stall is said, never hidden.
    if ((boot_rc == 125)) && ! grep -q '^VMTEST DONE' "$clean"; then
        stuck=$(sed -n 's/^VMTEST BEGIN //p' "$clean" | tail -n 1)
        if [[ -n $stuck ]] && ! grep -qF -e "VMTEST PASS $stuck" -e "VMTEST FAIL $stuck" -e "VMTEST SKIP $stuck" "$clean"; then
            say "NOTE: the guest stalled during $stuck; booting it once more from ${stuck%%\[*}"
            stalls+=("$stuck")
            boot_rc=0
            suite_boot suite-resumed "$work/suite-resumed.console" "cgtest.from=${stuck%%\[*}" || boot_rc=$?
            # The first boot's lines up to the stall, then the second boot's.
            grep -vxF "VMTEST BEGIN $stuck" "$clean" >"$clean.1" || true
            tr -d '\r' <"$work/suite-resumed.console" >>"$clean.1"
            mv "$clean.1" "$clean"
        fi
    fi
    kill "$xoff_pid" 2>/dev/null || true
    wait "$xoff_pid" 2>/dev/null || true
    declare -A seen=()
    while IFS= read -r line; do
        case "$line" in
            "VMTEST PASS "* | "VMTEST FAIL "* | "VMTEST SKIP "*)
                rest=${line#VMTEST * }
                id=${rest%%[ :]*}
                # A scenario the resumed boot ran again (the stalled file's variants
                # before the stall) counts once, with its first result.
                [[ -n ${seen[$id]:-} ]] && continue
                seen[$id]=1
                case "$line" in
                    "VMTEST PASS "*) pass ;;
                    "VMTEST FAIL "*) fail "$rest" ;;
                    *) skip "$rest" ;;
                esac
                ;;
        esac
    done <"$clean"
    # A scenario that began but never reported: the guest crashed or was killed there.
    while IFS= read -r id; do
        [[ -n ${seen[$id]:-} ]] || fail "$id: no result (the guest stopped during this scenario)"
    done < <(sed -n 's/^VMTEST BEGIN //p' "$clean")
    if ! grep -q '^VMTEST DONE' "$clean"; then
        case $boot_rc in
            124) fail "suite: the guest did not finish within its time limit" ;;
            125) fail "suite: the guest stalled (no console output for ${stall_limit}s)" ;;
            *) fail "suite: the guest stopped before reporting VMTEST DONE (exit $boot_rc)" ;;
        esac
    fi
fi

# A PID-1 boot passes when the kernel's panic reports the expected exit code for init
# and the console shows every `# expect-console:` line (a grep basic regex).
for name in "${pid1_scripts[@]}"; do
    script=tests/vm/pid1/$name.sh
    console=$work/pid1-$name.console
    boot_rc=0
    boot "pid1-$name" "cgtest.pid1=$name" "$pid1_timeout" "$console" 0 || boot_rc=$?
    clean=$work/pid1-$name.txt
    tr -d '\r' <"$console" >"$clean"
    want=$(sed -n 's/^# expect-exit: *//p' "$script")
    panic=$(grep -o 'Attempted to kill init! exitcode=0x[0-9a-f]*' "$clean" | head -n 1 || true)
    why=""
    if [[ -z $panic ]]; then
        why="no 'Attempted to kill init' panic on the console (boot exit $boot_rc)"
    else
        raw=$((16#${panic##*0x}))
        if ((raw & 0x7f)); then
            why="cg-test (PID 1) was killed by signal $((raw & 0x7f))"
        elif [[ $(((raw >> 8) & 0xff)) != "$want" ]]; then
            why="exit code $(((raw >> 8) & 0xff)), expected $want"
        fi
    fi
    # cg-test's last lines can still be draining from the serial driver while the
    # panic prints, so kernel records (each "[ seconds] text" plus its newline) may sit
    # in the middle of a cg-test line. Cut them out to get cg-test's lines back whole.
    user=$work/pid1-$name.user
    sed -z 's/\[ *[0-9]*\.[0-9]*\] [^\n]*\n//g' "$clean" >"$user"
    while IFS= read -r pattern; do
        [[ -z $pattern ]] && continue
        grep -q -- "$pattern" "$user" || why="${why:+$why; }no console line matching '$pattern'"
    done < <(sed -n 's/^# expect-console: //p' "$script")
    reason=$(sed -n 's/^FAIL: //p' "$clean" | head -n 1)
    [[ -n $reason ]] && why="${why:+$why; }$reason"
    if [[ -z $why ]]; then
        say "PASS pid1-$name (exit code $want delivered)"
        pass
    else
        say "FAIL pid1-$name: $why"
        fail "pid1-$name: $why"
    fi
done

# --- 5. report -----------------------------------------------------------------------
cat <<'EOF'
vm-test: what this lane does NOT check:
vm-test:   - networking: the guest has no network device at all
vm-test:   - systemd: no systemd, so no delegated slice/scope (Delegate=yes) and no
vm-test:     unprivileged (rootless) cgroup delegation; everything runs as root
vm-test:   - a real userland: one busybox (ash + applets) and the static musl cg-test;
vm-test:     the glibc build and other shells are not exercised
vm-test:   - really old kernels: only Debian 12's 6.1; the paths for kernels before 5.7
vm-test:     (no CLONE_INTO_CGROUP) and 5.14 (no cgroup.kill) are forced with --compat,
vm-test:     kernels before 5.2 (no cgroup freezer) are not run
vm-test:   - a terminal: the console is a serial line and stdin is not a tty, so
vm-test:     foreground process group / tcsetpgrp handling is not exercised
vm-test:   - speed: TCG emulates the CPU, so timings are loose and nothing is measured
vm-test:   - limits without root: the limits scenarios (3*-limits-*) run as root in
vm-test:     cgroups the scenario made, not in a systemd scope; io is never limited
EOF
for stuck in "${stalls[@]}"; do
    say "NOTE: the guest stalled once during $stuck (no console output for ${stall_limit}s; an emulator or guest-kernel hang: the in-guest time limits did not act) and was booted again from there"
done
if ((failed)); then
    say "failures:"
    for f in "${failures[@]}"; do say "  FAIL $f"; done
fi
[[ ${VMTEST_KEEP:-} == 1 ]] && say "work files kept in $work"
say "lane took $((SECONDS - started))s"
((skipped)) && say "$skipped scenario(s) skipped$([[ $allow_skip == 1 ]] || echo ', each counted as a failure')"
echo "$passed passed, $failed failed"
((failed == 0))
