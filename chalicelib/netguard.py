"""Outbound HTTP to user-chosen URLs without SSRF: vet the URL, resolve it, refuse internal
addresses, then connect to the vetted address itself (so DNS cannot change between check and use).

Used by plugin `fetch` and by webhook deliveries. In every stage, every non-public address (the lists
below) is refused unless its address:port is in OUTBOUND_ALLOW (tests, benchmarks, the examples'
receivers); cloud metadata addresses are refused even then. Outside STAGE=local only https is allowed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from chalicelib import deadlines
from chalicelib.deadlines import Deadline, DeadlineExceeded

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Allowed = frozenset[tuple[str, int]]  # (address, port) pairs of OUTBOUND_ALLOW

# Instance metadata services (AWS IMDS v4/v6, also GCP/Azure/OpenStack on the v4 address).
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
MAX_URL_LENGTH = 2048


class Refused(Exception):
    """The destination is not allowed; the message says why, in words safe to show the user."""


class Unreachable(Exception):
    """The destination was allowed but could not be reached (DNS, connect, timeout, TLS)."""


class ResponseTooLarge(Exception):
    """The response body is larger than the caller's cap."""


@dataclass(frozen=True)
class Destination:
    """A vetted URL: where to connect (`address`) and what to ask for."""

    url: str
    scheme: str
    host: str  # as written in the URL (lowercase), used for Host, SNI and certificate checks
    port: int
    target: str  # path + query
    address: IPAddress


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed_ms: float = 0.0
    truncated: bool = field(default=False)


Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the host resolves to (A and AAAA)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unreachable(f"{host} does not resolve") from exc
    return [str(info[4][0]) for info in infos]


def _networks(*specs: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(cidr), kind) for cidr, kind in specs)


