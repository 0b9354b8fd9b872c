//! The one place cg-test sleeps: a poll over the signal source, the boundary's event
//! descriptor (`cgroup.events`, which raises POLLPRI when `populated` or `frozen`
//! changes) and the deadline. While the command runs, cg-test is blocked in poll and
//! uses no CPU.
//!
//! It also owns the signal plan: which signals cg-test takes over, and how the child
//! gets back exactly the signal mask and ignored signals cg-test itself was started
//! with.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use anyhow::Result;

use crate::platform::SignalSource;

/// Signals that make cg-test forward them to every process of the run and tear it down.
pub const TEARDOWN_SIGNALS: [i32; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// Signals passed on without teardown.
pub const FORWARD_SIGNALS: [i32; 3] = [libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];

/// Signals cg-test blocks but never reads: a closed stderr must give EPIPE, not kill
/// cg-test mid-teardown; and handing the terminal back and forth with tcsetpgrp from
/// a background group must not stop it.
const QUIET_SIGNALS: [i32; 3] = [libc::SIGPIPE, libc::SIGTTOU, libc::SIGTTIN];

/// Which signals cg-test handles, and what the child must get back.
pub struct SignalPlan {
    original_mask: libc::sigset_t,
    handled: Vec<i32>,
    /// Handled signals that were ignored when cg-test started (SIGCHLD, SIGCONT, or an
    /// extra signal cg-test needs): the child gets SIG_IGN back for them.
    ignored_at_start: Vec<i32>,
}

impl SignalPlan {
    /// Read this process's signal state as it was handed to us.
    ///
    /// A teardown or forward signal that was *ignored* when cg-test started (`nohup`
    /// ignores HUP; a shell ignores INT and QUIT for background jobs) stays ignored:
    /// cg-test neither handles nor blocks it, so the command sees the same thing it
    /// would have seen without cg-test.
    ///
    /// `extra` are signals cg-test needs whatever their disposition (the
    /// parent-death signal of `--die-with-parent`): a blocked signal is queued even
    /// when ignored, so the signal source reads it, and the child gets the original
    /// disposition back.
    pub fn capture(extra: &[i32]) -> SignalPlan {
        // SAFETY: querying the mask into memory we own.
        let original_mask = unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::sigprocmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
            mask
        };
        // SIGCONT: a job continued while cg-test runs (`bg`, then `fg`) must give the
        // command the terminal again (supervisor::Terminal::resume). Blocking it does
        // not keep cg-test stopped: the kernel continues a process whatever its mask.
        let always = extra.iter().copied().chain([libc::SIGCHLD, libc::SIGCONT]);
        let handled = TEARDOWN_SIGNALS
            .iter()
            .chain(FORWARD_SIGNALS.iter())
            .copied()
            .filter(|&s| !is_ignored(s))
            .chain(always.clone())
            .collect();
        SignalPlan {
            original_mask,
            handled,
            ignored_at_start: always.filter(|&s| is_ignored(s)).collect(),
        }
    }

    /// Signals cg-test reads from the signal source.
    pub fn handled(&self) -> &[i32] {
        &self.handled
    }

    /// A sigset of the handled signals.
    pub fn handled_set(&self) -> libc::sigset_t {
        sigset(self.handled.iter().copied())
    }

    /// A sigset of every signal cg-test keeps blocked.
    pub fn blocked_set(&self) -> libc::sigset_t {
        sigset(self.handled.iter().copied().chain(QUIET_SIGNALS))
    }

    /// Undo dispositions that would break supervision: SIGCHLD set to SIG_IGN makes the
    /// kernel reap children itself, so waitpid could never report the command's status.
    pub fn take_dispositions(&self) {
        if self.ignored_at_start.contains(&libc::SIGCHLD) {
            // SAFETY: setting a standard disposition.
            unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
        }
    }

    /// In the child, between fork and exec: give back the original dispositions and
    /// mask. Only async-signal-safe calls.
    pub fn restore_in_child(&self) {
        // SAFETY: signal and sigprocmask are async-signal-safe; the mask is a copy.
        unsafe {
            // A handler must not run in the child once the mask is given back: a
            // self-pipe handler would write into cg-test's pipe. Where none is
            // installed (Linux), every handled signal is still as cg-test was given
            // it (SIG_DFL, or SIG_IGN put back below), so the loop would be nothing
            // but system calls in the window where cg-test waits for the exec.
            if crate::platform::INSTALLS_SIGNAL_HANDLERS {
                for &sig in &self.handled {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
            for &sig in &self.ignored_at_start {
                libc::signal(sig, libc::SIG_IGN);
            }
            libc::sigprocmask(libc::SIG_SETMASK, &self.original_mask, std::ptr::null_mut());
        }
    }
}

fn is_ignored(sig: i32) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

fn sigset(sigs: impl Iterator<Item = i32>) -> libc::sigset_t {
    // SAFETY: initialising and filling a sigset we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in sigs {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// What woke the loop.
#[derive(Debug, Default)]
pub struct Wake {
    /// Signals received, in order (SIGCHLD included).
    pub signals: Vec<i32>,
    /// The boundary's event descriptor fired.
    pub boundary: bool,
    /// The deadline has passed.
    pub deadline_passed: bool,
}

/// The poll loop.
pub struct EventLoop {
    signals: SignalSource,
    /// A pipe whose data wakes the loop (`--pid-ns`: the init's reports), polled as a
    /// copy of the descriptor so its owner may close its own at any time.
    watched: Option<OwnedFd>,
}

impl EventLoop {
    pub fn new(signals: SignalSource) -> EventLoop {
        EventLoop {
            signals,
            watched: None,
        }
    }

    /// Also wake when `fd` has data. Once it hangs up it is dropped, so a closed pipe
    /// cannot keep the loop spinning; whoever reads it still finds what was left.
    pub fn watch(&mut self, fd: BorrowedFd<'_>) -> Result<()> {
        self.watched = Some(fd.try_clone_to_owned()?);
        Ok(())
    }

    /// Sleep until a signal arrives, the boundary reports a change, or the deadline
    /// passes; return everything that happened.
    pub fn wait(
        &mut self,
        boundary: Option<BorrowedFd<'_>>,
        deadline: Option<Instant>,
    ) -> Result<Wake> {
        let mut fds = vec![libc::pollfd {
            fd: self.signals.fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(b) = boundary {
            fds.push(libc::pollfd {
                fd: b.as_raw_fd(),
                events: libc::POLLPRI,
                revents: 0,
            });
        }
        let boundary_slot = fds.len() - 1;
        if let Some(w) = &self.watched {
            fds.push(libc::pollfd {
                fd: w.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let timeout_ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so we never wake a millisecond early and spin.
                i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
            }
        };
        // SAFETY: fds is a valid array of pollfd for its length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(anyhow::Error::new(err).context("poll"));
            }
        }
        let mut wake = Wake::default();
        if fds[0].revents != 0 {
            wake.signals = self.signals.drain();
        }
        wake.boundary = boundary.is_some() && fds[boundary_slot].revents != 0;
        if self.watched.is_some() && fds[fds.len() - 1].revents & libc::POLLHUP != 0 {
            self.watched = None;
        }
        wake.deadline_passed = deadline.is_some_and(|d| Instant::now() >= d);
        Ok(wake)
    }
}
