"""The V8 sandbox: a plugin bundle compiled into its own mini-racer context and invoked under limits.

Each context is a separate V8 isolate holding one (account, plugin, version) bundle. An invocation
runs the entry point, then alternates "poll" and "settle" evaluations: host capability requests
queued by the plugin (`host.fetch`, `host.storage.*`) are served here, in Python, between
evaluations, and their results are handed back as resolved or rejected promises. All JavaScript
therefore runs inside evaluations that carry the call's remaining wall-clock budget, so a timeout
always terminates it; no Python runs on mini-racer's event loop.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.errors import PluginFailed
from chalicelib.plugins import limits

if TYPE_CHECKING:
    from py_mini_racer import MiniRacer

PRELUDE_PATH = Path(__file__).with_name("prelude.js")
BUNDLE_SOURCE_URL = "plugin.js"


class HostRefused(Exception):
    """A host function refused the request (not declared, not granted, bad arguments, a limit)."""

    js_name = "CapabilityError"


class HostFailed(Exception):
    """A host function was allowed but failed (network, storage); the plugin sees a HostError."""

    js_name = "HostError"


class BundleInvalid(Exception):
    """The bundle does not compile, throws at load, or lacks a declared entry point."""


# op name, JSON-decoded arguments, seconds left in the call -> JSON-able result
HostCall = Callable[[str, list[Any], float], Any]


@dataclass(frozen=True)
class Invocation:
    output: Any
    duration_ms: float
    host_calls: int


@functools.cache
def _prelude() -> str:
    source = PRELUDE_PATH.read_text()
    return (
        source.replace("%MEMORY_LIMIT_BYTES%", str(limits.MEMORY_LIMIT_BYTES)).replace(
            "%MAX_OUTPUT_CHARS%", str(limits.MAX_OUTPUT_BYTES)
        )
        + "\n//# sourceURL=race-prelude.js\n"
    )


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text)[:500]


class CompiledPlugin:
    """One plugin bundle loaded into its own V8 isolate, locked down and ready to invoke.

    Not thread-safe: the compile cache leases it to one caller at a time.
    """

    def __init__(self, racer: MiniRacer, label: str, size_bytes: int) -> None:
        self._racer: MiniRacer | None = racer
        self.label = label
        self.size_bytes = size_bytes
        self.usable = True
        self.lifetime_buffer_bytes = 0
        self.drain_deadline: float | None = None

    @classmethod
    def compile(
        cls, bundle: str, *, label: str, entry_points: Sequence[str], timeout_ms: int = limits.MAX_TIMEOUT_MS
    ) -> CompiledPlugin:
        """Create a context, run the prelude and the bundle's top level, check the entry points, lock down."""
        from py_mini_racer import JSEvalException, JSOOMException, JSTimeoutException, MiniRacer

        racer = MiniRacer()
        _track(racer)
        try:
            racer.set_hard_memory_limit(limits.MEMORY_LIMIT_BYTES)
            racer.eval(_prelude(), timeout_sec=5.0)
            try:
                racer.eval(bundle + f"\n//# sourceURL={BUNDLE_SOURCE_URL}\n", timeout_sec=timeout_ms / 1000)
                problems = json.loads(
                    str(racer.eval(f"__race.lockdown({json.dumps(json.dumps(list(entry_points)))})", timeout_sec=5.0))
                )
            except JSTimeoutException as exc:
                raise BundleInvalid(f"the bundle's top level did not finish within {timeout_ms} ms") from exc
            except JSOOMException as exc:
                raise BundleInvalid(
                    f"the bundle's top level reached the memory limit of {limits.MEMORY_LIMIT_BYTES // 1048576} MB"
                ) from exc
            except JSEvalException as exc:
                raise BundleInvalid(f"the bundle failed to load: {_first_line(str(exc))}") from exc
            if problems:
                raise BundleInvalid("; ".join(problems))
            heap = racer.heap_stats()
            size = int(heap.get("total_heap_size", 0)) + len(bundle.encode())
        except BaseException:
            _close_later(racer)
            raise
        return cls(racer, label, size)

    def invoke(
        self, entry_point: str, payload: Any, *, timeout_ms: int, capabilities: Sequence[str], host: HostCall
    ) -> Invocation:
        """Run `plugin[entry_point](payload)` under the limits; PluginFailed when it fails."""
        started = time.perf_counter()
        deadline = time.monotonic() + timeout_ms / 1000
        timed_out = PluginFailed(f"{self.label} timed out after {timeout_ms} ms", "timeout")
        host_calls = 0
        input_json = json.dumps(payload, separators=(",", ":"))
        message = self._eval(
            f"__race.start({json.dumps(entry_point)},{json.dumps(input_json)},"
            f"{json.dumps(json.dumps(list(capabilities)))})",
            deadline,
            timed_out,
        )
        polled = False
        while True:
            state = message["state"]
            self.lifetime_buffer_bytes = int(message.get("memory", {}).get("lifetime", 0))
            if not polled and state in ("done", "failed"):
                # Settled synchronously: the answer is ready now, and drain() runs whatever the
                # call left in the microtask queue afterwards, before the context serves again.
                self.drain_deadline = deadline
            elif not polled and not message.get("requests"):
                message = self._eval("__race.poll()", deadline, timed_out)
                polled = True
                continue
            if state == "done":
                return Invocation(self._output(message["output"]), (time.perf_counter() - started) * 1000, host_calls)
            if state == "failed":
                raise self._failure(message)
            requests = message.get("requests") or []
            if not requests:
                raise PluginFailed(
                    f"{self.label} returned a promise that never settled (only host.* calls can be "
                    "awaited: timers and other event sources do not exist in the sandbox)",
                    "error",
                )
            answers = []
            for request_id, op, args_json in requests:
                if time.monotonic() >= deadline:
                    raise timed_out
                host_calls += 1
                answers.append(self._serve(request_id, op, args_json, deadline, host))
            self._eval(f"__race.settle({json.dumps(json.dumps(answers))})", deadline, timed_out, parse=False)
            message = self._eval("__race.poll()", deadline, timed_out)
            polled = True

    def drain(self) -> None:
        """Let a synchronously settled call's leftover microtasks (a dangling promise chain) run out.

        Called after the answer is on its way. A chain that does not end within the call's time
        limit retires the context, so it can never stall the next invocation.
        """
        deadline, self.drain_deadline = self.drain_deadline, None
        if deadline is None or not self.usable:
            return
        with contextlib.suppress(PluginFailed):  # _eval retires the context on a timeout or the memory limit
            self._eval(
                "__race.poll()",
                max(deadline, time.monotonic() + 0.05),
                PluginFailed(f"{self.label} kept running after its result", "timeout"),
                parse=False,
            )

    def _serve(self, request_id: int, op: str, args_json: str, deadline: float, host: HostCall) -> list[Any]:
        try:
            args = json.loads(args_json)
            return [request_id, True, host(op, args if isinstance(args, list) else [], deadline - time.monotonic())]
        except (HostRefused, HostFailed) as exc:
            return [request_id, False, {"name": type(exc).js_name, "message": str(exc)}]

    def _eval(self, code: str, deadline: float, timed_out: PluginFailed, parse: bool = True) -> Any:
        from py_mini_racer import JSEvalException, JSOOMException, JSTimeoutException

        racer = self._racer
        if racer is None or not self.usable:
            raise RuntimeError("this plugin context was closed")
        remaining_s = deadline - time.monotonic()
        if remaining_s <= 0:
            self.usable = False
            raise timed_out
        try:
            result = racer.eval(code, timeout_sec=remaining_s)
        except JSTimeoutException as exc:
            self.usable = False
            raise timed_out from exc
        except JSOOMException as exc:
            self.usable = False
            raise self._memory_failure() from exc
        except JSEvalException as exc:
            # Only the driver is evaluated here; plugin errors come back as messages.
            self.usable = False
            if racer.was_hard_memory_limit_reached():
                raise self._memory_failure() from exc
            raise PluginFailed(f"{self.label} broke the sandbox driver: {_first_line(str(exc))}") from exc
        if racer.was_hard_memory_limit_reached():
            self.usable = False
            raise self._memory_failure()
        return json.loads(str(result)) if parse else result

    def _memory_failure(self) -> PluginFailed:
        return PluginFailed(
            f"{self.label} reached the memory limit of {limits.MEMORY_LIMIT_BYTES // 1048576} MB", "memory_limit"
        )

    def _output(self, output_json: str) -> Any:
        size = len(output_json.encode())
        if size > limits.MAX_OUTPUT_BYTES:
            raise PluginFailed(
                f"{self.label} returned {size} bytes of output; the limit is {limits.MAX_OUTPUT_BYTES} bytes",
                "output_too_large",
            )
        return json.loads(output_json)

    def _failure(self, message: dict[str, Any]) -> PluginFailed:
        kind = message.get("kind")
        if kind == "memory":
            self.usable = False
            return self._memory_failure()
        if kind == "output_size":
            return PluginFailed(
                f"{self.label} returned more than {limits.MAX_OUTPUT_BYTES} bytes of output "
                f"({message.get('size')} characters of JSON)",
                "output_too_large",
            )
        error = message.get("error") or {}
        name = str(error.get("name", "Error"))
        text = (str(error.get("message", "")).splitlines() or [""])[0]
        where = _location(str(error.get("stack", "")))
        if kind == "output":
            return PluginFailed(f"{self.label} returned a value that is not JSON-serialisable: {name}: {text}", "error")
        reason = "capability_refused" if name == HostRefused.js_name else "error"
        return PluginFailed(f"{self.label} threw {name}: {text}{where}", reason)

    def close(self) -> None:
        """Free the isolate (in the background: a wedged isolate must not block the caller)."""
        racer, self._racer = self._racer, None
        self.usable = False
        if racer is not None:
            _close_later(racer)


