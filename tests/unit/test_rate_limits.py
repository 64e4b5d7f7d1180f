"""Sliding-window attempt limits: the weighing, without DynamoDB."""

from __future__ import annotations

import pytest

from chalicelib.domain.rate_limits import weighed

pytestmark = pytest.mark.unit


def test_under_the_limit_passes() -> None:
    assert weighed(current=10, previous=0, elapsed=0.5, limit=10, window_s=300) == (False, 0)
    assert weighed(current=5, previous=10, elapsed=0.5, limit=10, window_s=300) == (False, 0)


def test_a_burst_straddling_the_window_boundary_is_still_limited() -> None:
    # 8 tries just before the boundary, 3 just after: fixed windows would allow 10 more.
    over, retry_after_s = weighed(current=3, previous=8, elapsed=0.01, limit=10, window_s=300)
    assert over
    # Allowed again once enough of the 8 have slid out: 3 + 8 * (1 - f) <= 10 at f = 1/8.
    assert retry_after_s == 35  # ceil((0.125 - 0.01) * 300)


def test_over_the_limit_within_one_window_waits_into_the_next() -> None:
    over, retry_after_s = weighed(current=11, previous=0, elapsed=0.5, limit=10, window_s=300)
    assert over
    assert retry_after_s == 178  # the rest of this window (150 s) and 1/11 of the next (27.3 s)


def test_retry_after_is_at_least_a_second() -> None:
    assert weighed(current=10, previous=1, elapsed=0.999, limit=10, window_s=300) == (True, 1)
    assert weighed(current=10, previous=1, elapsed=0.0, limit=10, window_s=300) == (True, 300)


def test_retry_after_is_never_more_than_the_window() -> None:
    # 11 tries at the very start of a window: the weighing would say 327 s; the promise is 5 minutes.
    assert weighed(current=11, previous=0, elapsed=0.0, limit=10, window_s=300) == (True, 300)
