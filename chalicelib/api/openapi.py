"""GET /openapi.json: the API described from the app's own route table and wire specs."""

from __future__ import annotations

import functools
import inspect
import json
import re
from typing import Any

from chalice import Blueprint

from chalicelib.api import openapi_names
from chalicelib.api.openapi_examples import Examples
from chalicelib.api.routing import route
from chalicelib.api.shapes import documented, openapi_answer
from chalicelib.domain.records import Field, Resource

bp = Blueprint(__name__)

_KIND_SCHEMA: dict[str, dict[str, Any]] = {
    "uuid": {"type": "string", "format": "uuid"},
    "text": {"type": "string"},
    "int": {"type": "integer"},
    "bool": {"type": "boolean"},
    "time": {"type": "string", "format": "date-time"},
    "json": {},
    "int_array": {"type": "array", "items": {"type": "integer"}},
    "decimal": {"type": "number"},
}
_ERRORS = {
    "400": "Bad input (the error names the field)",
    "401": "No or invalid credentials",
    "403": "Your role may not do this",
    "404": "Absent, or in another account",
    "409": "Conflict",
    "413": "Body too large",
    "415": "Content-Type not accepted (application/json; text/csv where a route says so)",
    "429": "Rate limited (see Retry-After)",
    "503": "A dependency is down (the message names it)",
}


def _field_schema(field: Field) -> dict[str, Any]:
    schema = dict(_KIND_SCHEMA.get(field.kind, {}))
    if field.name in ("id", "createdAt", "updatedAt") or not schema:
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def _path_schema(path: str, name: str) -> dict[str, Any]:
    """Path ids are UUIDs (malformed: 400), except a plugin's, which is its manifest id (malformed: 404)."""
    if path.startswith("/plugins/{id}") and name == "id":
        from chalicelib.plugins.manifest import PLUGIN_ID

        return {"type": "string", "pattern": PLUGIN_ID.pattern}
    return {"type": "string", "format": "uuid"}


_NO_NUL = r"^[^\x00]*$"
_SOME_TEXT = r"^[^\x00]*[^\s\x00][^\x00]*$"  # Body.text strips, then wants a character; never NUL


class _BodyShape:
    """Stands in for validation.Body while a resource's reader runs, recording each field's JSON Schema.

    Every reader returns None, so the checks a reader makes on values itself are skipped (see _PATTERNS).
    """

    prefix = ""
    payload: dict[str, Any] = {}

    def __init__(self) -> None:
        self.properties: dict[str, Any] = {}  # without null: _body_schema decides where null is taken
        self.required: list[str] = []
        self.null_is_value: set[str] = set()  # null reads as a value (a default choice, an empty object)

    def has(self, name: str) -> bool:
        return False

    def fail(self, message: str, field: str) -> None:
        return None

    def _field(self, name: str, schema: dict[str, Any], required: bool, null_is_value: bool = False) -> None:
        if required:
            self.required.append(name)
        if null_is_value:
            self.null_is_value.add(name)
        self.properties[name] = schema

    def text(
        self, name: str, *, required: bool = True, max_len: int = 200, default: str | None = None, min_len: int = 1
    ) -> None:
        self._field(
            name, {"type": "string", "maxLength": max_len, "pattern": _SOME_TEXT if min_len else _NO_NUL}, required
        )

    def choice(self, name: str, choices: Any, *, required: bool = False, default: str | None = None) -> None:
        self._field(name, {"enum": list(choices)}, required, null_is_value=default is not None)

    def integer(
        self,
        name: str,
        *,
        required: bool = True,
        minimum: int | None = None,
        maximum: int | None = None,
        default: int | None = None,
    ) -> None:
        bounds = {k: v for k, v in (("minimum", minimum), ("maximum", maximum)) if v is not None}
        self._field(name, {"type": "integer", **bounds}, required)

    def number(
        self,
        name: str,
        *,
        required: bool = True,
        minimum: float | None = None,
        maximum: float | None = None,
        default: float | None = None,
    ) -> None:
        bounds = {k: v for k, v in (("minimum", minimum), ("maximum", maximum)) if v is not None}
        self._field(name, {"type": "number", **bounds}, required)

    def boolean(self, name: str, *, required: bool = False, default: bool | None = None) -> None:
        self._field(name, {"type": "boolean"}, required)

    def time(self, name: str, *, required: bool = True) -> None:
        self._field(name, {"type": "string", "format": "date-time", "maxLength": 40}, required)

    def uuid(self, name: str, *, required: bool = True) -> None:
        self._field(name, {"type": "string", "format": "uuid"}, required)

    def obj(self, name: str, *, required: bool = False, max_keys: int = 200) -> None:
        self._field(name, {"type": "object", "maxProperties": max_keys}, required, null_is_value=True)


