"""Where committed domain events go: consumers (rooms, webhooks) register here where the app is wired.

The domain records events and knows none of their consumers. A sink is a factory called once per
write transaction with its connection; what it returns hears each recorded batch inside the
transaction (`recorded`, e.g. the webhook outbox's inserts) and, once the transaction has committed,
`committed` (e.g. the room message). `committed` never undoes the write: whatever it fails to do, the
consumer's own sweep does later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import psycopg

    from chalicelib.domain.access import AccessLoss
    from chalicelib.domain.changes import DomainEvent


class SinkTransaction(Protocol):
    """A sink's part in one write transaction."""

    def recorded(self, events: Sequence[DomainEvent], *, live: bool) -> None:
        """Inside the writer's transaction; `live` is False for events stored as already published
        (room members are told by a summary instead)."""

    def pending(self) -> bool:
        """Whether `committed` has anything to do."""

    def committed(self) -> Callable[[], None] | None:
        """After the commit; never raises (the consumer's sweep catches up). A part that waits on the
        network may start it (write its request) and return what finishes it (reads the answer), also
        never raising: every part starts before any finishes, so a write waits for the slowest."""


@runtime_checkable
class AccessListener(Protocol):
    """A sink that also hears, inside the transaction, who loses access when it commits
    (domain/access.py `lose`): a removed member, a revoked key."""

    def lost(self, loss: AccessLoss) -> None: ...


Sink = Callable[["psycopg.Connection[dict[str, Any]]"], SinkTransaction]


class NotWired(RuntimeError):
    """A write before any sink was registered: its events would reach no consumer."""


_registered: dict[str, Sink] = {}


def register(name: str, sink: Sink) -> None:
    """Add (or replace, by name) a consumer of every later write. Its in-transaction part hears events
    in registration order; the after-commit parts start in that order, then finish (domain/changes.py)."""
    _registered[name] = sink


def unregister(name: str) -> None:
    _registered.pop(name, None)


def open_all(conn: psycopg.Connection[dict[str, Any]]) -> dict[str, SinkTransaction]:
    """Each registered sink's part in the transaction on `conn`, by name."""
    if not _registered:
        # Fail loudly: a write nobody hears would lose its webhook deliveries for good.
        raise NotWired("no domain event sinks are registered: call chalicelib.wiring.install() first")
    return {name: sink(conn) for name, sink in _registered.items()}
