"""The V8 sandbox itself: escapes contained, limits enforced, built-ins frozen, the host bridge."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.errors import PluginFailed
from chalicelib.plugins import limits
from chalicelib.plugins.runtime import BundleInvalid, CompiledPlugin, HostFailed, HostRefused

pytestmark = pytest.mark.unit


def compiled(body: str, prelude: str = "") -> CompiledPlugin:
    return CompiledPlugin.compile(
        f"{prelude}\nvar plugin = {{ math: {body} }};", label="plugin t 1.0.0", entry_points=["math"], timeout_ms=1000
    )


def no_host(op: str, args: list[Any], remaining_s: float) -> Any:
    raise HostRefused(f"{op} is not granted")


def run(plugin: CompiledPlugin, payload: Any = None, *, timeout_ms: int = 1000, host: Any = no_host) -> Any:
    return plugin.invoke("math", payload, timeout_ms=timeout_ms, capabilities=["storage"], host=host).output


def fails(plugin: CompiledPlugin, payload: Any = None, *, timeout_ms: int = 1000, host: Any = no_host) -> PluginFailed:
    with pytest.raises(PluginFailed) as raised:
        run(plugin, payload, timeout_ms=timeout_ms, host=host)
    return raised.value


# ---- escapes

STANDARD_GLOBALS = {
    "Object",
    "Function",
    "Array",
    "Number",
    "parseFloat",
    "parseInt",
    "Infinity",
    "NaN",
    "undefined",
    "Boolean",
    "String",
    "Symbol",
    "Date",
    "Promise",
    "RegExp",
    "Error",
    "AggregateError",
    "EvalError",
    "RangeError",
    "ReferenceError",
    "SyntaxError",
    "TypeError",
    "URIError",
    "globalThis",
    "JSON",
    "Math",
    "Intl",
    "ArrayBuffer",
    "Uint8Array",
    "Int8Array",
    "Uint16Array",
    "Int16Array",
    "Uint32Array",
    "Int32Array",
    "BigUint64Array",
    "BigInt64Array",
    "Uint8ClampedArray",
    "Float32Array",
    "Float64Array",
    "Float16Array",
    "DataView",
    "Map",
    "BigInt",
    "Set",
    "Iterator",
    "WeakMap",
    "WeakSet",
    "Proxy",
    "Reflect",
    "WeakRef",
    "decodeURI",
    "decodeURIComponent",
    "encodeURI",
    "encodeURIComponent",
    "escape",
    "unescape",
    "eval",
    "isFinite",
    "isNaN",
    "console",
    "Temporal",
    "SuppressedError",
    "DisposableStack",
    "AsyncDisposableStack",
}
OURS = {"plugin", "host", "__race"}
NEUTERED = {"setTimeout", "clearTimeout", "__timer_manager"}  # left by mini-racer, set to undefined


def test_globals_are_plain_ecmascript_plus_host() -> None:
    plugin = compiled("() => Object.getOwnPropertyNames(globalThis)")
    names = set(run(plugin))
    assert names - STANDARD_GLOBALS - OURS - NEUTERED == set()
    for absent in (
        "process",
        "require",
        "module",
        "exports",
        "Buffer",
        "fetch",
        "XMLHttpRequest",
        "WebSocket",
        "WebAssembly",
        "Atomics",
        "SharedArrayBuffer",
        "FinalizationRegistry",
        "Deno",
        "Bun",
        "importScripts",
        "__dirname",
        "os",
    ):
        assert absent not in names
    types = run(compiled("() => [typeof setTimeout, typeof clearTimeout, typeof __timer_manager]"))
    assert types == ["undefined"] * 3


@pytest.mark.parametrize(
    "expression",
    [
        "typeof process",
        "typeof require",
        "typeof module",
        "typeof Buffer",
        "typeof fetch",
        "Function('return typeof process')()",
        "(function () { return this; })().process",
        "(() => {}).constructor('return typeof require')()",
        "(async () => {}).constructor.name === 'AsyncFunction' && typeof (0, eval)('this').process",
        "Reflect.ownKeys(globalThis).filter(k => typeof k === 'string' && /process|require|python|fs/i.test(k))[0]",
    ],
)
def test_host_objects_are_unreachable(expression: str) -> None:
    assert run(compiled(f"() => {expression}")) in ("undefined", None)


def test_dynamic_import_is_refused() -> None:
    source = "async () => { try { await import('fs'); return 'loaded'; } catch (e) { return e.message; } }"
    assert run(compiled(source)) == "Not supported"


def test_the_function_constructor_only_reaches_the_sandbox() -> None:
    source = """() => {
        const g = Function('return this')();
        return [g === globalThis, typeof g.host.fetch, Object.keys(g.host).sort().join(',')];
    }"""
    assert run(compiled(source)) == [True, "function", "capabilities,fetch,storage"]


def test_prototype_pollution_does_not_survive_into_the_next_call() -> None:
    source = """(input) => {
        if (input === 'pollute') {
            const attempts = [
                () => { Object.prototype.isAdmin = true; },
                () => { Array.prototype.map = () => 'hijacked'; },
                () => { JSON.stringify = () => '"hijacked"'; },
                () => { Object.defineProperty(Object.prototype, 'then', { get() { return 1; } }); },
                () => { globalThis.leak = 1; },
                () => { Math.max = () => 0; },
                () => { Object.setPrototypeOf(Array.prototype, null); },
                () => { plugin.math = () => 'replaced'; },
                () => { Uint8Array.prototype.constructor = Object; },
                () => { ({}).__proto__.polluted = 1; },
            ];
            return attempts.map((attempt) => { try { attempt(); return 'changed'; } catch (e) { return 'refused'; } });
        }
        return [({}).isAdmin, [1].map((x) => x + 1)[0], JSON.stringify([1]), typeof globalThis.leak,
                Math.max(1, 2), ({}).polluted, typeof [].at];
    }"""
    plugin = compiled(source, prelude="'use strict';")  # sloppy code fails the same writes silently
    assert run(plugin, "pollute") == ["refused"] * 10
    assert run(plugin, "check") == [None, 2, "[1]", "undefined", 2, None, "function"]


def test_ordinary_code_that_assigns_over_builtin_names_still_works() -> None:
    source = """() => {
        'use strict';
        function Stint(laps) { this.laps = laps; }
        Stint.prototype.toString = function () { return 'stint of ' + this.laps; };
        Stint.prototype.constructor = Stint;
        const e = new Error('x'); e.name = 'StintError'; e.message = 'too short';
        const o = {}; o.valueOf = () => 7;
        class Lap extends Uint8Array {}
        return [String(new Stint(12)), e.name + ': ' + e.message, o + 1, new Lap(4).length,
                new Lap(2) instanceof Uint8Array];
    }"""
    assert run(compiled(source)) == ["stint of 12", "StintError: too short", 8, 4, True]


def test_typed_arrays_behave_normally_under_the_budget() -> None:
    source = """() => {
        const a = new Uint8Array([1, 2, 3]);
        const f = Float64Array.from([1.5, 2.5]);
        const view = new DataView(new ArrayBuffer(8)); view.setInt16(0, 513);
        const copy = new Int32Array(new Int16Array([7, 8]));
        const fromLike = new Uint16Array({ length: 2, 0: 9, 1: 10 });
        return [Array.from(a.map((x) => x * 2)), Array.from(f), view.getUint8(1), Array.from(copy),
                Array.from(fromLike), a.buffer.slice(1).byteLength, Array.from(a.toReversed()),
                a instanceof Uint8Array, Object.prototype.toString.call(a), Uint8Array.name, Uint8Array.length,
                new ArrayBuffer(4, { maxByteLength: 16 }).resizable, Uint8Array.BYTES_PER_ELEMENT];
    }"""
    assert run(compiled(source)) == [
        [2, 4, 6],
        [1.5, 2.5],
        1,
        [7, 8],
        [9, 10],
        2,
        [3, 2, 1],
        True,
        "[object Uint8Array]",
        "Uint8Array",
        3,
        True,
        1,
    ]


# ---- limits


@pytest.mark.parametrize(
    "body",
    [
        "() => { while (true) {} }",
        "async () => { await null; while (true) {} }",
        "async () => { await host.storage.get('k'); for (;;) {} }",
        "() => { const spin = () => spin(); for (;;) { try { spin(); } catch (e) {} } }",
    ],
)
def test_runaway_code_times_out_and_the_context_is_retired(body: str) -> None:
    plugin = compiled(body)
    error = fails(plugin, timeout_ms=150, host=lambda op, args, remaining: "v")
    assert error.code == "plugin_timeout" and error.message == "plugin t 1.0.0 timed out after 150 ms"
    assert plugin.usable is False
    plugin.close()


def test_code_left_running_after_a_result_retires_the_context_not_the_next_call() -> None:
    plugin = compiled("(x) => { if (x) Promise.resolve().then(function spin() { for (;;) {} }); return 1; }")
    assert run(plugin, False, timeout_ms=150) == 1
    plugin.drain()
    assert plugin.usable  # nothing was left behind
    assert run(plugin, True, timeout_ms=150) == 1  # the answer is ready before the leftover chain runs
    plugin.drain()  # the worker drains after answering: the spin is cut off at the call's limit
    assert plugin.usable is False
    plugin.close()


@pytest.mark.parametrize(
    "body",
    [
        "() => { const keep = []; while (true) keep.push(new Array(100000).fill(1.5)); }",
        "() => { const keep = []; for (let i = 0; ; i++) keep.push(`lap ${i} `.repeat(200)); }",
        "() => { const keep = []; while (true) keep.push(new Float64Array(1 << 20)); }",
        "() => new Uint8Array(2 ** 31)",
        "() => new Uint8Array({ length: 2 ** 31 })",
        "() => { const a = []; a.length = 2 ** 30; return new Float64Array(a).length; }",
        "() => new ArrayBuffer(8, { maxByteLength: 2 ** 32 })",
        "() => new ArrayBuffer(8).transfer(2 ** 31)",
        "() => { const b = new Uint8Array(40 << 20); return b.toReversed().length + b.slice().length; }",
    ],
)
def test_memory_bombs_hit_the_limit(body: str) -> None:
    plugin = compiled(body)
    error = fails(plugin, timeout_ms=5000)  # generous: only the memory limit should stop these
    assert error.code == "plugin_memory_limit", error.message
    assert f"memory limit of {limits.MEMORY_LIMIT_BYTES // 1048576} MB" in error.message
    plugin.close()


def test_array_buffers_count_against_the_context_over_its_life() -> None:
    plugin = compiled("() => { globalThis.x = 1; return new Uint8Array(40 << 20).length; }")
    assert run(plugin) == 40 << 20
    assert run(plugin) == 40 << 20  # within the per-call budget every time...
    assert plugin.lifetime_buffer_bytes > limits.MEMORY_LIMIT_BYTES  # ...but the cache retires this context
    plugin.close()


def test_output_size_is_capped() -> None:
    error = fails(compiled("() => 'x'.repeat(1024 * 1024 + 1)"))
    assert error.code == "plugin_output_too_large"
    # Multi-byte characters count as bytes.
    assert fails(compiled("() => '\u00e9'.repeat(600 * 1024)")).code == "plugin_output_too_large"


def test_errors_carry_the_javascript_message_and_location() -> None:
    error = fails(compiled("(x) => x.stints.length"))
    assert error.code == "plugin_error"
    assert error.message.startswith("plugin t 1.0.0 threw TypeError: Cannot read properties of null")
    assert "(at plugin.js:" in error.message
    assert "a non-Error value was thrown: pit" in fails(compiled("() => { throw 'pit'; }")).message
    assert "not JSON-serialisable" in fails(compiled("() => { const a = {}; a.a = a; return a; }")).message
    assert fails(compiled("() => 10n")).code == "plugin_error"
    assert "never settled" in fails(compiled("() => new Promise(() => {})")).message
    assert run(compiled("() => undefined")) is None


def test_a_failed_call_does_not_break_the_next_one() -> None:
    plugin = compiled("(x) => { if (x === 'boom') throw new Error('boom'); return x * 2; }")
    assert fails(plugin, "boom").code == "plugin_error"
    assert run(plugin, 21) == 42 and plugin.usable


# ---- loading


@pytest.mark.parametrize(
    ("bundle", "words", "timeout_ms"),
    [
        ("var plugin = {", "SyntaxError", 100),
        ("var plugin = 1", "global object named plugin", 100),
        ("var plugin = {math: 1}", "plugin.math is not a function", 100),
        ("throw new Error('bad config')", "bad config", 100),
        ("while (true) {}", "did not finish within 100 ms", 100),
        ("const keep = []; while (true) keep.push(new Array(1e5).fill(0));", "memory limit", 5000),
    ],
)
def test_bundles_that_do_not_load_are_refused(bundle: str, words: str, timeout_ms: int) -> None:
    with pytest.raises(BundleInvalid) as raised:
        CompiledPlugin.compile(bundle, label="t", entry_points=["math"], timeout_ms=timeout_ms)
    assert words in str(raised.value)


def test_entry_points_and_bundle_globals() -> None:
    source = "var plugin = (() => { const helpers = { twice: (x) => 2 * x }; return { compute: helpers.twice }; })();"
    plugin = CompiledPlugin.compile(source, label="t", entry_points=["compute"])
    assert plugin.invoke("compute", 4, timeout_ms=500, capabilities=[], host=no_host).output == 8


# ---- the host bridge


def test_host_calls_resolve_reject_and_count() -> None:
    calls: list[tuple[str, list[Any]]] = []

    def host(op: str, args: list[Any], remaining_s: float) -> Any:
        calls.append((op, args))
        assert 0 < remaining_s <= 1
        if op == "storage.delete":
            raise HostFailed("DynamoDB said no")
        if op == "fetch":
            return {
                "status": 201,
                "headers": {"content-type": "application/json"},
                "url": args[0],
                "body": '{"ok": true}',
            }
        return {"key": args[0]}

    source = """async () => {
        const [a, b] = await Promise.all([host.storage.get('a'), host.storage.get('b')]);
        const response = await host.fetch('https://api.example.com/x', { method: 'POST', body: '{}' });
        let failure;
        try { await host.storage.delete('c'); } catch (e) { failure = e.name + ': ' + e.message; }
        return { a, b, status: response.status, ok: response.ok, json: await response.json(), failure,
                 capabilities: host.capabilities() };
    }"""
    plugin = compiled(source)
    result = plugin.invoke("math", None, timeout_ms=1000, capabilities=["storage"], host=host)
    assert result.output == {
        "a": {"key": "a"},
        "b": {"key": "b"},
        "status": 201,
        "ok": True,
        "json": {"ok": True},
        "failure": "HostError: DynamoDB said no",
        "capabilities": ["storage"],
    }
    assert result.host_calls == 4
    assert calls[2] == ("fetch", ["https://api.example.com/x", {"method": "POST", "body": "{}"}])


def test_a_refused_capability_names_itself() -> None:
    error = fails(compiled("() => host.storage.put('k', 1)"))
    assert error.code == "plugin_capability_refused"
    assert error.message == "plugin t 1.0.0 threw CapabilityError: storage.put is not granted"
    handled = "async () => { try { await host.fetch('https://x.example'); } catch (e) { return e.name; } }"
    assert run(compiled(handled)) == "CapabilityError"


def test_host_calls_outside_an_invocation_and_unawaited_ones_go_nowhere() -> None:
    served: list[str] = []

    def host(op: str, args: list[Any], remaining_s: float) -> Any:
        served.append(op)
        return None

    top_level = "var early; host.storage.get('x').catch((e) => { early = e.message; });"
    plugin = compiled("(x) => { if (x) host.storage.put('k', 1); return early; }", prelude=top_level)
    assert run(plugin, True, host=host) == "host.storage.get is only available while the plugin is being invoked"
    assert served == []  # the put was not awaited before the result: dropped
    assert "JSON-serialisable" in fails(compiled("() => host.storage.put('k', 10n)")).message


# ---- closing contexts


def test_a_context_is_closed_on_purpose_never_by_the_garbage_collector() -> None:
    """A context dropped without close() stays registered (its __del__ would join threads wherever the
    collector happens to run) until it is handed to a closer; after that it is freed."""
    import gc
    import weakref

    from chalicelib.plugins import runtime

    plugin = CompiledPlugin.compile("var plugin = { math: (x) => x };", label="t", entry_points=["math"])
    racer = plugin._racer
    assert racer is not None
    dropped = weakref.ref(racer)
    del plugin, racer
    gc.collect()
    held = dropped()
    assert held is not None and held in runtime._live_racers  # not finalized by the collector
    runtime._close_later(held)
    assert held not in runtime._live_racers
    del held
    for closer in list(runtime._closers):
        closer.join(timeout=10)
    gc.collect()
    assert dropped() is None  # closed, then freed
