"""Run-sheet attachment objects in the attachments bucket (S3): presigned PUT/GET, head and delete."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.config import settings
from chalicelib.store.aws import client, translated_errors

_MISSING_CODES = ("404", "NoSuchKey", "NotFound")


@dataclass(frozen=True)
class StoredObject:
    size_bytes: int
    content_type: str


def presigned_put(key: str, content_type: str, size_bytes: int, ttl_s: int) -> str:
    """A PUT URL whose signature covers Content-Type and Content-Length: S3 refuses any other."""
    with translated_errors("s3"):
        return str(
            client("s3").generate_presigned_url(
                "put_object",
                Params={
                    "Bucket": settings().attachments_bucket,
                    "Key": key,
                    "ContentType": content_type,
                    "ContentLength": size_bytes,
                },
                ExpiresIn=ttl_s,
            )
        )


def presigned_get(key: str, download_name: str, ttl_s: int) -> str:
    """A GET URL that makes browsers save the file (never render it inline from the bucket)."""
    with translated_errors("s3"):
        return str(
            client("s3").generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": settings().attachments_bucket,
                    "Key": key,
                    "ResponseContentDisposition": f'attachment; filename="{download_name}"',
                },
                ExpiresIn=ttl_s,
            )
        )


def head(key: str) -> StoredObject | None:
    """What was uploaded under `key`, or None when nothing was."""
    from botocore.exceptions import ClientError

    try:
        with translated_errors("s3"):
            answer = client("s3").head_object(Bucket=settings().attachments_bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _MISSING_CODES:
            return None
        raise
    return StoredObject(int(answer["ContentLength"]), str(answer.get("ContentType") or ""))


def delete(key: str) -> None:
    """Remove the object; removing an absent one is not an error (S3 semantics)."""
    with translated_errors("s3"):
        client("s3").delete_object(Bucket=settings().attachments_bucket, Key=key)
