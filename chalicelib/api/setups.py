"""/setups: Setups per car."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.routing import register_reads, register_writes
from chalicelib.domain.records import SETUPS

bp = Blueprint(__name__)
register_reads(bp, "/setups", SETUPS)
register_writes(bp, "/setups", "setups")
