"""Webhooks end to end: real writes -> outbox -> SQS (emulator) -> worker -> a real receiver on 127.0.0.1.

The worker runs through the local SQS event source mapping (`SqsPoller.poll_once`), the sweep by calling
its function. The retry schedule is shortened (WEBHOOK_* variables) so that a whole schedule takes
moments; everything else is the production path.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from standardwebhooks.webhooks import Webhook

from infra.local.sqs_poller import SqsPoller
from tests.integration.conftest import Api, Stack, cold_start_with, mailed_token, new_account, token_for
from tests.webhook_receiver import Answer, Receiver

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 20.0
FAST_POLICY = {
    "WEBHOOK_RETRY_DELAYS_S": "0,0,0",
    "WEBHOOK_RETRY_JITTER": "0",
    "WEBHOOK_TIMEOUT_S": "1",
    "WEBHOOK_LOCK_S": "1",
    "WEBHOOK_SWEEP_GRACE_S": "0",
}
VISIBILITY_TIMEOUT_S = 2


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqs(stack: Stack) -> Any:
    return boto3.client("sqs", endpoint_url=stack.aws_endpoint_url, region_name="us-east-1")


@pytest.fixture(scope="module")
def queue_url(sqs: Any) -> Iterator[str]:
    """The webhook queue, with a short visibility timeout so redelivery takes seconds, not a minute."""
    from chalicelib.config import settings

    url = sqs.get_queue_url(QueueName=settings().webhook_queue)["QueueUrl"]
    with contextlib.suppress(sqs.exceptions.PurgeQueueInProgress):
        sqs.purge_queue(QueueUrl=url)  # what earlier modules left behind is not ours to wait for
    before = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT_S)})
    yield url
    sqs.set_queue_attributes(QueueUrl=url, Attributes=before)


@pytest.fixture(scope="module", autouse=True)
def fast_policy(stack: Stack) -> Iterator[None]:
    with cold_start_with(**FAST_POLICY):  # the retry schedule in seconds, read afresh
        yield


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def worker(stack: Stack, sqs: Any, queue_url: str) -> SqsPoller:
    from app import app
    from chalicelib.resources import WEBHOOK_QUEUE

    return SqsPoller(app, sqs, wait_time_s=0, only={WEBHOOK_QUEUE.name})


class Team:
    """A fresh account (owner) with an API client."""

    def __init__(self, stack: Stack) -> None:
        self.email, self.account_id = new_account("owner")
        self.api = Api(stack.api_url, token_for(self.email))

    def ok(self, answer: Any, status: int = 200) -> Any:
        assert answer.status_code == status, answer.text
        return answer.json() if answer.text else None

    def subscribe(self, url: str, **fields: Any) -> dict[str, Any]:
        return self.ok(self.api.post("/webhooks", {"url": url, **fields}), 201)  # type: ignore[no-any-return]

    def write_event(self, name: str = "Sebring 12h") -> dict[str, Any]:
        return self.ok(self.api.post("/events", {"name": name}), 201)  # type: ignore[no-any-return]

    def deliveries(self, webhook_id: str, query: str = "") -> list[dict[str, Any]]:
        page = self.ok(self.api.get(f"/webhooks/{webhook_id}/deliveries?limit=500{query}"))
        return page["items"]  # type: ignore[no-any-return]

    def delivery(self, webhook_id: str, delivery_id: str) -> dict[str, Any]:
        return self.ok(self.api.get(f"/webhooks/{webhook_id}/deliveries/{delivery_id}"))  # type: ignore[no-any-return]


@pytest.fixture
def team(stack: Stack) -> Team:
    return Team(stack)


def drive(worker: SqsPoller, done: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    """Run the worker (one receive + batch at a time) until `done()`; fail naming `what` at the deadline."""
    deadline = time.monotonic() + deadline_s
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        if worker.poll_once() == 0:
            time.sleep(0.05)


def settle(worker: SqsPoller, quiet_s: float = 0.5) -> None:
    """Run the worker until the queue has had nothing for it for `quiet_s`."""
    quiet_until = time.monotonic() + quiet_s
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < quiet_until:
        assert time.monotonic() < deadline, "the queue never went quiet"
        if worker.poll_once():
            quiet_until = time.monotonic() + quiet_s
        else:
            time.sleep(0.05)


def status_of(team: Team, webhook_id: str, delivery_id: str) -> str:
    return str(team.delivery(webhook_id, delivery_id)["status"])


def legacy_ok(secret: str, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate.strip()) for candidate in header.split(","))


# --- signatures and payload ---------------------------------------------------------------------------


def test_a_write_is_delivered_signed_both_ways(team: Team, receiver: Receiver, worker: SqsPoller) -> None:
    hook = team.subscribe(receiver.url, description="Race control bridge")
    secret = hook["secret"]
    assert secret.startswith("whsec_")
    event = team.write_event()
    drive(worker, lambda: len(receiver.requests) >= 1, "the delivery")
    (request,) = receiver.requests
    headers = request.headers
    # Standard Webhooks, verified by the reference library (timestamp within 5 minutes, id signed)
    payload = Webhook(secret).verify(request.body, headers)
    assert legacy_ok(secret, request.body, headers["x-race-signature"])
    assert headers["x-race-signature"].count("sha256=") == 1
    assert headers["x-race-event"] == "event.create"
    assert headers["user-agent"] == "race-webhooks/1.0"
    assert headers["content-type"] == "application/json"
    assert headers["x-race-delivery"] == headers["webhook-id"]
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 120
    assert payload["type"] == "event.create"
    assert payload["accountId"] == team.account_id
    assert payload["data"]["id"] == event["id"] and payload["data"]["name"] == "Sebring 12h"
    assert isinstance(payload["eventId"], int)
    assert payload["timestamp"].endswith("Z")
    # recorded: status, attempts, time of success, the attempt with the answer's first KB
    drive(worker, lambda: team.deliveries(hook["id"])[0]["status"] == "succeeded", "the success to be recorded")
    (item,) = team.deliveries(hook["id"])
    assert item["id"] == headers["webhook-id"]
    assert item["eventType"] == "event.create" and item["eventId"] == payload["eventId"]
    assert item["attempts"] == 1 and item["lastStatusCode"] == 200 and item["lastError"] is None
    assert item["succeededAt"] is not None and item["nextAttemptAt"] is None
    detail = team.delivery(hook["id"], item["id"])
    assert detail["payload"] == payload
    (attempt,) = detail["attemptLog"]
    assert attempt["attempt"] == 1 and attempt["statusCode"] == 200 and attempt["responseBody"] == "ok"
    assert attempt["durationMs"] >= 0 and attempt["finishedAt"] >= attempt["startedAt"]


def test_a_write_with_many_deliveries_sends_one_message_and_delivers_each_once(
    team: Team, receiver: Receiver, sqs: Any, queue_url: str, worker: SqsPoller
) -> None:
    hooks = [team.subscribe(receiver.url + f"?n={n}") for n in range(12)]
    before = int(
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )
    team.write_event("Daytona 24h")  # 12 deliveries of one write
    after = int(
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )
    assert after - before == 1  # one message carries the write's 12 deliveries
    drive(worker, lambda: len(receiver.requests) >= 12, "every delivery")
    settle(worker)
    assert len(receiver.requests) == 12 and len({r.headers["webhook-id"] for r in receiver.requests}) == 12
    for hook in hooks:
        (item,) = team.deliveries(hook["id"])
        assert item["status"] == "succeeded" and item["attempts"] == 1


def test_the_secret_is_shown_once_and_rotation_signs_with_both_for_a_day(
    team: Team, receiver: Receiver, worker: SqsPoller
) -> None:
    hook = team.subscribe(receiver.url)
    old = hook["secret"]
    listed = team.ok(team.api.get("/webhooks"))["items"]
    assert [h["id"] for h in listed] == [hook["id"]]
    assert all("secret" not in h for h in [*listed, team.ok(team.api.get(f"/webhooks/{hook['id']}"))])
    rotated = team.ok(team.api.post(f"/webhooks/{hook['id']}/rotate-secret"))
    new = rotated["secret"]
    assert new != old and new.startswith("whsec_")
    ends = dt.datetime.fromisoformat(rotated["secretRotationEndsAt"].replace("Z", "+00:00"))
    assert dt.timedelta(hours=23) < ends - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=24)
    team.write_event()
    drive(worker, lambda: len(receiver.requests) >= 1, "the delivery")
    request = receiver.requests[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):  # a receiver with either secret accepts it
        Webhook(secret).verify(request.body, request.headers)
        assert legacy_ok(secret, request.body, request.headers["x-race-signature"])


# --- retries, final, replay (the runbook) -----------------------------------------------------------------


RUNBOOK_LIST = """curl -H "Authorization: Bearer $TOKEN" \\
"https://api.race.example.com/webhooks/$WEBHOOK_ID/deliveries?limit=500" \\
| jq '.items[] | select(.succeededAt == null) | .id'"""
RUNBOOK_REPLAY = """curl -X POST -H "Authorization: Bearer $TOKEN" \\
"https://api.race.example.com/webhooks/$WEBHOOK_ID/deliveries/$DELIVERY_ID/replay\""""


