"""Creates the platform's DynamoDB tables, SQS queues with their DLQs and S3 buckets on an AWS endpoint,
and verifies its SES sender identity."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from chalicelib.resources import RESOURCES, Bucket, Queue, Resources, Sender, Table

log = logging.getLogger(__name__)

KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
ATTRIBUTES = [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}]
_SCOPE = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")


class SessionLike(Protocol):
    """boto3.session.Session or localstack_client.session.Session."""

    def client(self, service_name: str, **kwargs: Any) -> Any: ...


class ProvisionError(RuntimeError):
    """A resource exists in a shape provisioning cannot repair (for example another key schema)."""


def provision(
    session_or_endpoint: str | SessionLike | None,
    *,
    region: str = "us-east-1",
    resources: Resources = RESOURCES,
    names: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Create or repair every resource; a second run changes nothing.

    `session_or_endpoint`: an endpoint URL (moto, LocalStack), a session whose clients already know
    their endpoint, or None for AWS_ENDPOINT_URL (else real AWS). `names` maps env var -> name to
    give a test private resources. Returns env var -> name for every resource, plus
    `<QUEUE_ENV_VAR>_URL` and `<QUEUE_ENV_VAR>_DLQ_URL` for each queue.
    """
    run = _Reconcile(session_or_endpoint, region, names or {}, fix=True)
    return run.all(resources)


def check(
    session_or_endpoint: str | SessionLike | None,
    *,
    region: str = "us-east-1",
    resources: Resources = RESOURCES,
    names: Mapping[str, str] | None = None,
) -> list[str]:
    """What is missing or set differently from chalicelib.resources, one line each; [] when all is in place."""
    run = _Reconcile(session_or_endpoint, region, names or {}, fix=False)
    run.all(resources)
    return run.problems


def scoped_names(scope: str, resources: Resources = RESOURCES) -> dict[str, str]:
    """Names with a `-<scope>` suffix for every resource: private resources for one test or worker."""
    if not _SCOPE.match(scope):
        raise ValueError(f"scope {scope!r}: lowercase letters, digits and -, at most 20")
    everything: list[Table | Queue | Bucket] = [*resources.tables, *resources.queues, *resources.buckets]
    return {item.env_var: _scoped(item, scope) for item in everything}


def _scoped(item: Table | Queue | Bucket, scope: str) -> str:
    if isinstance(item, Queue) and item.fifo:
        return f"{item.name.removesuffix('.fifo')}-{scope}.fifo"  # a FIFO queue's name must end in .fifo
    return f"{item.name}-{scope}"


