"""The whole local stack in one foreground process: `python -m infra.local dev`.

Starts (unless the environment points elsewhere) the embedded PostgreSQL and the AWS emulator,
provisions tables/queues/buckets, migrates, seeds, then serves the HTTP API, the WebSocket
gateway, the SQS poller, the scheduler, the web client and the docs until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.local import state
from infra.local.ports import PortInUse, ensure_free, free_port

LOG = logging.getLogger("race.stack")
HOST = "127.0.0.1"
DEMO_EMAIL = "jamie@apexracing.io"


@dataclass(frozen=True)
class Ports:
    api: int
    ws: int
    web: int
    docs: int

    @classmethod
    def from_env(cls) -> Ports:
        return cls(**{field: _port(variable, default) for field, (variable, default) in _PORT_VARIABLES.items()})

    def by_variable(self) -> dict[str, int]:
        return {variable: getattr(self, field) for field, (variable, _) in _PORT_VARIABLES.items()}


_PORT_VARIABLES = {
    "api": ("API_PORT", 8000),
    "ws": ("WS_PORT", 8001),
    "web": ("WEB_PORT", 6166),
    "docs": ("DOCS_PORT", 6167),
}


def _port(variable: str, default: int) -> int:
    text = os.environ.get(variable, "").strip() or str(default)
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise PortInUse(f"{variable}={text!r} is not a port number (1-65535)")
    return int(text)


def database_url(directory: Path, stack: ExitStack) -> str:
    """DATABASE_URL when set; else the embedded cluster (started here, stopped on exit)."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    from infra.local.postgres import EmbeddedPostgres

    postgres = EmbeddedPostgres(directory)
    url = postgres.start()
    stack.callback(postgres.stop)
    return url


def aws_endpoint(directory: Path, stack: ExitStack) -> str:
    """AWS_ENDPOINT_URL when set (e.g. LocalStack); else moto server on :4566 (stopped on exit)."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        return os.environ["AWS_ENDPOINT_URL"]
    from infra.local.emulator import DEFAULT_PORT, Emulator

    (directory / "logs").mkdir(parents=True, exist_ok=True)
    emulator = Emulator(
        port=int(os.environ.get("EMULATOR_PORT", DEFAULT_PORT)), log_path=directory / "logs" / "emulator.log"
    )
    url = emulator.start()
    stack.callback(emulator.stop)
    return url


def prepare(directory: Path, stack: ExitStack, *, seed: bool = True) -> dict[str, str]:
    """Bring up the dependencies, provision, migrate and seed; return the app's environment."""
    from chalicelib.db import migrate
    from chalicelib.db import seed as seeding
    from infra.local.provision import provision

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(name, value)
    env = {
        "STAGE": os.environ.get("STAGE", "local"),
        "JWT_SECRET": state.jwt_secret(directory),
        "WEBHOOK_KEY": state.webhook_key(directory),
        "DATABASE_URL": database_url(directory, stack),
        "AWS_ENDPOINT_URL": aws_endpoint(directory, stack),
    }
    provision(env["AWS_ENDPOINT_URL"])
    # The embedded cluster is local by construction; a DATABASE_URL gets a stage only from STAGE.
    explicit_stage = os.environ.get("STAGE") or (None if os.environ.get("DATABASE_URL") else "local")
    migrate.migrate(env["DATABASE_URL"], log=True, stage=explicit_stage)
    if seed and env["STAGE"] != "prod":
        try:
            seeding.seed(env["DATABASE_URL"], env["STAGE"], os.environ.get("SEED_PASSWORD") or seeding.DEFAULT_PASSWORD)
        except seeding.SeedRefused as exc:  # e.g. DATABASE_URL names a database recorded as prod
            LOG.warning("not seeding: %s", exc)
    return env


# The AWS services the app's code asks chalicelib.store.aws for.
APP_SERVICES = ("dynamodb", "s3", "ses", "sqs")


def warm_clients() -> None:
    """Make the app's AWS clients before serving. Each functions' container makes its own in AWS;
    here every function shares one process, and the first to ask under load (the minute sweep's
    first DynamoDB call, in bench_load) spent ~1 s loading the service model at this process's
    interpreter lock, stalling every request in flight and the pushes of their writes. Then what
    the process has loaded is frozen out of the collector's full passes (chalicelib/heap.py)."""
    from chalicelib.heap import freeze_loaded
    from chalicelib.store.aws import client

    for service in APP_SERVICES:
        client(service)
    freeze_loaded(collect_first=True)


