"""A session fixture that starts a classic double-forked daemon and never stops it.

The daemon follows the e2e protocol (tests/e2e/README.md): it announces itself in
$E2E_STATE/ready.<pid>, then exits when $E2E_STATE/release appears (after writing
late.<pid>) or after $E2E_LIFE seconds.
"""

import glob
import os
import time

import pytest

STATE = os.environ["E2E_STATE"]
LIFE = float(os.environ.get("E2E_LIFE", "60"))


def _announce():
    cgroup = "-"
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                cgroup = line[3:].strip()
    tmp = f"{STATE}/.ready.{os.getpid()}"
    with open(tmp, "w") as f:
        run_id = os.environ.get("CG_TEST_RUN_ID", "-")
        f.write(f"{os.getpid()} {os.getppid()} {cgroup} {run_id}\n")
    os.rename(tmp, f"{STATE}/ready.{os.getpid()}")


def _daemon_main():
    end = time.monotonic() + LIFE
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    _announce()
    while time.monotonic() < end:
        if os.path.exists(f"{STATE}/release"):
            with open(f"{STATE}/late.{os.getpid()}", "w") as f:
                f.write("late\n")
            break
        time.sleep(0.1)


@pytest.fixture(scope="session")
def daemon():
    child = os.fork()
    if child == 0:
        # Never return into pytest from a forked copy of it.
        try:
            os.setsid()
            if os.fork() == 0:
                _daemon_main()
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    give_up = time.monotonic() + 15
    while not glob.glob(f"{STATE}/ready.*"):
        assert time.monotonic() < give_up, "the daemon never announced itself"
        time.sleep(0.05)
    ready = glob.glob(f"{STATE}/ready.*")[0]
    yield int(ready.rsplit(".", 1)[1])
    # No teardown: the daemon is left running, which is the bug under test.
