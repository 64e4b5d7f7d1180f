"""The compile cache: hits and misses by (account, id, version, hash), LRU bounds, retiring contexts."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.plugins import limits
from chalicelib.plugins.cache import CacheKey, CompileCache

pytestmark = pytest.mark.unit


class FakePlugin:
    """Stands in for a CompiledPlugin: the cache only reads these attributes and calls close()."""

    def __init__(self, name: str, size_bytes: int = 100) -> None:
        self.name = name
        self.size_bytes = size_bytes
        self.usable = True
        self.lifetime_buffer_bytes = 0
        self.closed = False

    def close(self) -> None:
        self.closed = True


def key(account: str = "a", plugin: str = "p", version: str = "1.0.0", sha: str = "s") -> CacheKey:
    return CacheKey(account, plugin, version, sha)


def lease(cache: CompileCache, k: CacheKey, plugin: FakePlugin | None = None) -> tuple[Any, bool]:
    with cache.lease(k, lambda: plugin or FakePlugin(k.version)) as (leased, compiled):  # type: ignore[arg-type,return-value]
        return leased, compiled


def test_second_lease_hits_and_a_new_version_or_hash_or_account_misses() -> None:
    cache = CompileCache()
    first, compiled = lease(cache, key())
    assert compiled is True
    assert lease(cache, key()) == (first, False)
    for other in (key(version="1.1.0"), key(sha="t"), key(account="b"), key(plugin="q")):
        assert lease(cache, other)[1] is True
    stats = cache.stats()
    assert (stats.entries, stats.hits, stats.misses) == (5, 1, 5)


def test_lru_by_count_and_by_bytes() -> None:
    cache = CompileCache(max_entries=2, max_bytes=10_000)
    a, _ = lease(cache, key(version="1"))
    b, _ = lease(cache, key(version="2"))
    lease(cache, key(version="1"))  # a is now the most recent
    c, _ = lease(cache, key(version="3"))
    assert b.closed and not a.closed and not c.closed
    assert key(version="2") not in cache and key(version="1") in cache

    big = FakePlugin("big", size_bytes=9_950)
    lease(cache, key(version="4"), big)
    assert key(version="4") in cache and cache.stats().size_bytes <= 10_000
    assert a.closed and c.closed


def test_a_busy_context_is_not_shared_and_a_private_one_is_discarded() -> None:
    cache = CompileCache()
    private = FakePlugin("private")
    with cache.lease(key(), lambda: FakePlugin("cached")) as (held, compiled):  # type: ignore[arg-type,return-value]
        assert compiled is True
        with cache.lease(key(), lambda: private) as (other, other_compiled):  # type: ignore[arg-type,return-value]
            assert other is private and other_compiled is True
        assert private.closed is True
    assert lease(cache, key()) == (held, False)


def test_unusable_or_memory_hungry_contexts_are_retired() -> None:
    cache = CompileCache()
    with cache.lease(key(), lambda: FakePlugin("x")) as (plugin, _):  # type: ignore[arg-type,return-value]
        plugin.usable = False  # timed out or hit the memory limit
    assert plugin.closed and key() not in cache
    with cache.lease(key(), lambda: FakePlugin("y")) as (plugin, _):  # type: ignore[arg-type,return-value]
        plugin.lifetime_buffer_bytes = limits.MEMORY_LIMIT_BYTES + 1
    assert plugin.closed and key() not in cache
    assert lease(cache, key())[1] is True


def test_a_failed_compile_caches_nothing_and_discard_drops_one_plugin() -> None:
    cache = CompileCache()

    def broken() -> Any:
        raise RuntimeError("does not compile")

    with pytest.raises(RuntimeError), cache.lease(key(), broken):
        pass
    assert key() not in cache
    keep, _ = lease(cache, key(account="b"))
    gone, _ = lease(cache, key(account="a"))
    cache.discard_plugin("a", "p")
    assert gone.closed and not keep.closed and key(account="b") in cache
