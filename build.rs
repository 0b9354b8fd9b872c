//! Link the `cg-test` binary's unwinder statically on Linux glibc targets, where the C
//! compiler has one to offer (BENCHMARKS.md, "Start-up").
//!
//! Rust's standard library asks for the unwinder as `-lgcc_s`, so a dynamically linked
//! cg-test loads a third shared library, libgcc_s.so.1, whose constructor probes the
//! CPU with a run of CPUID instructions. On a virtual machine each of those traps to
//! the hypervisor; here that made up about 0.28 ms of a 2.4 ms `cg-test -- /bin/true`.
//! cg-test is built with `panic = "abort"`, so the unwinder only ever walks a stack for
//! a backtrace; libgcc_eh.a, the static archive of the same unwinder that gcc links for
//! `-static-libgcc`, does that as well.
//!
//! How: a linker script named `libgcc_s.so` that says `INPUT(<path of libgcc_eh.a>)`,
//! in a directory passed with `-L` to the links of the `cg-test` binary and of the
//! benchmark examples only (the library, the tests and the fixture keep the shared
//! unwinder). The linker searches a `-L` directory given on the command line before
//! its default ones, so `-lgcc_s` finds the script. Where the C compiler does not know libgcc_eh.a (no gcc), for a cross build,
//! another target, or a static build (which links libgcc_eh.a anyway), nothing is done
//! and cg-test links libgcc_s.so.1 as before.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let static_crt = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    // Only for the machine's own target: `cc` is the host's compiler, and its
    // libgcc_eh.a is of no use to a cross build.
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || static_crt
        || var("TARGET") != var("HOST")
    {
        return;
    }
    let Some(archive) = libgcc_eh() else {
        return;
    };
    let dir = PathBuf::from(var("OUT_DIR")).join("static-unwinder");
    let script = format!("INPUT({})\n", archive.display());
    if std::fs::create_dir_all(&dir).is_err()
        || std::fs::write(dir.join("libgcc_s.so"), script).is_err()
    {
        return;
    }
    println!("cargo:rustc-link-arg-bin=cg-test=-L{}", dir.display());
    // The start-up floor of scripts/bench.sh is linked as cg-test is.
    println!("cargo:rustc-link-arg-examples=-L{}", dir.display());
}

/// The absolute path of libgcc_eh.a as the C compiler that links cg-test knows it.
fn libgcc_eh() -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    // An unknown file comes back as its bare name.
    (out.status.success() && path.is_absolute() && path.is_file()).then_some(path)
}
