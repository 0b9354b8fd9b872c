//! Non-Linux side of [`crate::namespaces`]: there are no pid or cgroup namespaces, so
//! `--pid-ns` and `--harden` are refused before anything is made, and the types the
//! spawn step names cannot exist.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

use anyhow::{bail, Result};

use super::InitRecord;

/// Never made: the flags are refused here.
#[derive(Debug)]
enum Never {}

/// Where a step of the init's set-up failed (the same names as on Linux).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NsStep {
    UserMaps,
    PrivateMounts,
    MountProc,
}

pub struct PidNs(Never);

impl PidNs {
    pub fn prepare() -> Result<PidNs> {
        bail!("--pid-ns needs Linux (pid and mount namespaces); drop the flag")
    }

    pub fn clone_init(&self) -> io::Result<i32> {
        match self.0 {}
    }

    pub fn enter(&self, _alive: RawFd) -> Result<(), (NsStep, i32)> {
        match self.0 {}
    }
}

pub fn init_main(_command: i32, _status: RawFd, _control: RawFd) -> ! {
    // SAFETY: leaving the process; never reached (no PidNs exists here).
    unsafe { libc::_exit(125) }
}

#[derive(Debug)]
pub struct NsInit(Never);

impl NsInit {
    pub fn new(_pid: i32, _status: OwnedFd, _control: OwnedFd) -> NsInit {
        unreachable!("no pid namespaces outside Linux")
    }

    pub fn pid(&self) -> i32 {
        match self.0 {}
    }

    pub fn status_fd(&self) -> Option<BorrowedFd<'_>> {
        match self.0 {}
    }

    pub fn read_first(&mut self) -> Option<InitRecord> {
        match self.0 {}
    }

    pub fn go_ahead(&self) {
        match self.0 {}
    }

    pub fn read_records(&mut self) -> Vec<InitRecord> {
        match self.0 {}
    }
}

pub fn host_pid(_init: i32, _ns_pid: i32) -> Option<i32> {
    None
}

/// Where a step of `--harden` failed (the same names as on Linux).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HardenStep {
    InitDumpable,
    InitDetach,
    InitReadOnly,
    Unshare,
    MountCgroup2,
    SealLeaf,
    DropCapabilities,
    Seccomp,
}

pub struct Harden(Never);

impl Harden {
    pub fn prepare() -> Result<Harden> {
        bail!("--harden needs Linux (cgroup namespaces, capabilities); drop the flag")
    }

    pub fn seal_init(&self) -> Result<(), (HardenStep, i32)> {
        match self.0 {}
    }

    pub fn enter_cgroup_namespace(&self) -> Result<(), (HardenStep, i32)> {
        match self.0 {}
    }

    pub fn drop_privileges(&self) -> Result<(), (HardenStep, i32)> {
        match self.0 {}
    }
}
