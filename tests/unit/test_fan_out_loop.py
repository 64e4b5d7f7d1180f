"""The fan-out's event loop: every member's frames in order, over kept-alive connections, with the
outcomes the threaded POSTs had (410 gone, anything else retried once, then failed)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

import pytest

from chalicelib.realtime import push
from chalicelib.realtime.fan_out_loop import FanOutLoop
from chalicelib.realtime.poster import Poster
from tests.http_servers import serving

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


class _Gateway(BaseHTTPRequestHandler):
    """A stand-in for the @connections API: records (connection id, body, Host) per POST; answers
    `statuses[connection id]` (a list: one status per POST, the last repeated; default 200)."""

    protocol_version = "HTTP/1.1"
    statuses: dict[str, list[int]] = {}
    seen: list[tuple[str, bytes]] = []
    hosts: set[str] = set()
    chunked = False
    closes = False
    connections = 0
    open_now = 0
    most_open = 0
    lock = threading.Lock()

    def setup(self) -> None:
        cls = type(self)
        with cls.lock:
            cls.connections += 1
            cls.open_now += 1
            cls.most_open = max(cls.most_open, cls.open_now)
        super().setup()

    def finish(self) -> None:
        super().finish()
        with type(self).lock:
            type(self).open_now -= 1

    def do_POST(self) -> None:
        connection_id = unquote(self.path.rsplit("/", 1)[-1])
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        with cls.lock:
            cls.seen.append((connection_id, body))
            cls.hosts.add(self.headers["Host"])
            plan = cls.statuses.get(connection_id, [200])
            status = plan.pop(0) if len(plan) > 1 else plan[0]
        self.send_response(status)
        if self.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"2\r\nok\r\n0\r\n\r\n")
        else:
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        self.close_connection = self.closes

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[tuple[str, type[_Gateway]]]:
    handler = type("Handler", (_Gateway,), {"statuses": {}, "seen": [], "hosts": set(), "lock": threading.Lock()})
    with serving(handler) as port:
        yield f"http://127.0.0.1:{port}/local", handler


@pytest.fixture
def loops() -> Iterator[list[FanOutLoop]]:
    made: list[FanOutLoop] = []
    yield made
    for loop in made:
        loop.close()


def _loop(made: list[FanOutLoop], url: str, width: int = 8) -> FanOutLoop:
    made.append(FanOutLoop(Poster(url, "us-east-1"), width))
    return made[-1]


MEMBERS = [f"Conn{n}=" for n in range(6)]
FRAMES = [b"1", b"2", b"3"]


def test_every_member_gets_every_frame_in_order_over_kept_alive_connections(
    gateway: tuple[str, type[_Gateway]], loops: list[FanOutLoop]
) -> None:
    url, handler = gateway
    loop = _loop(loops, url)
    assert loop.send(MEMBERS, FRAMES, push.outcome_of) == [push.SENT] * len(MEMBERS)
    for member in MEMBERS:
        assert [body for who, body in handler.seen if who == member] == FRAMES
    assert handler.hosts == {url.split("/")[2]}  # the host SigV4 signed
    first_round = handler.connections
    assert first_round <= len(MEMBERS)
    assert loop.send(MEMBERS, [b"4"], push.outcome_of) == [push.SENT] * len(MEMBERS)
    assert handler.connections == first_round  # the next round reuses them


def test_a_gone_member_is_reported_and_sent_nothing_more(
    gateway: tuple[str, type[_Gateway]], loops: list[FanOutLoop]
) -> None:
    url, handler = gateway
    handler.statuses = {"Conn1=": [410], "Conn2=": [500, 200], "Conn3=": [500, 502]}
    outcomes = _loop(loops, url).send(MEMBERS[:4], FRAMES, push.outcome_of)
    assert outcomes == [push.SENT, push.GONE, push.SENT, push.FAILED]
    sent = {member: [body for who, body in handler.seen if who == member] for member in MEMBERS[:4]}
    assert sent["Conn1="] == [b"1"]  # gone: nothing after the 410
    assert sent["Conn2="] == [b"1", b"1", b"2", b"3"]  # a failed frame is sent once more, then the rest
    assert sent["Conn3="] == [b"1", b"1"]  # failed twice: skipped for the rest of the round


def test_a_gateway_closing_each_connection_still_gets_each_frame_once(
    gateway: tuple[str, type[_Gateway]], loops: list[FanOutLoop]
) -> None:
    url, handler = gateway
    handler.closes = True  # answers, then closes without saying so (a keep-alive timed out)
    loop = _loop(loops, url)
    assert loop.send(MEMBERS, FRAMES, push.outcome_of) == [push.SENT] * len(MEMBERS)
    assert loop.send(MEMBERS, [b"4"], push.outcome_of) == [push.SENT] * len(MEMBERS)
    for member in MEMBERS:
        assert [body for who, body in handler.seen if who == member] == [*FRAMES, b"4"]


def test_chunked_answers_are_read_to_their_end(gateway: tuple[str, type[_Gateway]], loops: list[FanOutLoop]) -> None:
    url, handler = gateway
    handler.chunked = True
    loop = _loop(loops, url)
    assert loop.send(MEMBERS, FRAMES, push.outcome_of) == [push.SENT] * len(MEMBERS)
    assert len(handler.seen) == len(MEMBERS) * len(FRAMES)


def test_no_more_connections_than_the_width(gateway: tuple[str, type[_Gateway]], loops: list[FanOutLoop]) -> None:
    url, handler = gateway
    assert _loop(loops, url, width=2).send(MEMBERS, FRAMES, push.outcome_of) == [push.SENT] * len(MEMBERS)
    assert handler.most_open <= 2
    assert len(handler.seen) == len(MEMBERS) * len(FRAMES)


def test_an_endpoint_that_does_not_answer_fails_every_member(loops: list[FanOutLoop]) -> None:
    from infra.local.ports import free_port

    loop = _loop(loops, f"http://127.0.0.1:{free_port()}/local")
    assert loop.send(MEMBERS[:3], FRAMES, push.outcome_of) == [push.FAILED] * 3


def test_fan_out_reports_gone_and_failed_members(
    gateway: tuple[str, type[_Gateway]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from chalicelib.realtime import fan_out_loop

    monkeypatch.setattr(push, "settings", lambda: SimpleNamespace(aws_region="us-east-1"))
    url, handler = gateway
    handler.statuses = {"Conn0=": [410], "Conn1=": [503]}
    try:
        outcome = push.fan_out(MEMBERS[:3], [b"1"], url)
    finally:
        fan_out_loop.forget()
    assert (outcome.gone, outcome.failed) == ({"Conn0="}, {"Conn1="})


def test_a_round_that_outlives_its_time_is_abandoned(monkeypatch: pytest.MonkeyPatch, loops: list[FanOutLoop]) -> None:
    import socket

    from chalicelib.realtime import fan_out_loop

    monkeypatch.setattr(fan_out_loop, "ROUND_TIMEOUT_S", 0.3)
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        loop = _loop(loops, f"http://127.0.0.1:{silent.getsockname()[1]}/local")
        with pytest.raises(TimeoutError):
            loop.send(MEMBERS, FRAMES, push.outcome_of)
        deadline = time.monotonic() + 5
        while loop._open and time.monotonic() < deadline:  # the cancellation runs on the loop's thread
            time.sleep(0.01)
        assert loop._open == 0  # every connection of the abandoned round is closed


def test_every_frame_gets_through_a_pool_narrower_than_the_room_whose_connections_all_go_stale(
    gateway: tuple[str, type[_Gateway]], loops: list[FanOutLoop]
) -> None:
    url, handler = gateway
    handler.closes = True  # every kept connection turns out closed: each frame after the first is a replacement
    loop = _loop(loops, url, width=1)  # fewer connections than members: a replacement finds the pool full
    started = time.monotonic()
    assert loop.send(MEMBERS[:3], FRAMES, push.outcome_of) == [push.SENT] * 3
    assert time.monotonic() - started < 5  # a replacement never waits for a slot that idle connections hold
    for member in MEMBERS[:3]:
        assert [body for who, body in handler.seen if who == member] == FRAMES
