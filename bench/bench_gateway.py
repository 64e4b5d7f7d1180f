"""Warm GET /laps?limit=100 through our local gateway and through `chalice local`, vs the same SQL plus
json.dumps in a psycopg loop (the floor)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from bench.common import (
    REPO,
    LoadResult,
    Stack,
    account_id_for,
    emit,
    fmt,
    http_load,
    percentile,
    stack_in_subprocess,
    token_for,
)
from infra.local.ports import free_port, wait_listening

TARGETS = {"gateway_laps_rps": ">= 0.4x", "chalice_local_laps_rps": "below ours"}
PATH = "/laps?limit=100"
LIMIT = 100
THREADS = 4
SECONDS = 4.0


def laps_sql() -> str:
    """The SQL GET /laps?limit=100 runs (columns, scope, keyset order, page size + 1), as plain text."""
    from chalicelib.domain.records import LAPS

    columns = ", ".join(f.column for f in LAPS.fields)
    order = ", ".join(LAPS.order)
    return f"SELECT {columns} FROM laps WHERE account_id = %s ORDER BY {order} LIMIT {LIMIT + 1}"


def floor_rate(database_url: str, account_id: str, threads: int, seconds: float) -> float:
    """Pages per second: the route's query, rows as dicts, json.dumps of the page; one connection per thread."""
    import psycopg
    from psycopg.rows import dict_row

    sql = laps_sql()
    stop_at = time.monotonic() + 0.3 + seconds
    start_at = stop_at - seconds
    counts = [0] * threads

    def worker(n: int) -> None:
        with psycopg.connect(database_url, row_factory=dict_row) as conn:
            while (now := time.monotonic()) < stop_at:
                rows = conn.execute(sql, (account_id,)).fetchall()
                body = json.dumps({"items": rows[:LIMIT], "nextCursor": None}, default=str)
                if now >= start_at and body:
                    counts[n] += 1

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / seconds


def chalice_local(stack: Stack) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    chalice = os.path.join(os.path.dirname(sys.executable), "chalice")
    child = subprocess.Popen(
        [chalice, "local", "--no-autoreload", "--host", "127.0.0.1", "--port", str(port), "--stage", "local"],
        cwd=REPO,
        env={**keep, **stack.env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_listening("127.0.0.1", port, 30, what="chalice local")
    return child, f"http://127.0.0.1:{port}"


def warm_up(base_url: str, headers: dict[str, str]) -> None:
    """One request alone first: the app builds its connection pool on the first request, and concurrent
    first requests would each build one (chalicelib.store.postgres.pool is a functools.cache, no lock)."""
    import requests

    requests.get(base_url + PATH, headers=headers, timeout=30).raise_for_status()


def main() -> None:
    with stack_in_subprocess() as remote:
        stack = remote.stack
        headers = {"Authorization": f"Bearer {token_for(stack)}"}
        account_id = account_id_for(stack)
        floors = {n: floor_rate(stack.database_url, account_id, n, SECONDS / 2) for n in (1, THREADS)}
        floor = max(floors.values())
        floor_note = f"floor: best of 1 thread ({fmt(floors[1])}/s) and {THREADS} threads ({fmt(floors[THREADS])}/s)"

        warm_up(stack.api_url, headers)
        ours = http_load(stack.api_url, [PATH], headers=headers, threads=THREADS, seconds=SECONDS)
        peer_process, peer_url = chalice_local(stack)
        try:
            warm_up(peer_url, headers)
            peer = http_load(peer_url, [PATH], headers=headers, threads=THREADS, seconds=SECONDS)
        finally:
            peer_process.terminate()
            peer_process.wait(timeout=10)

    def note(r: LoadResult) -> str:
        p50 = percentile(r.latencies_s, 50) * 1000 if r.latencies_s else 0.0
        p99 = percentile(r.latencies_s, 99) * 1000 if r.latencies_s else 0.0
        return (
            f"higher is better; {THREADS} keep-alive client threads, {fmt(SECONDS)} s; p50 {fmt(p50)} ms, "
            f"p99 {fmt(p99)} ms; {r.failures} failures; {floor_note}"
        )

    emit("gateway_laps_rps", ours.rate, floor, "req/s", note(ours))
    emit(
        "chalice_local_laps_rps",
        peer.rate,
        floor,
        "req/s",
        note(peer) + f"; ours/chalice local = {fmt(ours.rate / peer.rate) if peer.rate else 'inf'}",
    )


if __name__ == "__main__":
    main()
