"""What the garbage-collector tests share: an object only a full pass can free, and a clean freeze state."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


class Cycle:
    """An object that refers to itself: reference counting never frees it, only the collector."""

    def __init__(self) -> None:
        self.me = self


@contextmanager
def unfrozen() -> Iterator[None]:
    """Nothing frozen before the block or after it (a test's gc.freeze must not outlive the test)."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
