"""/issues: Car issues found during sessions."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.routing import register_reads, register_writes
from chalicelib.domain.records import CAR_ISSUES

bp = Blueprint(__name__)
register_reads(bp, "/issues", CAR_ISSUES)
register_writes(bp, "/issues", "car_issues")
