"""CloudFormation for the platform's tables, queues and buckets, and the merge template around Chalice's.

Everything is generated from `chalicelib.resources.RESOURCES`, the same definition the local stack
provisions from, so no table, queue or bucket is ever listed twice.
"""

from __future__ import annotations

from typing import Any

from chalicelib.resources import RESOURCES, Bucket, Queue, Resources, Table

Template = dict[str, Any]


def _bucket_name(bucket: Bucket) -> Any:
    # S3 names are global: the account id keeps them unique; the env var tells the code the name.
    return {"Fn::Sub": f"{bucket.name}-${{AWS::AccountId}}-${{AWS::Region}}"}


def _table(table: Table) -> Template:
    properties: Template = {
        "TableName": table.name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
    }
    if table.ttl_attribute:
        properties["TimeToLiveSpecification"] = {"AttributeName": table.ttl_attribute, "Enabled": True}
    return {"Type": "AWS::DynamoDB::Table", "Properties": properties}


def _queues(queue: Queue) -> dict[str, Template]:
    dlq_id = f"{queue.logical_id}Dlq"
    fifo = {"FifoQueue": True} if queue.fifo else {}
    return {
        dlq_id: {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": queue.dlq_name, "MessageRetentionPeriod": queue.dlq_retention_s, **fifo},
        },
        queue.logical_id: {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": queue.name,
                "VisibilityTimeout": queue.visibility_timeout_s,
                **fifo,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
                    "maxReceiveCount": queue.max_receive_count,
                },
            },
        },
    }


def _bucket(bucket: Bucket) -> Template:
    # CloudFormation spells the S3 API's CORS fields differently (ExposedHeaders, MaxAge).
    rules = [
        {
            "AllowedMethods": r["AllowedMethods"],
            "AllowedOrigins": r["AllowedOrigins"],
            "AllowedHeaders": r["AllowedHeaders"],
            "ExposedHeaders": r["ExposeHeaders"],
            "MaxAge": r["MaxAgeSeconds"],
        }
        for r in Bucket.CORS_RULES
    ]
    extra: Template = {"CorsConfiguration": {"CorsRules": rules}} if bucket.browser_access else {}
    if bucket.versioned:
        extra["VersioningConfiguration"] = {"Status": "Enabled"}
    return {
        "Type": "AWS::S3::Bucket",
        "Properties": {
            **extra,
            "BucketName": _bucket_name(bucket),
            **_PRIVATE_ENCRYPTED,
        },
    }


# Every bucket of the platform: no public access (CloudFront reads the sites), encrypted at rest.
_PRIVATE_ENCRYPTED: Template = {
    "PublicAccessBlockConfiguration": {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    },
    "BucketEncryption": {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    },
}


def resources_template(resources: Resources = RESOURCES) -> Template:
    """A standalone template with only the data resources (tables, queues + DLQs, buckets)."""
    body: dict[str, Template] = {}
    for table in resources.tables:
        body[table.logical_id] = _table(table)
    for queue in resources.queues:
        body.update(_queues(queue))
    for bucket in resources.buckets:
        body[bucket.logical_id] = _bucket(bucket)
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Race Platform data resources (generated from chalicelib/resources.py)",
        "Resources": body,
    }


def environment(resources: Resources = RESOURCES) -> dict[str, Any]:
    """The variables that tell the functions where everything is."""
    env: dict[str, Any] = {t.env_var: t.name for t in resources.tables}
    env.update({q.env_var: q.name for q in resources.queues})
    env.update({b.env_var: _bucket_name(b) for b in resources.buckets})
    env.update({m.env_var: m.name for m in resources.senders})
    return env


