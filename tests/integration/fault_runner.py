"""The app process of the fault tests: the local HTTP gateway and the webhook queue's poller over the app,
in one process that the test SIGKILLs (`python -m tests.integration.fault_runner <port>`).

Its environment (DATABASE_URL, AWS_ENDPOINT_URL, JWT_SECRET, WEBHOOK_*) comes from the test.
FAULT_LAMBDA_TIMEOUT_MS is the function's timeout (lambda_timeout): a request killed mid-way holds
its Idempotency-Key that long, so the test shortens it as it shortens the webhook retry delays.
"""

from __future__ import annotations

import os
import signal
import sys
import threading


def main(argv: list[str]) -> int:
    import boto3

    from infra.local import http_gateway
    from infra.local.sqs_poller import SqsPoller

    if os.environ.get("FAULT_LAMBDA_TIMEOUT_MS"):
        http_gateway.LAMBDA_TIMEOUT_MS = int(os.environ["FAULT_LAMBDA_TIMEOUT_MS"])
    from app import app
    from chalicelib.config import settings
    from chalicelib.resources import ROOM_QUEUE, WEBHOOK_QUEUE

    settings()  # fail fast on a bad environment
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    server = http_gateway.start_in_thread(app, "127.0.0.1", int(argv[0]))
    poller = SqsPoller(
        app,
        boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"]),
        wait_time_s=1,
        only={WEBHOOK_QUEUE.name, ROOM_QUEUE.name},
    )
    poller.start_in_thread()
    stop.wait()
    poller.stop()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
