#!/usr/bin/env python3
"""tini's own test suite, run against cg-test (scripts/tini-test.sh runs this).

The test programs are tini's (https://github.com/krallin/tini, test/; MIT License,
Copyright (c) 2015 Thomas Orozco), taken at test time from Debian's tini source package
and never copied into this repository: reaping/stage_1.py and stage_2.py,
signals/test.py, pgroup/stage_1.py, sigconf/sigconf-test.c, pdeathsignal/stage_1.py
and stage_2.py. This runner is ours: for each of tini's six tests it starts the same
programs and makes the same checks as tini's test/run_inner_tests.py, with only the
init's invocation adapted from tini's flags to cg-test's:

  test          tini's invocation               cg-test's
  exit codes    tini -e N ... sh -c 'exit N'    cg-test -- sh -c 'exit N' (0..255; cg-test
                                                has no -e remapping, so the codes pass
                                                through, tini's "exclusive" half)
  reaping       subreaper-proxy tini / tini -s  cg-test --pid-ns   (see below)
  signals       tini  (TERM, USR1, USR2)        cg-test  and  cg-test --pid-ns
  pgroup        tini -g                         cg-test --forward-to group
                                                --compat no-watchdog   (see below)
  sigconf       sigconf-test tini cat ...       sigconf-test cg-test -- cat ...
                                                (and with --pid-ns)
  pdeathsignal  tini -vvv -p SIGUSR1 -- ...     cg-test -v --die-with-parent
                                                --signal USR1 -- ...  (stage_1.py builds
                                                the command line itself, so it gets a
                                                shim that translates tini's flags)

Two of tini's tests look at the init's children: reaping/stage_1.py waits until its
parent's descendants are itself alone, and requires them all in its process group;
the pgroup test waits until the init has exactly two descendants. cg-test's watchdog
is cg-test's child, in a session of its own (so a kill of cg-test's process group
cannot reach it), and would fail both. Under --pid-ns the command's parent is the
namespace's init, whose descendants are the run alone, so the reaping test runs
there. The pgroup test counts cg-test's own descendants, so it runs without the
watchdog (--compat no-watchdog, a hidden test flag); the watchdog has nothing to do
with what the test checks (that USR1 reaches the command's process group).

Tini-only features are not tested: -e (exit code remapping), -w (warn on reaping),
the warning when tini is not a subreaper, the TINI_* environment variables.

The pgroup test has a negative control: with cg-test's default --forward-to command,
USR1 reaches stage_1 alone, which ignores it, and the run must go on.

Hygiene: every process of a test carries CG_TEST_TINI_LANE=<test id> in its
environment; after each test none may be alive (scanned in /proc/*/environ), and any
that is gets killed by pid and fails the test. Prints PASS/FAIL per test and
`N passed, N failed`; exits non-zero on any failure.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time

import psutil

CG_TEST = os.environ["CG_TEST"]
TINI_TEST = os.environ["TINI_TEST_DIR"]  # tini's test/ directory
SIGCONF = os.environ["SIGCONF_TEST"]  # sigconf-test.c, compiled
LANE = "CG_TEST_TINI_LANE"
RUN = "%d" % os.getpid()

results = []


def busy_wait(condition, timeout):
    """tini's busy_wait: poll 100 times over `timeout` seconds."""
    for _ in range(100):
        if condition():
            return
        time.sleep(float(timeout) / 100)
    raise AssertionError("Condition was never met")


def env_for(test_id):
    env = dict(os.environ)
    env[LANE] = "%s-%s" % (RUN, test_id)
    return env


def survivors(test_id):
    entry = ("%s=%s-%s" % (LANE, RUN, test_id)).encode()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                env = f.read().split(b"\0")
            with open("/proc/%s/stat" % d) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if entry in env and state != "Z":
            found.append(int(d))
    return found


def check(test_id, what, fn):
    t0 = time.time()
    error = None
    try:
        fn(env_for(test_id))
    except Exception as e:  # noqa: BLE001 - any failure is the test's
        error = "%s: %s" % (type(e).__name__, e)
    # Nothing of the test may be left, whatever its verdict.
    for _ in range(20):
        left = survivors(test_id)
        if not left:
            break
        time.sleep(0.1)
    if left:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        error = (error + "; " if error else "") + "processes left: %s" % left
    if error:
        print("FAIL %s (%s): %s" % (test_id, what, error), flush=True)
    else:
        print("PASS %s (%s, %.1fs)" % (test_id, what, time.time() - t0), flush=True)
    results.append(error is None)


def t(name):
    return os.path.join(TINI_TEST, name)