def _access_policy(resources: Resources) -> Template:
    table_arns = [{"Fn::GetAtt": [t.logical_id, "Arn"]} for t in resources.tables]
    queue_arns = [{"Fn::GetAtt": [q.logical_id, "Arn"]} for q in resources.queues]
    bucket_arns = [{"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::${{{b.logical_id}}}/*"} for b in resources.buckets]
    return {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "RacePlatformDataAccess",
            "Roles": [{"Ref": "DefaultRole"}],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": [
                            "dynamodb:GetItem",
                            "dynamodb:PutItem",
                            "dynamodb:UpdateItem",
                            "dynamodb:DeleteItem",
                            "dynamodb:Query",
                            "dynamodb:DescribeTable",
                            "dynamodb:TransactWriteItems",
                            "dynamodb:BatchWriteItem",
                        ],
                        "Resource": table_arns,
                    },
                    {
                        "Effect": "Allow",
                        "Action": [
                            "sqs:SendMessage",
                            "sqs:SendMessageBatch",
                            "sqs:ReceiveMessage",
                            "sqs:DeleteMessage",
                            "sqs:GetQueueUrl",
                            "sqs:GetQueueAttributes",
                            "sqs:ChangeMessageVisibility",
                        ],
                        "Resource": queue_arns,
                    },
                    {
                        "Effect": "Allow",
                        "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                        "Resource": bucket_arns,
                    },
                    {
                        "Effect": "Allow",
                        "Action": ["s3:ListBucket"],
                        "Resource": [{"Fn::GetAtt": [b.logical_id, "Arn"]} for b in resources.buckets],
                    },
                    {
                        # Invitations and sign-up confirmations, only from the platform's own senders.
                        "Effect": "Allow",
                        "Action": ["ses:SendEmail"],
                        "Resource": "*",
                        "Condition": {"StringEquals": {"ses:FromAddress": [m.name for m in resources.senders]}},
                    },
                    {
                        "Effect": "Allow",
                        "Action": ["ssm:GetParameter"],
                        "Resource": [
                            {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/race/*"},
                            {
                                "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}"
                                ":parameter/aws/reference/secretsmanager/race/*"
                            },
                        ],
                    },
                    {
                        # A `/aws/reference/secretsmanager/race/...` parameter reads the secret itself.
                        "Effect": "Allow",
                        "Action": ["secretsmanager:GetSecretValue"],
                        "Resource": {
                            "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
                            ":secret:race/*"
                        },
                    },
                ],
            },
        },
    }


def merge_template(sam: Template, stage: str, resources: Resources = RESOURCES) -> Template:
    """What `chalice package --merge-template` adds to Chalice's SAM template `sam`."""
    merged_resources: dict[str, Template] = dict(resources_template(resources)["Resources"])
    merged_resources["RacePlatformDataAccess"] = _access_policy(resources)
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
        # API Gateway's own errors (unknown route, throttling) must carry CORS headers and our error
        # shape, or a browser sees them as a network failure.
        merged_resources[f"GatewayResponse{kind.title().replace('_', '')}"] = {
            "Type": "AWS::ApiGateway::GatewayResponse",
            "Properties": {
                "RestApiId": {"Ref": "RestAPI"},
                "ResponseType": kind,
                "ResponseParameters": {"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"},
                "ResponseTemplates": {
                    "application/json": '{"error": {"code": "gateway", "message": $context.error.messageString}}'
                },
            },
        }
    variables = {
        **environment(resources),
        "DATABASE_URL_PARAMETER": {"Ref": "DatabaseUrlParameter"},
        "JWT_SECRET_PARAMETER": {"Ref": "JwtSecretParameter"},
        # Links in invitation and confirmation emails: the web client this stack hosts.
        "WEB_URL": {"Fn::Sub": "https://${WebDistribution.DomainName}"},
        "WEBHOOK_KEY_PARAMETER": {"Ref": "WebhookKeyParameter"},
        "WS_MANAGEMENT_URL": {
            "Fn::Sub": f"https://${{WebsocketAPI}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/{stage}"
        },
        "DB_POOL_MAX": "2",  # a container serves one request at a time; RDS Proxy multiplexes
        "POWERTOOLS_SERVICE_NAME": "race-platform",
        "POWERTOOLS_METRICS_NAMESPACE": "RacePlatform",
    }
    for logical_id, resource in sam.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        # A stable name (CloudFormation would append a random suffix): `make logs` finds every log group.
        patch: Template = {
            "Properties": {"FunctionName": function_name(stage, logical_id), "Environment": {"Variables": variables}}
        }
        events = resource.get("Properties", {}).get("Events", {})
        sqs_events = {
            name: {"Properties": {"FunctionResponseTypes": ["ReportBatchItemFailures"]}}
            for name, event in events.items()
            if event.get("Type") == "SQS"
        }
        if sqs_events:
            patch["Properties"]["Events"] = sqs_events
        merged_resources[logical_id] = patch
    merged_resources.update(hosting_resources())
    return {
        "Parameters": {
            "DatabaseUrlParameter": {
                "Type": "String",
                "Default": f"/race/{stage}/database-url",
                "Description": "SSM SecureString (or /aws/reference/secretsmanager/race/...) holding DATABASE_URL",
            },
            "JwtSecretParameter": {
                "Type": "String",
                "Default": f"/race/{stage}/jwt-secret",
                "Description": "SSM SecureString holding JWT_SECRET (read once per cold start)",
            },
            "WebhookKeyParameter": {
                "Type": "String",
                "Default": f"/race/{stage}/webhook-key",
                "Description": "SSM SecureString holding WEBHOOK_KEY, the data key sealing webhook secrets "
                "(base64 of 32 bytes; read once per cold start)",
            },
        },
        "Resources": merged_resources,
        "Outputs": HOSTING_OUTPUTS,
    }


FUNCTION_PREFIX = "race-platform"


def function_name(stage: str, logical_id: str) -> str:
    """`race-platform-prod-APIHandler`: its log group is /aws/lambda/<that>."""
    return f"{FUNCTION_PREFIX}-{stage}-{logical_id}"


# The web client and the docs: private buckets behind CloudFront (origin access control). Only in
# the merge template: moto's CloudFormation (the tested resources part) has no CloudFront.
SITES = {"Web": "the web client", "Docs": "the documentation site"}
HOSTING_OUTPUTS: Template = {
    output: {"Value": value}
    for site in SITES
    for output, value in (
        (f"{site}BucketName", {"Ref": f"{site}Bucket"}),
        (f"{site}DistributionId", {"Ref": f"{site}Distribution"}),
        (f"{site}Url", {"Fn::Sub": f"https://${{{site}Distribution.DomainName}}/"}),
    )
}


def hosting_resources() -> dict[str, Template]:
    body: dict[str, Template] = {
        "SiteOriginAccessControl": {
            "Type": "AWS::CloudFront::OriginAccessControl",
            "Properties": {
                "OriginAccessControlConfig": {
                    "Name": {"Fn::Sub": "${AWS::StackName}-sites"},
                    "OriginAccessControlOriginType": "s3",
                    "SigningBehavior": "always",
                    "SigningProtocol": "sigv4",
                }
            },
        }
    }
    for site, description in SITES.items():
        body[f"{site}Bucket"] = {"Type": "AWS::S3::Bucket", "Properties": dict(_PRIVATE_ENCRYPTED)}
        body[f"{site}Distribution"] = {
            "Type": "AWS::CloudFront::Distribution",
            "Properties": {
                "DistributionConfig": {
                    "Comment": {"Fn::Sub": f"${{AWS::StackName}}: {description}"},
                    "Enabled": True,
                    "DefaultRootObject": "index.html",
                    "HttpVersion": "http2",
                    "Origins": [
                        {
                            "Id": "site",
                            "DomainName": {"Fn::GetAtt": [f"{site}Bucket", "RegionalDomainName"]},
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                            "OriginAccessControlId": {"Fn::GetAtt": ["SiteOriginAccessControl", "Id"]},
                        }
                    ],
                    "DefaultCacheBehavior": {
                        "TargetOriginId": "site",
                        "ViewerProtocolPolicy": "redirect-to-https",
                        "AllowedMethods": ["GET", "HEAD"],
                        "Compress": True,
                        "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",  # AWS managed: CachingOptimized
                    },
                }
            },
        }
        body[f"{site}BucketPolicy"] = {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": f"{site}Bucket"},
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "cloudfront.amazonaws.com"},
                            "Action": "s3:GetObject",
                            "Resource": {"Fn::Sub": f"${{{site}Bucket.Arn}}/*"},
                            "Condition": {
                                "StringEquals": {
                                    "AWS:SourceArn": {
                                        "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}"
                                        f":distribution/${{{site}Distribution}}"
                                    }
                                }
                            },
                        }
                    ],
                },
            },
        }
    return body
