"""Idempotency-Key rules that need no DynamoDB: the key's shape, what makes two requests the same,
and how answers are kept within a DynamoDB item."""

from __future__ import annotations

import json
import os

import pytest

from chalicelib.domain import idempotency
from chalicelib.errors import Invalid
from chalicelib.store import idempotency as store

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "naïve", "tab\there", "line\nbreak"])
def test_malformed_keys_are_400_naming_the_header(key: str) -> None:
    with pytest.raises(Invalid) as error:
        idempotency.check_key(key)
    assert error.value.field == "Idempotency-Key"


def test_good_keys() -> None:
    assert idempotency.check_key(" 6f1c2a7e-2b7a-4a57-9a0e-7c1d3e0f9b11 ") == "6f1c2a7e-2b7a-4a57-9a0e-7c1d3e0f9b11"
    assert idempotency.check_key("x" * 255) == "x" * 255


def test_the_fingerprint_covers_path_parameters_query_and_body() -> None:
    base = idempotency.fingerprint("POST", "/laps", {}, {}, b'{"a":1}')
    assert base == idempotency.fingerprint("POST", "/laps", {}, {}, b'{"a":1}')
    others = [
        idempotency.fingerprint("POST", "/laps", {}, {}, b'{"a":2}'),
        idempotency.fingerprint("POST", "/events", {}, {}, b'{"a":1}'),
        idempotency.fingerprint("POST", "/laps", {"id": "x"}, {}, b'{"a":1}'),
        idempotency.fingerprint("POST", "/laps", {}, {"dryRun": "true"}, b'{"a":1}'),
    ]
    assert base not in others and len(set(others)) == len(others)


def test_small_answers_are_kept_as_they_are() -> None:
    answer = store.Stored(201, '{"id":"x"}', "application/json")
    packed = store._pack(answer)
    assert packed == {"status": 201, "contentType": "application/json", "body": '{"id":"x"}'}
    assert store._unpack(packed) == store.Stored(201, '{"id":"x"}', "application/json", replayed=True)


def test_big_answers_are_compressed_and_restored_exactly() -> None:
    items = [
        {"id": os.urandom(16).hex(), "runSheetId": "5eb71e2c-8a4c-4c59-9a5f-2f0c1b7d2a10", "lapNumber": n}
        for n in range(5_000)
    ]
    body = json.dumps({"created": 5_000, "items": items})
    packed = store._pack(store.Stored(201, body, "application/json"))
    assert "body" not in packed and len(json.dumps(packed)) < 300 * 1024 < len(body)
    assert store._unpack(packed).body == body


def test_an_answer_too_big_for_dynamodb_is_kept_as_applied_only() -> None:
    packed = store._pack(store.Stored(201, os.urandom(400_000).hex(), "application/json"))
    assert packed["tooLarge"] is True and "bodyGz" not in packed
    assert store._unpack(packed).too_large


def test_one_time_secrets_are_withheld_from_what_is_kept() -> None:
    made = store.Stored(201, '{"id":"k1","prefix":"race_ab","key":"race_secret"}', "application/json")
    kept = idempotency.withhold_secrets(made)
    assert kept is not None and json.loads(kept) == {
        "id": "k1",
        "prefix": "race_ab",
        "key": None,
        "secretShownOnce": ["key"],
    }
    invite = store.Stored(201, '{"id":"i","inviteToken":"t","inviteUrl":"/#/x?token=t"}', "application/json")
    assert json.loads(idempotency.withhold_secrets(invite) or "")["secretShownOnce"] == ["inviteToken", "inviteUrl"]
    packed = store._pack(store.Stored(201, made.body, made.content_type, role="admin", kept_body=kept))
    assert "race_secret" not in json.dumps(packed)
    assert store._unpack(packed) == store.Stored(201, kept, "application/json", replayed=True, role="admin")


@pytest.mark.parametrize("body", ['{"id":"e1","name":"Sebring"}', "[1,2]", "{not json", '{"key":{"nested":1}}'])
def test_answers_without_secrets_are_kept_whole(body: str) -> None:
    assert idempotency.withhold_secrets(store.Stored(201, body, "application/json")) is None


def test_a_stored_answer_is_bound_to_its_principal() -> None:
    from chalicelib.domain.caller import Caller

    admin = Caller("acc", "admin", user_id="u1")
    fingerprints = {
        idempotency._for_the_caller(caller, "f")
        for caller in (admin, Caller("acc", "viewer", user_id="u2"), Caller("acc", "admin", api_key_id="u1"))
    }
    assert len(fingerprints) == 3
    assert idempotency._for_the_caller(admin, "f") == idempotency._for_the_caller(
        Caller("acc", "viewer", user_id="u1"), "f"
    )
