"""/run-sheets: Run sheets, one per session x car."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.routing import register_reads, register_writes
from chalicelib.domain.records import RUN_SHEETS

bp = Blueprint(__name__)
register_reads(bp, "/run-sheets", RUN_SHEETS)
register_writes(bp, "/run-sheets", "run_sheets")
