"""Shared benchmark helpers: a private local stack, JWT minting, BENCH line output and percentiles."""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from chalicelib import caches

REPO = Path(__file__).resolve().parents[1]
JWT_SECRET = "bench-secret-" + "b" * 40
WEBHOOK_KEY = base64.b64encode(b"bench-webhook-data-key-32-bytes!").decode("ascii")
PASSWORD = "sebring12h"
JAMIE = "jamie@apexracing.io"
DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@dataclass(frozen=True)
class Stack:
    api_url: str
    ws_url: str
    database_url: str
    aws_endpoint_url: str
    jwt_secret: str
    api_pid: int = 0  # the (first) process serving the HTTP API, for RSS readings

    def env(self) -> dict[str, str]:
        """The environment a child process needs to run the app against this stack."""
        return {
            **DUMMY_AWS,
            "STAGE": "local",
            "JWT_SECRET": self.jwt_secret,
            "WEBHOOK_KEY": WEBHOOK_KEY,
            "DATABASE_URL": self.database_url,
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
            "OUTBOUND_ALLOW": os.environ.get("OUTBOUND_ALLOW", ""),  # the benchmark's receivers (loopback)
            "PYTHONPATH": str(REPO),
        }


reset_caches = caches.forget  # every per-container cache, forgotten: the next request reads the environment


environment = caches.cold_start  # set variables for the block (caches forgotten), restore them after
_env = environment  # earlier names, kept for callers
_reset_caches = reset_caches


@contextmanager
def backing_services(*, seed: bool = True) -> Iterator[tuple[str, str]]:
    """A private PostgreSQL (migrated, optionally seeded) and a provisioned moto: (database_url, aws_url)."""
    from chalicelib.db.migrate import migrate
    from infra.local.emulator import Emulator
    from infra.local.ports import free_port
    from infra.local.postgres import EmbeddedPostgres
    from infra.local.provision import provision

    tmp = Path(tempfile.mkdtemp(prefix="race-bench-"))
    cluster = EmbeddedPostgres(tmp / "pg", fast=True)
    emulator = Emulator(port=free_port(), log_path=tmp / "moto.log")
    try:
        with environment(DUMMY_AWS):
            cluster.start()
            database_url = cluster.create_database("race_bench")
            migrate(database_url, log=False)
            if seed:
                from chalicelib.db.seed import seed as load_seed

                load_seed(database_url, "local", PASSWORD)
            aws_url = emulator.start()
            provision(aws_url)
            yield database_url, aws_url
    finally:
        emulator.stop()
        cluster.stop()
        cluster.wipe()
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def local_stack(*, seed: bool = True) -> Iterator[Stack]:
    """The whole platform on 127.0.0.1 as `make dev` runs it (the HTTP API, the WebSocket gateway and
    the room publisher in processes of their own; the caller runs any other worker); stopped and
    wiped on exit."""
    from chalicelib.resources import ROOM_QUEUE
    from infra.local.api_process import ApiProcesses, api_processes
    from infra.local.gateway_process import GatewayProcess
    from infra.local.poller_process import PollerProcess
    from infra.local.ports import free_port

    with backing_services(seed=seed) as (database_url, aws_url):
        management_port = free_port()
        env = {
            **DUMMY_AWS,
            "STAGE": "local",
            "JWT_SECRET": JWT_SECRET,
            "WEBHOOK_KEY": WEBHOOK_KEY,
            "DATABASE_URL": database_url,
            "AWS_ENDPOINT_URL": aws_url,
            "WS_MANAGEMENT_URL": f"http://127.0.0.1:{management_port}/local",
        }
        with environment(env):
            reset_caches()
            from infra.local.stack import warm_clients

            warm_clients()  # as make dev does, for the workers the caller runs here

            ws = GatewayProcess("127.0.0.1", free_port(), management_port)
            ws.start_in_thread()
            # Room pushes go out downstream of the commit, from a process of their own as Lambda runs them.
            publisher = PollerProcess({ROOM_QUEUE.name})
            publisher.start_in_thread()
            try:
                api = ApiProcesses("127.0.0.1", 0, api_processes())  # as make dev runs it
                api.start_in_thread()
                try:
                    yield Stack(api.url, ws.url, database_url, aws_url, JWT_SECRET, api.children[0].pid)
                finally:
                    api.stop()
            finally:
                publisher.stop()
                ws.stop()
                reset_caches()


@dataclass(frozen=True)
class RemoteStack:
    stack: Stack
    pid: int  # the process that runs the stack (its API, gateway and publisher are its children)


