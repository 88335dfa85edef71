#!/usr/bin/env bash
# Refreshes the SQL job component Inland ships (runtime/src/jobs/sql-job.wasm)
# from examples/jobs/sql-job, after the guest SDK, its WIT or the job changed.
# `sql_jobs::the_shipped_sql_job_is_the_one_this_tree_builds` checks that the
# shipped component presents the same world as this tree's build.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --tests >/dev/null
target="${CARGO_TARGET_DIR:-target}"
cp "$target/wasm-jobs/wasm32-wasip2/release/sql_job.wasm" runtime/src/jobs/sql-job.wasm
sha256sum runtime/src/jobs/sql-job.wasm
