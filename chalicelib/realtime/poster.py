"""PostToConnection for the room fan-out: the request boto3 would send, signed by botocore's own
SigV4 signer, sent over one urllib3 keep-alive pool.

A fan-out is hundreds of these a second in a busy room, and the publisher's CPU was almost all in
them: boto3's client machinery (parameter validation, endpoint rules, event hooks, response
parsing) cost ~0.93 ms of CPU per POST, this ~0.58 ms (measured, docs/decisions.md). The request
is the same: method, path (the connection id percent-encoded, as botocore does), body and the
SigV4 headers for the `execute-api` service (tests/unit/test_poster.py compares the two). The
other management calls (DELETE, GET) are rare and stay on the boto3 client.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import quote

SERVICE = "execute-api"  # the signing name of apigatewaymanagementapi
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 2.0, 5.0


class Poster:
    """POSTs to `endpoint_url`/@connections/{id}; one per endpoint and container."""

    def __init__(self, endpoint_url: str, region: str, pool_size: int) -> None:
        import botocore.session
        import urllib3

        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        self._credentials = botocore.session.get_session().get_credentials()
        self._pool = urllib3.PoolManager(
            maxsize=pool_size,
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S),
            retries=False,
        )

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
        response = self._pool.request(
            "POST", prepared.url, body=prepared.body, headers=dict(prepared.headers.items()), preload_content=True
        )
        return int(response.status)


_making = threading.Lock()
_posters: dict[tuple[str, str, int], Poster] = {}


def poster(endpoint_url: str, region: str, pool_size: int) -> Poster:
    """The container's poster for the endpoint, made once even when a cold fan-out's threads ask at once."""
    key = (endpoint_url, region, pool_size)
    with _making:
        if key not in _posters:
            _posters[key] = Poster(endpoint_url, region, pool_size)
        return _posters[key]


def forget() -> None:
    with _making:
        _posters.clear()
