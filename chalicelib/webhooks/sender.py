"""One webhook POST over a pooled urllib3 connection to the address that was just checked.

The URL is checked again right before sending (DNS can change since the subscription was made);
the connection goes to the checked IP address, with the host name as the Host header and as the TLS
server name (SNI and certificate verification), so no second DNS lookup can swap in another address.
Redirects are not followed (a 3xx is a failed attempt); `timeout_s` bounds the whole exchange
(DNS, connect, TLS, request and answer) on the wall clock, whatever the receiver does (deadlines.py).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib import deadlines, netguard

if TYPE_CHECKING:
    from urllib3 import HTTPConnectionPool

RESPONSE_PREFIX_BYTES = 1024  # kept with the attempt
DRAIN_LIMIT_BYTES = 64 * 1024  # read past the prefix at most this much to reuse the connection
MAX_POOLS = 128
CONNECTIONS_PER_POOL = 10


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    duration_ms: int
    error: str | None = None
    response_body: str | None = None
    retry_after: str | None = None  # the raw header, parsed by the retry policy

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _Pools:
    """Connection pools keyed by (scheme, address, port, host name), least recently used dropped first."""

    def __init__(self) -> None:
        self._pools: OrderedDict[tuple[str, str, int, str], HTTPConnectionPool] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, scheme: str, address: str, port: int, host: str) -> HTTPConnectionPool:
        key = (scheme, address, port, host)
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            pool = self._make(*key)
            self._pools[key] = pool
            while len(self._pools) > MAX_POOLS:
                _, dropped = self._pools.popitem(last=False)
                dropped.close()
            return pool

    @staticmethod
    def _make(scheme: str, address: str, port: int, host: str) -> HTTPConnectionPool:
        common: dict[str, Any] = {"maxsize": CONNECTIONS_PER_POOL, "block": False, "retries": False}
        if scheme == "https":
            common.update(server_hostname=host, assert_hostname=host, cert_reqs="CERT_REQUIRED")
        return deadlines.pool(scheme, address, port, **common)

    def clear(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


@functools.cache
def pools() -> _Pools:
    """The container's connection pools (kept across invocations: keep-alive to busy receivers)."""
    return _Pools()


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_s: float,
    *,
    local: bool | None = None,
    allow: netguard.Allowed | None = None,
) -> Outcome:
    """POST `body` to `url` within `timeout_s` in all; the receiver's faults become the outcome's error, never raise."""
    started = time.perf_counter()
    if local is None:  # the deployed path: this process's settings (callers that pass `local` pass `allow`)
        from chalicelib.config import settings

        local, allow = settings().is_local, settings().outbound_allow
    deadline = deadlines.Deadline(timeout_s)
    try:
        destination = netguard.check_url(url, local=local, allow=allow or frozenset(), deadline=deadline)
    except netguard.Refused as exc:
        return Outcome(None, 0, f"not sent: {exc}")
    except netguard.Unreachable as exc:
        return Outcome(None, _ms_since(started), f"could not connect: {exc}")
    pool = pools().get(destination.scheme, str(destination.address), destination.port, destination.host)
    try:
        with deadline.armed():
            outcome = _exchange(pool, destination, body, headers, deadline, started)
        if deadline.expired:  # the cut can look like a clean (short) answer
            return Outcome(None, _ms_since(started), f"timed out after {round(timeout_s, 1):g} s")
        return outcome
    except Exception as exc:
        if deadline.expired:
            return Outcome(None, _ms_since(started), f"timed out after {round(timeout_s, 1):g} s")
        return Outcome(None, _ms_since(started), _describe(exc, timeout_s))


host_header = netguard.host_header


def _exchange(
    pool: HTTPConnectionPool,
    destination: netguard.Destination,
    body: bytes,
    headers: dict[str, str],
    deadline: deadlines.Deadline,
    started: float,
) -> Outcome:
    import urllib3

    remaining = max(deadline.remaining(), 0.001)
    response = pool.urlopen(
        "POST",
        destination.target,
        body=body,
        headers={**headers, "Host": host_header(destination)},
        redirect=False,
        retries=False,
        assert_same_host=False,
        preload_content=False,
        timeout=urllib3.Timeout(connect=min(remaining, 3.0), read=remaining),
    )
    try:
        prefix = response.read(RESPONSE_PREFIX_BYTES)
        drained = 0
        while drained < DRAIN_LIMIT_BYTES:
            chunk = response.read(8192)
            if not chunk:
                break
            drained += len(chunk)
        else:
            response.close()  # an endless answer: drop this connection rather than read on
    finally:
        response.release_conn()
    status = response.status
    error = None
    if 300 <= status < 400:
        error = f"redirect ({status} to {response.headers.get('Location', '?')}) not followed"
    elif not 200 <= status < 300:
        error = f"HTTP {status}"
    text = prefix.decode("utf-8", errors="replace").replace("\x00", "")
    return Outcome(status, _ms_since(started), error, text, response.headers.get("Retry-After"))


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _describe(exc: Exception, timeout_s: float) -> str:
    """A short, operator-readable reason for a failed exchange."""
    from urllib3 import exceptions

    if isinstance(exc, exceptions.NameResolutionError):
        return "could not connect: the host does not resolve"
    if isinstance(exc, exceptions.NewConnectionError):  # (a subclass of ConnectTimeoutError)
        return "could not connect: " + str(exc).rsplit("new connection: ", 1)[-1][:200]
    if isinstance(exc, exceptions.ConnectTimeoutError | exceptions.ReadTimeoutError | TimeoutError):
        return f"timed out after {round(timeout_s, 1):g} s"
    if isinstance(exc, exceptions.SSLError):
        return f"TLS error: {exc}"[:300]
    if isinstance(exc, exceptions.ProtocolError):
        return f"connection broken: {exc}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]
