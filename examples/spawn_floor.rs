//! `spawn_floor`: the least a Rust supervisor built like cg-test can cost, the
//! reference `scripts/bench.sh` sets cg-test's start-up against. A benchmark tool only
//! (an example target, so `cargo install` never installs it).
//!
//!     spawn_floor COMMAND [ARG]...
//!
//! Built with cg-test's release profile and linked the same way (build.rs), it starts
//! from the C `main` as cg-test does, then only spawns COMMAND (posix_spawn) and waits:
//! no argument parsing, no cgroup, no watchdog, no signal handling. What a cg-test run
//! costs over this is the price of what cg-test does.
#![no_main]

use std::os::raw::{c_char, c_int};

/// The C entry point. Not for calling from Rust: the C runtime passes `argv` and `envp`.
#[no_mangle]
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub extern "C" fn main(
    argc: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    if argc < 2 {
        return 125;
    }
    // SAFETY: argv has argc valid entries and a null after them, envp is the C
    // runtime's environment; posix_spawn copies neither.
    unsafe {
        let command = argv.add(1).cast::<*mut c_char>();
        let mut pid: libc::pid_t = 0;
        // glibc's posix_spawn is a clone(CLONE_VM | CLONE_VFORK) and an exec: the
        // cheapest spawn there is, like cg-test's clone3 (src/platform/linux.rs).
        if libc::posix_spawn(
            &mut pid,
            *command,
            std::ptr::null(),
            std::ptr::null(),
            command,
            envp.cast(),
        ) != 0
        {
            return 125;
        }
        let mut status = 0;
        if libc::waitpid(pid, &mut status, 0) < 0 {
            return 125;
        }
        if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        }
    }
}
