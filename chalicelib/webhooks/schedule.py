"""The retry policy of webhook deliveries: backoff with jitter, Retry-After, and what an attempt's outcome means.

Production schedule (docs/webhooks.md publishes it): the first attempt right after the write, then
at most 3 retries, each after the previous attempt failed: ~30 s, ~5 min, ~30 min (each delay
multiplied by a uniform random factor in [0.8, 1.2]); after the third failed retry the delivery is
final (`failed`) until replayed. Tests shorten the delays through WEBHOOK_RETRY_DELAYS_S.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import os
import random
from dataclasses import dataclass

from chalicelib.config import ConfigError

MAX_RETRIES = 3
SUCCEEDED, RETRYING, FAILED = "succeeded", "retrying", "failed"


@dataclass(frozen=True)
class RetryPolicy:
    delays_s: tuple[float, float, float] = (30.0, 300.0, 1800.0)  # before retry 1, 2, 3
    jitter: float = 0.2  # each delay is multiplied by uniform(1 - jitter, 1 + jitter)
    timeout_s: float = 10.0  # connect + answer, per attempt
    lock_s: float = 30.0  # how long a claimed delivery belongs to its worker
    sweep_grace_s: float = 60.0  # how long past due before the sweep assumes a queue message was lost
    max_retry_after_s: float = 6 * 3600.0  # a receiver's Retry-After is honoured up to this

    @property
    def max_retries(self) -> int:
        return len(self.delays_s)


def _float(env: dict[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from exc
    if not value >= minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


def load(env: dict[str, str] | None = None) -> RetryPolicy:
    """The policy from WEBHOOK_* variables (all optional; tests use tiny delays)."""
    env = dict(os.environ if env is None else env)
    default = RetryPolicy()
    delays = default.delays_s
    raw = env.get("WEBHOOK_RETRY_DELAYS_S", "").strip()
    if raw:
        try:
            parsed = tuple(float(part) for part in raw.split(","))
        except ValueError as exc:
            raise ConfigError(f"WEBHOOK_RETRY_DELAYS_S must be {MAX_RETRIES} comma-separated seconds") from exc
        if len(parsed) != MAX_RETRIES or any(not d >= 0 for d in parsed):
            raise ConfigError(f"WEBHOOK_RETRY_DELAYS_S must be {MAX_RETRIES} comma-separated seconds >= 0")
        delays = (parsed[0], parsed[1], parsed[2])
    jitter = _float(env, "WEBHOOK_RETRY_JITTER", default.jitter)
    if jitter >= 1:
        raise ConfigError("WEBHOOK_RETRY_JITTER must be below 1")
    return RetryPolicy(
        delays_s=delays,
        jitter=jitter,
        timeout_s=_float(env, "WEBHOOK_TIMEOUT_S", default.timeout_s, minimum=0.1),
        lock_s=_float(env, "WEBHOOK_LOCK_S", default.lock_s, minimum=0.1),
        sweep_grace_s=_float(env, "WEBHOOK_SWEEP_GRACE_S", default.sweep_grace_s),
        max_retry_after_s=_float(env, "WEBHOOK_MAX_RETRY_AFTER_S", default.max_retry_after_s),
    )


@functools.cache
def policy() -> RetryPolicy:
    """This container's policy (read once, like the settings); `policy.cache_clear()` re-reads it."""
    return load()


def retry_delay_s(policy: RetryPolicy, retry: int, rng: random.Random | None = None) -> float:
    """The wait before retry number `retry` (1-based), with jitter."""
    base = policy.delays_s[retry - 1]
    factor = (rng or random).uniform(1 - policy.jitter, 1 + policy.jitter)
    return base * factor


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


@dataclass(frozen=True)
class Decision:
    status: str  # succeeded | retrying | failed
    delay_s: float | None = None  # before the next attempt, when retrying
    disable_reason: str | None = None  # set: the subscription is disabled (410 Gone)


def decide(
    policy: RetryPolicy,
    cycle_attempts: int,
    status_code: int | None,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """What follows attempt number `cycle_attempts` (1 = the first of this cycle) given its HTTP status."""
    if status_code is not None and 200 <= status_code < 300:
        return Decision(SUCCEEDED)
    if status_code == 410:
        return Decision(FAILED, disable_reason="the receiver answered 410 Gone")
    retry = cycle_attempts  # attempt 1 failed -> retry 1 next
    if retry > policy.max_retries:
        return Decision(FAILED)
    delay_s = retry_delay_s(policy, retry, rng)
    if status_code in (429, 503) and retry_after_s is not None:
        delay_s = max(delay_s, min(retry_after_s, policy.max_retry_after_s))
    return Decision(RETRYING, delay_s=delay_s)