# 1. Exit codes (tini's exit code test, without -e).
def exit_codes(env):
    for code in range(256):
        ret = subprocess.call(
            [CG_TEST, "-q", "--", "sh", "-c", "exit %d" % code],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert ret == code, "exit code test failed for %d, exit: %d" % (code, ret)


# 2. Reaping: stage_2 leaves 100 orphaned sleeps; stage_1 waits until its parent's
# descendants are itself alone, all in its process group, and no zombie is left.
def reaping(env):
    p = subprocess.Popen(
        [CG_TEST, "--pid-ns", "--", t("reaping/stage_1.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
    )
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, "Reaping test failed!\nOUT: %s\nERR: %s" % (out, err)


# 3. Signals: TERM, USR1 and USR2 to the init end test.py (SIG_DFL) with 128+N.
def signals(extra):
    def run(env):
        for signum in [signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2]:
            p = subprocess.Popen(
                [CG_TEST] + extra + ["--", t("signals/test.py")],
                env=env,
                stderr=subprocess.DEVNULL,
                universal_newlines=True,
            )
            busy_wait(lambda: len(psutil.Process(p.pid).children(recursive=True)) > 1, 10)
            p.send_signal(signum)
            ret = p.wait(timeout=60)
            assert ret == 128 + signum, "Signals test failed (ret was %d, expected %d)" % (
                ret,
                128 + signum,
            )

    return run


# 4. Process group: stage_1 ignores USR1 and waits for a child (sleep 1000) that does
# not; USR1 to the init must reach the group, end the child, then stage_1, then the
# init.
def pgroup(env):
    p = subprocess.Popen(
        [CG_TEST, "--forward-to", "group", "--compat", "no-watchdog", "--", t("pgroup/stage_1.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
    )
    try:
        busy_wait(lambda: len(psutil.Process(p.pid).children(recursive=True)) == 2, 10)
        p.send_signal(signal.SIGUSR1)
        busy_wait(lambda: p.poll() is not None, 10)
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate()


def pgroup_control(env):
    """The negative control: with --forward-to command (the default) USR1 reaches
    stage_1 alone, which ignores it, so the run goes on (the check above can fail)."""
    p = subprocess.Popen(
        [CG_TEST, "--compat", "no-watchdog", "--", t("pgroup/stage_1.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
    )
    try:
        busy_wait(lambda: len(psutil.Process(p.pid).children(recursive=True)) == 2, 10)
        p.send_signal(signal.SIGUSR1)
        time.sleep(2)
        assert p.poll() is None, "without --forward-to group the run should go on"
    finally:
        p.send_signal(signal.SIGTERM)  # cg-test's ladder ends it all
        p.communicate(timeout=30)


# 5. Signal configuration: what sigconf-test ignored (TTOU, SEGV, INT) and blocked
# (TTIN, ILL, TERM) before exec'ing the init must reach the command unchanged.
def sigconf(extra):
    def run(env):
        out = subprocess.check_output(
            [SIGCONF, CG_TEST] + extra + ["--", "cat", "/proc/self/status"],
            env=env,
            stderr=subprocess.DEVNULL,
            universal_newlines=True,
        )
        props = dict(
            (k.strip(), int(v.strip(), 16))
            for k, v in (line.split(":", 1) for line in out.splitlines() if ":" in line)
            if k.strip() in ("SigBlk", "SigIgn", "SigCgt")
        )
        for name, sigs in [
            ("SigIgn", [signal.SIGTTOU, signal.SIGSEGV, signal.SIGINT]),
            ("SigBlk", [signal.SIGTTIN, signal.SIGILL, signal.SIGTERM]),
        ]:
            for s in sigs:
                assert props[name] & (1 << (s - 1)), "%s (%d) is missing in %s!" % (
                    signal.Signals(s).name,
                    s,
                    name,
                )

    return run


# 6. Parent death: stage_1 starts the init (tini -vvv -p SIGUSR1 -- stage_2 ...);
# stage_2 SIGKILLs stage_1, the init's parent, and must then get SIGUSR1 (its handler
# writes "ok").
SHIM = """#!/bin/sh
# tini's flags as cg-test's, for tests that build tini's command line themselves.
cg='%s'
args=""
while [ $# -gt 0 ]; do
    case "$1" in
        -v*) args="$args -v" ;;
        -p) shift; args="$args --die-with-parent --signal $1" ;;
        -g) args="$args --forward-to group" ;;
        -s) ;;  # cg-test is always a child subreaper
        --) shift; break ;;
        *) break ;;
    esac
    shift
done
exec "$cg" $args -- "$@"
"""


def pdeathsignal(env):
    with tempfile.TemporaryDirectory() as d:
        shim = os.path.join(d, "tini")
        with open(shim, "w") as f:
            f.write(SHIM % CG_TEST)
        os.chmod(shim, 0o755)
        ret = os.path.join(d, "ret")
        open(ret, "w").close()
        p = subprocess.Popen(
            [t("pdeathsignal/stage_1.py"), shim, ret],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        p.wait(timeout=60)
        busy_wait(lambda: open(ret).read() == "ok", 10)


check("exit-codes", "cg-test -- sh -c 'exit N', N = 0..255", exit_codes)
check("reaping", "cg-test --pid-ns -- reaping/stage_1.py", reaping)
check("signals", "cg-test -- signals/test.py; TERM, USR1, USR2", signals([]))
check("signals-pid-ns", "cg-test --pid-ns -- signals/test.py", signals(["--pid-ns"]))
check("pgroup", "cg-test --forward-to group -- pgroup/stage_1.py; USR1", pgroup)
check("pgroup-control", "cg-test -- pgroup/stage_1.py; USR1 reaches stage_1 alone", pgroup_control)
check("sigconf", "sigconf-test cg-test -- cat /proc/self/status", sigconf([]))
check("sigconf-pid-ns", "sigconf-test cg-test --pid-ns -- cat ...", sigconf(["--pid-ns"]))
check("pdeathsignal", "cg-test -v --die-with-parent --signal USR1", pdeathsignal)

passed = sum(results)
failed = len(results) - passed
print("%d passed, %d failed" % (passed, failed))
sys.exit(0 if failed == 0 and passed > 0 else 1)
