"""The API process's side of the plugin sandbox: one worker process per account, watched.

V8 can abort the whole process on some allocations that no limit interrupts (a C++ built-in
growing a hash table past its maximum, for one), so plugin code never runs in the API process.
Each account gets its own worker (`python -m chalicelib.plugins.worker`, no secrets in its
environment), which keeps that account's compile cache. The pool is bounded (least recently used
idle workers stop). While a call runs, the parent watches the worker: a worker that dies, stops
answering, or grows its memory past the limit is killed and restarted on the next call, and only
that call fails. Host capability calls arrive here and are performed here.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.errors import DependencyDown, PluginFailed
from chalicelib.plugins import limits
from chalicelib.plugins.ipc import Channel, ChannelClosed, ChannelTimeout
from chalicelib.plugins.runtime import HostFailed, HostRefused

CODE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding chalicelib/ (/var/task on Lambda)
_PASSED_ENV = ("PATH", "LD_LIBRARY_PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")
_WATCH_INTERVAL_S = 0.01
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

HostFunction = Callable[[str, list[Any], float], Any]
# A parent without site-packages (`python -I -S` in the package test) starts workers without them too.
_SITE_FLAGS = tuple(flag for flag, on in (("-S", sys.flags.no_site), ("-s", sys.flags.no_user_site)) if on)


@dataclass(frozen=True)
class InvokeRequest:
    account_id: str
    plugin_id: str
    version: str
    bundle_sha256: str
    label: str
    entry_point: str
    payload: Any
    timeout_ms: int
    capabilities: Sequence[str]


@dataclass(frozen=True)
class InvokeResult:
    output: Any
    duration_ms: float
    host_calls: int
    compiled: bool


class _WorkerLost(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class SandboxWorker:
    """One worker process and the channel to it; one call at a time."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.lock = threading.Lock()
        request_read, request_write = os.pipe()
        answer_read, answer_write = os.pipe()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker
        env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
        env.update({"PYTHONPATH": str(CODE_ROOT), "PYTHONDONTWRITEBYTECODE": "1"})
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    *_SITE_FLAGS,
                    "-m",
                    "chalicelib.plugins.worker",
                    str(request_read),
                    str(answer_write),
                    str(limits.CACHE_MAX_ENTRIES),
                    str(limits.CACHE_MAX_BYTES),
                ],
                pass_fds=(request_read, answer_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                env=env,
                cwd=str(CODE_ROOT),
                close_fds=True,
            )
        except OSError as exc:
            raise DependencyDown("plugin sandbox", f"the plugin sandbox could not start ({exc})") from exc
        finally:
            os.close(request_read)
            os.close(answer_write)
        self.channel = Channel(answer_read, request_write)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_bytes(self) -> int | None:
        try:
            with open(f"/proc/{self.process.pid}/statm") as statm:
                return int(statm.read().split()[1]) * _PAGE_BYTES
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        self.channel.close()
        if self.alive:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=2)
        self._stderr.close()

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - 8192))
            return self._stderr.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""

    def exchange(
        self,
        message: dict[str, Any],
        *,
        watch_s: float,
        host: HostFunction | None = None,
        load_bundle: Callable[[], str] | None = None,
    ) -> dict[str, Any]:
        """Send `message`, serve the worker's host and bundle requests, return its final answer.

        `watch_s`: how long the worker may take, host calls included (the plugin's time limit covers
        them); only loading its bundle, the platform's own work, extends it.
        """
        deadline = time.monotonic() + watch_s
        rss_start: list[int | None] = []  # read when the call first takes a while, not on the fast path
        try:
            self.channel.send(message)
            while True:
                answer = self._receive(deadline, rss_start)
                op = answer.get("op")
                if op == "host" and host is not None:
                    # The worker says how long the call has left; this side's watch bounds that too.
                    answer["remainingS"] = min(_number(answer.get("remainingS")), deadline - time.monotonic())
                    self.channel.send(_host_answer(host, answer))
                elif op == "need_bundle" and load_bundle is not None:
                    served = time.monotonic()
                    self.channel.send({"op": "bundle", "bundle": load_bundle()})
                    deadline += time.monotonic() - served
                else:
                    return answer
        except ChannelClosed as exc:
            raise self._lost() from exc

    def _receive(self, deadline: float, rss_start: list[int | None]) -> dict[str, Any]:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _WorkerLost("timeout", "did not answer in time; its sandbox was restarted")
            try:
                return self.channel.receive(timeout_s=min(_WATCH_INTERVAL_S, remaining))
            except ChannelTimeout:
                pass
            if not self.alive:
                raise self._lost()
            rss = self.rss_bytes()
            if not rss_start:
                rss_start.append(rss)
            start = rss_start[0]
            if rss is not None and start is not None and rss - start > limits.SANDBOX_MAX_CALL_GROWTH_BYTES:
                raise _WorkerLost(
                    "memory_limit",
                    f"used more than {limits.SANDBOX_MAX_CALL_GROWTH_BYTES // 1048576} "
                    "MB of memory in one call; its sandbox was restarted",
                )

    def _lost(self) -> _WorkerLost:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=1)
        tail = self._stderr_tail()
        if "out of memory" in tail.lower():
            return _WorkerLost("memory_limit", "exhausted the sandbox's memory (V8 stopped: out of memory)")
        return _WorkerLost("error", f"stopped the sandbox process (exit code {self.process.returncode})")


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _host_answer(host: HostFunction, request: dict[str, Any]) -> dict[str, Any]:
    """The answer to one host call; whatever the plugin sent, the worker gets an answer (never a 500)."""
    try:
        args = request.get("args")
        return {
            "ok": True,
            "value": host(
                str(request.get("call")), args if isinstance(args, list) else [], float(request.get("remainingS", 0))
            ),
        }
    except (HostRefused, HostFailed) as exc:
        return {"ok": False, "name": type(exc).js_name, "message": str(exc)}
    except DependencyDown as exc:
        return {"ok": False, "name": HostFailed.js_name, "message": exc.message}
    except Exception as exc:  # an argument no check foresaw: the plugin's error, not the platform's
        from chalicelib.observability import logger

        logger().exception("host call failed unexpectedly", extra={"call": str(request.get("call"))[:40]})
        return {
            "ok": False,
            "name": HostFailed.js_name,
            "message": f"host.{str(request.get('call'))[:40]} failed ({type(exc).__name__})",
        }


