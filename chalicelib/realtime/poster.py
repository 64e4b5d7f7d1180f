"""PostToConnection: the request boto3 would send, signed by botocore's own SigV4 signer, sent over
a keep-alive connection per thread (single pushes); a room's fan-out sends the same signed request
from one event loop (fan_out_loop.py).

A fan-out is hundreds of these a second in a busy room, and the publisher's CPU was almost all in
them: boto3's client machinery (parameter validation, endpoint rules, event hooks, response
parsing) cost ~0.93 ms of CPU per POST; the signed request over a urllib3 pool ~0.6 ms; over the
standard library's http.client ~0.45 ms (measured, docs/decisions.md). The request is the same:
method, path (the connection id percent-encoded, as botocore does), body and the SigV4 headers for
the `execute-api` service (tests/unit/test_poster.py compares the two). The other management calls
(DELETE, GET) are rare and stay on the boto3 client.
"""

from __future__ import annotations

import http.client
import threading
from typing import Any
from urllib.parse import quote, urlsplit

SERVICE = "execute-api"  # the signing name of apigatewaymanagementapi
TIMEOUT_S = 5.0  # to connect, and for each read of the answer
# Raised when a kept-alive connection turns out closed by the other side before it answered: the
# request is sent again once on a new connection (a frame seen twice is dropped by its seq).
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Poster:
    """POSTs to `endpoint_url`/@connections/{id}; one per endpoint and container."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        import botocore.session

        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        self._target = urlsplit(self.endpoint_url)
        if self._target.scheme not in ("http", "https") or not self._target.hostname:
            raise ValueError(f"not an http(s) endpoint: {endpoint_url!r}")
        self._credentials = botocore.session.get_session().get_credentials()
        self._local = threading.local()  # each sending thread keeps its own connection

    def request(self, connection_id: str, data: bytes) -> Any:
        """The signed request (botocore's AWSPreparedRequest) for one frame."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        if self._credentials is None:
            raise RuntimeError("no AWS credentials to sign management API requests with")
        url = f"{self.endpoint_url}/@connections/{quote(connection_id, safe='')}"
        unsigned = AWSRequest(method="POST", url=url, data=data)
        SigV4Auth(self._credentials.get_frozen_credentials(), SERVICE, self.region).add_auth(unsigned)
        return unsigned.prepare()

    def post(self, connection_id: str, data: bytes) -> int:
        """Send one frame; the HTTP status (raises on a connection error or timeout)."""
        prepared = self.request(connection_id, data)
        path = urlsplit(prepared.url).path
        headers = dict(prepared.headers.items())
        reused = getattr(self._local, "connection", None) is not None
        try:
            return self._send(path, prepared.body, headers)
        except _STALE:
            if not reused:
                raise
            return self._send(path, prepared.body, headers)  # the kept-alive connection had been closed

    def _send(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        connection = self._connection()
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
        except BaseException:
            self._drop(connection)
            raise
        if response.will_close:
            self._drop(connection)
        return int(response.status)

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            host, port = self._target.hostname or "", self._target.port
            if self._target.scheme == "https":
                connection = http.client.HTTPSConnection(host, port, timeout=TIMEOUT_S, context=_tls())
            else:
                connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_S)
            self._local.connection = connection
        return connection

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        self._local.connection = None


def _tls() -> Any:
    """Certificates checked against the CA bundle botocore uses (the Lambda runtime's own may differ)."""
    import ssl

    from botocore.httpsession import get_cert_path

    return ssl.create_default_context(cafile=get_cert_path(True))


_making = threading.Lock()
_posters: dict[tuple[str, str], Poster] = {}


def poster(endpoint_url: str, region: str) -> Poster:
    """The container's poster for the endpoint, made once even when a cold fan-out's threads ask at once."""
    key = (endpoint_url, region)
    with _making:
        if key not in _posters:
            _posters[key] = Poster(endpoint_url, region)
        return _posters[key]


def forget() -> None:
    with _making:
        _posters.clear()
