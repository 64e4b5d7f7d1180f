"""Race Platform's Chalice app: creates it and registers blueprints and event handlers; no logic."""

from chalice import Chalice

from chalicelib.api import (
    api_keys,
    auth,
    board_cards,
    cars,
    drivers,
    events,
    health,
    issues,
    laps,
    openapi,
    run_sheets,
    sessions,
    setups,
)
from chalicelib.api.routing import uniform_errors
from chalicelib.realtime import handlers as realtime

app = Chalice(app_name="race-platform")
app.api.binary_types = ["application/octet-stream", "application/gzip"]

for blueprint in (health, auth, api_keys, events, sessions, cars, drivers, run_sheets, laps, setups, issues,
                  board_cards, openapi):
    app.register_blueprint(blueprint.bp)

app.register_middleware(uniform_errors, "http")
realtime.register(app)
