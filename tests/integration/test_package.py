"""The AWS artefact: packaged with Chalice, lint-clean, and its data resources really create."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.resources import RESOURCES
from infra.aws.template import resources_template

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("package") / "prod"
    from infra.aws.package import package

    template = package("prod", out)
    return {"path": template, "template": json.loads(template.read_text())}


def test_packaged_template_passes_cfn_lint(packaged: dict[str, Any]) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(packaged["path"])], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_resource_is_in_the_template_once(packaged: dict[str, Any]) -> None:
    resources = packaged["template"]["Resources"]
    for table in RESOURCES.tables:
        assert resources[table.logical_id]["Properties"]["TableName"] == table.name
    for queue in RESOURCES.queues:
        redrive = resources[queue.logical_id]["Properties"]["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == queue.max_receive_count
        assert resources[f"{queue.logical_id}Dlq"]["Properties"]["QueueName"] == queue.dlq_name
    for bucket in RESOURCES.buckets:
        assert resources[bucket.logical_id]["Type"] == "AWS::S3::Bucket"


def test_functions_get_the_environment_and_sqs_sources_report_batch_failures(packaged: dict[str, Any]) -> None:
    functions = {k: v for k, v in packaged["template"]["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert functions
    for name, function in functions.items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["STAGE"] == "prod", name
        for table in RESOURCES.tables:
            assert table.env_var in variables
        assert "DATABASE_URL" in variables and "WS_MANAGEMENT_URL" in variables
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


@pytest.fixture()
def private_emulator(tmp_path: Path) -> Any:
    """An emulator of its own: the stack's names would collide with the session's provisioned ones."""
    from infra.local.emulator import Emulator
    from infra.local.ports import free_port

    emulator = Emulator(port=free_port(), log_path=tmp_path / "moto.log")
    url = emulator.start()
    yield url
    emulator.stop()


def test_resource_part_creates_in_the_emulators_cloudformation(private_emulator: str) -> None:
    emulator_url = private_emulator
    cloudformation = boto3.client("cloudformation", endpoint_url=emulator_url)
    cloudformation.create_stack(StackName="race-data-test", TemplateBody=json.dumps(resources_template()))
    status = cloudformation.describe_stacks(StackName="race-data-test")["Stacks"][0]["StackStatus"]
    assert status == "CREATE_COMPLETE"
    dynamodb = boto3.client("dynamodb", endpoint_url=emulator_url)
    sqs = boto3.client("sqs", endpoint_url=emulator_url)
    s3 = boto3.client("s3", endpoint_url=emulator_url)
    tables = dynamodb.list_tables()["TableNames"]
    for table in RESOURCES.tables:
        assert table.name in tables
    for queue in RESOURCES.queues:
        url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == queue.max_receive_count
        assert sqs.get_queue_url(QueueName=queue.dlq_name)
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    for bucket in RESOURCES.buckets:
        assert any(name.startswith(bucket.name + "-") for name in buckets), (bucket.name, buckets)
    # Rows point at plugin bundles and attachments: S3 keeps their versions (moto's CloudFormation
    # ignores VersioningConfiguration, so the template itself is what is checked).
    template = resources_template()["Resources"]
    for bucket in RESOURCES.buckets:
        versioning = template[bucket.logical_id]["Properties"].get("VersioningConfiguration")
        assert versioning == ({"Status": "Enabled"} if bucket.versioned else None), bucket.name
    assert {b.name for b in RESOURCES.buckets if b.versioned} == {"race-plugins", "race-attachments"}
