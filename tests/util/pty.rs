//! A pseudo-terminal pair whose descriptors are close-on-exec from the moment they
//! exist. The tests run in parallel threads of one process: glibc's `openpty` opens
//! both ends inheritable, so a cg-test that another test spawns at that moment would
//! inherit them (and a transparency test would see a stray `/dev/ptmx`). The slave
//! reaches the child it is meant for through `Stdio`, which dup2s it (dup2 clears
//! the flag on the copy).

use std::os::fd::OwnedFd;

use nix::fcntl::{open, OFlag};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt, OpenptyResult};
use nix::sys::stat::Mode;

pub fn open_pty() -> OpenptyResult {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = posix_openpt(flags).expect("posix_openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname_r(&master).expect("ptsname_r");
    let slave = open(name.as_str(), flags, Mode::empty()).expect("opening the pty's slave");
    OpenptyResult {
        master: OwnedFd::from(master),
        slave,
    }
}
