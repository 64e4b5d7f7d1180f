"""Tools for the fault tests: a private AWS emulator that can be stopped and restarted, a session-room
member that recovers as a real client does, and the app in a subprocess that can be SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from chalicelib import caches
from infra.local.ports import free_port, is_listening

REPO = Path(__file__).resolve().parents[2]


reset_app_caches = caches.forget  # pools, settings, clients, queue URLs, webhook policy


def environment(**values: str) -> Any:
    """The app (in this process) runs with these variables changed, as after a cold start."""
    return caches.cold_start(values)


class StoppableEmulator:
    """moto server on a fixed free port that a test may stop and start again there.

    moto keeps its state in memory only: a restart comes back empty, and `start` provisions the
    tables, queues and buckets again, as an operator restarting the local emulator would.
    """

    def __init__(self, log_path: Path) -> None:
        from infra.local.emulator import Emulator

        self.emulator = Emulator(port=free_port(), log_path=log_path)
        self.url = self.emulator.endpoint_url
        self.restarts = 0

    def start(self) -> str:
        from infra.local.provision import provision

        self.emulator.start()
        provision(self.url)
        return self.url

    def stop(self) -> None:
        self.emulator.stop()
        deadline = time.monotonic() + 10
        while is_listening(self.emulator.host, self.emulator.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        self.start()
        self.restarts += 1


# --- a session-room member ------------------------------------------------------------------------


@dataclass
class Push:
    epoch: int  # which numbering of the room (a new one after a resync said the old seqs are gone)
    seq: int
    type: str
    title: str | None


@dataclass
class RoomMember:
    """A WebSocket client in one session room that behaves like web/js/realtime.js: it applies pushes
    strictly in seq order, asks to `resume` from its last seq (naming the room's epoch it last saw) on a
    gap and after reconnecting, and on `resync` refetches (`refetch()` -> board-card titles) and
    continues after the resync's seq (in the resync's epoch: a `room_restarted` one drops what it held).
    Runs in its own thread; everything it saw is kept for the test to check."""

    ws_url: str
    token: str
    session_id: str
    user_id: str
    refetch: Callable[[], set[str]]
    pushes: list[Push] = field(default_factory=list)
    refetched: set[str] = field(default_factory=set)
    resyncs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0  # pushes with seq <= last applied (a repeat the client ignores)
    connects: int = 0
    last_seq: int | None = None
    epoch: int = 0  # how many times this member started over (a resync): its own count, not the room's
    room_epoch: str | None = None  # the room's epoch from the last joined/resumed/resync
    connection_id: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._buffer: dict[int, dict[str, Any]] = {}
        self._resuming = False
        self._stop = threading.Event()
        self._joined = threading.Event()
        self._thread = threading.Thread(target=self._run, name="room-member", daemon=True)

    def start(self, timeout_s: float = 10) -> RoomMember:
        self._thread.start()
        if not self._joined.wait(timeout_s):
            raise AssertionError(f"the member did not join the room within {timeout_s} s: {self.errors}")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def titles(self) -> set[str]:
        """Every board card this member knows of: pushed to it or refetched."""
        with self.lock:
            return {p.title for p in self.pushes if p.title} | self.refetched

    def in_sync(self) -> bool:
        with self.lock:
            return not self._buffer and not self._resuming

    def _run(self) -> None:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        while not self._stop.is_set():
            try:
                ws = connect(f"{self.ws_url}/?token={self.token}", open_timeout=5)
            except Exception:
                self._stop.wait(0.2)  # like the web client: reconnect with a short backoff
                continue
            with ws:
                self.connects += 1
                self._joined.clear()
                if self.last_seq is None:
                    ws.send(json.dumps({"action": "join", "sessionId": self.session_id}))
                else:  # back after losing the socket: re-enter the room and ask for what was missed
                    self._resume(ws)
                while not self._stop.is_set():
                    try:
                        raw = ws.recv(timeout=0.2)
                    except TimeoutError:
                        continue
                    except ConnectionClosed:
                        break
                    self._receive(ws, json.loads(raw))
            with self.lock:
                self._resuming = False

    def _resume(self, ws: Any) -> None:
        self._resuming = True
        resume = {"action": "resume", "sessionId": self.session_id, "sinceSeq": self.last_seq}
        ws.send(json.dumps({**resume, **({"epoch": self.room_epoch} if self.room_epoch else {})}))

    def _receive(self, ws: Any, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "joined":
            with self.lock:
                mine = [m for m in message["members"] if m.get("userId") == self.user_id]
                self.connection_id = mine[-1]["connectionId"] if mine else None
                self.last_seq = message["seq"]
                self.room_epoch = message.get("epoch")
            self._joined.set()
        elif kind == "resumed":
            with self.lock:
                self.room_epoch = message.get("epoch", self.room_epoch)
            for item in message["messages"]:
                self._change(ws, item, replayed=True)
            if message["final"]:
                with self.lock:
                    self._resuming = False
                    self.connection_id = self._my_connection(message.get("members", []))
                self._joined.set()
                self._drain(ws)
        elif kind == "resync":
            titles = self.refetch()
            with self.lock:
                self.resyncs.append(message)
                self.refetched |= titles
                self.epoch += 1
                restarted = message.get("epoch", self.room_epoch) != self.room_epoch
                self.room_epoch = message.get("epoch", self.room_epoch)
                self.last_seq = message["seq"]
                # What is buffered is of the old numbering if the room restarted; else keep what follows seq.
                self._buffer = {} if restarted else {s: m for s, m in self._buffer.items() if s > self.last_seq}
                self._resuming = False
                self.connection_id = self._my_connection(message.get("members", []))
            self._joined.set()
            self._drain(ws)
        elif kind == "error":
            with self.lock:
                self.errors.append(message)
                resuming, self._resuming = self._resuming, False
            if resuming:  # as web/js/realtime.js: the room cannot resume, so refetch and enter it afresh
                titles = self.refetch()
                with self.lock:
                    self.resyncs.append(message)
                    self.refetched |= titles
                    self.epoch += 1
                    self._buffer.clear()
                    self.last_seq = None
                ws.send(json.dumps({"action": "join", "sessionId": self.session_id}))
        elif isinstance(message.get("seq"), int) and message.get("sessionId") == self.session_id and "data" in message:
            self._change(ws, message)

    def _my_connection(self, members: list[dict[str, Any]]) -> str | None:
        mine = [m for m in members if m.get("userId") == self.user_id]
        return str(mine[-1]["connectionId"]) if mine else self.connection_id

    def _change(self, ws: Any, message: dict[str, Any], replayed: bool = False) -> None:
        with self.lock:
            if self.last_seq is not None and message["seq"] <= self.last_seq:
                self.dropped += 1
                return
            self._buffer[message["seq"]] = message
        if not replayed:
            self._drain(ws)

    def _drain(self, ws: Any) -> None:
        with self.lock:
            if self.last_seq is None:
                return
            while self.last_seq + 1 in self._buffer:
                message = self._buffer.pop(self.last_seq + 1)
                self.last_seq += 1
                data = message.get("data") or {}
                self.pushes.append(Push(self.epoch, message["seq"], message["type"], data.get("title")))
            gap = bool(self._buffer) and not self._resuming
        if gap:
            self._resume(ws)

    def drop_socket(self, management_url: str) -> None:
        """Close this member's socket from the gateway's side (@connections DELETE), as a restarting
        gateway does to every socket it holds."""
        assert self.connection_id, "the member has no connection id yet"
        answer = requests.delete(f"{management_url}/@connections/{self.connection_id}", timeout=5)
        assert answer.status_code in (204, 410), answer.text

    def repeats(self) -> tuple[int, int]:
        """(titles pushed twice within one numbering of the room, titles pushed in two numberings)."""
        with self.lock:
            within = Counter((p.epoch, p.title) for p in self.pushes if p.title)
            across = Counter(p.title for p in self.pushes if p.title)
        return sum(1 for n in within.values() if n > 1), sum(1 for n in across.values() if n > 1)


# --- the app in a process of its own ------------------------------------------------------------------


class AppProcess:
    """`python -m tests.integration.fault_runner`: the HTTP gateway and the webhook queue's poller over
    the app, in one process (as `make dev` runs them), which the test can SIGKILL and start again on
    the same port."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        self.env = env
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.fault_runner", str(self.port)],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the app process exited ({self.process.returncode}): {self.tail()}")
            with suppress(requests.RequestException):
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise AssertionError(f"the app process did not answer /health within {timeout_s} s: {self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no answers, open transactions and sockets cut where they stand."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
