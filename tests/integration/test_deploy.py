"""`make deploy` checks before it touches anything; its site upload and `make logs STAGE=prod` on the emulator."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from chalicelib.db.migrate import migrate
from infra.aws import deploy, logs

pytestmark = pytest.mark.integration


@pytest.fixture()
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Any]]:
    """A private emulator (its names would collide with the session's) and a client factory for it."""
    from infra.local.emulator import Emulator
    from infra.local.ports import free_port

    emulator = Emulator(port=free_port(), log_path=tmp_path / "moto.log")
    url = emulator.start()
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "x"),
        ("AWS_SECRET_ACCESS_KEY", "x"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    for name in (
        "DEPLOY_BUCKET",
        "DATABASE_URL",
        "DATABASE_URL_PARAMETER",
        "JWT_SECRET_PARAMETER",
        "WEBHOOK_KEY_PARAMETER",
    ):
        monkeypatch.delenv(name, raising=False)
    try:
        yield lambda service: boto3.client(service, endpoint_url=url, region_name="us-east-1")
    finally:
        emulator.stop()


def _tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]


def test_a_missing_prerequisite_stops_the_deploy_before_the_database(
    aws: Callable[[str], Any], postgres: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres.create_database("race_deploy_untouched")
    monkeypatch.setenv("DATABASE_URL", url)  # even a reachable database is not migrated
    assert deploy.run("prod", check_only=False, client=aws) == 2
    err = capsys.readouterr().err
    for missing in (
        "DEPLOY_BUCKET is not set",
        "JWT secret /race/prod/jwt-secret is missing",
        "webhook key /race/prod/webhook-key is missing",
        "DATABASE_URL parameter /race/prod/database-url is missing",
        "nothing was touched",
    ):
        assert missing in err
    assert _tables(url) == []


def test_every_check_passes_and_a_stage_mismatch_is_caught(
    aws: Callable[[str], Any], postgres: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.create_database("race_deploy_checks")
    aws("s3").create_bucket(Bucket="race-artifacts")
    ssm = aws("ssm")
    ssm.put_parameter(Name="/race/prod/jwt-secret", Type="SecureString", Value="j" * 64)
    ssm.put_parameter(Name="/race/prod/database-url", Type="SecureString", Value=url)
    ssm.put_parameter(Name="/race/prod/webhook-key", Type="SecureString", Value="c2hvcnQ=")  # 5 bytes
    monkeypatch.setenv("DEPLOY_BUCKET", "race-artifacts")
    target = deploy.Target.from_env("prod")
    found = deploy.check(target, aws, artefact=False, which=lambda name: f"/usr/bin/{name}")
    assert found.problems == [
        "webhook key /race/prod/webhook-key: WEBHOOK_KEY must be base64 of 32 random bytes "
        "(openssl rand -base64 32), not 5 bytes"
    ]
    ssm.put_parameter(Name="/race/prod/webhook-key", Type="SecureString", Value="k" * 43 + "=", Overwrite=True)
    found = deploy.check(target, aws, artefact=False, which=lambda name: f"/usr/bin/{name}")
    assert found.problems == [] and found.database_url == url  # read from the SecureString
    assert _tables(url) == []  # checking is read-only
    no_cli = deploy.check(target, aws, artefact=False, which=lambda name: None)
    assert no_cli.problems == [
        "the aws CLI is not installed (it packages and deploys the template): pip install awscli"
    ]
    migrate(url, log=False, stage="local")
    mismatch = deploy.check(target, aws, artefact=False, which=lambda name: f"/usr/bin/{name}")
    assert mismatch.problems == ["the database is recorded as stage 'local', not 'prod'"]


def test_sites_upload_with_the_stacks_urls_and_an_invalidation(aws: Callable[[str], Any]) -> None:
    s3, cloudfront = aws("s3"), aws("cloudfront")
    outputs = {
        "EndpointURL": "https://abc.execute-api.eu-west-1.amazonaws.com/prod/",
        "WebsocketConnectEndpointURL": "wss://def.execute-api.eu-west-1.amazonaws.com/prod/",
    }
    for site in ("Web", "Docs"):
        s3.create_bucket(Bucket=f"site-{site.lower()}")
        s3.put_object(Bucket=f"site-{site.lower()}", Key="stale.js", Body=b"old")
        created = cloudfront.create_distribution(
            DistributionConfig={
                "CallerReference": site,
                "Comment": site,
                "Enabled": True,
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "o",
                            "DomainName": f"site-{site.lower()}.s3.amazonaws.com",
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": "o",
                    "ViewerProtocolPolicy": "redirect-to-https",
                    "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
                },
            }
        )["Distribution"]
        outputs.update(
            {
                f"{site}BucketName": f"site-{site.lower()}",
                f"{site}DistributionId": created["Id"],
                f"{site}Url": f"https://{created['DomainName']}/",
            }
        )
    deploy.upload_sites(aws, outputs)
    config = s3.get_object(Bucket="site-web", Key="config.js")
    text = config["Body"].read().decode()
    assert '"https://abc.execute-api.eu-west-1.amazonaws.com/prod"' in text and "allowUrlOverride: false" in text
    assert "127.0.0.1" not in text
    assert s3.head_object(Bucket="site-web", Key="index.html")["ContentType"] == "text/html"
    docs = [o["Key"] for o in s3.list_objects_v2(Bucket="site-docs")["Contents"]]
    assert "index.html" in docs and "runbook.html" in docs and "stale.js" not in docs
    for site in ("Web", "Docs"):
        listed = cloudfront.list_invalidations(DistributionId=outputs[f"{site}DistributionId"])
        assert listed["InvalidationList"]["Quantity"] == 1


def test_make_logs_follows_api_workers_and_websocket_handlers_together(aws: Callable[[str], Any]) -> None:
    client = aws("logs")
    now = int(time.time() * 1000)
    for offset, function in enumerate(("APIHandler", "WebhookDeliveries", "WebsocketMessage", "OtherApp")):
        group = f"/aws/lambda/race-platform-prod-{function}" if function != "OtherApp" else "/aws/lambda/other"
        client.create_log_group(logGroupName=group)
        client.create_log_stream(logGroupName=group, logStreamName="s")
        client.put_log_events(
            logGroupName=group,
            logStreamName="s",
            logEvents=[{"timestamp": now - 3000 + offset * 1000, "message": f"hello from {function}"}],
        )
    groups = logs.log_groups(client, "prod")
    assert [g.rsplit("-", 1)[-1] for g in groups] == ["APIHandler", "WebhookDeliveries", "WebsocketMessage"]
    lines: list[str] = []
    logs.follow(client, "prod", groups, since_ms=now - 60_000, rounds=1, out=lines.append)
    assert [line.split()[1] for line in lines] == ["APIHandler", "WebhookDeliveries", "WebsocketMessage"]  # time order
    assert all("hello from" in line for line in lines) and not any("OtherApp" in line for line in lines)
