"""Provisioning the AWS resources on the emulator: shapes, DLQ redrive, idempotency, drift, check."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import localstack_client.session
import pytest
from botocore.config import Config

from chalicelib.resources import RESOURCES, ROOM_QUEUE, TIMING_IMPORT_QUEUE, WEBHOOK_QUEUE
from infra.local.provision import ProvisionError, check, provision, scoped_names

pytestmark = pytest.mark.integration


def private_names() -> dict[str, str]:
    return scoped_names(uuid.uuid4().hex[:8])


def client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1", config=Config(s3={"addressing_style": "path"})
    )


@pytest.fixture(scope="module")
def names() -> dict[str, str]:
    return private_names()


@pytest.fixture(scope="module")
def provisioned(emulator_url: str, names: dict[str, str]) -> dict[str, str]:
    return provision(emulator_url, names=names)


def test_returns_the_environment_for_every_resource(provisioned: dict[str, str], names: dict[str, str]) -> None:
    for env_var, name in names.items():
        assert provisioned[env_var] == name
    queue_url = provisioned[f"{WEBHOOK_QUEUE.env_var}_URL"]
    assert queue_url.endswith("/" + names[WEBHOOK_QUEUE.env_var])
    assert provisioned[f"{WEBHOOK_QUEUE.env_var}_DLQ_URL"] == queue_url + "-dlq"


def test_tables_have_pk_sk_on_demand_and_ttl(emulator_url: str, provisioned: dict[str, str]) -> None:
    ddb = client(emulator_url, "dynamodb")
    for table in RESOURCES.tables:
        described = ddb.describe_table(TableName=provisioned[table.env_var])["Table"]
        assert {(k["AttributeName"], k["KeyType"]) for k in described["KeySchema"]} == {("pk", "HASH"), ("sk", "RANGE")}
        assert {(a["AttributeName"], a["AttributeType"]) for a in described["AttributeDefinitions"]} == {
            ("pk", "S"),
            ("sk", "S"),
        }
        assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        ttl = ddb.describe_time_to_live(TableName=provisioned[table.env_var])["TimeToLiveDescription"]
        assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", table.ttl_attribute)


def test_queues_have_visibility_timeout_and_redrive_to_their_dlq(
    emulator_url: str, provisioned: dict[str, str]
) -> None:
    sqs = client(emulator_url, "sqs")
    for queue in (WEBHOOK_QUEUE, TIMING_IMPORT_QUEUE, ROOM_QUEUE):
        main = sqs.get_queue_attributes(QueueUrl=provisioned[f"{queue.env_var}_URL"], AttributeNames=["All"])
        dlq = sqs.get_queue_attributes(QueueUrl=provisioned[f"{queue.env_var}_DLQ_URL"], AttributeNames=["All"])
        redrive = json.loads(main["Attributes"]["RedrivePolicy"])
        assert int(main["Attributes"]["VisibilityTimeout"]) == queue.visibility_timeout_s
        assert redrive["deadLetterTargetArn"] == dlq["Attributes"]["QueueArn"]
        assert int(redrive["maxReceiveCount"]) == queue.max_receive_count
        assert int(dlq["Attributes"]["MessageRetentionPeriod"]) == queue.dlq_retention_s
        fifo = "true" if queue.fifo else None  # a FIFO queue's DLQ is FIFO too
        assert (main["Attributes"].get("FifoQueue"), dlq["Attributes"].get("FifoQueue")) == (fifo, fifo)


def test_a_message_received_too_often_moves_to_the_dlq(emulator_url: str, provisioned: dict[str, str]) -> None:
    sqs = client(emulator_url, "sqs")
    url = provisioned[f"{WEBHOOK_QUEUE.env_var}_URL"]
    dlq_url = provisioned[f"{WEBHOOK_QUEUE.env_var}_DLQ_URL"]
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    for _ in range(WEBHOOK_QUEUE.max_receive_count):
        got = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=0)
        assert [m["Body"] for m in got["Messages"]] == ["poison"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    dead = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=0)
    assert [m["Body"] for m in dead["Messages"]] == ["poison"]


def test_buckets_exist_and_store_objects(emulator_url: str, provisioned: dict[str, str]) -> None:
    s3 = client(emulator_url, "s3")
    for bucket in RESOURCES.buckets:
        s3.put_object(Bucket=provisioned[bucket.env_var], Key="probe.txt", Body=b"ok")
        assert s3.get_object(Bucket=provisioned[bucket.env_var], Key="probe.txt")["Body"].read() == b"ok"


def test_a_second_run_calls_no_mutating_api(
    emulator_url: str, provisioned: dict[str, str], names: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator_url)
    session = boto3.session.Session()
    calls: list[str] = []
    session.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))

    assert provision(session, names=names) == provisioned
    assert calls, "the hook saw no calls"
    mutating = [c for c in calls if c.startswith(("Create", "Update", "Set", "Put", "Delete", "Tag"))]
    assert mutating == []


def test_check_lists_what_is_missing_and_nothing_once_provisioned(emulator_url: str) -> None:
    names = private_names()
    missing = check(emulator_url, names=names)
    assert f"DynamoDB table {names['RACE_KV_TABLE']}: missing" in missing
    assert f"SQS queue {names['RACE_WEBHOOK_QUEUE']}-dlq: missing" in missing
    assert f"S3 bucket {names['RACE_UPLOADS_BUCKET']}: missing" in missing
    assert len(missing) == len(RESOURCES.tables) + 2 * len(RESOURCES.queues) + len(RESOURCES.buckets)

    provision(emulator_url, names=names)
    assert check(emulator_url, names=names) == []


def test_drift_is_reported_and_repaired(emulator_url: str) -> None:
    names = private_names()
    out = provision(emulator_url, names=names)
    sqs = client(emulator_url, "sqs")
    url = out[f"{TIMING_IMPORT_QUEUE.env_var}_URL"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "5"})
    ddb = client(emulator_url, "dynamodb")
    ddb.update_time_to_live(
        TableName=out["RACE_KV_TABLE"], TimeToLiveSpecification={"Enabled": False, "AttributeName": "expiresAt"}
    )

    problems = check(emulator_url, names=names)
    assert any("VisibilityTimeout is '5'" in p for p in problems)
    assert f"DynamoDB table {out['RACE_KV_TABLE']}: TTL not enabled on expiresAt" in problems

    provision(emulator_url, names=names)
    assert check(emulator_url, names=names) == []
    visibility = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    assert int(visibility["VisibilityTimeout"]) == TIMING_IMPORT_QUEUE.visibility_timeout_s


def test_a_table_with_other_keys_is_refused(emulator_url: str) -> None:
    names = private_names()
    client(emulator_url, "dynamodb").create_table(
        TableName=names["RACE_KV_TABLE"],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert any("key schema" in p for p in check(emulator_url, names=names))
    with pytest.raises(ProvisionError, match="delete the table"):
        provision(emulator_url, names=names)


def test_endpoint_from_environment_and_localstack_client_session(
    emulator_url: str, provisioned: dict[str, str], names: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator_url)
    assert check(None, names=names) == []
    session = localstack_client.session.Session(localstack_host=emulator_url.removeprefix("http://"))
    assert check(session, names=names) == []


def test_scoped_names_are_valid_resource_names() -> None:
    names = scoped_names("w1")
    assert names["RACE_ATTACHMENTS_BUCKET"] == "race-attachments-w1"
    assert names[ROOM_QUEUE.env_var] == "race-room-events-w1.fifo"  # SQS wants .fifo last
    assert len(names) == len(RESOURCES.tables) + len(RESOURCES.queues) + len(RESOURCES.buckets)
    with pytest.raises(ValueError):
        scoped_names("Not_Valid")


def test_browser_buckets_answer_cors_for_presigned_uploads(emulator_url: str) -> None:
    import boto3

    from chalicelib.resources import RESOURCES

    provision(emulator_url)
    s3 = boto3.client("s3", endpoint_url=emulator_url, region_name="us-east-1")
    for bucket in RESOURCES.buckets:
        if bucket.browser_access:
            rules = s3.get_bucket_cors(Bucket=bucket.name)["CORSRules"]
            assert "PUT" in rules[0]["AllowedMethods"]
