"""The platform's errors: raised by the domain and the adapters, mapped to HTTP in one table."""

from __future__ import annotations


class PlatformError(Exception):
    """Base of every error a client may see; `code` is stable, the message is for humans."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(PlatformError):
    """Bad input; `field` names the offending field (dotted path) when there is one."""

    code = "invalid"

    def __init__(self, message: str, field: str | None = None, details: list[dict[str, object]] | None = None):
        super().__init__(message)
        self.field = field
        self.details = details or []


class Unauthorized(PlatformError):
    code = "unauthorized"


class Forbidden(PlatformError):
    code = "forbidden"


class NotFound(PlatformError):
    """Absent, or belonging to another account (the two are indistinguishable on purpose)."""

    code = "not_found"


class Conflict(PlatformError):
    code = "conflict"


class TooLarge(PlatformError):
    code = "payload_too_large"


class RateLimited(PlatformError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DependencyDown(PlatformError):
    """A dependency (PostgreSQL, DynamoDB, SQS, S3) is unreachable; the message names it."""

    code = "dependency_unavailable"

    def __init__(self, dependency: str, message: str | None = None) -> None:
        super().__init__(message or f"{dependency} is unavailable; try again shortly")
        self.dependency = dependency


class MigrationsMissing(DependencyDown):
    """The schema is behind the code: a relation does not exist."""

    code = "migrations_pending"

    def __init__(self, detail: str) -> None:
        super().__init__("PostgreSQL", f"database schema is not migrated ({detail}); run `make migrate`")


class Misconfigured(PlatformError):
    """The function's environment is wrong (e.g. JWT_SECRET is required)."""

    code = "misconfigured"


class PluginFailed(PlatformError):
    """A plugin ran and failed (threw, timed out, hit a limit): the request was fine, the plugin was not.

    `reason` makes the code: plugin_error, plugin_timeout, plugin_memory_limit, plugin_output_too_large,
    plugin_capability_refused.
    """

    code = "plugin_error"

    def __init__(self, message: str, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason
        self.code = f"plugin_{reason}"


# The one table from error to HTTP status.
HTTP_STATUS: dict[type[PlatformError], int] = {
    Invalid: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    PluginFailed: 422,
    RateLimited: 429,
    Misconfigured: 500,
    DependencyDown: 503,
    MigrationsMissing: 503,
}


def http_status(error: PlatformError) -> int:
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500
