"""Timing files in the uploads bucket (S3): stored for the worker, presigned uploads, streamed reads.

Every key lives under its account's prefix, `accounts/<account id>/`, so a key names its owner and
a key of another account is refused before S3 is asked anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from chalicelib.config import settings
from chalicelib.errors import Invalid, NotFound
from chalicelib.store.aws import client, translated_errors

UPLOAD_URL_TTL_S = 900
READ_CHUNK_BYTES = 256 * 1024
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./")


def account_prefix(account_id: str) -> str:
    return f"accounts/{account_id}/"


def import_key(account_id: str, import_id: str) -> str:
    """Where a CSV sent in the request body is kept for the worker."""
    return f"{account_prefix(account_id)}timing-imports/{import_id}.csv"


def upload_key(account_id: str, session_id: str) -> str:
    """A fresh key for a presigned upload of a timing file."""
    return f"{account_prefix(account_id)}timing-uploads/{session_id}/{uuid.uuid4()}.csv"


def check_key(account_id: str, key: str) -> str:
    """A key the caller may import from: under its account's prefix (another account's: 404)."""
    if not key or len(key) > 500 or not set(key) <= _KEY_CHARS or ".." in key or "//" in key:
        raise Invalid("s3Key must be the s3Key returned by POST .../timing-imports/upload-url", field="s3Key")
    if not key.startswith(account_prefix(account_id)):
        raise NotFound("s3Key not found: no such upload in your account")
    return key


def put(key: str, data: bytes) -> None:
    with translated_errors("s3"):
        client("s3").put_object(Bucket=settings().uploads_bucket, Key=key, Body=data, ContentType="text/csv")


def presigned_put(key: str) -> str:
    with translated_errors("s3"):
        return str(
            client("s3").generate_presigned_url(
                "put_object",
                Params={"Bucket": settings().uploads_bucket, "Key": key},
                ExpiresIn=UPLOAD_URL_TTL_S,
            )
        )


def size_bytes(key: str) -> int | None:
    """The object's size, or None when nothing was uploaded under the key."""
    from botocore.exceptions import ClientError

    try:
        with translated_errors("s3"):
            head = client("s3").head_object(Bucket=settings().uploads_bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return int(head["ContentLength"])


def _get(key: str, **kwargs: str) -> Any:
    from botocore.exceptions import ClientError

    try:
        with translated_errors("s3"):
            return client("s3").get_object(Bucket=settings().uploads_bucket, Key=key, **kwargs)["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise NotFound("the timing file is no longer in the uploads bucket; send it again") from exc
        raise


def first_bytes(key: str, count: int) -> bytes:
    """The start of the object (enough to check its header)."""
    body = _get(key, Range=f"bytes=0-{count - 1}")
    try:
        with translated_errors("s3"):
            return bytes(body.read())
    finally:
        body.close()


def read_chunks(key: str) -> Iterator[bytes]:
    """The object's bytes in chunks, streamed (never held whole here)."""
    body = _get(key)
    try:
        with translated_errors("s3"):
            yield from body.iter_chunks(READ_CHUNK_BYTES)
    finally:
        body.close()