@contextmanager
def stack_in_subprocess(*, seed: bool = True) -> Iterator[RemoteStack]:
    """local_stack() run by a child process (`python -m bench.common serve`), so its RSS is measurable."""
    args = [sys.executable, "-m", "bench.common", "serve"] + ([] if seed else ["--no-seed"])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(args, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.startswith("{"):
            raise RuntimeError(f"the stack process did not start (exit {child.wait(timeout=30)})")
        yield RemoteStack(Stack(**json.loads(line)), child.pid)
    finally:
        if child.stdin:
            child.stdin.close()  # the child stops its stack when stdin closes
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def token_for(stack: Stack, email: str = JAMIE) -> str:
    """A one-hour JWT for a seeded (or created) user, minted directly (logins are rate limited)."""
    import psycopg

    from chalicelib.domain.tokens import issue_jwt

    with psycopg.connect(stack.database_url) as conn:
        row = conn.execute(
            "SELECT u.id, m.account_id, m.role FROM users u JOIN memberships m ON m.user_id = u.id "
            "WHERE lower(u.email) = lower(%s)",
            (email,),
        ).fetchone()
    if row is None:
        raise LookupError(f"no user {email}")
    return issue_jwt(stack.jwt_secret, user_id=str(row[0]), account_id=str(row[1]), role=row[2], ttl_s=3600)


def account_id_for(stack: Stack, email: str = JAMIE) -> str:
    import psycopg

    with psycopg.connect(stack.database_url) as conn:
        row = conn.execute(
            "SELECT m.account_id FROM users u JOIN memberships m ON m.user_id = u.id WHERE lower(u.email) = lower(%s)",
            (email,),
        ).fetchone()
    if row is None:
        raise LookupError(f"no user {email}")
    return str(row[0])


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    latencies_s: list[float]
    failures: int  # non-2xx answers or broken connections

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def http_load(
    base_url: str,
    paths: Sequence[str],
    *,
    headers: dict[str, str] | None = None,
    threads: int = 4,
    seconds: float = 4.0,
    warmup_s: float = 0.5,
) -> LoadResult:
    """GET `paths` (round robin) over one keep-alive connection per thread for `seconds` after a warm-up;
    counts answered 2xx requests. A light client (http.client) so the server, not us, is measured."""
    import http.client
    import threading
    import time
    from urllib.parse import urlsplit

    target = urlsplit(base_url)
    host, port = target.hostname or "127.0.0.1", target.port or 80
    sent_headers = {"Accept": "application/json", **(headers or {})}
    start_at = time.monotonic() + warmup_s
    stop_at = start_at + seconds
    latencies: list[list[float]] = [[] for _ in range(threads)]
    failures = [0] * threads

    def worker(n: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        i = n
        while True:
            began = time.monotonic()
            if began >= stop_at:
                break
            try:
                conn.request("GET", paths[i % len(paths)], headers=sent_headers)
                response = conn.getresponse()
                response.read()
                ok = 200 <= response.status < 300
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
            i += 1
            if began >= start_at:
                if ok:
                    latencies[n].append(time.monotonic() - began)
                else:
                    failures[n] += 1
        conn.close()

    workers = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    flat = [x for per in latencies for x in per]
    return LoadResult(len(flat), seconds, flat, sum(failures))


# What a process is, by its command line: the first match wins (the emulator's `-c` script names
# other modules of infra.local too).
_PROCESS_KINDS = (
    (b"moto_patches", "emulator"),
    (b"postgres", "postgres"),
    (b"infra.local.api_process", "api"),
    (b"infra.local.poller_process", "publisher"),
    (b"infra.local.gateway_process", "gateway"),
)


def cpu_seconds() -> dict[str, float]:
    """CPU time used so far by the emulator, PostgreSQL, the stack's API, room publisher and gateway
    processes, and this process with its other children (`us`: a benchmark's clients and the workers
    it runs itself) (Linux /proc; {} elsewhere), to say which part of the machine a figure was
    bounded by."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    totals = {kind: 0.0 for _, kind in _PROCESS_KINDS} | {"us": 0.0}
    me = os.getpid()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes()
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        kind = next((kind for marker, kind in _PROCESS_KINDS if marker in cmdline), None)
        if kind is None and int(fields[1]) == me:  # fields[1]: the parent's pid
            kind = "us"
        if kind is not None:
            totals[kind] += used
    # This process, and the children it has already waited for (clients that ended: /proc has
    # forgotten them, the kernel has added their time to ours).
    own = os.times()
    totals["us"] += own.user + own.system + own.children_user + own.children_system
    return totals if Path("/proc/self").exists() else {}


def cpu_split(before: dict[str, float], wall_s: float) -> str:
    """'emulator 1.2 s, postgres 0.4 s, us 0.9 s of CPU in 1.5 s' since `before`."""
    after = cpu_seconds()
    parts = ", ".join(f"{name} {after[name] - before.get(name, 0.0):.2f} s" for name in after)
    return f"{parts} of CPU in {wall_s:.2f} s" if parts else "CPU split unavailable"


def cpu_shares(before: dict[str, float], wall_s: float) -> str:
    """'api 88%, postgres 17%, ...' of one core since `before`, busiest first (a process that did
    nothing is left out)."""
    after = cpu_seconds()
    shares = sorted(((after[name] - before.get(name, 0.0)) / wall_s * 100, name) for name in after)
    parts = ", ".join(f"{name} {share:.0f}%" for share, name in reversed(shares) if share >= 0.5)
    return f"CPU of one core: {parts}" if parts else "CPU split unavailable"


def fmt(value: float) -> str:
    """2-3 significant digits for small values, whole numbers from 100 up."""
    if value == 0 or not math.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return str(round(value))
    digits = 3 - math.floor(math.log10(abs(value))) - 1
    return f"{round(value, digits):.{max(digits, 0)}f}"


def emit(name: str, ours: float, floor: float, unit: str, note: str = "") -> str:
    """Print and return `BENCH <name> ours=<v><unit> floor=<v><unit> ratio=<ours/floor>[ # note]`."""
    ratio = ours / floor if floor else float("inf")
    line = f"BENCH {name} ours={fmt(ours)}{unit} floor={fmt(floor)}{unit} ratio={fmt(ratio)}"
    if note:
        line += f" # {note}"
    print(line, flush=True)
    return line


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) with linear interpolation between the closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _serve(seed: bool) -> None:
    with local_stack(seed=seed) as stack:
        print(json.dumps(asdict(stack)), flush=True)
        sys.stdin.read()  # until the parent closes our stdin


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    _serve(seed="--no-seed" not in sys.argv)
