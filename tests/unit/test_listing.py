"""List parameters are validated before any SQL runs."""

from __future__ import annotations

import pytest

from chalicelib.domain import listing
from chalicelib.domain.records import LAPS
from chalicelib.errors import Invalid

pytestmark = pytest.mark.unit


def test_cursor_round_trip() -> None:
    values = ("2b7e1516-28ae-4d2a-a6ab-f7158809cf4f", 12, "ab")
    assert listing.decode_cursor(listing.encode_cursor(values), 3) == values


@pytest.mark.parametrize("cursor", ["", "!!!", "bnVsbA", "WzEsMl0", "W3RydWUsMSwyXQ"])
def test_malformed_cursors_are_invalid(cursor: str) -> None:
    with pytest.raises(Invalid) as error:
        listing.decode_cursor(cursor, 3)
    assert error.value.field == "cursor"


def test_filters_map_to_columns_and_parse_types() -> None:
    request = listing.parse(LAPS, {"lapNumber": "3", "isValid": "false", "limit": "10"})
    assert request.filters == {"lap_number": 3, "is_valid": False}
    assert request.limit == 10 and request.after is None


def test_parent_filter_is_a_uuid() -> None:
    with pytest.raises(Invalid) as error:
        listing.parse(LAPS, {"eventId": "1; DROP TABLE laps"})
    assert error.value.field == "eventId"


def test_unknown_parameter_names_the_allowed_ones() -> None:
    with pytest.raises(Invalid, match="allowed: .*runSheetId"):
        listing.parse(LAPS, {"lapTime": "1"})
