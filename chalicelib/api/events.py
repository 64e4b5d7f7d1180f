"""/events: race weekends, and each event's strategy (planned vs actual stints)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api import shapes
from chalicelib.api.routing import caller, json_body, query_params, register_reads, register_writes, route
from chalicelib.api.shapes import documented
from chalicelib.domain import strategy
from chalicelib.domain.records import EVENTS

bp = Blueprint(__name__)
register_reads(bp, "/events", EVENTS)
register_writes(bp, "/events", "events")


@route(bp, "/events/{id}/strategy")
@documented(answer=shapes.strategy_answer(), query={"sessionId": {"type": "string", "format": "uuid"}})
def get_strategy(id: str) -> Any:
    """Planned stints next to the stints the laps show (race session, or ?sessionId=)"""
    return strategy.get(caller(), id, query_params(bp))


@route(bp, "/events/{id}/strategy", methods=("PUT",))
@documented(request=shapes.strategy_request(), answer=shapes.strategy_saved())
def put_strategy(id: str) -> Any:
    """Replace the event's planned stints"""
    return strategy.replace_plan(caller(), id, json_body(bp))
