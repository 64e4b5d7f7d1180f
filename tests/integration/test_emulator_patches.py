"""The emulator's speed fixes (infra/local/moto_patches.py) keep the AWS semantics the platform relies on."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration


@pytest.fixture()
def table(emulator_url: str) -> tuple[Any, str]:
    dynamodb = boto3.client("dynamodb", endpoint_url=emulator_url, region_name="us-east-1")
    name = f"patches-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    return dynamodb, name


def _put(table: str, sk: str, condition: str | None = "attribute_not_exists(sk)") -> dict[str, Any]:
    put: dict[str, Any] = {"TableName": table, "Item": {"pk": {"S": "p"}, "sk": {"S": sk}, "v": {"N": "1"}}}
    if condition:
        put["ConditionExpression"] = condition
    return {"Put": put}


def _keys(dynamodb: Any, table: str) -> list[str]:
    items = dynamodb.query(
        TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}}
    )["Items"]
    return sorted(item["sk"]["S"] for item in items)


def test_a_transaction_writes_all_or_nothing(table: tuple[Any, str]) -> None:
    dynamodb, name = table
    dynamodb.transact_write_items(TransactItems=[_put(name, "a"), _put(name, "b")])
    assert _keys(dynamodb, name) == ["a", "b"]
    with pytest.raises(ClientError) as refused:
        # "c" alone would succeed; "a" exists, so neither may be written.
        dynamodb.transact_write_items(TransactItems=[_put(name, "c"), _put(name, "a")])
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in refused.value.response["CancellationReasons"]]
    assert reasons == ["None", "ConditionalCheckFailed"]
    assert _keys(dynamodb, name) == ["a", "b"]


def test_a_transaction_applies_updates_deletes_and_condition_checks(table: tuple[Any, str]) -> None:
    dynamodb, name = table
    dynamodb.transact_write_items(TransactItems=[_put(name, "a"), _put(name, "b")])
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "ConditionCheck": {
                    "TableName": name,
                    "Key": {"pk": {"S": "p"}, "sk": {"S": "a"}},
                    "ConditionExpression": "attribute_exists(sk)",
                }
            },
            {
                "Update": {
                    "TableName": name,
                    "Key": {"pk": {"S": "p"}, "sk": {"S": "b"}},
                    "UpdateExpression": "SET v = v + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
            {"Delete": {"TableName": name, "Key": {"pk": {"S": "p"}, "sk": {"S": "z"}}}},
        ]
    )
    item = dynamodb.get_item(TableName=name, Key={"pk": {"S": "p"}, "sk": {"S": "b"}})["Item"]
    assert item["v"] == {"N": "2"}
    with pytest.raises(ClientError) as refused:  # one item twice in a transaction is refused, as by AWS
        dynamodb.transact_write_items(TransactItems=[_put(name, "d", None), _put(name, "d", None)])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert _keys(dynamodb, name) == ["a", "b"]


def test_sqs_delay_and_visibility_still_hold(emulator_url: str) -> None:
    sqs = boto3.client("sqs", endpoint_url=emulator_url, region_name="us-east-1")
    url = sqs.create_queue(QueueName=f"patches-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    sqs.send_message(QueueUrl=url, MessageBody="now")
    (first,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1)["Messages"]
    assert first["Body"] == "now"  # the delayed one is not visible yet, the received one is in flight
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
    time.sleep(1.2)
    bodies = sorted(m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"])
    assert bodies == ["later", "now"]  # the delay ran out; the unacknowledged one came back


def test_a_query_answers_its_partition_in_key_order_page_by_page(table: tuple[Any, str]) -> None:
    dynamodb, name = table
    for pk in ("room#1", "room#2", "room#10"):
        for n in (3, 1, 2, 5, 4):
            dynamodb.put_item(TableName=name, Item={"pk": {"S": pk}, "sk": {"S": f"msg#{n}"}, "at": {"S": pk}})

    def sks(pk: str, **kwargs: Any) -> tuple[list[str], Any]:
        answer = dynamodb.query(
            TableName=name,
            KeyConditionExpression=kwargs.pop("condition", "pk = :p"),
            ExpressionAttributeValues={":p": {"S": pk}, **kwargs.pop("values", {})},
            **kwargs,
        )
        assert {item["at"]["S"] for item in answer["Items"]} <= {pk}  # nothing of another partition
        return [item["sk"]["S"] for item in answer["Items"]], answer.get("LastEvaluatedKey")

    assert sks("room#1")[0] == ["msg#1", "msg#2", "msg#3", "msg#4", "msg#5"]
    assert sks("room#10", ScanIndexForward=False)[0] == ["msg#5", "msg#4", "msg#3", "msg#2", "msg#1"]
    between = {"condition": "pk = :p AND sk BETWEEN :a AND :b", "values": {":a": {"S": "msg#2"}, ":b": {"S": "msg#4"}}}
    assert sks("room#2", **between)[0] == ["msg#2", "msg#3", "msg#4"]
    first, last_key = sks("room#2", Limit=2)
    second, _ = sks("room#2", Limit=10, ExclusiveStartKey=last_key)
    assert (first, second) == (["msg#1", "msg#2"], ["msg#3", "msg#4", "msg#5"])
    assert sks("room#3") == ([], None)
    assert dynamodb.scan(TableName=name)["Count"] == 15  # a Query of an empty partition added nothing


def test_a_query_never_reads_another_partition() -> None:
    """In the emulator's process: an item of another partition that cannot be read does not matter."""
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    from infra.local import moto_patches

    moto_patches.queries_within_their_partition()  # this patch alone: the others are the emulator's own business
    table = Table(
        "t",
        account_id="123456789012",
        region="us-east-1",
        schema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        attr=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
    )
    table.put_item({"pk": {"S": "mine"}, "sk": {"S": "1"}})

    class Unreadable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the query read another partition's item ({name})")

    table.items[DynamoType({"S": "other"})][DynamoType({"S": "1"})] = Unreadable()
    items, _, _ = table.query(DynamoType({"S": "mine"}), None, [], None, None, True, None)
    assert [item.attrs["sk"].value for item in items] == ["1"]


