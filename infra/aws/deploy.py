"""`make deploy`: check every prerequisite first, then migrate, deploy the packaged stack, upload the sites.

    python -m infra.aws.deploy --stage prod --check   # the checks only (make deploy runs them first)
    python -m infra.aws.deploy --stage prod           # checks again, migrates, deploys, uploads

Nothing touches the database or the AWS account until every check has passed, and every failed
check is listed at once. DATABASE_URL is read from its SSM SecureString (the one the functions
read at cold start), never passed on a command line or stored as a plaintext Lambda variable.
"""

from __future__ import annotations

import argparse
import mimetypes
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ClientFactory = Callable[[str], Any]


@dataclass(frozen=True)
class Target:
    stage: str
    deploy_bucket: str
    database_url_parameter: str
    jwt_secret_parameter: str
    webhook_key_parameter: str = ""

    @property
    def stack_name(self) -> str:
        return f"race-platform-{self.stage}"

    @property
    def artefact(self) -> Path:
        return ROOT / "dist" / self.stage

    @classmethod
    def from_env(cls, stage: str) -> Target:
        return cls(
            stage=stage,
            deploy_bucket=os.environ.get("DEPLOY_BUCKET", "").strip(),
            database_url_parameter=os.environ.get("DATABASE_URL_PARAMETER") or f"/race/{stage}/database-url",
            jwt_secret_parameter=os.environ.get("JWT_SECRET_PARAMETER") or f"/race/{stage}/jwt-secret",
            webhook_key_parameter=os.environ.get("WEBHOOK_KEY_PARAMETER") or f"/race/{stage}/webhook-key",
        )


@dataclass
class Checked:
    problems: list[str]
    database_url: str | None = None


def check(
    target: Target, client: ClientFactory, *, artefact: bool, which: Callable[[str], str | None] = shutil.which
) -> Checked:
    """Every prerequisite, read-only; the database URL when it could be read."""
    found = Checked([])
    if which("aws") is None:
        found.problems.append("the aws CLI is not installed (it packages and deploys the template): pip install awscli")
    try:
        account = client("sts").get_caller_identity()["Account"]
        print(f"  AWS account {account}", flush=True)
    except Exception as exc:
        found.problems.append(f"no usable AWS credentials ({_short(exc)}): set AWS_PROFILE or the AWS_* variables")
        return _artefact(target, found) if artefact else found
    if not target.deploy_bucket:
        found.problems.append("DEPLOY_BUCKET is not set (the bucket `aws cloudformation package` uploads code to)")
    else:
        try:
            client("s3").head_bucket(Bucket=target.deploy_bucket)
        except Exception as exc:
            found.problems.append(f"DEPLOY_BUCKET {target.deploy_bucket} cannot be reached ({_short(exc)})")
    ssm = client("ssm")
    try:
        ssm.get_parameter(Name=target.jwt_secret_parameter)
    except Exception as exc:
        found.problems.append(
            f"JWT secret {target.jwt_secret_parameter} is missing ({_short(exc)}): aws ssm put-parameter "
            f'--type SecureString --name {target.jwt_secret_parameter} --value "$(openssl rand -hex 64)"'
        )
    _check_webhook_key(ssm, target.webhook_key_parameter, found)
    try:
        found.database_url = ssm.get_parameter(Name=target.database_url_parameter, WithDecryption=True)["Parameter"][
            "Value"
        ]
    except Exception as exc:
        found.problems.append(
            f"DATABASE_URL parameter {target.database_url_parameter} is missing ({_short(exc)}): aws ssm put-parameter "
            f"--type SecureString --name {target.database_url_parameter} --value 'postgresql://...' (docs/deploy.md)"
        )
    url = os.environ.get("DATABASE_URL") or found.database_url  # a tunnel to the same database may be given
    if url:
        found.database_url = url
        _check_database(target, url, found)
    return _artefact(target, found) if artefact else found


def _check_webhook_key(ssm: Any, parameter: str, found: Checked) -> None:
    """The data key sealing webhook secrets: present and a well-formed key (the functions refuse to start otherwise)."""
    from chalicelib.config import ConfigError, parse_webhook_key

    create = f'aws ssm put-parameter --type SecureString --name {parameter} --value "$(openssl rand -base64 32)"'
    try:
        value = ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]
    except Exception as exc:
        found.problems.append(f"webhook key {parameter} is missing ({_short(exc)}): {create}")
        return
    try:
        parse_webhook_key({"WEBHOOK_KEY": value}, "prod")
    except ConfigError as exc:
        found.problems.append(f"webhook key {parameter}: {exc}")


def _check_database(target: Target, url: str, found: Checked) -> None:
    """Reachable, and not recorded as another stage (read-only: nothing is created)."""
    import psycopg

    from chalicelib.db.migrate import recorded_stage

    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            recorded = recorded_stage(conn)
    except psycopg.Error as exc:
        found.problems.append(f"the database cannot be reached ({_short(exc)})")
        return
    if recorded is not None and recorded != target.stage:
        found.problems.append(f"the database is recorded as stage {recorded!r}, not {target.stage!r}")


