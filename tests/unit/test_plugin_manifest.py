"""plugin.json: validation that names the field, semver precedence, the latest version, capabilities."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.errors import Invalid
from chalicelib.plugins import limits
from chalicelib.plugins.manifest import latest, parse_capability, parse_manifest, version_key

pytestmark = pytest.mark.unit

VALID = {"id": "fuel-per-lap", "version": "1.2.0", "name": "Fuel per lap", "interfaces": ["math"]}


def test_a_minimal_manifest_gets_defaults() -> None:
    spec = parse_manifest(VALID)
    assert (spec.id, spec.version, spec.interfaces, spec.capabilities) == ("fuel-per-lap", "1.2.0", ("math",), ())
    assert spec.timeout_ms == limits.DEFAULT_TIMEOUT_MS and spec.entry_point("math") == "math"
    assert spec.to_wire() == {**VALID, "capabilities": [], "timeoutMs": 1000}


def test_everything_optional_round_trips() -> None:
    full = {
        **VALID,
        "interfaces": ["math", "kpiProcessor"],
        "capabilities": ["storage", "fetch:API.Example.com"],
        "timeoutMs": 5000,
        "entryPoints": {"kpiProcessor": "stintPace"},
        "description": "d",
        "main": "dist/p.js",
    }
    spec = parse_manifest(full)
    assert spec.capabilities == ("storage", "fetch:api.example.com")
    assert spec.entry_point("kpiProcessor") == "stintPace" and spec.entry_point("math") == "math"
    assert spec.to_wire()["entryPoints"] == {"kpiProcessor": "stintPace"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "-fuel"}, "manifest.id"),
        ({"id": "fuel_per_lap"}, "manifest.id"),
        ({"id": "x" * 65}, "manifest.id"),
        ({"id": 7}, "manifest.id"),
        ({"version": "v1.0.0"}, "manifest.version"),
        ({"version": "1.0.0-"}, "manifest.version"),
        ({"version": "01.0.0"}, "manifest.version"),
        ({"name": "x" * 101}, "manifest.name"),
        ({"interfaces": "math"}, "manifest.interfaces"),
        ({"interfaces": ["math", "math"]}, "manifest.interfaces[1]"),
        ({"interfaces": ["dashboard"]}, "manifest.interfaces[0]"),
        ({"capabilities": ["storage", "storage"]}, "manifest.capabilities[1]"),
        ({"capabilities": ["fetch:exa mple.com"]}, "manifest.capabilities[0]"),
        ({"capabilities": ["fetch:example.com:99999"]}, "manifest.capabilities[0]"),
        ({"capabilities": ["fetch:http://example.com"]}, "manifest.capabilities[0]"),
        ({"capabilities": ["network"]}, "manifest.capabilities[0]"),
        ({"timeoutMs": 0}, "manifest.timeoutMs"),
        ({"timeoutMs": 1.5}, "manifest.timeoutMs"),
        ({"entryPoints": {"math": "do-math"}}, "manifest.entryPoints.math"),
        ({"entryPoints": []}, "manifest.entryPoints"),
        ({"extra": 1}, "manifest.extra"),
    ],
)
def test_errors_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as raised:
        parse_manifest({**VALID, **change})
    assert raised.value.field == field, raised.value.message


@pytest.mark.parametrize("missing", ["id", "version", "name", "interfaces"])
def test_required_fields(missing: str) -> None:
    manifest = {k: v for k, v in VALID.items() if k != missing}
    with pytest.raises(Invalid) as raised:
        parse_manifest(manifest)
    assert raised.value.field == f"manifest.{missing}" and "required" in raised.value.message


def test_semver_precedence_and_latest() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.10.0",
        "2.0.0",
    ]
    assert sorted(reversed(ordered), key=version_key) == ordered
    assert version_key("1.0.0+build.5") == version_key("1.0.0")
    assert latest(["1.0.0", "1.10.0", "1.9.0", "2.0.0-rc.1"]) == "1.10.0"
    assert latest(["2.0.0-rc.1", "2.0.0-beta"]) == "2.0.0-rc.1"
    assert latest([]) is None


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("storage", "storage"),
        ("fetch:Example.COM", "fetch:example.com"),
        ("fetch:api.example.com:8443", "fetch:api.example.com:8443"),
        ("fetch:127.0.0.1:8080", "fetch:127.0.0.1:8080"),
        ("fetch:[::1]:8080", "fetch:[::1]:8080"),
    ],
)
def test_capabilities_are_normalised(raw: str, normal: str) -> None:
    assert parse_capability(raw, "capabilities[0]") == normal
