"""One webhook POST over a pooled urllib3 connection to the address that was just checked.

The URL is checked again right before sending (DNS can change since the subscription was made);
the connection goes to the checked IP address, with the host name as the Host header and as the TLS
server name (SNI and certificate verification), so no second DNS lookup can swap in another address.
Redirects are not followed (a 3xx is a failed attempt); `timeout_s` bounds connecting and each read.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib import netguard

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
        import urllib3

        common: dict[str, Any] = {"maxsize": CONNECTIONS_PER_POOL, "block": False, "retries": False}
        if scheme == "https":
            return urllib3.HTTPSConnectionPool(
                address, port, server_hostname=host, assert_hostname=host, cert_reqs="CERT_REQUIRED", **common
            )
        return urllib3.HTTPConnectionPool(address, port, **common)

    def clear(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


@functools.cache
def pools() -> _Pools:
    """The container's connection pools (kept across invocations: keep-alive to busy receivers)."""
    return _Pools()


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float, *, local: bool | None = None) -> Outcome:
    """POST `body` to `url`; never raises for the receiver's faults (they become the outcome's error)."""
    started = time.perf_counter()
    if local is None:
        from chalicelib.config import settings

        local = settings().is_local
    try:
        destination = netguard.check_url(url, local=local)
    except netguard.Refused as exc:
        return Outcome(None, 0, f"not sent: {exc}")
    except netguard.Unreachable as exc:
        return Outcome(None, _ms_since(started), f"could not connect: {exc}")
    pool = pools().get(destination.scheme, str(destination.address), destination.port, destination.host)
    try:
        return _exchange(pool, destination, body, headers, timeout_s, started)
    except Exception as exc:
        return Outcome(None, _ms_since(started), _describe(exc, timeout_s))


def host_header(destination: netguard.Destination) -> str:
    default = 443 if destination.scheme == "https" else 80
    name = f"[{destination.host}]" if ":" in destination.host else destination.host
    return name if destination.port == default else f"{name}:{destination.port}"


def _exchange(
    pool: HTTPConnectionPool,
    destination: netguard.Destination,
    body: bytes,
    headers: dict[str, str],
    timeout_s: float,
    started: float,
) -> Outcome:
    import urllib3

    response = pool.urlopen(
        "POST",
        destination.target,
        body=body,
        headers={**headers, "Host": host_header(destination)},
        redirect=False,
        retries=False,
        assert_same_host=False,
        preload_content=False,
        timeout=urllib3.Timeout(total=timeout_s),
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
        return f"timed out after {timeout_s:g} s"
    if isinstance(exc, exceptions.SSLError):
        return f"TLS error: {exc}"[:300]
    if isinstance(exc, exceptions.ProtocolError):
        return f"connection broken: {exc}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]