def _location(stack: str) -> str:
    """` (at plugin.js:12:5)` from a V8 stack, when the error comes from the bundle."""
    for line in stack.splitlines()[1:]:
        if BUNDLE_SOURCE_URL + ":" in line:
            start = line.index(BUNDLE_SOURCE_URL)
            return f" (at {line[start:].rstrip(')').strip()})"
    return ""


# Every context is closed on purpose, never by mini-racer's __del__: closing joins the context's
# event-loop thread, and a __del__ run by the garbage collector can run in any thread at any
# allocation, including one holding threading's internal lock that a finishing thread needs (a test
# run hung so: a loop thread finalizing a context joined a thread waiting for that lock). So the
# registry holds each open context strongly until `_close_later` hands it to its closer, and the
# process closes what is left at exit, while threads still run (at interpreter finalization the
# isolate thread's call back into Python would deadlock too). Lambda never exits; tests do.
_live_racers: set[MiniRacer] = set()
_closers: list[threading.Thread] = []
_registry_lock = threading.Lock()


def _track(racer: MiniRacer) -> None:
    with _registry_lock:
        _live_racers.add(racer)


def _close_quietly(racer: MiniRacer) -> None:
    # mini-racer 0.14 stops a context's event loop before freeing its isolate, and a terminated
    # evaluation reports back to that loop during the free: drop those late reports instead of
    # logging a "loop is closed" traceback for each retired context.
    loop = getattr(getattr(racer, "_ctx", None), "event_loop", None)
    if loop is not None:
        deliver = loop.call_soon_threadsafe

        def call_soon_threadsafe(callback: Any, *args: Any, **kwargs: Any) -> Any:
            return None if loop.is_closed() else deliver(callback, *args, **kwargs)

        loop.call_soon_threadsafe = call_soon_threadsafe
    racer.close()


def _close_later(racer: MiniRacer) -> None:
    thread = threading.Thread(target=_close_quietly, args=(racer,), name="plugin-context-close", daemon=True)
    with _registry_lock:
        _live_racers.discard(racer)
        _closers[:] = [t for t in _closers if t.is_alive()]
        _closers.append(thread)
    thread.start()


def _close_all() -> None:
    with _registry_lock:
        racers, closers = list(_live_racers), list(_closers)
        _live_racers.clear()
    for racer in racers:
        _close_quietly(racer)
    for thread in closers:
        thread.join(timeout=2.0)


atexit.register(_close_all)