def runbook(stack: Stack, command: str, **env: str) -> str:
    """Run one of the runbook's commands exactly as written, against this stack instead of production."""
    script = command.replace("https://api.race.example.com", stack.api_url)
    done = subprocess.run(
        ["bash", "-c", script], env={**os.environ, **env}, capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def test_receiver_down_for_the_whole_schedule_then_final_then_replayed_once(
    stack: Stack, team: Team, receiver: Receiver, worker: SqsPoller
) -> None:
    hook = team.subscribe(receiver.url)
    receiver.down()
    team.write_event()
    (item,) = team.deliveries(hook["id"])
    drive(worker, lambda: status_of(team, hook["id"], item["id"]) == "failed", "the delivery to fail for good")
    detail = team.delivery(hook["id"], item["id"])
    assert detail["attempts"] == 4 and len(detail["attemptLog"]) == 4
    assert all(a["error"].startswith("could not connect") for a in detail["attemptLog"])
    assert detail["succeededAt"] is None and detail["nextAttemptAt"] is None
    settle(worker)
    assert status_of(team, hook["id"], item["id"]) == "failed"  # final: nothing retries it
    receiver.up()
    # the on-call operator's commands, as the runbook writes them
    env = {"TOKEN": team.api.token or "", "WEBHOOK_ID": hook["id"]}
    failed_ids = [json.loads(line) for line in runbook(stack, RUNBOOK_LIST, **env).split()]
    assert failed_ids == [item["id"]]
    for delivery_id in failed_ids:
        answer = json.loads(runbook(stack, RUNBOOK_REPLAY, **env, DELIVERY_ID=delivery_id))
        assert answer["id"] == delivery_id and answer["status"] == "pending"
    drive(worker, lambda: status_of(team, hook["id"], item["id"]) == "succeeded", "the replay")
    settle(worker)
    assert len(receiver.requests) == 1  # exactly one success
    assert receiver.requests[0].headers["webhook-id"] == item["id"]
    assert runbook(stack, RUNBOOK_LIST, **env).split() == []
    replayed = team.delivery(hook["id"], item["id"])
    assert replayed["attempts"] == 5 and replayed["cycle"] == 2
    assert replayed["attemptLog"][-1]["statusCode"] == 200 and replayed["attemptLog"][-1]["cycle"] == 2


def test_three_retries_then_final_with_four_recorded_attempts(
    team: Team, receiver: Receiver, worker: SqsPoller
) -> None:
    hook = team.subscribe(receiver.url)
    receiver.answer = Answer(500, body=b"database is on fire")
    team.write_event()
    (item,) = team.deliveries(hook["id"])
    drive(worker, lambda: status_of(team, hook["id"], item["id"]) == "failed", "the final failure")
    settle(worker)
    assert len(receiver.requests) == 4
    assert {r.headers["webhook-id"] for r in receiver.requests} == {item["id"]}
    (final,) = team.deliveries(hook["id"], "&status=failed")
    assert final["attempts"] == 4 and final["lastStatusCode"] == 500 and final["lastError"] == "HTTP 500"
    attempts = team.delivery(hook["id"], item["id"])["attemptLog"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert [a["statusCode"] for a in attempts] == [500] * 4
    assert attempts[0]["responseBody"] == "database is on fire"
    # a sweep finds nothing to do for a final delivery
    from chalicelib.webhooks import sweep

    sweep.run()
    settle(worker)
    assert len(receiver.requests) == 4


def test_retry_after_on_429_is_honoured(team: Team, receiver: Receiver, worker: SqsPoller) -> None:
    hook = team.subscribe(receiver.url)
    receiver.respond = lambda r: (
        Answer(429, headers={"Retry-After": "2"}) if len(receiver.requests) == 1 else Answer(200)
    )
    team.write_event()
    (item,) = team.deliveries(hook["id"])
    drive(worker, lambda: len(receiver.requests) >= 1, "the first attempt")
    drive(worker, lambda: team.delivery(hook["id"], item["id"])["status"] == "retrying", "the retry to be planned")
    planned = team.delivery(hook["id"], item["id"])
    finished = dt.datetime.fromisoformat(planned["attemptLog"][0]["finishedAt"].replace("Z", "+00:00"))
    next_at = dt.datetime.fromisoformat(planned["nextAttemptAt"].replace("Z", "+00:00"))
    assert next_at - finished >= dt.timedelta(seconds=1.9)  # not the (zero) backoff: the receiver's 2 s
    drive(worker, lambda: status_of(team, hook["id"], item["id"]) == "succeeded", "the retry")
    assert planned["lastStatusCode"] == 429


def test_410_disables_the_subscription_with_a_reason(team: Team, receiver: Receiver, worker: SqsPoller) -> None:
    hook = team.subscribe(receiver.url)
    receiver.answer = Answer(410, body=b"gone")
    team.write_event()
    (item,) = team.deliveries(hook["id"])
    drive(worker, lambda: status_of(team, hook["id"], item["id"]) == "failed", "the delivery to fail")
    assert len(receiver.requests) == 1
    state = team.ok(team.api.get(f"/webhooks/{hook['id']}"))
    assert state["enabled"] is False and "410" in state["disabledReason"]
    team.write_event("after 410")
    assert len(team.deliveries(hook["id"])) == 1  # a disabled subscription gets no new deliveries
    assert team.api.post(f"/webhooks/{hook['id']}/deliveries/{item['id']}/replay").status_code == 409
    enabled = team.ok(team.api.call("PATCH", f"/webhooks/{hook['id']}", {"enabled": True}))
    assert enabled["enabled"] is True and enabled["disabledReason"] is None


def test_redirects_and_timeouts_are_failed_attempts(team: Team, receiver: Receiver, worker: SqsPoller) -> None:
    hook = team.subscribe(receiver.url)
    answers = [
        Answer(301, headers={"Location": "https://elsewhere.example/"}),
        Answer(200, delay_s=1.5),
        Answer(204, body=b""),
    ]
    receiver.respond = lambda r: answers[min(len(receiver.requests), 3) - 1]
    team.write_event()
    (item,) = team.deliveries(hook["id"])
    drive(worker, lambda: status_of(team, hook["id"], item["id"]) == "succeeded", "the third attempt")
    log = team.delivery(hook["id"], item["id"])["attemptLog"]
    assert log[0]["statusCode"] == 301 and "redirect" in log[0]["error"]
    assert log[1]["statusCode"] is None and log[1]["error"] == "timed out after 1 s"
    assert log[2]["statusCode"] == 204 and log[2]["error"] is None


# --- at-least-once without needless duplicates ----------------------------------------------------------


def test_the_worker_in_a_process_of_its_own_delivers_as_make_dev_runs_the_room_publisher(
    stack: Stack, team: Team, receiver: Receiver, queue_url: str
) -> None:
    from chalicelib.resources import WEBHOOK_QUEUE
    from infra.local.poller_process import PollerProcess

    hook = team.subscribe(receiver.url)
    child = PollerProcess({WEBHOOK_QUEUE.name})  # inherits this process's environment, as make dev's does
    child.start_in_thread()
    try:
        team.write_event()
        (item,) = team.deliveries(hook["id"])
        deadline = time.monotonic() + DEADLINE_S
        while status_of(team, hook["id"], item["id"]) != "succeeded":
            assert time.monotonic() < deadline, "the child process never delivered"
            time.sleep(0.1)
    finally:
        child.stop()
    assert [r.headers["webhook-id"] for r in receiver.requests] == [item["id"]]


def test_a_poller_process_for_a_queue_the_app_does_not_handle_fails_to_start(stack: Stack) -> None:
    from infra.local.poller_process import PollerProcess

    with pytest.raises(RuntimeError, match="did not start"):
        PollerProcess({"race-no-such-queue"}).start_in_thread()


def test_a_worker_killed_after_the_post_is_redelivered_with_the_same_webhook_id(
    stack: Stack, team: Team, receiver: Receiver, worker: SqsPoller
) -> None:
    hook = team.subscribe(receiver.url)
    child_env = {**os.environ, "PYTHONPATH": str(REPO), "WEBHOOK_TIMEOUT_S": "20"}
    code = (
        "import boto3, os\nfrom app import app\nfrom infra.local.sqs_poller import SqsPoller\n"
        "poller = SqsPoller(app, boto3.client('sqs', endpoint_url=os.environ['AWS_ENDPOINT_URL'], "
        "region_name='us-east-1'), wait_time_s=1, only={'race-webhook-deliveries'})\n"
        "while True:\n    poller.poll_once()\n"
    )
    with receiver.holding() as (arrived, release):
        team.write_event()
        (item,) = team.deliveries(hook["id"])
        child = subprocess.Popen(
            [sys.executable, "-c", code], cwd=REPO, env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            assert arrived.wait(30), "the worker process never POSTed"
            child.send_signal(signal.SIGKILL)  # after the POST reached the receiver, before any record of it
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        release.set()  # the receiver answers 200 into the void
    assert status_of(team, hook["id"], item["id"]) == "sending"
    drive(worker, lambda: status_of(team, hook["id"], item["id"]) == "succeeded", "the redelivery")
    settle(worker)
    assert len(receiver.requests) == 2
    assert [r.headers["webhook-id"] for r in receiver.requests] == [item["id"], item["id"]]
    assert receiver.requests[0].body == receiver.requests[1].body
    detail = team.delivery(hook["id"], item["id"])
    assert detail["attempts"] == 2
    first, second = detail["attemptLog"]
    assert "worker stopped" in first["error"] and first["statusCode"] is None
    assert second["statusCode"] == 200
    assert sum(1 for a in detail["attemptLog"] if a["statusCode"] == 200) == 1


def test_a_redelivered_message_for_a_succeeded_delivery_sends_nothing(
    team: Team, receiver: Receiver, worker: SqsPoller, sqs: Any, queue_url: str
) -> None:
    hook = team.subscribe(receiver.url)
    team.write_event()
    (item,) = team.deliveries(hook["id"])
    drive(worker, lambda: status_of(team, hook["id"], item["id"]) == "succeeded", "the delivery")
    body = json.dumps({"deliveryId": item["id"], "accountId": team.account_id})
    for _ in range(3):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    settle(worker)
    assert len(receiver.requests) == 1
    assert team.delivery(hook["id"], item["id"])["attempts"] == 1


def test_two_workers_never_send_the_same_attempt(team: Team, receiver: Receiver, worker: SqsPoller) -> None:
    from chalicelib.webhooks import worker as webhook_worker

    hook = team.subscribe(receiver.url)
    receiver.answer = Answer(200, delay_s=0.3)  # both workers are inside the attempt at once
    team.write_event()
    (item,) = team.deliveries(hook["id"])
    records = [{"messageId": f"m{i}", "body": json.dumps({"deliveryId": item["id"]})} for i in range(4)]
    barrier = threading.Barrier(4)

    def run(record: dict[str, Any]) -> None:
        barrier.wait()
        webhook_worker.process([record])

    threads = [threading.Thread(target=run, args=(r,)) for r in records]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    settle(worker)  # the original queue message finds it succeeded
    assert len(receiver.requests) == 1
    assert team.delivery(hook["id"], item["id"])["attempts"] == 1


def test_a_dropped_queue_message_is_delivered_by_the_sweep(
    team: Team, receiver: Receiver, worker: SqsPoller, sqs: Any, queue_url: str
) -> None:
    from chalicelib.webhooks import sweep

    hook = team.subscribe(receiver.url)
    team.write_event()
    (item,) = team.deliveries(hook["id"])
    # lose the message: take it off the queue without processing it
    deadline = time.monotonic() + DEADLINE_S
    dropped = False
    while not dropped:
        assert time.monotonic() < deadline, "the delivery's message never showed up"
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            if item["id"] in message["Body"]:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                dropped = True
            else:
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
    settle(worker)
    assert receiver.requests == [] and status_of(team, hook["id"], item["id"]) == "pending"
    report = sweep.run()
    assert report.enqueued >= 1
    drive(worker, lambda: status_of(team, hook["id"], item["id"]) == "succeeded", "the swept delivery")
    assert len(receiver.requests) == 1


def test_a_message_that_could_not_be_sent_after_commit_is_sent_by_the_next_sweep(
    team: Team, receiver: Receiver, worker: SqsPoller, stack: Stack
) -> None:
    from chalicelib.webhooks import outbox, sweep

    hook = team.subscribe(receiver.url)
    team.write_event()
    (item,) = team.deliveries(hook["id"])
    outbox.forget_enqueued([item["id"]])  # what dispatch() does when SQS refuses
    with psycopg.connect(stack.database_url) as conn:
        enqueued = conn.execute("SELECT enqueued_at FROM webhook_deliveries WHERE id = %s", (item["id"],)).fetchone()
    assert enqueued == (None,)
    assert sweep.run().enqueued >= 1
    drive(worker, lambda: status_of(team, hook["id"], item["id"]) == "succeeded", "the swept delivery")


# --- filters, recovery, test events ----------------------------------------------------------------------


def test_filters_match_entity_types_and_operations(team: Team, receiver: Receiver) -> None:
    issues_only = team.subscribe(receiver.url, entityTypes=["issue"], operations=["create", "delete"])
    everything = team.subscribe(receiver.url)
    events_updates = team.subscribe(receiver.url, entityTypes=["event", "board_card"], operations=["update"])
    paused = team.subscribe(receiver.url, enabled=False)
    event = team.write_event()
    car = team.ok(team.api.post("/cars", {"eventId": event["id"], "number": "07"}), 201)
    issue = team.ok(team.api.post("/issues", {"carId": car["id"], "title": "Vibration"}), 201)
    team.ok(team.api.call("PATCH", f"/issues/{issue['id']}", {"status": "resolved"}))
    team.ok(team.api.call("PATCH", f"/events/{event['id']}", {"track": "Sebring"}))
    team.ok(team.api.delete(f"/issues/{issue['id']}"))

    def types(hook: dict[str, Any]) -> list[str]:
        return sorted(d["eventType"] for d in team.deliveries(hook["id"]))

    assert types(issues_only) == ["issue.create", "issue.delete"]
    assert types(everything) == sorted(
        ["event.create", "car.create", "issue.create", "issue.update", "event.update", "issue.delete"]
    )
    assert types(events_updates) == ["event.update"]
    assert types(paused) == []
    assert [d["eventType"] for d in team.deliveries(everything["id"], "&eventType=issue.update")] == ["issue.update"]


@pytest.mark.parametrize(
    "tail", ["\r\nX-Injected: 1", "\nX-Injected: 1", " HTTP/1.1\r\nHost: evil", "\tX-Injected", "\x00"]
)
def test_header_smuggling_in_a_webhook_url_is_refused(team: Team, receiver: Receiver, tail: str) -> None:
    answer = team.api.post("/webhooks", {"url": receiver.url + tail})
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "url", answer.text
    assert team.ok(team.api.get("/webhooks"))["items"] == []


def test_an_encoded_line_break_in_a_webhook_url_stays_in_the_path(
    team: Team, receiver: Receiver, worker: SqsPoller
) -> None:
    team.subscribe(receiver.url + "%0d%0aX-Injected:%201")
    team.write_event()
    drive(worker, lambda: len(receiver.requests) >= 1, "the delivery")
    (request,) = receiver.requests
    assert request.path.lower().endswith("%0d%0ax-injected:%201") and "x-injected" not in request.headers


def test_an_accepted_invite_is_delivered_at_once_not_by_the_sweep(
    stack: Stack, team: Team, receiver: Receiver, worker: SqsPoller
) -> None:
    hook = team.subscribe(receiver.url, entityTypes=["member"])
    invited = f"pit-{uuid.uuid4().hex[:8]}@example.com"
    team.ok(team.api.post("/members", {"email": invited, "role": "viewer"}), 201)
    accepted = Api(stack.api_url).post(
        "/auth/accept-invite", {"token": mailed_token(invited), "password": "a long enough password", "name": "Pit"}
    )
    assert accepted.status_code == 200, accepted.text
    # Only the worker runs here (no sweep): the queue message was sent when the acceptance committed.
    drive(worker, lambda: len(receiver.requests) >= 2, "the member deliveries")
    assert sorted(r.headers["x-race-event"] for r in receiver.requests) == ["member.create", "member.update"]
    assert {d["status"] for d in team.deliveries(hook["id"])} == {"succeeded"}


def test_recover_replays_every_failed_delivery_of_the_window(
    team: Team, receiver: Receiver, worker: SqsPoller, stack: Stack
) -> None:
    hook = team.subscribe(receiver.url)
    receiver.answer = Answer(503)
    for n in range(3):
        team.write_event(f"event {n}")
    drive(worker, lambda: len(team.deliveries(hook["id"], "&status=failed")) == 3, "three final failures")
    items = team.deliveries(hook["id"])
    older = items[-1]  # newest first: the last is the oldest; move it out of the window
    with psycopg.connect(stack.database_url) as conn:
        conn.execute(
            "UPDATE webhook_deliveries SET created_at = created_at - interval '2 hours' WHERE id = %s", (older["id"],)
        )
    receiver.requests.clear()
    receiver.answer = Answer(200)
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    answer = team.ok(team.api.post(f"/webhooks/{hook['id']}/recover", {"since": since}), 202)
    assert answer["recovering"] == 2
    drive(worker, lambda: len(team.deliveries(hook["id"], "&status=succeeded")) == 2, "the recovered deliveries")
    settle(worker)
    assert sorted(r.headers["webhook-id"] for r in receiver.requests) == sorted(i["id"] for i in items[:2])
    assert [d["id"] for d in team.deliveries(hook["id"], "&status=failed")] == [older["id"]]
    windowed = team.deliveries(hook["id"], "&until=" + since)
    assert [d["id"] for d in windowed] == [older["id"]]
    bad = team.api.post(f"/webhooks/{hook['id']}/recover", {"since": since, "until": "2000-01-01T00:00:00Z"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "until"


def test_the_test_event_goes_through_the_normal_path(team: Team, receiver: Receiver, worker: SqsPoller) -> None:
    hook = team.subscribe(receiver.url, entityTypes=["lap"])
    queued = team.ok(team.api.post(f"/webhooks/{hook['id']}/test"), 202)
    assert queued["eventType"] == "webhook.test" and queued["status"] == "pending"
    drive(worker, lambda: len(receiver.requests) >= 1, "the test event")
    payload = Webhook(hook["secret"]).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert payload["type"] == "webhook.test" and payload["data"]["webhookId"] == hook["id"]
    assert receiver.requests[0].headers["x-race-event"] == "webhook.test"


def test_deliveries_page_newest_first_with_cursors(team: Team, receiver: Receiver) -> None:
    hook = team.subscribe(receiver.url)
    for n in range(3):
        team.write_event(f"event {n}")
    first = team.ok(team.api.get(f"/webhooks/{hook['id']}/deliveries?limit=2"))
    assert len(first["items"]) == 2 and first["nextCursor"]
    second = team.ok(team.api.get(f"/webhooks/{hook['id']}/deliveries?limit=2&cursor={first['nextCursor']}"))
    assert len(second["items"]) == 1 and second["nextCursor"] is None
    everything = first["items"] + second["items"]
    assert [d["createdAt"] for d in everything] == sorted((d["createdAt"] for d in everything), reverse=True)
    assert len({d["id"] for d in everything}) == 3


# --- validation, roles, isolation, SSRF --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": "ftp://example.com/"}, "url"),
        ({"url": "http://user:pw@127.0.0.1/"}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "url"),  # metadata: refused in every stage
        ({"url": "http://127.0.0.1:4566/"}, "url"),  # the emulator: loopback outside OUTBOUND_ALLOW, every stage
        ({"url": "http://[::1]:8000/"}, "url"),  # the API itself
        ({"url": "http://93.184.216.34/", "entityTypes": ["laps"]}, "entityTypes"),
        ({"url": "http://93.184.216.34/", "entityTypes": "lap"}, "entityTypes"),
        ({"url": "http://93.184.216.34/", "operations": []}, "operations"),
        ({"url": "http://93.184.216.34/", "operations": ["upsert"]}, "operations"),
        ({"url": "http://93.184.216.34/", "enabled": "yes"}, "enabled"),
        ({"url": "http://93.184.216.34/", "secret": "mine"}, "secret"),
    ],
)
def test_bad_subscriptions_are_refused_naming_the_field(team: Team, body: dict[str, Any], field: str) -> None:
    answer = team.api.post("/webhooks", body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == field


def test_bad_list_parameters_are_refused_naming_them(team: Team, receiver: Receiver) -> None:
    hook = team.subscribe(receiver.url)
    for query, field in (
        ("status=lost", "status"),
        ("since=yesterday", "since"),
        ("limit=501", "limit"),
        ("cursor=%%%", "cursor"),
        ("colour=red", "colour"),
    ):
        answer = team.api.get(f"/webhooks/{hook['id']}/deliveries?{query}")
        assert answer.status_code == 400 and answer.json()["error"]["field"] == field, query


def test_only_admins_manage_webhooks(stack: Stack, team: Team, receiver: Receiver) -> None:
    hook = team.subscribe(receiver.url)
    email, _ = new_account("engineer")
    engineer = Api(stack.api_url, token_for(email))
    assert engineer.post("/webhooks", {"url": receiver.url}).status_code == 403
    assert engineer.get("/webhooks").status_code == 403
    admin_email, _account_id = new_account("admin")
    admin = Api(stack.api_url, token_for(admin_email))
    assert admin.post("/webhooks", {"url": receiver.url}).status_code == 201
    assert hook["id"] not in [h["id"] for h in admin.get("/webhooks").json()["items"]]


def test_another_accounts_webhook_ids_are_404(stack: Stack, team: Team, receiver: Receiver, worker: SqsPoller) -> None:
    hook = team.subscribe(receiver.url)
    team.write_event()
    (item,) = team.deliveries(hook["id"])
    rival = Team(stack)
    base, delivery = f"/webhooks/{hook['id']}", f"/webhooks/{hook['id']}/deliveries/{item['id']}"
    for method, path, body in [
        ("GET", base, None),
        ("PATCH", base, {"enabled": False}),
        ("DELETE", base, None),
        ("POST", f"{base}/rotate-secret", None),
        ("POST", f"{base}/test", None),
        ("GET", f"{base}/deliveries", None),
        ("GET", delivery, None),
        ("POST", f"{delivery}/replay", None),
        ("POST", f"{base}/recover", {"since": "2020-01-01T00:00:00Z"}),
    ]:
        answer = rival.api.call(method, path, body)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "not_found"
    # and a delivery id under another of the owner's own webhooks is 404 too
    other = team.subscribe(receiver.url)
    assert team.api.get(f"/webhooks/{other['id']}/deliveries/{item['id']}").status_code == 404
    assert team.ok(team.api.get(base))["enabled"] is True
    drive(worker, lambda: status_of(team, hook["id"], item["id"]) == "succeeded", "the delivery")


@pytest.fixture
def outside_local(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """STAGE=prod for the duration of the test, and a resolver for names the test makes up (no DNS here)."""
    from chalicelib.config import settings

    names: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (names[host], port or 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setenv("STAGE", "prod")
    monkeypatch.setenv("WEB_URL", "https://race.example")  # required outside local
    settings.cache_clear()
    try:
        yield names
    finally:
        monkeypatch.setenv("STAGE", "local")
        settings.cache_clear()


def test_internal_destinations_are_refused_outside_local(
    team: Team, outside_local: dict[str, str], receiver: Receiver
) -> None:
    outside_local["hooks.internal.example"] = "10.1.2.3"
    outside_local["hooks.partner.example"] = "93.184.216.34"
    for url in (
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://hooks.internal.example/hook",
        "https://[::1]/hook",
        receiver.url,
    ):
        answer = team.api.post("/webhooks", {"url": url})
        assert answer.status_code == 400, (url, answer.text)
        assert answer.json()["error"]["field"] == "url"
    assert team.api.post("/webhooks", {"url": "https://hooks.partner.example/hook"}).status_code == 201
    patched = team.subscribe("https://hooks.partner.example/hook")
    answer = team.api.call("PATCH", f"/webhooks/{patched['id']}", {"url": "https://10.0.0.1/"})
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "url"


def test_the_address_is_checked_again_when_sending(
    team: Team, outside_local: dict[str, str], worker: SqsPoller
) -> None:
    outside_local["hooks.rebind.example"] = "93.184.216.34"
    hook = team.subscribe("https://hooks.rebind.example/hook")
    outside_local["hooks.rebind.example"] = "10.9.8.7"  # DNS changed since the subscription was made
    team.write_event()
    (item,) = team.deliveries(hook["id"])
    drive(worker, lambda: bool(team.delivery(hook["id"], item["id"])["attemptLog"]), "the first attempt")
    attempt = team.delivery(hook["id"], item["id"])["attemptLog"][0]
    assert attempt["statusCode"] is None
    assert attempt["error"].startswith("not sent:") and "10.9.8.7" in attempt["error"]


def test_deleting_a_webhook_deletes_its_deliveries(
    team: Team, receiver: Receiver, worker: SqsPoller, stack: Stack
) -> None:
    hook = team.subscribe(receiver.url)
    team.write_event()
    assert team.api.delete(f"/webhooks/{hook['id']}").status_code == 204
    assert team.api.get(f"/webhooks/{hook['id']}").status_code == 404
    with psycopg.connect(stack.database_url) as conn:
        left = conn.execute("SELECT count(*) FROM webhook_deliveries WHERE webhook_id = %s", (hook["id"],)).fetchone()
    assert left == (0,)
    settle(worker)  # its queue message finds nothing to send
    assert receiver.requests == []


# --- bounded outbound work ---------------------------------------------------------------------------


def test_a_dripping_receiver_is_cut_and_does_not_hold_back_another_tenant(
    stack: Stack, receiver: Receiver, worker: SqsPoller
) -> None:
    """Tenant A's receiver drips one header byte every 0.2 s (per-read timeouts never trip); five of its
    deliveries and one of tenant B's land in one batch. B's is delivered; A's are cut at the attempt
    timeout (1 s here) or left for the next batch; the batch ends one timeout after it began, not 5 x 60 s."""
    from chalicelib.webhooks import queue
    from chalicelib.webhooks import worker as webhook_worker

    dripping = Receiver().start()
    dripping.answer = Answer(200, drip_s=0.2)
    attacker, victim = Team(stack), Team(stack)
    try:
        hook_a = attacker.subscribe(dripping.url)["id"]
        hook_b = victim.subscribe(receiver.url)["id"]
        for lap in range(5):
            attacker.write_event(f"Drip {lap}")
        victim.write_event("Daytona 24")
        ids_a = [d["id"] for d in attacker.deliveries(hook_a)]
        (id_b,) = [d["id"] for d in victim.deliveries(hook_b)]
        records = [
            {"messageId": f"m{i}", "body": queue.Message(d, account, 0).body()}
            for i, (d, account) in enumerate([(x, attacker.account_id) for x in ids_a] + [(id_b, victim.account_id)])
        ]
        started = time.monotonic()
        assert webhook_worker.process(records) == {}
        elapsed_s = time.monotonic() - started
    finally:
        dripping.stop()
    assert elapsed_s < 1 + 5, elapsed_s  # one attempt timeout plus a margin for a loaded machine
    assert victim.delivery(hook_b, id_b)["status"] == "succeeded" and len(receiver.requests) == 1
    details = [attacker.delivery(hook_a, d) for d in ids_a]
    made = [d for d in details if d["attemptLog"]]
    assert 1 <= len(made) == len(dripping.requests) <= 3, details
    assert all(d["status"] == "retrying" and d["lastError"] == "timed out after 1 s" for d in made), made
    # the ones it left no time for were not attempted, so they used up no attempt (queued again instead)
    assert all(d["status"] == "pending" and d["attempts"] == 0 for d in details if not d["attemptLog"]), details
    settle(worker)  # the messages the writes queued find nothing due (or retry quickly): leave the queue empty
