"""Length-prefixed JSON messages over a pair of pipes, between the API process and a sandbox worker."""

from __future__ import annotations

import contextlib
import json
import os
import select
import struct
from typing import Any

_HEADER = struct.Struct(">I")
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ChannelClosed(Exception):
    """The other end went away."""


class ChannelTimeout(Exception):
    """Nothing arrived in time (only when a timeout was given)."""


class Channel:
    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd

    def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, separators=(",", ":")).encode()
        view = memoryview(_HEADER.pack(len(data)) + data)
        try:
            while view:
                view = view[os.write(self.write_fd, view) :]
        except (BrokenPipeError, OSError) as exc:
            raise ChannelClosed(str(exc)) from exc

    def receive(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The next message; with `timeout_s`, ChannelTimeout when none starts arriving in time."""
        if timeout_s is not None:
            ready, _, _ = select.select([self.read_fd], [], [], max(0.0, timeout_s))
            if not ready:
                raise ChannelTimeout()
        (size,) = _HEADER.unpack(self._read(_HEADER.size))
        if size > MAX_MESSAGE_BYTES:
            raise ChannelClosed(f"message of {size} bytes is too large")
        message: dict[str, Any] = json.loads(self._read(size))
        return message

    def _read(self, size: int) -> bytes:
        chunks: list[bytes] = []
        while size:
            try:
                chunk = os.read(self.read_fd, min(size, 1 << 20))
            except OSError as exc:
                raise ChannelClosed(str(exc)) from exc
            if not chunk:
                raise ChannelClosed("end of stream")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
