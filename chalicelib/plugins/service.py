"""Plugin use cases: upload (immutable versions), list, read, delete, grant, and invoke under limits."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chalicelib.config import settings
from chalicelib.domain import listing
from chalicelib.domain.caller import Caller
from chalicelib.domain.records import LAPS, encode
from chalicelib.domain.validation import Body
from chalicelib.errors import Conflict, Invalid, NotFound, TooLarge
from chalicelib.plugins import bundles, limits, manifest, storage
from chalicelib.store.postgres import Row, execute, fetch_all, fetch_one, transaction

# Who may do what (docs/plugins.md): admins manage plugins; anyone in the account may invoke them.
MANAGE_ROLE = "admin"
INVOKE_ROLE = "viewer"


def _label(plugin_id: str, version: str) -> str:
    return f"plugin {plugin_id} {version}"


def _version_wire(plugin_id: str, row: Row) -> dict[str, Any]:
    stored = row["manifest"]
    wire: dict[str, Any] = {
        "id": plugin_id,
        "version": row["version"],
        "name": row["name"],
        "interfaces": list(row["interfaces"]),
        "capabilities": list(row["capabilities"]),
        "timeoutMs": row["timeout_ms"],
    }
    for key in ("entryPoints", "description", "main"):
        if key in stored:
            wire[key] = stored[key]
    wire.update(
        {
            "bundleSha256": row["bundle_sha256"],
            "bundleBytes": row["bundle_bytes"],
            "createdAt": encode(row["created_at"]),
        }
    )
    return wire


# ---- management


def upload(caller: Caller, payload: Any) -> tuple[bool, dict[str, Any]]:
    """Publish a version; (False, it) when this exact version and bundle were already published."""
    caller.require(MANAGE_ROLE)
    body = Body(payload, allowed=("manifest", "bundle"))
    if not body.has("manifest"):
        body.fail("manifest is required (the plugin.json object)", "manifest")
    if len(json.dumps(body.payload["manifest"])) > limits.MAX_MANIFEST_BYTES:
        raise TooLarge(f"manifest is over {limits.MAX_MANIFEST_BYTES // 1024} KB")
    spec = manifest.parse_manifest(body.payload["manifest"])
    source = body.payload.get("bundle")
    if not isinstance(source, str) or not source.strip():
        body.fail("bundle is required: the plugin's JavaScript as one string", "bundle")
    data = source.encode()
    if len(data) > limits.MAX_BUNDLE_BYTES:
        raise TooLarge(f"bundle is {len(data)} bytes; the limit is {limits.MAX_BUNDLE_BYTES} bytes (1 MB)")
    sha = bundles.sha256_hex(data)
    params = {"account_id": caller.account_id, "plugin_id": spec.id, "version": spec.version}

    with transaction() as conn:
        existing = fetch_one(conn, "plugin_version_one", params)
    if existing is not None:
        return False, _same_or_conflict(caller, spec, existing["bundle_sha256"], sha)

    # Compiled once in the account's sandbox, so a broken bundle is refused now, not at its first call.
    from chalicelib.plugins.sandbox import sandbox_pool  # deferred: the sandbox is not on a cold start's path

    problem = sandbox_pool().check_bundle(
        caller.account_id,
        source,
        label=_label(spec.id, spec.version),
        entry_points=[spec.entry_point(i) for i in spec.interfaces],
        timeout_ms=spec.timeout_ms,
    )
    if problem is not None:
        raise Invalid(f"bundle: {problem}", field="bundle")

    key = bundles.object_key(caller.account_id, spec.id, spec.version, sha)
    bundles.put(key, data)
    with transaction() as conn:
        execute(conn, "plugin_upsert", {**params, "name": spec.name, "created_by": caller.acting_user_id})
        row = fetch_one(
            conn,
            "plugin_version_insert",
            {
                **params,
                "name": spec.name,
                "interfaces": list(spec.interfaces),
                "capabilities": list(spec.capabilities),
                "timeout_ms": spec.timeout_ms,
                "manifest": _json(spec.to_wire()),
                "bundle_sha256": sha,
                "bundle_bytes": len(data),
                "s3_key": key,
                "created_by": caller.acting_user_id,
            },
        )
        if row is None:  # published concurrently
            existing = fetch_one(conn, "plugin_version_one", params)
    if row is None:
        assert existing is not None
        return False, _same_or_conflict(caller, spec, existing["bundle_sha256"], sha)
    return True, _version_wire(spec.id, row)


def _json(value: Any) -> Any:
    from psycopg.types.json import Jsonb

    return Jsonb(value)


def _same_or_conflict(caller: Caller, spec: manifest.Manifest, stored_sha: str, sha: str) -> dict[str, Any]:
    if stored_sha != sha:
        raise Conflict(
            f"{spec.id} {spec.version} is already published with another bundle; a published "
            "version is immutable: publish a new version"
        )
    detail = get_plugin(caller, spec.id)
    return next(v for v in detail["versions"] if v["version"] == spec.version)


def list_plugins(caller: Caller, params: Mapping[str, str]) -> dict[str, Any]:
    caller.require(INVOKE_ROLE)
    unknown = sorted(set(params) - {"limit", "cursor"})
    if unknown:
        raise Invalid(f"unknown query parameter {unknown[0]!r}; allowed: cursor, limit", field=unknown[0])
    limit = listing.parse_limit(params.get("limit"))
    after = listing.decode_cursor(params["cursor"], 1)[0] if params.get("cursor") else None
    with transaction() as conn:
        rows = fetch_all(conn, "plugin_page", {"account_id": caller.account_id, "after": after, "limit": limit + 1})
    items = []
    for row in rows[:limit]:
        versions = {v["version"]: v for v in row["versions"] or []}
        latest_version = manifest.latest(list(versions))
        latest = versions.get(latest_version or "", {})
        items.append(
            {
                "id": row["id"],
                "name": row["name"],
                "latestVersion": latest_version,
                "interfaces": latest.get("interfaces", []),
                "capabilities": latest.get("capabilities", []),
                "grants": list(row["grants"]),
                "versionCount": len(versions),
                "createdAt": encode(row["created_at"]),
                "updatedAt": encode(row["updated_at"]),
            }
        )
    next_cursor = listing.encode_cursor((rows[limit - 1]["id"],)) if len(rows) > limit else None
    return {"items": items, "nextCursor": next_cursor}


def _plugin_id(value: str) -> str:
    try:
        return manifest.parse_plugin_id(value, "id")
    except Invalid as exc:
        # Not a plugin id at all: answered like any missing plugin.
        raise NotFound(f"plugin {value[:64]!r} not found") from exc


def get_plugin(caller: Caller, plugin_id: str) -> dict[str, Any]:
    caller.require(INVOKE_ROLE)
    plugin_id = _plugin_id(plugin_id)
    params = {"account_id": caller.account_id, "plugin_id": plugin_id}
    with transaction() as conn:
        plugin = fetch_one(conn, "plugin_one", params)
        rows = fetch_all(conn, "plugin_versions_of", params) if plugin else []
    if plugin is None:
        raise NotFound(f"plugin {plugin_id} not found")
    rows.sort(key=lambda r: manifest.version_key(r["version"]), reverse=True)
    return {
        "id": plugin["id"],
        "name": plugin["name"],
        "latestVersion": manifest.latest([r["version"] for r in rows]),
        "grants": list(plugin["grants"]),
        "createdBy": encode(plugin["created_by"]),
        "grantsSetBy": encode(plugin["grants_set_by"]),
        "createdAt": encode(plugin["created_at"]),
        "updatedAt": encode(plugin["updated_at"]),
        "versions": [_version_wire(plugin_id, r) for r in rows],
    }


def delete_plugin(caller: Caller, plugin_id: str) -> None:
    """Delete a plugin: every version, its bundles, its grants and its storage."""
    caller.require(MANAGE_ROLE)
    plugin_id = _plugin_id(plugin_id)
    params = {"account_id": caller.account_id, "plugin_id": plugin_id}
    with transaction() as conn:
        keys = [r["s3_key"] for r in fetch_all(conn, "plugin_bundle_keys", params)]
        if execute(conn, "plugin_delete", params) == 0:
            raise NotFound(f"plugin {plugin_id} not found")
    from chalicelib.plugins.sandbox import sandbox_pool

    sandbox_pool().discard(caller.account_id, plugin_id)
    bundles.delete(keys)
    storage.delete_all(caller.account_id, plugin_id)


def set_grants(caller: Caller, plugin_id: str, payload: Any) -> dict[str, Any]:
    """Replace the capabilities this account grants the plugin (each must be declared by a version)."""
    caller.require(MANAGE_ROLE)
    plugin_id = _plugin_id(plugin_id)
    body = Body(payload, allowed=("capabilities",))
    raw = body.payload.get("capabilities")
    if not isinstance(raw, list):
        body.fail('capabilities must be a list such as ["storage", "fetch:api.example.com"]', "capabilities")
    if len(raw) > 20:
        body.fail("capabilities has more than 20 entries", "capabilities")
    params = {"account_id": caller.account_id, "plugin_id": plugin_id}
    with transaction() as conn:
        versions = fetch_all(conn, "plugin_versions_of", params)
        if not versions:
            raise NotFound(f"plugin {plugin_id} not found")
        declared = {c for v in versions for c in v["capabilities"]}
        grants: list[str] = []
        for index, item in enumerate(raw):
            capability = manifest.parse_capability(item, f"capabilities[{index}]")
            if capability not in declared:
                raise Invalid(
                    f"capabilities[{index}]: {capability} is not declared by any version of {plugin_id} "
                    f"(declared: {', '.join(sorted(declared)) or 'none'})",
                    field=f"capabilities[{index}]",
                )
            if capability not in grants:
                grants.append(capability)
        # The grants belong to the account and stay when their maker leaves; they say who set them.
        row = fetch_one(conn, "plugin_set_grants", {**params, "grants": grants, "set_by": caller.acting_user_id})
    assert row is not None
    return {
        "id": row["id"],
        "grants": list(row["grants"]),
        "grantsSetBy": encode(row["grants_set_by"]),
        "updatedAt": encode(row["updated_at"]),
    }


# ---- invocation


def invoke(caller: Caller, plugin_id: str, route: str, payload: Any) -> dict[str, Any]:
    """POST /plugins/{id}/invoke/{math|kpi}: run the entry point of the pinned or latest version."""
    caller.require(INVOKE_ROLE)
    interface = manifest.ROUTE_INTERFACES[route]
    plugin_id = _plugin_id(plugin_id)
    if route == "math":
        body = Body(payload, allowed=("input", "version"))
        if not body.has("input"):
            body.fail("input is required (any JSON value, null included)", "input")
    else:
        body = Body(payload, allowed=("runSheetId", "laps", "params", "version"))
        if (body.payload.get("runSheetId") is not None) == body.has("laps"):  # a null runSheetId is no run sheet
            body.fail("send either runSheetId or laps", "runSheetId")
    pinned = manifest.parse_version(body.payload["version"]) if body.payload.get("version") is not None else None
    run_sheet_id = body.uuid("runSheetId", required=False) if route == "kpi" else None
    explicit_laps = _laps(body.payload["laps"]) if route == "kpi" and run_sheet_id is None else None

    params = {"account_id": caller.account_id, "plugin_id": plugin_id}
    with transaction() as conn:
        versions = fetch_all(conn, "plugin_versions_for_invoke", params)
        laps: list[dict[str, Any]] | None = explicit_laps
        if versions and run_sheet_id is not None:
            laps = _run_sheet_laps(conn, caller.account_id, run_sheet_id)
    if not versions:
        raise NotFound(f"plugin {plugin_id} not found")
    chosen = pinned or manifest.latest([v["version"] for v in versions])
    row = next((v for v in versions if v["version"] == chosen), None)
    if row is None:
        raise NotFound(f"plugin {plugin_id} has no version {chosen}")
    label = _label(plugin_id, row["version"])
    if interface not in row["interfaces"]:
        raise Invalid(
            f"{label} does not implement {interface} (its interfaces: {', '.join(row['interfaces'])})",
            field="version" if pinned else None,
        )

    if route == "math":
        plugin_input: Any = body.payload["input"]
    else:
        plugin_input = {"runSheetId": run_sheet_id, "laps": laps, "params": body.payload.get("params")}
    entry_point = row["manifest"].get("entryPoints", {}).get(interface, interface)
    # Deferred: the sandbox and the host bridge (~15 ms of imports) are not on a cold start's path.
    from chalicelib.plugins.capabilities import PluginHost
    from chalicelib.plugins.sandbox import InvokeRequest, sandbox_pool

    host = PluginHost(
        account_id=caller.account_id,
        plugin_id=plugin_id,
        declared=row["capabilities"],
        granted=row["grants"],
        local=settings().is_local,
        allow=settings().outbound_allow,
    )
    request = InvokeRequest(
        caller.account_id,
        plugin_id,
        row["version"],
        row["bundle_sha256"],
        label,
        entry_point,
        plugin_input,
        row["timeout_ms"],
        host.effective,
    )
    result = sandbox_pool().invoke(request, host, lambda: bundles.get(row["s3_key"], row["bundle_sha256"]))
    return {
        "output": result.output,
        "durationMs": round(result.duration_ms, 3),
        "version": row["version"],
        "compiled": result.compiled,
    }


def _run_sheet_laps(conn: Any, account_id: str, run_sheet_id: str) -> list[dict[str, Any]]:
    params = {"account_id": account_id, "run_sheet_id": run_sheet_id}
    if fetch_one(conn, "plugin_run_sheet_exists", params) is None:
        raise NotFound(f"run sheet {run_sheet_id} not found")
    rows = fetch_all(conn, "plugin_run_sheet_laps", {**params, "limit": limits.MAX_KPI_LAPS + 1})
    if len(rows) > limits.MAX_KPI_LAPS:
        raise TooLarge(f"run sheet {run_sheet_id} has more than {limits.MAX_KPI_LAPS} laps; send laps explicitly")
    return [LAPS.to_wire(r) for r in rows]


def _laps(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise Invalid("laps must be a list of lap objects", field="laps")
    if len(value) > limits.MAX_KPI_LAPS:
        raise Invalid(f"laps has more than {limits.MAX_KPI_LAPS} entries", field="laps")
    for index, lap in enumerate(value):
        if not isinstance(lap, dict):
            raise Invalid(f"laps[{index}] must be an object", field=f"laps[{index}]")
        for name in ("lapNumber", "lapTimeMs"):
            number = lap.get(name)
            if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 2**31 - 1:
                raise Invalid(f"laps[{index}].{name} must be a positive integer", field=f"laps[{index}].{name}")
    return value
