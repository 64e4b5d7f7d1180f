"""What /openapi.json says of routes outside race data: their request bodies and their answers.

`documented(...)` goes under `@route` and marks the view; the OpenAPI generator reads the marks.
A request schema is never stricter than the domain's reader (schemathesis sends what a schema
excludes and expects a 4xx); an answer schema is what the route returns (schemathesis checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.domain.records import Resource

Schema = dict[str, Any]

_UUID: Schema = {"type": "string", "format": "uuid"}
_TIME: Schema = {"type": "string", "format": "date-time"}
_TEXT: Schema = {"type": "string"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


# In an Idempotency-Key replay: the one-time secret fields it withheld (domain/idempotency.py).
_SHOWN_ONCE: Schema = {"type": "array", "items": {"type": "string"}}


def documented(
    *,
    request: Schema | None = None,
    answer: Schema | None = None,
    resource: Resource | None = None,
    listing: bool = False,
    query: Mapping[str, Schema] | None = None,
    no_body: bool = False,
    errors: Mapping[str, str] | None = None,
    csv_body: bool = False,
) -> Callable[[Any], Any]:
    """Mark a view for the OpenAPI generator: its body (or that it reads none, or that it also takes
    text/csv), its answer, the resource it lists or returns, and error statuses of its own (beyond
    those every route has)."""

    def mark(view: Any) -> Any:
        if csv_body:
            view.race_csv_body = True
        if no_body:
            view.race_no_body = True
        if errors is not None:
            view.race_errors = dict(errors)
        if request is not None:
            view.race_request = request
        if answer is not None:
            view.race_answer = answer
        if resource is not None:
            view.race_resource = resource
            view.race_list = listing
        if query is not None:
            view.race_query = dict(query)
        return view

    return mark


def webhook() -> Schema:
    from chalicelib.domain.changes import OPS
    from chalicelib.webhooks.subscriptions import ENTITY_TYPES

    return {
        "type": "object",
        "required": ["id", "url", "entityTypes", "operations", "enabled", "createdAt"],
        "properties": {
            "id": _UUID,
            "url": _TEXT,
            "description": _nullable(_TEXT),
            "entityTypes": {"type": "array", "items": {"enum": list(ENTITY_TYPES)}},
            "operations": {"type": "array", "items": {"enum": list(OPS)}},
            "enabled": {"type": "boolean"},
            "disabledReason": _nullable(_TEXT),
            "secretRotationEndsAt": _nullable(_TIME),
            "createdBy": _nullable(_UUID),
            "createdAt": _TIME,
            "updatedAt": _TIME,
        },
    }


def webhook_with_secret() -> Schema:
    schema = webhook()
    return {
        **schema,
        "required": [*schema["required"], "secret"],
        "properties": {
            **schema["properties"],
            # null only in a replay (Idempotent-Replayed): a secret is shown once and never kept
            "secret": _nullable({"type": "string", "pattern": "^whsec_"}),
            "secretShownOnce": _SHOWN_ONCE,
        },
    }


def webhook_write(creating: bool) -> Schema:
    """POST and PATCH /webhooks (subscriptions.create / update)."""
    from chalicelib import netguard
    from chalicelib.domain.changes import OPS
    from chalicelib.webhooks.subscriptions import ENTITY_TYPES

    schema: Schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "maxLength": netguard.MAX_URL_LENGTH},
            "description": _nullable({"type": "string", "maxLength": 500}),
            "entityTypes": {"type": "array", "items": {"enum": list(ENTITY_TYPES)}},
            "operations": {"type": "array", "minItems": 1, "items": {"enum": list(OPS)}},
            "enabled": _nullable({"type": "boolean"}),
        },
    }
    if creating:
        schema["required"] = ["url"]
    else:
        schema["minProperties"] = 1
    return schema


def delivery() -> Schema:
    from chalicelib.webhooks.deliveries import STATUSES

    integer = {"type": "integer"}
    return {
        "type": "object",
        "required": [
            "id",
            "eventType",
            "status",
            "attempts",
            "createdAt",
            "nextAttemptAt",
            "succeededAt",
            "lastStatusCode",
            "lastError",
        ],
        "properties": {
            "id": _UUID,
            "webhookId": _UUID,
            "eventId": _nullable(integer),
            "eventType": _TEXT,
            "status": {"enum": list(STATUSES)},
            "attempts": integer,
            "createdAt": _TIME,
            "nextAttemptAt": _nullable(_TIME),
            "succeededAt": _nullable(_TIME),
            "failedAt": _nullable(_TIME),
            "lastStatusCode": _nullable(integer),
            "lastError": _nullable(_TEXT),
        },
    }


def delivery_detail() -> Schema:
    integer = {"type": "integer"}
    attempt = {
        "type": "object",
        "required": ["attempt"],
        "properties": {
            "attempt": integer,
            "cycle": integer,
            "startedAt": _nullable(_TIME),
            "finishedAt": _nullable(_TIME),
            "durationMs": _nullable(integer),
            "statusCode": _nullable(integer),
            "error": _nullable(_TEXT),
            "responseBody": _nullable(_TEXT),
        },
    }
    schema = delivery()
    return {
        **schema,
        "required": [*schema["required"], "payload", "attemptLog"],
        "properties": {
            **schema["properties"],
            "cycle": integer,
            "payload": {"type": "object"},
            "attemptLog": {"type": "array", "items": attempt},
        },
    }


def page_of(item: Schema) -> Schema:
    return {
        "type": "object",
        "required": ["items", "nextCursor"],
        "properties": {"items": {"type": "array", "items": item}, "nextCursor": _nullable(_TEXT)},
    }


def page_query() -> dict[str, Schema]:
    """limit and cursor of a keyset-paged list."""
    return {"limit": {"type": "integer", "minimum": 1, "maximum": 500}, "cursor": _TEXT}


def delivery_query() -> dict[str, Schema]:
    from chalicelib.webhooks.deliveries import STATUSES

    return {
        **page_query(),
        "status": {"enum": list(STATUSES)},
        "eventType": {"type": "string", "maxLength": 100},
        "since": _TIME,
        "until": _TIME,
    }


def recover_request() -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["since"],
        "properties": {"since": _TIME, "until": _nullable(_TIME)},
    }


def recover_answer() -> Schema:
    return {
        "type": "object",
        "required": ["recovering", "since", "until"],
        "properties": {"recovering": {"type": "integer", "minimum": 0}, "since": _TIME, "until": _TIME},
    }


def login_request() -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["email", "password"],
        "properties": {
            "email": {"type": "string", "pattern": "@"},
            "password": {"type": "string", "minLength": 1},
            "accountId": _nullable(_UUID),
        },
    }


def login_answer() -> Schema:
    from chalicelib.domain.roles import ROLES

    role = {"enum": list(ROLES)}
    user = {
        "type": "object",
        "required": ["id", "email", "role", "accountId"],
        "properties": {
            "id": _UUID,
            "email": _TEXT,
            "name": _nullable(_TEXT),
            "role": role,
            "accountId": _UUID,
            "accountName": _TEXT,
        },
    }
    account = {
        "type": "object",
        "required": ["id", "name", "role"],
        "properties": {"id": _UUID, "name": _TEXT, "role": role},
    }
    return {
        "type": "object",
        "required": ["token", "expiresIn", "user", "accounts"],
        "properties": {
            "token": _TEXT,
            "expiresIn": {"type": "integer", "minimum": 1},
            "user": user,
            "accounts": {"type": "array", "items": account},
        },
    }


def me_answer() -> Schema:
    from chalicelib.domain.roles import ROLES

    return {
        "type": "object",
        "required": ["kind", "role", "account"],
        "properties": {
            "kind": {"enum": ["user", "api_key"]},
            "role": {"enum": list(ROLES)},
            "account": {
                "type": "object",
                "required": ["id", "name"],
                "properties": {"id": _UUID, "name": _TEXT, "slug": _TEXT},
            },
            "user": {
                "type": "object",
                "required": ["id", "email"],
                "properties": {"id": _UUID, "email": _TEXT, "name": _nullable(_TEXT)},
            },
            "apiKey": {"type": "object", "required": ["id"], "properties": {"id": _UUID}},
        },
    }


def password_request() -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["currentPassword", "newPassword"],
        "properties": {
            "currentPassword": {"type": "string", "minLength": 1},
            "newPassword": {"type": "string", "minLength": 1},
        },
    }


def api_key_request() -> Schema:
    from chalicelib.domain.api_keys import KEY_ROLES

    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {"name": _TEXT, "role": _nullable({"enum": list(KEY_ROLES)}), "expiresAt": _nullable(_TIME)},
    }


def api_key_created() -> Schema:
    return {
        "type": "object",
        "required": ["id", "name", "prefix", "role", "createdAt", "key"],
        "properties": {
            "id": _UUID,
            "name": _TEXT,
            "prefix": _TEXT,
            "role": _TEXT,
            "createdBy": _nullable(_UUID),
            "createdAt": _TIME,
            "lastUsedAt": _nullable(_TIME),
            "expiresAt": _nullable(_TIME),
            "key": _nullable({"type": "string", "pattern": "^race_"}),  # null only in a replay
            "secretShownOnce": _SHOWN_ONCE,
        },
    }


def member_request(creating: bool) -> Schema:
    from chalicelib.domain.roles import ROLES

    properties: Schema = {"role": {"enum": list(ROLES)}}
    if creating:
        properties["email"] = {"type": "string", "pattern": "@"}
    return {"type": "object", "additionalProperties": False, "required": sorted(properties), "properties": properties}


def plugin_upload_request() -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["manifest", "bundle"],
        "properties": {"manifest": {"type": "object"}, "bundle": {"type": "string", "minLength": 1}},
    }


def plugin_version() -> Schema:
    strings = {"type": "array", "items": _TEXT}
    return {
        "type": "object",
        "required": [
            "id",
            "version",
            "name",
            "interfaces",
            "capabilities",
            "timeoutMs",
            "bundleSha256",
            "bundleBytes",
            "createdAt",
        ],
        "properties": {
            "id": _TEXT,
            "version": _TEXT,
            "name": _TEXT,
            "interfaces": strings,
            "capabilities": strings,
            "timeoutMs": {"type": "integer"},
            "entryPoints": {"type": "object"},
            "description": _nullable(_TEXT),
            "main": _nullable(_TEXT),
            "bundleSha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "bundleBytes": {"type": "integer"},
            "createdAt": _TIME,
        },
    }


def plugin(detail: bool) -> Schema:
    strings = {"type": "array", "items": _TEXT}
    properties: Schema = {
        "id": _TEXT,
        "name": _TEXT,
        "latestVersion": _nullable(_TEXT),
        "grants": strings,
        "createdAt": _TIME,
        "updatedAt": _TIME,
    }
    if detail:
        properties["versions"] = {"type": "array", "items": plugin_version()}
        properties.update({"createdBy": _nullable(_UUID), "grantsSetBy": _nullable(_UUID)})
    else:
        properties.update({"interfaces": strings, "capabilities": strings, "versionCount": {"type": "integer"}})
    return {"type": "object", "required": sorted(properties), "properties": properties}


def plugin_grants_request() -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["capabilities"],
        "properties": {"capabilities": {"type": "array", "maxItems": 20, "items": _TEXT}},
    }


def plugin_grants_answer() -> Schema:
    return {
        "type": "object",
        "required": ["id", "grants", "updatedAt"],
        "properties": {
            "id": _TEXT,
            "grants": {"type": "array", "items": _TEXT},
            "grantsSetBy": _nullable(_UUID),
            "updatedAt": _TIME,
        },
    }


def plugin_invoke_request(route: str) -> Schema:
    version = _nullable(_TEXT)
    if route == "math":
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["input"],
            "properties": {"input": {}, "version": version},
        }
    return {
        "type": "object",
        "additionalProperties": False,
        "anyOf": [{"required": ["runSheetId"]}, {"required": ["laps"]}],
        "properties": {
            "runSheetId": _nullable(_UUID),
            "laps": {"type": "array", "items": {"type": "object"}},
            "params": {},
            "version": version,
        },
    }


def plugin_invoke_answer() -> Schema:
    return {
        "type": "object",
        "required": ["output", "durationMs", "version", "compiled"],
        "properties": {
            "output": {},
            "durationMs": {"type": "number", "minimum": 0},
            "version": _TEXT,
            "compiled": {"type": "boolean"},
        },
    }


PLUGIN_FAILED = {
    "422": "The plugin failed (the code says how): plugin_error, plugin_timeout, plugin_memory_limit, "
    "plugin_output_too_large, plugin_capability_refused"
}


def attachment_request() -> Schema:
    from chalicelib.domain.attachments import MAX_ATTACHMENT_BYTES

    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["fileName", "contentType", "sizeBytes"],
        "properties": {
            "fileName": _TEXT,
            "contentType": _TEXT,
            "sizeBytes": {"type": "integer", "minimum": 1, "maximum": MAX_ATTACHMENT_BYTES},
        },
    }


def attachment_created() -> Schema:
    return {
        "type": "object",
        "required": ["id", "uploadUrl", "uploadHeaders", "expiresIn"],
        "properties": {
            "id": _UUID,
            "uploadUrl": _TEXT,
            "uploadHeaders": {"type": "object"},
            "expiresIn": {"type": "integer"},
        },
    }


def attachment_with_download() -> Schema:
    return {
        "type": "object",
        "required": ["id", "downloadUrl"],
        "properties": {"id": _UUID, "downloadUrl": _nullable(_TEXT), "downloadExpiresIn": {"type": "integer"}},
    }


def timing_upload_url() -> Schema:
    return {
        "type": "object",
        "required": ["url", "method", "s3Key", "expiresIn", "maxBytes"],
        "properties": {
            "url": _TEXT,
            "method": {"const": "PUT"},
            "s3Key": _TEXT,
            "expiresIn": {"type": "integer"},
            "maxBytes": {"type": "integer"},
        },
    }


def signup_request() -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["email", "password", "name", "accountName"],
        "properties": {
            "email": {"type": "string", "pattern": "@"},
            "password": {"type": "string", "minLength": 1},
            "name": _TEXT,
            "accountName": _TEXT,
        },
    }


def accept_invite_request() -> Schema:
    """Signed in as the invited email: the token alone; new to the platform: a password and a name too."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["token"],
        "properties": {"token": _TEXT, "password": {"type": "string", "minLength": 10}, "name": _TEXT},
    }


