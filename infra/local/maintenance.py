"""Pausing the running local stack for a database swap (`make restore`), and resuming it.

The restore command signals the stack process: SIGUSR1 pauses (the HTTP API answers 503
`maintenance`, WebSocket invocations wait, the SQS poller and the scheduler stop, the PostgreSQL
pool is closed once the work inside has finished) and records `maintenance.json`; SIGUSR2 resumes
with fresh pools, so no prepared statement or pooled connection still points at the old tables.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from infra.local import state

RECORD = "maintenance"
DRAIN_TIMEOUT_S = 30.0


class Gate:
    """Lets work in until paused; pause() returns once the work already inside has finished."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    @contextmanager
    def admit(self) -> Iterator[bool]:
        """Yields False (nothing entered) while paused."""
        with self._cond:
            if self._paused:
                admitted = False
            else:
                self._active += 1
                admitted = True
        try:
            yield admitted
        finally:
            if admitted:
                with self._cond:
                    self._active -= 1
                    self._cond.notify_all()

    @contextmanager
    def wait_admitted(self) -> Iterator[None]:
        """Waits while paused, then enters (WebSocket frames are delayed, not refused)."""
        with self._cond:
            self._cond.wait_for(lambda: not self._paused)
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def pause(self, timeout_s: float = DRAIN_TIMEOUT_S) -> bool:
        """Close the gate; True once nothing is inside (False: still busy after timeout_s)."""
        with self._cond:
            self._paused = True
            return self._cond.wait_for(lambda: self._active == 0, timeout_s)

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()


class _Worker(Protocol):
    def start_in_thread(self) -> None: ...

    def stop(self) -> None: ...


class _Pausable(Protocol):
    """A Gate, or a child process that keeps one (the WebSocket gateway's)."""

    def pause(self, timeout_s: float = DRAIN_TIMEOUT_S) -> bool: ...

    def resume(self) -> None: ...


class Maintenance:
    """The stack side: pause and resume the API, the WebSocket handlers and the workers together."""

    def __init__(self, directory: Path, gates: list[_Pausable], workers: list[_Worker]) -> None:
        self.directory = directory
        self.gates = gates
        self.workers = workers
        self._lock = threading.Lock()

    def install_signals(self) -> None:
        """SIGUSR1 pauses, SIGUSR2 resumes; the work runs off the signal handler's thread."""

        def on_signal(signum: int, frame: Any) -> None:
            action = self.pause if signum == signal.SIGUSR1 else self.resume
            threading.Thread(target=action, name="maintenance", daemon=True).start()

        signal.signal(signal.SIGUSR1, on_signal)
        signal.signal(signal.SIGUSR2, on_signal)

    def pause(self) -> None:
        from chalicelib import caches

        with self._lock:
            print("maintenance: pausing the API, WebSocket handlers and workers for a database swap", flush=True)
            drained = all([_try(f"pausing {gate!r}", gate.pause, False) for gate in self.gates])  # each closes
            for worker in self.workers:
                _try(f"stopping {worker!r}", worker.stop, None)
            caches.forget()  # closes the pool: no connection or prepared statement survives the swap
            state.write_record(self.directory, RECORD, {"pid": os.getpid(), "paused": True, "drained": drained})
            print(f"maintenance: paused ({'drained' if drained else 'requests still running after 30 s'})", flush=True)

    def resume(self) -> None:
        from chalicelib import caches

        with self._lock:
            caches.forget()
            # Each part on its own: a worker or child that fails to come back must not leave the API paused.
            for worker in self.workers:
                _try(f"restarting {worker!r}", worker.start_in_thread, None)
            for gate in reversed(self.gates):
                _try(f"resuming {gate!r}", gate.resume, None)
            (self.directory / f"{RECORD}.json").unlink(missing_ok=True)
            print("maintenance: resumed with fresh connections", flush=True)


def _try(what: str, action: Any, failed: Any) -> Any:
    """`action()`, or `failed` after saying loudly on stderr that it raised."""
    try:
        return action()
    except Exception as exc:
        print(f"maintenance: {what} failed: {exc!r}", file=sys.stderr, flush=True)
        return failed


def _wait(condition: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@contextmanager
def paused_stack(directory: Path, pid: int) -> Iterator[None]:
    """The command side: pause the stack running as `pid` for the block, resume it whatever happens."""
    record = directory / f"{RECORD}.json"
    record.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    if not _wait(lambda: (state.read_record(directory, RECORD) or {}).get("pid") == pid, DRAIN_TIMEOUT_S + 15):
        os.kill(pid, signal.SIGUSR2)
        raise RuntimeError(f"the running stack (pid {pid}) did not confirm the pause; nothing was changed")
    try:
        yield
    finally:
        os.kill(pid, signal.SIGUSR2)
        if not _wait(lambda: not record.exists(), 30):
            print(f"warning: the stack (pid {pid}) did not confirm it resumed; see `make logs`", flush=True)
