"""The plugin manifest (`plugin.json`): parsed and validated with errors that name the field."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.validation import Body
from chalicelib.errors import Invalid
from chalicelib.plugins import limits

# The original declares six interfaces; two are wired to routes (math, kpi).
INTERFACES = ("math", "kpiProcessor")
ROUTE_INTERFACES = {"math": "math", "kpi": "kpiProcessor"}

PLUGIN_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
JS_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]{0,63}$")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
MANIFEST_FIELDS = (
    "id",
    "version",
    "name",
    "description",
    "interfaces",
    "capabilities",
    "timeoutMs",
    "entryPoints",
    "main",
)


@dataclass(frozen=True)
class Manifest:
    id: str
    version: str
    name: str
    interfaces: tuple[str, ...]
    capabilities: tuple[str, ...] = ()
    timeout_ms: int = limits.DEFAULT_TIMEOUT_MS
    entry_points: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    main: str | None = None

    def entry_point(self, interface: str) -> str:
        """The function of the global `plugin` object that implements `interface`."""
        return self.entry_points.get(interface, interface)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "id": self.id,
            "version": self.version,
            "name": self.name,
            "interfaces": list(self.interfaces),
            "capabilities": list(self.capabilities),
            "timeoutMs": self.timeout_ms,
        }
        if self.entry_points:
            wire["entryPoints"] = dict(self.entry_points)
        if self.description is not None:
            wire["description"] = self.description
        if self.main is not None:
            wire["main"] = self.main
        return wire


def parse_plugin_id(value: Any, field: str = "id") -> str:
    if not isinstance(value, str) or not PLUGIN_ID.match(value):
        raise Invalid(
            f"{field} must be 1 to 64 characters of a-z, 0-9 and '-', not starting or ending "
            "with '-' (e.g. fuel-per-lap)",
            field=field,
        )
    return value


def parse_version(value: Any, field: str = "version") -> str:
    if not isinstance(value, str) or len(value) > 64 or not SEMVER.match(value):
        raise Invalid(f"{field} must be a semantic version such as 1.2.0 (https://semver.org)", field=field)
    return value


def version_key(version: str) -> tuple[Any, ...]:
    """Sort key implementing semver precedence (build metadata ignored, a pre-release sorts first)."""
    match = SEMVER.match(version)
    if match is None:
        raise ValueError(f"not a semantic version: {version!r}")
    major, minor, patch, pre = int(match[1]), int(match[2]), int(match[3]), match[4]
    if pre is None:
        return (major, minor, patch, 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (major, minor, patch, 0, parts)


def latest(versions: list[str]) -> str | None:
    """The version calls use when none is pinned: the highest release, else the highest pre-release."""
    releases = [v for v in versions if "-" not in v.split("+")[0]]
    pool = releases or versions
    return max(pool, key=version_key) if pool else None


def parse_capability(value: Any, field: str) -> str:
    """`storage` or `fetch:<host>` / `fetch:<host>:<port>` (host: a DNS name, an IPv4 or [IPv6] literal)."""
    if not isinstance(value, str) or len(value) > 300:
        raise Invalid(f"{field} must be 'storage' or 'fetch:<host>'", field=field)
    if value == "storage":
        return value
    if not value.startswith("fetch:"):
        raise Invalid(f"{field} must be 'storage' or 'fetch:<host>' (got {value[:60]!r})", field=field)
    host, port = split_host_port(value[len("fetch:") :])
    if host is None or (port is not None and not 1 <= port <= 65535):
        raise Invalid(
            f"{field}: {value[:80]!r} does not name a host (e.g. fetch:api.weather.example or "
            "fetch:api.weather.example:8443)",
            field=field,
        )
    return "fetch:" + (f"[{host}]" if ":" in host else host) + (f":{port}" if port is not None else "")


def split_host_port(text: str) -> tuple[str | None, int | None]:
    """(lowercase host, port or None) of `host`, `host:port`, `[v6]` or `[v6]:port`; host None when invalid."""
    text = text.strip().lower()
    port: int | None = None
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[1:end], text[end + 1 :]
        if end < 0 or not _is_ip(host, 6):
            return None, None
    else:
        host, _, rest = text.partition(":")
        rest = ":" + rest if rest else ""
        if not (_is_ip(host, 4) or _is_hostname(host)):
            return None, None
    if rest:
        if not rest.startswith(":") or not rest[1:].isdigit() or len(rest) > 6:
            return None, None
        port = int(rest[1:])
    return host, port


def _is_ip(text: str, family: int) -> bool:
    try:
        return ipaddress.ip_address(text).version == family
    except ValueError:
        return False


def _is_hostname(text: str) -> bool:
    labels = text.split(".")
    return 0 < len(text) <= 253 and all(_HOST_LABEL.match(label) for label in labels) and not labels[-1].isdigit()


def _string_list(body: Body, name: str, *, required: bool, max_items: int) -> list[Any]:
    if not body.has(name) or (body.payload[name] is None and not required):
        if required:
            body.fail(f"{body.prefix}{name} is required", name)
        return []
    value = body.payload[name]
    if not isinstance(value, list):
        body.fail(f"{body.prefix}{name} must be a list", name)
    if len(value) > max_items:
        body.fail(f"{body.prefix}{name} has more than {max_items} entries", name)
    return value


def _required(body: Body, name: str) -> Any:
    if body.payload.get(name) is None:
        body.fail(f"{body.prefix}{name} is required", name)
    return body.payload[name]


def parse_manifest(payload: Any, prefix: str = "manifest.") -> Manifest:
    body = Body(payload, allowed=MANIFEST_FIELDS, prefix=prefix)
    plugin_id = parse_plugin_id(_required(body, "id"), f"{prefix}id")
    version = parse_version(_required(body, "version"), f"{prefix}version")
    name = body.text("name", max_len=100)
    description = body.text("description", required=False, max_len=500)
    main = body.text("main", required=False, max_len=200)

    interfaces: list[str] = []
    for index, item in enumerate(_string_list(body, "interfaces", required=True, max_items=len(INTERFACES))):
        where = f"interfaces[{index}]"
        if item not in INTERFACES:
            body.fail(f"{prefix}{where} must be one of {', '.join(INTERFACES)} (got {str(item)[:40]!r})", where)
        if item in interfaces:
            body.fail(f"{prefix}{where}: {item} is listed twice", where)
        interfaces.append(item)
    if not interfaces:
        body.fail(f"{prefix}interfaces must list at least one of {', '.join(INTERFACES)}", "interfaces")

    capabilities: list[str] = []
    for index, item in enumerate(_string_list(body, "capabilities", required=False, max_items=20)):
        capability = parse_capability(item, f"{prefix}capabilities[{index}]")
        if capability in capabilities:
            body.fail(f"{prefix}capabilities[{index}]: {capability} is listed twice", f"capabilities[{index}]")
        capabilities.append(capability)

    timeout_ms = body.integer(
        "timeoutMs",
        required=False,
        minimum=limits.MIN_TIMEOUT_MS,
        maximum=limits.MAX_TIMEOUT_MS,
        default=limits.DEFAULT_TIMEOUT_MS,
    )

    entry_points: dict[str, str] = {}
    for interface, function in body.obj("entryPoints", max_keys=len(INTERFACES)).items():
        where = f"entryPoints.{interface}"
        if interface not in interfaces:
            body.fail(f"{prefix}{where}: {interface} is not one of the declared interfaces", where)
        if not isinstance(function, str) or not JS_IDENTIFIER.match(function):
            body.fail(
                f"{prefix}{where} must name a function of the global plugin object (a JavaScript identifier)", where
            )
        entry_points[interface] = function

    return Manifest(
        plugin_id, version, name, tuple(interfaces), tuple(capabilities), timeout_ms, entry_points, description, main
    )
