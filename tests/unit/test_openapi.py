"""/openapi.json describes exactly the app's routes and is a valid OpenAPI 3.1 document."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit


def test_spec_and_routes_match_both_ways_and_validate() -> None:
    from openapi_spec_validator import validate

    from app import app
    from chalicelib.api.openapi import document

    spec = document(app.routes)
    validate(spec)
    registered = {(path, method.lower()) for path, methods in app.routes.items() for method in methods}
    described = {(path, method) for path, operations in spec["paths"].items() for method in operations}
    assert registered == described
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation["summary"] != f"{method.upper()} {path}", f"{method} {path} has no docstring"
            assert "401" in operation["responses"]


def test_public_routes_need_no_credentials_in_the_spec() -> None:
    from app import app
    from chalicelib.api.openapi import document

    spec = document(app.routes)
    assert spec["paths"]["/health"]["get"]["security"] == []
    assert spec["paths"]["/auth/login"]["post"]["security"] == []
    assert "security" not in spec["paths"]["/events"]["get"]


# --- what generators and linters need (issue 23) -------------------------------------------------

IDS_FILE = Path(__file__).with_name("openapi_operation_ids.txt")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    from app import app
    from chalicelib.api.openapi import document

    return document(app.routes)


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def _walk(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{where}/{index}")


def test_every_array_schema_says_what_its_items_are(spec: dict[str, Any]) -> None:
    arrays = [where for where, node in _walk(spec) if node.get("type") == "array" and "items" not in node]
    assert arrays == []
    details = spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["details"]
    assert details["items"]["required"] == ["field", "message"]


def test_every_operation_has_one_declared_tag_and_a_description(spec: dict[str, Any]) -> None:
    declared = {t["name"]: t["description"] for t in spec["tags"]}
    for method, path, operation in _operations(spec):
        assert len(operation["tags"]) == 1, (method, path)
        assert declared.get(operation["tags"][0]), f"{method} {path}: tag {operation['tags']} is not declared"
        assert operation["description"].strip(), (method, path)
    assert spec["paths"]["/laps"]["post"]["tags"] == ["laps"]
    assert spec["paths"]["/webhooks/{id}/deliveries"]["get"]["tags"] == ["webhooks"]
    assert spec["paths"]["/run-sheets/{id}/attachments"]["get"]["tags"] == ["attachments"]
    used = {operation["tags"][0] for _, _, operation in _operations(spec)} | {"webhook events"}
    assert used == set(declared), "a declared tag groups nothing"


def test_operation_ids_are_unique_camel_case_and_never_change(spec: dict[str, Any]) -> None:
    ids = [(operation["operationId"], method, path) for method, path, operation in _operations(spec)]
    assert len({i for i, _, _ in ids}) == len(ids), "operationIds repeat"
    for operation_id, method, path in ids:
        assert re.fullmatch(r"[a-z][A-Za-z0-9]+", operation_id), (operation_id, method, path)
    # A generated client's function names: an id once published keeps its route (new routes add lines).
    published = [tuple(line.split()) for line in IDS_FILE.read_text().splitlines() if line.strip()]
    missing = sorted(set(published) - set(ids))
    assert missing == [], f"published operationIds changed or vanished: {missing}"
    assert {"listLaps", "createLap", "replayWebhookDelivery", "signIn"} <= {i for i, _, _ in ids}


def _check(spec: dict[str, Any], schema: dict[str, Any], example: Any, where: str) -> None:
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    registry = Registry().with_resource("urn:spec", Resource(contents=spec, specification=DRAFT202012))
    text = json.dumps(schema).replace('"#/components/', '"urn:spec#/components/')
    validator = Draft202012Validator(json.loads(text), registry=registry, format_checker=FormatChecker())
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(example)]
    assert problems == [], f"{where}: {problems}"


def test_main_bodies_and_answers_have_examples_their_schemas_accept(spec: dict[str, Any]) -> None:
    checked = 0
    for where, node in _walk({"paths": spec["paths"], "webhooks": spec["webhooks"]}):
        if "schema" in node and "example" in node:
            _check(spec, node["schema"], node["example"], where)
            checked += 1
    for method, path in (("post", "/auth/login"), ("post", "/laps"), ("post", "/events"), ("post", "/webhooks")):
        operation = spec["paths"][path][method]
        assert "example" in operation["requestBody"]["content"]["application/json"], (method, path)
        answers = [a for code, a in operation["responses"].items() if code.startswith("2")]
        assert all("example" in a["content"]["application/json"] for a in answers), (method, path)
    assert spec["paths"]["/laps"]["post"]["requestBody"]["content"]["application/json"]["example"]["lapTimeMs"] > 0
    assert checked > 150


def test_webhooks_describe_every_event_type_the_domain_records(spec: dict[str, Any]) -> None:
    from chalicelib.api.webhook_events import catalog
    from chalicelib.domain.changes import OPS
    from chalicelib.domain.race_data import EDITABLES
    from chalicelib.webhooks.subscriptions import ENTITY_TYPES, TEST_EVENT_TYPE

    types = {event.type for event in catalog()}
    assert set(spec["webhooks"]) == types
    recorded = {f"{e.entity}.{op}" for e in EDITABLES.values() for op in OPS}  # crud.py records these
    call = re.compile(r"\.record(?:_many)?\(\s*\"(\w+)\",\s*(?:\"(\w+)\"|(\w+))")
    for source in (REPO / "chalicelib").rglob("*.py"):
        for entity, op, variable in call.findall(source.read_text()):
            recorded |= {f"{entity}.{op}"} if op else {f"{entity}.{o}" for o in OPS if variable}
    assert recorded - types == set(), "event types recorded by the domain but missing from the catalog"
    assert {t.split(".")[0] for t in types} == set(ENTITY_TYPES) | {TEST_EVENT_TYPE.split(".")[0]}
    lap = spec["webhooks"]["lap.create"]["post"]
    assert {p["name"] for p in lap["parameters"]} >= {"webhook-id", "webhook-signature", "X-Race-Signature"}
    body = lap["requestBody"]["content"]["application/json"]
    assert body["example"]["type"] == "lap.create" and body["example"]["data"]["lapTimeMs"] == 118734