def test_one_condition_with_other_values_is_judged_on_its_own_values(table: tuple[Any, str]) -> None:
    dynamodb, name = table
    claim = "attribute_not_exists(sk) OR expiresAt < :now"
    dynamodb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {"S": "evt#1"}, "expiresAt": {"N": "100"}})

    def put(now: int, **extra: Any) -> bool:
        try:
            dynamodb.put_item(
                TableName=name,
                Item={"pk": {"S": "p"}, "sk": {"S": "evt#1"}, "expiresAt": {"N": str(now + 100)}},
                ConditionExpression=claim,
                ExpressionAttributeValues={":now": {"N": str(now)}},
                **extra,
            )
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
            return False
        return True

    for _ in range(3):  # the same expression and values again and again: the same answer
        assert not put(50)
    assert put(150)  # 100 < 150: the claim has expired
    assert not put(150)  # now it expires at 250
    assert put(251)
    named = {"ExpressionAttributeNames": {"#e": "expiresAt"}}
    try:
        dynamodb.put_item(
            TableName=name,
            Item={"pk": {"S": "p"}, "sk": {"S": "evt#1"}},
            ConditionExpression="#e < :now",
            ExpressionAttributeValues={":now": {"N": "10"}},
            **named,
        )
        raise AssertionError("the condition should have failed: 351 < 10 is false")
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


# moto's server closed the connection after every answer; AWS (and what our clients expect) keeps it.
_SQS_HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "AmazonSQS.ListQueues",
    # moto routes by the credential scope; it does not check the signature
    "Authorization": "AWS4-HMAC-SHA256 Credential=test/20261205/us-east-1/sqs/aws4_request, SignedHeaders=host, "
    "Signature=0",
}


def _connection(emulator_url: str) -> http.client.HTTPConnection:
    target = urlsplit(emulator_url)
    return http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)


def _list_queues(connection: http.client.HTTPConnection, **headers: str) -> http.client.HTTPResponse:
    connection.request("POST", "/", body=b"{}", headers={**_SQS_HEADERS, **headers})
    answer = connection.getresponse()
    assert answer.status == 200, answer.read()
    assert isinstance(json.loads(answer.read()), dict)
    return answer


def test_a_connection_stays_open_from_one_answer_to_the_next(emulator_url: str) -> None:
    connection = _connection(emulator_url)
    try:
        first = _list_queues(connection)
        socket_used = connection.sock
        second = _list_queues(connection)
        assert not first.will_close and not second.will_close
        assert connection.sock is socket_used  # the same TCP connection answered both
        last = _list_queues(connection, Connection="close")  # the client's own close is honoured
        assert last.will_close
    finally:
        connection.close()


@pytest.mark.parametrize("body_size", [2, 20_000])
def test_an_answer_is_written_in_one_piece(monkeypatch: pytest.MonkeyPatch, body_size: int) -> None:
    """Headers and body in one write (werkzeug wrote them in two: a client that had read the headers
    woke again for the body, each wake waiting for its interpreter under load). Served in this process
    by the emulator's handler, counting the server side's socket writes per answer."""
    import socket
    import threading

    from werkzeug.serving import WSGIRequestHandler, make_server

    from infra.local.moto_patches import answered_whole, kept_alive

    class App:  # a moto-like WSGI application: its answer in chunks, made whole as the emulator's is
        def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(body_size))])
            return [b"{", b" " * (body_size - 2), b"}"]

    App.__call__ = answered_whole(App.__call__)  # type: ignore[method-assign]
    handler = kept_alive(WSGIRequestHandler, threading.local())
    served = make_server("127.0.0.1", 0, App(), threaded=True, request_handler=handler)
    port = served.server_address[1]
    writes: list[int] = []
    for method in ("send", "sendall"):
        original = getattr(socket.socket, method)

        def counted(sock: socket.socket, data: Any, *args: Any, _original: Any = original) -> Any:
            if sock.getsockname()[1] == port:  # the server's end of the connection
                writes.append(len(data))
            return _original(sock, data, *args)

        monkeypatch.setattr(socket.socket, method, counted)
    threading.Thread(target=served.serve_forever, daemon=True).start()
    try:
        for _ in range(3):  # one request per connection: werkzeug's discard after an answer is not shimmed here
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            before = len(writes)
            connection.request("POST", "/", body=b"{}")
            answer = connection.getresponse()
            assert answer.status == 200 and len(answer.read()) == body_size and not answer.will_close
            assert len(writes) - before == 1, writes[before:]
            connection.close()
    finally:
        served.shutdown()
        served.server_close()


