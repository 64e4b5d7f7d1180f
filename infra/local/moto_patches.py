"""Fixes to moto's speed (never its semantics) where the local stack would otherwise measure moto, not us.

Applied only inside the emulator's own process (infra/local/emulator.py); each patch keeps what the
AWS service promises and removes a cost that grows with the data held, which AWS does not have:

- SQS: every message is asked whether it is visible or delayed through a datetime round trip, for
  the whole queue on every send and receive (a queue holding 1,000 messages took 45 ms a send).
  The same comparisons on `time.time()` make a send ~3 ms whatever the queue holds.
- moto lists its own package directory (~180 stat calls) twice to route every request: once is enough.
- moto converts AWS names to attribute names a character at a time on every request (an SQS send
  read the queue's attributes that way twice: a third of its CPU): remembered once converted. With
  it, moto's CPU per SendMessageBatch went 1.18 -> 0.76 ms, per ReceiveMessage 1.92 -> 1.19 ms.
- `keep_connections_alive`: moto's server closed the connection after every answer (each AWS call
  a new TCP connection and a new thread); it now keeps HTTP/1.1 connections open as AWS does, and
  makes each answer whole before writing it (`answered_whole`), so a failure never leaves half an
  answer on an open connection.
- DynamoDB TransactWriteItems deep-copies the table once per action so it can roll back (a 100-action
  transaction on a table of a few thousand items took ~850 ms). Checking every condition first and
  writing only when all hold gives the same all-or-nothing outcome without any copy (the emulator
  runs one DynamoDB request at a time, so nothing changes between the check and the writes).
- DynamoDB Query on the table's own key lists every item of the table to keep one partition's (a room
  log grows by two items per lap: after 2,000 laps a 3-member Query walked ~4,000 items, and in
  webhook_bulk moto spent a quarter of its CPU there). The same Query over its partition only.
- DynamoDB parses a condition expression again for every action that names one: a 99-action room-log
  transaction parsed the same two conditions 99 times (a fifth of moto's CPU in webhook_bulk), and
  its request validation parsed each once more (a quarter of the transaction's CPU). Parsed once per
  (expression, names, values); the parsed condition is evaluated afresh each time.

The emulator's garbage collector makes no full pass while it is busy (`full_collections_when_idle`):
a full pass walks every item moto stores and held the interpreter lock 50-130 ms under bench_load,
stalling every AWS call in flight (the worst lap writes of a run were four SQS sends stalled ~120 ms
at once). What survives is frozen every few seconds instead, and the full pass runs once no request
has started for a while, when a pause delays nobody.

It also serves the mail moto's SES keeps as LocalStack does (`sent_mail`, `GET /_aws/ses`), so the
dev loop, the smoke test and the tests read email links the same way on either emulator.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from typing import Any

FREEZE_EVERY_S = 5.0
IDLE_S = 2.0  # no request started for this long: a full pass delays nobody
_last_request = [0.0]
_requests = [0, -1]  # requests started; how many had started at the last full pass


def apply() -> None:
    _names_converted_once()
    _sqs_visibility_without_datetimes()
    _route_without_listing_the_package()
    _transactions_without_table_copies()
    queries_within_their_partition()
    _conditions_parsed_once()
    _ses_messages_with_their_time()


def keep_connections_alive() -> None:
    """moto's server (werkzeug's development server) closes the connection after every answer, so
    every AWS call opens a new TCP connection and moto starts a new thread for it: under bench_load
    a lap write's SQS send spent ~2 ms connecting and ~4-8 ms before moto began reading it, against
    ~1.5 ms of moto's own work. AWS keeps HTTP/1.1 connections open, as boto3 and our signed sends
    expect. Here too, when it is safe: werkzeug closes because an unread request body would be taken
    for the next request line, and after each answer it discards whatever the socket still holds
    (which would be the client's next request). So the body is read whole before moto sees it, that
    discard is skipped, and the connection stays open unless the client asked to close it or sent
    its body chunked (both left to werkzeug as before)."""
    import selectors
    import types

    from moto import server
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler
    from werkzeug import serving

    body_read = threading.local()  # this thread's request body was read whole: nothing to discard

    class NothingToDiscard:
        def register(self, *args: Any) -> None:
            pass

        def select(self, timeout: float | None = None) -> list[Any]:
            return []

        def close(self) -> None:
            pass

    def selector() -> Any:
        return NothingToDiscard() if getattr(body_read, "value", False) else selectors.DefaultSelector()

    serving.selectors = types.SimpleNamespace(EVENT_READ=selectors.EVENT_READ, DefaultSelector=selector)  # type: ignore[assignment]

    server.MotoRequestHandler = kept_alive(MotoRequestHandler, body_read)  # type: ignore[misc]
    DomainDispatcherApplication.__call__ = answered_whole(DomainDispatcherApplication.__call__)  # type: ignore[method-assign]


def kept_alive(handler: type[Any], body_read: threading.local) -> type[Any]:
    """werkzeug's request handler (moto's) keeping the connection open when it is safe (see
    keep_connections_alive); `body_read` tells werkzeug's discard shim that nothing is left to drain."""
    import io
    import socket

    class KeepAliveRequestHandler(handler):
        # Buffered: werkzeug writes the headers, then the body, then flushes; unbuffered those were two
        # segments, and a client that read the headers before the body came woke twice for one answer
        # (under load each wake waits for its interpreter: p90 ~5 ms on a lap write's sends).
        wbufsize = 64 * 1024

        def setup(self) -> None:
            super().setup()
            # Whatever is written goes at once: on a kept-alive connection Nagle's algorithm would hold
            # a small write while an earlier one is unacknowledged (the client's delayed ACK: 40 ms).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def make_environ(self) -> dict[str, Any]:
            # werkzeug has just written "100 Continue" for a client that waits for it before sending
            # its body (botocore's S3 uploads): it must leave the buffer before we read that body.
            self.wfile.flush()
            environ = super().make_environ()
            length = environ.get("CONTENT_LENGTH") or "0"
            body_read.value = not environ.get("wsgi.input_terminated") and length.isdigit()
            if body_read.value:
                environ["wsgi.input"] = io.BytesIO(self.rfile.read(int(length)))
            return environ

        def send_header(self, keyword: str, value: str) -> None:
            closing = self.close_connection or not getattr(body_read, "value", False)  # the client asked, or chunked
            if not closing and keyword.lower() == "connection" and value.lower() == "close":
                return  # werkzeug's blanket close
            super().send_header(keyword, value)

        def run_wsgi(self) -> None:
            body_read.value = False
            try:
                super().run_wsgi()
            finally:
                if not body_read.value:
                    self.close_connection = True
                body_read.value = False

    return KeepAliveRequestHandler


