//! Coarse clocks for jobs: enough to time work, too coarse for timing attacks.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// Wall-clock time, truncated to whole seconds.
pub(crate) struct CoarseWallClock;

impl HostWallClock for CoarseWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Duration::from_secs(now.as_secs())
    }
}

/// Monotonic time since the job started, truncated to milliseconds.
pub(crate) struct CoarseMonotonicClock {
    start: Instant,
}

impl CoarseMonotonicClock {
    pub(crate) fn new() -> Self {
        CoarseMonotonicClock { start: Instant::now() }
    }
}

impl HostMonotonicClock for CoarseMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }
    fn now(&self) -> u64 {
        let ms = self.start.elapsed().as_millis() as u64;
        ms.saturating_mul(1_000_000)
    }
}
