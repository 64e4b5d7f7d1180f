"""The webhook event catalog: every event type, when it fires, its payload schema and an example.

The payload's `data` is the wire form the write records (`Resource.to_wire` of the same Resource the
domain uses), so a field added to a resource reaches its events here too. A unit test scans the
domain for every `recorder.record(...)` so a new event type cannot be left out, and an integration
test checks each type's schema and example against a delivery the stack really made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.records import Resource

Schema = dict[str, Any]

_CRUD_WHEN = {
    "create": "{a} {label} is created (POST {path})",
    "update": "{a} {label} is changed (PATCH {path}/{{id}})",
    "delete": "{a} {label} is deleted (DELETE {path}/{{id}}); `data` is its last state plus `deleted`, the rows "
    "removed per table (what ?cascade=true removed with it sends no event of its own)",
}
_DELETED = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}}


@dataclass(frozen=True)
class EventType:
    type: str  # "<entity>.<op>"
    when: str
    data: Schema  # what `data` holds beyond its resource's wire fields
    resource: Resource | None = None
    optional: frozenset[str] = field(default_factory=frozenset)  # extra `data` fields some deliveries carry


def _race_data() -> list[EventType]:
    from chalicelib.domain.race_data import EDITABLES

    found = []
    for path, editable in EDITABLES.items():
        label = editable.entity.replace("_", " ")
        route = "/" + ("issues" if path == "car_issues" else path.replace("_", "-"))
        for op, when in _CRUD_WHEN.items():
            extra: Schema = {"deleted": _DELETED} if op == "delete" else {}
            optional: frozenset[str] = frozenset()
            if editable.entity == "run_sheet" and op == "update":
                when += "; also once per run sheet after a large lap batch or timing import (`lapsAdded`)"
                extra = {"lapsAdded": {"type": "integer", "minimum": 1}, "lapEventsPushed": {"type": "boolean"}}
                optional = frozenset(extra)
            found.append(
                EventType(
                    f"{editable.entity}.{op}",
                    when.format(a="an" if label[0] in "aeiou" else "a", label=label, path=route),
                    extra,
                    editable.resource,
                    optional,
                )
            )
    return found


def catalog() -> list[EventType]:
    """Every event type a webhook can receive, in a stable order."""
    from chalicelib.domain.attachments import ATTACHMENTS
    from chalicelib.domain.members import MEMBERS
    from chalicelib.domain.records import API_KEYS, LAPS
    from chalicelib.timing.imports import TIMING_IMPORTS

    deleted = {"deleted": _DELETED}
    pushed = {"lapEventsPushed": {"type": "boolean"}}
    stint = {"type": "object"}
    return [
        *_race_data(),
        EventType("lap.create", "a lap is recorded: POST /laps (one, or each of a batch) or a timing import", {}, LAPS),
        EventType("lap.update", "a lap is changed: PATCH /laps/{id}, or a timing import that re-reads it", {}, LAPS),
        EventType("lap.delete", "a lap is deleted (DELETE /laps/{id}); `data` is its last state", deleted, LAPS),
        EventType(
            "strategy.update",
            "an event's planned stints are replaced (PUT /events/{id}/strategy)",
            {
                "id": {"type": "string", "format": "uuid"},
                "eventId": {"type": "string", "format": "uuid"},
                "stints": {"type": "array", "items": stint},
            },
        ),
        EventType(
            "attachment.create",
            "a file is declared for a run sheet (POST /run-sheets/{id}/attachments)",
            {},
            ATTACHMENTS,
        ),
        EventType(
            "attachment.update",
            "an attachment's upload is checked and completed (POST /attachments/{id}/complete)",
            {},
            ATTACHMENTS,
        ),
        EventType("attachment.delete", "an attachment is deleted (DELETE /attachments/{id})", {}, ATTACHMENTS),
        EventType(
            "timing_import.create",
            "a timing import starts (POST /sessions/{id}/timing-imports)",
            {},
            TIMING_IMPORTS,
        ),
        EventType(
            "timing_import.update",
            "a timing import finishes, done or failed; `lapEventsPushed` false: its laps were too many to push "
            "one by one to session rooms (webhooks still get a lap event per lap)",
            pushed,
            TIMING_IMPORTS,
            frozenset(pushed),
        ),
        EventType(
            "member.create",
            "someone joins the account or is invited (POST /members, sign-up, accepted invite)",
            {},
            MEMBERS,
        ),
        EventType(
            "member.update",
            "a member's or invite's role changes, or an invite is accepted (`inviteId`)",
            {"inviteId": {"type": "string", "format": "uuid"}},
            MEMBERS,
            frozenset({"inviteId"}),
        ),
        EventType(
            "member.delete",
            "a member is removed or an invite revoked (DELETE /members/{userId}); also each pending invite a removed "
            "or demoted member had sent, with `reason` `inviter_removed` or `inviter_demoted`",
            {"reason": {"enum": ["inviter_removed", "inviter_demoted"]}},
            MEMBERS,
            frozenset({"reason"}),
        ),
        EventType(
            "api_key.delete",
            "a member is removed: each API key they created is revoked (`reason`: `creator_removed`)",
            {"reason": {"enum": ["creator_removed"]}},
            API_KEYS,
        ),
        EventType(
            "webhook.test",
            "POST /webhooks/{id}/test asks for it, whatever the subscription's filter; `eventId` is null",
            {
                "webhookId": {"type": "string", "format": "uuid"},
                "message": {"type": "string"},
            },
        ),
    ]


HEADERS: list[tuple[str, str, Schema]] = [
    (
        "webhook-id",
        "The delivery id: the same in every attempt and replay; deduplicate on it",
        {"type": "string", "format": "uuid"},
    ),
    (
        "webhook-timestamp",
        "Unix seconds when this attempt was signed (refuse ones over 5 minutes away)",
        {"type": "string", "pattern": "^[0-9]+$"},
    ),
    (
        "webhook-signature",
        "Standard Webhooks: `v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}`; two, "
        "space-separated, during a secret rotation",
        {"type": "string", "pattern": "^v1,"},
    ),
    ("X-Race-Event", "The event type (same as the body's `type`)", {"type": "string"}),
    ("X-Race-Delivery", "The delivery id (same as webhook-id)", {"type": "string", "format": "uuid"}),
    (
        "X-Race-Signature",
        "Legacy: `sha256=<hex HMAC-SHA256 of the body>` keyed with the whole `whsec_` secret; "
        "two, comma-separated, during a rotation",
        {"type": "string", "pattern": "^sha256="},
    ),
]


def payload_schema(event: EventType, resource_ref: Callable[[Resource], Schema]) -> Schema:
    """The JSON body of a delivery of `event`: the envelope built by the outbox around the recorded data."""
    extra: Schema = {"type": "object", "properties": event.data}
    always = sorted(set(event.data) - event.optional)
    if always:
        extra["required"] = always
    data = {"allOf": [resource_ref(event.resource), extra]} if event.resource is not None else extra
    return {
        "type": "object",
        "required": ["type", "timestamp", "data", "accountId", "eventId"],
        "properties": {
            "type": {"const": event.type},
            "timestamp": {"type": "string", "format": "date-time", "description": "when the write committed"},
            "data": data,
            "accountId": {"type": "string", "format": "uuid"},
            "eventId": {"type": "null"} if event.type == "webhook.test" else {"type": "integer", "minimum": 1},
        },
    }


def _example(event: EventType, schema: Schema, example: Callable[[Schema], Any]) -> Any:
    """A payload as most deliveries of the type look: without the fields only some carry."""
    value = example(schema)
    for name in event.optional:
        value["data"].pop(name, None)
    return value


def webhooks(resource_ref: Callable[[Resource], Schema], example: Callable[[Schema], Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 `webhooks` object: one POST per event type, with its headers, body and example."""
    described: dict[str, Any] = {}
    for event in catalog():
        schema = payload_schema(event, resource_ref)
        described[event.type] = {
            "post": {
                "operationId": "on" + "".join(w.title() for w in event.type.replace(".", "_").split("_")),
                "tags": ["webhook events"],
                "summary": event.type,
                "description": f"Sent when {event.when}.",
                "security": [],
                "parameters": [
                    {"name": name, "in": "header", "required": True, "description": text, "schema": header}
                    for name, text, header in HEADERS
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": schema, "example": _example(event, schema, example)}},
                },
                "responses": {
                    "200": {"description": "Received: any 2xx within 10 seconds settles the delivery"},
                    "410": {"description": "Gone: the delivery fails at once and the subscription is disabled"},
                },
            }
        }
    return described
