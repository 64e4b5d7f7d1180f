"""The limits every plugin runs under; docs/plugins.md quotes them."""

from __future__ import annotations

MAX_BUNDLE_BYTES = 1024 * 1024
MAX_MANIFEST_BYTES = 16 * 1024
# A JSON-escaped 1 MB bundle plus its manifest fits in this request body.
MAX_UPLOAD_BODY_BYTES = 3 * 1024 * 1024

DEFAULT_TIMEOUT_MS = 1000
MAX_TIMEOUT_MS = 5000
MIN_TIMEOUT_MS = 10
# Hard cap on the V8 heap of a plugin's context; array buffers get the same budget per call.
MEMORY_LIMIT_BYTES = 64 * 1024 * 1024
MAX_OUTPUT_BYTES = 1024 * 1024
# Laps handed to a kpiProcessor in one call (a 24-hour race is about 800 laps per car).
MAX_KPI_LAPS = 5000

# Capabilities.
FETCH_TIMEOUT_S = 3.0
FETCH_MAX_RESPONSE_BYTES = 1024 * 1024
FETCH_MAX_REQUEST_BYTES = 256 * 1024
FETCH_MAX_CALLS = 20  # per invocation
STORAGE_MAX_KEY_CHARS = 256
STORAGE_MAX_VALUE_BYTES = 64 * 1024
STORAGE_MAX_KEYS = 1000  # per account and plugin
STORAGE_MAX_CALLS = 100  # per invocation

# The sandbox: one worker process per account (sandbox.py), at most this many per API process /
# Lambda container; each keeps its own compile cache.
SANDBOX_MAX_WORKERS = 4
CACHE_MAX_ENTRIES = 16  # per worker
CACHE_MAX_BYTES = 128 * 1024 * 1024  # per worker
# A worker whose memory grows more than this during one call is killed (V8's own limits cannot stop
# every built-in mid-allocation).
SANDBOX_MAX_CALL_GROWTH_BYTES = 256 * 1024 * 1024
# How long past its own time limits a worker may stay silent before it is presumed wedged.
SANDBOX_WATCH_MARGIN_S = 2.0