class _Reconcile:
    """Compares each resource with its definition; creates or repairs it when `fix`, else reports."""

    def __init__(self, target: str | SessionLike | None, region: str, names: Mapping[str, str], *, fix: bool):
        self.region = region
        self.names = names
        self.fix = fix
        self.problems: list[str] = []
        self._clients: dict[str, Any] = {}
        self._target = target

    def all(self, resources: Resources) -> dict[str, str]:
        out: dict[str, str] = {}
        for table in resources.tables:
            out[table.env_var] = self.table(replace(table, name=self.names.get(table.env_var, table.name)))
        for queue in resources.queues:
            queue = replace(queue, name=self.names.get(queue.env_var, queue.name))
            url, dlq_url = self.queue(queue)
            out[queue.env_var] = queue.name
            out[f"{queue.env_var}_URL"] = url
            out[f"{queue.env_var}_DLQ_URL"] = dlq_url
        for bucket in resources.buckets:
            out[bucket.env_var] = self.bucket(replace(bucket, name=self.names.get(bucket.env_var, bucket.name)))
        for sender in resources.senders:
            out[sender.env_var] = self.sender(replace(sender, name=self.names.get(sender.env_var, sender.name)))
        return out

    # ----- SES

    def sender(self, sender: Sender) -> str:
        """SES sends only from a verified identity (moto and SES's sandbox alike); AWS mails a link for it."""
        ses = self.client("ses")
        address = sender.name
        found = ses.get_identity_verification_attributes(Identities=[address])["VerificationAttributes"]
        status = found.get(address, {}).get("VerificationStatus")
        if status == "Pending" and not self.fix:
            self.problems.append(f"SES sender {address}: verification pending (open the link AWS mailed to it)")
        elif status not in ("Success", "Pending") and self.report(f"SES sender {address}: not verified"):
            ses.verify_email_identity(EmailAddress=address)
            log.info("asked SES to verify the sender %s", address)
        return address

    # ----- DynamoDB

    def table(self, table: Table) -> str:
        ddb = self.client("dynamodb")
        name = table.name
        try:
            described = ddb.describe_table(TableName=name)["Table"]
        except ddb.exceptions.ResourceNotFoundException:
            if not self.report(f"DynamoDB table {name}: missing"):
                return name
            ddb.create_table(
                TableName=name,
                KeySchema=KEY_SCHEMA,
                AttributeDefinitions=ATTRIBUTES,
                BillingMode="PAY_PER_REQUEST",
            )
            ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
            log.info("created DynamoDB table %s", name)
        else:
            keys = sorted((k["AttributeName"], k["KeyType"]) for k in described["KeySchema"])
            if keys != sorted((k["AttributeName"], k["KeyType"]) for k in KEY_SCHEMA):
                message = f"DynamoDB table {name}: key schema is {keys}, not pk (HASH) + sk (RANGE)"
                if self.fix:
                    raise ProvisionError(message + "; delete the table and provision again")
                self.problems.append(message)
            billing = described.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
            if billing != "PAY_PER_REQUEST" and self.report(f"DynamoDB table {name}: billing mode {billing}"):
                ddb.update_table(TableName=name, BillingMode="PAY_PER_REQUEST")
                log.info("switched DynamoDB table %s to PAY_PER_REQUEST", name)
        if table.ttl_attribute:
            ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            enabled = ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
            if not (enabled and ttl.get("AttributeName") == table.ttl_attribute) and self.report(
                f"DynamoDB table {name}: TTL not enabled on {table.ttl_attribute}"
            ):
                ddb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
                )
                log.info("enabled TTL on %s.%s", name, table.ttl_attribute)
        return name

    # ----- SQS

    def queue(self, queue: Queue) -> tuple[str, str]:
        sqs = self.client("sqs")
        fifo = {"FifoQueue": "true"} if queue.fifo else {}
        dlq_url = self.queue_with(queue.dlq_name, {"MessageRetentionPeriod": str(queue.dlq_retention_s), **fifo})
        if dlq_url:
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        else:
            dlq_arn = f"arn:aws:sqs:{self.region}:000000000000:{queue.dlq_name}"  # reporting only
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receive_count}
        url = self.queue_with(
            queue.name,
            {"VisibilityTimeout": str(queue.visibility_timeout_s), "RedrivePolicy": json.dumps(redrive), **fifo},
        )
        return url, dlq_url

    def queue_with(self, name: str, wanted: dict[str, str]) -> str:
        """The queue's URL ('' when missing and only checking), created or updated to `wanted`."""
        sqs = self.client("sqs")
        try:
            url: str = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            if not self.report(f"SQS queue {name}: missing"):
                return ""
            created: str = sqs.create_queue(QueueName=name, Attributes=wanted)["QueueUrl"]
            log.info("created SQS queue %s", name)
            return created
        current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        stale = {key: value for key, value in wanted.items() if not _same_attribute(key, current.get(key), value)}
        for key in stale:
            self.report(f"SQS queue {name}: {key} is {current.get(key)!r}, want {wanted[key]!r}")
        if stale and self.fix:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=stale)
            log.info("updated SQS queue %s: %s", name, ", ".join(stale))
        return url

    # ----- S3

    def bucket(self, bucket: Bucket) -> str:
        from botocore.exceptions import ClientError

        s3 = self.client("s3")
        name = bucket.name
        try:
            s3.head_bucket(Bucket=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
            if not self.report(f"S3 bucket {name}: missing"):
                return name  # checking only: nothing more to compare on a bucket that is not there
            where = (
                {} if self.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
            )
            try:
                s3.create_bucket(Bucket=name, **where)
                log.info("created S3 bucket %s", name)
            except s3.exceptions.BucketAlreadyOwnedByYou:
                pass
        self.bucket_cors(bucket, name)
        return name

    def bucket_cors(self, bucket: Bucket, name: str) -> None:
        """Buckets browsers upload to answer CORS preflights (presigned PUT from the web client)."""
        from botocore.exceptions import ClientError

        if not bucket.browser_access:
            return
        s3 = self.client("s3")
        try:
            rules = s3.get_bucket_cors(Bucket=name)["CORSRules"]
        except ClientError:
            rules = []
        wanted = [dict(rule) for rule in Bucket.CORS_RULES]
        if [{k: r.get(k) for k in wanted[0]} for r in rules] != wanted and self.report(
            f"S3 bucket {name}: CORS rule missing or different"
        ):
            s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": wanted})
            log.info("set CORS on S3 bucket %s", name)

    # ----- plumbing

    def report(self, problem: str) -> bool:
        """Record a difference when checking; True when the caller should repair it."""
        if not self.fix:
            self.problems.append(problem)
        return self.fix

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = _client(self._target, service, self.region)
        return self._clients[service]


def _client(target: str | SessionLike | None, service: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    endpoint = target if isinstance(target, str) else None
    if target is None:
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    # Emulators serve buckets by path, not by <bucket>.<host> names.
    local = endpoint is not None or not isinstance(target, (boto3.session.Session, type(None)))
    config = Config(
        connect_timeout=3,
        read_timeout=30,
        retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": "path"} if local else None,
    )
    if target is not None and not isinstance(target, str):
        return target.client(service, region_name=region, config=config)
    if endpoint is None:
        return boto3.session.Session(region_name=region).client(service, config=config)
    # Emulators accept any credentials; the fallback spares a machine without AWS config a NoCredentialsError.
    session = boto3.session.Session(
        region_name=region,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        aws_session_token=os.environ.get("AWS_SESSION_TOKEN"),
    )
    return session.client(service, endpoint_url=endpoint, config=config)


def _same_attribute(key: str, current: Any, wanted: str) -> bool:
    if current is None:
        return False
    if key == "RedrivePolicy":
        have, want = json.loads(current), json.loads(wanted)
        return bool(
            have.get("deadLetterTargetArn") == want["deadLetterTargetArn"]
            and str(have.get("maxReceiveCount")) == str(want["maxReceiveCount"])
        )
    return str(current) == wanted


def main(argv: list[str] | None = None) -> int:
    """`python -m infra.local.provision [--endpoint URL] [--check]`: prints KEY=value lines or problems."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", default=None, help="default: AWS_ENDPOINT_URL")
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    parser.add_argument("--check", action="store_true", help="only list what is missing; exit 1 if anything is")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.endpoint, region=args.region)
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    for key, value in provision(args.endpoint, region=args.region).items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
