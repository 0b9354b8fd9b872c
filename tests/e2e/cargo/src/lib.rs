//! A crate whose test starts a background worker in its own process group and returns
//! without stopping it: the worker outlives `cargo test`. The worker is
//! tests/e2e/helper.sh (bounded life, marker, protocol in tests/e2e/README.md).

pub fn answer() -> u32 {
    42
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    #[test]
    fn answer_is_42() {
        assert_eq!(super::answer(), 42);
    }

    #[test]
    fn starts_a_background_worker() {
        let state = std::env::var("E2E_STATE").expect("E2E_STATE is set by scripts/e2e.sh");
        let helper = std::env::var("E2E_HELPER").expect("E2E_HELPER is set by scripts/e2e.sh");
        let worker = Command::new("sh")
            .arg(&helper)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the background worker");
        let ready = format!("{state}/ready.{}", worker.id());
        let give_up = Instant::now() + Duration::from_secs(15);
        while !Path::new(&ready).exists() {
            assert!(Instant::now() < give_up, "the worker never wrote {ready}");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Dropping a Child neither waits for nor kills it: the worker lives on.
        drop(worker);
    }
}
