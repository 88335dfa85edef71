//! A job's log: its log lines and captured stdout and stderr, bounded so a
//! job cannot fill the domain's disk through it.

use serde::{Deserialize, Serialize};

/// A line of the job's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// `debug`, `info`, `warn`, `error`, or `stdout`/`stderr` for captured output.
    pub level: String,
    /// The text.
    pub message: String,
}

/// A bounded job log: lines past the cap are counted, not kept.
#[derive(Debug, Default)]
pub(crate) struct JobLog {
    pub(crate) lines: Vec<LogLine>,
    bytes: usize,
    cap: usize,
    pub(crate) dropped: u64,
}

impl JobLog {
    pub(crate) fn new(cap: usize) -> Self {
        JobLog {
            cap,
            ..Default::default()
        }
    }

    pub(crate) fn push(&mut self, level: &str, message: String) {
        if self.bytes + message.len() > self.cap {
            self.dropped += 1;
            return;
        }
        self.bytes += message.len();
        self.lines.push(LogLine {
            level: level.to_string(),
            message,
        });
    }
}
