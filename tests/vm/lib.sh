# Helpers every VM scenario sources (`. /vm/lib.sh`). busybox sh, no bashisms.
#
# A scenario is a small sh script that exits 0 (pass), 1 via `fail REASON`, or 77 via
# `skip REASON`. Its output goes to a log that the runner prints only when it fails;
# lines starting with `NOTE:` are always shown on the console.
#
# The runner sets VMT_NAME (the file name without .sh) and VMT_VARIANT:
#   native  cg-test as it runs on this kernel: clone3(CLONE_INTO_CGROUP), cgroup.kill,
#           child subreaper
#   compat  `--compat fork-spawn,signal-kill,no-subreaper`: the paths cg-test uses on
#           kernels older than 5.7 / 5.14 (fork + the child writes cgroup.procs; SIGKILL
#           to each member of the frozen leaf), without a subreaper
# Run cg-test as `$CGT ARGS -- COMMAND`: it adds -v and the variant's flags, so
# `expect_paths` can prove from the -v lines which path really ran.
#
# Test hygiene: every fixture process gets a unique marker (`marker`), a bounded life
# (--life, at most 60 s) and, when it is a victim, --ready DIR (proof it was alive) and
# --late FILE (written only if it outlives the kill). Nothing is ever killed by name.

VMT_NAME=${VMT_NAME:-adhoc}
VMT_VARIANT=${VMT_VARIANT:-native}
case "$VMT_VARIANT" in
    native) CGT="cg-test -v" ;;
    compat) CGT="cg-test -v --compat fork-spawn,signal-kill,no-subreaper" ;;
    *) echo "FAIL: unknown VMT_VARIANT $VMT_VARIANT"; exit 1 ;;
esac
FIX=cg-test-fixture
CGROOT=/sys/fs/cgroup
T=/tmp/vmt/$VMT_NAME.$VMT_VARIANT
rm -rf "$T"
mkdir -p "$T"

fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
note() { echo "NOTE: $*"; }

# A marker no other process in the guest carries: scenario, variant, tag, our pid.
marker() { echo "vmt-$VMT_NAME-$VMT_VARIANT-$1-$$"; }

# A fresh empty directory under this scenario's temp dir.
fresh_dir() { rm -rf "${T:?}/$1"; mkdir -p "$T/$1"; echo "$T/$1"; }

# Uptime in centiseconds (monotonic, finer than date +%s).
now_cs() { read -r up _ </proc/uptime; echo "${up%.*}${up#*.}" | sed 's/^0*//; s/^$/0/'; }

# Sleep until uptime reaches $1 centiseconds.
sleep_until_cs() {
    left=$(($1 - $(now_cs)))
    [ "$left" -gt 0 ] && sleep "$((left / 100)).$(printf %02d $((left % 100)))"
    return 0
}

