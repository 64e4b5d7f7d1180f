"""/sessions: Sessions of an event (practice, qualifying, race, ...)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api import csv_export
from chalicelib.api.routing import register_writes
from chalicelib.domain.lists import SESSION_QUERY
from chalicelib.domain.records import SESSIONS

bp = Blueprint(__name__)
csv_export.register_reads(bp, "/sessions", SESSIONS, SESSION_QUERY)  # JSON, or ?format=csv
register_writes(bp, "/sessions", "sessions")
