"""Lap ingest: POST /laps with 1,000 laps per request through the local gateway, in laps/s, against
the floor of psycopg COPY of the same rows straight into the laps table (one transaction per 1,000).

Ours does everything a real batch does: HTTP, JSON, authentication, validation, the run-sheet
lookup, COPY into laps, a lap.create domain event per lap (plus the webhook outbox query), the
commit, and queueing the session room's summary message (SQS on the emulator). Requests and COPYs are
interleaved so both see the same machine; each figure is laps per request / median seconds per
request (the machine is shared: a median is not moved by one stalled request).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import statistics
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from bench.common import account_id_for, emit, local_stack, percentile, token_for

TARGETS = {
    "lap_ingest_laps_per_s": ">= 0.3x",
    "lap_ingest_idempotent_laps_per_s": ">= 0.3x",
    "lap_ingest_5000_laps_per_s": ">= 0.3x",
}
WHY_BEHIND = {
    "lap_ingest_laps_per_s": "Besides the laps' COPY (what the floor measures), a request parses and validates "
    "the laps, COPYs a lap.create domain event per lap (plus the webhook outbox query) and, after the commit, queues "
    "the room's one summary message (an SQS send; the publisher pushes it from its own process); the events' COPY "
    "costs a good part of what the floor does.",
    "lap_ingest_idempotent_laps_per_s": "As lap_ingest_laps_per_s, plus the Idempotency-Key record (DynamoDB, "
    "before and after the write).",
    "lap_ingest_5000_laps_per_s": "Same work as the 1,000-lap figure; the room message is paid once per request, so "
    "larger batches sit a little closer to the floor.",
}
LAPS_PER_REQUEST = 1_000
ROUNDS = 15
WARMUP_ROUNDS = 2
BIG_BATCH = 5_000  # the largest batch POST /laps takes: fixed costs per request amortised
BIG_ROUNDS = 4
COPIED_COLUMNS = (
    "id",
    "account_id",
    "run_sheet_id",
    "session_id",
    "car_id",
    "lap_number",
    "lap_time_ms",
    "sector_times_ms",
    "is_in_lap",
    "is_out_lap",
    "is_valid",
    "pit_time_ms",
    "flag",
    "driver_id",
    "driver_number",
    "stint",
    "fuel_l",
    "tyre_set",
    "recorded_at",
    "custom",
    "source",
    "created_at",
    "updated_at",
)


def lap(run_sheet_id: str, number: int) -> dict[str, Any]:
    """A realistic lap as a timing client sends it."""
    lap_time_ms = 100_000 + (number * 37) % 2_000
    s1, s2 = lap_time_ms * 28 // 100, lap_time_ms * 38 // 100
    return {
        "runSheetId": run_sheet_id,
        "lapNumber": number,
        "lapTimeMs": lap_time_ms,
        "sectorTimesMs": [s1, s2, lap_time_ms - s1 - s2],
        "isInLap": number % 30 == 0,
        "isOutLap": number % 30 == 1,
        "isValid": number % 13 != 0,
        "flag": "GF",
        "driverNumber": "1",
        "stint": 1 + number // 30,
        "fuelL": 60.5,
        "tyreSet": "S1",
        "recordedAt": "2026-03-19T14:00:00Z",
        "custom": {"kph": 180.2},
    }


class Client:
    """One keep-alive connection; pre-encoded bodies so the client costs little next to the server."""

    def __init__(self, base_url: str, token: str) -> None:
        target = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port or 80, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        self.conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
        response = self.conn.getresponse()
        raw = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {raw[:300]!r}")
        return json.loads(raw) if raw else None

    def post(self, path: str, body: Any) -> Any:
        return self.call("POST", path, json.dumps(body).encode())


def run_sheets(client: Client, count: int) -> list[dict[str, Any]]:
    event = client.post("/events", {"name": "Lap ingest bench"})
    session = client.post("/sessions", {"eventId": event["id"], "name": "Race", "type": "race"})
    sheets = []
    for n in range(count):
        car = client.post("/cars", {"eventId": event["id"], "number": str(n + 1)})
        sheets.append(client.post("/run-sheets", {"sessionId": session["id"], "carId": car["id"]}))
    return sheets


def copy_rows(database_url: str, account_id: str, sheet: dict[str, Any], count: int) -> float:
    """The floor: the same laps, as rows, COPYed into laps and committed; seconds."""
    import psycopg
    from psycopg.types.json import Jsonb

    now = dt.datetime.now(dt.UTC)
    laps = [lap(sheet["id"], n) for n in range(1, count + 1)]
    with psycopg.connect(database_url) as conn:
        started = time.perf_counter()
        with conn.transaction(), conn.cursor().copy(f"COPY laps ({', '.join(COPIED_COLUMNS)}) FROM STDIN") as copy:
            for item in laps:
                copy.write_row(
                    (
                        uuid.uuid4(),
                        account_id,
                        sheet["id"],
                        sheet["sessionId"],
                        sheet["carId"],
                        item["lapNumber"],
                        item["lapTimeMs"],
                        item["sectorTimesMs"],
                        item["isInLap"],
                        item["isOutLap"],
                        item["isValid"],
                        None,
                        item["flag"],
                        None,
                        item["driverNumber"],
                        item["stint"],
                        item["fuelL"],
                        item["tyreSet"],
                        item["recordedAt"],
                        Jsonb(item["custom"]),
                        "api",
                        now,
                        now,
                    )
                )
        return time.perf_counter() - started


def measure(
    client: Client,
    stack: Any,
    account_id: str,
    sheets: list[dict[str, Any]],
    laps_per_request: int,
    rounds: int,
    kinds: tuple[str, ...],
) -> tuple[dict[str, list[float]], list[float]]:
    """Per round: one request of each kind, then one COPY of as many rows; seconds each (after a warm-up)."""
    bodies = [
        json.dumps({"laps": [lap(sheet["id"], n) for n in range(1, laps_per_request + 1)]}).encode() for sheet in sheets
    ]
    width = len(kinds) + 1
    ours: dict[str, list[float]] = {kind: [] for kind in kinds}
    floor: list[float] = []
    for i in range(WARMUP_ROUNDS + rounds):
        for offset, kind in enumerate(kinds):
            headers = {"Idempotency-Key": str(uuid.uuid4())} if kind == "idempotent" else None
            started = time.perf_counter()
            answer = client.call("POST", "/laps", bodies[width * i + offset], headers)
            elapsed = time.perf_counter() - started
            assert answer["created"] == laps_per_request, answer
            if i >= WARMUP_ROUNDS:
                ours[kind].append(elapsed)
        floor_s = copy_rows(stack.database_url, account_id, sheets[width * i + len(kinds)], laps_per_request)
        if i >= WARMUP_ROUNDS:
            floor.append(floor_s)
    return ours, floor


def main() -> None:
    with local_stack() as stack:
        client = Client(stack.api_url, token_for(stack))
        account_id = account_id_for(stack)
        sheets = run_sheets(client, 3 * (WARMUP_ROUNDS + ROUNDS) + 2 * (WARMUP_ROUNDS + BIG_ROUNDS))
        ours, floor = measure(
            client,
            stack,
            account_id,
            sheets[: 3 * (WARMUP_ROUNDS + ROUNDS)],
            LAPS_PER_REQUEST,
            ROUNDS,
            ("plain", "idempotent"),
        )
        big, big_floor = measure(
            client, stack, account_id, sheets[3 * (WARMUP_ROUNDS + ROUNDS) :], BIG_BATCH, BIG_ROUNDS, ("plain",)
        )
        # Medians: this machine is shared, and one stalled request should not decide the figure.
        floor_rate = LAPS_PER_REQUEST / statistics.median(floor)
        for kind, name in (("plain", "lap_ingest_laps_per_s"), ("idempotent", "lap_ingest_idempotent_laps_per_s")):
            p50 = statistics.median(ours[kind])
            emit(
                name,
                LAPS_PER_REQUEST / p50,
                floor_rate,
                "laps/s",
                f"higher is better; POST /laps of {LAPS_PER_REQUEST} laps"
                f"{' with Idempotency-Key' if kind == 'idempotent' else ''}: p50 {p50 * 1000:.0f} ms "
                f"(p90 {percentile(ours[kind], 90) * 1000:.0f}) "
                f"vs COPY p50 {statistics.median(floor) * 1000:.0f} ms",
            )
        p50 = statistics.median(big["plain"])
        emit(
            "lap_ingest_5000_laps_per_s",
            BIG_BATCH / p50,
            BIG_BATCH / statistics.median(big_floor),
            "laps/s",
            f"higher is better; POST /laps of {BIG_BATCH} laps: p50 {p50 * 1000:.0f} ms vs COPY p50 "
            f"{statistics.median(big_floor) * 1000:.0f} ms",
        )


if __name__ == "__main__":
    main()
