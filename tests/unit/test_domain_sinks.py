"""The domain records events and hands them to registered sinks: in the transaction, then after commit."""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain import changes, sinks
from chalicelib.domain.caller import Caller
from chalicelib.domain.changes import DomainEvent, Recorder
from chalicelib.store.sql import query

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "a0000000-0000-0000-0000-000000000001"
SESSION = "5e000000-0000-0000-0000-000000000001"
FEATURES = ("chalicelib.realtime", "chalicelib.webhooks")


class FakeConnection:
    """Answers insert_domain_event with increasing ids; records what was asked."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._row: dict[str, Any] = {}

    def execute(self, sql: str, params: dict[str, Any]) -> FakeConnection:
        assert sql == query("insert_domain_event")
        self.calls.append(params["type"])
        self._row = {"id": len(self.calls), "created_at": dt.datetime.now(dt.UTC)}
        return self

    def fetchone(self) -> dict[str, Any]:
        return self._row


class RecordingSink:
    """A sink's transaction part that writes down what it heard, and when."""

    def __init__(self, log: list[tuple[str, Any]], name: str, conn: Any, fail_after_commit: bool = False) -> None:
        self.log, self.name, self.conn, self.fail = log, name, conn, fail_after_commit

    def recorded(self, events: Sequence[DomainEvent], *, live: bool) -> None:
        self.log.append((f"{self.name}.recorded", ([e.type for e in events], live, len(self.conn.calls))))

    def pending(self) -> bool:
        return True

    def committed(self) -> None:
        self.log.append((f"{self.name}.committed", None))
        if self.fail:
            raise RuntimeError("the emulator is down")


@pytest.fixture()
def only(request: pytest.FixtureRequest) -> Iterator[list[tuple[str, Any]]]:
    """Replace the registered sinks with recording ones (named by the test's parameter) for one test."""
    saved = dict(sinks._registered)
    log: list[tuple[str, Any]] = []
    sinks._registered.clear()
    for name, fails in getattr(request, "param", [("first", False)]):
        sinks.register(name, lambda conn, name=name, fails=fails: RecordingSink(log, name, conn, fails))
    yield log
    sinks._registered.clear()
    sinks._registered.update(saved)


def caller() -> Caller:
    return Caller(account_id=ACCOUNT, role="owner", user_id="u0000000-0000-0000-0000-000000000001")


def test_a_recorded_event_reaches_the_sink_inside_the_transaction_then_after_commit(only: list[Any]) -> None:
    conn = FakeConnection()
    recorder = Recorder(conn, caller())  # type: ignore[arg-type]
    event = recorder.record("lap", "create", {"id": "l1", "lapTimeMs": 90_000}, session_id=SESSION)
    recorder.record("issue", "update", {"id": "i1"})
    assert (event.type, event.entity_id, event.session_id, event.actor) == (
        "lap.create",
        "l1",
        SESSION,
        {"userId": "u0000000-0000-0000-0000-000000000001"},
    )
    # Each event is handed over right after its row is inserted, before anything is committed.
    assert only == [("first.recorded", (["lap.create"], True, 1)), ("first.recorded", (["issue.update"], True, 2))]
    changes.after_commit(recorder)
    assert only[-1] == ("first.committed", None)
    assert [e.type for e in recorder.events] == ["lap.create", "issue.update"]


@pytest.mark.parametrize("only", [[("rooms", True), ("webhooks", False)]], indirect=True)
def test_a_failing_after_commit_part_does_not_stop_the_next_sink(only: list[Any]) -> None:
    recorder = Recorder(FakeConnection(), caller())  # type: ignore[arg-type]
    recorder.record("lap", "create", {"id": "l1"}, session_id=SESSION)
    changes.after_commit(recorder)  # never raises: the write is committed
    steps = [step for step, _ in only]
    assert steps[:2] == ["rooms.recorded", "webhooks.recorded"]
    assert steps[2:] == ["rooms.committed", "webhooks.committed"]