def serve(directory: Path, ports: Ports, env: dict[str, str], stack: ExitStack) -> dict[str, str]:
    """Start every server of the stack in this process; return their URLs."""
    import boto3

    from chalicelib.resources import ROOM_QUEUE
    from infra.local import static
    from infra.local.api_process import ApiProcesses, api_processes
    from infra.local.gateway_process import GatewayProcess
    from infra.local.maintenance import Maintenance
    from infra.local.poller_process import PollerProcess
    from infra.local.scheduler import Scheduler
    from infra.local.sqs_poller import SqsPoller

    management_port = free_port()
    env["WS_MANAGEMENT_URL"] = f"http://{HOST}:{management_port}/local"
    os.environ.update(env)
    from chalicelib.config import settings

    settings()  # fail fast (e.g. "JWT_SECRET is required") before anything listens
    from chalicelib.webhooks import sealing

    if sealed := sealing.seal_all_plaintext():  # and when WEBHOOK_KEY is not the key that sealed the secrets
        LOG.info("sealed %d webhook secrets stored in plaintext", sealed)
    from app import app

    warm_clients()
    # The WebSocket gateway in a process of its own, as API Gateway runs apart from the functions: a
    # room fan-out's management-API POSTs do not wait for the API's requests at this process's
    # interpreter lock (docs/decisions.md). It runs the app's WebSocket handlers itself.
    ws = GatewayProcess(HOST, ports.ws, management_port)
    ws.start_in_thread()
    stack.callback(ws.stop)
    # The HTTP API in processes of its own, as Lambda runs the API function apart from the queue
    # workers and the scheduler that stay here: a lap write does not wait for webhook deliveries at
    # this process's interpreter lock (docs/decisions.md).
    api = ApiProcesses(HOST, ports.api, api_processes())
    api.start_in_thread()
    stack.callback(api.stop)
    # The room publisher in a process of its own, as Lambda runs it apart from the API: its fan-out
    # (a management-API POST per member and message) does not wait for the API's requests' turn
    # at this process's interpreter lock (docs/decisions.md). The other queues' workers stay here.
    publisher = PollerProcess({ROOM_QUEUE.name})
    publisher.start_in_thread()
    stack.callback(publisher.stop)
    poller = SqsPoller(app, boto3.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"]), skip={ROOM_QUEUE.name})
    poller.start_in_thread()
    stack.callback(poller.stop)
    scheduler = Scheduler(app)
    scheduler.start_in_thread()
    stack.callback(scheduler.stop)
    Maintenance(directory, [api, ws], [poller, publisher, scheduler]).install_signals()  # `make restore` pauses us
    urls = {"api": api.url, "ws": ws.url}
    from infra.local.docs_site import build

    docs_site = directory / "docs-site"
    build(docs_site, api_url=urls["api"])  # the interactive reference sends its requests there
    for name, path, port in (("web", state.ROOT / "web", ports.web), ("docs", docs_site, ports.docs)):
        if path.is_dir():
            server = static.start_in_thread(path, HOST, port)
            stack.callback(server.server_close)
            stack.callback(server.shutdown)
            urls[name] = f"http://{HOST}:{port}"
    return urls


def dev() -> int:
    """`make dev`: everything in the foreground until Ctrl-C."""
    directory = state.state_dir()
    if sys.stdout.isatty():
        # Foreground runs also keep their log for `make logs` (./setup.sh redirects to it already).
        from infra.local.logs import Tee

        log_file = open(directory / "logs" / "stack.log", "a")  # noqa: SIM115 - lives as long as the process
        sys.stdout = Tee(sys.stdout, log_file)
        sys.stderr = Tee(sys.stderr, log_file)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:  # before anything starts: a busy port is named with its variable, not a traceback
        ports = Ports.from_env()
        ensure_free(HOST, ports.by_variable())
    except PortInUse as exc:
        print(f"make dev: {exc}", file=sys.stderr)
        return 2
    from chalicelib.config import ConfigError

    with ExitStack() as stack:
        env = prepare(directory, stack)
        try:
            urls = serve(directory, ports, env, stack)
        except ConfigError as exc:  # e.g. a WEBHOOK_KEY that did not seal this database's secrets
            print(f"make dev: {exc}", file=sys.stderr)
            return 2
        state.write_record(
            directory,
            "stack",
            {
                "pid": os.getpid(),
                "urls": urls,
                "databaseUrl": env["DATABASE_URL"],
                "awsEndpointUrl": env["AWS_ENDPOINT_URL"],
            },
        )
        stack.callback(lambda: (directory / "stack.json").unlink(missing_ok=True))
        password_hint = "$SEED_PASSWORD" if os.environ.get("SEED_PASSWORD") else "sebring12h"
        print("\nRace Platform is up:", flush=True)
        for name, url in urls.items():
            print(f"  {name:<5} {url}", flush=True)
        login = f"  demo login: {DEMO_EMAIL} / {password_hint}\n"
        if sys.__stdout__ is not None and sys.__stdout__.isatty():
            # The password goes to the terminal only: the log file never holds a credential.
            sys.__stdout__.write(login)
            sys.__stdout__.flush()
        else:
            print(f"  demo login: {DEMO_EMAIL} (password: SEED_PASSWORD, default in README.md)", flush=True)
        print("  Ctrl-C stops everything.\n", flush=True)
        stop.wait()
        print("stopping...", flush=True)
    return 0
