"""The merge template around Chalice's, on a SAM skeleton (runs without packaging: any Python)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.aws.template import hosting_resources, merge_template, resources_template

pytestmark = pytest.mark.unit

FUNCTIONS = ("APIHandler", "WebhookDeliveries", "WebsocketConnect", "WebsocketMessage", "WebsocketDisconnect")


def _sam() -> dict[str, Any]:
    return {"Resources": {name: {"Type": "AWS::Serverless::Function", "Properties": {}} for name in FUNCTIONS}}


def test_functions_have_stable_names_and_read_the_database_url_from_a_parameter() -> None:
    merged = merge_template(_sam(), "prod")
    for name in FUNCTIONS:
        properties = merged["Resources"][name]["Properties"]
        assert properties["FunctionName"] == f"race-platform-prod-{name}"  # log group /aws/lambda/<that>
        variables = properties["Environment"]["Variables"]
        assert variables["DATABASE_URL_PARAMETER"] == {"Ref": "DatabaseUrlParameter"}
        assert "DATABASE_URL" not in variables  # never a plaintext environment value
    assert "DatabaseUrl" not in merged["Parameters"]
    assert merged["Parameters"]["DatabaseUrlParameter"]["Default"] == "/race/prod/database-url"
    statements = merged["Resources"]["RacePlatformDataAccess"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Action"] == ["secretsmanager:GetSecretValue"] for s in statements)


def test_web_and_docs_are_hosted_outside_the_emulator_built_part() -> None:
    merged = merge_template(_sam(), "dev")
    for site in ("Web", "Docs"):
        distribution = merged["Resources"][f"{site}Distribution"]["Properties"]["DistributionConfig"]
        assert distribution["DefaultRootObject"] == "index.html"
        assert distribution["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
        bucket = merged["Resources"][f"{site}Bucket"]["Properties"]
        assert bucket["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True  # only CloudFront reads it
        assert {f"{site}BucketName", f"{site}DistributionId", f"{site}Url"} <= set(merged["Outputs"])
    assert not set(hosting_resources()) & set(resources_template()["Resources"])


def test_functions_read_the_webhook_data_key_from_a_parameter_they_may_read() -> None:
    merged = merge_template(_sam(), "prod")
    for name in FUNCTIONS:
        variables = merged["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert variables["WEBHOOK_KEY_PARAMETER"] == {"Ref": "WebhookKeyParameter"}
        assert "WEBHOOK_KEY" not in variables  # never a plaintext environment value
    assert merged["Parameters"]["WebhookKeyParameter"]["Default"] == "/race/prod/webhook-key"
    statements = merged["Resources"]["RacePlatformDataAccess"]["Properties"]["PolicyDocument"]["Statement"]
    readable = [s["Resource"] for s in statements if s["Action"] == ["ssm:GetParameter"]]
    assert readable and all("parameter/race/*" in str(r) for r in readable)
