"""Host functions: declared + granted checks, fetch host matching and arguments, storage arguments."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import netguard
from chalicelib.plugins import limits
from chalicelib.plugins.capabilities import PluginHost, grants_fetch
from chalicelib.plugins.runtime import HostFailed, HostRefused

pytestmark = pytest.mark.unit


class Recorder:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error = error

    def __call__(self, method: str, url: str, **kwargs: Any) -> netguard.Response:
        self.calls.append({"method": method, "url": url, **kwargs})
        if self.error:
            raise self.error
        return netguard.Response(200, {"content-type": "text/plain"}, "caf\u00e9".encode())


def host(declared: list[str], granted: list[str], fetcher: Any = None) -> PluginHost:
    return PluginHost(
        account_id="acct",
        plugin_id="weather",
        declared=declared,
        granted=granted,
        local=False,
        fetcher=fetcher or Recorder(),
    )


@pytest.mark.parametrize(
    ("capability", "host_name", "port", "expected"),
    [
        ("fetch:api.example.com", "api.example.com", 443, True),
        ("fetch:api.example.com", "api.example.com", 8443, True),
        ("fetch:api.example.com:8443", "api.example.com", 8443, True),
        ("fetch:api.example.com:8443", "api.example.com", 443, False),
        ("fetch:example.com", "api.example.com", 443, False),
        ("fetch:api.example.com", "api.example.com.evil.test", 443, False),
        ("storage", "api.example.com", 443, False),
    ],
)
def test_fetch_host_matching(capability: str, host_name: str, port: int, expected: bool) -> None:
    assert grants_fetch(capability, host_name, port) is expected


def test_effective_capabilities_need_declaration_and_grant() -> None:
    both = host(["storage", "fetch:a.example"], ["fetch:a.example", "fetch:b.example"])
    assert both.effective == ["fetch:a.example"]


def test_fetch_refusals_say_what_is_missing() -> None:
    with pytest.raises(HostRefused, match="fetch:api.example.com is not declared"):
        host([], [])("fetch", ["https://api.example.com/x"], 1.0)
    with pytest.raises(HostRefused, match="declared but not granted .* PUT /plugins/weather/grants"):
        host(["fetch:api.example.com"], [])("fetch", ["https://api.example.com/x"], 1.0)
    with pytest.raises(HostRefused, match="there is no host function"):
        host([], [])("exec", ["ls"], 1.0)


def test_fetch_passes_a_checked_request_and_shapes_the_answer() -> None:
    fetcher = Recorder()
    capable = host(["fetch:api.example.com"], ["fetch:api.example.com"], fetcher)
    answer = capable(
        "fetch",
        ["https://api.example.com/x", {"method": "post", "body": "{}", "headers": {"X-Team": "apex", "Host": "evil"}}],
        10.0,
    )
    assert answer == {
        "status": 200,
        "headers": {"content-type": "text/plain"},
        "url": "https://api.example.com/x",
        "body": "caf\u00e9",
    }
    (call,) = fetcher.calls
    assert call["method"] == "POST" and call["body"] == b"{}" and call["headers"] == {"X-Team": "apex"}
    assert call["local"] is False and call["timeout_s"] == limits.FETCH_TIMEOUT_S
    assert call["max_response_bytes"] == limits.FETCH_MAX_RESPONSE_BYTES
    capable("fetch", ["https://api.example.com/x"], 0.5)
    assert fetcher.calls[-1]["timeout_s"] == 0.5  # never past the invocation's deadline


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([42], "url must be a string"),
        (["https://api.example.com/", "GET"], "init must be an object"),
        (["https://api.example.com/", {"mode": "cors"}], "unsupported init field"),
        (["https://api.example.com/", {"method": "CONNECT"}], "method must be one of"),
        (["https://api.example.com/", {"headers": {"X": "a\r\nHost: evil"}}], "single-line"),
        (["https://api.example.com/", {"headers": {"X-Driver": "\u017dilka"}}], "Latin-1 .*U\\+017D"),
        (["https://api.example.com/", {"headers": {"X-Flag": "\U0001f3c1"}}], "Latin-1 .*U\\+1F3C1"),
        (["https://api.example.com/", {"headers": {"X Team": "apex"}}], "invalid name"),
        (["https://api.example.com/", {"headers": {"": "apex"}}], "invalid name"),
        (["https://api.example.com/", {"headers": {"X:Y": "apex"}}], "invalid name"),
        (["https://api.example.com/", {"headers": {"X-Lap": 7}}], "must be a string"),
        (["https://api.example.com/", {"headers": {"X-Long": "v" * 8193}}], "longer than 8192"),
        (["https://api.example.com/", {"body": {"a": 1}}], "body must be a string"),
        (["https://api.example.com/", {"body": "x" * (limits.FETCH_MAX_REQUEST_BYTES + 1)}], "larger than"),
    ],
)
def test_fetch_arguments_are_checked(args: list[Any], words: str) -> None:
    with pytest.raises(HostRefused, match=words):
        host(["fetch:api.example.com"], ["fetch:api.example.com"])("fetch", args, 1.0)


def test_latin1_header_values_pass() -> None:
    fetcher = Recorder()
    capable = host(["fetch:api.example.com"], ["fetch:api.example.com"], fetcher)
    capable("fetch", ["https://api.example.com/", {"headers": {"X-Driver": "M\u00fcller\tjr"}}], 1.0)
    assert fetcher.calls[-1]["headers"] == {"X-Driver": "M\u00fcller\tjr"}


def test_fetch_network_outcomes_become_host_errors() -> None:
    for error, expected in (
        (netguard.Refused("10.0.0.1 is a private address"), HostRefused),
        (netguard.Unreachable("api.example.com could not be reached"), HostFailed),
        (netguard.ResponseTooLarge("big"), HostFailed),
    ):
        capable = host(["fetch:api.example.com"], ["fetch:api.example.com"], Recorder(error))
        with pytest.raises(expected):
            capable("fetch", ["https://api.example.com/"], 1.0)


def test_calls_per_invocation_are_capped() -> None:
    capable = host(["fetch:api.example.com"], ["fetch:api.example.com"])
    for _ in range(limits.FETCH_MAX_CALLS):
        capable("fetch", ["https://api.example.com/"], 1.0)
    with pytest.raises(HostRefused, match=f"at most {limits.FETCH_MAX_CALLS} fetch calls"):
        capable("fetch", ["https://api.example.com/"], 1.0)


def test_storage_is_refused_before_any_storage_access() -> None:
    with pytest.raises(HostRefused, match="storage is not declared"):
        host([], ["storage"])("storage.get", ["k"], 1.0)
    with pytest.raises(HostRefused, match="storage is declared but not granted"):
        host(["storage"], [])("storage.put", ["k", 1], 1.0)


@pytest.mark.parametrize(
    ("op", "args", "words"),
    [
        ("storage.get", [""], "key must be"),
        ("storage.get", [7], "key must be"),
        ("storage.get", ["k" * (limits.STORAGE_MAX_KEY_CHARS + 1)], "key must be"),
        ("storage.put", ["k", "v" * limits.STORAGE_MAX_VALUE_BYTES], "larger than"),
    ],
)
def test_storage_arguments_are_checked(op: str, args: list[Any], words: str) -> None:
    with pytest.raises(HostRefused, match=words):
        host(["storage"], ["storage"])(op, args, 1.0)
