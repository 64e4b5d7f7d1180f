"""The route table deploys to API Gateway: sibling path variables must share one name."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit


def test_sibling_path_variables_share_a_name() -> None:
    from app import app

    variable_at: dict[str, str] = {}
    for path in app.routes:
        parts = path.strip("/").split("/")
        for depth, part in enumerate(parts):
            if part.startswith("{"):
                parent = "/".join(parts[:depth])
                assert variable_at.setdefault(parent, part) == part, (
                    f"{path}: API Gateway allows one variable name under /{parent}, already {variable_at[parent]}"
                )


def test_every_route_answers_cors_preflight_headers() -> None:
    from app import app

    for path, methods in app.routes.items():
        for method, entry in methods.items():
            assert entry.cors is not None, f"{method} {path} has no CORS config"