class SandboxPool:
    """Worker processes by account, least recently used first out."""

    def __init__(
        self,
        max_workers: int = limits.SANDBOX_MAX_WORKERS,
        worker_factory: Callable[[str], SandboxWorker] = SandboxWorker,
    ) -> None:
        self.max_workers = max_workers
        self._worker_factory = worker_factory
        self._workers: OrderedDict[str, SandboxWorker] = OrderedDict()
        self._lock = threading.Lock()

    def _worker(self, account_id: str) -> SandboxWorker:
        with self._lock:
            worker = self._workers.get(account_id)
            if worker is not None and worker.alive:
                self._workers.move_to_end(account_id)
                return worker
        fresh = self._worker_factory(account_id)
        stale: list[SandboxWorker] = []
        with self._lock:
            current = self._workers.get(account_id)
            if current is not None and current.alive:
                stale.append(fresh)
                fresh = current
            else:
                if current is not None:
                    stale.append(current)
                self._workers[account_id] = fresh
            self._workers.move_to_end(account_id)
            for other_id in list(self._workers):
                if len(self._workers) <= self.max_workers:
                    break
                other = self._workers[other_id]
                if other_id != account_id and not other.lock.locked():
                    stale.append(self._workers.pop(other_id))
        for worker in stale:
            worker.stop()
        return fresh

    def _call(
        self,
        account_id: str,
        message: dict[str, Any],
        *,
        watch_s: float,
        label: str,
        host: HostFunction | None = None,
        load_bundle: Callable[[], str] | None = None,
    ) -> dict[str, Any]:
        for _ in range(2):  # once more if the worker died between calls
            worker = self._worker(account_id)
            if not worker.lock.acquire(timeout=limits.MAX_TIMEOUT_MS / 1000 * 2 + 5):
                raise DependencyDown("plugin sandbox", "the plugin sandbox of this account is busy; try again")
            try:
                if not worker.alive:
                    continue
                return worker.exchange(message, watch_s=watch_s, host=host, load_bundle=load_bundle)
            except _WorkerLost as lost:
                self._forget(account_id, worker)
                raise PluginFailed(f"{label} {lost.message}", lost.reason) from lost
            except BaseException:
                # Interrupted mid-protocol (e.g. S3 failed while the worker waited for a bundle).
                self._forget(account_id, worker)
                raise
            finally:
                worker.lock.release()
        raise DependencyDown("plugin sandbox", "the plugin sandbox could not start")

    def _forget(self, account_id: str, worker: SandboxWorker) -> None:
        with self._lock:
            if self._workers.get(account_id) is worker:
                del self._workers[account_id]
        worker.stop()

    def invoke(self, request: InvokeRequest, host: HostFunction, load_bundle: Callable[[], str]) -> InvokeResult:
        message = {
            "op": "invoke",
            "key": [request.account_id, request.plugin_id, request.version, request.bundle_sha256],
            "label": request.label,
            "entryPoint": request.entry_point,
            "input": request.payload,
            "timeoutMs": request.timeout_ms,
            "capabilities": list(request.capabilities),
        }
        # Compiling (its top level may take timeoutMs) plus the call, plus margin for the process.
        watch_s = 2 * request.timeout_ms / 1000 + limits.SANDBOX_WATCH_MARGIN_S
        answer = self._call(
            request.account_id, message, watch_s=watch_s, label=request.label, host=host, load_bundle=load_bundle
        )
        if answer.get("op") == "failed":
            raise PluginFailed(str(answer.get("message")), str(answer.get("reason", "error")))
        if answer.get("op") != "result":
            raise PluginFailed(f"{request.label}: the sandbox answered {answer.get('op')!r}")
        return InvokeResult(
            answer.get("output"), float(answer["durationMs"]), int(answer["hostCalls"]), bool(answer["compiled"])
        )

    def check_bundle(
        self, account_id: str, bundle: str, *, label: str, entry_points: Sequence[str], timeout_ms: int
    ) -> str | None:
        """Why the bundle does not load (None when it does), compiled in the account's sandbox."""
        message = {
            "op": "check",
            "bundle": bundle,
            "label": label,
            "entryPoints": list(entry_points),
            "timeoutMs": timeout_ms,
        }
        try:
            answer = self._call(
                account_id, message, watch_s=timeout_ms / 1000 + limits.SANDBOX_WATCH_MARGIN_S, label="the bundle"
            )
        except PluginFailed as exc:
            return exc.message
        return str(answer["message"]) if answer.get("op") == "invalid" else None

    def discard(self, account_id: str, plugin_id: str) -> None:
        """Drop a deleted plugin's contexts, if this account has a running worker."""
        with self._lock:
            worker = self._workers.get(account_id)
        if worker is None or not worker.alive:
            return
        self._call(
            account_id,
            {"op": "discard", "accountId": account_id, "pluginId": plugin_id},
            watch_s=limits.SANDBOX_WATCH_MARGIN_S,
            label="discard",
        )

    def stats(self, account_id: str) -> dict[str, Any] | None:
        """The compile cache of this account's worker (tests and benchmarks), None without a worker."""
        with self._lock:
            worker = self._workers.get(account_id)
        if worker is None or not worker.alive:
            return None
        return self._call(account_id, {"op": "stats"}, watch_s=limits.SANDBOX_WATCH_MARGIN_S, label="stats")

    def shutdown(self) -> None:
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.stop()


@functools.cache
def sandbox_pool() -> SandboxPool:
    """This process's workers (per Lambda container), created on first use and stopped at exit."""
    pool = SandboxPool()
    atexit.register(pool.shutdown)
    return pool
