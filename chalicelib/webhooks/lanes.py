"""Fair sending within one worker batch: no receiver takes more than its share of the batch's time.

A batch's deliveries are split into lanes: at most `per_destination` lanes for one receiver
(scheme, host, port), each lane sent one after another, the lanes of all receivers side by side.
Every attempt must also end by the batch's deadline (one attempt's timeout after the batch began),
so a slow or dripping receiver delays only its own deliveries: those it leaves no time for are not
sent now; the worker releases them without recording an attempt (an attempt never made does not use
up a retry) and queues them again. The batch's first delivery is always attempted, so every batch
makes progress. Nothing is kept between invocations.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

MIN_ATTEMPT_S = 0.5  # less time than this left in the batch: the attempt is not started


def destination(url: str) -> str:
    """The receiver a URL points at, as the caps count it."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{parts.port or ''}"
    except ValueError:
        return url  # refused by the sender anyway


def lanes(urls: Sequence[str], per_destination: int) -> list[list[int]]:
    """Indexes of `urls` in lanes: each receiver's deliveries dealt round-robin over at most `per_destination` lanes."""
    by_destination: dict[str, list[list[int]]] = {}
    for index, url in enumerate(urls):
        own = by_destination.setdefault(destination(url), [])
        count = sum(len(lane) for lane in own)
        if len(own) < per_destination:
            own.append([index])
        else:
            own[count % per_destination].append(index)
    # Every receiver's first lane before anyone's second: a queue of lanes never starts with one receiver's.
    ordered: list[list[int]] = []
    for depth in range(per_destination):
        ordered.extend(own[depth] for own in by_destination.values() if len(own) > depth)
    return ordered
