"""The one definition of the platform's AWS resources.

The local stack provisions from it (infra/local/provision.py), the AWS template is generated from
it (infra/aws), and the settings read the deployed names from it. Nothing lists a table, queue or
bucket anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Table:
    """A DynamoDB table with a string partition key `pk` and sort key `sk`."""

    logical_id: str
    env_var: str
    name: str
    ttl_attribute: str | None = "expiresAt"


@dataclass(frozen=True)
class Queue:
    """An SQS queue and its dead-letter queue."""

    logical_id: str
    env_var: str
    name: str
    visibility_timeout_s: int = 60
    max_receive_count: int = 5
    dlq_retention_s: int = 14 * 24 * 3600
    # FIFO: messages of one group (MessageGroupId) are handed out one batch at a time, in order.
    fifo: bool = False

    @property
    def dlq_name(self) -> str:
        # A FIFO queue's DLQ must be FIFO too, and FIFO names end in ".fifo".
        return f"{self.name.removesuffix('.fifo')}-dlq.fifo" if self.fifo else f"{self.name}-dlq"


@dataclass(frozen=True)
class Bucket:
    logical_id: str
    env_var: str
    name: str
    # Browsers upload and download through presigned URLs: the bucket needs a CORS rule.
    browser_access: bool = False
    # Rows point at its objects: S3 versioning keeps overwritten or deleted ones (docs/runbook.md).
    versioned: bool = False

    CORS_RULES = (
        {
            "AllowedMethods": ["GET", "PUT", "HEAD"],
            "AllowedOrigins": ["*"],
            "AllowedHeaders": ["*"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 3000,
        },
    )


@dataclass(frozen=True)
class Sender:
    """An SES email identity the platform sends from (invitations, sign-up confirmations)."""

    logical_id: str
    env_var: str
    name: str  # the address


@dataclass(frozen=True)
class Resources:
    tables: tuple[Table, ...] = field(default_factory=tuple)
    queues: tuple[Queue, ...] = field(default_factory=tuple)
    buckets: tuple[Bucket, ...] = field(default_factory=tuple)
    senders: tuple[Sender, ...] = field(default_factory=tuple)


# Names are not stage-prefixed: each stage lives in its own AWS account (docs/decisions.md), and
# Chalice needs SQS queue names when app.py is imported, before any settings exist.
KV_TABLE = Table("KvTable", "RACE_KV_TABLE", "race-kv")
CONNECTIONS_TABLE = Table("ConnectionsTable", "RACE_CONNECTIONS_TABLE", "race-connections")
WEBHOOK_QUEUE = Queue("WebhookDeliveriesQueue", "RACE_WEBHOOK_QUEUE", "race-webhook-deliveries")
TIMING_IMPORT_QUEUE = Queue(
    "TimingImportsQueue", "RACE_TIMING_IMPORT_QUEUE", "race-timing-imports", visibility_timeout_s=300
)
# Room delivery: one group per session, so a session's pushes are numbered in the order they were queued.
ROOM_QUEUE = Queue("RoomEventsQueue", "RACE_ROOM_QUEUE", "race-room-events.fifo", fifo=True)
ATTACHMENTS_BUCKET = Bucket(
    "AttachmentsBucket", "RACE_ATTACHMENTS_BUCKET", "race-attachments", browser_access=True, versioned=True
)
PLUGINS_BUCKET = Bucket("PluginsBucket", "RACE_PLUGINS_BUCKET", "race-plugins", versioned=True)
UPLOADS_BUCKET = Bucket("UploadsBucket", "RACE_UPLOADS_BUCKET", "race-uploads", browser_access=True)
BACKUPS_BUCKET = Bucket("BackupsBucket", "RACE_BACKUPS_BUCKET", "race-backups")
# SES sends only from a verified identity (sandbox and moto alike): provisioning verifies it.
MAIL_SENDER = Sender("MailSender", "MAIL_FROM", "no-reply@race-platform.dev")

RESOURCES = Resources(
    tables=(KV_TABLE, CONNECTIONS_TABLE),
    queues=(WEBHOOK_QUEUE, TIMING_IMPORT_QUEUE, ROOM_QUEUE),
    buckets=(ATTACHMENTS_BUCKET, PLUGINS_BUCKET, UPLOADS_BUCKET, BACKUPS_BUCKET),
    senders=(MAIL_SENDER,),
)
