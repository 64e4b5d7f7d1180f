"""Webhook deliveries per second, end to end (API write -> outbox row -> SQS -> worker -> receiver's 2xx),
against a raw loop of the same signed POSTs to the same receiver with a pooled HTTP client.

- webhook_deliveries_per_s: WRITES board-card creations through the HTTP API (WRITERS client threads)
  for an account with SUBSCRIPTIONS webhooks = 1,000 deliveries; the app's SQS handler runs under
  POLLERS local event source mappings (Lambda runs concurrent workers the same way); the clock stops
  when the receiver has acknowledged the 1,000th. Floor: one loop signing and POSTing 1,000 bodies of
  the same size over a urllib3 PoolManager.
- webhook_bulk_deliveries_per_s: the same 1,000 deliveries from BULK_WRITES lap batches (a timing
  feed posting BULK_LAPS laps per request, one subscription to lap events): what a bulk writer gets,
  where the per-write costs (HTTP, transaction, one SQS send) are shared by a hundred deliveries.
- webhook_worker_per_s: the worker alone (claim + concurrent signed POSTs + record, batches of 10,
  one worker) on 1,000 outbox rows, no queue: what our code costs next to the same raw loop.
- webhook_e2e_vs_sqs_floor: the end-to-end rate against the queue alone: the same 1,000 messages
  sent, received and deleted through the emulator in one loop (no database, no HTTP). The emulator
  (moto) scans its whole queue on every send and receive, so on this machine it, not our code,
  bounds the end-to-end figure; SQS itself does not.
The receiver is a separate process (HTTP/1.1 keep-alive, answers 200 at once), the same for all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from bench.common import account_id_for, cpu_seconds, cpu_split, emit, local_stack, token_for

TARGETS = {"webhook_deliveries_per_s": ">= 0.5x", "webhook_bulk_deliveries_per_s": ">= 0.5x"}
WHY_BEHIND = {
    "webhook_deliveries_per_s": "The emulator bounds it: every delivery costs moto an SQS send, receive and delete "
    "(~2.5 ms of CPU per call in one Python process), so on 2 cores moto alone cannot move the same 1,000 "
    "messages faster than webhook_e2e_vs_sqs_floor's floor (400-630/s, 0.15-0.2x of the raw POST loop); we "
    "reach 0.75-1.1x of that bound, and the CPU split printed with the figure shows moto busy for most of the "
    "run. The worker alone reaches 0.4-0.7x of the raw loop (webhook_worker_per_s).",
    "webhook_bulk_deliveries_per_s": "Borderline: 0.49-0.60x in runs since the emulator keeps its connections open "
    "(0.43-0.55x before; 0.33-0.41x before the API left the workers' process); the raw loop it is divided by moves "
    "1,900-2,450/s between runs. Ten sequential 100-lap writes are most of it (~75 ms each), and moto is busy for "
    "~80% of the run (the 100-event room-log transactions cost it ~13 ms of CPU each).",
}
DELIVERIES = 1000
SUBSCRIPTIONS = int(os.environ.get("BENCH_WEBHOOK_SUBSCRIPTIONS", "5"))
WRITES = DELIVERIES // SUBSCRIPTIONS
WRITERS = int(os.environ.get("BENCH_WEBHOOK_WRITERS", "4"))
POLLERS = int(os.environ.get("BENCH_WEBHOOK_POLLERS", "4"))
BATCH = 10
BULK_LAPS = 100
BULK_WRITES = DELIVERIES // BULK_LAPS

# The receiver: a separate process, counts POSTs, answers 200; GET /count says how many so far.
RECEIVER = r"""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
count = 0
lock = threading.Lock()
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave in separate writes
    def log_message(self, *args):
        pass
    def do_POST(self):
        global count
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            count += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def do_GET(self):
        body = str(count).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class ReceiverProcess:
    def __init__(self) -> None:
        import urllib3

        self.child = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
        assert self.child.stdout is not None
        self.port = int(self.child.stdout.readline())
        from tests.webhook_receiver import allow_outbound

        allow_outbound(self.port)  # loopback needs OUTBOUND_ALLOW in every stage
        self.http = urllib3.PoolManager(maxsize=2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/race"

    def count(self) -> int:
        return int(self.http.request("GET", f"http://127.0.0.1:{self.port}/count").data)

    def wait_for(self, total: int, timeout_s: float = 90.0) -> float:
        """Poll until the receiver has `total` requests; returns the perf_counter time it was seen."""
        deadline = time.monotonic() + timeout_s
        while self.count() < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the receiver got {self.count()} of {total} deliveries")
            time.sleep(0.005)
        return time.perf_counter()

    def stop(self) -> None:
        self.child.kill()
        self.child.wait()


def raw_loop_rate(receiver: ReceiverProcess, body: str) -> float:
    """Signed POSTs in a plain loop over a pooled client: the least work that delivers the same bytes."""
    import urllib3

    from chalicelib.webhooks import signing

    secret = signing.new_secret()
    http = urllib3.PoolManager(maxsize=1)
    before = receiver.count()
    started = time.perf_counter()
    for _ in range(DELIVERIES):
        headers = signing.headers(
            delivery_id=str(uuid.uuid4()),
            event_type="board_card.create",
            body=body,
            secrets_=[secret],
            timestamp_s=int(time.time()),
        )
        answer = http.request(
            "POST", receiver.url, body=body.encode(), headers=headers, retries=False, redirect=False, timeout=10.0
        )
        assert answer.status == 200
    elapsed = time.perf_counter() - started
    assert receiver.count() - before == DELIVERIES
    return DELIVERIES / elapsed


@contextmanager
def _pollers(stack: Any) -> Iterator[None]:
    """POLLERS event source mappings running the app's SQS handler, as Lambda runs concurrent workers."""
    import boto3

    from app import app
    from chalicelib.resources import ROOM_QUEUE
    from infra.local.sqs_poller import SqsPoller

    pollers = [
        SqsPoller(
            app,
            boto3.client("sqs", endpoint_url=stack.aws_endpoint_url, region_name="us-east-1"),
            wait_time_s=1,
            skip={ROOM_QUEUE.name},  # local_stack's room publisher polls it (one poller per FIFO queue)
        )
        for _ in range(POLLERS)
    ]
    for poller in pollers:
        poller.start_in_thread()
    try:
        yield
    finally:
        for poller in pollers:
            poller.stop()


def end_to_end_rate(stack: Any, token: str, receiver: ReceiverProcess) -> float:
    import requests

    sessions = threading.local()

    def write(n: int) -> None:
        if not hasattr(sessions, "http"):
            sessions.http = requests.Session()
            sessions.http.headers["Authorization"] = f"Bearer {token}"
        answer = sessions.http.post(f"{stack.api_url}/board-cards", json={"title": f"card {n}"}, timeout=30)
        assert answer.status_code == 201, answer.text

    with _pollers(stack):
        write(-1)  # warm-up: connections, pools, prepared statements (not measured)
        receiver.wait_for(SUBSCRIPTIONS)
        before = receiver.count()
        cpu = cpu_seconds()
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=WRITERS) as writers:
            list(writers.map(write, range(WRITES)))
        writes_done = time.perf_counter()
        finished = receiver.wait_for(before + DELIVERIES)
    print(
        f"# end to end: writes took {writes_done - started:.2f} s, the last delivery was acknowledged "
        f"{finished - writes_done:.2f} s after the last write; {cpu_split(cpu, finished - started)}",
        flush=True,
    )
    return DELIVERIES / (finished - started)


