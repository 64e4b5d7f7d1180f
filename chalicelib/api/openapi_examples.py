"""Examples for /openapi.json, built from each schema with values a race team would send.

Built, not written by hand, so an example cannot fall behind its schema: tests validate every
example against its schema, and Spectral's oas3-valid-media-example does too.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

Schema = dict[str, Any]

_TIME = "2026-03-14T14:03:21.482113Z"
# Field name -> a value it takes in a real account (the first one its schema accepts is used).
_VALUES: dict[str, tuple[Any, ...]] = {
    "email": ("jamie@apexracing.io",),
    "password": ("sebring12h",),
    "currentPassword": ("sebring12h",),
    "newPassword": ("a-longer-passphrase-2026",),
    "name": ("Sebring 12 Hours",),
    "accountName": ("Apex Racing",),
    "track": ("Sebring International Raceway",),
    "number": ("12",),
    "class": ("GTP",),
    "team": ("Apex Racing",),
    "liveryColor": ("#f0883e",),
    "driverNumber": ("1",),
    "lapNumber": (42,),
    "lapTimeMs": (118734,),
    "sectorTimesMs": (38912,),
    "pitTimeMs": (0,),
    "stint": (3,),
    "fuelL": (45.5,),
    "tyreSet": ("Set 4 (soft)",),
    "url": ("https://hooks.example.com/race",),
    "description": ("Telemetry bridge",),
    "token": ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl",),
    "key": ("race_3kTq9vV1xY2zA7bC8dE4fG5hJ6kL",),
    "secret": ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw8bQ0r9J6kQ1U6bBf",),
    "prefix": ("race_3kTq",),
    "message": ("lapTimeMs must be at least 1",),
    "code": ("invalid",),
    "field": ("lapTimeMs",),
    "eventType": ("lap.create",),
    "type": ("lap.create",),
    "fileName": ("tyre-temps.csv",),
    "contentType": ("text/csv",),
    "sizeBytes": (48213,),
    "bundle": ("var plugin = { math: function (input) { return input.a + input.b; } };",),
    "s3Key": ("timing-uploads/77aa/2026-03-14/race.csv",),
    "version": ("1.2.0",),
    "openapi": ("3.1.0",),
    "bundleSha256": ("9f2c6d0e4b1a8c7d5e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d",),
    "rowsRejected": ([{"line": 12, "reason": "LAP_TIME is not a time"}],),
    "status": ("ok",),
    "lastError": ("HTTP 502",),
    "lastStatusCode": (502,),
    "eventId": (183422,),
    "expiresIn": (3600,),
    "attempts": (1,),
    "cycle": (1,),
    "title": ("Rear brake temps high",),
    "notes": ("Cooling duct taped for the night stint",),
}


def _stable_uuid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "race-platform/" + name))


def _fits(value: Any, schema: Schema) -> bool:
    kind = schema.get("type")
    types: dict[str, type | tuple[type, ...]] = {"string": str, "integer": int, "number": (int, float), "boolean": bool}
    if isinstance(kind, str) and kind in types and not isinstance(value, types[kind]):
        return False
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return False
        if len(value) > schema.get("maxLength", len(value)) or len(value) < schema.get("minLength", 0):
            return False
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        return False
    return "enum" not in schema or value in schema["enum"]


class Examples:
    """`of(schema)`: an example value for a schema, `$ref`s resolved against `components`."""

    def __init__(self, components: dict[str, Schema]) -> None:
        self.components = components

    def of(self, schema: Schema, name: str = "", depth: int = 0) -> Any:
        if depth > 8:
            return None
        if "$ref" in schema:
            return self.of(self.components[schema["$ref"].rsplit("/", 1)[-1]], name, depth + 1)
        if "example" in schema:
            return schema["example"]
        if "const" in schema:
            return schema["const"]
        if schema.get("type") == "null":
            return None
        if "allOf" in schema:  # objects merged: every part's fields
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                value = self.of(part, name, depth + 1)
                if isinstance(value, dict):
                    merged.update(value)
            return merged
        if "enum" in schema:
            return schema["enum"][0]
        for combined in ("anyOf", "oneOf"):
            if combined in schema and "properties" not in schema:  # else they only say which are required
                options = [s for s in schema[combined] if s.get("type") != "null"] or schema[combined]
                return self.of(options[0], name, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), None)
        if kind == "object" or "properties" in schema:
            return self._object(schema, depth)
        if kind == "array":
            items = schema.get("items")
            if items is None:
                return []
            return [self.of(items, name, depth + 1)] if schema.get("maxItems", 1) else []
        return self._scalar(schema, kind, name)

    def _object(self, schema: Schema, depth: int) -> dict[str, Any]:
        properties: dict[str, Schema] = schema.get("properties", {})
        value = {key: self.of(sub, key, depth + 1) for key, sub in properties.items()}
        extra = schema.get("additionalProperties")
        if not properties and isinstance(extra, dict):
            value = {"laps": self.of(extra, "laps", depth + 1)}
        return value

    def _scalar(self, schema: Schema, kind: Any, name: str) -> Any:
        for value in _VALUES.get(name, ()):
            if _fits(value, schema):
                return value
        if schema.get("format") == "uuid" or name == "id" or name.endswith("Id"):
            return _stable_uuid(name)
        if schema.get("format") == "date-time":
            return _TIME
        if kind == "integer":
            return max(schema.get("minimum", 1), 1) if schema.get("maximum", 1) >= 1 else schema.get("minimum", 0)
        if kind == "number":
            return float(max(schema.get("minimum", 1), 1))
        if kind == "boolean":
            return True
        if kind == "string":
            text = "GT3 run plan" if "pattern" not in schema or _fits("GT3 run plan", schema) else "a"
            return text[: schema.get("maxLength", len(text))]
        return {} if name in ("parameters", "custom", "payload", "output", "params") else None
