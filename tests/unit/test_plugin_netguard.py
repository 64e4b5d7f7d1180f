"""netguard: SSRF rules for outgoing requests to user-chosen URLs (plugin fetch, webhooks)."""

from __future__ import annotations

import http.server
import ipaddress
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import netguard

pytestmark = pytest.mark.unit


def opened(host_port: str) -> netguard.Allowed:
    host, port = host_port.rsplit(":", 1)
    return frozenset({(host, int(port))})


def resolving_to(*addresses: str) -> netguard.Resolver:
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "10.0.0.5",
        "172.16.3.4",
        "192.168.1.1",
        "fd12:3456::1",
        "fe80::1",
        "169.254.10.10",
        "224.0.0.1",
        "ff02::1",
        "0.0.0.0",
        "::",
        "100.64.0.1",
        "240.0.0.1",
        "192.0.2.7",
        "::ffff:127.0.0.1",
        "::ffff:10.1.2.3",
        "64:ff9b::a00:1",
        "2002:a00:1::1",
        # ipaddress's flags flip on these between Python 3.11, 3.12 and 3.13, or call them global:
        "2001:1::1",
        "64:ff9b:1::1",
        "fec0::1",
        "2001:db8::1",
        "3fff::1",
        "5f00::1",
        "198.18.0.1",
        "192.88.99.1",
    ],
)
def test_internal_addresses_are_refused_in_every_stage(address: str) -> None:
    assert netguard.address_problem(ipaddress.ip_address(address)) is not None
    for local in (True, False):
        with pytest.raises(netguard.Refused):
            netguard.check_url("https://api.example.com/x", local=local, resolver=resolving_to(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001::1", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert netguard.address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254"])
def test_cloud_metadata_is_refused_in_every_stage_even_when_allow_listed(address: str) -> None:
    allow = frozenset({(address, 80), ("169.254.169.254", 80)})
    problem = netguard.address_problem(ipaddress.ip_address(address), allow=allow, port=80)
    assert problem is not None and "metadata" in problem


def test_the_allow_list_opens_exactly_its_address_and_port() -> None:
    allow = frozenset({("127.0.0.1", 9000)})
    assert netguard.address_problem(ipaddress.ip_address("127.0.0.1"), allow=allow, port=9000) is None
    assert netguard.address_problem(ipaddress.ip_address("127.0.0.1"), allow=allow, port=9001) is not None
    assert netguard.address_problem(ipaddress.ip_address("127.0.0.2"), allow=allow, port=9000) is not None
    assert netguard.address_problem(ipaddress.ip_address("::ffff:127.0.0.1"), allow=allow, port=9000) is None
    with pytest.raises(netguard.Refused, match="OUTBOUND_ALLOW"):  # a name resolving to loopback, another port
        netguard.check_url(
            "http://localtest.example:4566/", local=True, allow=allow, resolver=resolving_to("127.0.0.1")
        )


def test_public_addresses_pass_and_the_vetted_address_is_kept() -> None:
    destination = netguard.check_url(
        "https://API.example.com:8443/v1/track?at=sebring",
        local=False,
        resolver=resolving_to("93.184.216.34", "2606:2800:220:1::1"),
    )
    assert (destination.host, destination.port, destination.target) == ("api.example.com", 8443, "/v1/track?at=sebring")
    assert str(destination.address) == "93.184.216.34"


def test_one_bad_address_among_good_ones_refuses_the_host() -> None:
    with pytest.raises(netguard.Refused, match="private"):
        netguard.check_url("https://mixed.example.com", local=False, resolver=resolving_to("93.184.216.34", "10.0.0.1"))


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://api.example.com/", "only https"),
        ("ftp://api.example.com/", "only https"),
        ("file:///etc/passwd", "only https"),
        ("https://user:pw@api.example.com/", "credentials"),
        ("https:///nohost", "no host"),
        ("https://api.example.com/a b", "spaces"),
        ("https://api.example.com:99999/", "malformed"),
        ("", "1 to"),
    ],
)
def test_url_rules_outside_local(url: str, words: str) -> None:
    with pytest.raises(netguard.Refused, match=words):
        netguard.check_url(url, local=False, resolver=resolving_to("93.184.216.34"))


def test_local_stage_allows_http_but_not_loopback_unless_allow_listed() -> None:
    with pytest.raises(netguard.Refused, match="loopback"):
        netguard.check_url("http://127.0.0.1:9000/x", local=True)
    allow = frozenset({("127.0.0.1", 9000)})
    destination = netguard.check_url("http://127.0.0.1:9000/x", local=True, allow=allow)
    assert destination.scheme == "http" and str(destination.address) == "127.0.0.1"
    with pytest.raises(netguard.Refused, match="only https"):
        netguard.check_url("http://127.0.0.1:9000/x", local=False, allow=allow)


@pytest.fixture()
def server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/")
                self.end_headers()
                return
            body = (b"x" * 5000) if self.path == "/big" else f"host={self.headers['Host']}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_request_connects_to_the_vetted_address_with_the_original_host(server: str) -> None:
    port = server.split(":")[1]
    answer = netguard.request(
        "GET", f"http://timing.example:{port}/", local=True, allow=opened(server), resolver=resolving_to("127.0.0.1")
    )
    assert answer.status == 200 and answer.body == f"host=timing.example:{port}".encode()


def test_request_limits_redirects_and_refusals(server: str) -> None:
    with pytest.raises(netguard.ResponseTooLarge):
        netguard.request("GET", f"http://{server}/big", local=True, allow=opened(server), max_response_bytes=1000)
    redirect = netguard.request("GET", f"http://{server}/redirect", local=True, allow=opened(server))
    assert redirect.status == 302 and redirect.headers["location"] == "http://169.254.169.254/"  # not followed
    with pytest.raises(netguard.Refused):
        netguard.request("GET", f"http://{server}/", local=False)
    with pytest.raises(netguard.Unreachable):
        netguard.request("GET", "http://127.0.0.1:9/", local=True, allow=opened("127.0.0.1:9"), timeout_s=1)
    with pytest.raises(netguard.Unreachable):
        netguard.check_url("https://does-not-exist.invalid/", local=False)


def test_a_dripping_answer_ends_at_the_deadline() -> None:
    from tests.webhook_receiver import Answer, Receiver

    receiver = Receiver().start()
    receiver.answer = Answer(200, drip_s=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(netguard.Unreachable, match="did not answer within 1 s"):
            netguard.request("POST", receiver.url, local=True, allow=receiver.allow, timeout_s=1.0)
        assert time.monotonic() - started < 10  # the drip lasts 60 s
    finally:
        receiver.stop()


def test_a_slow_dns_answer_ends_at_the_deadline() -> None:
    def stalled(host: str, port: int) -> list[str]:
        time.sleep(3)
        return ["93.184.216.34"]

    started = time.monotonic()
    with pytest.raises(netguard.Unreachable, match="did not resolve within 0.5 s"):
        netguard.request("GET", "https://slow-dns.example/", local=False, timeout_s=0.5, resolver=stalled)
    assert time.monotonic() - started < 2.5