def test_after_commit_parts_all_start_before_any_finishes_in_the_writer_thread() -> None:
    import threading

    steps: list[tuple[str, str]] = []

    class Part:
        """A network part: `committed` writes its request, the call it returns reads the answer."""

        def __init__(self, name: str, work: bool) -> None:
            self.name, self.work = name, work

        def recorded(self, events: Sequence[DomainEvent], *, live: bool) -> None:
            pass

        def pending(self) -> bool:
            return self.work

        def committed(self) -> Any:
            steps.append((f"{self.name} sent", threading.current_thread().name))
            return lambda: steps.append((f"{self.name} answered", threading.current_thread().name))

    class Blocking(Part):
        """A part done within `committed` (closing sockets): nothing left to finish."""

        def committed(self) -> None:
            steps.append((f"{self.name} done", threading.current_thread().name))

    saved = dict(sinks._registered)
    sinks._registered.clear()
    try:
        for name, work in (("access", False), ("rooms", True), ("webhooks", True)):
            sinks.register(name, lambda conn, name=name, work=work: Part(name, work))
        changes.after_commit(Recorder(FakeConnection(), caller()))  # type: ignore[arg-type]
        writer = threading.current_thread().name
        # Both requests are in flight before either answer is read: the write waits for the slower.
        assert [step for step, _ in steps] == ["rooms sent", "webhooks sent", "rooms answered", "webhooks answered"]
        assert {thread for _, thread in steps} == {writer}  # no thread handoff
        steps.clear()
        sinks.register("access", lambda conn: Blocking("access", True))
        changes.after_commit(Recorder(FakeConnection(), caller()))  # type: ignore[arg-type]
        assert [step for step, _ in steps] == [
            "access done",
            "rooms sent",
            "webhooks sent",
            "rooms answered",
            "webhooks answered",
        ]
        steps.clear()
        sinks.register("access", lambda conn: Part("access", False))
        sinks.register("webhooks", lambda conn: Part("webhooks", False))
        changes.after_commit(Recorder(FakeConnection(), caller()))  # type: ignore[arg-type]
        assert [step for step, _ in steps] == ["rooms sent", "rooms answered"]  # access and webhooks had nothing to do
        steps.clear()
        sinks.register("rooms", lambda conn: Part("rooms", False))
        changes.after_commit(Recorder(FakeConnection(), caller()))  # type: ignore[arg-type]
        assert steps == []
    finally:
        sinks._registered.clear()
        sinks._registered.update(saved)


def test_a_write_before_wiring_is_refused_not_lost(only: list[Any]) -> None:
    sinks._registered.clear()
    with pytest.raises(sinks.NotWired):
        Recorder(FakeConnection(), caller())  # type: ignore[arg-type]


def test_the_app_wires_access_then_rooms_then_webhooks() -> None:
    import app  # noqa: F401  (wiring happens at import, as at cold start)

    assert list(sinks._registered) == ["access", "rooms", "webhooks"]


def _imports(path: Path) -> Iterator[str]:
    """Every module a file imports, at the top, inside functions or under TYPE_CHECKING."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_no_domain_module_imports_rooms_or_webhooks() -> None:
    domain = sorted((ROOT / "chalicelib" / "domain").rglob("*.py"))
    assert len(domain) > 10
    reaching_up = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in domain
        for name in _imports(path)
        if any(name == feature or name.startswith(feature + ".") for feature in FEATURES)
    }
    assert not reaching_up, "the domain records events; consumers register as sinks in chalicelib/wiring.py"


def test_the_import_rule_sees_every_kind_of_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from chalicelib.realtime.push import x\n"
        "def f():\n    from chalicelib import webhooks\n    import chalicelib.realtime.broadcast\n"
    )
    found = set(_imports(probe))
    assert {"chalicelib.realtime.push", "chalicelib.webhooks", "chalicelib.realtime.broadcast"} <= found


def test_importing_the_whole_domain_loads_neither_rooms_nor_webhooks() -> None:
    import subprocess
    import sys

    code = (
        "import importlib, pkgutil, sys, chalicelib.domain as d\n"
        "for m in pkgutil.walk_packages(d.__path__, 'chalicelib.domain.'): importlib.import_module(m.name)\n"
        f"print(sorted(k for k in sys.modules if k.startswith({FEATURES!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout  # not even through another package
