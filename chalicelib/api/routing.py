"""Route registration shared by every blueprint: authentication, errors and JSON in one place.

Chalice turns any exception a view raises into its own 500 before middleware sees it, so views
are wrapped here instead: platform errors map to statuses through `errors.HTTP_STATUS`, and
anything unexpected becomes a logged 500 in the same error shape, never a stack trace.
"""

from __future__ import annotations

import contextvars
import functools
import json
import time
from collections.abc import Callable
from typing import Any

from chalice import Blueprint, CORSConfig, Response

from chalicelib.config import ConfigError, settings
from chalicelib.domain.caller import Caller
from chalicelib.errors import Invalid, Misconfigured, PlatformError, RateLimited, TooLarge, http_status
from chalicelib.observability import logger

MAX_JSON_BODY_BYTES = 1 * 1024 * 1024

CORS = CORSConfig(
    allow_origin="*",
    allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key"],
    expose_headers=["Retry-After", "X-Request-Id", "X-Next-Cursor"],
    max_age=600,
)

_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("caller", default=None)


def caller() -> Caller:
    """The authenticated caller of the current request (set by the route wrapper)."""
    current = _caller.get()
    if current is None:
        raise RuntimeError("caller() used outside an authenticated route")
    return current


def error_body(error: PlatformError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if isinstance(error, Invalid):
        if error.field:
            body["field"] = error.field
        if error.details:
            body["details"] = error.details
    return {"error": body}


def error_response(error: PlatformError, request_id: str | None = None) -> Response:
    headers: dict[str, str | list[str]] = {"Content-Type": "application/json"}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after_s)
    if request_id:
        headers["X-Request-Id"] = request_id
    return Response(body=json.dumps(error_body(error)), status_code=http_status(error), headers=headers)


