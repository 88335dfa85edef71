//! Inland benchmarks.
