"""An AWS API request as boto3 would put it on the wire, signed by botocore's own SigV4 signer and
sent over the standard library's http.client: a keep-alive connection per thread.

For the few hot calls where boto3's client machinery (parameter validation, endpoint rules, event
hooks, response parsing) is most of the CPU: PostToConnection in a room fan-out (~0.93 ms a call
through boto3, ~0.45 ms this way) and the two SQS sends after a lap write commits (~1.0-1.4 ms of
the API's CPU each through boto3). Each user compares its request with boto3's in a unit test, so
a botocore upgrade that changes the request is caught.
"""

from __future__ import annotations

import http.client
import threading
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
        self._local = threading.local()  # each sending thread keeps its own connection

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
        target = urlsplit(prepared.url)
        path = target.path + (f"?{target.query}" if target.query else "")
        headers = {name: _text(value) for name, value in prepared.headers.items()}
        reused = getattr(self._local, "connection", None) is not None
        try:
            return self._send(path, prepared.body, headers)
        except STALE:
            if not reused:
                raise
            return self._send(path, prepared.body, headers)  # the kept-alive connection had been closed

    def _send(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        connection = self._connection()
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
        except BaseException:
            self._drop(connection)
            raise
        if response.will_close:
            self._drop(connection)
        return int(response.status), answer

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            host, port = self._target.hostname or "", self._target.port
            if self._target.scheme == "https":
                connection = http.client.HTTPSConnection(host, port, timeout=TIMEOUT_S, context=tls())
            else:
                connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
            self._local.connection = connection
        return connection

    def close(self) -> None:
        """Close this thread's kept-alive connection (tests, shutdown); the next request opens another."""
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None:
            self._drop(connection)

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        self._local.connection = None


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def tls() -> Any:
    """Certificates checked against the CA bundle botocore uses (the Lambda runtime's own may differ)."""
    import ssl

    from botocore.httpsession import get_cert_path

    return ssl.create_default_context(cafile=get_cert_path(True))
