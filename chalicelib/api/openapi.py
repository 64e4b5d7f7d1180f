"""GET /openapi.json: the API described from the app's own route table and wire specs."""

from __future__ import annotations

import functools
import inspect
import re
from typing import Any

from chalice import Blueprint

from chalicelib.api.routing import route
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
_ERRORS = {"400": "Bad input (the error names the field)", "401": "No or invalid credentials",
           "403": "Your role may not do this", "404": "Absent, or in another account",
           "409": "Conflict", "413": "Body too large", "429": "Rate limited (see Retry-After)",
           "503": "A dependency is down (the message names it)"}


def _field_schema(field: Field) -> dict[str, Any]:
    schema = dict(_KIND_SCHEMA.get(field.kind, {}))
    if field.name in ("id", "createdAt", "updatedAt") or not schema:
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


def _resource_schema(resource: Resource) -> dict[str, Any]:
    return {"type": "object", "properties": {f.name: _field_schema(f) for f in resource.fields},
            "required": ["id"]}


def _schema_name(resource: Resource) -> str:
    return "".join(part.title() for part in resource.name.split("_"))


def _operation(path: str, method: str, view: Any, components: dict[str, Any]) -> dict[str, Any]:
    inner = getattr(view, "__wrapped__", view)
    resource: Resource | None = getattr(inner, "race_resource", None)
    doc = inspect.getdoc(inner) or ""
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_') or 'root'}",
        "summary": doc.splitlines()[0] if doc else f"{method} {path}",
        "responses": {code: {"description": text, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}} for code, text in _ERRORS.items()},
    }
    if getattr(view, "race_public", False):
        operation["security"] = []
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in re.findall(r"{(\w+)}", path)]
    ok: dict[str, Any] = {"description": "OK", "content": {"application/json": {"schema": {}}}}
    if resource is not None:
        name = _schema_name(resource)
        components[name] = _resource_schema(resource)
        item = {"$ref": f"#/components/schemas/{name}"}
        if getattr(inner, "race_list", False):
            parameters += [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                       "maximum": 500}},
                           {"name": "cursor", "in": "query", "schema": {"type": "string"}}]
            parameters += [{"name": f.name, "in": "query", "schema": _KIND_SCHEMA.get(f.kind, {"type": "string"})}
                           for f in resource.filters]
            parameters += [{"name": n, "in": "query", "schema": {"type": "string", "format": "uuid"}}
                           for n, _ in resource.parent_filters]
            ok["content"]["application/json"]["schema"] = {
                "type": "object", "required": ["items", "nextCursor"],
                "properties": {"items": {"type": "array", "items": item},
                               "nextCursor": {"type": ["string", "null"]}}}
        elif method != "DELETE":
            ok["content"]["application/json"]["schema"] = item
        editable = getattr(inner, "race_body", None)
        if editable is not None:
            writable = {f.name: _field_schema(f) for f in resource.fields if f.name in editable.allowed}
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": writable, "additionalProperties": False}}}}
    elif method in ("POST", "PUT", "PATCH"):
        operation["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
    status = str(getattr(view, "race_status", 200))
    operation["responses"][status] = ok
    if method == "DELETE":
        operation["responses"]["204"] = {"description": "Deleted"}
    if parameters:
        operation["parameters"] = parameters
    return operation


def document(routes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An OpenAPI 3.1 document for a Chalice route table."""
    components: dict[str, Any] = {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "field": {"type": "string"}, "details": {"type": "array"}}}}},
    }
    paths: dict[str, Any] = {}
    for path in sorted(routes):
        for method, entry in sorted(routes[path].items()):
            paths.setdefault(path, {})[method.lower()] = _operation(path, method, entry.view_function, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Race Platform API", "version": "1.0.0",
                 "description": "Race engineering: events, sessions, cars, run sheets, laps, live rooms, "
                                "webhooks and plugins. Errors share one shape; lists page with cursors."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "POST /auth/login returns the token"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                           "description": "race_<secret> from POST /api-keys"},
            },
        },
    }


@functools.cache
def _cached(app_id: int) -> dict[str, Any]:
    return document(bp.current_app.routes)


@route(bp, "/openapi.json", public=True)
def openapi() -> Any:
    """The OpenAPI 3.1 description of every route."""
    return _cached(id(bp.current_app))
