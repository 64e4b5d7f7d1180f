"""The container's caches (settings, pools, clients, queue URLs) and the one way to forget them all.

A Lambda container reads its environment once; tests, benchmarks and the local stack change it
(another database, a restarted emulator) and call `forget()` so the next request reads it afresh.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


def forget() -> None:
    """Close the PostgreSQL pool and drop every cached setting, client, queue URL and remembered room."""
    from chalicelib.config import settings
    from chalicelib.realtime import broadcast, fan_out_loop, poster, push, room_queue, roster
    from chalicelib.store import aws, connections, postgres, sqs_send
    from chalicelib.timing import queue as timing_queue
    from chalicelib.webhooks import queue as webhook_queue
    from chalicelib.webhooks import schedule, sealing

    postgres.close_pool()
    settings.cache_clear()
    aws._new_client.cache_clear()
    sqs_send.forget()
    push._new_client.cache_clear()
    fan_out_loop.forget()
    poster.forget()
    connections._register_fingerprint.cache_clear()
    room_queue._queue_url.cache_clear()
    roster.forget()
    broadcast.forget_last_rounds()
    timing_queue._queue_url.cache_clear()
    webhook_queue._queue_url.cache_clear()
    schedule.policy.cache_clear()
    sealing.box.cache_clear()
    sealing.checked_box.cache_clear()


@contextmanager
def cold_start(values: Mapping[str, str]) -> Iterator[None]:
    """Run the block as a container cold-started with these environment variables changed (caches
    forgotten on the way in and out); the previous values come back after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    forget()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        forget()
