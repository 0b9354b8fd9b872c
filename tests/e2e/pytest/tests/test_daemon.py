import os


def test_daemon_is_up(daemon):
    os.kill(daemon, 0)  # raises if the daemon is gone


def test_arithmetic():
    assert 6 * 7 == 42
