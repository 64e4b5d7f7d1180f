"""The S3 half of a local backup: plugin bundles and attachments, into the archive and back.

Objects are stored as `objects/<n>` members with `manifest.json` naming each one's bucket, key and
content type, so no key ever becomes a file path. Buckets are named by their resource name
(`race-plugins`), so a backup restores into whatever the target stack calls them.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from pathlib import Path
from typing import Any

from chalicelib.resources import ATTACHMENTS_BUCKET, PLUGINS_BUCKET, Bucket

# What rows point at; uploads (a timing import's raw file) and backups themselves are not data.
BACKED_UP: tuple[Bucket, ...] = (PLUGINS_BUCKET, ATTACHMENTS_BUCKET)
MANIFEST = "manifest.json"


def bucket_name(bucket: Bucket) -> str:
    return os.environ.get(bucket.env_var) or bucket.name


def add_objects(archive: tarfile.TarFile, s3: Any) -> list[dict[str, Any]]:
    """Copy every object of the backed-up buckets into `archive`; returns the manifest entries."""
    entries: list[dict[str, Any]] = []
    for bucket in BACKED_UP:
        count, size_bytes = 0, 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket_name(bucket)):
            for listed in page.get("Contents", []):
                found = s3.get_object(Bucket=bucket_name(bucket), Key=listed["Key"])
                member = tarfile.TarInfo(f"objects/{len(entries)}")
                member.size = int(found["ContentLength"])
                archive.addfile(member, found["Body"])
                entries.append(
                    {
                        "bucket": bucket.name,
                        "key": listed["Key"],
                        "contentType": found.get("ContentType") or "application/octet-stream",
                        "member": member.name,
                    }
                )
                count, size_bytes = count + 1, size_bytes + member.size
        print(f"  objects: {bucket.name}: {count} ({size_bytes} bytes)", flush=True)
    return entries


def add_manifest(archive: tarfile.TarFile, manifest: dict[str, Any]) -> None:
    data = json.dumps(manifest, indent=1).encode()
    member = tarfile.TarInfo(MANIFEST)
    member.size = len(data)
    archive.addfile(member, io.BytesIO(data))


_MEMBER = re.compile(r"^objects/\d+$")


def validate(entries: list[dict[str, Any]]) -> None:
    """Each entry names a member `objects/<n>`, one of the backed-up buckets and a string key."""
    known = {bucket.name for bucket in BACKED_UP}
    for entry in entries:
        if not _MEMBER.match(str(entry.get("member"))) or entry.get("bucket") not in known:
            raise ValueError(f"manifest entry refused: {entry.get('member')!r} in {entry.get('bucket')!r}")
        if not isinstance(entry.get("key"), str) or not isinstance(entry.get("contentType"), str):
            raise ValueError(f"manifest entry refused: {entry.get('member')!r} has no key or content type")


def put_objects(folder: Path, entries: list[dict[str, Any]], s3: Any) -> int:
    """Put every object of an unpacked archive back (overwriting same keys); returns how many."""
    names = {bucket.name: bucket_name(bucket) for bucket in BACKED_UP}
    for done, entry in enumerate(entries, start=1):
        with open(folder / entry["member"], "rb") as body:
            s3.put_object(Bucket=names[entry["bucket"]], Key=entry["key"], Body=body, ContentType=entry["contentType"])
        if done % 100 == 0 or done == len(entries):
            print(f"  objects restored: {done}/{len(entries)}", flush=True)
    return len(entries)