# Number of files in a directory.
count_files() { set -- "$1"/*; [ -e "$1" ] && echo $# || echo 0; }

# wait_ready DIR N SECS: wait until DIR holds at least N ready files.
wait_ready() {
    end=$(($(now_cs) + $3 * 100))
    while [ "$(count_files "$1")" -lt "$2" ]; do
        [ "$(now_cs)" -ge "$end" ] && fail "only $(count_files "$1") of $2 victims became ready within $3 s"
        sleep 0.05
    done
}

# Pids of live (non-zombie) processes whose command line contains $1, except ours.
survivors() {
    for d in /proc/[0-9]*; do
        p=${d#/proc/}
        [ "$p" = "$$" ] && continue
        c=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
        case "$c" in *"$1"*) echo "$p" ;; esac
    done
}

assert_no_survivors() {
    s=$(survivors "$1")
    [ -z "$s" ] || fail "processes with marker $1 survived: $(for p in $s; do echo "[$p: $(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline")]"; done)"
}

# No cg-test leaf anywhere in the hierarchy.
assert_no_leaf() {
    l=$(find "$CGROOT" -type d -name 'cg-test-*' 2>/dev/null)
    [ -z "$l" ] || fail "cg-test leaves left behind: $l"
}

# assert_no_late FILE START_CS LATE_AFTER_S: wait until the late marker would have
# been written (plus a margin), then check that it was not.
assert_no_late() {
    sleep_until_cs $(($2 + $3 * 100 + 50))
    [ ! -e "$1" ] || fail "late marker $1 appeared: pid $(cat "$1") outlived the kill"
}

# assert_no_late_on FILE TRIGGER: for victims started with the fixture's `--late FILE
# --late-on TRIGGER` (the marker is armed by TRIGGER, not by a time that load can
# overtake): make TRIGGER after the kill, give a survivor a second to write FILE (it
# looks every 0.2 s), and check that none did.
assert_no_late_on() {
    touch "$2"
    sleep 1
    [ ! -e "$1" ] || fail "late marker $1 appeared: pid $(cat "$1") outlived the kill"
}

# expect_rc ACTUAL EXPECTED WHAT
expect_rc() { [ "$1" = "$2" ] || fail "$3: exit code $1, expected $2"; }

# expect_line FILE PATTERN: FILE has a line matching the grep pattern.
expect_line() { grep -q -- "$2" "$1" || fail "no line matching '$2' in $1: $(tail -n 5 "$1" | tr '\n' '|')"; }

# expect_done FILE OUTCOME EXIT: the summary line of one cg-test run, in a cgroup.
expect_done() {
    expect_line "$1" "^cg-test: done: isolation=cgroup outcome=$2 exit=$3 "
}

# expect_paths FILE: the -v lines show the spawn and kill paths of this variant.
expect_paths() {
    case "$VMT_VARIANT" in
        native)
            expect_line "$1" 'spawned pid [0-9]* (clone3 into the leaf)'
            expect_line "$1" 'cgroup.kill: yes'
            ;;
        compat)
            expect_line "$1" 'spawned pid [0-9]* (fork)'
            expect_line "$1" 'cgroup.kill: no'
            ;;
    esac
}

# The leaf a -v run created and removed (for checks that it was where we expect).
leaf_of() { sed -n 's/^cg-test: created \([^ ]*\) .*/\1/p' "$1" | head -n 1; }

# Pids of live fixture processes (argv[0] is the fixture) carrying marker $1; unlike
# `survivors`, this leaves out the cg-test and sh processes whose arguments mention it.
victims() {
    for p in $(survivors "$1"); do
        case "$(tr '\0' '\n' 2>/dev/null <"/proc/$p/cmdline" | head -n 1)" in
            *cg-test-fixture) echo "$p" ;;
        esac
    done
}

# make_orphans N SECS: start N `sleep SECS` whose parent exits at once, so they are
# reparented to the nearest subreaper or to PID 1, which must reap them when they end.
make_orphans() {
    i=0
    while [ $i -lt "$1" ]; do
        (sleep "$2" &)
        i=$((i + 1))
    done
}

# Processes whose parent is $1, and those of them that are zombies (state Z).
# (Fields of /proc/PID/stat: 1 pid, 3 state, 4 ppid; the commands here have no spaces
# in their names.)
children_of() { cat /proc/[0-9]*/stat 2>/dev/null | awk -v pp="$1" '$4 == pp { print $1 }'; }
zombies_of() { cat /proc/[0-9]*/stat 2>/dev/null | awk -v pp="$1" '$4 == pp && $3 == "Z" { print $1 }'; }

# --- limits (scenarios 3*-limits-*) ---------------------------------------------------
# cg_state DIR: what "exactly as before" compares for a cgroup: its subtree_control, the
# record cg-test keeps on it (user.cg-test.controllers), the cgroups inside it and the
# processes in it.
cg_state() {
    echo "subtree_control=[$(cat "$1/cgroup.subtree_control")]" \
        "record=[$($FIX --marker "$(marker xattr)" --life 5 getxattr "$1" user.cg-test.controllers)]" \
        "children=[$(find "$1" -mindepth 1 -maxdepth 1 -type d | sort | tr '\n' ' ')]" \
        "procs=[$(tr '\n' ' ' <"$1/cgroup.procs")]"
}

# The root's controllers as the scenario found them, and a way back to them. A limits
# scenario enables cpu, memory and pids at the root (as systemd does on a real host) so
# that a cgroup below it can offer them; what it changed it puts back at the end.
ROOT_BEFORE=$(cat "$CGROOT/cgroup.subtree_control")
root_controllers() { echo "$*" >"$CGROOT/cgroup.subtree_control" || fail "writing '$*' to the root's cgroup.subtree_control"; }
restore_root() {
    for c in cpu memory pids; do
        case " $ROOT_BEFORE " in
            *" $c "*) echo "+$c" ;;
            *) echo "-$c" ;;
        esac >"$CGROOT/cgroup.subtree_control" || fail "cannot put $c back at the root"
    done
}

