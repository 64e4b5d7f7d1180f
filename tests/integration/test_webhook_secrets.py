"""Webhook secrets at rest and attempts never made: against real PostgreSQL, the emulator's SQS and a real receiver.

- A `whsec_` secret (and the previous one during a rotation) is stored sealed: a direct SELECT and a
  pg_dump carry neither, yet deliveries verify with the secrets shown at creation and rotation.
- Rows from before sealing (plaintext) still sign, and the minute sweep seals them.
- A wrong or missing WEBHOOK_KEY fails loudly and nothing is signed or claimed.
- A delivery its receiver left no time for in a batch is released without using up an attempt.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from typing import Any

import psycopg
import pytest
from standardwebhooks.webhooks import Webhook

from chalicelib.webhooks import queue, sealing, sweep
from chalicelib.webhooks import worker as webhook_worker
from infra.local.sqs_poller import SqsPoller
from tests.integration.conftest import Stack, cold_start_with
from tests.integration.test_webhooks import Team, drive, legacy_ok, status_of
from tests.integration.test_webhooks import fast_policy as fast_policy  # the fixtures, re-exported
from tests.integration.test_webhooks import queue_url as queue_url
from tests.integration.test_webhooks import receiver as receiver
from tests.integration.test_webhooks import sqs as sqs
from tests.integration.test_webhooks import team as team
from tests.integration.test_webhooks import worker as worker
from tests.webhook_receiver import Answer, Receiver

pytestmark = pytest.mark.integration

OTHER_KEY = base64.b64encode(b"not-the-key-that-sealed-secrets!").decode("ascii")


def stored_secrets(stack: Stack, webhook_id: str) -> tuple[str, str | None]:
    with psycopg.connect(stack.database_url) as conn:
        row = conn.execute("SELECT secret, previous_secret FROM webhooks WHERE id = %s", (webhook_id,)).fetchone()
    assert row is not None
    return row[0], row[1]


def forms(secret: str) -> list[str]:
    """Every way a secret could appear in clear: whole, its key part, and that key part's raw bytes in hex."""
    key_part = secret.removeprefix("whsec_")
    return [secret, key_part, base64.b64decode(key_part).hex()]


def verify_both_ways(secret: str, request: Any) -> None:
    Webhook(secret).verify(request.body, request.headers)
    assert legacy_ok(secret, request.body, request.headers["x-race-signature"])


def message_for(delivery_id: str, account_id: str, n: int) -> dict[str, str]:
    return {"messageId": f"m{n}", "body": queue.Message(delivery_id, account_id, 0).body()}


