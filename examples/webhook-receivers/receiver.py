"""A minimal Race Platform webhook receiver: verifies both signatures, deduplicates, answers at once.

    WEBHOOK_SECRET=whsec_... PORT=8787 python3 receiver.py

Standard library only (Python 3.10+). Each accepted delivery is answered 204 before it is processed
(processing happens on a worker thread), and one JSON line per request goes to stdout.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import queue
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ["WEBHOOK_SECRET"]  # whsec_... from POST /webhooks (or rotate-secret)
TOLERANCE_S = 300  # refuse signatures older or newer than 5 minutes: a captured request cannot be replayed
MAX_BODY_BYTES = 1024 * 1024
SEEN_MAX = 100_000  # webhook-ids remembered (keep them for longer than the 35-minute retry schedule)


def standard_ok(secret: str, headers: dict[str, str], body: bytes, now: float) -> bool:
    """Standard Webhooks: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>, any of them."""
    msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_S:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    candidates = headers.get("webhook-signature", "").split(" ")
    return any(hmac.compare_digest(f"v1,{expected}", candidate) for candidate in candidates)


def legacy_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """X-Race-Signature: sha256=<hex HMAC-SHA256(whole secret string, body)>, any of them (body only)."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    candidates = headers.get("x-race-signature", "").split(",")
    return any(hmac.compare_digest(expected, candidate.strip()) for candidate in candidates)


class Seen:
    """The webhook-ids already accepted (bounded, oldest forgotten first)."""

    def __init__(self, size: int = SEEN_MAX) -> None:
        self.ids: OrderedDict[str, None] = OrderedDict()
        self.size = size
        self.lock = threading.Lock()

    def first_time(self, msg_id: str) -> bool:
        with self.lock:
            if msg_id in self.ids:
                return False
            self.ids[msg_id] = None
            if len(self.ids) > self.size:
                self.ids.popitem(last=False)
            return True


SEEN = Seen()
WORK: queue.Queue[dict] = queue.Queue()


_LOG = threading.Lock()  # print() from two threads can interleave two lines into one


def log(**fields: object) -> None:
    with _LOG:
        print(json.dumps(fields), flush=True)  # noqa: T201 - one JSON line per request is the example's log


def process(event: dict) -> None:
    """Your slow work goes here (it runs after the answer was sent)."""
    log(processed=event["type"], eventId=event["eventId"], dataId=event["data"].get("id"))


def worker() -> None:
    while True:
        process(WORK.get())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length_header = self.headers.get("Content-Length") or "0"
        if not length_header.isdigit():
            return self.answer(400)
        length = int(length_header)
        if length > MAX_BODY_BYTES:
            return self.answer(413)
        body = self.rfile.read(length)  # the raw bytes: verify before parsing
        headers = {name.lower(): value for name, value in self.headers.items()}
        msg_id = headers.get("webhook-id", "")
        if not (standard_ok(SECRET, headers, body, time.time()) and legacy_ok(SECRET, headers, body)):
            log(refused=msg_id)
            return self.answer(401)
        if not SEEN.first_time(msg_id):
            log(duplicate=msg_id)
            return self.answer(204)  # already accepted: a 2xx stops the platform retrying
        self.answer(204)  # answer first, well inside the 10-second limit
        event = json.loads(body)
        log(accepted=msg_id, type=event["type"])
        WORK.put(event)

    def answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # one JSON line per request is enough


def main() -> None:
    threading.Thread(target=worker, daemon=True).start()
    server = ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8787"))), Handler)
    log(listening=server.server_address[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
