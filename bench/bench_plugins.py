"""Plugins: a warm invoke (cache hit) through the local gateway vs a direct mini-racer call of the same
function (the floor), and cold compiles of the example bundles vs a bare context + eval."""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import REPO, emit, local_stack, percentile, token_for

TARGETS = {
    "plugin_warm_invoke_p50": "<= 2x floor + /health",
    "plugin_warm_invoke_over_health_p50": "<= 2x",
}
WHY_BEHIND = {
    "plugin_warm_invoke_p50": "By design: plugin code never runs in the API process (V8 can abort a process on "
    "OOM; docs/decisions.md), so each call pays a pipe round trip to the account's worker (~0.3 ms, "
    "plugin_warm_sandbox_call_p50), and the route authenticates (membership re-read, ~0.6 ms) and reads "
    "the plugin and its grant (~0.3 ms). Caching membership and plugin rows for a few seconds would halve it "
    "at the cost of revocations taking effect that much later; we chose immediate revocation.",
    "plugin_warm_invoke_over_health_p50": "See plugin_warm_invoke_p50.",
}
EXAMPLES = REPO / "examples" / "plugins"
FUEL_INPUT = {"fuelLevelsL": [100.0, 96.8, 93.5, 90.3, 87.1, 84.0, 80.8], "tankCapacityL": 120, "stintLaps": 30}
WARM_REQUESTS = 1500


class Client:
    """One keep-alive connection; returns (status, body, seconds)."""

    def __init__(self, base_url: str, token: str) -> None:
        target = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port or 80, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
        data = None if body is None else json.dumps(body)
        began = time.perf_counter()
        self.conn.request(method, path, body=data, headers=self.headers)
        response = self.conn.getresponse()
        raw = response.read()
        elapsed = time.perf_counter() - began
        return response.status, json.loads(raw) if raw else None, elapsed


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        began = time.perf_counter()
        fn()
        out.append(time.perf_counter() - began)
    return out


def bundle_of(name: str) -> tuple[dict[str, Any], str]:
    folder = EXAMPLES / name
    return json.loads((folder / "plugin.json").read_text()), (folder / "dist" / "plugin.js").read_text()


def floor_call_s(bundle: str, entry: str, payload: Any, n: int) -> list[float]:
    """A direct mini-racer call of the same function in a context that already evaluated the bundle."""
    from py_mini_racer import MiniRacer

    racer = MiniRacer()
    racer.eval(bundle)
    try:
        timed(lambda: racer.call(f"plugin.{entry}", payload), 200)
        return timed(lambda: racer.call(f"plugin.{entry}", payload), n)
    finally:
        racer.close()


def floor_compile_s(bundle: str, n: int) -> list[float]:
    """A bare context plus the bundle's evaluation: the least a compile can cost."""
    from py_mini_racer import MiniRacer

    def once() -> None:
        racer = MiniRacer()
        racer.eval(bundle)
        racer.close()

    once()
    return timed(once, n)


def ours_compile_s(bundle: str, entry: str, n: int) -> list[float]:
    """CompiledPlugin.compile: context, sandbox prelude, bundle, entry-point check and lockdown."""
    from chalicelib.plugins.runtime import CompiledPlugin

    def once() -> None:
        CompiledPlugin.compile(bundle, label="bench", entry_points=[entry]).close()

    once()
    return timed(once, n)


def process_start_s(n: int) -> list[float]:
    """A bare Python process that imports mini-racer and evaluates `1`: the floor of a sandbox start."""
    code = "import py_mini_racer; py_mini_racer.MiniRacer().eval('1')"
    return timed(lambda: subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO), n)


