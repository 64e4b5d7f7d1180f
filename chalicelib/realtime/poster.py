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

import threading
from typing import Any
from urllib.parse import quote

from chalicelib.store.signed_http import SignedHttp

SERVICE = "execute-api"  # the signing name of apigatewaymanagementapi


class Poster(SignedHttp):
    """POSTs to `endpoint_url`/@connections/{id}; one per endpoint and container."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        super().__init__(endpoint_url, SERVICE, region)

    def request(self, connection_id: str, data: bytes) -> Any:
        """The signed request (botocore's AWSPreparedRequest) for one frame."""
        return self.signed(f"{self.endpoint_url}/@connections/{quote(connection_id, safe='')}", data)

    def post(self, connection_id: str, data: bytes) -> int:
        """Send one frame; the HTTP status (raises on a connection error or timeout)."""
        status, _ = self.send(self.request(connection_id, data))
        return status


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
