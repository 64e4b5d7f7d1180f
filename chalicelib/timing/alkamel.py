"""Al Kamel lap analysis exports (`23_Analysis...CSV`): a pure, streaming, tolerant and exact parser.

Tolerant of what real exports do: `;` separators, header names padded with spaces, a trailing `;`
(an empty last column), a UTF-8 BOM, CRLF or LF, blank lines, times as `ss.fff`, `m:ss.fff` or
`h:mm:ss.fff`. Exact about the rest: car numbers stay text ("3" and "03" are different cars), times
become integer milliseconds without float rounding, and a row that cannot be read completely is
rejected with its line number and the reason, never dropped silently nor half-read.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

REQUIRED_COLUMNS = ("NUMBER", "LAP_NUMBER", "LAP_TIME")
MAX_LAP_NUMBER = 100_000
MAX_TIME_MS = 2**31 - 1  # the laps table stores milliseconds as a PostgreSQL integer
MAX_TEXT_CHARS = 200
IMPROVEMENT_CAR_BEST = 2  # LAP_IMPROVEMENT: the car's best lap
IMPROVEMENT_OVERALL_BEST = 3  # LAP_IMPROVEMENT: the session's best lap (also the car's)

CAR_NUMBER = re.compile(r"[0-9A-Za-z]{1,10}")
_DURATION = re.compile(r"(?:(?:(\d{1,4}):)?(\d{1,4}):)?(\d{1,6})(?:\.(\d{1,6}))?")
_DECIMAL = re.compile(r"\d{1,7}(?:\.\d{1,6})?")
_BOM = b"\xef\xbb\xbf"


class NotAlKamel(ValueError):
    """The data is not an Al Kamel lap export at all (no header, required columns missing, ...)."""


@dataclass(frozen=True)
class Rejection:
    """A data line that was not imported, and why."""

    line: int
    reason: str

    def to_wire(self) -> dict[str, object]:
        return {"line": self.line, "reason": self.reason}


@dataclass(frozen=True)
class TimingLap:
    """One row of the export: a lap of a car as timing officials recorded it."""

    line: int
    car_number: str
    lap_number: int
    lap_time_ms: int
    driver_number: str | None = None
    sectors_ms: tuple[int | None, ...] = ()  # S1, S2, S3 (and S4... when the track has more)
    intermediates_ms: dict[str, int] = field(default_factory=dict)  # IM1a, IM1, ..., FL
    crossing_in_pit: bool = False  # CROSSING_FINISH_LINE_IN_PIT: the lap ended in the pit lane
    pit_time_ms: int | None = None  # PIT_TIME: time in the pit lane, given on the lap after the stop
    flag: str | None = None  # FLAG_AT_FL: GF, FCY, SC, SF, FF, ...
    lap_improvement: int | None = None  # LAP_IMPROVEMENT: 2 = car's best, 3 = overall best
    car_class: str | None = None
    team: str | None = None
    driver_name: str | None = None
    manufacturer: str | None = None
    hour: str | None = None  # HOUR: time of day at the line, as printed
    elapsed_ms: int | None = None  # ELAPSED: time since the start of the session
    kph: float | None = None
    top_speed_kph: float | None = None

    @property
    def sector_times_ms(self) -> list[int]:
        """The sectors in order, or [] when any is missing (a partial list would shift meanings)."""
        if not self.sectors_ms or any(s is None for s in self.sectors_ms):
            return []
        return [s for s in self.sectors_ms if s is not None]

    @property
    def key(self) -> tuple[str, int]:
        return self.car_number, self.lap_number


@dataclass
class Parsed:
    laps: list[TimingLap]
    rejected: list[Rejection]
    rows_read: int  # data lines (blank lines excluded)


def duration_ms(text: str) -> int:
    """`ss.fff`, `m:ss.fff` or `h:mm:ss.fff` as whole milliseconds (ValueError when malformed)."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(text)
    hours, minutes, seconds, fraction = match.groups()
    whole_s = int(seconds)
    if minutes is not None:
        if whole_s >= 60:
            raise ValueError(text)
        whole_min = int(minutes)
        if hours is not None:
            if whole_min >= 60:
                raise ValueError(text)
            whole_min += int(hours) * 60
        whole_s += whole_min * 60
    if fraction is None:
        return whole_s * 1000
    if len(fraction) == 3:  # the usual `.fff`: already milliseconds
        return whole_s * 1000 + int(fraction)
    return whole_s * 1000 + (int(fraction.ljust(6, "0")) + 500) // 1000


