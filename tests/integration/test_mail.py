"""Local mail: provisioning verifies the sender, the emulator lists sent mail at GET /_aws/ses in
LocalStack's shape, and `make mail` (infra.local.mail) prints it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
import requests

from infra.local import mail

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _ses(endpoint: str) -> object:
    return boto3.client("ses", endpoint_url=endpoint, region_name="us-east-1")


def test_the_sender_is_verified_and_sent_mail_is_listed_as_localstack_lists_it(provisioned: str) -> None:
    ses = _ses(provisioned)
    to = f"pit-{uuid.uuid4().hex[:8]}@mail.test"
    attributes = ses.get_identity_verification_attributes(Identities=["no-reply@race-platform.dev"])  # type: ignore[attr-defined]
    assert attributes["VerificationAttributes"]["no-reply@race-platform.dev"]["VerificationStatus"] == "Success"
    sent = ses.send_email(  # type: ignore[attr-defined]
        Source="no-reply@race-platform.dev",
        Destination={"ToAddresses": [to]},
        Message={
            "Subject": {"Data": "Box box"},
            "Body": {"Text": {"Data": "Open http://x.test/#/confirm?token=a%2Bb"}},
        },
    )
    listed = requests.get(f"{provisioned}/_aws/ses", timeout=10).json()["messages"]
    (message,) = [m for m in listed if m["Id"] == sent["MessageId"]]
    assert set(message) == {"Id", "Region", "Destination", "Source", "Subject", "Body", "Timestamp"}
    assert message["Destination"] == {"ToAddresses": [to]} and message["Region"] == "us-east-1"
    assert message["Body"] == {"text_part": "Open http://x.test/#/confirm?token=a%2Bb", "html_part": None}
    by_sender = requests.get(f"{provisioned}/_aws/ses", params={"email": "nobody@else.test"}, timeout=10).json()
    assert by_sender == {"messages": []}  # ?email= filters by sender, as LocalStack's does
    assert mail.token_of(mail.latest_link(to.upper(), "#/confirm", provisioned)) == "a+b"
    with pytest.raises(LookupError):
        mail.latest_link(to, "#/accept-invite", provisioned)


def test_make_mail_prints_the_newest_mail(provisioned: str) -> None:
    to = f"crew-{uuid.uuid4().hex[:8]}@mail.test"
    _ses(provisioned).send_email(  # type: ignore[attr-defined]
        Source="no-reply@race-platform.dev",
        Destination={"ToAddresses": [to]},
        Message={"Subject": {"Data": "Stint plan"}, "Body": {"Text": {"Data": "Driver change at lap 42"}}},
    )
    env = {**os.environ, "AWS_ENDPOINT_URL": provisioned, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "infra.local.mail", "--to", to], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert f"To:      {to}" in done.stdout and "Subject: Stint plan" in done.stdout
    assert "Driver change at lap 42" in done.stdout and done.stderr == ""
    down = subprocess.run(
        [sys.executable, "-m", "infra.local.mail", "--endpoint", "http://127.0.0.1:9"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert down.returncode == 1 and "is the stack running" in down.stderr
