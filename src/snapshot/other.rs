//! Rows outside Linux, from the platform facade's process table: parent, stopped or
//! zombie, and the command line. CPU time, age and resident memory stay unknown here
//! (shown as `?`, `null` in the report) rather than guessed.

use super::ProcRow;
use crate::platform;

pub struct Reader;

impl Reader {
    pub fn new() -> Reader {
        Reader
    }

    pub fn row(&self, pid: i32) -> Option<ProcRow> {
        let info = platform::process_info(pid)?;
        let state = if info.zombie {
            'Z'
        } else if info.stopped {
            'T'
        } else {
            '?'
        };
        Some(ProcRow {
            pid,
            ppid: info.ppid,
            state,
            cpu: None,
            age: None,
            rss: None,
            cmdline: None,
        })
    }
}

/// The command line as the platform reads it: one string (the arguments' boundaries
/// are not recoverable from it).
pub fn cmdline(pid: i32) -> Option<Vec<Vec<u8>>> {
    platform::cmdline(pid).map(|c| vec![c.into_bytes()])
}
