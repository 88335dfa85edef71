#!/usr/bin/env bash
# The full crash suite (#24): SIGKILLs at random points of every mutating
# command, each followed by `inland doctor` and a check that nothing a
# command reported done was lost. CI runs 50 kills; this runs more.
#   scripts/crash-suite.sh [KILLS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
export INLAND_CRASH_KILLS="${1:-220}"
if [ -n "${2:-}" ]; then export INLAND_CRASH_SEED="$2"; fi
cargo test -p inland-cli --test crash every_mutating_command -- --nocapture
