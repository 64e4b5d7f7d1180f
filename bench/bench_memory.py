"""RSS of the process serving the HTTP API after 1,000 mixed requests vs after the first 100 (growth)."""

from __future__ import annotations

import http.client
from pathlib import Path

from bench.common import emit, fmt, stack_in_subprocess, token_for

TARGETS = {"gateway_rss_growth": "<= 1.10x"}
PATHS = ("/events", "/laps?limit=100", "/auth/me")
REQUESTS_PER_CONNECTION = 10  # new connections too: the gateway keeps per-thread request state
FIRST, TOTAL = 100, 1000


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def send(base_url: str, token: str, start: int, count: int) -> None:
    host, port = base_url.split("//", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    for i in range(start, start + count):
        if i % REQUESTS_PER_CONNECTION == 0:
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", PATHS[i % len(PATHS)], headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {PATHS[i % len(PATHS)]} answered {response.status}")
    conn.close()


def main() -> None:
    with stack_in_subprocess() as remote:
        token = token_for(remote.stack)
        started_kb = rss_kb(remote.stack.api_pid)
        send(remote.stack.api_url, token, 0, FIRST)
        first_kb = rss_kb(remote.stack.api_pid)
        send(remote.stack.api_url, token, FIRST, TOTAL - FIRST)
        total_kb = rss_kb(remote.stack.api_pid)
    per_request_bytes = (total_kb - first_kb) * 1024 / (TOTAL - FIRST)
    note = (
        f"lower is better; VmRSS of the API process after {TOTAL} vs after {FIRST} requests "
        f"({', '.join(PATHS)} round robin, a new connection every {REQUESTS_PER_CONNECTION}); "
        f"{fmt(started_kb / 1024)} MB before any request; "
        f"{fmt(per_request_bytes)} bytes/request after the first {FIRST}"
    )
    emit("gateway_rss_growth", total_kb / 1024, first_kb / 1024, "MB", note)


if __name__ == "__main__":
    main()
