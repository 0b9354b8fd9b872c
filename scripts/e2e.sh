#!/usr/bin/env bash
# Real test suites end to end: each project under tests/e2e/ is copied to a fresh temp
# directory, installed from its registry (npm, PyPI; cargo and make need none), and run
# with and without cg-test. Everything is checked from outside: the process table
# (/proc/*/environ, cwd, cmdline) and the cgroup tree (the cgroup2 mount found through
# /proc/self/mountinfo), never by process name.
#
#   vitest 3, pool 'forks'  a test hanging on an open promise under --timeout 20s -> 124,
#                           nothing left; the incident: the vitest main process SIGKILLed
#                           (not its tree) while 3 workers spin -> the workers are gone
#                           (and, as a control, without cg-test they keep spinning)
#   pnpm 9 workspace        `pnpm test` leaves a detached node http server -> reported as
#                           leaked, killed (control: it survives pnpm)
#   pytest                  a session fixture double-forks a daemon and never stops it
#                           -> reported, killed; --fail-on-leak -> 123 (control: survives)
#   cargo test / make check a test / a recipe leaves a background process -> reported,
#                           killed (control: survives)
#
# Every process a project starts carries E2E_MARK=<unique marker> in its environment,
# has a bounded life (E2E_LIFE seconds, then it exits by itself) and follows one
# protocol (tests/e2e/README.md): it writes $E2E_STATE/ready.<pid> with its pid, parent,
# cgroup and CG_TEST_RUN_ID, and once $E2E_STATE/release exists it writes late.<pid>
# and exits. A killed process therefore never writes late.<pid>; the controls show that
# a surviving one does.
#
# Prints one line per case (PASS/FAIL, its time, the reason) and ends with
# `N passed, N failed`; exits non-zero on any failure. Needs node (20.19+, for vite 7)
# with npm, python3 with venv, cargo, make, setsid, and the npm registry and PyPI.
#
# Environment:
#   E2E_KEEP=1       keep the temp directory (logs, projects) and say where it is
#   E2E_ONLY=GLOB    run only the cases whose name matches (e.g. 'pytest-*'); the
#                    last case, nothing-left, always runs

# The cases and setup steps are called by name (run_case, setup_$project).
# shellcheck disable=SC2317
set -uo pipefail
shopt -s nullglob

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1

# Pinned versions (vitest and vite are pinned in tests/e2e/vitest/package-lock.json).
PNPM_VERSION=9.15.9
PYTEST_VERSION=9.0.2
LIFE=60             # seconds any helper process lives at most
INSTALL_LIMIT=180   # seconds any one install step may take (each takes ~2-10 s here)

script_start=$EPOCHREALTIME
say() { echo "e2e: $*"; }
elapsed() { # START -> seconds since START, one decimal
    local now=$EPOCHREALTIME
    awk -v a="$1" -v b="$now" 'BEGIN { printf "%.1f", b - a }'
}

