# The probes of tests/adversary/harden.rs, run as root inside (or outside) a cg-test run.
# Every probe prints one line per thing tried: "<what> ok" or "<what> <ERRNO NAME>",
# "<what> absent" where the file does not exist on this kernel. Nothing here writes to a
# file of the host: the usermode-helper files are only opened for writing, never written.
# The first argument after the probe's name is the test's marker (so every process of a
# test carries it); it is otherwise unused.
import ctypes
import errno
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)


class FileHandle(ctypes.Structure):
    _fields_ = [
        ("bytes", ctypes.c_uint),
        ("type", ctypes.c_int),
        ("h", ctypes.c_ubyte * 128),
    ]


def err(e):
    return errno.errorcode.get(e, str(e))


def say(what, result):
    print(what, result, flush=True)


def try_(what, f):
    try:
        f()
        say(what, "ok")
    except FileNotFoundError:
        say(what, "absent")
    except OSError as e:
        say(what, err(e.errno))


def open_w(path):
    # O_WRONLY alone: no O_TRUNC, no O_CREAT, nothing written.
    os.close(os.open(path, os.O_WRONLY))


def save_handle(path, out):
    fh = FileHandle()
    fh.bytes = 128
    mount_id = ctypes.c_int()
    if libc.name_to_handle_at(-100, path.encode(), ctypes.byref(fh), ctypes.byref(mount_id), 0):
        sys.exit("name_to_handle_at %s: %s" % (path, os.strerror(ctypes.get_errno())))
    with open(out, "w") as f:
        f.write("%d %s\n" % (fh.type, bytes(fh.h[: fh.bytes]).hex()))


def move_by_handle(handle_file, mount_point, pid):
    """open_by_handle_at on the saved handle of a cgroup directory, through the cgroup2
    mount this process sees, then write `pid` into that cgroup's cgroup.procs."""
    kind, hexed = open(handle_file).read().split()
    raw = bytes.fromhex(hexed)
    fh = FileHandle()
    fh.type, fh.bytes = int(kind), len(raw)
    fh.h[: len(raw)] = list(raw)
    mfd = os.open(mount_point, os.O_RDONLY | os.O_DIRECTORY)
    fd = libc.open_by_handle_at(mfd, ctypes.byref(fh), os.O_RDONLY | os.O_DIRECTORY)
    if fd < 0:
        say("open_by_handle_at", err(ctypes.get_errno()))
        return 1
    say("open_by_handle_at", "ok")
    procs = os.open("cgroup.procs", os.O_WRONLY, dir_fd=fd)
    os.write(procs, str(pid).encode())
    say("moved", pid)
    return 0


def the_init():
    """What the command can do to the namespace's init (pid 1)."""
    PTRACE_SEIZE = 0x4206
    if libc.ptrace(PTRACE_SEIZE, 1, 0, 0) == 0:
        say("ptrace-seize", "ok")  # detached when this process exits
    else:
        say("ptrace-seize", err(ctypes.get_errno()))
    try_("root", lambda: os.listdir("/proc/1/root/"))
    try_("cwd", lambda: os.listdir("/proc/1/cwd/"))
    # Listing /proc/1/fd is plain DAC; what a descriptor leads to needs ptrace access.
    try_("fd", lambda: [os.stat("/proc/1/fd/" + n) for n in os.listdir("/proc/1/fd/")])
    try_("ns-cgroup", lambda: os.readlink("/proc/1/ns/cgroup"))
    try_("mem", lambda: os.close(os.open("/proc/1/mem", os.O_RDONLY)))


def fstype(fd):
    buf = ctypes.create_string_buffer(256)
    if libc.fstatfs(fd, buf) != 0:
        return None
    return int.from_bytes(buf.raw[:8], sys.byteorder)


def visible(marker):
    """Every process this one can see that is neither the namespace's init, itself, nor
    carries the marker; and every descriptor of its own on a cgroup filesystem."""
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in (1, me):
            continue
        try:
            cmdline = open("/proc/%s/cmdline" % name, "rb").read()
        except OSError:
            continue
        if marker.encode() not in cmdline:
            say("foreign-pid", name)
    for name in os.listdir("/proc/self/fd"):
        t = fstype(int(name)) if name.isdigit() else None
        if t in (0x63677270, 0x27E0EB):  # CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC
            say("cgroup-fd", "%s -> %s" % (name, os.readlink("/proc/self/fd/" + name)))
    say("visible", "done")


def leaf(mount_point):
    """The leaf's own files, as this process reaches them: through the cgroup2 mount
    and its /proc/self/cgroup path (`/` inside a cgroup namespace rooted at the leaf)."""
    path = [l[3:] for l in open("/proc/self/cgroup").read().splitlines() if l.startswith("0::")][0]
    d = mount_point + path.rstrip("/")
    for f in ("cgroup.max.descendants", "cgroup.max.depth"):
        try_("write " + f, lambda: write_and_check(d + "/" + f, "5"))
    # Opened only: a write would freeze or kill the run, or change its type.
    for f in ("cgroup.freeze", "cgroup.kill", "cgroup.type", "cgroup.pressure",
              "memory.max", "pids.max", "cpu.max", "memory.high", "io.max",
              "cgroup.procs", "cgroup.threads", "cgroup.subtree_control"):
        if os.path.exists(d + "/" + f):
            try_("open " + f, lambda: open_w(d + "/" + f))


def write_and_check(path, value):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)
    got = open(path).read().strip()
    if got != value:
        raise OSError(errno.EIO, "read back %r" % got)


def helpers(extra):
    """The files through which root makes the kernel start a program outside the run
    (usermode helpers), or moves itself in a cgroup v1 hierarchy (`extra`: a v1
    cgroup.procs and release_agent): opened for writing only."""
    for path in ["/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe",
                 "/proc/sys/kernel/poweroff_cmd", "/proc/sysrq-trigger",
                 "/sys/kernel/uevent_helper"] + extra:
        try_(path, lambda: open_w(path))


def tiocsti(out):
    """Push one byte into the input of the controlling terminal (what a process of the
    run would do to have the shell outside run a command after cg-test exits). The
    byte is a newline: nothing reads the test's terminal afterwards anyway."""
    import fcntl
    import termios

    try:
        fd = os.open("/dev/tty", os.O_RDWR)
        fcntl.ioctl(fd, termios.TIOCSTI, b"\n")
        result = "ok"
    except OSError as e:
        result = err(e.errno)
    with open(out, "w") as f:
        f.write("tiocsti %s\n" % result)


def main():
    probe, _marker, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if probe == "save-handle":
        save_handle(*args)
    elif probe == "move-by-handle":
        sys.exit(move_by_handle(args[0], args[1], int(args[2])))
    elif probe == "the-init":
        the_init()
    elif probe == "visible":
        visible(_marker)
    elif probe == "leaf":
        leaf(args[0])
    elif probe == "tiocsti":
        tiocsti(args[0])
    elif probe == "helpers":
        helpers(args)
    else:
        sys.exit("unknown probe " + probe)


main()
