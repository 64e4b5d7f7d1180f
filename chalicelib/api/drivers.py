"""/drivers: Drivers."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.routing import register_reads, register_writes
from chalicelib.domain.records import DRIVERS

bp = Blueprint(__name__)
register_reads(bp, "/drivers", DRIVERS)
register_writes(bp, "/drivers", "drivers")
