"""Names /openapi.json gives each operation: one tag per resource and a stable camelCase operationId.

Generated clients name their modules after tags and their functions after operationIds, so both are
derived from the path alone (never from a view's Python name) and an existing one never changes.
"""

from __future__ import annotations

import re

# Path segment -> (tag, what the tag groups); a route is tagged by the last segment of its path found here.
TAGS: dict[str, tuple[str, str]] = {
    "auth": ("auth", "Sign in, sign up, invitations, the caller and its password"),
    "events": ("events", "Race weekends: the root of an account's race data"),
    "sessions": ("sessions", "Practice, qualifying and race sessions of an event"),
    "cars": ("cars", "Entries of an event, matched by car number as text"),
    "drivers": ("drivers", "Drivers of an account"),
    "run-sheets": ("run-sheets", "A car's run in a session: its laps, stats and attachments"),
    "laps": ("laps", "Laps of a run sheet, one by one or in batches of up to 5,000"),
    "setups": ("setups", "Car setups"),
    "issues": ("issues", "Car issues"),
    "board-cards": ("board-cards", "The team board"),
    "strategy": ("strategy", "Planned stints of an event next to the stints its laps show"),
    "attachments": ("attachments", "Files attached to run sheets, uploaded with presigned URLs"),
    "timing-imports": ("timing-imports", "Al Kamel timing exports imported into a session"),
    "members": ("members", "Members of the account and their roles; invitations"),
    "api-keys": ("api-keys", "race_ API keys for scripts and integrations"),
    "webhooks": ("webhooks", "Subscriptions, signed deliveries, replay and recovery"),
    "plugins": ("plugins", "Sandboxed JavaScript plugins: publish, grant, invoke"),
    "health": ("meta", "Liveness and this description"),
    "openapi.json": ("meta", "Liveness and this description"),
}

# Routes whose last segment is an action or a singular resource: their ids are chosen, not derived.
_CHOSEN: dict[tuple[str, str], str] = {
    ("POST", "/auth/login"): "signIn",
    ("POST", "/auth/signup"): "signUp",
    ("POST", "/auth/accept-invite"): "acceptInvite",
    ("GET", "/auth/me"): "getCaller",
    ("POST", "/auth/password"): "changePassword",
    ("GET", "/health"): "getHealth",
    ("GET", "/openapi.json"): "getOpenApiDocument",
    ("GET", "/events/{id}/strategy"): "getEventStrategy",
    ("PUT", "/events/{id}/strategy"): "replaceEventStrategy",
    ("GET", "/run-sheets/{id}/stats"): "getRunSheetStats",
    ("GET", "/sessions/{id}/standings"): "getSessionStandings",
    ("POST", "/attachments/{id}/complete"): "completeAttachment",
    ("POST", "/sessions/{id}/timing-imports/upload-url"): "createTimingImportUploadUrl",
    ("DELETE", "/api-keys/{id}"): "revokeApiKey",
    ("POST", "/webhooks/{id}/test"): "testWebhook",
    ("POST", "/webhooks/{id}/rotate-secret"): "rotateWebhookSecret",
    ("POST", "/webhooks/{id}/recover"): "recoverWebhookDeliveries",
    ("POST", "/webhooks/{id}/deliveries/{deliveryId}/replay"): "replayWebhookDelivery",
    ("PUT", "/plugins/{id}/grants"): "replacePluginGrants",
    ("POST", "/plugins/{id}/invoke/math"): "invokePluginMath",
    ("POST", "/plugins/{id}/invoke/kpi"): "invokePluginKpi",
    ("POST", "/plugins"): "publishPlugin",
}
_ITEM_VERBS = {"GET": "get", "PATCH": "update", "DELETE": "delete", "PUT": "replace", "POST": "post"}


def _words(segment: str) -> str:
    return "".join(part.title() for part in re.split(r"[^A-Za-z0-9]+", segment) if part)


def _singular(segment: str) -> str:
    if segment.endswith("ies"):
        return segment[:-3] + "y"
    return segment[:-1] if segment.endswith("s") and not segment.endswith("ss") else segment


def tag(path: str) -> str:
    """The resource a route belongs to: the last of its segments that names one (else its first segment)."""
    segments = [s for s in path.strip("/").split("/") if s and not s.startswith("{")]
    for segment in reversed(segments):
        if segment in TAGS:
            return TAGS[segment][0]
    return segments[0] if segments else "meta"


def operation_id(method: str, path: str) -> str:
    """`listLaps`, `createLap`, `getLap`, `listSessionTimingImports`, ... (a chosen id where the path is an action)."""
    chosen = _CHOSEN.get((method, path))
    if chosen:
        return chosen
    parts = [s for s in path.strip("/").split("/") if s]
    is_item = parts[-1].startswith("{")
    statics = [s for s in parts if not s.startswith("{")]
    owners = "".join(_words(_singular(s)) for s in statics[:-1])
    last = statics[-1]
    if is_item:
        return _ITEM_VERBS.get(method, method.lower()) + owners + _words(_singular(last))
    if method == "GET":
        return "list" + owners + _words(last)
    if method == "POST":
        return "create" + owners + _words(_singular(last))
    return _ITEM_VERBS.get(method, method.lower()) + owners + _words(last)