# delegated NAME: a fresh cgroup below the root with cpu, memory and pids offered to it
# (like a systemd scope with Delegate=yes); prints its path.
delegated() {
    d=$CGROOT/vmt-$VMT_VARIANT-$1
    [ -d "$d" ] && rmdir "$d"
    mkdir "$d" || fail "mkdir $d"
    echo "$d"
}

# $ALONE DIR CMD...: run CMD as the only process of cgroup DIR: a shell moves itself
# there and execs CMD (cg-test then has nobody beside it). In the background, $! is
# CMD's pid.
cat >"$T/alone.sh" <<'ALONE'
d=$1
shift
echo $$ >"$d/cgroup.procs" && exec "$@"
ALONE
ALONE="sh $T/alone.sh"

# On any exit of a limits scenario (a failure included): kill and remove what is left
# in its delegated cgroups, let cg-test gc put back controllers a killed run recorded,
# and give the root its controllers back. Silent; the runner's hygiene check reports
# leaves and processes that were left.
limits_cleanup() {
    for d in "$CGROOT"/vmt-"$VMT_VARIANT"-*; do
        [ -d "$d" ] || continue
        echo 1 >"$d/cgroup.kill" 2>/dev/null
        i=0
        while grep -q '^populated 1' "$d/cgroup.events" 2>/dev/null && [ $i -lt 100 ]; do
            sleep 0.05
            i=$((i + 1))
        done
        find "$d" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
        rmdir "$d" 2>/dev/null
    done
    cg-test gc "$CGROOT" >/dev/null 2>&1
    for c in cpu memory pids; do
        case " $ROOT_BEFORE " in
            *" $c "*) echo "+$c" ;;
            *) echo "-$c" ;;
        esac >"$CGROOT/cgroup.subtree_control"
    done 2>/dev/null
}

# $T/leaf-files.sh OUT FILE...: a script a command runs inside its leaf to copy FILEs of
# its own cgroup into OUT ("FILE: content" lines; a missing file gives "FILE: -").
cat >"$T/leaf-files.sh" <<'LEAF'
cg="/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)"
out=$1
shift
for f in "$@"; do echo "$f: $(cat "$cg/$f" 2>/dev/null || echo -)"; done >"$out"
LEAF

# --- runc (scenarios 6*-runc-*) -------------------------------------------------------
# scripts/vm-test.sh puts Debian's runc in the image with two bundles, /vm/runc/docker
# (Docker's defaults on a pure cgroup v2 host) and /vm/runc/privileged; both run
# `sh /x/entry.sh`, with /x bound to $RUNC_X, and put the container in the cgroup
# /vmt-runc-VARIANT. The initramfs root cannot be pivot_root'ed away, so runc runs with
# --no-pivot (MS_MOVE + chroot); its state lives in /tmp.
RUNC_X=/tmp/vmt-runc-x
RUNC="runc --root /tmp/vmt-runc-state"

# runc_start VARIANT ID < SCRIPT: SCRIPT becomes /x/entry.sh (a fresh $RUNC_X with an
# empty ready/); start `runc run` in the background. Sets RUNC_PID; the container's
# stdout and stderr go to $T/ID.out and $T/ID.err.
runc_start() {
    rm -rf "$RUNC_X"
    mkdir -p "$RUNC_X/ready"
    cat >"$RUNC_X/entry.sh"
    $RUNC run --no-pivot --bundle "/vm/runc/$1" "$2" >"$T/$2.out" 2>"$T/$2.err" </dev/null &
    RUNC_PID=$!
}

# runc_wait ID LIMIT: wait for `runc run` (the container's init exited) at most LIMIT
# seconds, else kill the container and fail; sets RC. (A finished child stays a zombie
# until waited for, so "still running" is read from its state, not from kill -0.)
runc_wait() {
    end=$(($(now_cs) + $2 * 100))
    while [ -e "/proc/$RUNC_PID" ] && [ "$(sed 's/.*) //' "/proc/$RUNC_PID/stat" | cut -d' ' -f1)" != Z ]; do
        if [ "$(now_cs)" -ge "$end" ]; then
            $RUNC kill "$1" KILL 2>/dev/null
            wait "$RUNC_PID"
            fail "container $1 still running after $2 s; killed it. stderr: $(tail -n 5 "$T/$1.err" | tr '\n' '|')"
        fi
        sleep 0.05
    done
    wait "$RUNC_PID"
    RC=$?
}

