"""Attempt limits (sign-in, sign-up, password changes): sliding windows over DynamoDB counters.

A sliding-window counter: the hits of the current fixed window plus those of the window before,
weighted by how much of it still lies within the last `window_s` seconds. Unlike plain fixed
windows, a burst cannot get twice the limit by straddling a window boundary.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping

from chalicelib.errors import DependencyDown, RateLimited
from chalicelib.observability import logger
from chalicelib.store import kv


def weighed(current: int, previous: int, elapsed: float, limit: int, window_s: int) -> tuple[bool, int]:
    """(over `limit`, seconds until it would no longer be, with no more hits) for a key with `current`
    hits in this window, `previous` in the one before and `elapsed` (0 to 1) of this window gone."""
    if current + previous * (1 - elapsed) <= limit:
        return False, 0
    # Within the limit on its own, this window waits for the previous one's hits to slide out far
    # enough; over it, its own hits have to slide out during the next window.
    wait = (1 - (limit - current) / previous) - elapsed if current <= limit else (1 - elapsed) + (1 - limit / current)
    # At most one window: by then the burst is a window old (the weighing can lag it by a little).
    return True, min(window_s, max(1, math.ceil(wait * window_s)))


def check(action: str, limits: Iterable[tuple[str, int, int]], keys: Mapping[str, str]) -> None:
    """Count one `action` attempt under each (key kind, limit, window seconds); RateLimited when over.

    Fails open when DynamoDB is down: availability over strictness during a race, and argon2 still
    slows guessing (docs/decisions.md)."""
    for kind, limit, window_s in limits:
        digest = hashlib.sha256(keys[kind].encode()).hexdigest()[:32]
        try:
            current, previous, elapsed = kv.count_hit(f"{action}:{kind}:{digest}", window_s)
        except DependencyDown:
            logger().warning(f"{action} rate limiter unavailable; allowing attempt", extra={"limit": kind})
            return
        over, retry_after_s = weighed(current, previous, elapsed, limit, window_s)
        if over:
            raise RateLimited(f"too many {action} attempts; try again in {retry_after_s} s", retry_after_s)
