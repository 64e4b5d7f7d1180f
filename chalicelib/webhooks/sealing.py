"""Webhook signing secrets at rest: sealed with AES-256-GCM under the data key WEBHOOK_KEY (envelope encryption).

The data key lives outside the database (AWS: an SSM SecureString, itself encrypted by KMS; locally the
stack's `webhook_key` file), so a pg_dump carries only ciphertext. The stored form is
`enc:v1:<key id>:<base64(nonce || ciphertext || tag)>` with the webhook's id as associated data: a value
copied onto another webhook does not open. The key id (from an HMAC of the key, not the key) tells a
wrong key apart from a damaged value. Rows written before sealing hold the plaintext `whsec_...`: they
are read as they are and sealed by the minute sweep (and when the local stack starts).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import uuid
from typing import TYPE_CHECKING, Any

from chalicelib.config import ConfigError
from chalicelib.webhooks.signing import SECRET_PREFIX

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc:v1:"
NONCE_BYTES = 12
SEAL_CHUNK = 200
OPENED_CACHE = 1024  # secrets opened per container: a delivery to a known webhook costs one dict lookup


class WrongKey(ConfigError):
    """WEBHOOK_KEY is not the key that sealed the stored secrets: nothing may be signed with them."""


class Unreadable(RuntimeError):
    """A stored secret is neither sealed by a known key nor a plaintext `whsec_` secret (damaged)."""


class Box:
    """AES-GCM with one data key; built once per container (`box()`)."""

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead: AESGCM = AESGCM(key)
        self.key_id = hmac.new(key, b"race webhook secret key id", hashlib.sha256).hexdigest()[:8]
        self._opened = functools.lru_cache(maxsize=OPENED_CACHE)(self._open)  # failures are not cached

    def seal(self, webhook_id: str, secret: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode("utf-8"), _context(webhook_id))
        return f"{PREFIX}{self.key_id}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def open(self, webhook_id: str, stored: str) -> str:
        """The plaintext secret of a stored value (sealed, or plaintext from before sealing)."""
        return self._opened(webhook_id, stored)

    def _open(self, webhook_id: str, stored: str) -> str:
        if not stored.startswith(PREFIX):
            if stored.startswith(SECRET_PREFIX):
                return stored
            raise Unreadable(f"webhook {webhook_id}: the stored secret is neither sealed nor a whsec_ secret")
        key_id, _, body = stored[len(PREFIX) :].partition(":")
        if key_id != self.key_id:
            raise WrongKey(
                f"WEBHOOK_KEY (key id {self.key_id}) is not the key that sealed the webhook secrets (key id {key_id}): "
                "restore the key the database was written with (docs/runbook.md, Backups); nothing was signed"
            )
        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.b64decode(body, validate=True)
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _context(webhook_id)).decode("utf-8")
        except (InvalidTag, ValueError) as exc:
            raise Unreadable(f"webhook {webhook_id}: the stored secret does not open with its key") from exc


def _context(webhook_id: str) -> bytes:
    return f"race webhook {uuid.UUID(webhook_id)}".encode("ascii")


@functools.cache
def box() -> Box:
    """The container's box, from the settings' data key (read once per cold start)."""
    from chalicelib.config import settings

    key = settings().webhook_key
    if key is None:
        raise ConfigError("WEBHOOK_KEY is required (the data key sealing webhook secrets; see docs/deploy.md)")
    return Box(key)


@functools.cache
def checked_box() -> Box:
    """`box()` once it has opened a stored secret (once per container): a wrong key fails before any use."""
    from chalicelib.store.postgres import fetch_one, transaction

    current = box()
    with transaction() as conn:
        row = fetch_one(conn, "any_sealed_webhook_secret", {})
    if row is not None:
        current.open(str(row["id"]), row["secret"])
    return current


def seal_plaintext(limit: int = SEAL_CHUNK) -> int:
    """Seal up to `limit` secrets stored in plaintext (rows from before sealing); returns how many rows changed."""
    from chalicelib.store.postgres import execute, fetch_all, transaction

    current = checked_box()
    with transaction() as conn:
        rows = fetch_all(conn, "plaintext_webhook_secrets", {"limit": limit})
        if rows:
            execute(conn, "seal_webhook_secrets", _sealed_rows(current, rows))
    return len(rows)


def seal_all_plaintext() -> int:
    """Every plaintext secret sealed (the local stack's start, the sweep)."""
    total = 0
    while sealed := seal_plaintext():
        total += sealed
        if sealed < SEAL_CHUNK:
            break
    return total


def _sealed_rows(current: Box, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    ids = [str(row["id"]) for row in rows]

    def sealed(webhook_id: str, value: str | None) -> str | None:
        if value is None or value.startswith(PREFIX):
            return value
        return current.seal(webhook_id, current.open(webhook_id, value))

    return {
        "ids": ids,
        "secrets": [sealed(i, row["secret"]) for i, row in zip(ids, rows, strict=True)],
        "previous_secrets": [sealed(i, row["previous_secret"]) for i, row in zip(ids, rows, strict=True)],
    }