def test_secrets_are_sealed_in_postgres_and_a_dump_yet_deliveries_verify_with_the_secrets_shown(
    stack: Stack, postgres: Any, team: Team, receiver: Receiver, worker: SqsPoller
) -> None:
    hook = team.subscribe(receiver.url)
    first = hook["secret"]
    second = team.ok(team.api.post(f"/webhooks/{hook['id']}/rotate-secret"))["secret"]
    secret, previous = stored_secrets(stack, hook["id"])
    assert secret.startswith("enc:v1:") and previous is not None and previous.startswith("enc:v1:")
    for shown in (first, second):
        assert not any(form in secret or form in previous for form in forms(shown))
    dump = subprocess.run(
        [str(postgres.bin_dir / "pg_dump"), "--data-only", "--table=webhooks", stack.database_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dump.returncode == 0 and dump.stderr == "", dump.stderr
    assert secret in dump.stdout and previous in dump.stdout  # the dump has the rows, sealed
    for shown in (first, second):
        assert not any(form in dump.stdout for form in forms(shown))
    team.write_event()
    drive(worker, lambda: len(receiver.requests) >= 1, "the delivery")
    (request,) = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2  # rotation still dual-signs
    verify_both_ways(first, request)
    verify_both_ways(second, request)


def test_plaintext_rows_from_before_sealing_still_sign_and_the_sweep_seals_them(
    stack: Stack, team: Team, receiver: Receiver, worker: SqsPoller
) -> None:
    from chalicelib.webhooks.signing import new_secret

    current, previous = new_secret(), new_secret()
    webhook_id = str(uuid.uuid4())
    with psycopg.connect(stack.database_url) as conn:  # as migration 0008 left them
        conn.execute(
            "INSERT INTO webhooks (id, account_id, url, secret, previous_secret, previous_secret_expires_at) "
            "VALUES (%s, %s, %s, %s, %s, now() + interval '1 hour')",
            (webhook_id, team.account_id, receiver.url, current, previous),
        )
    team.write_event("Before")
    drive(worker, lambda: len(receiver.requests) >= 1, "the delivery signed with plaintext secrets")
    verify_both_ways(current, receiver.requests[0])
    verify_both_ways(previous, receiver.requests[0])
    sweep.run()
    secret, sealed_previous = stored_secrets(stack, webhook_id)
    assert secret.startswith("enc:v1:") and sealed_previous is not None and sealed_previous.startswith("enc:v1:")
    assert not any(form in secret + sealed_previous for form in forms(current) + forms(previous))
    team.write_event("After")
    drive(worker, lambda: len(receiver.requests) >= 2, "the delivery signed with sealed secrets")
    verify_both_ways(current, receiver.requests[1])
    verify_both_ways(previous, receiver.requests[1])


def test_a_wrong_key_fails_loudly_and_nothing_is_claimed_signed_or_sealed(
    stack: Stack, team: Team, receiver: Receiver, worker: SqsPoller
) -> None:
    hook = team.subscribe(receiver.url)
    team.write_event()
    (item,) = team.deliveries(hook["id"])
    with cold_start_with(WEBHOOK_KEY=OTHER_KEY):
        with pytest.raises(sealing.WrongKey, match="is not the key that sealed the webhook secrets"):
            webhook_worker.process([message_for(item["id"], team.account_id, 0)])
        for answer in (
            team.api.post("/webhooks", {"url": receiver.url}),
            team.api.post(f"/webhooks/{hook['id']}/rotate-secret"),
        ):
            assert answer.status_code == 500, answer.text
            error = answer.json()["error"]
            assert error["code"] == "misconfigured" and "WEBHOOK_KEY" in error["message"]
        sweep.run()  # logs the failure, keeps sweeping deliveries
    assert receiver.requests == []
    detail = team.delivery(hook["id"], item["id"])
    assert detail["status"] == "pending" and detail["attempts"] == 0 and detail["attemptLog"] == []
    assert [h["id"] for h in team.ok(team.api.get("/webhooks"))["items"]] == [hook["id"]]
    drive(worker, lambda: status_of(team, hook["id"], item["id"]) == "succeeded", "the delivery, right key")
    verify_both_ways(hook["secret"], receiver.requests[0])


def test_without_a_key_the_local_stage_answers_misconfigured_and_writes_nothing(team: Team, receiver: Receiver) -> None:
    with cold_start_with(WEBHOOK_KEY=""):
        answer = team.api.post("/webhooks", {"url": receiver.url})
    assert answer.status_code == 500, answer.text
    assert answer.json()["error"]["code"] == "misconfigured"
    assert answer.json()["error"]["message"].startswith("WEBHOOK_KEY is required")
    assert team.ok(team.api.get("/webhooks"))["items"] == []


def test_a_delivery_left_no_time_in_a_batch_uses_up_no_attempt(stack: Stack, team: Team, worker: SqsPoller) -> None:
    """Five deliveries to a receiver answering in 0.55 s, one batch, a 1 s attempt timeout: three lanes
    make one attempt each, the other two are released untouched (no attempt, no retry used up) and sent
    with a new message; every delivery then succeeds in exactly one attempt."""
    slow = Receiver().start()
    slow.answer = Answer(200, delay_s=0.55)
    try:
        hook = team.subscribe(slow.url)["id"]
        for n in range(5):
            team.write_event(f"Slow {n}")
        ids = [d["id"] for d in team.deliveries(hook)]
        assert webhook_worker.process([message_for(d, team.account_id, n) for n, d in enumerate(ids)]) == {}
        details = [team.delivery(hook, d) for d in ids]
        made = [d for d in details if d["attemptLog"]]
        left = [d for d in details if not d["attemptLog"]]
        assert len(made) == 3 == len(slow.requests) and len(left) == 2
        assert all(d["status"] == "succeeded" and d["attempts"] == 1 for d in made)
        assert all(d["status"] == "pending" and d["attempts"] == 0 and d["lastError"] is None for d in left)
        drive(worker, lambda: all(status_of(team, hook, d["id"]) == "succeeded" for d in left), "the released ones")
    finally:
        slow.stop()
    for delivery_id in ids:
        detail = team.delivery(hook, delivery_id)
        assert detail["attempts"] == 1 and [a["attempt"] for a in detail["attemptLog"]] == [1], detail
