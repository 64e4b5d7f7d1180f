"""/sessions: Sessions of an event (practice, qualifying, race, ...)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.routing import register_reads, register_writes
from chalicelib.domain.records import SESSIONS

bp = Blueprint(__name__)
register_reads(bp, "/sessions", SESSIONS)
register_writes(bp, "/sessions", "sessions")
