"""Demo data: Apex Racing at Sebring (and a rival account to try isolation with). Idempotent.

Every row has a deterministic id (uuid5 of a name), inserted with ON CONFLICT DO NOTHING, so a
second run changes nothing. Runs only on a database whose recorded stage (chalicelib/db/migrate.py)
is local or dev, and never with STAGE=prod: the environment alone never decides.
Usage: python -m chalicelib.db.seed
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

NAMESPACE = uuid.UUID("5eb71e2c-8a4c-4c59-9a5f-2f0c1b7d2a10")
DEFAULT_PASSWORD = "sebring12h"  # noqa: S105 - the documented demo password, refused in prod


SEEDABLE_STAGES = ("local", "dev")


class SeedRefused(RuntimeError):
    pass


def sid(*parts: object) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts)))


@dataclass(frozen=True)
class CarPlan:
    number: str
    car_class: str
    livery_color: str
    drivers: tuple[tuple[str, str], ...]  # (name, number)
    pace_ms: int


APEX_CARS = (
    CarPlan("7", "GTD", "#d62828", (("Jamie Hart", "1"), ("Luca Moretti", "2"), ("Ana Silva", "3")), 120_400),
    CarPlan("77", "GTD", "#1d3557", (("Ben Okafor", "1"), ("Mia Lindqvist", "2"), ("Kenji Sato", "3")), 120_900),
)
SESSIONS = (("FP1", "practice", 0, 90, 18), ("Qualifying", "qualifying", 1, 15, 7), ("Race", "race", 2, 720, 32))
SEBRING_START = dt.datetime(2026, 3, 19, 14, 0, tzinfo=dt.UTC)


def _insert(conn: psycopg.Connection[Any], table: str, row: dict[str, Any]) -> None:
    from psycopg import sql

    conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, row)),
            sql.SQL(", ").join(sql.Placeholder() for _ in row),
        ),
        list(row.values()),
    )


def _account(conn: psycopg.Connection[Any], slug: str, name: str) -> str:
    account_id = sid("account", slug)
    _insert(conn, "accounts", {"id": account_id, "name": name, "slug": slug})
    return account_id


def _user(conn: psycopg.Connection[Any], account_id: str, email: str, name: str, role: str, password_hash: str) -> None:
    user_id = sid("user", email)
    _insert(conn, "users", {"id": user_id, "email": email, "name": name, "password_hash": password_hash})
    _insert(conn, "memberships", {"account_id": account_id, "user_id": user_id, "role": role})


def laps_for(rng: random.Random, pace_ms: int, count: int, stint_length: int) -> list[dict[str, Any]]:
    """A plausible run: out lap first, an in lap closing each stint, a couple of invalid laps."""
    laps = []
    for number in range(1, count + 1):
        stint = (number - 1) // stint_length + 1
        in_stint = (number - 1) % stint_length
        is_out = in_stint == 0
        is_in = in_stint == stint_length - 1 or number == count
        lap_ms = pace_ms + in_stint * 60 + rng.randint(-400, 600)  # tyre degradation + noise
        if is_out:
            lap_ms += 9_000 + rng.randint(0, 2_000)
        if is_in:
            lap_ms += 6_000 + rng.randint(0, 2_000)
        s1 = round(lap_ms * 0.276) + rng.randint(-80, 80)
        s2 = round(lap_ms * 0.383) + rng.randint(-80, 80)
        laps.append(
            {
                "lap_number": number,
                "lap_time_ms": lap_ms,
                "sector_times_ms": [s1, s2, lap_ms - s1 - s2],
                "is_out_lap": is_out,
                "is_in_lap": is_in,
                "is_valid": not (is_out or is_in) and rng.random() > 0.08,
                "stint": stint,
                "fuel_l": round(max(5.0, 100 - in_stint * 3.1), 2),
            }
        )
    return laps


def _event(
    conn: psycopg.Connection[Any],
    account_id: str,
    key: str,
    name: str,
    track: str,
    cars: tuple[CarPlan, ...],
    sessions: tuple[tuple[str, str, int, int, int], ...],
    seed: int,
) -> None:
    rng = random.Random(seed)
    event_id = sid("event", account_id, key)
    _insert(
        conn,
        "events",
        {
            "id": event_id,
            "account_id": account_id,
            "name": name,
            "track": track,
            "starts_at": SEBRING_START - dt.timedelta(days=1),
            "ends_at": SEBRING_START + dt.timedelta(days=3),
        },
    )
    car_rows = []
    for car in cars:
        car_id = sid("car", event_id, car.number)
        car_rows.append((car, car_id))
        _insert(
            conn,
            "cars",
            {
                "id": car_id,
                "account_id": account_id,
                "event_id": event_id,
                "number": car.number,
                "class": car.car_class,
                "livery_color": car.livery_color,
                "team": None,
            },
        )
        for driver_name, driver_number in car.drivers:
            _insert(
                conn,
                "drivers",
                {
                    "id": sid("driver", car_id, driver_name),
                    "account_id": account_id,
                    "car_id": car_id,
                    "name": driver_name,
                    "number": driver_number,
                },
            )
    for session_name, session_type, day, minutes, lap_count in sessions:
        session_id = sid("session", event_id, session_name)
        starts_at = SEBRING_START + dt.timedelta(days=day)
        _insert(
            conn,
            "sessions",
            {
                "id": session_id,
                "account_id": account_id,
                "event_id": event_id,
                "name": session_name,
                "type": session_type,
                "starts_at": starts_at,
                "ends_at": starts_at + dt.timedelta(minutes=minutes),
            },
        )
        for car, car_id in car_rows:
            run_sheet_id = sid("run_sheet", session_id, car_id)
            _insert(
                conn,
                "run_sheets",
                {
                    "id": run_sheet_id,
                    "account_id": account_id,
                    "session_id": session_id,
                    "car_id": car_id,
                    "setup": Jsonb({"frontWingDeg": 4.5, "rearWingDeg": 9, "tyrePressureKpa": 172}),
                    "ambient": Jsonb({"airTempC": 27, "trackTempC": 41, "humidityPct": 63}),
                    "engineer_notes": f"{session_name}: baseline setup, watch rear deg in T17.",
                },
            )
            recorded = starts_at
            stint_length = 12 if session_type == "race" else 6
            for lap in laps_for(rng, car.pace_ms, lap_count, stint_length):
                recorded += dt.timedelta(milliseconds=lap["lap_time_ms"])
                driver = car.drivers[(lap["stint"] - 1) % len(car.drivers)]
                _insert(
                    conn,
                    "laps",
                    {
                        "id": sid("lap", run_sheet_id, lap["lap_number"]),
                        "account_id": account_id,
                        "run_sheet_id": run_sheet_id,
                        "session_id": session_id,
                        "car_id": car_id,
                        "driver_id": sid("driver", car_id, driver[0]),
                        "driver_number": driver[1],
                        "recorded_at": recorded,
                        **lap,
                    },
                )


def seed(database_url: str, stage: str, password: str) -> None:
    if stage == "prod":
        raise SeedRefused("refusing to seed: STAGE=prod (the seed creates demo users with a known password)")
    from chalicelib.db.migrate import recorded_stage
    from chalicelib.domain.passwords import hash_password

    password_hash = hash_password(password)
    with psycopg.connect(database_url) as conn, conn.transaction():
        recorded = recorded_stage(conn)
        if recorded is None:
            raise SeedRefused(
                "refusing to seed: this database has no recorded stage "
                "(record it with `STAGE=local make migrate`, or dev; prod is never seeded)"
            )
        if recorded not in SEEDABLE_STAGES:
            raise SeedRefused(
                f"refusing to seed: this database is recorded as stage {recorded!r} "
                "(the seed creates demo users with a known password)"
            )
        apex = _account(conn, "apex-racing", "Apex Racing")
        _user(conn, apex, "jamie@apexracing.io", "Jamie Hart", "owner", password_hash)
        _user(conn, apex, "sam@apexracing.io", "Sam Patel", "engineer", password_hash)
        _user(conn, apex, "riley@apexracing.io", "Riley Chen", "viewer", password_hash)
        _event(conn, apex, "sebring-2026", "Sebring 12 Hours", "Sebring International Raceway", APEX_CARS, SESSIONS, 12)
        rival = _account(conn, "rival-motorsport", "Rival Motorsport")
        _user(conn, rival, "alex@rivalmotorsport.io", "Alex Romero", "owner", password_hash)
        _event(
            conn,
            rival,
            "road-atlanta-2026",
            "Road Atlanta Petit",
            "Michelin Raceway Road Atlanta",
            (CarPlan("23", "LMP2", "#f4a261", (("Alex Romero", "1"),), 75_300),),
            (("FP1", "practice", 0, 60, 10),),
            23,
        )


def main() -> int:
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        print("DATABASE_URL is required (make seed sets it for the local stack)", file=sys.stderr)  # noqa: T201
        return 2
    try:
        seed(url, os.environ.get("STAGE", "local"), os.environ.get("SEED_PASSWORD") or DEFAULT_PASSWORD)
    except SeedRefused as exc:
        print(f"seed: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    except psycopg.errors.UndefinedTable as exc:
        print(f"seed: {str(exc).splitlines()[0]}; run `make migrate` first", file=sys.stderr)  # noqa: T201
        return 1
    print("seeded: jamie@apexracing.io and alex@rivalmotorsport.io (password from SEED_PASSWORD)")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
