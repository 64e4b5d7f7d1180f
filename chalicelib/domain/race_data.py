"""What a team edits during a race weekend: the writable fields and rules of each resource."""

from __future__ import annotations

import re
from typing import Any

from chalicelib.domain import crud
from chalicelib.domain.caller import Caller
from chalicelib.domain.crud import Child, Editable, Parent
from chalicelib.domain.records import (
    BOARD_CARDS,
    CAR_ISSUES,
    CARS,
    DRIVERS,
    EVENTS,
    LAPS,
    RUN_SHEETS,
    SESSIONS,
    SETUPS,
)
from chalicelib.domain.validation import Body
from chalicelib.errors import Invalid
from chalicelib.store import records

SESSION_TYPES = ("practice", "qualifying", "race", "warmup", "test")
SEVERITIES = ("low", "medium", "high", "critical")
ISSUE_STATUSES = ("open", "in_progress", "resolved")
_CAR_NUMBER = re.compile(r"^[0-9A-Za-z]{1,10}$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
MAX_NOTES_CHARS = 20_000


def _put(wire: dict[str, Any], body: Body, name: str, value: Any) -> None:
    if body.has(name):
        wire[name] = value


def _window(wire: dict[str, Any], body: Body, creating: bool) -> None:
    starts, ends = body.time("startsAt", required=False), body.time("endsAt", required=False)
    _put(wire, body, "startsAt", starts)
    _put(wire, body, "endsAt", ends)
    if starts and ends and ends < starts:
        body.fail("endsAt must not be before startsAt", "endsAt")


def _read_event(body: Body, creating: bool) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    _put(wire, body, "name", body.text("name", required=creating))
    _put(wire, body, "track", body.text("track", required=False))
    _window(wire, body, creating)
    _put(wire, body, "parameters", body.obj("parameters"))
    return wire


def _read_session(body: Body, creating: bool) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    _put(wire, body, "eventId", body.uuid("eventId", required=creating))
    _put(wire, body, "name", body.text("name", required=creating))
    _put(wire, body, "type", body.choice("type", SESSION_TYPES, required=creating))
    _window(wire, body, creating)
    _put(wire, body, "parameters", body.obj("parameters"))
    return wire


def _read_car(body: Body, creating: bool) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    _put(wire, body, "eventId", body.uuid("eventId", required=creating))
    number = body.text("number", required=creating, max_len=10)
    if number is not None and not _CAR_NUMBER.match(number):
        body.fail("number must be 1 to 10 letters or digits (kept as text: 7 and 07 differ)", "number")
    _put(wire, body, "number", number)
    _put(wire, body, "class", body.text("class", required=False, max_len=40))
    _put(wire, body, "team", body.text("team", required=False))
    color = body.text("liveryColor", required=False, max_len=7)
    if color is not None and not _COLOR.match(color):
        body.fail("liveryColor must be a #rrggbb colour", "liveryColor")
    _put(wire, body, "liveryColor", color)
    _put(wire, body, "isCompetitor", body.boolean("isCompetitor"))
    _put(wire, body, "parameters", body.obj("parameters"))
    return wire


def _read_driver(body: Body, creating: bool) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    _put(wire, body, "name", body.text("name", required=creating))
    _put(wire, body, "number", body.text("number", required=False, max_len=10))
    _put(wire, body, "carId", body.uuid("carId", required=False))
    return wire


_TABS = ("setup", "setupChange", "tyres", "wear", "ambient", "overview")


def _read_run_sheet(body: Body, creating: bool) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    _put(wire, body, "sessionId", body.uuid("sessionId", required=creating))
    _put(wire, body, "carId", body.uuid("carId", required=creating))
    for tab in _TABS:
        _put(wire, body, tab, body.obj(tab, max_keys=500))
    _put(wire, body, "engineerNotes", body.text("engineerNotes", required=False, max_len=MAX_NOTES_CHARS, min_len=0))
    if body.has("lapColumns"):
        columns = body.payload["lapColumns"]
        if not isinstance(columns, list) or len(columns) > 50:
            body.fail("lapColumns must be a list of at most 50 column definitions", "lapColumns")
        for i, column in enumerate(columns):
            spec = Body(column, allowed={"key", "label", "type", "unit"}, prefix=f"lapColumns[{i}].")
            spec.text("key", max_len=40)
            spec.text("label", max_len=80)
            spec.choice("type", ("number", "text", "boolean"), required=True)
            spec.text("unit", required=False, max_len=20)
        wire["lapColumns"] = columns
    return wire


def _read_setup(body: Body, creating: bool) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    _put(wire, body, "carId", body.uuid("carId", required=creating))
    _put(wire, body, "runSheetId", body.uuid("runSheetId", required=False))
    _put(wire, body, "name", body.text("name", required=creating))
    _put(wire, body, "values", body.obj("values", max_keys=1000))
    _put(wire, body, "notes", body.text("notes", required=False, max_len=MAX_NOTES_CHARS, min_len=0))
    return wire


def _read_issue(body: Body, creating: bool) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    _put(wire, body, "carId", body.uuid("carId", required=creating))
    _put(wire, body, "sessionId", body.uuid("sessionId", required=False))
    _put(wire, body, "title", body.text("title", required=creating))
    _put(wire, body, "description", body.text("description", required=False, max_len=MAX_NOTES_CHARS, min_len=0))
    _put(wire, body, "severity", body.choice("severity", SEVERITIES, default="medium"))
    _put(wire, body, "status", body.choice("status", ISSUE_STATUSES, default="open"))
    _put(wire, body, "runSheetId", body.uuid("runSheetId", required=False))
    _put(wire, body, "lapId", body.uuid("lapId", required=False))
    return wire


def _read_board_card(body: Body, creating: bool) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    _put(wire, body, "eventId", body.uuid("eventId", required=False))
    _put(wire, body, "sessionId", body.uuid("sessionId", required=False))
    _put(wire, body, "title", body.text("title", required=creating))
    _put(wire, body, "body", body.text("body", required=False, max_len=MAX_NOTES_CHARS, min_len=0))
    _put(wire, body, "column", body.text("column", required=False, max_len=40))
    _put(wire, body, "position", body.integer("position", required=False, minimum=0, maximum=100_000))
    return wire


def _same_event(conn: Any, row: dict[str, Any], account_id: str) -> None:
    """A run sheet's car must be an entry of its session's event."""
    session = records.get_row(conn, SESSIONS, account_id, str(row["session_id"]))
    car = records.get_row(conn, CARS, account_id, str(row["car_id"]))
    if session and car and session["event_id"] != car["event_id"]:
        raise Invalid("carId must be a car of the session's event", field="carId")


def _setup_fits(conn: Any, row: dict[str, Any], account_id: str) -> None:
    if row.get("run_sheet_id"):
        sheet = records.get_row(conn, RUN_SHEETS, account_id, str(row["run_sheet_id"]))
        if sheet and str(sheet["car_id"]) != str(row["car_id"]):
            raise Invalid("runSheetId must be a run sheet of the same car", field="runSheetId")


def _issue_source(conn: Any, row: dict[str, Any], account_id: str) -> None:
    """An issue's run sheet is one of its car's (in its session, if it names one); its lap, one of that run sheet's."""
    sheet = None
    if row.get("run_sheet_id"):
        sheet = records.get_row(conn, RUN_SHEETS, account_id, str(row["run_sheet_id"]))
        if sheet and str(sheet["car_id"]) != str(row["car_id"]):
            raise Invalid("runSheetId must be a run sheet of the issue's car", field="runSheetId")
        if sheet and row.get("session_id") and str(sheet["session_id"]) != str(row["session_id"]):
            raise Invalid("runSheetId must be a run sheet of the issue's session", field="runSheetId")
    if row.get("lap_id"):
        lap = records.get_row(conn, LAPS, account_id, str(row["lap_id"]))
        if lap and str(lap["car_id"]) != str(row["car_id"]):
            raise Invalid("lapId must be a lap of the issue's car", field="lapId")
        if lap and sheet and str(lap["run_sheet_id"]) != str(sheet["id"]):
            raise Invalid("lapId must be a lap of the issue's run sheet", field="lapId")


def _card_fits(conn: Any, row: dict[str, Any], account_id: str) -> None:
    """A card naming an event and a session: the session is one of that event's (the board shows it there)."""
    if row.get("event_id") and row.get("session_id"):
        session = records.get_row(conn, SESSIONS, account_id, str(row["session_id"]))
        if session and str(session["event_id"]) != str(row["event_id"]):
            raise Invalid("sessionId must be a session of the card's event", field="sessionId")


def _reporter(caller: Caller) -> dict[str, Any]:
    # The person answerable for the report: the user, or the creator of the key that sent it.
    return {"reported_by": caller.acting_user_id}


def _run_sheet_session(conn: Any, row: dict[str, Any]) -> str | None:
    if not row.get("run_sheet_id"):
        return None
    found = conn.execute("SELECT session_id FROM run_sheets WHERE id = %s", (row["run_sheet_id"],)).fetchone()
    return str(found["session_id"]) if found else None


def _issue_session(conn: Any, row: dict[str, Any]) -> str | None:
    # An issue raised from a run sheet without a session is still heard in that run sheet's room.
    return str(row["session_id"]) if row.get("session_id") else _run_sheet_session(conn, row)


def _own_session(conn: Any, row: dict[str, Any]) -> str | None:
    return str(row["id"])


EDITABLES: dict[str, Editable] = {
    "events": Editable(
        EVENTS,
        _read_event,
        frozenset({"name", "track", "startsAt", "endsAt", "parameters"}),
        clearable=frozenset({"track", "startsAt", "endsAt"}),
    ),
    "sessions": Editable(
        SESSIONS,
        _read_session,
        frozenset({"eventId", "name", "type", "startsAt", "endsAt", "parameters"}),
        create_only=frozenset({"eventId"}),
        parents=(Parent("eventId", EVENTS),),
        session_of=_own_session,
        clearable=frozenset({"startsAt", "endsAt"}),
    ),
    "cars": Editable(
        CARS,
        _read_car,
        frozenset({"eventId", "number", "class", "team", "liveryColor", "isCompetitor", "parameters"}),
        create_only=frozenset({"eventId"}),
        parents=(Parent("eventId", EVENTS),),
        conflict=lambda row: f"car number {row.get('number')} already exists in this event",
        clearable=frozenset({"class", "team", "liveryColor"}),
    ),
    "drivers": Editable(
        DRIVERS,
        _read_driver,
        frozenset({"name", "number", "carId"}),
        parents=(Parent("carId", CARS, required=False),),
        clearable=frozenset({"number", "carId"}),
    ),
    "run_sheets": Editable(
        RUN_SHEETS,
        _read_run_sheet,
        frozenset({"sessionId", "carId", "engineerNotes", "lapColumns", *_TABS}),
        create_only=frozenset({"sessionId", "carId"}),
        parents=(Parent("sessionId", SESSIONS), Parent("carId", CARS)),
        check=_same_event,
        conflict=lambda row: "this session already has a run sheet for this car",
    ),
    "setups": Editable(
        SETUPS,
        _read_setup,
        frozenset({"carId", "runSheetId", "name", "values", "notes"}),
        create_only=frozenset({"carId"}),
        parents=(Parent("carId", CARS), Parent("runSheetId", RUN_SHEETS, required=False)),
        check=_setup_fits,
        session_of=_run_sheet_session,
        clearable=frozenset({"runSheetId"}),
    ),
    "car_issues": Editable(
        CAR_ISSUES,
        _read_issue,
        frozenset({"carId", "sessionId", "title", "description", "severity", "status", "runSheetId", "lapId"}),
        create_only=frozenset({"carId"}),
        parents=(
            Parent("carId", CARS),
            Parent("sessionId", SESSIONS, required=False),
            Parent("runSheetId", RUN_SHEETS, required=False),
            Parent("lapId", LAPS, required=False),
        ),
        check=_issue_source,
        stamp=_reporter,
        session_of=_issue_session,
        clearable=frozenset({"sessionId", "runSheetId", "lapId"}),
    ),
    "board_cards": Editable(
        BOARD_CARDS,
        _read_board_card,
        frozenset({"eventId", "sessionId", "title", "body", "column", "position"}),
        parents=(Parent("eventId", EVENTS, required=False), Parent("sessionId", SESSIONS, required=False)),
        check=_card_fits,
        clearable=frozenset({"eventId", "sessionId"}),
    ),
}

# What points at what: deleting a parent deletes these children (409 unless cascade) or detaches them.
TREE: crud.Tree = {
    "events": (
        Child("sessions", "sessions", "event_id"),
        Child("cars", "cars", "event_id"),
        Child("board cards", "board_cards", "event_id"),
        Child("planned stints", "planned_stints", "event_id"),
    ),
    "sessions": (
        Child("run sheets", "run_sheets", "session_id"),
        Child("laps", "laps", "session_id"),
        Child("issues", "car_issues", "session_id", detach=True),
        Child("board cards", "board_cards", "session_id", detach=True),
    ),
    "cars": (
        Child("run sheets", "run_sheets", "car_id"),
        Child("laps", "laps", "car_id"),
        Child("drivers", "drivers", "car_id", detach=True),
        Child("setups", "setups", "car_id"),
        Child("issues", "car_issues", "car_id"),
        Child("planned stints", "planned_stints", "car_id"),
    ),
    "drivers": (
        Child("laps", "laps", "driver_id", detach=True),
        Child("planned stints", "planned_stints", "driver_id", detach=True),
    ),
    "run_sheets": (
        Child("laps", "laps", "run_sheet_id"),
        Child("setups", "setups", "run_sheet_id", detach=True),
        Child("attachments", "run_sheet_attachments", "run_sheet_id", collect="s3_key"),
    ),
}


def _remove_objects(collected: dict[str, list[Any]]) -> None:
    """After a cascade commits: delete the attachments' S3 objects (a failure leaves an orphan, logged)."""
    from chalicelib.observability import logger
    from chalicelib.store import attachment_objects

    for key in collected.get("run_sheet_attachments", []):
        try:
            attachment_objects.delete(key)
        except Exception:
            logger().warning("attachment object not deleted", extra={"s3_key": key})


def create(caller: Caller, name: str, payload: Any) -> dict[str, Any]:
    return crud.create(caller, EDITABLES[name], payload)


def update(caller: Caller, name: str, row_id: str, payload: Any) -> dict[str, Any]:
    return crud.update(caller, EDITABLES[name], row_id, payload)


def delete(caller: Caller, name: str, row_id: str, cascade: bool) -> dict[str, Any]:
    return crud.delete(caller, EDITABLES[name], row_id, cascade, TREE, after_commit=_remove_objects)