def signup_answer() -> Schema:
    """The same whether or not the email has a login: the mailbox's owner learns which."""
    return {
        "type": "object",
        "required": ["status", "email"],
        "properties": {"status": {"const": "confirmation_sent"}, "email": _TEXT},
    }


def confirm_request() -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["token", "password"],
        "properties": {"token": _TEXT, "password": {"type": "string", "minLength": 1}},
    }


def member_removed() -> Schema:
    """DELETE /members/{userId}: what went with the member (members.remove_member)."""
    rows = {"type": "array", "items": {"type": "object", "required": ["id"], "properties": {"id": _UUID}}}
    return {
        "type": "object",
        "required": ["id", "revokedApiKeys", "withdrawnInvites"],
        "properties": {"id": _UUID, "revokedApiKeys": rows, "withdrawnInvites": rows},
    }


def deleted() -> Schema:
    """A race-data DELETE: the id and how many rows of each table went (children with ?cascade=true)."""
    return {
        "type": "object",
        "required": ["id", "deleted"],
        "properties": {
            "id": _UUID,
            "deleted": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}},
        },
    }


def strategy_answer() -> Schema:
    return {
        "type": "object",
        "required": ["eventId", "sessionId", "cars"],
        "properties": {
            "eventId": _UUID,
            "sessionId": _nullable(_UUID),
            "cars": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["carId", "planned", "actual", "comparison"],
                    "properties": {
                        "carId": _UUID,
                        "planned": {"type": "array", "items": {"type": "object"}},
                        "actual": {"type": "array", "items": _actual_stint()},
                        "comparison": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
        },
    }


def _actual_stint() -> Schema:
    """A stint as the laps show it (domain/strategy.actual_stints): it ends with an in lap."""
    number = _nullable({"type": "number"})
    integer = {"type": "integer"}
    return {
        "type": "object",
        "required": ["stint", "firstLap", "lastLap", "laps", "driver", "endedInPit"],
        "properties": {
            "stint": integer,
            "firstLap": integer,
            "lastLap": integer,
            "laps": integer,
            "driver": _nullable({"type": "string", "description": "the driver's id, or their number"}),
            "bestLapMs": _nullable(integer),
            "averageLapMs": _nullable(integer),
            "endedInPit": {"type": "boolean"},
            "fuelStartL": number,
            "fuelEndL": number,
            "fuelUsedL": number,
        },
    }


def strategy_request() -> Schema:
    from chalicelib.domain.strategy import MAX_PLANNED_STINTS

    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["stints"],
        "properties": {"stints": {"type": "array", "maxItems": MAX_PLANNED_STINTS, "items": {"type": "object"}}},
    }