def _patterns() -> dict[tuple[str, str], dict[str, Any]]:
    """What race_data readers check on values themselves, which _BodyShape cannot see."""
    from chalicelib.domain import race_data

    column = {
        "type": "object",
        "additionalProperties": False,
        "required": ["key", "label", "type"],
        "properties": {
            "key": {"type": "string", "maxLength": 40, "pattern": _SOME_TEXT},
            "label": {"type": "string", "maxLength": 80, "pattern": _SOME_TEXT},
            "type": {"enum": ["number", "text", "boolean"]},
            "unit": {"anyOf": [{"type": "string", "maxLength": 20, "pattern": _SOME_TEXT}, {"type": "null"}]},
        },
    }
    return {
        ("car", "number"): {"type": "string", "pattern": race_data._CAR_NUMBER.pattern},
        ("car", "liveryColor"): {"type": "string", "pattern": race_data._COLOR.pattern},
        ("run_sheet", "lapColumns"): {"type": "array", "maxItems": 50, "items": column, "nullable": False},
    }


def _lap_body(creating: bool) -> dict[str, Any]:
    """A lap as domain.laps reads it (its readers are plain functions, so it is written out here)."""
    from chalicelib.domain import laps

    whole_ms = {"type": "integer", "minimum": 1, "maximum": laps.MAX_LAP_TIME_MS}
    fields: dict[str, dict[str, Any]] = {
        "runSheetId": {"type": "string", "format": "uuid"},
        "lapNumber": {"type": "integer", "minimum": 1, "maximum": laps.MAX_LAP_NUMBER},
        "lapTimeMs": whole_ms,
        "sectorTimesMs": {"type": "array", "maxItems": laps.MAX_SECTORS, "items": whole_ms},
        "isInLap": {"type": "boolean"},
        "isOutLap": {"type": "boolean"},
        "isValid": {"type": "boolean"},
        "pitTimeMs": {"type": "integer", "minimum": 0, "maximum": laps.MAX_LAP_TIME_MS},
        "flag": {"enum": list(laps.FLAGS)},
        "driverId": {"type": "string", "format": "uuid"},
        "driverNumber": {"type": "string", "pattern": laps._DRIVER_NUMBER.pattern},
        "stint": {"type": "integer", "minimum": 1, "maximum": laps.MAX_STINT},
        "fuelL": {"type": "number", "minimum": 0, "maximum": laps.MAX_FUEL_L},
        "tyreSet": {"type": "string", "maxLength": 40, "pattern": _SOME_TEXT},
        "recordedAt": {"type": "string", "format": "date-time", "maxLength": 40},
        "custom": {"type": "object", "maxProperties": laps.MAX_CUSTOM_KEYS},
    }
    required = list(laps.REQUIRED) if creating else []
    if not creating:
        del fields["runSheetId"]
    clearable = {name for name, (_, _, nullable) in laps._READERS.items() if nullable} | set(laps._CLEARED_BY_NULL)
    properties = {
        name: {"anyOf": [schema, {"type": "null"}]}
        if name not in required and (creating or name in clearable)
        else schema
        for name, schema in fields.items()
    }
    lap: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        lap["required"] = required
    if not creating:
        return lap
    batch = {
        "type": "object",
        "required": ["laps"],
        "additionalProperties": False,
        "properties": {"laps": {"type": "array", "minItems": 1, "maxItems": laps.MAX_BATCH_LAPS, "items": lap}},
    }
    return {"anyOf": [lap, batch]}