def test_a_client_waiting_for_100_continue_gets_it_before_sending_its_body() -> None:
    """botocore sends S3 uploads with `Expect: 100-continue` and waits up to a second for the interim
    answer: buffered and not flushed, it arrived only after that second (each upload a second late)."""
    import socket
    import threading

    from werkzeug.serving import WSGIRequestHandler, make_server

    from infra.local.moto_patches import kept_alive

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    handler = kept_alive(WSGIRequestHandler, threading.local())
    served = make_server("127.0.0.1", 0, app, threaded=True, request_handler=handler)
    threading.Thread(target=served.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(served.server_address[:2], timeout=0.5) as sock:  # type: ignore[arg-type]
            sock.sendall(b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")  # times out if it stayed buffered
            sock.sendall(b"hello")
            answer = b""
            while not answer.endswith(b"hello"):
                answer += sock.recv(1024)
            assert answer.startswith(b"HTTP/1.1 200")
    finally:
        served.shutdown()
        served.server_close()


def test_a_body_moto_never_reads_is_not_taken_for_the_next_request(emulator_url: str) -> None:
    connection = _connection(emulator_url)
    try:
        # A browser's preflight is answered without reading anything; its (unusual) body must not
        # become the start of the next request on the same connection.
        connection.request("OPTIONS", "/bucket/key", body=b"unread", headers={"Origin": "http://localhost"})
        preflight = connection.getresponse()
        preflight.read()
        assert preflight.status == 200 and not preflight.will_close
        assert not _list_queues(connection).will_close
    finally:
        connection.close()


def test_a_chunked_body_is_answered_then_the_connection_closed(emulator_url: str) -> None:
    connection = _connection(emulator_url)
    try:
        connection.request("POST", "/", body=iter([b"{", b"}"]), headers=_SQS_HEADERS, encode_chunked=True)
        answer = connection.getresponse()
        body = answer.read()
        assert answer.status == 200, body
        assert isinstance(json.loads(body), dict)
        assert answer.will_close  # werkzeug's own handling of a chunked body, as before
    finally:
        connection.close()


def test_moto_names_are_converted_once_with_the_same_result() -> None:
    from moto.core import utils
    from moto.sqs import models

    from infra.local import moto_patches

    original = utils.camelcase_to_underscores
    moto_patches._names_converted_once()
    converted = models.camelcase_to_underscores
    assert converted is utils.camelcase_to_underscores and converted is not original
    for name in ("ReceiveMessageWaitTimeSeconds", "FifoQueue", "KmsMasterKeyId", "ApproximateNumberOfMessages"):
        assert converted(name) == getattr(original, "__wrapped__", original)(name)
    assert converted("FifoQueue") == "fifo_queue"


def test_a_transactions_validation_still_refuses_what_moto_refuses_each_time(table: tuple[Any, str]) -> None:
    dynamodb, name = table
    put = _put(name, "v", condition="attribute_not_exists(#s)")
    put["Put"]["ExpressionAttributeNames"] = {"#s": "sk", "#unused": "v"}
    for _ in range(2):  # the second time from what the first parsed
        with pytest.raises(ClientError) as refused:
            dynamodb.transact_write_items(TransactItems=[put])
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert "#unused" in refused.value.response["Error"]["Message"]
    bad = _put(name, "w", condition="attribute_not_exists(sk) AND")
    codes = []
    for _ in range(2):  # refused both times, as moto refuses it (with a 500 of its own)
        with pytest.raises(ClientError) as refused:
            dynamodb.transact_write_items(TransactItems=[bad])
        codes.append(refused.value.response["Error"]["Code"])
    assert codes[0] == codes[1]
    del put["Put"]["ExpressionAttributeNames"]["#unused"]
    dynamodb.transact_write_items(TransactItems=[put])
    assert _keys(dynamodb, name) == ["v"]


def test_an_updates_condition_is_validated_for_its_names_and_values_each_time(table: tuple[Any, str]) -> None:
    dynamodb, name = table
    update = {
        "TableName": name,
        "Key": {"pk": {"S": "p"}, "sk": {"S": "head"}},
        "UpdateExpression": "SET #h = :h",
        "ConditionExpression": "attribute_not_exists(#h) OR #h < :h",
        "ExpressionAttributeNames": {"#h": "head"},
    }
    for head in ("1", "2"):  # the second from what the first parsed
        dynamodb.update_item(**update, ExpressionAttributeValues={":h": {"N": head}})
    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            dynamodb.update_item(**update, ExpressionAttributeValues={":h": {"N": "3"}, ":unused": {"N": "0"}})
        assert refused.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as stale:
        dynamodb.update_item(**update, ExpressionAttributeValues={":h": {"N": "2"}})
    assert stale.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
