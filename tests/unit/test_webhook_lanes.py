"""Lanes of a batch: one receiver gets at most its cap of lanes, and every receiver's first lane comes first."""

from __future__ import annotations

import pytest

from chalicelib.webhooks.lanes import destination, lanes

pytestmark = pytest.mark.unit

SLOW = "https://slow.example/hook"
FAST = "https://fast.example/a"


def test_one_receiver_is_capped_and_others_lead() -> None:
    urls = [SLOW] * 7 + [FAST, "https://FAST.example/b?x=1"]
    dealt = lanes(urls, 3)
    slow_lanes = [lane for lane in dealt if urls[lane[0]] == SLOW]
    assert len(slow_lanes) == 3 and sorted(i for lane in slow_lanes for i in lane) == list(range(7))
    assert dealt == [[0, 3, 6], [7], [1, 4], [8], [2, 5]]  # every first lane before any second
    assert sorted(i for lane in dealt for i in lane) == list(range(9))


def test_destinations_differ_by_scheme_host_and_port() -> None:
    assert destination("https://a.example/x") == destination("https://A.example/y?z")
    assert destination("https://a.example:8443/") != destination("https://a.example/")
    assert destination("http://a.example/") != destination("https://a.example/")
