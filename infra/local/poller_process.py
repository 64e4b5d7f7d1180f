"""An SqsPoller in a child process: a function with an interpreter (and a GIL) of its own, as Lambda runs it.

The room publisher runs this way in `make dev` and the benchmarks: its fan-out (one management-API
POST per member and message, about 0.6 ms of boto3 CPU each) no longer competes with the API's
requests for one interpreter lock. Measured in bench_load: see docs/decisions.md.

`python -m infra.local.poller_process QUEUE...` polls the named queues of the app with the
environment it inherits, until its stdin closes or it gets SIGTERM. Its output goes to the parent's stderr.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_S = 10.0
READY = "poller ready"


class PollerProcess:
    """Start/stop like SqsPoller (so Maintenance pauses it too); each start is a fresh process."""

    def __init__(self, queues: set[str]) -> None:
        self.queues = sorted(queues)
        self._child: subprocess.Popen[str] | None = None
        self._forward: threading.Thread | None = None

    def start_in_thread(self, ready_timeout_s: float = 60.0) -> None:
        """Spawn the child with this process's environment; returns once it polls."""
        if self._child is not None:
            return
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        child = subprocess.Popen(
            [sys.executable, "-m", "infra.local.poller_process", *self.queues],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._child = child
        ready = threading.Event()
        self._forward = threading.Thread(
            target=_forward, args=(child, ready), name="poller-process-output", daemon=True
        )
        self._forward.start()
        if not ready.wait(ready_timeout_s) or child.poll() is not None:
            self.stop()
            raise RuntimeError(f"the poller process for {', '.join(self.queues)} did not start (see its output above)")

    def stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if child.stdin is not None:
            child.stdin.close()  # the child stops polling, lets its batches finish, and exits
        try:
            child.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if self._forward is not None:
            self._forward.join(timeout=STOP_TIMEOUT_S)
        if child.returncode not in (0, -signal.SIGKILL):
            print(f"poller process for {', '.join(self.queues)} exited with {child.returncode}", file=sys.stderr)


def _forward(child: subprocess.Popen[str], ready: threading.Event) -> None:
    """The child's output, line by line, to our stderr (so `make dev`'s log keeps it, and our stdout
    stays what the caller prints: bench.common's serve answers on it); notes its ready line."""
    assert child.stdout is not None
    for line in child.stdout:
        if line.strip() == READY:
            ready.set()
            continue
        sys.stderr.write(line)
        sys.stderr.flush()
    ready.set()  # it ended: the starter looks at its exit status


def _stop_when_stdin_closes(stop: threading.Event) -> None:
    sys.stdin.read()  # the parent closed our stdin (or died)
    stop.set()


def main(queues: list[str]) -> int:
    import logging

    import boto3

    from app import app
    from chalicelib.config import settings
    from infra.local.sqs_poller import SqsPoller

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("botocore.credentials").setLevel(logging.WARNING)  # one "found credentials" per client
    settings()  # fail fast on a bad environment, before polling anything
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    poller = SqsPoller(app, boto3.client("sqs", endpoint_url=os.environ.get("AWS_ENDPOINT_URL")), only=set(queues))
    if unknown := sorted(set(queues) - set(poller.queue_names)):
        print(f"poller process: no SQS handler of the app polls {', '.join(unknown)}", file=sys.stderr)
        return 2
    poller.start_in_thread()
    print(READY, flush=True)
    threading.Thread(target=_stop_when_stdin_closes, args=(stop,), name="stdin-watch", daemon=True).start()
    stop.wait()
    poller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