passed=0
failed=0
record() { # STATUS NAME START REASON
    local secs
    secs=$(elapsed "$3")
    printf '%s %s (%ss): %s\n' "$1" "$2" "$secs" "$4"
    if [[ $1 == PASS ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
finish() {
    say "total $(elapsed "$script_start")s"
    echo "$passed passed, $failed failed"
    ((failed == 0))
    exit
}

for tool in node npm npx python3 cargo make setsid; do
    if ! command -v "$tool" >/dev/null; then
        say "error: '$tool' not found on PATH; install it (see the header of $0)"
        failed=1
        finish
    fi
done

# --- build ----------------------------------------------------------------------------
say "building cg-test (cargo build --release)"
t=$EPOCHREALTIME
if ! cargo build --release --locked --quiet --bin cg-test </dev/null; then
    record FAIL build "$t" "cargo build --release failed"
    finish
fi
bin="${CARGO_TARGET_DIR:-target}/release/cg-test"
[[ $bin == /* ]] || bin="$repo/$bin"
say "built $bin in $(elapsed "$t")s"

# --- the run's temp dir, marker and cgroup2 mount --------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/cg-test-e2e.XXXXXXXX")
mark=${work##*/}

# The cgroup2 mount: mountinfo's mount point (field 5) of the first line whose
# filesystem type (the field after the lone "-") is cgroup2.
cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' \
    /proc/self/mountinfo)
if [[ -n $cg2 ]]; then
    say "cgroup2 mount: $cg2"
else
    say "no cgroup2 mount: cg-test will fall back to its pgroup isolation; leaf checks are skipped"
fi
# cg-test leaves that already exist (other runs on this machine), to tell ours apart.
list_leaves() { [[ -n $cg2 ]] && find "$cg2" -type d -name 'cg-test-*' 2>/dev/null | sort; }
leaves_before=$(list_leaves)
# The run ids the helpers reported, and `<pid>-<start time>` of every command this script
# launched: cg-test names its leaf cg-test-<its pid>-<its start time>-<nonce>, and a
# launched command is cg-test itself (exec'd), so its leaves are known exactly even when
# no helper reported.
run_ids=()
launched_ids=()

# Processes of this run: the marker in their environment, their cwd in the temp dir, or
# the temp dir in their argv. (One grep/find each; this shell and its subshells carry
# none of these.)
marked_pids() {
    {
        # The patterns come from files, so that grep's own argv cannot match.
        grep -lszxF -f <(echo "E2E_MARK=$mark") /proc/[0-9]*/environ
        grep -lszF -f <(echo "$work") /proc/[0-9]*/cmdline
        find /proc/[0-9]*/cwd -maxdepth 0 \( -lname "$work" -o -lname "$work/*" \) 2>/dev/null
    } | cut -d/ -f3 | sort -un | while read -r pid; do
        [[ $pid == "$$" || $pid == "$BASHPID" || ! -e /proc/$pid ]] || echo "$pid"
    done
}
# Processes that carry CG_TEST_RUN_ID=ID.
run_id_pids() { grep -lszxF "CG_TEST_RUN_ID=$1" /proc/[0-9]*/environ | cut -d/ -f3; }
describe_pids() { # PID... -> "pid (cmdline)" list
    local pid out=""
    for pid in "$@"; do
        out+="$pid ($(tr -s '\0 ' '  ' 2>/dev/null <"/proc/$pid/cmdline" | cut -c1-80 | sed 's/ $//')) "
    done
    echo "${out% }"
}
kill_pids() { local pid; for pid in "$@"; do kill -KILL "$pid" 2>/dev/null; done; }
# kill_marked PID...: SIGKILL each PID that is still a process of this run (a pid the
# kernel reused for someone else's process is left alone).
kill_marked() { local pid; for pid in "$@"; do alive "$pid" && kill -KILL "$pid" 2>/dev/null; done; }
# stat_field PID N: field N of /proc/PID/stat as proc(5) numbers them (3 state, 4 ppid,
# 14 utime, 15 stime). The fields are counted after the command name, which may contain
# spaces and parentheses (vitest titles its workers "node (vitest 1)").
stat_field() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    awk -v n="$(($2 - 2))" '{ print $n }' <<<"$stat"
}
# alive PID: the process exists, is not a zombie, and carries our marker (so a reused pid
# never counts).
alive() {
    local state
    state=$(stat_field "$1" 3) || return 1
    [[ $state != Z ]] || return 1
    grep -qszxF "E2E_MARK=$mark" "/proc/$1/environ"
}

# kill_leftovers WHO: kill this shell's unwaited background jobs (their pids cannot be
# reused) and every process of this run, by pid, saying which.
kill_leftovers() {
    local pids
    # shellcheck disable=SC2046
    kill_pids $(jobs -p)
    pids=$(marked_pids)
    if [[ -n $pids ]]; then
        # shellcheck disable=SC2086
        say "$1: killing leftover processes of this run: $(describe_pids $pids)"
        # shellcheck disable=SC2086
        kill_pids $pids
    fi
    wait
} 2>/dev/null # (bash's "Killed" notices for the jobs)
cleanup() {
    local rc=$?
    kill_leftovers cleanup
    if [[ ${E2E_KEEP:-} == 1 ]]; then
        say "kept $work"
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# project_env STATE: the environment every project command gets.
project_env() {
    echo "E2E_MARK=$mark" "E2E_STATE=$1" "E2E_LIFE=$LIFE" "E2E_HELPER=$work/helper.sh"
}
new_state() { # NAME -> a fresh state dir
    local d=$work/state/$1
    mkdir -p "$d" && echo "$d"
}
ready_files() { local f; for f in "$1"/ready.*; do echo "$f"; done; }
count_ready() { local a=("$1"/ready.*); echo "${#a[@]}"; }
# wait_ready STATE N SECONDS: wait until N helpers have announced themselves.
wait_ready() {
    local deadline=$((SECONDS + $3))
    while (($(count_ready "$1") < $2)); do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}
# field FILE N: field N of a ready file (1 pid, 2 ppid, 3 cgroup, 4 run id, 5 extra).
field() { awk -v n="$2" '{ print $n }' "$1"; }
ready_pids() { local f; for f in $(ready_files "$1"); do field "$f" 1; done; }
log_tail() { sed -n 's/^/    | /p' "$1" | tail -n "${2:-15}"; }

# in_leaf READY: the helper reported a cg-test leaf named after its CG_TEST_RUN_ID. Prints
# the leaf's path (callers record the run id in run_ids for the last case). Without
# cgroup2 there is no leaf to check.
in_leaf() {
    local cgroup run_id
    cgroup=$(field "$1" 3)
    run_id=$(field "$1" 4)
    [[ $run_id != - ]] || { echo "no CG_TEST_RUN_ID in its environment"; return 1; }
    [[ -n $cg2 ]] || { echo "(no cgroup2)"; return 0; }
    [[ $cgroup == */cg-test-"$run_id" ]] || { echo "cgroup $cgroup is not the leaf cg-test-$run_id"; return 1; }
    echo "$cg2$cgroup"
}

# after_run STATE RUN_ID LEAF: the checks after a cg-test run. Sets `why` on failure.
after_run() {
    local state=$1 run_id=$2 leaf=$3 pids late
    pids=$(marked_pids)
    if [[ -n $pids ]]; then
        # shellcheck disable=SC2086
        why="survivors after cg-test returned: $(describe_pids $pids)"
        # shellcheck disable=SC2086
        kill_pids $pids
        return 1
    fi
    if [[ -n $run_id ]]; then
        pids=$(run_id_pids "$run_id")
        # shellcheck disable=SC2086
        [[ -z $pids ]] || { why="processes still carry CG_TEST_RUN_ID=$run_id: $(describe_pids $pids)"; return 1; }
    fi
    if [[ -n $leaf && $leaf == /* && -e $leaf ]]; then
        why="the leaf $leaf still exists"
        return 1
    fi
    # Release whatever might still be hiding; a live helper would write late.<pid> within
    # ~0.1 s of seeing this file.
    touch "$state/release"
    sleep 1.5
    late=("$state"/late.*)
    if ((${#late[@]})); then
        why="a helper was still alive and wrote ${late[*]##*/}"
        return 1
    fi
}

# check_leak_lines LOG PID...: cg-test listed every PID in its table of leaked processes
# (`cg-test: N process(es) outlived the command ...`, then one row per process starting
# with its pid and parent pid) and the summary counts at least that many.
check_leak_lines() {
    local log=$1 pid n table
    shift
    table=$(sed -n '/^cg-test: [0-9]* process(es) outlived the command/,/^cg-test: done:/p' "$log")
    for pid in "$@"; do
        grep -Eq "^cg-test: +$pid +[0-9]+ [A-Za-z] " <<<"$table" ||
            { why="pid $pid is not a row of cg-test's table of leaked processes"; return 1; }
    done
    n=$(sed -n 's/^cg-test: done: .* leaked=\([0-9]*\)$/\1/p' "$log" | tail -n 1)
    [[ -n $n ]] || { why="no 'cg-test: done: ... leaked=N' summary"; return 1; }
    ((n >= $#)) || { why="summary says leaked=$n, expected at least $#"; return 1; }
    leaked_n=$n
}

# --- setup: copy the projects and install them (in parallel) ----------------------------
say "setting up the projects in $work"
cp -R tests/e2e/. "$work/"
mkdir -p "$work/state" "$work/logs" "$work/home"
# Caches and tool state live in the temp dir: nothing is reused between runs, nothing is
# left in the user's home. Fewer, shorter retries than npm's and pip's defaults, so that
# an unreachable registry fails the run within a minute or two instead of many.
export npm_config_cache=$work/home/npm-cache npm_config_update_notifier=false \
    npm_config_audit=false npm_config_fund=false \
    XDG_CACHE_HOME=$work/home/cache XDG_DATA_HOME=$work/home/data \
    XDG_STATE_HOME=$work/home/state XDG_CONFIG_HOME=$work/home/config \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    npm_config_fetch_retries=2 npm_config_fetch_retry_mintimeout=2000 \
    npm_config_fetch_retry_maxtimeout=10000 PIP_RETRIES=2 \
    CARGO_TARGET_DIR=$work/cargo/target
# pnpm is installed into the temp dir; `pnpm -r test` in the workspace finds it on PATH.
pnpm_bin=$work/pnpm-prefix/bin
export PATH="$pnpm_bin:$PATH"

# setup_step NAME HINT CMD...: run CMD (bounded), log to logs/NAME.log, and on failure
# write the reason (the first telling error line and HINT) to logs/NAME.failed.
setup_step() {
    local name=$1 hint=$2 rc=0 t=$EPOCHREALTIME
    shift 2
    timeout -k 5 "$INSTALL_LIMIT" "$@" </dev/null >>"$work/logs/$name.log" 2>&1 || rc=$?
    if ((rc != 0)); then
        local last
        # The first error line that says more than an error code, else the last line.
        last=$(grep -E '^(npm error|ERROR|error)' "$work/logs/$name.log" |
            grep -v -E '^npm error (code|syscall|errno|A complete log)|^npm error *$' | head -n 1)
        [[ -n $last ]] || last=$(tail -n 1 "$work/logs/$name.log")
        ((rc == 124)) && last="no answer within ${INSTALL_LIMIT}s"
        echo "'$*' exited $rc: ${last:-no output}; $hint" >"$work/logs/$name.failed"
        return 1
    fi
    echo "$(elapsed "$t")s" >>"$work/logs/$name.time"
}
# `npm install` with the committed lockfile rather than `npm ci`: npm leaves the other
# platforms' optional packages (rollup's, esbuild's) out of a lockfile it writes, and
# `npm ci` then refuses it as out of sync; `npm install` installs the locked versions.
# It also looks those optional packages up one by one, tolerating each failure, which
# takes minutes when the registry cannot be reached: one `npm view` first fails fast.
setup_vitest() {
    cd "$work/vitest" &&
        setup_step vitest "is the npm registry reachable?" \
            npm view "vitest@$(node -p 'require("./package.json").devDependencies.vitest')" version &&
        setup_step vitest "is the npm registry reachable?" npm install --no-audit --no-fund
}
setup_pnpm() {
    setup_step pnpm "is the npm registry reachable?" \
        npm install --global --prefix "$work/pnpm-prefix" --no-audit --no-fund "pnpm@$PNPM_VERSION" &&
        cd "$work/pnpm" &&
        setup_step pnpm "the workspace has no dependencies: pnpm needs no network here" \
            "$pnpm_bin/pnpm" install --offline
}
setup_pytest() {
    setup_step pytest "python3 needs the venv module (Debian: python3-venv)" python3 -m venv "$work/venv" &&
        setup_step pytest "is PyPI reachable?" "$work/venv/bin/pip" install --quiet "pytest==$PYTEST_VERSION"
}
setup_cargo() {
    cd "$work/cargo" &&
        setup_step cargo "the crate has no dependencies: this needs no network" cargo test --offline --no-run
}
t=$EPOCHREALTIME
for project in vitest pnpm pytest cargo; do
    (setup_$project) &
done
wait
for project in vitest pnpm pytest cargo; do
    if [[ -e $work/logs/$project.failed ]]; then
        say "setup $project FAILED: $(cat "$work/logs/$project.failed")"
        log_tail "$work/logs/$project.log"
    else
        say "setup $project: $(paste -sd+ "$work/logs/$project.time")"
    fi
done
say "setup done in $(elapsed "$t")s (in parallel)"
setup_failed() { # PROJECT: sets why when its setup failed
    [[ -e $work/logs/$1.failed ]] || return 1
    why="setup failed: $(cat "$work/logs/$1.failed")"
}

# --- cases -------------------------------------------------------------------------------
# Each case function sets `why` (the reason, for PASS or FAIL) and returns 0 or 1.
run_case() { # NAME FUNCTION
    local t=$EPOCHREALTIME
    # shellcheck disable=SC2053 # E2E_ONLY is a glob on purpose.
    [[ $1 == ${E2E_ONLY:-*} || $1 == nothing-left ]] || return 0
    why=""
    if "$2"; then
        record PASS "$1" "$t" "$why"
    else
        record FAIL "$1" "$t" "${why:-no reason given}"
        [[ -z ${case_log:-} || ! -e $case_log ]] || log_tail "$case_log"
        # A failed case may return with its project still running: stop it here so
        # the next case starts clean (the last case checks what passing cases left).
        kill_leftovers "$1"
    fi
    case_log=""
}

# launch DIR LOG STATE CMD...: start CMD in DIR in the background with the project
# environment; its pid is in $launched.
launch() {
    local dir=$1 log=$2 state=$3
    shift 3
    # shellcheck disable=SC2046
    (cd "$dir" && exec env $(project_env "$state") "$@") </dev/null >"$log" 2>&1 &
    launched=$!
    # The start time is the fork's, unchanged by the execs that follow.
    launched_ids+=("$launched-$(stat_field "$launched" 22)")
}
# run_fg DIR LOG STATE CMD...: the same in the foreground; sets rc.
run_fg() {
    launch "$@"
    rc=0
    wait "$launched" || rc=$?
}

# The vitest workers: after wait_ready, `workers` holds their pids, `main` their parent.
vitest_workers() {
    local state=$1 f p
    workers=()
    main=""
    for f in $(ready_files "$state"); do
        workers+=("$(field "$f" 1)")
        p=$(field "$f" 2)
        [[ -z $main || $main == "$p" ]] || { why="workers have different parents ($main, $p)"; return 1; }
        main=$p
    done
}
count_alive() { local n=0 pid; for pid in "$@"; do alive "$pid" && n=$((n + 1)); done; echo "$n"; }
cpu_ticks() { # PID... -> summed utime+stime
    local pid sum=0 s
    for pid in "$@"; do
        s=$(($(stat_field "$pid" 14 || echo 0) + $(stat_field "$pid" 15 || echo 0)))
        sum=$((sum + s))
    done
    echo "$sum"
}
# in_cgroup_procs LEAF PID...: every PID is listed in LEAF/cgroup.procs (read from outside).
in_cgroup_procs() {
    local leaf=$1 pid
    shift
    [[ -n $cg2 ]] || return 0
    for pid in "$@"; do
        grep -qx "$pid" "$leaf/cgroup.procs" 2>/dev/null || { why="pid $pid is not in $leaf/cgroup.procs"; return 1; }
    done
}

case_vitest_timeout() {
    setup_failed vitest && return 1
    local state log leaf run_id worker
    state=$(new_state vitest-timeout)
    log=$work/logs/vitest-timeout.log
    case_log=$log
    launch "$work/vitest" "$log" "$state" "$bin" --timeout 20s -- npx vitest run hang
    local cg=$launched
    if ! wait_ready "$state" 1 20; then
        why="the hanging test never announced itself within 20s"
        wait "$cg"
        return 1
    fi
    vitest_workers "$state" || return 1
    worker=${workers[0]}
    leaf=$(in_leaf "$(ready_files "$state")") || { why="worker $worker: $leaf"; return 1; }
    run_id=$(field "$(ready_files "$state")" 4)
    run_ids+=("$run_id")
    if [[ $(count_alive "$worker" "$main") != 2 ]]; then
        why="worker $worker or vitest main $main was not alive while the test hung"
        return 1
    fi
    in_cgroup_procs "$leaf" "$worker" "$main" || return 1
    local rc=0
    wait "$cg" || rc=$?
    ((rc == 124)) || { why="cg-test exited $rc, expected 124"; return 1; }
    after_run "$state" "$run_id" "$leaf" || return 1
    why="exit 124 after 20s; vitest main $main and its hanging worker $worker (alive in $leaf before) are gone, the leaf is removed, no late marker"
}

case_vitest_incident_control() {
    setup_failed vitest && return 1
    local state log before late
    state=$(new_state vitest-control)
    log=$work/logs/vitest-control.log
    case_log=$log
    launch "$work/vitest" "$log" "$state" npx vitest run spin
    local npx_pid=$launched
    if ! wait_ready "$state" 3 60; then
        why="only $(count_ready "$state") of 3 workers announced themselves within 60s"
        kill_pids "$npx_pid"
        # shellcheck disable=SC2046
        kill_marked $(ready_pids "$state")
        return 1
    fi
    vitest_workers "$state" || return 1
    [[ $(count_alive "${workers[@]}") == 3 ]] || { why="not all 3 workers were alive before the kill"; return 1; }
    alive "$main" || { why="vitest main $main was not alive before the kill"; return 1; }
    kill -KILL "$main"
    wait "$npx_pid"
    sleep 1
    local n
    n=$(count_alive "${workers[@]}")
    if ((n == 0)); then
        why="without cg-test the workers died with their parent: this control shows nothing"
        return 1
    fi
    before=$(cpu_ticks "${workers[@]}")
    sleep 0.5
    local spun=$(($(cpu_ticks "${workers[@]}") - before))
    local ppid
    ppid=$(stat_field "${workers[0]}" 4)
    touch "$state/release"
    local deadline=$((SECONDS + 10))
    while late=("$state"/late.*); ((${#late[@]} < n && SECONDS < deadline)); do sleep 0.1; done
    sleep 0.3
    kill_marked "${workers[@]}"
    ((${#late[@]} == n)) || { why="released survivors wrote ${#late[@]} of $n late markers"; return 1; }
    why="without cg-test: vitest main $main SIGKILLed, $n of 3 workers kept running (reparented to pid $ppid, $spun CPU ticks in 0.5s) and wrote their late markers when released"
}

case_vitest_incident() {
    setup_failed vitest && return 1
    local state log leaf run_id
    state=$(new_state vitest-incident)
    log=$work/logs/vitest-incident.log
    case_log=$log
    launch "$work/vitest" "$log" "$state" "$bin" --timeout 120s -- npx vitest run spin
    local cg=$launched
    if ! wait_ready "$state" 3 60; then
        why="only $(count_ready "$state") of 3 workers announced themselves within 60s"
        kill -TERM "$cg"
        wait "$cg"
        return 1
    fi
    vitest_workers "$state" || return 1
    local f
    for f in $(ready_files "$state"); do
        leaf=$(in_leaf "$f") || { why="worker $(field "$f" 1): $leaf"; return 1; }
    done
    run_id=$(field "$(ready_files "$state" | head -n 1)" 4)
    run_ids+=("$run_id")
    [[ $(count_alive "${workers[@]}") == 3 ]] || { why="not all 3 workers were alive before the kill"; return 1; }
    alive "$main" || { why="vitest main $main was not alive before the kill"; return 1; }
    in_cgroup_procs "$leaf" "${workers[@]}" "$main" || return 1
    kill -KILL "$main"
    local rc=0
    wait "$cg" || rc=$?
    if ((rc == 124 || rc == 125 || rc == 0)); then
        why="cg-test exited $rc; expected the status of npx after its vitest was killed"
        return 1
    fi
    check_leak_lines "$log" "${workers[@]}" || return 1
    after_run "$state" "$run_id" "$leaf" || return 1
    why="vitest main $main SIGKILLed while 3 workers spun in $leaf; npx exited, cg-test reported leaked=$leaked_n (the 3 workers among them) and killed them: exit $rc, nothing left, leaf removed, no late marker"
}

# control_case PROJECT NAME DIR CMD...: without cg-test, the project's helper outlives the
# command; released, it writes its late marker. Any survivor is then killed by pid.
control_case() {
    local project=$1 name=$2 dir=$3
    shift 3
    setup_failed "$project" && return 1
    local state log pids n late
    state=$(new_state "$name")
    log=$work/logs/$name.log
    case_log=$log
    run_fg "$dir" "$log" "$state" timeout -k 5 120 "$@"
    pids=$(ready_pids "$state")
    # shellcheck disable=SC2086
    ((rc == 0)) || { why="'$*' exited $rc"; kill_marked $pids; return 1; }
    [[ -n $pids ]] || { why="the helper never announced itself"; return 1; }
    # shellcheck disable=SC2086
    n=$(count_alive $pids)
    # shellcheck disable=SC2086
    ((n > 0)) || { why="without cg-test nothing survived: this control shows nothing"; return 1; }
    local survivors
    # shellcheck disable=SC2086
    survivors=$(describe_pids $pids)
    touch "$state/release"
    local deadline=$((SECONDS + 10))
    while late=("$state"/late.*); ((${#late[@]} < n && SECONDS < deadline)); do sleep 0.1; done
    sleep 0.3
    # shellcheck disable=SC2086
    kill_marked $pids
    ((${#late[@]} == n)) || { why="released survivors wrote ${#late[@]} of $n late markers"; return 1; }
    why="without cg-test '$*' exited 0 and left $survivors running; released, it wrote its late marker (then killed by pid)"
}

# leak_case PROJECT NAME DIR EXPECTED_RC [CG-TEST OPTION...] -- CMD...: under cg-test the
# helper is reported as leaked and killed, and cg-test exits EXPECTED_RC.
leak_case() {
    local project=$1 name=$2 dir=$3 expect=$4
    shift 4
    setup_failed "$project" && return 1
    local opts=()
    while [[ $1 != -- ]]; do opts+=("$1"); shift; done
    shift
    local state log f leaf="" run_id="" pids
    state=$(new_state "$name")
    log=$work/logs/$name.log
    case_log=$log
    run_fg "$dir" "$log" "$state" "$bin" --timeout 120s "${opts[@]}" -- "$@"
    pids=$(ready_pids "$state")
    [[ -n $pids ]] || { why="the helper never announced itself (cg-test exited $rc)"; return 1; }
    for f in $(ready_files "$state"); do
        leaf=$(in_leaf "$f") || { why="helper $(field "$f" 1): $leaf"; return 1; }
        run_id=$(field "$f" 4)
        run_ids+=("$run_id")
    done
    ((rc == expect)) || { why="cg-test exited $rc, expected $expect"; return 1; }
    # shellcheck disable=SC2086
    check_leak_lines "$log" $pids || return 1
    after_run "$state" "$run_id" "$leaf" || return 1
    local opt_text=""
    ((${#opts[@]})) && opt_text=" ${opts[*]}"
    why="cg-test$opt_text -- $* exited $rc; helper $pids (in $leaf) reported among leaked=$leaked_n and killed, leaf removed, no late marker"
}

pnpm_cmd=(pnpm test)
pytest_cmd=(../venv/bin/python -m pytest -q -p no:cacheprovider)
case_pnpm_control() { control_case pnpm pnpm-control "$work/pnpm" "${pnpm_cmd[@]}"; }
case_pnpm_leak() { leak_case pnpm pnpm-leak "$work/pnpm" 0 -- "${pnpm_cmd[@]}"; }
case_pytest_control() { control_case pytest pytest-control "$work/pytest" "${pytest_cmd[@]}"; }
case_pytest_leak() { leak_case pytest pytest-leak "$work/pytest" 0 -- "${pytest_cmd[@]}"; }
case_pytest_fail_on_leak() {
    leak_case pytest pytest-fail-on-leak "$work/pytest" 123 --fail-on-leak -- "${pytest_cmd[@]}"
}
case_cargo_control() { control_case cargo cargo-control "$work/cargo" cargo test --offline -q; }
case_cargo_leak() { leak_case cargo cargo-leak "$work/cargo" 0 -- cargo test --offline -q; }
case_make_control() { control_case make make-control "$work/make" make -s check; }
case_make_leak() { leak_case make make-leak "$work/make" 0 -- make -s check; }

# The last case: nothing of this run is left anywhere.
case_nothing_left() {
    local pids id leaf new tries=0
    # A process of this run may be on its way out (a failed case's killed helper leaves
    # its `sleep 0.1` to init): only one that stays for 2 s counts.
    while pids=$(marked_pids); [[ -n $pids ]] && ((tries++ < 20)); do sleep 0.1; done
    # shellcheck disable=SC2086
    [[ -z $pids ]] || { why="processes of this run still alive: $(describe_pids $pids)"; kill_pids $pids; return 1; }
    for id in "${run_ids[@]}"; do
        pids=$(run_id_pids "$id")
        # shellcheck disable=SC2086
        [[ -z $pids ]] || { why="processes with CG_TEST_RUN_ID=$id: $(describe_pids $pids)"; return 1; }
    done
    # The leaves of the cg-test processes this script started.
    for id in "${launched_ids[@]}"; do
        for leaf in $(list_leaves); do
            [[ ${leaf##*/} != cg-test-"$id"* ]] || {
                why="cgroup $leaf of this run still exists, members: $(tr '\n' ' ' <"$leaf/cgroup.procs" 2>/dev/null)"
                return 1
            }
        done
    done
    # Leaves that appeared meanwhile are other runs' on this machine (none on CI):
    # named, but no failure.
    new=$(comm -13 <(echo "$leaves_before") <(list_leaves) | sed '/^$/d' | wc -l)
    local others=""
    ((new == 0)) || others=" ($new cg-test-* leaves of other runs on this machine)"
    why="${#run_ids[@]} cg-test runs seen by their helpers; no process with the marker or their run ids; none of the leaves of the ${#launched_ids[@]} commands launched is left under ${cg2:-(no cgroup2)}$others"
}

echo
run_case vitest-timeout case_vitest_timeout
run_case vitest-incident-control case_vitest_incident_control
run_case vitest-incident case_vitest_incident
run_case pnpm-control case_pnpm_control
run_case pnpm-leak case_pnpm_leak
run_case pytest-control case_pytest_control
run_case pytest-leak case_pytest_leak
run_case pytest-fail-on-leak case_pytest_fail_on_leak
run_case cargo-control case_cargo_control
run_case cargo-leak case_cargo_leak
run_case make-control case_make_control
run_case make-leak case_make_leak
run_case nothing-left case_nothing_left
echo
finish
