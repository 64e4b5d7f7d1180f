"""The AWS emulator of the local stack: moto server in a child process (LocalStack's port)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from infra.local.ports import is_listening, wait_listening

DEFAULT_PORT = 4566
REPO = Path(__file__).resolve().parents[2]

# moto serves each request on its own thread without locking its DynamoDB backend, so two concurrent
# conditional writes (or ADDs) to one item can both succeed; AWS guarantees they cannot. Serialising
# DynamoDB requests restores that (room seq numbers, the fan-out turn, rate-limit counters rely on it).
# Speed fixes that keep AWS semantics (infra/local/moto_patches.py) are applied first.
_MOTO_SERVER = """
import json
import threading
from infra.local import moto_patches
moto_patches.apply()
moto_patches.keep_connections_alive()
from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
lock = threading.Lock()
dispatch = DomainDispatcherApplication.__call__
def one_dynamodb_request_at_a_time(self, environ, start_response):
    moto_patches.request_started()
    if environ.get("PATH_INFO") == "/_aws/ses" and environ.get("REQUEST_METHOD") == "GET":
        # The mail SES sent, as LocalStack lists it (make mail, the smoke test and the tests read it).
        body = json.dumps(moto_patches.sent_mail(environ.get("QUERY_STRING", ""))).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
        with lock:
            return dispatch(self, environ, start_response)
    if environ.get("REQUEST_METHOD") == "OPTIONS" and environ.get("HTTP_ORIGIN"):
        # S3 answers a browser's preflight from the bucket's CORS rule (provisioned as any origin);
        # moto refuses it, which would break presigned uploads from the web client.
        start_response("200 OK", [
            ("Access-Control-Allow-Origin", environ["HTTP_ORIGIN"]),
            ("Access-Control-Allow-Methods", "GET, PUT, HEAD"),
            ("Access-Control-Allow-Headers", environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "*")),
            ("Access-Control-Max-Age", "3000"), ("Content-Length", "0")])
        return [b""]
    return dispatch(self, environ, start_response)
DomainDispatcherApplication.__call__ = one_dynamodb_request_at_a_time
moto_patches.full_collections_when_idle()
server.main()
"""


class Emulator:
    """moto server on host:port, started as a child process so it never competes for our GIL."""

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, log_path: Path | None = None):
        self.host = host
        self.port = port
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 20.0) -> str:
        if is_listening(self.host, self.port):
            raise RuntimeError(
                f"port {self.port} is taken: another emulator or LocalStack runs there; "
                "set AWS_ENDPOINT_URL to use it, or stop it"
            )
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            [sys.executable, "-c", _MOTO_SERVER, "-H", self.host, "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "MOTO_ALLOW_NONEXISTENT_REGION": "true",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            },
        )
        wait_listening(self.host, self.port, timeout_s, what="moto server")
        return self.endpoint_url

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None
