"""The emulator makes full GC passes only while idle; busy, it freezes what survives the young ones."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Iterator

import pytest

from infra.local import moto_patches
from tests.gc_helpers import Cycle, unfrozen


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    with unfrozen():
        yield


def test_busy_it_collects_the_young_garbage_then_freezes() -> None:
    young = Cycle()
    young_gone = weakref.ref(young)
    del young
    moto_patches.request_started()
    assert moto_patches.collect_or_freeze(idle_s=60) == "young"
    assert young_gone() is None
    assert gc.get_freeze_count() > 0


def test_busy_it_never_walks_what_it_froze() -> None:
    old = Cycle()
    old_gone = weakref.ref(old)
    gc.freeze()
    del old
    moto_patches.request_started()
    moto_patches.collect_or_freeze(idle_s=60)
    gc.collect()  # even a full pass skips the frozen
    assert old_gone() is not None


def test_idle_it_collects_everything_including_what_it_froze(monkeypatch: pytest.MonkeyPatch) -> None:
    old = Cycle()
    old_gone = weakref.ref(old)
    gc.freeze()
    del old
    monkeypatch.setattr(moto_patches, "_last_request", [time.monotonic() - 10])
    monkeypatch.setattr(moto_patches, "_requests", [5, 1])
    assert moto_patches.collect_or_freeze(idle_s=2) == "full"
    assert old_gone() is None
    assert gc.get_freeze_count() > 0  # what lives is frozen again


def test_idle_with_no_request_since_the_last_full_pass_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto_patches, "_last_request", [time.monotonic() - 10])
    monkeypatch.setattr(moto_patches, "_requests", [5, 1])
    assert moto_patches.collect_or_freeze(idle_s=2) == "full"
    assert moto_patches.collect_or_freeze(idle_s=2) == "none"  # an idle emulator is not walked every 5 s
    moto_patches.request_started()
    moto_patches._last_request[0] -= 10
    assert moto_patches.collect_or_freeze(idle_s=2) == "full"
