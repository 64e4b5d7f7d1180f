"""A part of the local stack in a child process: an interpreter (and a GIL) of its own, as AWS runs
each function and the API Gateway apart from the others.

The parent starts `python -m <module> ARGS...` with its own environment, waits for the child's ready
line, forwards the child's output to its stderr line by line, and talks to it over stdin: one
command per line, one `@<reply>` line back. Closing stdin stops the child (it also survives
nothing: a dead parent closes the pipe). Ctrl-C reaches the whole foreground process group, so the
child ignores SIGINT and lets the parent stop it in order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infra.local.maintenance import Gate

REPO = Path(__file__).resolve().parents[2]
LOG_LEVEL_VAR = "RACE_CHILD_LOG_LEVEL"
PAUSED, BUSY, RESUMED = "paused", "paused-busy", "resumed"
STOP_TIMEOUT_S = 10.0
READY = "@ready"
REPLY = "@"


class ChildProcess:
    """Start/stop like the in-process workers (so Maintenance can stop and restart it); each start
    is a fresh process."""

    def __init__(
        self,
        name: str,
        module: str,
        args: list[str],
        env: dict[str, str] | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        self.name = name
        self.module = module
        self.args = args
        self.env = env or {}  # on top of this process's environment
        self.pass_fds = pass_fds  # descriptors the child inherits (the API's listening socket)
        self._child: subprocess.Popen[str] | None = None
        self._forward: threading.Thread | None = None
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._talking = threading.Lock()

    def start_in_thread(self, ready_timeout_s: float = 60.0) -> None:
        """Spawn the child with this process's environment; returns once it says it is ready."""
        if self._child is not None:
            return
        env = {
            **os.environ,
            # A child logs as its parent does: `make dev` at INFO, a benchmark's stack at its default
            # WARNING (a per-request INFO line forwarded through the parent costs the API's requests).
            LOG_LEVEL_VAR: logging.getLevelName(logging.getLogger().getEffectiveLevel()),
            **self.env,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        child = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            pass_fds=self.pass_fds,
        )
        self._child = child
        self._replies = queue.Queue()
        self._forward = threading.Thread(target=self._watch, args=(child,), name=f"{self.name}-output", daemon=True)
        self._forward.start()
        try:
            ready = self._replies.get(timeout=ready_timeout_s)
        except queue.Empty:
            ready = None
        if ready != READY or child.poll() is not None:
            self.stop()
            raise RuntimeError(f"the {self.name} process did not start (see its output above)")

    @property
    def pid(self) -> int:
        """The running child's process id (0 when it is not running)."""
        return self._child.pid if self._child is not None else 0

    def request(self, command: str, timeout_s: float) -> str:
        """Send one command line; the child's reply (without its `@`). Raises if it gave none in time."""
        child = self._child
        if child is None or child.stdin is None:
            raise RuntimeError(f"the {self.name} process is not running")
        with self._talking:
            try:
                child.stdin.write(command + "\n")
                child.stdin.flush()
            except OSError as exc:  # its end of the pipe is closed: it died
                raise RuntimeError(f"the {self.name} process is not running (exit {child.poll()})") from exc
            try:
                reply = self._replies.get(timeout=timeout_s)
            except queue.Empty:
                reply = None
        if reply is None:
            raise RuntimeError(f"the {self.name} process did not answer {command!r} within {timeout_s:g} s")
        return reply[len(REPLY) :]

    def stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if child.stdin is not None:
            with contextlib.suppress(OSError):  # a dead child's pipe: flushing what is left fails
                child.stdin.close()  # the child finishes what it is doing and exits
        try:
            child.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if self._forward is not None:
            self._forward.join(timeout=STOP_TIMEOUT_S)
        if child.returncode not in (0, -signal.SIGKILL):
            print(f"the {self.name} process exited with {child.returncode}", file=sys.stderr)

    def _watch(self, child: subprocess.Popen[str]) -> None:
        """Forward the child's output; if it ends while it was meant to run, say so loudly."""
        _forward(child, self._replies)
        if self._child is child:  # not stopped by us (stop() forgets the child first)
            code = child.wait()
            print(
                f"the {self.name} process ended on its own (exit {code}): its part of the stack is down; "
                "restart the stack (make dev)",
                file=sys.stderr,
                flush=True,
            )


class GatedChildProcess(ChildProcess):
    """A child that serves requests behind a Gate (the API, the ws gateway): `make restore` pauses
    it with a command and resumes it after (`gate_commands` is the child's side)."""

    def pause(self, timeout_s: float | None = None) -> bool:
        """Hold new work; True once the work already inside has finished."""
        from infra.local.maintenance import DRAIN_TIMEOUT_S

        timeout_s = DRAIN_TIMEOUT_S if timeout_s is None else timeout_s
        return self.request("pause", timeout_s + 15) == PAUSED

    def resume(self) -> None:
        reply = self.request("resume", 30)
        if reply != RESUMED:
            raise RuntimeError(f"the {self.name} process answered {reply!r} to resume")


def _forward(child: subprocess.Popen[str], replies: queue.Queue[str | None]) -> None:
    """The child's output, line by line, to our stderr (so `make dev`'s log keeps it, and our stdout
    stays what the caller prints: bench.common's serve answers on it); its `@` lines are replies."""
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith(REPLY):
            replies.put(line.strip())
            continue
        sys.stderr.write(line)
        sys.stderr.flush()
    replies.put(None)  # it ended: a waiting starter or request looks at its exit status


# The child's side


def child_setup() -> None:
    """What every child does first: logging like the stack's, and Ctrl-C left to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us in order when Ctrl-C reaches it
    level = os.environ.get(LOG_LEVEL_VAR, "INFO")
    logging.basicConfig(
        level=level if level in logging.getLevelNamesMapping() else "INFO",
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("botocore.credentials").setLevel(logging.WARNING)  # one "found credentials" per client


def serve_commands(commands: dict[str, Callable[[], str]]) -> None:
    """Say we are ready, then answer command lines from stdin until it closes or SIGTERM comes."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())

    def read() -> None:
        for line in sys.stdin:
            command = line.strip()
            action = commands.get(command)
            reply = action() if action else f"unknown command {command!r}"
            print(REPLY + reply, flush=True)
        stop.set()  # the parent closed our stdin (or died)

    print(READY, flush=True)
    threading.Thread(target=read, name="commands", daemon=True).start()
    stop.wait()


def gate_commands(gate: Gate) -> dict[str, Callable[[], str]]:
    """`pause` and `resume` for a child serving behind `gate`: pausing waits for the work inside,
    then closes the database pool, so no connection or prepared statement survives a restore."""
    from chalicelib import caches

    def pause() -> str:
        drained = gate.pause()
        caches.forget()
        return PAUSED if drained else BUSY

    def resume() -> str:
        caches.forget()
        gate.resume()
        return RESUMED

    return {"pause": pause, "resume": resume}


def serve_gated(start: Callable[[Gate], Callable[[], None]]) -> int:
    """A gated child's whole life: set up, check the environment, make the AWS clients, `start(gate)`
    its server (which returns how to stop it), then answer pause/resume until stdin closes."""
    from chalicelib.config import settings
    from infra.local.maintenance import Gate
    from infra.local.stack import warm_clients

    child_setup()
    settings()  # fail fast on a bad environment, before anything is served
    warm_clients()  # before the first request, not during it (infra/local/stack.py)
    gate = Gate()
    stop = start(gate)
    try:
        serve_commands(gate_commands(gate))
    finally:
        stop()
    return 0
