"""One typed settings object, read from the environment once per cold start."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from chalicelib import resources

STAGES = ("local", "dev", "prod")
DEPLOYED_STAGES = ("dev", "prod")


class ConfigError(RuntimeError):
    """The environment cannot run the platform; the message says what to set."""


@dataclass(frozen=True)
class Settings:
    stage: str
    jwt_secret: str
    database_url: str
    aws_region: str
    aws_endpoint_url: str | None
    kv_table: str
    connections_table: str
    webhook_queue: str
    timing_import_queue: str
    room_queue: str
    attachments_bucket: str
    plugins_bucket: str
    uploads_bucket: str
    backups_bucket: str
    # The address invitations and confirmations come from (MAIL_FROM; a verified SES identity).
    mail_from: str
    # The web client's public URL: links in emails point there (WEB_URL; required outside local).
    web_url: str
    # Where the WebSocket @connections management API lives; None means "derive it from the
    # event" as API Gateway does in AWS.
    ws_management_url: str | None
    jwt_ttl_s: int = 12 * 3600
    db_pool_max: int = 4
    # POST /auth/signup creates accounts; SIGNUP_ENABLED, default on except in prod.
    signup_enabled: bool = True
    # Non-public address:port pairs that webhooks and host.fetch may reach (OUTBOUND_ALLOW).
    outbound_allow: frozenset[tuple[str, int]] = frozenset()
    # The data key sealing webhook secrets at rest (WEBHOOK_KEY, 32 bytes); required outside `local`.
    webhook_key: bytes | None = field(default=None, repr=False)

    @property
    def is_local(self) -> bool:
        return self.stage == "local"


def _required(env: dict[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is required")
    return value


def _ssm_secret(name: str) -> str:
    """A SecureString from SSM Parameter Store (Powertools parameters, decrypted)."""
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_parameter(name, decrypt=True, max_age=0))


def load(env: dict[str, str] | None = None, fetch_secret: Callable[[str], str] = _ssm_secret) -> Settings:
    """Parse settings from `env` (default: the process environment); fail fast and say why.

    JWT_SECRET, DATABASE_URL and WEBHOOK_KEY come from the environment, or, when JWT_SECRET_PARAMETER /
    DATABASE_URL_PARAMETER / WEBHOOK_KEY_PARAMETER name an SSM SecureString (the AWS deployment; a
    `/aws/reference/secretsmanager/...` name reads Secrets Manager), from there once per cold start.
    """
    env = dict(os.environ if env is None else env)
    for name in ("JWT_SECRET", "DATABASE_URL", "WEBHOOK_KEY"):
        _from_parameter(env, name, fetch_secret)
    stage = _stage(env)
    jwt_secret = _required(env, "JWT_SECRET")
    if len(jwt_secret) < 32 and stage != "local":
        raise ConfigError("JWT_SECRET must be at least 32 characters outside the local stage")
    database_url = _required(env, "DATABASE_URL")

    def name_of(resource: resources.Table | resources.Queue | resources.Bucket | resources.Sender) -> str:
        return env.get(resource.env_var) or resource.name

    return Settings(
        stage=stage,
        jwt_secret=jwt_secret,
        database_url=database_url,
        aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        kv_table=name_of(resources.KV_TABLE),
        connections_table=name_of(resources.CONNECTIONS_TABLE),
        webhook_queue=name_of(resources.WEBHOOK_QUEUE),
        timing_import_queue=name_of(resources.TIMING_IMPORT_QUEUE),
        room_queue=name_of(resources.ROOM_QUEUE),
        attachments_bucket=name_of(resources.ATTACHMENTS_BUCKET),
        plugins_bucket=name_of(resources.PLUGINS_BUCKET),
        uploads_bucket=name_of(resources.UPLOADS_BUCKET),
        backups_bucket=name_of(resources.BACKUPS_BUCKET),
        mail_from=name_of(resources.MAIL_SENDER),
        web_url=_web_url(env, stage),
        ws_management_url=env.get("WS_MANAGEMENT_URL") or None,
        jwt_ttl_s=int(env.get("JWT_TTL_S", "43200")),
        db_pool_max=int(env.get("DB_POOL_MAX", "4")),
        signup_enabled=_flag(env, "SIGNUP_ENABLED", default=stage != "prod"),
        outbound_allow=_outbound_allow(env),
        webhook_key=parse_webhook_key(env, stage),
    )


def _web_url(env: dict[str, str], stage: str) -> str:
    """WEB_URL without a trailing slash; locally the web client's own port, elsewhere it must be set."""
    from urllib.parse import urlsplit

    raw = env.get("WEB_URL", "").strip()
    if not raw:
        if stage != "local":
            raise ConfigError(
                "WEB_URL is required outside the local stage (the web client's public URL, for email links)"
            )
        raw = f"http://127.0.0.1:{env.get('WEB_PORT', '').strip() or 6166}"
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"WEB_URL must be an http(s) URL without query or fragment, not {raw!r}")
    if parts.scheme == "http" and stage == "prod":
        raise ConfigError("WEB_URL must be https in prod (email links carry one-time tokens)")
    return raw.rstrip("/")