def answered_whole(dispatch: Callable[..., Any]) -> Callable[..., Any]:
    """A WSGI call whose whole answer is made before anything is written. werkzeug sends the headers
    with the first chunk: if moto failed after that, the answer would end short (or a second one
    follow) on a connection that now stays open, and the client's next request would read the rest
    as its answer. Made whole first, a failure is raised before any byte is written, and werkzeug
    answers a complete 500 instead."""

    def call(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        chunks: list[bytes] = []
        started: list[Any] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            started[:] = [status, headers]
            return chunks.append  # WSGI's write(): kept in order with what the answer yields

        answer = dispatch(self, environ, start)
        try:
            chunks.extend(answer)
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()
        start_response(*started)
        return [b"".join(chunks)]  # one write: with the buffered headers, one segment for a small answer

    return call


def request_started() -> None:
    """Called by the emulator's dispatcher for every request (what "idle" is measured from)."""
    _last_request[0] = time.monotonic()
    _requests[0] += 1


def full_collections_when_idle(every_s: float = FREEZE_EVERY_S, idle_s: float = IDLE_S) -> threading.Thread:
    """Start moto with its start-up objects frozen, then every `every_s`: a full pass when idle, else
    freeze the survivors (objects out of the young generations are not walked until the next idle pass)."""
    gc.collect()
    gc.freeze()

    def run() -> None:
        while True:
            time.sleep(every_s)
            collect_or_freeze(idle_s)

    thread = threading.Thread(target=run, name="gc-when-idle", daemon=True)
    thread.start()
    return thread


def collect_or_freeze(idle_s: float = IDLE_S) -> str:
    """One step: "full" (idle: unfreeze and collect everything, then freeze what lives), "young"
    (busy: collect the young generations, whose garbage would otherwise be frozen, then freeze) or
    "none" (idle, and no request since the last full pass: nothing new to collect)."""
    if time.monotonic() - _last_request[0] >= idle_s:
        if _requests[1] == _requests[0]:
            return "none"
        _requests[1] = _requests[0]
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        return "full"
    gc.collect(1)
    gc.freeze()
    return "young"


def _ses_messages_with_their_time() -> None:
    """moto's SES Message has no send time; LocalStack's listing has one (`Timestamp`)."""
    from moto.ses import models

    original = models.Message.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.sent_at = time.time()

    models.Message.__init__ = init  # type: ignore[method-assign]


def sent_mail(query_string: str) -> dict[str, Any]:
    """`GET /_aws/ses` in LocalStack's shape: every message SES sent, oldest first (`?email=` filters
    by sender, `?id=` by message id, as LocalStack does)."""
    from datetime import UTC, datetime
    from urllib.parse import parse_qs

    from moto.ses.models import Message, ses_backends

    query = {key: values[-1] for key, values in parse_qs(query_string).items()}
    messages: list[dict[str, Any]] = []
    for account_id in list(ses_backends):
        for region, backend in list(ses_backends[account_id].items()):
            for message in list(backend.sent_messages):
                if not isinstance(message, Message):
                    continue  # templated and raw sends: the platform sends neither
                if query.get("email") not in (None, message.source) or query.get("id") not in (None, message.id):
                    continue
                sent_at = getattr(message, "sent_at", 0.0)
                messages.append(
                    {
                        "Id": message.id,
                        "Region": region,
                        "Destination": {kind: list(v) for kind, v in message.destinations.items()},
                        "Source": message.source,
                        "Subject": message.subject,
                        "Body": {"text_part": message.body, "html_part": None},
                        "Timestamp": datetime.fromtimestamp(sent_at, UTC).isoformat(timespec="milliseconds"),
                        "_sentAt": sent_at,
                    }
                )
    messages.sort(key=lambda m: m.pop("_sentAt"))
    return {"messages": messages}


def _names_converted_once() -> None:
    """moto turns AWS names into attribute names (`ReceiveMessageWaitTimeSeconds` ->
    `receive_message_wait_time_seconds`) a character at a time, on every request: an SQS send reads
    the queue's ~20 attributes that way twice. The conversion is a pure function of a handful of
    names: remembered once made."""
    import functools
    import sys

    from moto.core import utils

    for function in ("camelcase_to_underscores", "method_names_from_class"):
        original = getattr(utils, function)
        cached = functools.lru_cache(maxsize=4096)(original)
        setattr(utils, function, cached)  # what modules imported from now on take
        for name, module in list(sys.modules.items()):  # and those that took it already
            if name.startswith("moto.") and getattr(module, function, None) is original:
                setattr(module, function, cached)


def _sqs_visibility_without_datetimes() -> None:
    from moto.sqs import models

    models.Message.visible = property(lambda message: time.time() * 1000 > message.visible_at)  # type: ignore[assignment,method-assign]
    models.Message.delayed = property(lambda message: time.time() * 1000 < message.delayed_until)  # type: ignore[assignment,method-assign]


def _route_without_listing_the_package() -> None:
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def queries_within_their_partition() -> None:
    """Table.query filters `all_items()` by hash key when no index is named: while such a query runs
    in this thread, `all_items()` of that table answers the partition's items alone (any order:
    the query sorts them itself). Per thread, so concurrent queries of other partitions see theirs."""
    import threading

    from moto.dynamodb.models import table as tables

    if getattr(tables.Table.query, "within_partition", False):
        return  # applied already (a test process may ask twice)
    partition = threading.local()
    all_items, query = tables.Table.all_items, tables.Table.query

    def partition_items(self: Any) -> list[Any]:
        wanted = getattr(partition, "key", None)
        if wanted is None or wanted[0] is not self:
            return all_items(self)
        items = self.items.get(wanted[1])  # .get: `items` is a defaultdict, a miss must not add the key
        return list(items.values()) if items else []

    def partition_query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # Positional as DynamoDBBackend.query passes them: index_name is the 8th argument.
        index_name = kwargs["index_name"] if "index_name" in kwargs else (args[6] if len(args) > 6 else None)
        if index_name or self.range_key_attr is None or hash_key is None:
            return query(self, hash_key, *args, **kwargs)
        partition.key = (self, hash_key)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            partition.key = None

    partition_query.within_partition = True  # type: ignore[attr-defined]
    tables.Table.all_items = partition_items  # type: ignore[method-assign]
    tables.Table.query = partition_query  # type: ignore[method-assign]


def _conditions_parsed_once() -> None:
    import functools
    import json

    from moto.dynamodb import comparisons, models
    from moto.dynamodb.models import table as tables

    parse = comparisons.get_filter_expression

    @functools.lru_cache(maxsize=512)
    def parsed(expr: str | None, names: str, values: str) -> Any:
        return parse(expr, json.loads(names), json.loads(values))

    def as_key(names: Any, values: Any) -> tuple[str, str]:
        """A condition's names and values as a cache key (TypeError/ValueError if not JSON-shaped)."""
        return json.dumps(names, sort_keys=True), json.dumps(values, sort_keys=True)

    def get_filter_expression(expr: str | None, names: Any, values: Any) -> Any:
        try:
            key = as_key(names, values)
        except (TypeError, ValueError):  # not JSON-shaped: moto's own error path
            return parse(expr, names, values)
        return parsed(expr, *key)

    models.get_filter_expression = get_filter_expression
    tables.get_filter_expression = get_filter_expression

    # The request's validation parses every action's condition once more, to list the names it uses.
    from moto.dynamodb import responses

    make = responses.create_condition_expression_parser

    @functools.lru_cache(maxsize=512)
    def validated(expr: str | None, names: str, values: str) -> tuple[Any, list[str], list[str]]:
        parser = make(expr, json.loads(names), json.loads(values))
        return parser.parse(), list(parser.expr_attr_names_found), list(parser.expr_attr_values_found)

    class Validated:
        """What the validation reads of a parser: parse() (raising as moto's would) and what it found."""

        def __init__(self, expr: str | None, names: Any, values: Any) -> None:
            self.key = (expr, *as_key(names, values))
            self.expr_attr_names_found: list[str] = []
            self.expr_attr_values_found: list[str] = []

        def parse(self) -> Any:
            parsed, names_found, values_found = validated(*self.key)
            self.expr_attr_names_found, self.expr_attr_values_found = list(names_found), list(values_found)  # copies
            return parsed

    def create_condition_expression_parser(expr: str | None, names: Any, values: Any) -> Any:
        try:
            return Validated(expr, names, values)
        except (TypeError, ValueError):  # not JSON-shaped: moto's own error path
            return make(expr, names, values)

    responses.create_condition_expression_parser = create_condition_expression_parser


def _transactions_without_table_copies() -> None:
    from moto.dynamodb import models

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's TransactWriteItems in two passes: every condition, then (only if all hold) every write."""
    from moto.dynamodb import models

    if len(transact_items) > 100:
        raise models.TooManyTransactionsException()
    targets: set[tuple[str, str]] = set()
    planned: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    for item in transact_items:
        if len(item) > 1:
            raise models.TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        original: dict[str, Any] | None = None
        try:
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            if op_type == "Put":
                table = self.get_table(table_name)
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            target = (str(table_name), str(dict(sorted(key.items()))))
            if target in targets:
                raise models.MultipleTransactionsException()
            targets.add(target)
            condition = op.get("ConditionExpression")
            if condition is not None:
                current = self.get_item(table_name, key)
                check = models.get_filter_expression(
                    condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                )
                if not check.expr(current):
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        original = current.to_json()["Attributes"]
                    raise models.ConditionalCheckFailed(item=original)
            planned.append((op_type, op, key))
            errors.append((None, None, None))
        except (models.MultipleTransactionsException, models.MockValidationException):
            raise
        except models.ConditionalCheckFailed as exc:
            errors.append(("ConditionalCheckFailed", str(exc.message), original))
        except Exception as exc:
            errors.append((type(exc).__name__, str(exc), original))
    if any(code is not None for code, _, _ in errors):
        raise models.TransactionCanceledException(errors)
    for op_type, op, key in planned:
        names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        if op_type == "Put":
            self.put_item(
                op["TableName"], op["Item"], expression_attribute_names=names, expression_attribute_values=values
            )
        elif op_type == "Delete":
            self.delete_item(op["TableName"], key, expression_attribute_names=names, expression_attribute_values=values)
        elif op_type == "Update":
            self.update_item(
                op["TableName"],
                key,
                update_expression=op["UpdateExpression"],
                expression_attribute_names=names,
                expression_attribute_values=values,
            )
