"""An AWS API request as boto3 would put it on the wire, signed by botocore's own SigV4 signer and
sent over the standard library's http.client: kept-alive connections per thread.

For the few hot calls where boto3's client machinery (parameter validation, endpoint rules, event
hooks, response parsing) is most of the CPU: PostToConnection in a room fan-out (~0.93 ms a call
through boto3, ~0.45 ms this way) and the two SQS sends after a lap write commits (~1.0-1.4 ms of
the API's CPU each through boto3). Each user compares its request with boto3's in a unit test, so
a botocore upgrade that changes the request is caught.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

TIMEOUT_S = 5.0  # to connect, and for each read of the answer
# Raised when a kept-alive connection turns out closed by the other side before it answered: the
# request is sent again once on a new connection.
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class SignedHttp:
    """Signed requests to one endpoint for one service; one per endpoint and container."""

    def __init__(self, endpoint_url: str, service: str, region: str) -> None:
        import botocore.session

        self.endpoint_url = endpoint_url.rstrip("/")
        self.service = service
        self.region = region
        self._target = urlsplit(self.endpoint_url)
        if self._target.scheme not in ("http", "https") or not self._target.hostname:
            raise ValueError(f"not an http(s) endpoint: {endpoint_url!r}")
        self._credentials = botocore.session.get_session().get_credentials()
        self._local = threading.local()  # each sending thread keeps its own idle connections

    def signed(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
        """The signed POST (botocore's AWSPreparedRequest)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        if self._credentials is None:
            raise RuntimeError(f"no AWS credentials to sign {self.service} requests with")
        unsigned = AWSRequest(method="POST", url=url, data=body, headers=headers or {})
        SigV4Auth(self._credentials.get_frozen_credentials(), self.service, self.region).add_auth(unsigned)
        return unsigned.prepare()

    def send(self, prepared: Any) -> tuple[int, bytes]:
        """Send a signed request; (HTTP status, body). Raises on a connection error or timeout."""
        return self.start(prepared)()

    def start(self, prepared: Any) -> Callable[[], tuple[int, bytes]]:
        """Write a signed request now and return what reads its answer: (HTTP status, body), raising on
        a connection error or timeout. Requests started one after the other from one thread are in
        flight at once, each on a kept-alive connection of its own: a write's two queue sends wait
        for the slower of them, not their sum, without a second thread (under load a thread handoff
        costs a wait for the interpreter lock on each side)."""
        target = urlsplit(prepared.url)
        path = target.path + (f"?{target.query}" if target.query else "")
        headers = {name: _text(value) for name, value in prepared.headers.items()}
        connection, reused = self._take()
        try:
            connection.request("POST", path, body=prepared.body, headers=headers)
        except STALE:
            connection.close()
            if not reused:
                raise
            return self._started_fresh(path, prepared.body, headers)  # the kept-alive connection had been closed
        except BaseException:
            connection.close()
            raise

        def answer() -> tuple[int, bytes]:
            try:
                return self._answer(connection)
            except STALE:
                if not reused:
                    raise
                return self._started_fresh(path, prepared.body, headers)()  # closed while idle: sent again

        return answer

    def _started_fresh(self, path: str, body: bytes, headers: dict[str, str]) -> Callable[[], tuple[int, bytes]]:
        connection = self._new_connection()
        try:
            connection.request("POST", path, body=body, headers=headers)
        except BaseException:
            connection.close()
            raise
        return lambda: self._answer(connection)

    def _answer(self, connection: http.client.HTTPConnection) -> tuple[int, bytes]:
        """Read the answer of the request in flight on `connection`; keep the connection for the next."""
        try:
            response = connection.getresponse()
            answer = response.read()
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self._idle().append(connection)
        return int(response.status), answer

    def _idle(self) -> list[http.client.HTTPConnection]:
        idle: list[http.client.HTTPConnection] | None = getattr(self._local, "idle", None)
        if idle is None:
            idle = self._local.idle = []
        return idle

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's most recently used idle connection, or a new one; whether it was kept alive."""
        idle = self._idle()
        if idle:
            return idle.pop(), True
        return self._new_connection(), False

    def _new_connection(self) -> http.client.HTTPConnection:
        host, port = self._target.hostname or "", self._target.port
        if self._target.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=TIMEOUT_S, context=tls())
        return http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)

    def close(self) -> None:
        """Close this thread's kept-alive connections (tests, shutdown); the next request opens another."""
        idle = self._idle()
        while idle:
            idle.pop().close()


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def tls() -> Any:
    """Certificates checked against the CA bundle botocore uses (the Lambda runtime's own may differ)."""
    import ssl

    from botocore.httpsession import get_cert_path

    return ssl.create_default_context(cafile=get_cert_path(True))
