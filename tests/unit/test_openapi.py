"""/openapi.json describes exactly the app's routes and is a valid OpenAPI 3.1 document."""

from __future__ import annotations

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
