"""/sessions: Sessions of an event (practice, qualifying, race, ...), and their standings."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api import csv_export, shapes
from chalicelib.api.routing import caller, query_params, register_writes, route
from chalicelib.api.shapes import documented
from chalicelib.domain import standings
from chalicelib.domain.lists import SESSION_QUERY
from chalicelib.domain.records import SESSIONS
from chalicelib.errors import Invalid

bp = Blueprint(__name__)
csv_export.register_reads(bp, "/sessions", SESSIONS, SESSION_QUERY)  # JSON, or ?format=csv
register_writes(bp, "/sessions", "sessions")


@route(bp, "/sessions/{id}/standings")
@documented(answer=shapes.standings_answer())
def session_standings(id: str) -> Any:
    """Every car of the session in order (official results where imported), gaps, pit stops, penalties"""
    if query_params(bp):
        raise Invalid("GET /sessions/{id}/standings takes no query parameters", field=next(iter(query_params(bp))))
    return standings.for_session(caller(), id)


@route(bp, "/sessions/{id}/lap-chart")
@documented(answer=shapes.lap_chart_answer())
def session_lap_chart(id: str) -> Any:
    """Every car's laps as columns (lap number, time, elapsed, in/out/neutralised/invalid mark) for charts"""
    if query_params(bp):
        raise Invalid("GET /sessions/{id}/lap-chart takes no query parameters", field=next(iter(query_params(bp))))
    return standings.chart_for_session(caller(), id)
