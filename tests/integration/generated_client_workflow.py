"""A workflow through the client openapi-python-client generates from /openapi.json, as an integrator writes it.

Runs in the generator's own virtualenv (python generated_client_workflow.py API_URL EMAIL PASSWORD) with
the generated package on PYTHONPATH; prints one JSON object of what it saw for the test to check.
"""

from __future__ import annotations

import json
import sys
import uuid

from race_platform_api_client import AuthenticatedClient, Client
from race_platform_api_client.api.auth import sign_in
from race_platform_api_client.api.cars import create_car
from race_platform_api_client.api.events import create_event
from race_platform_api_client.api.laps import create_lap, list_laps
from race_platform_api_client.api.run_sheets import create_run_sheet, get_run_sheet_stats
from race_platform_api_client.api.sessions import create_session
from race_platform_api_client.models import (
    CreateCarBody,
    CreateEventBody,
    CreateLapBodyType0,
    CreateLapBodyType1,
    CreateLapBodyType1LapsItem,
    CreateLapResponse201Type1,
    CreateRunSheetBody,
    CreateSessionBody,
    CreateSessionBodyType,
    Error,
    Lap,
    SignInBody,
)


def main(api_url: str, email: str, password: str) -> dict[str, object]:
    signed = sign_in.sync(client=Client(base_url=api_url), body=SignInBody(email=email, password=password))
    assert not isinstance(signed, Error) and signed is not None, signed
    client = AuthenticatedClient(base_url=api_url, token=signed.token, raise_on_unexpected_status=True)
    event = create_event.sync(client=client, body=CreateEventBody(name="Client 6 Hours"))
    session = create_session.sync(
        client=client, body=CreateSessionBody(event_id=event.id, name="Race", type_=CreateSessionBodyType.RACE)
    )
    car = create_car.sync(client=client, body=CreateCarBody(event_id=event.id, number="12"))
    sheet = create_run_sheet.sync(client=client, body=CreateRunSheetBody(session_id=session.id, car_id=car.id))
    laps = [
        CreateLapBodyType1LapsItem(run_sheet_id=sheet.id, lap_number=n, lap_time_ms=t)
        for n, t in ((1, 121000), (2, 118734), (3, 119500))
    ]
    keyed = client.with_headers({"Idempotency-Key": str(uuid.uuid4())})
    batch = create_lap.sync_detailed(client=keyed, body=CreateLapBodyType1(laps=laps))
    again = create_lap.sync_detailed(client=keyed, body=CreateLapBodyType1(laps=laps))  # a retry: same answer
    assert isinstance(batch.parsed, CreateLapResponse201Type1), batch
    listed = list_laps.sync(client=client, run_sheet_id=sheet.id)
    stats = get_run_sheet_stats.sync(client=client, id=sheet.id)
    bad = create_lap.sync_detailed(
        client=AuthenticatedClient(base_url=api_url, token=signed.token),
        body=CreateLapBodyType0(run_sheet_id=sheet.id, lap_number=4, lap_time_ms=0),
    )
    assert isinstance(bad.parsed, Error), bad
    return {
        "event": str(event.id),
        "created": batch.parsed.created,
        "createdLapTypes": sorted({type(item).__name__ for item in batch.parsed.items}),
        "retryStatus": int(again.status_code),
        "retrySameBody": again.content == batch.content,
        "listed": sorted(lap.lap_number for lap in listed.items if isinstance(lap, Lap)),
        "statsRunSheet": str(stats.run_sheet_id),
        "statsExtra": sorted(stats.additional_properties),
        "badStatus": int(bad.status_code),
        "badCode": bad.parsed.error.code,
        "badField": bad.parsed.error.field,
        "badDetails": [type(d).__name__ for d in bad.parsed.error.details],
        "sheet": str(sheet.id),
    }


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
