"""/laps: laps (one or a batch of 5,000 per POST), their lists and CSV, and run-sheet statistics."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from chalice import Blueprint

from chalicelib.api import shapes
from chalicelib.api.csv_export import register_reads
from chalicelib.api.routing import caller, json_body, query_params, route
from chalicelib.api.shapes import documented
from chalicelib.domain import laps
from chalicelib.domain.records import LAPS
from chalicelib.errors import Invalid

bp = Blueprint(__name__)
register_reads(bp, "/laps", LAPS, laps.LAP_QUERY)


@route(bp, "/laps", methods=("POST",), status=201, applied_once=True)
def create_laps() -> Any:
    """Create one lap, or {"laps": [...]} (up to 5,000, one transaction); records lap.create per lap"""
    return laps.create(caller(), json_body(bp, max_bytes=laps.MAX_BODY_BYTES))


@route(bp, "/laps/{id}", methods=("PATCH",))
def update_lap(id: str) -> Any:
    """Change the fields sent of a lap (null clears an optional one); records lap.update"""
    return laps.update(caller(), id, json_body(bp))


@route(bp, "/laps/{id}", methods=("DELETE",))
@documented(answer=shapes.deleted())
def delete_lap(id: str) -> Any:
    """Delete a lap; records lap.delete"""
    if query_params(bp):
        raise Invalid("DELETE /laps/{id} takes no query parameters", field=next(iter(query_params(bp))))
    return laps.delete(caller(), id)


@route(bp, "/run-sheets/{id}/stats")
@documented(answer=shapes.stats_answer())
def run_sheet_stats(id: str) -> Any:
    """A run sheet's best lap (as officials count it), theoretical best, stints and drivers"""
    return laps.stats(caller(), id)


for _view in (create_laps, update_lap):
    _view.race_resource = LAPS  # type: ignore[attr-defined]  # read by the OpenAPI generator
    _view.race_body = SimpleNamespace(allowed=laps.WRITABLE)  # type: ignore[attr-defined]