def lines_of(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Physical lines (without their LF or CRLF) from chunks of bytes split anywhere."""
    pending = b""
    for chunk in chunks:
        if not chunk:
            continue
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line[:-1] if line.endswith(b"\r") else line
    if pending:
        yield pending[:-1] if pending.endswith(b"\r") else pending


def decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        # Older exports are Windows-1252/Latin-1; Latin-1 maps every byte, so nothing is lost.
        return line.decode("latin-1")


def _split(text: str) -> list[str]:
    if '"' not in text:
        return list(map(str.strip, text.split(";")))
    try:
        return [value.strip() for value in next(csv.reader([text], delimiter=";"))]
    except csv.Error as exc:  # e.g. a carriage return after a closing quote
        raise _Bad("not valid CSV: a quote or a carriage return is out of place") from exc


def split(text: str) -> list[str]:
    """The `;`-separated fields of a line, stripped (ValueError when its quoting is broken)."""
    try:
        return _split(text)
    except _Bad as bad:
        raise ValueError(str(bad)) from None


def _header(text: str) -> list[str]:
    try:
        return _split(text)
    except _Bad as bad:
        raise NotAlKamel(f"the header line is {bad}") from bad


class _Columns:
    """Where each known column is in a header (names stripped, matched case-insensitively)."""

    def __init__(self, names: list[str]) -> None:
        while names and not names[-1]:
            names.pop()  # a trailing ';' adds an empty last column
        self.names = tuple(names)
        self.width = len(names)
        self.at: dict[str, int] = {}
        for index, name in enumerate(names):
            self.at.setdefault(name.upper(), index)
        missing = [name for name in REQUIRED_COLUMNS if name not in self.at]
        if missing:
            raise NotAlKamel(
                f"the header lacks {', '.join(missing)}: this is not an Al Kamel lap analysis export "
                f"(23_Analysis...CSV, ';'-separated); header seen: {';'.join(names)[:200]}"
            )
        self.sectors: list[tuple[str, int]] = []  # (S1, index), (S2, index)... as far as they run without a gap
        while f"S{len(self.sectors) + 1}" in self.at:
            name = f"S{len(self.sectors) + 1}"
            self.sectors.append((name, self.at[name]))
        self.intermediates = [
            (name[: -len("_time")], index)
            for index, name in enumerate(names)
            if name.upper().endswith("_TIME") and (name.upper().startswith("IM") or name.upper() == "FL_TIME")
        ]
        # Indexes of the other columns a lap reads, looked up once per file rather than once per row.
        self.number, self.lap_number, self.lap_time = self.at["NUMBER"], self.at["LAP_NUMBER"], self.at["LAP_TIME"]
        self.driver_number = self.at.get("DRIVER_NUMBER")
        self.crossing_in_pit = self.at.get("CROSSING_FINISH_LINE_IN_PIT")
        self.pit_time = self.at.get("PIT_TIME")
        self.flag = self.at.get("FLAG_AT_FL")
        self.lap_improvement = self.at.get("LAP_IMPROVEMENT")
        self.car_class = self.at.get("CLASS")
        self.team = self.at.get("TEAM")
        self.driver_name = self.at.get("DRIVER_NAME")
        self.manufacturer = self.at.get("MANUFACTURER")
        self.hour = self.at.get("HOUR")
        self.elapsed = self.at.get("ELAPSED")
        self.kph = self.at.get("KPH")
        self.top_speed = self.at.get("TOP_SPEED")


# Typed reads of one row's fields (index None: the header lacks the column); each failure names the
# column and the value.


def _text(values: list[str], index: int | None, name: str) -> str | None:
    if index is None:
        return None
    value = values[index]
    if len(value) > MAX_TEXT_CHARS:
        raise _Bad(f"{name} is longer than {MAX_TEXT_CHARS} characters")
    return value or None


def _duration(values: list[str], index: int | None, name: str) -> int | None:
    value = values[index] if index is not None else ""
    if not value:
        return None
    try:
        parsed = duration_ms(value)
    except ValueError:
        raise _Bad(f"{name} {value!r} is not a time (m:ss.fff or h:mm:ss.fff)") from None
    if parsed > MAX_TIME_MS:
        raise _Bad(f"{name} {value!r} is too long")
    return parsed


def _integer(values: list[str], index: int | None, name: str) -> int | None:
    value = _text(values, index, name)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise _Bad(f"{name} {value!r} is not a whole number")
    return int(value)


def _decimal(values: list[str], index: int | None, name: str) -> float | None:
    value = _text(values, index, name)
    if value is None:
        return None
    if not _DECIMAL.fullmatch(value):
        raise _Bad(f"{name} {value!r} is not a number")
    return float(value)


class _Bad(Exception):
    """A row cannot be read; the message is the reason reported for its line."""


def _lap(line: int, values: list[str], columns: _Columns) -> TimingLap:
    car_number = _text(values, columns.number, "NUMBER")
    if car_number is None:
        raise _Bad("NUMBER is empty")
    if not CAR_NUMBER.fullmatch(car_number):
        raise _Bad(f"NUMBER {car_number!r} must be 1 to 10 letters or digits")
    lap_number = _integer(values, columns.lap_number, "LAP_NUMBER")
    if lap_number is None:
        raise _Bad("LAP_NUMBER is empty")
    if not 1 <= lap_number <= MAX_LAP_NUMBER:
        raise _Bad(f"LAP_NUMBER {lap_number} is out of range (1 to {MAX_LAP_NUMBER})")
    lap_time_ms = _duration(values, columns.lap_time, "LAP_TIME")
    if lap_time_ms is None:
        raise _Bad("LAP_TIME is empty")
    if lap_time_ms <= 0:
        raise _Bad("LAP_TIME must be more than zero")
    driver_number = _text(values, columns.driver_number, "DRIVER_NUMBER")
    if driver_number is not None and len(driver_number) > 10:
        raise _Bad(f"DRIVER_NUMBER {driver_number[:20]!r} is longer than 10 characters")
    intermediates: dict[str, int] = {}
    for name, index in columns.intermediates:
        value = _duration(values, index, name)
        if value is not None:
            intermediates[name] = value
    # The reads below run in the order the fields are declared: a row with several bad fields is
    # reported by its first one.
    return TimingLap(
        line=line,
        car_number=car_number,
        lap_number=lap_number,
        lap_time_ms=lap_time_ms,
        driver_number=driver_number,
        sectors_ms=tuple([_duration(values, index, name) for name, index in columns.sectors]),
        intermediates_ms=intermediates,
        crossing_in_pit=_text(values, columns.crossing_in_pit, "CROSSING_FINISH_LINE_IN_PIT") is not None,
        pit_time_ms=_duration(values, columns.pit_time, "PIT_TIME"),
        flag=_text(values, columns.flag, "FLAG_AT_FL"),
        lap_improvement=_integer(values, columns.lap_improvement, "LAP_IMPROVEMENT"),
        car_class=_text(values, columns.car_class, "CLASS"),
        team=_text(values, columns.team, "TEAM"),
        driver_name=_text(values, columns.driver_name, "DRIVER_NAME"),
        manufacturer=_text(values, columns.manufacturer, "MANUFACTURER"),
        hour=_text(values, columns.hour, "HOUR"),
        elapsed_ms=_duration(values, columns.elapsed, "ELAPSED"),
        kph=_decimal(values, columns.kph, "KPH"),
        top_speed_kph=_decimal(values, columns.top_speed, "TOP_SPEED"),
    )


def read(chunks: Iterable[bytes]) -> Iterator[TimingLap | Rejection]:
    """Each data line of an export as a lap or a rejection, in file order (streaming).

    Raises NotAlKamel when the first non-blank line is not a lap export header.
    """
    columns: _Columns | None = None
    first_line_of: dict[tuple[str, int], int] = {}
    for number, raw in enumerate(lines_of(chunks), start=1):
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        if not raw.strip():
            continue  # blank lines hold no row
        if columns is None:
            if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                raise NotAlKamel("the file is UTF-16; export it as UTF-8 CSV")
            columns = _Columns(_header(decode(raw)))
            continue
        if b"\x00" in raw:
            yield Rejection(number, "the line contains a NUL byte")
            continue
        try:
            values = _split(decode(raw))
        except _Bad as bad:
            yield Rejection(number, f"the line is {bad}")
            continue
        if len(values) < columns.width:
            yield Rejection(number, f"the line has {len(values)} fields, the header {columns.width} (truncated?)")
            continue
        if any(values[columns.width :]):
            yield Rejection(number, f"the line has {len(values)} fields, the header {columns.width}")
            continue
        try:
            lap = _lap(number, values, columns)
        except _Bad as bad:
            yield Rejection(number, str(bad))
            continue
        first = first_line_of.setdefault(lap.key, number)
        if first != number:
            yield Rejection(number, f"car {lap.car_number} lap {lap.lap_number} is already on line {first}")
            continue
        yield lap
    if columns is None:
        raise NotAlKamel("the file is empty: expected an Al Kamel lap export with a header line")


def header_problem(head: bytes) -> str | None:
    """Why the start of a file is not a lap export header, or None when it looks like one."""
    first = next((line for line in lines_of([head]) if line.strip()), b"")
    first = first.removeprefix(_BOM)
    try:
        if not first:
            raise NotAlKamel("the file is empty: expected an Al Kamel lap export with a header line")
        if first.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise NotAlKamel("the file is UTF-16; export it as UTF-8 CSV")
        _Columns(_header(decode(first)))
    except NotAlKamel as exc:
        return str(exc)
    return None


def parse(data: bytes | Iterable[bytes]) -> Parsed:
    """A whole export: its laps, its rejected lines and how many data lines it had."""
    laps: list[TimingLap] = []
    rejected: list[Rejection] = []
    for item in read([data] if isinstance(data, bytes) else data):
        if isinstance(item, TimingLap):
            laps.append(item)
        else:
            rejected.append(item)
    return Parsed(laps, rejected, len(laps) + len(rejected))


def pit_laps(laps: Iterable[TimingLap]) -> dict[tuple[str, int], tuple[bool, bool]]:
    """(is_in_lap, is_out_lap) of each lap, keyed by (car number, lap number).

    In-lap: the lap ended crossing the line in the pit lane (CROSSING_FINISH_LINE_IN_PIT set).
    Out-lap: lap 1 (the car leaves the grid or the pit lane), the lap after an in-lap, or a lap
    that carries a PIT_TIME (the file puts the stop's duration on the lap that leaves the pits).
    """
    laps = list(laps)
    in_laps = {lap.key for lap in laps if lap.crossing_in_pit}
    return {
        lap.key: (
            lap.crossing_in_pit,
            lap.lap_number == 1 or (lap.car_number, lap.lap_number - 1) in in_laps or lap.pit_time_ms is not None,
        )
        for lap in laps
    }


def official_best(laps: Iterable[TimingLap]) -> dict[str, TimingLap]:
    """Each car's best lap as timing officials count it, keyed by car number.

    The file's own mark wins: the fastest lap flagged LAP_IMPROVEMENT 2 (car's best) or 3 (overall
    best); officials leave deleted laps (track limits) unflagged, which the lap times alone cannot
    show. When a car has no flagged lap (an export without the column, or a live file before the
    flag is set), its fastest lap other than lap 1 (lap 1 includes the start and never counts). A
    car with only lap 1 has no official best. Ties go to the earlier lap.
    """
    flagged: dict[str, TimingLap] = {}
    fastest: dict[str, TimingLap] = {}
    for lap in laps:
        rank = (lap.lap_time_ms, lap.lap_number)
        if lap.lap_improvement in (IMPROVEMENT_CAR_BEST, IMPROVEMENT_OVERALL_BEST):
            best = flagged.get(lap.car_number)
            if best is None or rank < (best.lap_time_ms, best.lap_number):
                flagged[lap.car_number] = lap
        if lap.lap_number > 1:
            best = fastest.get(lap.car_number)
            if best is None or rank < (best.lap_time_ms, best.lap_number):
                fastest[lap.car_number] = lap
    return {**fastest, **flagged}
