"""Sandbox worker processes: one per account, a compile cache inside, host calls relayed, and a
watchdog that contains crashes, silence and memory growth (real processes; no database)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.errors import DependencyDown, PluginFailed
from chalicelib.plugins import limits, sandbox
from chalicelib.plugins.runtime import HostRefused
from chalicelib.plugins.sandbox import InvokeRequest, SandboxPool, SandboxWorker

pytestmark = pytest.mark.unit


@pytest.fixture()
def pool() -> Iterator[SandboxPool]:
    workers = SandboxPool(max_workers=2)
    try:
        yield workers
    finally:
        workers.shutdown()


def request(
    account: str, body: str, *, version: str = "1.0.0", payload: Any = None, timeout_ms: int = 1000
) -> tuple[InvokeRequest, str]:
    bundle = f"var plugin = {{ math: {body} }};"
    return (
        InvokeRequest(
            account,
            "p",
            version,
            str(abs(hash(bundle))),
            f"plugin p {version}",
            "math",
            payload,
            timeout_ms,
            ["storage"],
        ),
        bundle,
    )


class Bundles:
    def __init__(self, bundle: str) -> None:
        self.bundle = bundle
        self.loads = 0

    def __call__(self) -> str:
        self.loads += 1
        return self.bundle


def no_host(op: str, args: list[Any], remaining_s: float) -> Any:
    raise HostRefused(f"{op} is not granted")


def invoke(pool: SandboxPool, account: str, body: str, **kwargs: Any) -> Any:
    req, bundle = request(account, body, **kwargs)
    return pool.invoke(req, no_host, Bundles(bundle))


def test_the_bundle_is_loaded_on_a_miss_only(pool: SandboxPool) -> None:
    req, bundle = request("a", "(x) => x + 1", payload=41)
    loads = Bundles(bundle)
    first = pool.invoke(req, no_host, loads)
    second = pool.invoke(req, no_host, loads)
    assert (first.output, first.compiled, second.output, second.compiled, loads.loads) == (42, True, 42, False, 1)
    assert pool.stats("a") == {
        "op": "stats",
        "entries": 1,
        "sizeBytes": pool.stats("a")["sizeBytes"],  # type: ignore[index]
        "hits": 1,
        "misses": 1,
        "evictions": 0,
    }
    pool.discard("a", "p")
    assert pool.stats("a")["entries"] == 0  # type: ignore[index]
    assert pool.stats("nobody") is None


def test_host_calls_are_relayed_to_this_process(pool: SandboxPool) -> None:
    seen: list[tuple[str, list[Any]]] = []

    def host(op: str, args: list[Any], remaining_s: float) -> Any:
        seen.append((op, args))
        if args[0] == "down":
            raise DependencyDown("DynamoDB")
        return {"stored": args[0]}

    body = """async () => {
        const value = await host.storage.get('lap');
        try { await host.storage.get('down'); } catch (e) { return [value, e.name, e.message]; }
    }"""
    req, bundle = request("a", body)
    result = pool.invoke(req, host, Bundles(bundle))
    assert result.output == [{"stored": "lap"}, "HostError", "DynamoDB is unavailable; try again shortly"]
    assert seen == [("storage.get", ["lap"]), ("storage.get", ["down"])] and result.host_calls == 2


def test_a_host_function_that_breaks_is_the_plugins_error_and_the_worker_survives(pool: SandboxPool) -> None:
    def host(op: str, args: list[Any], remaining_s: float) -> Any:
        return args[0].encode("latin-1")  # as http.client did with a header it could not encode

    invoke(pool, "a", "() => 1")
    pid = pool._workers["a"].process.pid
    req, bundle = request("a", "async () => { await host.storage.get('\u017d'); }")
    with pytest.raises(PluginFailed) as raised:
        pool.invoke(req, host, Bundles(bundle))
    assert raised.value.code == "plugin_error"
    assert "HostError: host.storage.get failed (UnicodeEncodeError)" in raised.value.message
    assert invoke(pool, "a", "() => 'next'").output == "next" and pool._workers["a"].process.pid == pid


def test_plugin_failures_come_back_as_plugin_errors(pool: SandboxPool) -> None:
    with pytest.raises(PluginFailed) as raised:
        invoke(pool, "a", "() => { while (true) {} }", timeout_ms=100)
    assert raised.value.code == "plugin_timeout" and "timed out after 100 ms" in raised.value.message
    with pytest.raises(PluginFailed) as raised:
        invoke(pool, "a", "() => host.storage.get('k')")
    assert raised.value.code == "plugin_capability_refused"
    assert pool.check_bundle("a", "var plugin = {", label="t", entry_points=["math"], timeout_ms=100)
    assert pool.check_bundle("a", "var plugin = {math() {}}", label="t", entry_points=["math"], timeout_ms=100) is None


def test_a_worker_that_dies_fails_only_that_call(pool: SandboxPool) -> None:
    invoke(pool, "a", "() => 1")
    invoke(pool, "b", "() => 1")
    pid_b = pool._workers["b"].process.pid
    victim = pool._workers["a"].process
    threading.Timer(0.2, victim.kill).start()  # as V8 does on a fatal out-of-memory
    with pytest.raises(PluginFailed) as raised:
        invoke(pool, "a", "() => { while (true) {} }", timeout_ms=3000)
    assert raised.value.code == "plugin_error" and "stopped the sandbox process" in raised.value.message
    assert invoke(pool, "a", "() => 'back'").compiled is True
    assert invoke(pool, "b", "() => 1").compiled is False and pool._workers["b"].process.pid == pid_b


def test_memory_growth_past_the_limit_kills_the_worker(pool: SandboxPool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "SANDBOX_MAX_CALL_GROWTH_BYTES", 16 * 1024 * 1024)
    with pytest.raises(PluginFailed) as raised:
        invoke(
            pool,
            "a",
            "() => { const k = []; for (let i = 0; i < 60; i++) k.push(new Array(1e5).fill(i + 0.5)); "
            "const t = Date.now(); while (Date.now() - t < 400) {} return k.length; }",
        )
    assert raised.value.code == "plugin_memory_limit" and "more than 16 MB" in raised.value.message


def test_a_silent_worker_is_presumed_wedged() -> None:
    worker = SandboxWorker("a")
    try:
        _req, bundle = request("a", "() => { while (true) {} }", timeout_ms=5000)
        message = {
            "op": "invoke",
            "key": ["a", "p", "1", "s"],
            "label": "t",
            "entryPoint": "math",
            "input": None,
            "timeoutMs": 5000,
            "capabilities": [],
        }
        with pytest.raises(sandbox._WorkerLost) as raised:
            worker.exchange(message, watch_s=0.3, load_bundle=lambda: bundle)
        assert raised.value.reason == "timeout"
    finally:
        worker.stop()
    assert not worker.alive


def test_workers_are_bounded_and_carry_no_secrets(pool: SandboxPool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "never-in-the-sandbox")
    monkeypatch.setenv("DATABASE_URL", "postgresql://secret@db/race")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    invoke(pool, "a", "() => 1")
    environ = Path(f"/proc/{pool._workers['a'].process.pid}/environ")
    if environ.exists():
        names = {item.split(b"=", 1)[0].decode() for item in environ.read_bytes().split(b"\0") if item}
        assert names <= {
            "PATH",
            "LD_LIBRARY_PATH",
            "LANG",
            "LC_ALL",
            "TZ",
            "TMPDIR",
            "PYTHONPATH",
            "PYTHONDONTWRITEBYTECODE",
        }
    first = pool._workers["a"]
    invoke(pool, "b", "() => 1")
    invoke(pool, "c", "() => 1")  # max_workers=2: the least recently used (a) stops
    assert set(pool._workers) == {"b", "c"} and not first.alive
