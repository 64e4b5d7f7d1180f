"""Settings are parsed once and fail fast with a message a human can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.config import ConfigError, load

pytestmark = pytest.mark.unit
BASE = {"JWT_SECRET": "s" * 40, "DATABASE_URL": "postgresql://x/y", "WEBHOOK_KEY": "k" * 43 + "="}


def test_jwt_secret_is_required() -> None:
    with pytest.raises(ConfigError, match="^JWT_SECRET is required$"):
        load({"DATABASE_URL": "postgresql://x/y"})


def test_blank_jwt_secret_counts_as_missing() -> None:
    with pytest.raises(ConfigError, match="^JWT_SECRET is required$"):
        load({**BASE, "JWT_SECRET": "   "})


def test_unknown_stage_is_refused() -> None:
    with pytest.raises(ConfigError, match="STAGE must be one of"):
        load({**BASE, "STAGE": "staging"})


def test_short_secret_is_refused_outside_local() -> None:
    with pytest.raises(ConfigError, match="at least 32"):
        load({**BASE, "JWT_SECRET": "short", "STAGE": "prod"})
    assert load({**BASE, "JWT_SECRET": "short"}).stage == "local"


def test_resource_names_default_to_the_resource_definition_and_can_be_overridden() -> None:
    settings = load({**BASE, "RACE_KV_TABLE": "custom-kv"})
    assert settings.kv_table == "custom-kv"
    assert settings.connections_table == "race-connections"
    assert settings.aws_endpoint_url is None


def test_jwt_secret_can_come_from_a_parameter() -> None:
    asked: list[str] = []

    def fetch(name: str) -> str:
        asked.append(name)
        return "p" * 40

    settings = load({"DATABASE_URL": "postgresql://x/y", "JWT_SECRET_PARAMETER": "/race/prod/jwt"}, fetch)
    assert settings.jwt_secret == "p" * 40 and asked == ["/race/prod/jwt"]


def test_unreadable_parameter_still_says_jwt_secret_is_required() -> None:
    def fetch(name: str) -> str:
        raise RuntimeError("AccessDenied")

    with pytest.raises(ConfigError, match=r"^JWT_SECRET is required \(reading /race/prod/jwt failed: AccessDenied\)"):
        load({"DATABASE_URL": "postgresql://x/y", "JWT_SECRET_PARAMETER": "/race/prod/jwt"}, fetch)


def test_database_url_can_come_from_a_parameter_and_the_environment_wins() -> None:
    asked: list[str] = []

    def fetch(name: str) -> str:
        asked.append(name)
        return {"/race/prod/jwt": "p" * 40, "/race/prod/database-url": "postgresql://proxy/race"}[name]

    env = {"DATABASE_URL_PARAMETER": "/race/prod/database-url", "JWT_SECRET_PARAMETER": "/race/prod/jwt"}
    assert load(env, fetch).database_url == "postgresql://proxy/race"
    assert load({**env, "DATABASE_URL": "postgresql://x/y"}, fetch).database_url == "postgresql://x/y"
    assert asked == ["/race/prod/jwt", "/race/prod/database-url", "/race/prod/jwt"]

    def denied(name: str) -> str:
        raise RuntimeError("AccessDenied")

    with pytest.raises(ConfigError, match=r"^DATABASE_URL is required \(reading /race/prod/database-url failed"):
        load({"JWT_SECRET": "s" * 40, "DATABASE_URL_PARAMETER": "/race/prod/database-url"}, denied)


def test_the_local_gateway_gives_handlers_the_deployed_functions_limits(tmp_path: Path) -> None:
    from infra.local.http_gateway import lambda_limits

    assert lambda_limits("local") == (1024, 30_000)  # the repository's .chalice/config.json
    assert lambda_limits("prod") == (1769, 30_000)  # a stage's own setting wins
    config = tmp_path / "config.json"
    config.write_text('{"stages": {"dev": {"lambda_timeout": 12}}}')
    assert lambda_limits("dev", config) == (128, 12_000)  # Chalice's defaults fill the rest
    assert lambda_limits("dev", tmp_path / "missing.json") == (128, 60_000)


@pytest.mark.parametrize("stage", [None, "", "local", "staging"])
def test_a_deployed_function_refuses_an_unset_or_local_stage(stage: str | None) -> None:
    env = {**BASE, "AWS_LAMBDA_FUNCTION_NAME": "race-platform-prod"}
    if stage is not None:
        env["STAGE"] = stage
    with pytest.raises(ConfigError, match="STAGE must be one of dev, prod in a deployed function"):
        load(env)


def test_a_deployed_function_with_its_stage_starts() -> None:
    env = {**BASE, "AWS_LAMBDA_FUNCTION_NAME": "race-platform-dev", "STAGE": "dev", "WEB_URL": "https://race.example"}
    assert load(env).stage == "dev"


def test_importing_the_app_in_a_function_without_stage_fails_fast() -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in ("STAGE", "AWS_LAMBDA_FUNCTION_NAME")}
    env.update({"AWS_LAMBDA_FUNCTION_NAME": "race-platform-prod", "PYTHONPATH": str(root)})
    done = subprocess.run([sys.executable, "-c", "import app"], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "STAGE must be one of dev, prod in a deployed function, not unset" in done.stderr
    env["STAGE"] = "prod"
    done = subprocess.run([sys.executable, "-c", "import app"], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_outbound_allow_is_address_port_pairs() -> None:
    settings = load({**BASE, "OUTBOUND_ALLOW": "127.0.0.1:9000, [::1]:9001,10.0.0.7:443"})
    assert settings.outbound_allow == {("127.0.0.1", 9000), ("::1", 9001), ("10.0.0.7", 443)}
    assert load(BASE).outbound_allow == frozenset()


@pytest.mark.parametrize("entry", ["localhost:9000", "127.0.0.1", "127.0.0.1:*", "127.0.0.1:0", "127.0.0.1:70000"])
def test_outbound_allow_refuses_what_is_not_an_address_and_port(entry: str) -> None:
    with pytest.raises(ConfigError, match="OUTBOUND_ALLOW entries are address:port"):
        load({**BASE, "OUTBOUND_ALLOW": entry})


@pytest.mark.parametrize(
    ("env", "entry", "name"),
    [
        ({}, "127.0.0.1:4566", "AWS_ENDPOINT_URL"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:4999"}, "127.0.0.1:4999", "AWS_ENDPOINT_URL"),
        ({"DATABASE_URL": "postgresql://u@127.0.0.1:55432/race"}, "127.0.0.1:55432", "DATABASE_URL"),
        ({}, "127.0.0.1:8000", "API_PORT"),
        ({"WS_PORT": "9100"}, "[::1]:9100", "WS_PORT"),
        ({"WS_MANAGEMENT_URL": "http://127.0.0.1:9200/local"}, "127.0.0.1:9200", "WS_MANAGEMENT_URL"),
    ],
)
def test_outbound_allow_never_opens_the_platforms_own_ports(env: dict[str, str], entry: str, name: str) -> None:
    with pytest.raises(ConfigError, match=f"platform's own port .*{name}"):
        load({**BASE, **env, "OUTBOUND_ALLOW": entry})


def test_web_url_is_required_outside_local_and_defaults_to_the_web_port_locally() -> None:
    with pytest.raises(ConfigError, match="^WEB_URL is required outside the local stage"):
        load({**BASE, "STAGE": "dev"})
    assert load({**BASE, "STAGE": "dev", "WEB_URL": "https://race.example/"}).web_url == "https://race.example"
    assert load(BASE).web_url == "http://127.0.0.1:6166"
    assert load({**BASE, "WEB_PORT": "7000"}).web_url == "http://127.0.0.1:7000"


@pytest.mark.parametrize("url", ["race.example", "ftp://race.example", "https://race.example/?x=1", "https://r.io/#/"])
def test_web_url_must_be_a_plain_http_url(url: str) -> None:
    with pytest.raises(ConfigError, match="WEB_URL must be an http"):
        load({**BASE, "WEB_URL": url})


def test_prod_links_are_https_and_the_sender_comes_from_the_resources() -> None:
    with pytest.raises(ConfigError, match="WEB_URL must be https in prod"):
        load({**BASE, "STAGE": "prod", "WEB_URL": "http://race.example"})
    assert load(BASE).mail_from == "no-reply@race-platform.dev"
    assert load({**BASE, "MAIL_FROM": "pit@team.example"}).mail_from == "pit@team.example"
