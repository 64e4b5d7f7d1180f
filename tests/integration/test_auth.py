"""Sign-in, tokens and API keys against the real stack (PostgreSQL + emulator)."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from tests.integration.conftest import JWT_SECRET, PASSWORD, Api, Stack, new_account, token_for

pytestmark = pytest.mark.integration


def test_login_returns_a_jwt_and_me_describes_the_caller(stack: Stack) -> None:
    email, account_id = new_account("engineer")
    answer = Api(stack.api_url).post("/auth/login", {"email": email.upper(), "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    claims = jwt.decode(body["token"], JWT_SECRET, algorithms=["HS256"], issuer="race-platform")
    assert claims["acc"] == account_id and claims["role"] == "engineer"
    me = Api(stack.api_url, body["token"]).get("/auth/me").json()
    assert me["kind"] == "user" and me["account"]["id"] == account_id and me["user"]["email"] == email


def test_wrong_password_and_unknown_email_look_the_same(stack: Stack) -> None:
    email, _ = new_account()
    api = Api(stack.api_url)
    wrong = api.post("/auth/login", {"email": email, "password": "nope"})
    unknown = api.post("/auth/login", {"email": "nobody-" + email, "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "x@y.z"}, "password"),
        ({"email": 5, "password": "p"}, "email"),
        ({"email": "x\x00@y.z", "password": "p"}, "email"),  # was a 500 (PostgreSQL refuses NUL), schemathesis
        ({"email": "x@y.z", "password": "p", "admin": True}, "admin"),
        ([], "body"),
    ],
)
def test_bad_login_bodies_name_the_field(stack: Stack, body: object, field: str) -> None:
    answer = Api(stack.api_url).post("/auth/login", body)
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == field


def test_login_that_is_not_json_is_a_400(stack: Stack) -> None:
    answer = Api(stack.api_url).post("/auth/login", data=b"{not json", headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid"


def test_login_attempts_are_rate_limited_per_email(stack: Stack) -> None:
    email, _ = new_account()
    api = Api(stack.api_url)
    statuses = [api.post("/auth/login", {"email": email, "password": "wrong"}).status_code for _ in range(10)]
    assert statuses == [401] * 10
    limited = api.post("/auth/login", {"email": email, "password": PASSWORD})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 300
    assert limited.json()["error"]["code"] == "rate_limited"


def _forge(claims: dict[str, object], header: dict[str, object]) -> str:
    def b64(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{b64(header)}.{b64(claims)}."


def _claims(email: str = "jamie@apexracing.io") -> dict[str, object]:
    return jwt.decode(token_for(email), JWT_SECRET, algorithms=["HS256"], issuer="race-platform")


@pytest.mark.parametrize("case", ["expired", "forged", "alg_none", "wrong_alg", "garbage", "no_exp"])
def test_bad_tokens_get_401(stack: Stack, case: str) -> None:
    claims = _claims()
    if case == "expired":
        claims.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
        token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    elif case == "forged":
        token = jwt.encode(claims, "another-secret-" + "y" * 40, algorithm="HS256")
    elif case == "alg_none":
        token = _forge(claims, {"alg": "none", "typ": "JWT"})
    elif case == "wrong_alg":
        token = jwt.encode(claims, JWT_SECRET, algorithm="HS512")
    elif case == "no_exp":
        claims.pop("exp")
        token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    else:
        token = "not.a.token"
    answer = Api(stack.api_url, token).get("/events")
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "unauthorized"


def test_no_credentials_get_401(anonymous: Api) -> None:
    answer = anonymous.get("/events")
    assert answer.status_code == 401
    assert "Authorization" in answer.json()["error"]["message"]


def test_api_key_is_shown_once_works_everywhere_and_dies_on_revoke(jamie: Api, stack: Stack) -> None:
    created = jamie.post("/api-keys", {"name": "timing bridge", "role": "viewer"})
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["key"].startswith("race_") and key["prefix"] == key["key"][:11]

    listed = jamie.get("/api-keys").json()["items"]
    mine = next(item for item in listed if item["id"] == key["id"])
    assert "key" not in mine and "keyHash" not in mine
    assert key["key"] not in json.dumps(listed)

    by_header = Api(stack.api_url, api_key=key["key"])
    assert by_header.get("/events").status_code == 200
    assert Api(stack.api_url, token=key["key"]).get("/events").status_code == 200  # Bearer race_... too
    me = by_header.get("/auth/me").json()
    assert me["kind"] == "api_key" and me["role"] == "viewer"

    assert jamie.delete(f"/api-keys/{key['id']}").status_code == 204
    revoked = by_header.get("/events")
    assert revoked.status_code == 401


def test_api_key_usage_is_recorded(jamie: Api, stack: Stack) -> None:
    key = jamie.post("/api-keys", {"name": "recorder"}).json()
    Api(stack.api_url, api_key=key["key"]).get("/events")
    listed = {item["id"]: item for item in jamie.get("/api-keys?limit=500").json()["items"]}
    assert listed[key["id"]]["lastUsedAt"] is not None


def test_api_key_cannot_outrank_its_creator(stack: Stack) -> None:
    email, _ = new_account("admin")
    admin = Api(stack.api_url, token_for(email))
    assert admin.post("/api-keys", {"name": "too strong", "role": "owner"}).status_code == 400
    engineer_email, _ = new_account("engineer")
    engineer = Api(stack.api_url, token_for(engineer_email))
    assert engineer.post("/api-keys", {"name": "nope"}).status_code == 403


def test_another_accounts_key_cannot_be_revoked(jamie: Api, alex: Api) -> None:
    key = jamie.post("/api-keys", {"name": "mine"}).json()
    assert alex.delete(f"/api-keys/{key['id']}").status_code == 404
    assert key["id"] in [item["id"] for item in jamie.get("/api-keys?limit=500").json()["items"]]


def test_expired_api_key_is_refused(jamie: Api, stack: Stack) -> None:
    import psycopg

    key = jamie.post("/api-keys", {"name": "short-lived"}).json()
    with psycopg.connect(stack.database_url) as conn:
        conn.execute("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = %s", (key["id"],))
    assert Api(stack.api_url, api_key=key["key"]).get("/events").status_code == 401


def test_member_of_two_accounts_picks_one_with_account_id(stack: Stack) -> None:
    import psycopg

    email, first = new_account("owner")
    _, second = new_account("owner")
    with psycopg.connect(stack.database_url) as conn:
        conn.execute(
            "INSERT INTO memberships (account_id, user_id, role) SELECT %s, id, 'viewer' FROM users WHERE email = %s",
            (second, email),
        )
    api = Api(stack.api_url)
    default = api.post("/auth/login", {"email": email, "password": PASSWORD}).json()
    assert default["user"]["accountId"] == first
    assert {a["id"] for a in default["accounts"]} == {first, second}
    switched = api.post("/auth/login", {"email": email, "password": PASSWORD, "accountId": second}).json()
    assert switched["user"]["accountId"] == second and switched["user"]["role"] == "viewer"
    _, stranger = new_account("owner")
    refused = api.post("/auth/login", {"email": email, "password": PASSWORD, "accountId": stranger})
    assert refused.status_code == 401