def main() -> None:
    manifest, bundle = bundle_of("fuel-per-lap")
    _stint_manifest, stint_bundle = bundle_of("stint-pace")

    # Cold compiles of the example bundles (in this process, no sandbox process involved).
    for name, source, entry in (("fuel_per_lap", bundle, "math"), ("stint_pace", stint_bundle, "kpiProcessor")):
        ours = statistics.median(ours_compile_s(source, entry, 15))
        floor = statistics.median(floor_compile_s(source, 15))
        emit(
            f"plugin_cold_compile_{name}",
            ours * 1000,
            floor * 1000,
            "ms",
            "median; lower is better; ours adds the sandbox prelude and the freeze of the built-ins",
        )

    with local_stack() as stack:
        api = Client(stack.api_url, token_for(stack))
        status, _, _ = api.call("POST", "/plugins", {"manifest": manifest, "bundle": bundle})
        assert status in (200, 201), status
        path = f"/plugins/{manifest['id']}/invoke/math"

        status, answer, _ = api.call("POST", path, {"input": FUEL_INPUT})
        assert status == 200 and answer["compiled"] is True, answer

        # A new version's first call in a running sandbox: S3 + compile + call.
        firsts = []
        for minor in range(1, 6):
            status, _, _ = api.call(
                "POST", "/plugins", {"manifest": {**manifest, "version": f"1.{minor}.0"}, "bundle": bundle}
            )
            assert status == 201, status
            status, answer, elapsed = api.call("POST", path, {"input": FUEL_INPUT})
            assert status == 200 and answer["compiled"] is True, answer
            firsts.append(elapsed)
        compile_floor = statistics.median(floor_compile_s(bundle, 5))
        emit(
            "plugin_first_invoke_new_version",
            statistics.median(firsts) * 1000,
            compile_floor * 1000,
            "ms",
            "median of 5 versions; floor: bare context + bundle eval; lower is better",
        )

        # Warm invokes (cache hits) vs a direct call; the gateway's own cost measured on /health.
        for _ in range(200):
            api.call("POST", path, {"input": FUEL_INPUT})
        warm = []
        for _ in range(WARM_REQUESTS):
            status, answer, elapsed = api.call("POST", path, {"input": FUEL_INPUT})
            assert status == 200 and answer["compiled"] is False
            warm.append(elapsed)
        health = [api.call("GET", "/health")[2] for _ in range(WARM_REQUESTS)]
        me = [api.call("GET", "/auth/me")[2] for _ in range(WARM_REQUESTS)]
        floor = floor_call_s(bundle, "math", FUEL_INPUT, WARM_REQUESTS)
        warm_p50, health_p50, me_p50, floor_p50 = (percentile(v, 50) * 1000 for v in (warm, health, me, floor))
        budget = 2 * floor_p50 + health_p50
        verdict = "met" if warm_p50 <= budget else "NOT met"
        emit(
            "plugin_warm_invoke_p50",
            warm_p50,
            floor_p50,
            "ms",
            f"target <= 2x floor + /health {health_p50:.3f} ms = {budget:.3f} ms: {verdict}; "
            f"p99 {percentile(warm, 99) * 1000:.3f} ms",
        )
        emit(
            "plugin_warm_invoke_over_health_p50",
            warm_p50 - health_p50,
            floor_p50,
            "ms",
            "warm invoke minus GET /health (auth, 1 query, sandbox round trip, V8 call); target ratio <= 2",
        )
        emit(
            "plugin_warm_invoke_over_auth_p50",
            warm_p50 - me_p50,
            floor_p50,
            "ms",
            f"warm invoke minus an authenticated GET /auth/me ({me_p50:.3f} ms): the plugin route's own share "
            "(its query, the sandbox round trip, the V8 call)",
        )

    # The sandbox alone (no HTTP, no SQL): the process hop, the driver and the limits.
    from chalicelib.plugins.sandbox import InvokeRequest, SandboxPool

    request = InvokeRequest("bench", "fuel-per-lap", "1.0.0", "sha", "bench", "math", FUEL_INPUT, 1000, [])
    starts = []
    for _ in range(3):
        pool = SandboxPool()
        began = time.perf_counter()
        assert pool.invoke(request, lambda *a: None, lambda: bundle).compiled
        starts.append(time.perf_counter() - began)
        pool.shutdown()
    emit(
        "plugin_sandbox_start",
        statistics.median(starts) * 1000,
        statistics.median(process_start_s(3)) * 1000,
        "ms",
        "an account's first call in a container: worker process + compile + call, median of 3; floor: a bare "
        "python + mini-racer process; lower is better",
    )
    pool = SandboxPool()
    try:
        pool.invoke(request, lambda *a: None, lambda: bundle)
        timed(lambda: pool.invoke(request, lambda *a: None, lambda: bundle), 200)
        sandbox_calls = timed(lambda: pool.invoke(request, lambda *a: None, lambda: bundle), WARM_REQUESTS)
    finally:
        pool.shutdown()
    floor = floor_call_s(bundle, "math", FUEL_INPUT, WARM_REQUESTS)
    emit(
        "plugin_warm_sandbox_call_p50",
        percentile(sandbox_calls, 50) * 1000,
        percentile(floor, 50) * 1000,
        "ms",
        "SandboxPool.invoke back to back on a cached context (process hop, driver, limits) vs the direct call",
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
