"""Host functions behind `host.fetch` and `host.storage`, written in Python and checked at call time.

A capability works only when the running version's manifest declares it *and* the account has
granted it; anything else is refused with an error that says which of the two is missing. The
account and plugin a call acts for come from the invocation, never from the plugin.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from chalicelib import netguard
from chalicelib.plugins import limits, storage
from chalicelib.plugins.manifest import split_host_port
from chalicelib.plugins.runtime import HostFailed, HostRefused

FETCH_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_HOP_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "proxy-authorization",
        "proxy-connection",
        "keep-alive",
        "trailer",
    }
)

Fetcher = Callable[..., netguard.Response]
# RFC 9110 field names are tokens; values are visible Latin-1 text, spaces and tabs (no CR, LF, NUL).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,200}")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]{0,8192}")


def _header_problem(name: str, value: Any) -> str | None:
    """Why a plugin's header cannot be sent as given (None when it can)."""
    if not _TOKEN.fullmatch(name):
        return "has an invalid name (letters, digits and !#$%&'*+.^_`|~- only, at most 200)"
    if not isinstance(value, str):
        return "must be a string"
    if not _FIELD_VALUE.fullmatch(value):
        bad = next((c for c in value if not _FIELD_VALUE.fullmatch(c)), None)
        if bad is None:
            return "is longer than 8192 characters"
        return f"must be single-line Latin-1 text (it contains U+{ord(bad):04X})"
    return None


def grants_fetch(capability: str, host: str, port: int) -> bool:
    """Whether `fetch:<host>` (any port) or `fetch:<host>:<port>` covers host:port."""
    if not capability.startswith("fetch:"):
        return False
    cap_host, cap_port = split_host_port(capability[len("fetch:") :])
    return cap_host == host and (cap_port is None or cap_port == port)