def strategy_saved() -> Schema:
    return {
        "type": "object",
        "required": ["eventId", "stints"],
        "properties": {"eventId": _UUID, "stints": {"type": "array", "items": {"type": "object"}}},
    }


def stats_answer() -> Schema:
    return {
        "type": "object",
        "required": ["runSheetId", "sessionId", "carId"],
        "properties": {"runSheetId": _UUID, "sessionId": _UUID, "carId": _UUID},
    }


def health_answer() -> Schema:
    return {"type": "object", "required": ["status"], "properties": {"status": _TEXT}}


def openapi_answer() -> Schema:
    return {
        "type": "object",
        "required": ["openapi", "info", "paths"],
        "properties": {
            "openapi": {"type": "string", "pattern": "^3\\."},
            "info": {"type": "object"},
            "paths": {"type": "object"},
        },
    }


def timing_import_request() -> Schema:
    return {"type": "object", "additionalProperties": False, "required": ["s3Key"], "properties": {"s3Key": _TEXT}}


def standings_answer() -> Schema:
    int_or_null = _nullable({"type": "integer"})
    text_or_null = _nullable(_TEXT)
    car = {
        "type": "object",
        "required": ["position", "number", "laps", "gapToLeaderMs", "gapToAheadMs", "status", "penaltyMs"],
        "properties": {
            "position": {"type": "integer"},
            "classPosition": {"type": "integer"},
            "roadPosition": int_or_null,
            "carId": _nullable(_UUID),
            "number": _TEXT,
            "class": text_or_null,
            "team": text_or_null,
            "isOurs": {"type": "boolean"},
            "laps": {"type": "integer"},
            **{
                name: int_or_null
                for name in (
                    "bestLapMs",
                    "bestLapNumber",
                    "lastLapMs",
                    "elapsedMs",
                    "gapToLeaderMs",
                    "gapToLeaderLaps",
                    "gapToAheadMs",
                    "gapToAheadLaps",
                    "gapToClassLeaderMs",
                    "gapToClassLeaderLaps",
                    "stint",
                    "officialPosition",
                    "officialLaps",
                    "totalTimeMs",
                    "penaltyMs",
                )
            },
            "pitStops": {"type": "integer"},
            "driverNumber": text_or_null,
            "driverName": text_or_null,
            "status": text_or_null,
        },
    }
    return {
        "type": "object",
        "required": ["sessionId", "sessionType", "order", "resultsImported", "items"],
        "properties": {
            "sessionId": _UUID,
            "sessionType": _TEXT,
            "order": {"enum": ["official", "laps", "bestLap"]},
            "resultsImported": {"type": "boolean"},
            "items": {"type": "array", "items": car},
        },
    }


def lap_chart_answer() -> Schema:
    ints = {"type": "array", "items": {"type": "integer"}}
    car = {
        "type": "object",
        "required": ["carId", "number", "lapNumbers", "lapTimesMs", "elapsedMs", "marks"],
        "properties": {
            "carId": _UUID,
            "number": _TEXT,
            "lapNumbers": ints,
            "lapTimesMs": ints,
            "elapsedMs": ints,
            "marks": ints,
        },
    }
    return {
        "type": "object",
        "required": ["sessionId", "sessionType", "items"],
        "properties": {"sessionId": _UUID, "sessionType": _TEXT, "items": {"type": "array", "items": car}},
    }