def _body_schema(resource: Resource, editable: Any, creating: bool) -> dict[str, Any]:
    """The request body a resource's writes take: from its reader when it has one, else from its wire fields."""
    if resource.name == "lap":
        return _lap_body(creating)
    properties = {f.name: _field_schema(f) for f in resource.fields if f.name in editable.allowed}
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    read = getattr(editable, "read", None)
    if read is None:
        return schema
    shape = _BodyShape()
    read(shape, creating)
    patterns = {name: value for (entity, name), value in _patterns().items() if entity == resource.name}
    clearable: frozenset[str] = getattr(editable, "clearable", frozenset())
    for name, value in shape.properties.items():
        value = dict(patterns.get(name, value))
        # Optional nulls: on create the default; on update they clear a nullable column, else 400.
        nullable = (
            value.pop("nullable", True)
            and name not in shape.required
            and (creating or name in clearable or name in shape.null_is_value)
        )
        properties[name] = {"anyOf": [value, {"type": "null"}]} if nullable else value
    if not creating:
        for name in getattr(editable, "create_only", ()):
            properties.pop(name, None)
    if shape.required:
        schema["required"] = shape.required
    return schema


def _resource_schema(resource: Resource) -> dict[str, Any]:
    return {"type": "object", "properties": {f.name: _field_schema(f) for f in resource.fields}, "required": ["id"]}


def _schema_name(resource: Resource) -> str:
    return "".join(part.title() for part in resource.name.split("_"))


def _error_response(code: str, text: str) -> dict[str, Any]:
    example: dict[str, dict[str, Any]] = {"error": {"code": _ERROR_CODES.get(code, "error"), "message": text}}
    if code == "400":
        example["error"].update(
            {
                "message": "lapTimeMs must be at least 1",
                "field": "lapTimeMs",
                "details": [{"field": "lapTimeMs", "message": "lapTimeMs must be at least 1"}],
            }
        )
    return {
        "description": text,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}, "example": example}},
    }


_ERROR_CODES = {
    "400": "invalid",
    "401": "unauthorized",
    "403": "forbidden",
    "404": "not_found",
    "409": "conflict",
    "413": "payload_too_large",
    "415": "unsupported_media_type",
    "422": "plugin_error",
    "429": "rate_limited",
    "503": "dependency_unavailable",
}


