"""Race Platform's Chalice app: creates it and registers blueprints and event handlers; no logic."""

from chalice import Chalice

from chalicelib import config, heap, webhooks, wiring
from chalicelib.api import (
    api_keys,
    attachments,
    auth,
    board_cards,
    cars,
    drivers,
    events,
    health,
    idempotent,
    issues,
    laps,
    members,
    openapi,
    plugins,
    run_sheets,
    sessions,
    setups,
    timing_imports,
)
from chalicelib.api.routing import uniform_errors
from chalicelib.realtime import handlers as realtime
from chalicelib.timing import worker as timing_worker

config.require_known_stage()  # a deployed function without dev/prod never starts (no silent `local`)

# Powertools owns the "race-platform" logger (JSON lines); Chalice must not attach its own handler.
app = Chalice(app_name="race-platform", configure_logs=False)
app.api.binary_types = ["application/octet-stream", "application/gzip"]

for blueprint in (
    health,
    auth,
    api_keys,
    events,
    sessions,
    cars,
    drivers,
    run_sheets,
    laps,
    setups,
    issues,
    board_cards,
    timing_imports,
    members,
    attachments,
    plugins,
    openapi,
):
    app.register_blueprint(blueprint.bp)

app.register_middleware(uniform_errors, "http")
heap.register(app)  # what the first invocations load is kept out of full GC passes
realtime.register(app)
timing_worker.register(app)
webhooks.register(app)
idempotent.register(app)
wiring.install()
