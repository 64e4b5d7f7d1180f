"""Hostile input: every refusal is a clear 4xx in the error shape and changes nothing stored."""

from __future__ import annotations

import json

import jwt
import psycopg
import pytest

from tests.integration.conftest import Api, Stack, token_for

pytestmark = pytest.mark.integration

INJECTIONS = [
    "' OR '1'='1",
    "1; DROP TABLE laps;--",
    "$.accounts[*]",
    '{"$gt": ""}',
    "../../etc/passwd",
    "%00",
    "\u0000",
    "🏁" * 60,
    "a" * 5000,
]


def _row_counts(stack: Stack) -> dict[str, int]:
    with psycopg.connect(stack.database_url) as conn:
        return {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
            for t in ("accounts", "events", "sessions", "cars", "run_sheets", "laps", "api_keys", "domain_events")
        }


@pytest.fixture()
def counts(stack: Stack) -> dict[str, int]:
    return _row_counts(stack)


def _assert_error_shape(answer: object, *statuses: int) -> None:
    assert answer.status_code in statuses, (answer.status_code, answer.text)  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize(
    "route,parameter",
    [
        ("/laps", "runSheetId"),
        ("/laps", "flag"),
        ("/cars", "number"),
        ("/sessions", "type"),
        ("/laps", "cursor"),
        ("/events", "limit"),
    ],
)
def test_injection_strings_in_filters(jamie: Api, route: str, parameter: str, value: str) -> None:
    answer = jamie.get(route, params={parameter: value})
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 200:
        assert answer.json()["items"] == []  # a text filter simply matches nothing
    else:
        _assert_error_shape(answer, 400)


def test_deeply_nested_json_is_refused(jamie: Api, stack: Stack, counts: dict[str, int]) -> None:
    body = "[" * 100_000 + "]" * 100_000
    answer = jamie.post("/events", data=body, headers={"Content-Type": "application/json"})
    _assert_error_shape(answer, 400, 413)
    for depth in (3000, 40):
        nested = '{"x":' * depth + "1" + "}" * depth
        answer = jamie.post(
            "/events", data=f'{{"name": "x", "parameters": {nested}}}', headers={"Content-Type": "application/json"}
        )
        _assert_error_shape(answer, 400)
        assert answer.json()["error"]["field"] in ("body", "parameters")
    assert _row_counts(stack) == counts


def test_oversized_body_is_413(jamie: Api, stack: Stack, counts: dict[str, int]) -> None:
    answer = jamie.post(
        "/events",
        data=json.dumps({"name": "x", "track": "y" * 2_000_000}),
        headers={"Content-Type": "application/json"},
    )
    _assert_error_shape(answer, 413)
    answer = jamie.post("/events", data=b"x" * (11 * 1024 * 1024), headers={"Content-Type": "application/json"})
    _assert_error_shape(answer, 413)
    assert _row_counts(stack) == counts


def test_invalid_utf8_is_400(jamie: Api, stack: Stack, counts: dict[str, int]) -> None:
    answer = jamie.post("/events", data=b'{"name": "\xff\xfe"}', headers={"Content-Type": "application/json"})
    _assert_error_shape(answer, 400)
    assert _row_counts(stack) == counts


@pytest.mark.parametrize("number", ["1e999", "123456789012345678901234567890", "NaN", "Infinity", "-Infinity"])
def test_huge_and_odd_numbers(jamie: Api, stack: Stack, counts: dict[str, int], number: str) -> None:
    event = jamie.get("/events").json()["items"][0]
    body = f'{{"eventId": "{event["id"]}", "number": "98", "parameters": {{}}, "isCompetitor": {number}}}'
    answer = jamie.post("/cars", data=body, headers={"Content-Type": "application/json"})
    _assert_error_shape(answer, 400)
    answer = jamie.post(
        "/board-cards", data=f'{{"title": "t", "position": {number}}}', headers={"Content-Type": "application/json"}
    )
    _assert_error_shape(answer, 400)
    assert _row_counts(stack) == counts


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x"])
def test_wrong_content_type_is_refused_in_the_error_shape(jamie: Api, content_type: str) -> None:
    answer = jamie.post("/events", data=b'{"name": "x"}', headers={"Content-Type": content_type})
    _assert_error_shape(answer, 400, 415)


def test_jwt_signed_with_an_api_key_as_secret_is_refused(jamie: Api, stack: Stack) -> None:
    key = jamie.post("/api-keys", {"name": "confusion"}).json()["key"]
    claims = jwt.decode(token_for("jamie@apexracing.io"), options={"verify_signature": False})
    forged = jwt.encode({**claims, "role": "owner"}, key, algorithm="HS256")
    _assert_error_shape(Api(stack.api_url, forged).get("/events"), 401)


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer x.y.z", "Token abc", "Bearer " + "a" * 10_000]
)
def test_malformed_authorization_headers(stack: Stack, header: str) -> None:
    answer = Api(stack.api_url).get("/events", headers={"Authorization": header})
    _assert_error_shape(answer, 401)


@pytest.mark.parametrize("path", ["/events/%00", "/events/..%2F..%2Fetc", "/events/" + "9" * 500, "/laps/' OR 1=1--"])
def test_odd_ids_are_400_or_404(jamie: Api, path: str) -> None:
    _assert_error_shape(jamie.get(path), 400, 404)
