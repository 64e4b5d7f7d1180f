"""Keeping the garbage collector's full passes off what a container loads once and keeps.

A full (generation 2) collection walks every object the process tracks, holding the interpreter lock
throughout. A warm container tracks ~160,000-200,000 objects that live as long as it does (modules,
botocore's service models, clients, the pool), and under bench_load each full pass took 80-140 ms in
the API and room publisher processes: every request and push in flight stopped for it (the tails of
POST /laps p99 and of the push lag). Those objects are made while a container loads code, so after
an invocation that imported modules, what is alive is frozen (`gc.freeze`: never walked again;
reference counting still frees what is released); what requests make later is collected as before.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()
_modules_frozen = 0  # len(sys.modules) at the last freeze


def freeze_loaded(collect_first: bool = False) -> bool:
    """Freeze every tracked object if modules were imported since the last freeze; True if it froze.
    `collect_first` frees the garbage already made (a process's start-up, before it serves: the
    pass costs ~0.1 s once); inside an invocation it is not worth the wait."""
    global _modules_frozen
    with _lock:
        loaded = len(sys.modules)
        if loaded == _modules_frozen:
            return False
        if collect_first:
            gc.collect()
        gc.freeze()
        _modules_frozen = loaded
        return True


def after_loading(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware for every kind of event: the invocation runs, then what it loaded is frozen
    (a container's first requests import the routes' modules and make its clients)."""
    try:
        return get_response(event)
    finally:
        freeze_loaded()


def register(app: Any) -> None:
    app.register_middleware(after_loading, "all")
