"""Wall-clock deadlines for outbound exchanges: at the deadline the exchange's socket is shut down.

urllib3 applies its timeouts to each connect and each read, so a peer that drips one byte at a time
never trips them. A `Deadline` is armed around a whole exchange (DNS, connect, TLS, request, answer);
the connections made by `pool()` attach their socket to the active deadline, and one watchdog thread
per process shuts that socket down when the time is up, which ends any blocked read at once.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from urllib3 import HTTPConnectionPool

T = TypeVar("T")
_active: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("outbound_deadline", default=None)


class DeadlineExceeded(Exception):
    """The exchange did not finish within its wall-clock deadline."""


class Deadline:
    """One exchange's time limit; `armed()` makes it the limit of the sockets used inside the block."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def attach(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if sock not in self._sockets:
                self._sockets.append(sock)
            expired = self.expired
        if expired:
            _cut(sock)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _cut(sock)

    @contextlib.contextmanager
    def armed(self) -> Iterator[Deadline]:
        token = _active.set(self)
        watchdog = _watchdog()
        entry = watchdog.arm(self)
        try:
            yield self
        finally:
            watchdog.disarm(entry)
            _active.reset(token)

    def run(self, function: Callable[[], T]) -> T:
        """`function()` on a helper thread, given up on at the deadline (for calls no socket shows, like DNS)."""
        future = _helpers().submit(function)
        try:
            return future.result(timeout=self.remaining())
        except TimeoutError as exc:
            future.cancel()
            raise DeadlineExceeded(f"did not finish within {self.seconds:g} s") from exc


def _cut(sock: socket.socket) -> None:
    # The plain socket's shutdown (an SSLSocket's own would drop its TLS state under a blocked reader).
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One thread that expires armed deadlines in time order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._live: set[int] = set()
        self._counter = itertools.count()
        self._changed = threading.Condition()
        threading.Thread(target=self._run, name="outbound-deadlines", daemon=True).start()

    def arm(self, deadline: Deadline) -> int:
        entry = next(self._counter)
        with self._changed:
            heapq.heappush(self._heap, (deadline.at, entry, deadline))
            self._live.add(entry)
            self._changed.notify()
        return entry

    def disarm(self, entry: int) -> None:
        with self._changed:
            self._live.discard(entry)

    def _run(self) -> None:
        while True:
            with self._changed:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)  # finished in time
                if not self._heap:
                    self._changed.wait()
                    continue
                at, entry, deadline = self._heap[0]
                wait_s = at - time.monotonic()
                if wait_s > 0:
                    self._changed.wait(wait_s)
                    continue
                heapq.heappop(self._heap)
                self._live.discard(entry)
            deadline.expire()


_watchdogs: list[_Watchdog] = []
_watchdog_lock = threading.Lock()


def _watchdog() -> _Watchdog:
    """The process's one watchdog (created under a lock: two would each think the other's entries theirs)."""
    if not _watchdogs:
        with _watchdog_lock:
            if not _watchdogs:
                _watchdogs.append(_Watchdog())
    return _watchdogs[0]


@functools.cache
def _helpers() -> Any:
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="outbound-dns")


def _attach_active(sock: socket.socket | None) -> None:
    deadline = _active.get()
    if deadline is not None:
        deadline.attach(sock)


@functools.cache
def _pool_classes() -> tuple[type[HTTPConnectionPool], type[HTTPConnectionPool]]:
    import urllib3
    from urllib3.connection import HTTPConnection, HTTPSConnection

    class _Plain(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            _attach_active(sock)  # before TLS: a dripping handshake is cut too
            return sock

        def request(self, *args: Any, **kwargs: Any) -> None:
            _attach_active(self.sock)  # a kept-alive connection, reused
            super().request(*args, **kwargs)

    class _Tls(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            _attach_active(sock)
            return sock

        def request(self, *args: Any, **kwargs: Any) -> None:
            _attach_active(self.sock)
            super().request(*args, **kwargs)

    class _PlainPool(urllib3.HTTPConnectionPool):
        ConnectionCls = _Plain

    class _TlsPool(urllib3.HTTPSConnectionPool):
        ConnectionCls = _Tls

    return _PlainPool, _TlsPool


def pool(scheme: str, address: str, port: int, **options: Any) -> HTTPConnectionPool:
    """A urllib3 pool whose connections obey the active deadline."""
    plain, tls = _pool_classes()
    return (tls if scheme == "https" else plain)(address, port, **options)
