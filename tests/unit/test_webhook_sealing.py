"""Webhook secrets sealed at rest: AES-GCM under the data key, bound to the webhook, a wrong key named."""

from __future__ import annotations

import base64
import uuid

import pytest

from chalicelib.config import ConfigError, load
from chalicelib.webhooks import sealing, signing

pytestmark = pytest.mark.unit

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
HOOK = str(uuid.uuid4())


def test_a_sealed_secret_opens_to_the_secret_and_carries_neither_it_nor_its_key_part() -> None:
    box = sealing.Box(KEY)
    secret = signing.new_secret()
    stored = box.seal(HOOK, secret)
    assert stored.startswith(f"enc:v1:{box.key_id}:")
    assert secret not in stored and secret.removeprefix("whsec_") not in stored
    assert box.open(HOOK, stored) == secret
    assert box.seal(HOOK, secret) != stored  # a fresh nonce every time


def test_the_key_id_does_not_reveal_the_key() -> None:
    box = sealing.Box(KEY)
    assert len(box.key_id) == 8 and box.key_id not in (KEY.hex(), base64.b64encode(KEY).decode())
    assert sealing.Box(OTHER_KEY).key_id != box.key_id


def test_a_wrong_key_is_named_and_opens_nothing() -> None:
    stored = sealing.Box(KEY).seal(HOOK, signing.new_secret())
    wrong = sealing.Box(OTHER_KEY)
    with pytest.raises(sealing.WrongKey, match=f"key id {wrong.key_id}.*key id {sealing.Box(KEY).key_id}"):
        wrong.open(HOOK, stored)
    assert isinstance(sealing.WrongKey("x"), ConfigError)  # answers `misconfigured`, fails a cold start


def test_a_value_copied_onto_another_webhook_does_not_open() -> None:
    box = sealing.Box(KEY)
    stored = box.seal(HOOK, signing.new_secret())
    with pytest.raises(sealing.Unreadable):
        box.open(str(uuid.uuid4()), stored)
    assert box.open(HOOK.upper(), stored)  # the id's spelling does not matter


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_a_damaged_value_is_refused(damage: str) -> None:
    box = sealing.Box(KEY)
    stored = box.seal(HOOK, signing.new_secret())
    head, _, body = stored.rpartition(":")
    raw = bytearray(base64.b64decode(body))
    if damage == "flip":
        raw[-1] ^= 1
        stored = f"{head}:{base64.b64encode(bytes(raw)).decode()}"
    elif damage == "truncate":
        stored = f"{head}:{base64.b64encode(bytes(raw[:10])).decode()}"
    else:
        stored = f"{head}:not base64!"
    with pytest.raises(sealing.Unreadable):
        box.open(HOOK, stored)


def test_plaintext_from_before_sealing_is_read_as_is_anything_else_is_refused() -> None:
    box = sealing.Box(KEY)
    secret = signing.new_secret()
    assert box.open(HOOK, secret) == secret
    with pytest.raises(sealing.Unreadable):
        box.open(HOOK, "hunter2")


BASE = {"JWT_SECRET": "s" * 40, "DATABASE_URL": "postgresql://x/y", "WEB_URL": "https://race.example"}
KEY_B64 = base64.b64encode(KEY).decode()


def test_a_deployed_function_without_webhook_key_fails_at_cold_start() -> None:
    deployed = {**BASE, "STAGE": "prod", "AWS_LAMBDA_FUNCTION_NAME": "race-platform-prod-webhook_deliveries"}
    with pytest.raises(ConfigError, match="^WEBHOOK_KEY is required"):
        load(deployed)
    assert load({**deployed, "WEBHOOK_KEY": KEY_B64}).webhook_key == KEY


@pytest.mark.parametrize(
    "value", ["not-base64!", base64.b64encode(b"short").decode(), base64.b64encode(KEY * 2).decode()]
)
def test_a_malformed_webhook_key_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="^WEBHOOK_KEY must be base64 of 32 random bytes"):
        load({**BASE, "WEBHOOK_KEY": value})


def test_the_webhook_key_can_come_from_a_parameter_and_an_unreadable_one_is_named() -> None:
    asked: list[str] = []

    def fetch(name: str) -> str:
        asked.append(name)
        if name == "/race/prod/webhook-key":
            return KEY_B64
        raise RuntimeError("AccessDenied")

    env = {**BASE, "STAGE": "prod", "WEBHOOK_KEY_PARAMETER": "/race/prod/webhook-key"}
    assert load(env, fetch).webhook_key == KEY and asked == ["/race/prod/webhook-key"]
    with pytest.raises(ConfigError, match=r"^WEBHOOK_KEY is required \(reading /race/x failed: AccessDenied\)"):
        load({**env, "WEBHOOK_KEY_PARAMETER": "/race/x"}, fetch)


def test_the_key_is_never_in_the_settings_repr() -> None:
    settings = load({**BASE, "WEBHOOK_KEY": KEY_B64})
    assert KEY_B64 not in repr(settings) and repr(KEY) not in repr(settings)
    assert load(BASE).webhook_key is None  # local without a key: webhooks answer "WEBHOOK_KEY is required"
