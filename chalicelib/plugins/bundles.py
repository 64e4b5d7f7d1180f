"""Plugin bundles in the plugins bucket (S3), stored under account / id / version / SHA-256."""

from __future__ import annotations

import hashlib

from chalicelib.config import settings
from chalicelib.errors import DependencyDown
from chalicelib.store.aws import client, translated_errors


def sha256_hex(bundle: bytes) -> str:
    return hashlib.sha256(bundle).hexdigest()


def object_key(account_id: str, plugin_id: str, version: str, bundle_sha256: str) -> str:
    return f"{account_id}/{plugin_id}/{version}/{bundle_sha256}.js"


def put(key: str, bundle: bytes) -> None:
    with translated_errors("s3"):
        client("s3").put_object(
            Bucket=settings().plugins_bucket, Key=key, Body=bundle, ContentType="application/javascript"
        )


def get(key: str, bundle_sha256: str) -> str:
    """The bundle's source; DependencyDown when it is missing or does not match its recorded hash."""
    from botocore.exceptions import ClientError

    try:
        with translated_errors("s3"):
            data = client("s3").get_object(Bucket=settings().plugins_bucket, Key=key)["Body"].read()
    except ClientError as exc:
        raise DependencyDown(
            "S3",
            f"the plugin bundle {key} cannot be read from S3 ({exc.response.get('Error', {}).get('Code', 'error')})",
        ) from exc
    if sha256_hex(data) != bundle_sha256:
        raise DependencyDown("S3", f"the plugin bundle {key} in S3 does not match its recorded SHA-256")
    return data.decode()


def delete(keys: list[str]) -> None:
    for offset in range(0, len(keys), 1000):
        with translated_errors("s3"):
            client("s3").delete_objects(
                Bucket=settings().plugins_bucket,
                Delete={"Objects": [{"Key": k} for k in keys[offset : offset + 1000]], "Quiet": True},
            )