def _artefact(target: Target, found: Checked) -> Checked:
    for name in ("sam.json", "deployment.zip"):
        if not (target.artefact / name).is_file():
            found.problems.append(f"{target.artefact / name} is missing: run make package STAGE={target.stage}")
    return found


def _short(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _aws(*args: str) -> None:
    """The aws CLI with its output shown as it comes; a failure stops the deploy."""
    print(f"$ aws {' '.join(args)}", flush=True)
    done = subprocess.run(["aws", *args], cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"deploy: aws {args[0]} {args[1]} failed (status {done.returncode})")


def deploy_stack(target: Target) -> None:
    packaged = target.artefact / "packaged.yaml"
    _aws(
        "cloudformation",
        "package",
        "--template-file",
        str(target.artefact / "sam.json"),
        "--s3-bucket",
        target.deploy_bucket,
        "--output-template-file",
        str(packaged),
    )
    _aws(
        "cloudformation",
        "deploy",
        "--template-file",
        str(packaged),
        "--stack-name",
        target.stack_name,
        "--capabilities",
        "CAPABILITY_IAM",
        "CAPABILITY_AUTO_EXPAND",
        "--no-fail-on-empty-changeset",
        "--parameter-overrides",
        f"DatabaseUrlParameter={target.database_url_parameter}",
        f"JwtSecretParameter={target.jwt_secret_parameter}",
        f"WebhookKeyParameter={target.webhook_key_parameter}",
    )


def web_config(outputs: dict[str, str]) -> str:
    """The deployed web client's config.js: the stack's own URLs, no URL override."""
    api = outputs["EndpointURL"].rstrip("/")
    ws = outputs["WebsocketConnectEndpointURL"].rstrip("/")
    return f'window.RACE_CONFIG = {{ apiUrl: "{api}", wsUrl: "{ws}", allowUrlOverride: false }};\n'


def upload_site(s3: Any, bucket: str, folder: Path, *, replace: dict[str, bytes] | None = None) -> int:
    """Make the bucket hold exactly `folder` (plus `replace`d files); returns the files uploaded."""
    replace = replace or {}
    files = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
    for key in sorted(set(files) | set(replace)):
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        body = replace[key] if key in replace else files[key].read_bytes()
        cache = "no-cache" if key.endswith((".html", "config.js")) else "max-age=300"
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, CacheControl=cache)
    wanted = set(files) | set(replace)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for stale in [o["Key"] for o in page.get("Contents", []) if o["Key"] not in wanted]:
            s3.delete_object(Bucket=bucket, Key=stale)
    return len(wanted)


def upload_sites(client: ClientFactory, outputs: dict[str, str]) -> None:
    from infra.local.docs_site import build

    s3, cloudfront = client("s3"), client("cloudfront")
    with tempfile.TemporaryDirectory() as scratch:
        docs = Path(scratch) / "docs"
        build(docs)
        for site, folder, replace in (
            ("Web", ROOT / "web", {"config.js": web_config(outputs).encode()}),
            ("Docs", docs, {}),
        ):
            count = upload_site(s3, outputs[f"{site}BucketName"], folder, replace=replace)
            cloudfront.create_invalidation(
                DistributionId=outputs[f"{site}DistributionId"],
                InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": str(time.time_ns())},
            )
            print(f"  {site.lower()}: {count} files -> {outputs[f'{site}Url']}", flush=True)


def _outputs(client: ClientFactory, stack_name: str) -> dict[str, str]:
    stack = client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _boto3_client(service: str) -> Any:
    import boto3

    return boto3.client(service)


def run(stage: str, *, check_only: bool, client: ClientFactory = _boto3_client) -> int:
    target = Target.from_env(stage)
    print(f"deploy {stage}: checking prerequisites (nothing is changed yet) ...", flush=True)
    found = check(target, client, artefact=not check_only)
    if found.problems:
        for problem in found.problems:
            print(f"  MISSING: {problem}", file=sys.stderr)
        print("deploy: nothing was touched (database, stack, sites); fix the above and run again", file=sys.stderr)
        return 2
    print("  all prerequisites are in place", flush=True)
    if check_only:
        return 0
    from chalicelib.db.migrate import migrate

    assert found.database_url is not None
    migrate(found.database_url, stage=stage)  # records the stage on a new database
    deploy_stack(target)
    outputs = _outputs(client, target.stack_name)
    upload_sites(client, outputs)
    print(f"deployed {target.stack_name}: API {outputs.get('EndpointURL')}  web {outputs.get('WebUrl')}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.aws.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True, choices=("dev", "prod"))
    parser.add_argument("--check", action="store_true", help="run the checks only (no artefact needed yet)")
    args = parser.parse_args(argv)
    return run(args.stage, check_only=args.check)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