def _operation(path: str, method: str, view: Any, components: dict[str, Any]) -> dict[str, Any]:
    inner = getattr(view, "__wrapped__", view)
    resource: Resource | None = getattr(inner, "race_resource", None)
    doc = inspect.getdoc(inner) or ""
    summary = doc.splitlines()[0].rstrip(".") if doc else f"{method} {path}"
    operation: dict[str, Any] = {
        "tags": [openapi_names.tag(path)],
        "operationId": openapi_names.operation_id(method, path),
        "summary": summary,
        "description": doc if "\n" in doc else f"{summary}.",
        "responses": {code: _error_response(code, text) for code, text in _ERRORS.items()},
    }
    for code, text in getattr(inner, "race_errors", {}).items():
        operation["responses"][code] = _error_response(code, text)
    if getattr(view, "race_public", False):
        operation["security"] = []
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _path_schema(path, name)}
        for name in re.findall(r"{(\w+)}", path)
    ]
    ok: dict[str, Any] = {"description": "OK", "content": {"application/json": {"schema": {}}}}
    if resource is not None:
        name = _schema_name(resource)
        components[name] = _resource_schema(resource)
        item = {"$ref": f"#/components/schemas/{name}"}
        if getattr(inner, "race_list", False):
            parameters += [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            ]
            parameters += [
                {"name": f.name, "in": "query", "schema": _KIND_SCHEMA.get(f.kind, {"type": "string"})}
                for f in resource.filters
            ]
            parameters += [
                {"name": n, "in": "query", "schema": {"type": "string", "format": "uuid"}}
                for n, _ in resource.parent_filters
            ]
            ok["content"]["application/json"]["schema"] = {
                "type": "object",
                "required": ["items", "nextCursor"],
                "properties": {"items": {"type": "array", "items": item}, "nextCursor": {"type": ["string", "null"]}},
            }
        elif method != "DELETE":
            ok["content"]["application/json"]["schema"] = item
        if resource.name == "lap" and method == "POST":  # a batch answers what it created
            ok["content"]["application/json"]["schema"] = {
                "anyOf": [
                    item,
                    {
                        "type": "object",
                        "required": ["created", "items"],
                        "properties": {"created": {"type": "integer"}, "items": {"type": "array", "items": item}},
                    },
                ]
            }
        editable = getattr(inner, "race_body", None)
        if editable is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": _body_schema(resource, editable, creating=method == "POST")}
                },
            }
    request = getattr(inner, "race_request", None)  # chalicelib/api/shapes.py
    if request is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": request}}}
        if getattr(inner, "race_csv_body", False):
            operation["requestBody"]["content"]["text/csv"] = {
                "schema": {"type": "string"},
                "example": _CSV_EXAMPLE,
            }
    elif (
        method in ("POST", "PUT", "PATCH")
        and "requestBody" not in operation
        and not getattr(inner, "race_no_body", False)
    ):
        operation["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
    answer = getattr(inner, "race_answer", None)
    if answer is not None:
        ok["content"]["application/json"]["schema"] = answer
    parameters += [
        {"name": name, "in": "query", "schema": schema} for name, schema in getattr(inner, "race_query", {}).items()
    ]
    status = str(getattr(view, "race_status", 200))
    if inspect.signature(inner).return_annotation in (None, "None"):  # the route answers 204
        operation["responses"]["204"] = {"description": "Done (no content)"}
    else:
        operation["responses"][status] = ok
        if method == "DELETE":
            operation["responses"]["204"] = {"description": "Deleted"}
    if parameters:
        operation["parameters"] = parameters
    return operation


_CSV_EXAMPLE = "NUMBER;DRIVER_NUMBER;LAP_NUMBER;LAP_TIME;S1;S2;S3\n12;1;1;1:58.734;38.912;41.230;38.592\n"


def _add_examples(paths: dict[str, Any], components: dict[str, Any]) -> None:
    """An example on every JSON body and answer with a schema (built from it: see openapi_examples)."""
    examples = Examples(components)
    for operations in paths.values():
        for operation in operations.values():
            media = [operation.get("requestBody", {}).get("content", {}).get("application/json")]
            media += [
                answer.get("content", {}).get("application/json")
                for code, answer in operation["responses"].items()
                if code.startswith("2")
            ]
            for one in media:
                if one is not None and one.get("schema") and "example" not in one:
                    one["example"] = examples.of(one["schema"])


def _tags() -> list[dict[str, str]]:
    seen: dict[str, str] = {}
    for name, text in openapi_names.TAGS.values():
        seen.setdefault(name, text)
    seen["webhook events"] = "What Race Platform POSTs to your webhook URL: one entry per event type"
    return [{"name": name, "description": text} for name, text in sorted(seen.items())]


def document(routes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An OpenAPI 3.1 document for a Chalice route table, with the webhook events the platform sends."""
    from chalicelib.api import webhook_events

    detail = {
        "type": "object",
        "required": ["field", "message"],
        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
    }
    components: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": "string"},
                        "details": {"type": "array", "items": detail},
                    },
                }
            },
        },
    }
    paths: dict[str, Any] = {}
    for path in sorted(routes):
        for method, entry in sorted(routes[path].items()):
            paths.setdefault(path, {})[method.lower()] = _operation(path, method, entry.view_function, components)
    _add_examples(paths, components)

    def resource_ref(resource: Resource) -> dict[str, Any]:
        name = _schema_name(resource)
        components.setdefault(name, _resource_schema(resource))
        return {"$ref": f"#/components/schemas/{name}"}

    webhooks = webhook_events.webhooks(resource_ref, Examples(components).of)
    used = json.dumps([paths, webhooks, components])
    # A resource whose routes all document their own answer leaves its schema unreferenced: drop it.
    components = {n: s for n, s in components.items() if f'"#/components/schemas/{n}"' in used}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Race Platform API",
            "version": "1.0.0",
            "description": "Race engineering: events, sessions, cars, run sheets, laps, live rooms, "
            "webhooks and plugins. Errors share one shape; lists page with cursors.",
            "contact": {"name": "Race Platform", "url": "https://github.com/race-platform"},
            "license": {"name": "Proprietary", "identifier": "LicenseRef-Proprietary"},
        },
        "servers": [{"url": "/", "description": "The API that serves this document"}],
        "security": [{"bearer": []}, {"apiKey": []}],
        "tags": _tags(),
        "paths": paths,
        "webhooks": webhooks,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "POST /auth/login returns the token",
                },
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "race_<secret> from POST /api-keys",
                },
            },
        },
    }


@functools.cache
def _cached(app_id: int) -> dict[str, Any]:
    return document(bp.current_app.routes)


@route(bp, "/openapi.json", public=True)
@documented(answer=openapi_answer())
def openapi() -> Any:
    """The OpenAPI 3.1 description of every route."""
    return _cached(id(bp.current_app))
