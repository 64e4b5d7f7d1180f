"""/sessions/{id}/timing-imports: official timing files (Al Kamel CSV) imported as a session's laps."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api import shapes
from chalicelib.api.routing import caller, json_body, query_params, route
from chalicelib.api.shapes import documented
from chalicelib.timing import imports

bp = Blueprint(__name__)
_PATH = "/sessions/{id}/timing-imports"


@route(bp, _PATH, methods=("POST",), status=202, content_types=("text/csv", "application/json"))
@documented(request=shapes.timing_import_request(), csv_body=True, resource=imports.TIMING_IMPORTS)
def create_timing_import(id: str) -> Any:
    """Import an Al Kamel lap export: the CSV as the body (up to 5 MB) or {"s3Key"} of an upload"""
    request = bp.current_request
    is_csv = (request.headers.get("content-type") or "").split(";")[0].strip().lower() == "text/csv"
    raw = request.raw_body or b""
    csv_body = (raw.encode() if isinstance(raw, str) else raw) if is_csv else None
    payload = None if is_csv else json_body(bp)
    return imports.start(caller(), id, csv_body=csv_body, payload=payload, params=query_params(bp))


@route(bp, _PATH + "/upload-url", methods=("POST",))
@documented(answer=shapes.timing_upload_url(), no_body=True)
def create_timing_upload_url(id: str) -> Any:
    """A presigned PUT url for a timing file too big for a request body"""
    return imports.upload_url(caller(), id)


@route(bp, _PATH)
def list_timing_imports(id: str) -> Any:
    """The session's timing imports (cursor pagination)"""
    return imports.list_for_session(caller(), id, query_params(bp))


@route(bp, _PATH + "/{importId}")
def get_timing_import(id: str, importId: str) -> Any:
    """One timing import: status, counts, rejected rows with line numbers"""
    return imports.get(caller(), id, importId)


list_timing_imports.race_resource = imports.TIMING_IMPORTS  # type: ignore[attr-defined]  # for the OpenAPI document
list_timing_imports.race_list = True  # type: ignore[attr-defined]
get_timing_import.race_resource = imports.TIMING_IMPORTS  # type: ignore[attr-defined]
