//! Coarse clocks for jobs: enough to time work, too coarse for timing attacks.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// Wall-clock time, truncated to whole seconds; or, frozen, the second the job started.
pub(crate) struct CoarseWallClock {
    frozen_at: Option<Duration>,
}

fn now_secs() -> Duration {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Duration::from_secs(now.as_secs())
}

impl CoarseWallClock {
    pub(crate) fn new(frozen: bool) -> Self {
        CoarseWallClock {
            frozen_at: frozen.then(now_secs),
        }
    }
}

impl HostWallClock for CoarseWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        self.frozen_at.unwrap_or_else(now_secs)
    }
}

/// Monotonic time since the job started, truncated to milliseconds; or,
/// frozen, always zero: a job whose queries' duration could depend on one
/// person's data (the `dp` mode) sees no time pass.
pub(crate) struct CoarseMonotonicClock {
    start: Instant,
    frozen: bool,
}

impl CoarseMonotonicClock {
    pub(crate) fn new(frozen: bool) -> Self {
        CoarseMonotonicClock {
            start: Instant::now(),
            frozen,
        }
    }
}

impl HostMonotonicClock for CoarseMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000
    }
    fn now(&self) -> u64 {
        if self.frozen {
            return 0;
        }
        let ms = self.start.elapsed().as_millis() as u64;
        ms.saturating_mul(1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frozen clock shows no time passing, however long the work between
    /// two readings; a running one does.
    #[test]
    fn a_frozen_clock_stands_still() {
        let (frozen, running) = (CoarseMonotonicClock::new(true), CoarseMonotonicClock::new(false));
        let wall = CoarseWallClock::new(true);
        let first = wall.now();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(5) {
            std::hint::spin_loop();
        }
        assert_eq!(frozen.now(), 0);
        assert!(running.now() >= 5_000_000, "{}", running.now());
        assert_eq!(wall.now(), first);
    }
}
