"""The webhook POST against a real receiver on 127.0.0.1: outcomes, 1 KB prefix, no redirects, timeouts,
SSRF refusals outside `local`, and TLS to the checked address with the host name as server name."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.webhooks import sender
from tests.webhook_receiver import Answer, Receiver

pytestmark = pytest.mark.unit

HEADERS = {"Content-Type": "application/json", "User-Agent": "race-webhooks/1.0"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def test_a_2xx_is_success_with_the_answer_kept(receiver: Receiver) -> None:
    receiver.answer = Answer(202, body=b'{"queued":true}')
    outcome = sender.post(receiver.url, b'{"a":1}', HEADERS, 5, local=True, allow=receiver.allow)
    assert outcome.ok and outcome.status_code == 202 and outcome.error is None
    assert outcome.response_body == '{"queued":true}'
    (request,) = receiver.requests
    assert request.path == "/hooks/race?team=apex"
    assert request.body == b'{"a":1}'
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert request.headers["user-agent"] == "race-webhooks/1.0"


def test_only_the_first_kilobyte_of_the_answer_is_kept(receiver: Receiver) -> None:
    receiver.answer = Answer(500, body=b"x" * 5000)
    outcome = sender.post(receiver.url, b"{}", HEADERS, 5, local=True, allow=receiver.allow)
    assert not outcome.ok and outcome.status_code == 500 and outcome.error == "HTTP 500"
    assert outcome.response_body == "x" * 1024
    # the connection stays usable for the next delivery
    receiver.answer = Answer(200)
    assert sender.post(receiver.url, b"{}", HEADERS, 5, local=True, allow=receiver.allow).ok


def test_redirects_are_failures_and_are_not_followed(receiver: Receiver) -> None:
    receiver.answer = Answer(302, headers={"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"})
    outcome = sender.post(receiver.url, b"{}", HEADERS, 5, local=True, allow=receiver.allow)
    assert not outcome.ok and outcome.status_code == 302
    assert outcome.error and "redirect" in outcome.error and "not followed" in outcome.error
    assert len(receiver.requests) == 1


def test_a_receiver_that_does_not_answer_in_time_times_out(receiver: Receiver) -> None:
    receiver.answer = Answer(200, delay_s=1.5)
    outcome = sender.post(receiver.url, b"{}", HEADERS, 0.3, local=True, allow=receiver.allow)
    assert outcome.status_code is None and outcome.error == "timed out after 0.3 s"


def test_a_receiver_that_is_down_is_a_connection_error(receiver: Receiver) -> None:
    receiver.down()
    outcome = sender.post(receiver.url, b"{}", HEADERS, 2, local=True, allow=receiver.allow)
    assert outcome.status_code is None
    assert outcome.error and outcome.error.startswith("could not connect") and "refused" in outcome.error


def test_retry_after_is_returned_for_the_policy(receiver: Receiver) -> None:
    receiver.answer = Answer(429, headers={"Retry-After": "7"})
    outcome = sender.post(receiver.url, b"{}", HEADERS, 5, local=True, allow=receiver.allow)
    assert outcome.status_code == 429 and outcome.retry_after == "7"


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Host names resolved by the test (no DNS in the sandbox); anything else resolves as usual."""
    names: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in names:
            family = socket.AF_INET6 if ":" in names[host] else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (names[host], port or 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/",  # plain http
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://internal.example.test/hook",  # resolves to a private address
    ],
)
def test_outside_local_internal_destinations_are_refused_before_connecting(
    url: str, fake_dns: dict[str, str], receiver: Receiver
) -> None:
    fake_dns["internal.example.test"] = "10.20.30.40"
    outcome = sender.post(url, b"{}", HEADERS, 2, local=False)
    assert outcome.status_code is None and outcome.error and outcome.error.startswith("not sent:")
    assert receiver.requests == []


def test_metadata_addresses_are_refused_even_locally() -> None:
    allow = frozenset({("169.254.169.254", 80)})
    outcome = sender.post("http://169.254.169.254/latest/meta-data/", b"{}", HEADERS, 2, local=True, allow=allow)
    assert outcome.error and outcome.error.startswith("not sent:")


def test_a_name_that_no_longer_resolves_is_a_connection_error(fake_dns: dict[str, str]) -> None:
    outcome = sender.post("https://gone.invalid/hook", b"{}", HEADERS, 2, local=False)
    assert outcome.status_code is None and outcome.error and outcome.error.startswith("could not connect")


def _self_signed(tmp_path: Path, host: str) -> ssl.SSLContext:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


def test_tls_goes_to_the_checked_address_with_the_host_name_as_server_name(
    tmp_path: Path, fake_dns: dict[str, str]
) -> None:
    host = "hooks.example.test"
    fake_dns[host] = "127.0.0.1"
    context = _self_signed(tmp_path, host)
    server_names: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: server_names.append(name)  # type: ignore[assignment,func-returns-value]
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept_one() -> None:
        conn, _ = listener.accept()
        try:
            context.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            pass  # the client refuses our self-signed certificate, as it should
        finally:
            listener.close()

    thread = threading.Thread(target=accept_one, daemon=True)
    thread.start()
    outcome = sender.post(
        f"https://{host}:{port}/hook", b"{}", HEADERS, 3, local=True, allow=frozenset({("127.0.0.1", port)})
    )
    thread.join(5)
    assert server_names == [host]  # SNI carries the name although the socket went to 127.0.0.1
    assert outcome.error and outcome.error.startswith("TLS error") and "certificate verify failed" in outcome.error
    pool = sender.pools().get("https", "127.0.0.1", port, host)
    assert pool.host == "127.0.0.1" and pool.conn_kw["server_hostname"] == host and pool.assert_hostname == host


def test_a_dripping_receiver_is_cut_at_the_deadline(receiver: Receiver) -> None:
    """One byte every 0.2 s never trips a per-read timeout of 0.5 s: only the whole-exchange deadline ends it."""
    receiver.answer = Answer(200, drip_s=0.2)
    started = time.monotonic()
    outcome = sender.post(receiver.url, b"{}", HEADERS, 1.0, local=True, allow=receiver.allow)
    elapsed_s = time.monotonic() - started
    assert outcome.status_code is None and outcome.error == "timed out after 1 s"
    assert elapsed_s < 10  # the drip goes on for 60 s; the cut comes at 1 s (generous margin for a loaded machine)
    receiver.answer = Answer(200)
    assert sender.post(
        receiver.url, b"{}", HEADERS, 1.0, local=True, allow=receiver.allow
    ).ok  # the pool is not left with a cut socket