class PluginHost:
    """The host side of one invocation: what the plugin may use and the functions that do it."""

    def __init__(
        self,
        *,
        account_id: str,
        plugin_id: str,
        declared: Sequence[str],
        granted: Sequence[str],
        local: bool,
        allow: netguard.Allowed = frozenset(),
        fetcher: Fetcher = netguard.request,
    ) -> None:
        self.account_id = account_id
        self.plugin_id = plugin_id
        self.declared = tuple(declared)
        self.granted = tuple(granted)
        self.local = local
        self.allow = allow
        self.fetcher = fetcher
        self.calls: dict[str, int] = {"fetch": 0, "storage": 0}

    @property
    def effective(self) -> list[str]:
        """Capabilities usable in this call: declared by the version and granted by the account."""
        return [c for c in self.declared if c in self.granted]

    def __call__(self, op: str, args: list[Any], remaining_s: float) -> Any:
        if op == "fetch":
            return self.fetch(args, remaining_s)
        if op in ("storage.get", "storage.put", "storage.delete"):
            return self.storage(op.split(".", 1)[1], args)
        raise HostRefused(f"there is no host function {op!r}")

    def _require(self, capability: str, declared: bool, granted: bool) -> None:
        if not declared:
            raise HostRefused(
                f"{capability} is not declared: add it to capabilities in the manifest of {self.plugin_id} "
                "and upload a new version"
            )
        if not granted:
            raise HostRefused(
                f"{capability} is declared but not granted to {self.plugin_id} in this account: an admin "
                f"grants it with PUT /plugins/{self.plugin_id}/grants"
            )

    def _count(self, kind: str, maximum: int) -> None:
        self.calls[kind] += 1
        if self.calls[kind] > maximum:
            raise HostRefused(f"at most {maximum} {kind} calls per invocation")

    # ---- fetch
    def fetch(self, args: list[Any], remaining_s: float) -> dict[str, Any]:
        url = args[0] if args else None
        init = args[1] if len(args) > 1 and args[1] is not None else {}
        if not isinstance(url, str) or not url:
            raise HostRefused("host.fetch(url, init?): url must be a string")
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower().rstrip(".")
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError as exc:
            raise HostRefused(f"host.fetch: {url[:200]!r} is not a valid URL") from exc
        capability = f"fetch:{host}" if ":" not in host else f"fetch:[{host}]"
        self._require(
            capability,
            any(grants_fetch(c, host, port) for c in self.declared),
            any(grants_fetch(c, host, port) for c in self.effective),
        )
        self._count("fetch", limits.FETCH_MAX_CALLS)
        method, headers, body = self._fetch_init(init)
        timeout_s = min(limits.FETCH_TIMEOUT_S, remaining_s)
        if timeout_s <= 0:
            raise HostFailed("host.fetch: no time left in this invocation")
        try:
            answer = self.fetcher(
                method,
                url,
                local=self.local,
                allow=self.allow,
                headers=headers,
                body=body,
                timeout_s=timeout_s,
                max_response_bytes=limits.FETCH_MAX_RESPONSE_BYTES,
            )
        except netguard.Refused as exc:
            raise HostRefused(f"host.fetch refused {url[:200]}: {exc}") from exc
        except netguard.ResponseTooLarge as exc:
            raise HostFailed(
                f"host.fetch {url[:200]}: the response is larger than {limits.FETCH_MAX_RESPONSE_BYTES} bytes"
            ) from exc
        except netguard.Unreachable as exc:
            raise HostFailed(f"host.fetch {url[:200]}: {exc}") from exc
        return {
            "status": answer.status,
            "headers": answer.headers,
            "url": url,
            "body": answer.body.decode("utf-8", errors="replace"),
        }

    @staticmethod
    def _fetch_init(init: Any) -> tuple[str, dict[str, str], bytes | None]:
        if not isinstance(init, dict):
            raise HostRefused("host.fetch(url, init?): init must be an object")
        unknown = set(init) - {"method", "headers", "body"}
        if unknown:
            raise HostRefused(f"host.fetch: unsupported init field {sorted(unknown)[0]!r} (method, headers, body)")
        method = str(init.get("method") or "GET").upper()
        if method not in FETCH_METHODS:
            raise HostRefused(f"host.fetch: method must be one of {', '.join(FETCH_METHODS)}")
        raw_headers = init.get("headers") or {}
        if not isinstance(raw_headers, dict) or len(raw_headers) > 50:
            raise HostRefused("host.fetch: headers must be an object of at most 50 string values")
        headers: dict[str, str] = {}
        for name, value in raw_headers.items():
            problem = _header_problem(name, value)
            if problem:
                raise HostRefused(f"host.fetch: header {name[:60]!r} {problem}")
            if name.lower() not in _HOP_HEADERS:
                headers[name] = value
        body = init.get("body")
        if body is not None and not isinstance(body, str):
            raise HostRefused("host.fetch: body must be a string (JSON.stringify objects first)")
        encoded = body.encode() if body is not None else None
        if encoded is not None and len(encoded) > limits.FETCH_MAX_REQUEST_BYTES:
            raise HostRefused(f"host.fetch: body is larger than {limits.FETCH_MAX_REQUEST_BYTES} bytes")
        return method, headers, encoded

    # ---- storage
    def storage(self, op: str, args: list[Any]) -> Any:
        self._require("storage", "storage" in self.declared, "storage" in self.effective)
        self._count("storage", limits.STORAGE_MAX_CALLS)
        key = args[0] if args else None
        if not isinstance(key, str) or not 1 <= len(key) <= limits.STORAGE_MAX_KEY_CHARS or "\x00" in key:
            raise HostRefused(
                f"host.storage.{op}: key must be a string of 1 to {limits.STORAGE_MAX_KEY_CHARS} characters"
            )
        if op == "get":
            return storage.get(self.account_id, self.plugin_id, key)
        if op == "delete":
            return storage.delete(self.account_id, self.plugin_id, key)
        value_json = json.dumps(args[1] if len(args) > 1 else None, separators=(",", ":"))
        if len(value_json.encode()) > limits.STORAGE_MAX_VALUE_BYTES:
            raise HostRefused(
                f"host.storage.put: the value is larger than {limits.STORAGE_MAX_VALUE_BYTES} bytes as JSON"
            )
        try:
            storage.put(self.account_id, self.plugin_id, key, value_json)
        except storage.StorageFull as exc:
            raise HostRefused(f"host.storage.put: {exc}") from exc
        return None
