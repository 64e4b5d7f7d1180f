"""Al Kamel official results exports (`03_...Results...CSV`): the classification of a session.

Same file conventions as the lap export (see alkamel): `;` separators, padded header names, a BOM,
CRLF or LF. One row per car: POSITION, NUMBER, STATUS (Classified, DNF, ...), LAPS, TOTAL_TIME
(time penalties included), GAP_FIRST/GAP_PREVIOUS as printed, FL_LAPNUM/FL_TIME (best lap), CLASS,
TEAM. Car numbers stay text. A row that cannot be read is rejected with its line and reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chalicelib.timing import alkamel

REQUIRED_COLUMNS = ("POSITION", "NUMBER", "STATUS", "LAPS", "TOTAL_TIME")
MAX_GAP_CHARS = 40
MAX_ROWS = 1000  # a classification of more cars than this is not a results export; refuse it whole
_EMPTY = ("", "-")


@dataclass(frozen=True)
class ResultRow:
    line: int
    car_number: str
    position: int | None
    status: str | None
    laps: int | None
    total_time_ms: int | None
    gap_first: str | None
    gap_previous: str | None
    best_lap_number: int | None
    best_lap_ms: int | None
    car_class: str | None
    team: str | None


@dataclass
class ParsedResults:
    rows: list[ResultRow]
    rejected: list[alkamel.Rejection]
    rows_read: int


def header_names(head: bytes) -> list[str]:
    """The column names of the first non-blank line (upper-cased, stripped; no trailing empty one)."""
    first = next((line for line in alkamel.lines_of([head]) if line.strip()), b"").removeprefix(b"\xef\xbb\xbf")
    names = [name.strip().upper() for name in alkamel.decode(first).split(";")]
    while names and not names[-1]:
        names.pop()
    return names


def is_results_header(names: Iterable[str]) -> bool:
    return set(REQUIRED_COLUMNS) <= set(names) and "LAP_TIME" not in set(names)


class _Bad(Exception):
    pass


def _int(value: str, name: str) -> int | None:
    if value in _EMPTY:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 6:
        raise _Bad(f"{name} {value[:20]!r} is not a whole number")
    return int(value)


def _time(value: str, name: str) -> int | None:
    if value in _EMPTY:
        return None
    try:
        parsed = alkamel.duration_ms(value)
    except ValueError:
        raise _Bad(f"{name} {value[:20]!r} is not a time (m:ss.fff or h:mm:ss.fff)") from None
    if parsed > alkamel.MAX_TIME_MS * 100:
        raise _Bad(f"{name} {value[:20]!r} is too long")
    return parsed


def _text(value: str, name: str, limit: int = alkamel.MAX_TEXT_CHARS) -> str | None:
    if len(value) > limit:
        raise _Bad(f"{name} is longer than {limit} characters")
    return None if value in _EMPTY else value


def _row(line: int, values: dict[str, str]) -> ResultRow:
    number = values["NUMBER"]
    if not alkamel.CAR_NUMBER.fullmatch(number):
        raise _Bad(f"NUMBER {number[:20]!r} must be 1 to 10 letters or digits")
    best_lap_ms = _time(values.get("FL_TIME", ""), "FL_TIME")
    if best_lap_ms is not None and best_lap_ms > alkamel.MAX_TIME_MS:
        raise _Bad("FL_TIME is too long")
    return ResultRow(
        line=line,
        car_number=number,
        position=_int(values["POSITION"], "POSITION"),
        status=_text(values["STATUS"], "STATUS", MAX_GAP_CHARS),
        laps=_int(values["LAPS"], "LAPS"),
        total_time_ms=_time(values["TOTAL_TIME"], "TOTAL_TIME"),
        gap_first=_text(values.get("GAP_FIRST", ""), "GAP_FIRST", MAX_GAP_CHARS),
        gap_previous=_text(values.get("GAP_PREVIOUS", ""), "GAP_PREVIOUS", MAX_GAP_CHARS),
        best_lap_number=_int(values.get("FL_LAPNUM", ""), "FL_LAPNUM"),
        best_lap_ms=best_lap_ms,
        car_class=_text(values.get("CLASS", ""), "CLASS", 40),
        team=_text(values.get("TEAM", ""), "TEAM"),
    )


def parse(chunks: Iterable[bytes]) -> ParsedResults:
    """Every data line as a result row or a rejection; NotAlKamel when the header is not a results one."""
    names: list[str] | None = None
    rows: list[ResultRow] = []
    rejected: list[alkamel.Rejection] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(alkamel.lines_of(chunks), start=1):
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if not raw.strip():
            continue
        if len(rows) + len(rejected) >= MAX_ROWS:
            raise alkamel.NotAlKamel(f"a results export lists at most {MAX_ROWS} cars; this one has more")
        if names is None:
            names = header_names(raw)
            if not is_results_header(names):
                raise alkamel.NotAlKamel("the header is not an Al Kamel results export (03_...Results...CSV)")
            continue
        if b"\x00" in raw:  # PostgreSQL text cannot hold it
            rejected.append(alkamel.Rejection(number, "the line contains a NUL byte"))
            continue
        try:
            values = alkamel.split(alkamel.decode(raw))
        except ValueError as exc:
            rejected.append(alkamel.Rejection(number, f"the line is {exc}"))
            continue
        if len(values) < len(names) or any(values[len(names) :]):
            rejected.append(alkamel.Rejection(number, f"the line has {len(values)} fields, the header {len(names)}"))
            continue
        try:
            row = _row(number, dict(zip(names, values, strict=False)))
        except _Bad as bad:
            rejected.append(alkamel.Rejection(number, str(bad)))
            continue
        first = seen.setdefault(row.car_number, number)
        if first != number:
            rejected.append(alkamel.Rejection(number, f"car {row.car_number} is already on line {first}"))
            continue
        rows.append(row)
    if names is None:
        raise alkamel.NotAlKamel("the file is empty: expected an Al Kamel export with a header line")
    return ParsedResults(rows, rejected, len(rows) + len(rejected))
