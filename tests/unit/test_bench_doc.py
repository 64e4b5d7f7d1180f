"""The benchmark table judges each figure against its target and says why the late ones are late."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from bench.common import cpu_seconds, cpu_shares
from bench.run import Figure, Outcome, render

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("figure", "verdict"),
    [
        (Figure("rate", "9000/s", "30000/s", "0.300", "", ">= 0.3x"), "met"),
        (Figure("rate", "8000/s", "30000/s", "0.267", "", ">= 0.3x"), "behind"),
        (Figure("start", "173ms", "118ms", "1.47", "", "<= 1.5x"), "met"),
        (Figure("p99", "251ms", "4ms", "62.7", "", "<= 250 ms"), "behind"),
        (Figure("p99", "143ms", "4ms", "35.7", "", "<= 250 ms"), "met"),
        (
            Figure("warm", "1.8ms", "0.09ms", "19.0", "budget 0.35 ms: NOT met; p99 7 ms", "<= 2x floor + /health"),
            "behind",
        ),
        (Figure("mix", "170req/s", "98req/s", "1.73", "errors 0", "errors = 0, lost = 0"), ""),
        (Figure("peer", "80req/s", "481req/s", "0.17", "", ""), ""),
    ],
)
def test_verdicts(figure: Figure, verdict: str) -> None:
    assert figure.verdict() == verdict


def test_late_figures_are_listed_with_their_reason() -> None:
    late = Figure("webhook_deliveries_per_s", "400/s", "3000/s", "0.133", "", ">= 0.5x", "moto bounds it.")
    on_time = Figure("gateway_laps_rps", "314req/s", "481req/s", "0.653", "", ">= 0.4x")
    doc = render([Outcome("bench_webhooks", 12.0, [late]), Outcome("bench_gateway", 9.0, [on_time])], partial=False)
    behind = doc.split("## Behind target")[1].split("## Runs")[0]
    assert (
        "`bench_webhooks` webhook_deliveries_per_s: ratio 0.133 (ours 400/s) against >= 0.5x. moto bounds it." in behind
    )
    assert "gateway_laps_rps" not in behind
    assert "| `bench_gateway` | gateway_laps_rps | 314req/s | 481req/s | 0.653 | >= 0.4x | met |" in doc


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="the CPU split reads Linux /proc")
def test_the_cpu_split_counts_clients_that_have_ended() -> None:
    """A benchmark's client processes end before the split is taken: their CPU must still count as ours."""
    before = cpu_seconds()
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    used = cpu_seconds()["us"] - before["us"]
    assert used >= 0.25
    # Other processes (a `make dev` running beside the tests) may show up too: only ours is checked.
    assert re.search(r"[:,] us \d+%", cpu_shares(before, 1.0))
