"""Run-sheet attachments against the real stack: presigned upload to the emulator's S3, completion
check, listing with working download URLs, delete of object and row, account isolation."""

from __future__ import annotations

from typing import Any

import boto3
import psycopg
import pytest
import requests
from botocore.exceptions import ClientError

from tests.integration.conftest import JWT_SECRET, Api, Stack, new_account, token_for

pytestmark = pytest.mark.integration
TELEMETRY = b"\x00\x01MoTeC-ish log\xff" * 64


def _ok(answer: requests.Response, status: int = 201) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _team(stack: Stack) -> tuple[Api, dict[str, Any]]:
    """A fresh account with one engineer and a run sheet."""
    email, _ = new_account("engineer")
    api = Api(stack.api_url, token_for(email))
    event = _ok(api.post("/events", {"name": "Road Atlanta"}))
    session = _ok(api.post("/sessions", {"eventId": event["id"], "name": "FP1", "type": "practice"}))
    car = _ok(api.post("/cars", {"eventId": event["id"], "number": "7"}))
    sheet = _ok(api.post("/run-sheets", {"sessionId": session["id"], "carId": car["id"]}))
    return api, sheet


def _viewer_of(stack: Stack, api: Api) -> Api:
    """A viewer in the same account as `api`'s caller."""
    from chalicelib.domain.tokens import issue_jwt

    account_id = api.get("/auth/me").json()["account"]["id"]
    with psycopg.connect(stack.database_url) as conn:
        user_id = conn.execute(
            "INSERT INTO users (email, name) VALUES (gen_random_uuid() || '@viewer.test', 'V') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO memberships (account_id, user_id, role) VALUES (%s, %s, 'viewer')", (account_id, user_id)
        )
    return Api(
        stack.api_url, issue_jwt(JWT_SECRET, user_id=str(user_id), account_id=account_id, role="viewer", ttl_s=600)
    )


def _s3(stack: Stack) -> Any:
    return boto3.client("s3", endpoint_url=stack.aws_endpoint_url, region_name="us-east-1")


def _bucket() -> str:
    from chalicelib.config import settings

    return settings().attachments_bucket


def _upload(
    api: Api,
    sheet_id: str,
    data: bytes,
    content_type: str = "application/octet-stream",
    file_name: str = "stint 2/Car7 run.ld",
) -> dict[str, Any]:
    created = _ok(
        api.post(
            f"/run-sheets/{sheet_id}/attachments",
            {"fileName": file_name, "contentType": content_type, "sizeBytes": len(data)},
        )
    )
    put = requests.put(created["uploadUrl"], data=data, headers=created["uploadHeaders"], timeout=10)
    assert put.status_code == 200, put.text
    return created


def test_upload_complete_list_download_and_delete(stack: Stack) -> None:
    api, sheet = _team(stack)
    created = _ok(
        api.post(
            f"/run-sheets/{sheet['id']}/attachments",
            {"fileName": "stint 2/Car7 run.ld", "contentType": "application/octet-stream", "sizeBytes": len(TELEMETRY)},
        )
    )
    assert {"id", "uploadUrl", "uploadHeaders", "expiresIn", "s3Key"} <= set(created)
    assert created["status"] == "pending" and created["fileName"] == "stint 2/Car7 run.ld"
    account_id = api.get("/auth/me").json()["account"]["id"]
    assert created["s3Key"] == f"{account_id}/{sheet['id']}/{created['id']}/Car7_run.ld"
    assert created["uploadHeaders"] == {"Content-Type": "application/octet-stream"}
    assert "content-length" in created["uploadUrl"].lower()  # the size is part of the signature

    listed = _ok(api.get(f"/run-sheets/{sheet['id']}/attachments"), 200)["items"]
    assert [(a["id"], a["status"], a["downloadUrl"]) for a in listed] == [(created["id"], "pending", None)]
    early = api.post(f"/attachments/{created['id']}/complete")
    assert early.status_code == 409  # nothing uploaded yet

    put = requests.put(created["uploadUrl"], data=TELEMETRY, headers=created["uploadHeaders"], timeout=10)
    assert put.status_code == 200, put.text
    done = _ok(api.post(f"/attachments/{created['id']}/complete"), 200)
    assert done["status"] == "uploaded" and done["uploadedAt"]
    assert _ok(api.post(f"/attachments/{created['id']}/complete"), 200)["status"] == "uploaded"  # idempotent

    page = _ok(api.get(f"/run-sheets/{sheet['id']}/attachments"), 200)
    assert page["nextCursor"] is None
    (item,) = page["items"]
    assert item["sizeBytes"] == len(TELEMETRY) and item["downloadExpiresIn"] <= 900
    download = requests.get(item["downloadUrl"], timeout=10)
    assert download.status_code == 200 and download.content == TELEMETRY

    assert api.delete(f"/attachments/{created['id']}").status_code == 204
    with pytest.raises(ClientError) as missing:
        _s3(stack).head_object(Bucket=_bucket(), Key=created["s3Key"])
    assert missing.value.response["Error"]["Code"] == "404"
    assert _ok(api.get(f"/run-sheets/{sheet['id']}/attachments"), 200)["items"] == []
    assert api.delete(f"/attachments/{created['id']}").status_code == 404
    with psycopg.connect(stack.database_url) as conn:
        events = conn.execute(
            "SELECT type, session_id::text FROM domain_events WHERE entity_id = %s ORDER BY id", (created["id"],)
        ).fetchall()
    assert events == [
        ("attachment.create", sheet["sessionId"]),
        ("attachment.update", sheet["sessionId"]),
        ("attachment.delete", sheet["sessionId"]),
    ]


