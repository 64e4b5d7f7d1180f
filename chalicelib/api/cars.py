"""/cars: Car entries per event."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.routing import register_reads
from chalicelib.domain.records import CARS

bp = Blueprint(__name__)
register_reads(bp, "/cars", CARS)
