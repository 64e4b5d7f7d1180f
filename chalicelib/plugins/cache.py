"""`pluginRuntime.compileCache`: compiled plugin contexts kept in memory, bounded (LRU).

One cache lives in each account's sandbox worker process (sandbox.py, worker.py).

Keyed by (account, plugin id, version, bundle SHA-256): a new version is a new key and compiles
on its next invocation, and a context is never shared across accounts, even for identical
bundles. A context is leased to one invocation at a time; a context that timed out, hit the
memory limit or used up its array-buffer budget is dropped. There is no clear operation on
purpose: a restart (a new Lambda container, or the local stack) drops the cache with the workers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from chalicelib.plugins import limits
from chalicelib.plugins.runtime import CompiledPlugin


@dataclass(frozen=True)
class CacheKey:
    account_id: str
    plugin_id: str
    version: str
    bundle_sha256: str


@dataclass
class _Entry:
    plugin: CompiledPlugin
    busy: bool = False


@dataclass(frozen=True)
class CacheStats:
    entries: int
    size_bytes: int
    hits: int
    misses: int
    evictions: int


class CompileCache:
    def __init__(self, max_entries: int = limits.CACHE_MAX_ENTRIES, max_bytes: int = limits.CACHE_MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = self._misses = self._evictions = 0

    @contextmanager
    def lease(self, key: CacheKey, compile: Callable[[], CompiledPlugin]) -> Iterator[tuple[CompiledPlugin, bool]]:
        """Yield (the compiled plugin for `key`, whether it was compiled for this call).

        A cached context busy with another invocation is not waited for: this call gets a private
        context that is discarded afterwards.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not entry.busy and entry.plugin.usable:
                entry.busy = True
                self._entries.move_to_end(key)
                self._hits += 1
            else:
                entry = None
                self._misses += 1
        if entry is not None:
            try:
                yield entry.plugin, False
            finally:
                self._release(key, entry)
            return

        plugin = compile()
        entry = _Entry(plugin, busy=True)
        with self._lock:
            cached = key not in self._entries
            if cached:
                self._entries[key] = entry
        try:
            yield plugin, True
        finally:
            if cached:
                self._release(key, entry)
            else:
                plugin.close()

    def _release(self, key: CacheKey, entry: _Entry) -> None:
        to_close: list[CompiledPlugin] = []
        with self._lock:
            entry.busy = False
            plugin = entry.plugin
            if not plugin.usable or plugin.lifetime_buffer_bytes > limits.MEMORY_LIMIT_BYTES:
                if self._entries.get(key) is entry:
                    del self._entries[key]
                    self._evictions += 1
                to_close.append(plugin)
            to_close.extend(self._shrink())
        for stale in to_close:
            stale.close()

    def _shrink(self) -> list[CompiledPlugin]:
        """Evict least recently used idle entries until both bounds hold (caller holds the lock)."""
        evicted: list[CompiledPlugin] = []
        size = sum(e.plugin.size_bytes for e in self._entries.values())
        for key in list(self._entries):
            if len(self._entries) <= self.max_entries and size <= self.max_bytes:
                break
            entry = self._entries[key]
            if entry.busy:
                continue
            del self._entries[key]
            size -= entry.plugin.size_bytes
            self._evictions += 1
            evicted.append(entry.plugin)
        return evicted

    def discard_plugin(self, account_id: str, plugin_id: str) -> None:
        """Forget every idle context of one plugin of one account (after it is deleted)."""
        with self._lock:
            doomed = [
                k
                for k, e in self._entries.items()
                if k.account_id == account_id and k.plugin_id == plugin_id and not e.busy
            ]
            plugins = [self._entries.pop(k).plugin for k in doomed]
        for plugin in plugins:
            plugin.close()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                len(self._entries),
                sum(e.plugin.size_bytes for e in self._entries.values()),
                self._hits,
                self._misses,
                self._evictions,
            )