def _from_parameter(env: dict[str, str], name: str, fetch_secret: Callable[[str], str]) -> None:
    """Fill `name` from the SSM parameter `<name>_PARAMETER` names, unless the environment sets it."""
    parameter = env.get(f"{name}_PARAMETER", "").strip()
    if env.get(name, "").strip() or not parameter:
        return
    try:
        env[name] = fetch_secret(parameter)
    except Exception as exc:
        raise ConfigError(f"{name} is required (reading {parameter} failed: {exc})") from exc


WEBHOOK_KEY_BYTES = 32  # AES-256


def parse_webhook_key(env: dict[str, str], stage: str) -> bytes | None:
    """WEBHOOK_KEY: base64 of 32 random bytes (`openssl rand -base64 32`); only `local` may run without one."""
    import base64
    import binascii

    raw = env.get("WEBHOOK_KEY", "").strip()
    if not raw:
        if stage != "local":
            raise ConfigError("WEBHOOK_KEY is required (the data key sealing webhook secrets; see docs/deploy.md)")
        return None  # the local stack always sets one; without it webhooks answer "WEBHOOK_KEY is required"
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("WEBHOOK_KEY must be base64 of 32 random bytes (openssl rand -base64 32)") from exc
    if len(key) != WEBHOOK_KEY_BYTES:
        raise ConfigError(
            f"WEBHOOK_KEY must be base64 of 32 random bytes (openssl rand -base64 32), not {len(key)} bytes"
        )
    return key


def _stage(env: dict[str, str]) -> str:
    """The stage; a deployed function (Lambda sets AWS_LAMBDA_FUNCTION_NAME) must name dev or prod itself."""
    raw = env.get("STAGE", "").strip()
    if env.get("AWS_LAMBDA_FUNCTION_NAME", "").strip():
        # Only the local stack may run as `local` (relaxed rules); a deployed function never defaults to it.
        if raw not in DEPLOYED_STAGES:
            shown = repr(raw) if raw else "unset"
            raise ConfigError(
                f"STAGE must be one of {', '.join(DEPLOYED_STAGES)} in a deployed function, not {shown} "
                "(set it in .chalice/config.json or the template)"
            )
        return raw
    stage = raw or "local"
    if stage not in STAGES:
        raise ConfigError(f"STAGE must be one of {', '.join(STAGES)}, not {stage!r}")
    return stage


# The platform's own ports (what the variable names, else its default): never reachable from outbound calls.
_PLATFORM_PORTS = {
    "API_PORT": 8000,
    "WS_PORT": 8001,
    "WEB_PORT": 6166,
    "DOCS_PORT": 6167,
    "AWS_ENDPOINT_URL": 4566,
    "DATABASE_URL": 5432,
    "WS_MANAGEMENT_URL": None,
}


def _platform_ports(env: dict[str, str]) -> dict[int, str]:
    from urllib.parse import urlsplit

    ports: dict[int, str] = {}
    for name, default in _PLATFORM_PORTS.items():
        raw = env.get(name, "").strip()
        port: int | None = default
        if raw:
            try:
                port = int(raw) if raw.isdigit() else urlsplit(raw).port or default
            except ValueError:
                port = default
        if port is not None:
            ports[port] = name
    return ports


def _outbound_allow(env: dict[str, str]) -> frozenset[tuple[str, int]]:
    """OUTBOUND_ALLOW=127.0.0.1:9000,[::1]:9001: non-public address:port pairs outbound calls may reach."""
    import ipaddress

    allowed: set[tuple[str, int]] = set()
    platform = _platform_ports(env)
    for entry in filter(None, (part.strip() for part in env.get("OUTBOUND_ALLOW", "").split(","))):
        host, _, port_text = entry.rpartition(":")
        try:
            address = ipaddress.ip_address(host.strip("[]"))
            port = int(port_text)
            if not 0 < port < 65536:
                raise ValueError(port_text)
        except ValueError as exc:
            raise ConfigError(
                f"OUTBOUND_ALLOW entries are address:port (an IP address, [v6]:port), not {entry!r}"
            ) from exc
        if port in platform:
            raise ConfigError(f"OUTBOUND_ALLOW must not open the platform's own port {port} ({platform[port]})")
        allowed.add((str(address), port))
    return frozenset(allowed)


def require_known_stage(env: dict[str, str] | None = None) -> None:
    """Fail the cold start of a deployed function whose STAGE is missing or `local` (called by app.py at import)."""
    _stage(dict(os.environ if env is None else env))


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{name} must be true or false, not {raw!r}")
    return raw in ("true", "1", "yes")


@functools.cache
def settings() -> Settings:
    """The settings of this process (cold start); cached until `settings.cache_clear()`."""
    return load()
