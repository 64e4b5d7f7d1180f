"""One write to a session room of 50 and of 200 members: time until every member has the push, against a
raw `websockets` server broadcasting the same message to as many clients (the floor).

Ours: the stack runs in a child process (its gateways and the app, so clients do not share its GIL);
MEMBERS WebSocket clients (asyncio, in this process) join one session; each round POSTs a board card to
that session through the HTTP gateway and the clock runs from the request until the last member has
received `board_card.create` (PostgreSQL commit, the room queue (SQS FIFO) and its poller, numbering
and logging in DynamoDB by the room publisher, then the fan-out through the @connections management API).
Floor: a bare `websockets` server in a child process; a control client sends one frame and the server
`broadcast()`s the same push frame to the MEMBERS other clients; same clock.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import time
from typing import Any

import requests
from websockets.asyncio.client import ClientConnection, connect

from bench.common import emit, percentile, stack_in_subprocess, token_for

TARGETS = {"fanout_50_members_p99": "<= 150 ms", "fanout_200_members_p99": "(reported)"}
ROOMS = (50, 200)
# No reason is kept for fanout_50_members_p99: since the round reads neither the members (roster) nor
# the page just logged, and PostToConnection skips boto3's client, it is within its target (docs/decisions.md).
WHY_BEHIND: dict[str, str] = {}
ROUNDS = int(os.environ.get("BENCH_FANOUT_ROUNDS", "200"))  # a p99 of 30 rounds is just their maximum
WARMUP_ROUNDS = 3
JOIN_WAVE = 10


class Room:
    """MEMBERS clients of one room; `arrived(marker)` resolves when all of them have the push."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.clients: list[ClientConnection] = []
        self.readers: list[asyncio.Task[None]] = []
        self.waiting: dict[str, tuple[int, asyncio.Future[float]]] = {}
        self.frame = b""

    def expect(self, marker: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[marker] = (0, future)
        return future

    def seen(self, marker: str, raw: str | bytes) -> None:
        count, future = self.waiting.get(marker, (0, None))  # type: ignore[assignment]
        if future is None:
            return
        count += 1
        self.waiting[marker] = (count, future)
        if count == self.size and not future.done():
            self.frame = raw.encode() if isinstance(raw, str) else raw
            future.set_result(time.perf_counter())

    async def read(self, ws: ClientConnection, marker_of: Any) -> None:
        async for raw in ws:
            marker = marker_of(raw)
            if marker is not None:
                self.seen(marker, raw)

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self.clients), return_exceptions=True)


def push_marker(raw: str | bytes) -> str | None:
    """The card title of a board_card.create push (presence and other frames are skipped unparsed)."""
    text = raw if isinstance(raw, str) else raw.decode()
    if not text.startswith('{"type":"board_card.create"'):
        return None
    return str(json.loads(text)["data"]["title"])


async def ours(api_url: str, ws_url: str, token: str, session_id: str, size: int) -> tuple[list[float], bytes]:
    room = Room(size)

    async def join() -> None:
        ws = await connect(f"{ws_url}/?token={token}", max_size=None, max_queue=None)
        await ws.send(json.dumps({"action": "join", "sessionId": session_id}))
        while json.loads(await ws.recv()).get("type") != "joined":
            pass
        room.clients.append(ws)
        room.readers.append(asyncio.create_task(room.read(ws, push_marker)))

    for start in range(0, size, JOIN_WAVE):  # people arrive a few at a time; each join is announced
        await asyncio.gather(*(join() for _ in range(min(JOIN_WAVE, size - start))))
    print(f"# {size} members joined", flush=True)
    http = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    loop = asyncio.get_running_loop()
    times: list[float] = []
    try:
        for n in range(WARMUP_ROUNDS + ROUNDS):
            marker = f"fanout-{size}-{n}"
            arrived = room.expect(marker)
            started = time.perf_counter()
            answer = await loop.run_in_executor(
                None,
                lambda m=marker: http.post(  # type: ignore[misc]
                    f"{api_url}/board-cards", json={"sessionId": session_id, "title": m}, headers=headers, timeout=30
                ),
            )
            if answer.status_code != 201:
                raise RuntimeError(f"POST /board-cards answered {answer.status_code}: {answer.text[:200]}")
            done = await asyncio.wait_for(arrived, timeout=30)
            if n >= WARMUP_ROUNDS:
                times.append(done - started)
    finally:
        await room.close()
    return times, room.frame


FLOOR_SERVER = r"""
import asyncio, sys
from websockets.asyncio.server import broadcast, serve
clients = set()
async def handler(ws):
    first = await ws.recv()
    if first == "member":
        clients.add(ws)
        await ws.send("ok")
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)
        return
    await ws.send("ok")
    async for frame in ws:  # the control client: each frame is broadcast to every member
        broadcast(clients, frame)
async def main():
    async with serve(handler, "127.0.0.1", 0, max_size=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
asyncio.run(main())
"""


async def floor(frame: bytes, size: int) -> list[float]:
    import subprocess
    import sys

    server = subprocess.Popen(
        [sys.executable, "-c", FLOOR_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = f"ws://127.0.0.1:{int(server.stdout.readline())}"
        room = Room(size)
        template = json.loads(frame)
        for _ in range(size):
            ws = await connect(url, max_size=None, max_queue=None)
            await ws.send("member")
            await ws.recv()
            room.clients.append(ws)
            room.readers.append(asyncio.create_task(room.read(ws, push_marker)))
        control = await connect(url, max_size=None)
        await control.send("control")
        await control.recv()
        times = []
        for n in range(WARMUP_ROUNDS + ROUNDS):
            marker = f"floor-{size}-{n}"
            message = {**template, "data": {**template["data"], "title": marker}}
            arrived = room.expect(marker)
            started = time.perf_counter()
            await control.send(json.dumps(message, separators=(",", ":")))
            done = await asyncio.wait_for(arrived, timeout=30)
            if n >= WARMUP_ROUNDS:
                times.append(done - started)
        await control.close()
        await room.close()
        return times
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=30)


def session_for(api_url: str, token: str, size: int) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    event = requests.get(f"{api_url}/events", headers=headers, timeout=30).json()["items"][0]
    answer = requests.post(
        f"{api_url}/sessions",
        json={"eventId": event["id"], "name": f"Fan-out {size}", "type": "practice"},
        headers=headers,
        timeout=30,
    )
    answer.raise_for_status()
    return str(answer.json()["id"])


def main() -> None:
    os.environ.setdefault("RACE_METRICS", "off")
    with stack_in_subprocess() as remote:
        stack = remote.stack
        token = token_for(stack)
        for size in ROOMS:
            session_id = session_for(stack.api_url, token, size)
            ours_s, frame = asyncio.run(ours(stack.api_url, stack.ws_url, token, session_id, size))
            floor_s = asyncio.run(floor(frame, size))
            note = (
                f"write -> last of {size} members has the push, {ROUNDS} rounds; floor: raw websockets "
                f"broadcast of the same {len(frame)}-byte frame; lower is better"
            )
            for p in (50, 99):
                emit(
                    f"fanout_{size}_members_p{p}",
                    percentile(ours_s, p) * 1000,
                    percentile(floor_s, p) * 1000,
                    "ms",
                    note,
                )


if __name__ == "__main__":
    multiprocessing.freeze_support()
    main()
