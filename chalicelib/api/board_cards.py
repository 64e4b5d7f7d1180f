"""/board-cards: The team board."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.routing import register_reads, register_writes
from chalicelib.domain.records import BOARD_CARDS

bp = Blueprint(__name__)
register_reads(bp, "/board-cards", BOARD_CARDS)
register_writes(bp, "/board-cards", "board_cards")