# runc_gone ID VARIANT: runc removed the container (no state) and its cgroup.
runc_gone() {
    $RUNC state "$1" >/dev/null 2>&1 && fail "runc still has container $1: $($RUNC state "$1" | tr -d '\n')"
    [ ! -d "$CGROOT/vmt-runc-$2" ] || fail "the container's cgroup $CGROOT/vmt-runc-$2 is left: $(find "$CGROOT/vmt-runc-$2")"
}

# On any exit of a runc scenario: kill and delete what runc still has, remove its state
# and the container's cgroups, and give the root back the controllers it had (runc
# enables every controller at the root for the container's cgroup).
runc_cleanup() {
    for id in $($RUNC list -q 2>/dev/null); do
        $RUNC kill "$id" KILL >/dev/null 2>&1
        $RUNC delete -f "$id" >/dev/null 2>&1
    done
    rm -rf /tmp/vmt-runc-state "$RUNC_X"
    for d in "$CGROOT"/vmt-runc-*; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    # shellcheck disable=SC2013 # the file is one line of words
    for c in $(cat "$CGROOT/cgroup.subtree_control"); do
        case " $ROOT_BEFORE " in
            *" $c "*) ;;
            *) echo "-$c" >"$CGROOT/cgroup.subtree_control" 2>/dev/null ;;
        esac
    done
}

# runc_fixture M: the victims' command line inside a container (/x is $RUNC_X).
runc_fixture() { echo "cg-test-fixture --marker $1 --life 30 --ready /x/ready --late /x/late --late-on /x/trigger"; }

# runc_ended ID VARIANT CHECKS M: after container ID ended: the scenario's CHECKS on
# cg-test's stderr, no process with marker M, no leaf, nothing of runc's left, and the
# late marker never written.
runc_ended() {
    "$3" "$T/$1.err"
    assert_no_survivors "$4"
    assert_no_leaf
    runc_gone "$1" "$2"
    assert_no_late_on "$RUNC_X/late" "$RUNC_X/trigger"
}

# runc_stopped ID VARIANT ISOLATION CHECKS M: `docker stop`: TERM to the container's
# PID 1 (cg-test), whose run was seen alive; it runs the ladder and exits 143.
runc_stopped() {
    $RUNC kill "$1" TERM || fail "runc kill $1 TERM failed"
    runc_wait "$1" 30
    expect_rc "$RC" 143 "runc run after runc kill TERM"
    expect_line "$T/$1.err" 'received SIGTERM'
    expect_line "$T/$1.err" "^cg-test: done: isolation=$3 outcome=interrupted exit=143 "
    runc_ended "$1" "$2" "$4" "$5"
}

# runc_exit_code VARIANT ID ISOLATION CHECKS: exit code 7 passes through a container
# whose command left a daemon and a TERM-ignorer behind (killed after -k 1s); the
# command exits once the victims were seen alive (/x/go).
runc_exit_code() {
    m=$(marker ec)
    f=$(runc_fixture "$m")
    runc_start "$1" "$2" <<ENTRY
exec cg-test -v -k 1s -- sh -c '$f daemon --exit 0; $f ignore-term & i=0; while [ ! -e /x/go ] && [ \$i -lt 400 ]; do sleep 0.05; i=\$((i+1)); done; exit 7'
ENTRY
    wait_ready "$RUNC_X/ready" 2 20
    [ "$(victims "$m" | wc -l)" = 2 ] || fail "the 2 victims are not alive before the exit: $(victims "$m")"
    touch "$RUNC_X/go"
    runc_wait "$2" 30
    expect_rc "$RC" 7 "runc run (cg-test -- sh -c '... exit 7')"
    expect_line "$T/$2.err" "^cg-test: done: isolation=$3 outcome=failure exit=7 "
    expect_line "$T/$2.err" '^cg-test: 2 process(es) outlived the command'
    runc_ended "$2" "$1" "$4" "$m"
}

# runc_finish: clean up now, and check the root got back the controllers it had
# (runc enabled every controller there for the container's cgroup).
runc_finish() {
    runc_cleanup
    [ "$(cat "$CGROOT/cgroup.subtree_control")" = "$ROOT_BEFORE" ] ||
        fail "the root's controllers are [$(cat "$CGROOT/cgroup.subtree_control")], were [$ROOT_BEFORE]"
}