def bulk_rate(stack: Any, token: str, receiver: ReceiverProcess) -> float:
    """BULK_WRITES lap batches of BULK_LAPS laps, one subscription to lap.create: 1,000 deliveries."""
    import requests

    from bench.bench_lap_ingest import lap

    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"

    def post(path: str, body: Any) -> Any:
        answer = http.post(f"{stack.api_url}{path}", json=body, timeout=60)
        assert answer.status_code == 201, answer.text
        return answer.json()

    event = post("/events", {"name": "Webhook bulk bench"})
    session = post("/sessions", {"eventId": event["id"], "name": "Race", "type": "race"})
    car = post("/cars", {"eventId": event["id"], "number": "7"})
    sheet = post("/run-sheets", {"sessionId": session["id"], "carId": car["id"]})
    post(
        "/webhooks",
        {"url": receiver.url, "entityTypes": ["lap"], "operations": ["create"], "description": "bench bulk"},
    )
    batches = [
        {"laps": [lap(sheet["id"], w * BULK_LAPS + n + 1) for n in range(BULK_LAPS)]} for w in range(BULK_WRITES)
    ]
    with _pollers(stack):
        before = receiver.count()
        cpu = cpu_seconds()
        started = time.perf_counter()
        for batch in batches:
            post("/laps", batch)
        writes_done = time.perf_counter()
        finished = receiver.wait_for(before + DELIVERIES)
    print(
        f"# bulk: {BULK_WRITES} lap batches took {writes_done - started:.2f} s, the last delivery was "
        f"acknowledged {finished - writes_done:.2f} s after the last write; {cpu_split(cpu, finished - started)}",
        flush=True,
    )
    return DELIVERIES / (finished - started)


