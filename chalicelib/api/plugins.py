"""/plugins: upload immutable versions, list, read, delete, grant capabilities, and invoke math / KPI."""

from __future__ import annotations

import json
from typing import Any

from chalice import Blueprint, Response

from chalicelib.api import shapes
from chalicelib.api.routing import caller, json_body, query_params, route
from chalicelib.api.shapes import documented
from chalicelib.plugins import limits, service

bp = Blueprint(__name__)


@route(bp, "/plugins", methods=("POST",), status=201)
@documented(request=shapes.plugin_upload_request(), answer=shapes.plugin_version())
def upload_plugin() -> Any:
    """Publish a plugin version: {manifest, bundle}; 201 new, 200 when this exact version exists (admin)"""
    created, version = service.upload(caller(), json_body(bp, limits.MAX_UPLOAD_BODY_BYTES))
    if created:
        return version
    return Response(body=json.dumps(version), status_code=200, headers={"Content-Type": "application/json"})


@route(bp, "/plugins")
@documented(answer=shapes.page_of(shapes.plugin(detail=False)), query=shapes.page_query())
def list_plugins() -> Any:
    """List your account's plugins with their latest version and grants"""
    return service.list_plugins(caller(), query_params(bp))


@route(bp, "/plugins/{id}")
@documented(answer=shapes.plugin(detail=True))
def get_plugin(id: str) -> Any:
    """One plugin with every published version (newest first) and its grants"""
    return service.get_plugin(caller(), id)


@route(bp, "/plugins/{id}", methods=("DELETE",))
def delete_plugin(id: str) -> None:
    """Delete a plugin: all versions, bundles, grants and its storage (admin)"""
    service.delete_plugin(caller(), id)


@route(bp, "/plugins/{id}/grants", methods=("PUT",))
@documented(request=shapes.plugin_grants_request(), answer=shapes.plugin_grants_answer())
def set_plugin_grants(id: str) -> Any:
    """Grant declared capabilities to the plugin in your account: {capabilities: [...]} (admin)"""
    return service.set_grants(caller(), id, json_body(bp))


@route(bp, "/plugins/{id}/invoke/math", methods=("POST",))
@documented(
    request=shapes.plugin_invoke_request("math"), answer=shapes.plugin_invoke_answer(), errors=shapes.PLUGIN_FAILED
)
def invoke_math(id: str) -> Any:
    """Run plugin.math on {input}; optional version pins one (else the latest)"""
    return service.invoke(caller(), id, "math", json_body(bp))


@route(bp, "/plugins/{id}/invoke/kpi", methods=("POST",))
@documented(
    request=shapes.plugin_invoke_request("kpi"), answer=shapes.plugin_invoke_answer(), errors=shapes.PLUGIN_FAILED
)
def invoke_kpi(id: str) -> Any:
    """Run plugin.kpiProcessor on a run sheet's laps ({runSheetId}) or on {laps}; optional params, version"""
    return service.invoke(caller(), id, "kpi", json_body(bp))