def test_an_upload_of_another_size_or_type_is_discarded_at_completion(stack: Stack) -> None:
    api, sheet = _team(stack)
    bigger = _ok(
        api.post(
            f"/run-sheets/{sheet['id']}/attachments",
            {"fileName": "notes.txt", "contentType": "text/plain", "sizeBytes": 5},
        )
    )
    # The emulator does not check presigned signatures (S3 would refuse this PUT outright).
    requests.put(bigger["uploadUrl"], data=b"123456789", headers={"Content-Type": "text/plain"}, timeout=10)
    refused = api.post(f"/attachments/{bigger['id']}/complete")
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "sizeBytes"
    with pytest.raises(ClientError):
        _s3(stack).head_object(Bucket=_bucket(), Key=bigger["s3Key"])

    retyped = _ok(
        api.post(
            f"/run-sheets/{sheet['id']}/attachments",
            {"fileName": "grid.png", "contentType": "image/png", "sizeBytes": 4},
        )
    )
    requests.put(retyped["uploadUrl"], data=b"<h1>", headers={"Content-Type": "text/html"}, timeout=10)
    refused = api.post(f"/attachments/{retyped['id']}/complete")
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "contentType"
    statuses = {a["id"]: a["status"] for a in api.get(f"/run-sheets/{sheet['id']}/attachments").json()["items"]}
    assert statuses == {bigger["id"]: "pending", retyped["id"]: "pending"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fileName": "x.html", "contentType": "text/html", "sizeBytes": 10}, "contentType"),
        ({"fileName": "x.svg", "contentType": "image/svg+xml", "sizeBytes": 10}, "contentType"),
        ({"fileName": "big.zip", "contentType": "application/zip", "sizeBytes": 50 * 1024 * 1024 + 1}, "sizeBytes"),
        ({"fileName": "empty.csv", "contentType": "text/csv", "sizeBytes": 0}, "sizeBytes"),
        ({"fileName": "x.csv", "contentType": "text/csv", "sizeBytes": "10"}, "sizeBytes"),
        ({"fileName": "", "contentType": "text/csv", "sizeBytes": 10}, "fileName"),
        ({"fileName": "a\nb.csv", "contentType": "text/csv", "sizeBytes": 10}, "fileName"),
        ({"contentType": "text/csv", "sizeBytes": 10}, "fileName"),
        ({"fileName": "x.csv", "contentType": "text/csv", "sizeBytes": 10, "acl": "public-read"}, "acl"),
    ],
)
def test_bad_declarations_name_the_field_and_store_nothing(stack: Stack, body: dict[str, Any], field: str) -> None:
    api, sheet = _team(stack)
    answer = api.post(f"/run-sheets/{sheet['id']}/attachments", body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == field
    assert api.get(f"/run-sheets/{sheet['id']}/attachments").json()["items"] == []


def test_another_accounts_run_sheet_and_attachment_are_404(stack: Stack, alex: Api) -> None:
    api, sheet = _team(stack)
    created = _upload(api, sheet["id"], b"a,b\n1,2\n", "text/csv", "laps.csv")
    body = {"fileName": "x.csv", "contentType": "text/csv", "sizeBytes": 3}
    assert alex.post(f"/run-sheets/{sheet['id']}/attachments", body).status_code == 404
    assert alex.get(f"/run-sheets/{sheet['id']}/attachments").status_code == 404
    assert alex.post(f"/attachments/{created['id']}/complete").status_code == 404
    assert alex.delete(f"/attachments/{created['id']}").status_code == 404
    assert api.post(f"/attachments/{created['id']}/complete").status_code == 200  # untouched
    assert api.get("/run-sheets/00000000-0000-0000-0000-000000000000/attachments").status_code == 404
    assert api.get("/run-sheets/nope/attachments").json()["error"]["field"] == "id"


def test_viewers_list_but_do_not_upload_or_delete(stack: Stack) -> None:
    api, sheet = _team(stack)
    created = _upload(api, sheet["id"], b"{}", "application/json", "setup.json")
    _ok(api.post(f"/attachments/{created['id']}/complete"), 200)
    viewer = _viewer_of(stack, api)
    items = _ok(viewer.get(f"/run-sheets/{sheet['id']}/attachments"), 200)["items"]
    assert requests.get(items[0]["downloadUrl"], timeout=10).content == b"{}"
    body = {"fileName": "x.csv", "contentType": "text/csv", "sizeBytes": 3}
    assert viewer.post(f"/run-sheets/{sheet['id']}/attachments", body).status_code == 403
    assert viewer.post(f"/attachments/{created['id']}/complete").status_code == 403
    assert viewer.delete(f"/attachments/{created['id']}").status_code == 403


def test_deleting_the_run_sheet_needs_cascade_and_then_removes_rows_and_objects(stack: Stack) -> None:
    api, sheet = _team(stack)
    created = _upload(api, sheet["id"], b"a,b\n", "text/csv", "laps.csv")
    blocked = api.delete(f"/run-sheets/{sheet['id']}")
    assert blocked.status_code == 409 and "attachments" in blocked.json()["error"]["message"]
    done = api.delete(f"/run-sheets/{sheet['id']}?cascade=true")
    assert done.status_code == 200 and done.json()["deleted"]["run_sheet_attachments"] == 1
    assert api.delete(f"/attachments/{created['id']}").status_code == 404
    with pytest.raises(ClientError):
        _s3(stack).head_object(Bucket=_bucket(), Key=created["s3Key"])