# Explicit lists (IANA special-purpose registries), not ipaddress's is_private/is_global flags: those
# differ between Python 3.11, 3.12 and 3.13 and call fec0::/10 global. Anything listed is refused.
BLOCKED_V4 = _networks(
    ("0.0.0.0/8", "a 'this network' address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol address"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.31.196.0/24", "an AS112 address"),
    ("192.52.193.0/24", "an AMT address"),
    ("192.88.99.0/24", "a 6to4 relay address"),
    ("192.168.0.0/16", "a private address"),
    ("192.175.48.0/24", "an AS112 address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
)
# IPv6 outside 2000::/3 (global unicast) is refused whole; inside it, these are not public either.
GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
BLOCKED_V6 = _networks(
    ("2001::/23", "an IETF protocol address (Teredo, benchmarking, ORCHID)"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
)
# IPv6 forms that carry an IPv4 address: judged by that address.
EMBEDDED_V4 = (ipaddress.ip_network("::ffff:0:0/96"), ipaddress.ip_network("64:ff9b::/96"))
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")


def _v6_kind(address: ipaddress.IPv6Address) -> str:
    if address == ipaddress.IPv6Address("::1"):
        return "a loopback address"
    if address == ipaddress.IPv6Address("::"):
        return "the unspecified address"
    prefixes = (("fe80::/10", "a link-local"), ("fc00::/7", "a private"), ("ff00::/8", "a multicast"))
    for cidr, kind in (*prefixes, ("fec0::/10", "a site-local")):
        if address in ipaddress.ip_network(cidr):
            return f"{kind} address"
    return "a non-public address"


def address_problem(address: IPAddress, *, allow: Allowed = frozenset(), port: int | None = None) -> str | None:
    """Why `address` (at `port`) may not be contacted, or None when it may.

    Non-public addresses are refused in every stage unless (address, port) is in `allow`
    (OUTBOUND_ALLOW); cloud metadata addresses are refused even then.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in network for network in EMBEDDED_V4):
            return address_problem(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), allow=allow, port=port)
        if address in ipaddress.ip_network("2002::/16"):
            return address_problem(ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF), allow=allow, port=port)
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if port is not None and (str(address), port) in allow:
        return None
    kind: str | None = None
    if isinstance(address, ipaddress.IPv4Address):
        kind = next((k for network, k in BLOCKED_V4 if address in network), None)
    elif address in LOCAL_NAT64 or address not in GLOBAL_UNICAST_V6:
        kind = _v6_kind(address)
    else:
        kind = next((k for network, k in BLOCKED_V6 if address in network), None)
    if kind is not None:
        return f"{address} is {kind} (allow it for tests with OUTBOUND_ALLOW=address:port)"
    return None


def check_url(
    url: str,
    *,
    local: bool,
    allow: Allowed = frozenset(),
    resolver: Resolver = system_resolver,
    deadline: Deadline | None = None,
) -> Destination:
    """Vet `url` and resolve it (within `deadline`); Refused when any address it resolves to is not allowed.

    `local` (the local stage) allows http besides https; the address rules are the same in every stage.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise Refused(f"the URL must be a string of 1 to {MAX_URL_LENGTH} characters")
    if any(c in url for c in "\r\n\t\x00 "):
        raise Refused("the URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"the URL is malformed ({exc})") from exc
    scheme = parts.scheme.lower()
    allowed_schemes = ("http", "https") if local else ("https",)
    if scheme not in allowed_schemes:
        raise Refused(f"only {' and '.join(allowed_schemes)} URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise Refused("credentials in the URL are not allowed")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise Refused("the URL has no host")
    port = port or (443 if scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    candidates = [literal] if literal is not None else _resolve(resolver, host, port, deadline)
    if not candidates:
        raise Unreachable(f"{host} does not resolve")
    for address in candidates:
        problem = address_problem(address, allow=allow, port=port)
        if problem:
            raise Refused(f"{host} is not allowed: {problem}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(url, scheme, host, port, target, candidates[0])


def _resolve(resolver: Resolver, host: str, port: int, deadline: Deadline | None) -> list[IPAddress]:
    if deadline is None:
        found = resolver(host, port)
    else:
        try:
            found = deadline.run(lambda: resolver(host, port))
        except DeadlineExceeded as exc:
            raise Unreachable(f"{host} did not resolve within {deadline.seconds:g} s") from exc
    return [ipaddress.ip_address(a.split("%")[0]) for a in found]


def request(
    method: str,
    url: str,
    *,
    local: bool,
    allow: Allowed = frozenset(),
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout_s: float = 5.0,
    max_response_bytes: int = 1024 * 1024,
    resolver: Resolver = system_resolver,
) -> Response:
    """One HTTP request to a vetted destination; redirects are returned, never followed.

    The check runs now (at call time), and the connection goes to the address that was checked.
    `timeout_s` bounds the whole exchange (DNS, connect, TLS, request and answer), whatever the peer does.
    """
    import time

    import urllib3

    deadline = Deadline(timeout_s)
    started = time.perf_counter()
    destination = check_url(url, local=local, allow=allow, resolver=resolver, deadline=deadline)
    send_headers = {k: v for k, v in (headers or {}).items() if k.lower() not in ("host", "content-length")}
    send_headers["Host"] = host_header(destination)
    remaining = max(deadline.remaining(), 0.001)
    options: dict[str, Any] = {
        "timeout": urllib3.Timeout(connect=min(remaining, 3.0), read=remaining),
        "retries": False,
        "maxsize": 1,
    }
    if destination.scheme == "https":
        options.update(server_hostname=destination.host, assert_hostname=destination.host)
    pool = deadlines.pool(destination.scheme, str(destination.address), destination.port, **options)
    try:
        with deadline.armed():
            answer = pool.urlopen(
                method,
                destination.target,
                body=body,
                headers=send_headers,
                redirect=False,
                preload_content=False,
                assert_same_host=False,
            )
            try:
                data = answer.read(max_response_bytes + 1, decode_content=True)
                if len(data) > max_response_bytes:
                    raise ResponseTooLarge(f"the response is larger than {max_response_bytes} bytes")
                if deadline.expired:  # the cut can look like a clean end of the body
                    raise Unreachable(f"{destination.host} did not answer within {round(timeout_s, 1):g} s")
                return Response(
                    answer.status,
                    {k.lower(): v for k, v in answer.headers.items()},
                    data,
                    (time.perf_counter() - started) * 1000,
                )
            finally:
                answer.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        if deadline.expired or isinstance(exc, urllib3.exceptions.TimeoutError):
            raise Unreachable(f"{destination.host} did not answer within {round(timeout_s, 1):g} s") from exc
        raise Unreachable(f"{destination.host} could not be reached ({type(exc).__name__})") from exc
    finally:
        pool.close()


def host_header(destination: Destination) -> str:
    """The Host header for `destination` (the port only when it is not the scheme's default)."""
    default = 443 if destination.scheme == "https" else 80
    name = f"[{destination.host}]" if ":" in destination.host else destination.host
    return name if destination.port == default else f"{name}:{destination.port}"
