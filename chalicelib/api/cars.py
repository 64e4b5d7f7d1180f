"""/cars: Car entries per event."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.routing import register_reads, register_writes
from chalicelib.domain.records import CARS

bp = Blueprint(__name__)
register_reads(bp, "/cars", CARS)
register_writes(bp, "/cars", "cars")