def worker_rate(stack: Any, receiver: ReceiverProcess) -> float:
    """1,000 outbox rows (no queue messages) handed to the worker in batches of 10, one batch at a time."""
    from chalicelib.domain.caller import Caller
    from chalicelib.domain.changes import Recorder
    from chalicelib.store.postgres import transaction
    from chalicelib.webhooks import worker

    caller = Caller(account_id_for(stack), "owner", user_id=None, api_key_id=str(uuid.uuid4()))
    with transaction() as conn:
        recorder = Recorder(conn, caller)
        for n in range(WRITES):
            recorder.record("board_card", "create", {"id": str(uuid.uuid4()), "title": f"worker {n}"})
    ids = [m.delivery_id for m in recorder.sinks["webhooks"].messages]  # type: ignore[attr-defined]
    assert len(ids) == DELIVERIES
    records = [{"messageId": str(uuid.uuid4()), "body": json.dumps({"deliveryId": i})} for i in ids]
    before = receiver.count()
    started = time.perf_counter()
    for start in range(0, len(records), BATCH):
        assert worker.process(records[start : start + BATCH]) == {}
    elapsed = time.perf_counter() - started
    assert receiver.count() - before == DELIVERIES
    return DELIVERIES / elapsed


def sqs_floor_rate(stack: Any) -> float:
    """The same messages through the emulator alone: send as the writes do, receive and delete by 10."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=stack.aws_endpoint_url, region_name="us-east-1")
    url = sqs.create_queue(QueueName=f"bench-floor-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    body = json.dumps({"deliveryId": str(uuid.uuid4()), "accountId": str(uuid.uuid4())})
    done = 0
    started = time.perf_counter()
    for _ in range(WRITES):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i in range(SUBSCRIPTIONS)]
        )
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=BATCH).get("Messages", [])
            if not messages:
                break
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
            done += len(messages)
    elapsed = time.perf_counter() - started
    assert done == DELIVERIES
    return DELIVERIES / elapsed


def main() -> None:
    os.environ.setdefault("RACE_METRICS", "off")
    receiver = ReceiverProcess()
    try:
        with local_stack() as stack:
            import requests

            token = token_for(stack)
            http = requests.Session()
            http.headers["Authorization"] = f"Bearer {token}"
            for n in range(SUBSCRIPTIONS):
                answer = http.post(
                    f"{stack.api_url}/webhooks",
                    timeout=10,
                    json={"url": receiver.url, "entityTypes": ["board_card"], "description": f"bench {n}"},
                )
                assert answer.status_code == 201, answer.text
            ours = end_to_end_rate(stack, token, receiver)
            _check_succeeded(stack.database_url, SUBSCRIPTIONS * (WRITES + 1))
            body = _sample_body(stack.database_url)
            bulk = bulk_rate(stack, token, receiver)
            _check_succeeded(stack.database_url, SUBSCRIPTIONS * (WRITES + 1) + DELIVERIES)
            worker_alone = worker_rate(stack, receiver)
            sqs_floor = sqs_floor_rate(stack)
            raw = raw_loop_rate(receiver, body)
        setup = (
            f"{WRITES} API writes x {SUBSCRIPTIONS} subscriptions, {WRITERS} writer threads, "
            f"{POLLERS} concurrent workers"
        )
        emit(
            "webhook_deliveries_per_s",
            ours,
            raw,
            "/s",
            f"higher is better; {setup}; floor: 1 loop of signed POSTs; 2-core machine shared with moto and PostgreSQL",
        )
        emit(
            "webhook_bulk_deliveries_per_s",
            bulk,
            raw,
            "/s",
            f"higher is better; {BULK_WRITES} POST /laps of {BULK_LAPS} laps, 1 subscription to lap.create, "
            f"{POLLERS} concurrent workers; floor: 1 loop of signed POSTs",
        )
        emit(
            "webhook_worker_per_s",
            worker_alone,
            raw,
            "/s",
            "higher is better; the worker alone on outbox rows: claim + 10 concurrent POSTs + record per batch",
        )
        emit(
            "webhook_e2e_vs_sqs_floor",
            ours,
            sqs_floor,
            "/s",
            "higher is better; floor: the same 1,000 messages sent/received/deleted through the emulator alone",
        )
    finally:
        receiver.stop()


def _sample_body(database_url: str) -> str:
    import psycopg

    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT payload FROM webhook_deliveries ORDER BY created_at DESC LIMIT 1").fetchone()
    assert row is not None
    return str(row[0])


def _check_succeeded(database_url: str, expected: int) -> None:
    """Every delivery ends recorded as succeeded (the receiver's count alone would not show that)."""
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        with psycopg.connect(database_url) as conn:
            counts = dict(conn.execute("SELECT status, count(*) FROM webhook_deliveries GROUP BY status").fetchall())
        if counts.get("succeeded", 0) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if counts.get("succeeded", 0) != expected:
        raise RuntimeError(f"delivery states {json.dumps(counts)}; expected {expected} succeeded")


if __name__ == "__main__":
    main()
