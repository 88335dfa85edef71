#!/usr/bin/env bash
# Runs schemathesis (pip) with every check against a real `inland serve` on a
# throwaway domain, once with an admin's token and once with a reviewer's.
# Usage: scripts/schemathesis.sh PATH/TO/inland [max-examples]
set -euo pipefail
INLAND="$1"
EXAMPLES="${2:-25}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'kill "${SERVER:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
"$INLAND" init ./domain > /dev/null
printf 'district,age,income\n东城区,30,100\n西城区,40,200\n' > residents.csv
"$INLAND" --domain ./domain dataset add residents residents.csv --description "residents" > /dev/null
"$INLAND" --domain ./domain reviewer add chen > /dev/null
token() { "$INLAND" --domain ./domain token issue "$@" | tail -n 1; }
ADMIN="$(token --role admin --name root)"
REVIEWER="$(token --role reviewer --name chen)"
PORT=$((20000 + RANDOM % 20000))
"$INLAND" --domain ./domain serve --listen "127.0.0.1:$PORT" > serve.log 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/openapi.json" > /dev/null && break
    sleep 0.1
done
for who in "$ADMIN" "$REVIEWER"; do
    # Revoking tokens would end the run's own authentication: that path is
    # covered by the server's tests instead.
    PYTHONPATH="$HERE/scripts" SCHEMATHESIS_HOOKS=schemathesis_hooks \
        schemathesis --config-file "$HERE/scripts/schemathesis.toml" run "http://127.0.0.1:$PORT/openapi.json" \
        --checks all --max-examples "$EXAMPLES" --seed 1 \
        --exclude-method DELETE \
        -H "Authorization: Bearer $who"
done
if grep -q ' ERROR ' serve.log; then
    grep ' ERROR ' serve.log >&2
    echo "the server logged errors" >&2
    exit 1
fi
