"""Schemathesis hooks for the domain server: a job submission is a
WebAssembly component (`application/wasm`) and a source archive a gzip
file (`application/gzip`), each sent as the bytes generated; a domain
policy is TOML text (`application/toml`)."""

import schemathesis

schemathesis.serializer.alias("application/wasm", "application/octet-stream")
schemathesis.serializer.alias("application/gzip", "application/octet-stream")
schemathesis.serializer.alias("application/toml", "text/plain")
