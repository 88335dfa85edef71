//! Inland's end-to-end and attack suites live in `all/` (one test binary).