def json_body(bp: Blueprint, max_bytes: int = MAX_JSON_BODY_BYTES) -> Any:
    """The request's JSON body; 400 when it is not JSON, 413 when it is larger than `max_bytes`."""
    request = bp.current_request
    raw = request.raw_body or b""
    if len(raw) > max_bytes:
        raise TooLarge(f"request body is over {max_bytes // 1024} KB")
    if not raw.strip():
        raise Invalid("request body is empty; send a JSON object", field="body")
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Invalid(f"request body is not valid JSON ({_reason(exc)})", field="body") from exc


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _reason(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split(":")[0][:100]


def query_params(bp: Blueprint) -> dict[str, str]:
    """Query parameters, each given once (repeating one is refused rather than guessed at)."""
    params = bp.current_request.query_params
    if not params:
        return {}
    for name in params:
        if len(params.getlist(name)) > 1:
            raise Invalid(f"query parameter {name!r} is given more than once", field=name)
    return {name: params[name] for name in params}


def _authenticate(request: Any) -> Caller:
    from chalicelib.domain.auth import authenticate

    headers = request.headers
    return authenticate(headers.get("authorization"), headers.get("x-api-key"))


def authenticated_caller(bp: Blueprint) -> Caller | None:
    """On a public route: the caller when the request carries valid credentials, else None (never 401)."""
    request = bp.current_request
    if not (request.headers.get("authorization") or request.headers.get("x-api-key")):
        return None
    try:
        return _authenticate(request)
    except PlatformError:
        return None


def route(
    bp: Blueprint,
    path: str,
    methods: tuple[str, ...] = ("GET",),
    *,
    public: bool = False,
    status: int = 200,
    content_types: tuple[str, ...] = ("application/json",),
    applied_once: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a view that returns a JSON-able value (or a Response) and may raise PlatformError.

    applied_once: the view's write records its Idempotency-Key in its own transaction
    (idempotency.claim_in), so a keyed POST still runs when the idempotency store is down.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Response:
            request = bp.current_request
            request_id = request.context.get("requestId")
            started = time.perf_counter()
            token = _caller.set(None)
            log = logger()
            log.thread_safe_append_keys(correlation_id=request_id)
            try:
                settings()  # the cold start fails here, loudly, when the environment is incomplete
                if not public:
                    current = _authenticate(request)
                    _caller.set(current)
                    log.thread_safe_append_keys(account_id=current.account_id)
                key = request.headers.get("idempotency-key") if "POST" in methods and not public else None
                if key is not None:  # every POST honours Idempotency-Key: chalicelib/api/idempotent.py
                    from chalicelib.api import idempotent

                    return idempotent.answer(
                        bp, path, key, kwargs, lambda: view(**kwargs), status, applied_once=applied_once
                    )
                result = view(**kwargs)
                if isinstance(result, Response):
                    return result
                return Response(
                    body=json.dumps(result, separators=(",", ":")) if result is not None else "",
                    status_code=status if result is not None else 204,
                    headers={"Content-Type": "application/json"},
                )
            except ConfigError as exc:
                logger().error(str(exc), extra={"path": path, "request_id": request_id})
                return error_response(Misconfigured(str(exc)), request_id)
            except PlatformError as exc:
                if http_status(exc) >= 500:
                    logger().error(exc.message, extra={"path": path, "code": exc.code, "request_id": request_id})
                return error_response(exc, request_id)
            except Exception:
                logger().exception("unhandled error", extra={"path": path, "request_id": request_id})
                return error_response(_Internal(), request_id)
            finally:
                _caller.reset(token)
                log.thread_safe_remove_keys(["account_id", "correlation_id"])
                elapsed_ms = (time.perf_counter() - started) * 1000
                if elapsed_ms > 1000:
                    logger().warning("slow request", extra={"path": path, "duration_ms": round(elapsed_ms)})

        wrapper.race_public = public  # type: ignore[attr-defined]  # read by the OpenAPI generator
        wrapper.race_status = status  # type: ignore[attr-defined]
        bp.route(path, methods=list(methods), cors=CORS, content_types=list(content_types))(wrapper)
        return view

    return decorate


class _Internal(PlatformError):
    code = "internal"

    def __init__(self) -> None:
        super().__init__("internal error; the request id in X-Request-Id helps the operator find it")


def register_reads(bp: Blueprint, path: str, resource: Any) -> None:
    """GET {path} (a page, filtered) and GET {path}/{id} for an account-scoped resource."""
    from chalicelib.domain import reads

    @route(bp, path)
    def list_resource() -> Any:
        return reads.list_page(caller(), resource, query_params(bp))

    label = resource.name.replace("_", " ")
    list_resource.__doc__ = f"List {label}s of your account (filters, cursor pagination)"
    list_resource.race_resource = resource  # type: ignore[attr-defined]
    list_resource.race_list = True  # type: ignore[attr-defined]

    @route(bp, path + "/{id}")
    def get_resource(id: str) -> Any:
        return reads.get_one(caller(), resource, id)

    get_resource.__doc__ = f"One {label} by id"
    get_resource.race_resource = resource  # type: ignore[attr-defined]


_CHALICE_CODES = {
    400: "invalid",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    500: "internal",
}


def uniform_errors(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """HTTP middleware: Chalice's own errors (415, bad JSON, ...) leave in the platform's error shape."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code", "Message"}:
        code = _CHALICE_CODES.get(response.status_code, "error")
        response.body = json.dumps({"error": {"code": code, "message": str(body["Message"])}})
        response.headers["Content-Type"] = "application/json"
    return response


def register_writes(bp: Blueprint, path: str, name: str) -> None:
    """POST {path}, PATCH {path}/{id}, DELETE {path}/{id}[?cascade=true] for a race_data resource."""
    from chalicelib.api import shapes
    from chalicelib.domain import race_data

    @route(bp, path, methods=("POST",), status=201, applied_once=True)
    def create_resource() -> Any:
        return race_data.create(caller(), name, json_body(bp))

    @route(bp, path + "/{id}", methods=("PATCH",))
    def update_resource(id: str) -> Any:
        return race_data.update(caller(), name, id, json_body(bp))

    editable = race_data.EDITABLES[name]
    label = editable.entity.replace("_", " ")
    a = "an" if label[0] in "aeiou" else "a"
    create_resource.__doc__ = f"Create {a} {label} (records {editable.entity}.create)"
    update_resource.__doc__ = f"Change the fields sent of {a} {label} (records {editable.entity}.update)"
    for view in (create_resource, update_resource):
        view.race_resource = editable.resource  # type: ignore[attr-defined]
        view.race_body = editable  # type: ignore[attr-defined]

    @route(bp, path + "/{id}", methods=("DELETE",))
    def delete_resource(id: str) -> Any:
        params = query_params(bp)
        cascade = params.get("cascade", "false")
        if cascade not in ("true", "false") or set(params) - {"cascade"}:
            raise Invalid("the only query parameter is cascade=true|false", field="cascade")
        return race_data.delete(caller(), name, id, cascade == "true")

    delete_resource.__doc__ = f"Delete {a} {label}; 409 while children exist unless cascade=true"
    delete_resource.race_query = {"cascade": {"enum": ["true", "false"]}}  # type: ignore[attr-defined]
    delete_resource.race_answer = shapes.deleted()  # type: ignore[attr-defined]
