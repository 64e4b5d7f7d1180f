"""An SqsPoller in a child process: a function with an interpreter (and a GIL) of its own, as Lambda runs it.

The room publisher runs this way in `make dev` and the benchmarks: its fan-out (one management-API
POST per member and message, about 0.6 ms of boto3 CPU each) no longer competes with the API's
requests for one interpreter lock. Measured in bench_load: see docs/decisions.md.

`python -m infra.local.poller_process QUEUE...` polls the named queues of the app with the
environment it inherits, until its stdin closes or it gets SIGTERM. Its output goes to the parent's stderr.
"""

from __future__ import annotations

import os
import sys

from infra.local.child_process import ChildProcess, child_setup, serve_commands


class PollerProcess(ChildProcess):
    """Start/stop like SqsPoller (so Maintenance pauses it too); each start is a fresh process."""

    def __init__(self, queues: set[str]) -> None:
        self.queues = sorted(queues)
        super().__init__(f"poller ({', '.join(self.queues)})", "infra.local.poller_process", self.queues)


def main(queues: list[str]) -> int:
    import boto3

    from app import app
    from chalicelib.config import settings
    from infra.local.sqs_poller import SqsPoller
    from infra.local.stack import warm_clients

    child_setup()
    settings()  # fail fast on a bad environment, before polling anything
    warm_clients()  # before the first join or message, not during it (infra/local/stack.py)
    poller = SqsPoller(app, boto3.client("sqs", endpoint_url=os.environ.get("AWS_ENDPOINT_URL")), only=set(queues))
    if unknown := sorted(set(queues) - set(poller.queue_names)):
        print(f"poller process: no SQS handler of the app polls {', '.join(unknown)}", file=sys.stderr)
        return 2
    poller.start_in_thread()
    serve_commands({})
    poller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
