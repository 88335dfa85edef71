"""Schemathesis hooks for the domain server: a job submission is a
WebAssembly component (`application/wasm`), sent as the bytes generated."""

import schemathesis

schemathesis.serializer.alias("application/wasm", "application/octet-stream")
