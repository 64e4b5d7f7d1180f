"""What a container loads is frozen out of full GC passes; what requests make later is collected."""

from __future__ import annotations

import gc
import sys
import types
import weakref
from collections.abc import Iterator

import pytest
from chalice import Chalice
from chalice.test import Client

from chalicelib import heap
from tests.gc_helpers import Cycle, unfrozen


@pytest.fixture(autouse=True)
def _unfrozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(heap, "_modules_frozen", 0)
    with unfrozen():
        yield


def _load_a_module(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setitem(sys.modules, name, types.ModuleType(name))


def test_it_freezes_only_after_modules_were_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    assert heap.freeze_loaded() is True
    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert heap.freeze_loaded() is False  # nothing imported since
    _load_a_module(monkeypatch, "race_heap_probe")
    assert heap.freeze_loaded() is True


def test_frozen_objects_are_not_walked_by_a_full_pass() -> None:
    cycle = Cycle()
    gone = weakref.ref(cycle)
    heap.freeze_loaded()
    del cycle
    gc.collect()
    assert gone() is not None  # frozen: the full pass did not look at it
    gc.unfreeze()
    gc.collect()
    assert gone() is None


def test_collect_first_frees_the_garbage_already_made() -> None:
    cycle = Cycle()
    gone = weakref.ref(cycle)
    del cycle
    heap.freeze_loaded(collect_first=True)
    assert gone() is None


def test_the_middleware_freezes_what_an_invocation_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    app = Chalice(app_name="heap-probe")
    heap.register(app)

    @app.lambda_function()
    def loads(event: dict[str, str], context: object) -> dict[str, str]:
        _load_a_module(monkeypatch, event["module"])
        return {}

    freezes: list[int] = []
    freeze = gc.freeze
    monkeypatch.setattr(gc, "freeze", lambda: (freezes.append(1), freeze())[1])
    with Client(app) as client:
        heap.freeze_loaded()
        freezes.clear()
        client.lambda_.invoke("loads", {"module": "race_heap_probe_2"})
        assert len(freezes) == 1 and gc.get_freeze_count() > 0
        client.lambda_.invoke("loads", {"module": "race_heap_probe_2"})  # loads nothing new
        assert len(freezes) == 1


def test_the_app_registers_it_for_every_kind_of_event() -> None:
    from app import app

    assert heap.after_loading in app._get_middleware_handlers("all")
