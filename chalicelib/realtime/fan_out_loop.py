"""A room fan-out's PostToConnection requests, all on one event loop: many kept-alive connections to
the management API, one thread.

The fan-out of a round is the same POST (poster.py signs it as boto3 would) to every member, each
member's frames in order. On 48 threads, each POST cost the publisher ~0.85 ms of CPU under
bench_load (the signed request ~0.45 ms, the rest the threads taking turns at the interpreter lock):
a 50-member round was ~42 ms of CPU. Here the requests are written and their answers read by
one event-loop thread (a daemon, one per container and endpoint), over up to WIDTH connections kept
open between rounds; the caller's thread waits for the round's outcome.

Answers are read as the management API sends them: a status line, headers, a Content-Length body
(or a chunked one). A connection the other side closed while idle (a frozen Lambda container, a
keep-alive timeout) is replaced and the frame sent again once on the new one: a frame seen twice is
dropped by its seq.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from chalicelib.realtime.poster import Poster

TIMEOUT_S = 5.0  # to connect, and for each answer
ROUND_TIMEOUT_S = 60.0  # a whole round, so a wedged loop cannot hold a publisher forever
# Raised when a kept-alive connection turns out closed by the other side before it answered (over TLS,
# a closed connection may surface as an SSL error instead); a timeout is not one of these.
_STALE = (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError)


class BadAnswer(Exception):
    """The management API answered something that is not HTTP/1.1 as expected."""


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    used: bool = False  # has answered a request: it may since have been closed by the other side

    def close(self) -> None:
        self.writer.close()


Outcome = str  # push.SENT, GONE or FAILED, as `classify` names a status or an error
Classify = Callable[[str, "int | BaseException"], Outcome]


class FanOutLoop:
    """Sends rounds of frames to connections through `poster`'s endpoint, `width` requests at a time."""

    def __init__(self, poster: Poster, width: int) -> None:
        self.poster = poster
        self.width = width
        target = urlsplit(poster.endpoint_url)
        self._host = target.hostname or ""
        self._tls = target.scheme == "https"
        self._port = target.port or (443 if self._tls else 80)
        self._loop = asyncio.new_event_loop()
        self._idle: list[_Connection] = []
        self._open = 0
        self._freed: asyncio.Condition | None = None
        self._thread = threading.Thread(target=self._run, name="room-fanout-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._freed = asyncio.Condition()
        self._loop.run_forever()

    def send(self, connection_ids: Sequence[str], frames: Sequence[bytes], classify: Classify) -> list[Outcome]:
        """Each connection's outcome for the round, in `connection_ids` order: `frames` in order to
        each; a frame whose outcome is FAILED is sent once more; the first outcome that is not
        SENT ends that connection's part of the round."""
        done: Future[list[Outcome]] = asyncio.run_coroutine_threadsafe(
            self._round(connection_ids, frames, classify), self._loop
        )
        try:
            return done.result(ROUND_TIMEOUT_S)
        except TimeoutError:
            done.cancel()  # the round is retried as a whole: nothing more of this one goes out
            raise

    def close(self) -> None:
        """Stop the loop and close its connections (tests; a container's loop lives as long as it does)."""

        async def shut() -> None:
            for connection in self._idle:
                connection.close()
            self._idle.clear()

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(TIMEOUT_S)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(TIMEOUT_S)
        if not self._thread.is_alive():
            self._loop.close()

    async def _round(self, connection_ids: Sequence[str], frames: Sequence[bytes], classify: Classify) -> list[Outcome]:
        return list(await asyncio.gather(*(self._deliver(c, frames, classify) for c in connection_ids)))

    async def _deliver(self, connection_id: str, frames: Sequence[bytes], classify: Classify) -> Outcome:
        from chalicelib.realtime.push import FAILED, SENT

        outcome = SENT
        for frame in frames:
            outcome = classify(connection_id, await self._post(connection_id, frame))
            if outcome == FAILED:
                outcome = classify(connection_id, await self._post(connection_id, frame))
            if outcome != SENT:
                break
        return outcome

    async def _post(self, connection_id: str, frame: bytes) -> int | BaseException:
        """The HTTP status of one signed POST, or the error that stopped it."""
        try:
            request = self._request_bytes(connection_id, frame)
        except Exception as exc:
            return exc
        answer, reused = await self._attempt(request)
        if reused and isinstance(answer, _STALE):
            answer, _ = await self._attempt(request, fresh=True)  # the kept-alive connection had been closed
        return answer

    async def _attempt(self, request: bytes, fresh: bool = False) -> tuple[int | BaseException, bool]:
        """(status or error, whether the connection had answered before: it may be a stale one)."""
        try:
            connection = await self._take(fresh)
        except Exception as exc:
            return exc, False
        reused = connection.used
        try:
            status, keep = await self._exchange(connection, request)
        except asyncio.CancelledError:  # the round was abandoned (ROUND_TIMEOUT_S): its answer is never read
            connection.close()
            self._open -= 1
            raise
        except Exception as exc:
            await self._release(connection, keep=False)
            return exc, reused
        await self._release(connection, keep=keep)
        return status, reused

    def _request_bytes(self, connection_id: str, frame: bytes) -> bytes:
        prepared = self.poster.request(connection_id, frame)
        target = urlsplit(prepared.url)
        # The host SigV4 signed (botocore's canonical host): the name alone on the scheme's default port.
        host = target.hostname if target.port in (None, 443 if self._tls else 80) else target.netloc
        lines = [f"POST {target.path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {_text(value)}" for name, value in prepared.headers.items() if name.lower() != "host"]
        if "content-length" not in {name.lower() for name in prepared.headers}:
            lines.append(f"Content-Length: {len(frame)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (prepared.body or b"")

    async def _take(self, fresh: bool = False) -> _Connection:
        """An idle kept-alive connection (unless `fresh`), or a new one while fewer than `width` are
        open, or the next one freed."""
        assert self._freed is not None
        async with self._freed:
            while self._open >= self.width and not self._idle:
                await self._freed.wait()
            if self._idle:
                if not fresh:
                    return self._idle.pop()
                if self._open >= self.width:  # full: make room by closing the oldest idle one (maybe stale too)
                    self._idle.pop(0).close()
                    self._open -= 1
            self._open += 1
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self._host, self._port, ssl=_tls() if self._tls else None), TIMEOUT_S
            )
        except BaseException:
            await self._release(None, keep=False)
            raise
        return _Connection(reader, writer)

    async def _release(self, connection: _Connection | None, *, keep: bool) -> None:
        """Give a connection back for the next post, or close it (None: it never opened); either way
        wake a post waiting for one."""
        assert self._freed is not None
        async with self._freed:
            if connection is not None and keep:
                self._idle.append(connection)
            else:
                if connection is not None:
                    connection.close()
                self._open -= 1
            self._freed.notify()

    async def _exchange(self, connection: _Connection, request: bytes) -> tuple[int, bool]:
        """Write the request, read its answer; (status, whether the connection stays open)."""
        connection.writer.write(request)
        await connection.writer.drain()
        head = await asyncio.wait_for(connection.reader.readuntil(b"\r\n\r\n"), TIMEOUT_S)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise BadAnswer(f"not an HTTP/1.1 status line: {status_line[:80]!r}")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            await _skip_chunked(connection.reader)
        elif headers.get("content-length", "0").isdigit():
            await asyncio.wait_for(connection.reader.readexactly(int(headers.get("content-length", "0"))), TIMEOUT_S)
        else:
            raise BadAnswer(f"Content-Length is not a number: {headers['content-length'][:40]!r}")
        connection.used = True
        keep = parts[0] == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        return int(parts[1]), keep


async def _skip_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), TIMEOUT_S)
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            await asyncio.wait_for(reader.readuntil(b"\r\n"), TIMEOUT_S)  # no trailers expected
            return
        await asyncio.wait_for(reader.readexactly(size + 2), TIMEOUT_S)


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _tls() -> Any:
    from chalicelib.store.signed_http import tls

    return tls()


_making = threading.Lock()
_loops: dict[tuple[str, str, int], FanOutLoop] = {}


def fan_out_loop(endpoint_url: str, region: str, width: int) -> FanOutLoop:
    """The container's fan-out loop for the endpoint, made once even when rounds ask at once."""
    from chalicelib.realtime.poster import poster

    key = (endpoint_url, region, width)
    with _making:
        if key not in _loops:
            _loops[key] = FanOutLoop(poster(endpoint_url, region), width)
        return _loops[key]


def forget() -> None:
    """Close every loop (tests; caches.forget)."""
    with _making:
        loops = list(_loops.values())
        _loops.clear()
    for loop in loops:
        loop.close()
