"""Plugins through the API: upload and immutability, roles, the example plugins, the compile cache,
capabilities (declared + granted), limits, and isolation between accounts."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.conftest import Api, Stack, new_account, token_for

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"


def example(name: str) -> dict[str, Any]:
    """The upload body of an example plugin: its plugin.json and its built bundle."""
    folder = EXAMPLES / name
    return {
        "manifest": json.loads((folder / "plugin.json").read_text()),
        "bundle": (folder / "dist" / "plugin.js").read_text(),
    }


def plugin(
    source: str,
    *,
    plugin_id: str | None = None,
    version: str = "1.0.0",
    interfaces: tuple[str, ...] = ("math",),
    **manifest: Any,
) -> dict[str, Any]:
    return {
        "manifest": {
            "id": plugin_id or f"p-{uuid.uuid4().hex[:8]}",
            "version": version,
            "name": "Test",
            "interfaces": list(interfaces),
            **manifest,
        },
        "bundle": source,
    }


def ok(answer: Any, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json() if answer.text else None


def failure(answer: Any, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    return answer.json()["error"]  # type: ignore[no-any-return]


def _member(stack: Stack, account_id: str, role: str) -> Api:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.test"
    with psycopg.connect(stack.database_url) as conn:
        user_id = conn.execute(
            "INSERT INTO users (email, name) VALUES (%s, %s) RETURNING id", (email, role.title())
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("INSERT INTO memberships VALUES (%s, %s, %s)", (account_id, user_id, role))
    return Api(stack.api_url, token_for(email))


class Team:
    """A fresh account: an admin, an engineer and a viewer."""

    def __init__(self, stack: Stack) -> None:
        email, self.account_id = new_account("admin")
        self.stack = stack
        self.admin = Api(stack.api_url, token_for(email))
        self.engineer = _member(stack, self.account_id, "engineer")
        self.viewer = _member(stack, self.account_id, "viewer")

    def upload(self, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
        return ok(self.admin.post("/plugins", body), status)  # type: ignore[no-any-return]

    def invoke(self, plugin_id: str, body: dict[str, Any], route: str = "math", who: Api | None = None) -> Any:
        return (who or self.viewer).post(f"/plugins/{plugin_id}/invoke/{route}", body)

    def grant(self, plugin_id: str, *capabilities: str) -> Any:
        return self.admin.call("PUT", f"/plugins/{plugin_id}/grants", {"capabilities": list(capabilities)})


@pytest.fixture()
def team(stack: Stack) -> Team:
    return Team(stack)


@pytest.fixture()
def rival(stack: Stack) -> Team:
    return Team(stack)


# ---- upload and management


def test_upload_list_get_and_delete(team: Team, stack: Stack) -> None:
    body = example("fuel-per-lap")
    version = team.upload(body)
    assert version["id"] == "fuel-per-lap" and version["version"] == "1.0.0"
    assert version["interfaces"] == ["math"] and version["timeoutMs"] == 500
    assert len(version["bundleSha256"]) == 64 and version["bundleBytes"] == len(body["bundle"].encode())

    # The bundle is in S3 under account / id / version / SHA-256.
    import boto3

    from chalicelib.config import settings

    s3 = boto3.client("s3", endpoint_url=stack.aws_endpoint_url, region_name="us-east-1")
    key = f"{team.account_id}/fuel-per-lap/1.0.0/{version['bundleSha256']}.js"
    stored = s3.get_object(Bucket=settings().plugins_bucket, Key=key)["Body"].read().decode()
    assert stored == body["bundle"]

    # Re-uploading the same version: identical -> 200, other content -> 409 (immutable).
    assert team.upload(body, 200) == version
    changed = {**body, "bundle": body["bundle"] + "\n// changed\n"}
    assert "immutable" in failure(team.admin.post("/plugins", changed), 409)["message"]

    newer = {"manifest": {**body["manifest"], "version": "1.1.0-beta.1"}, "bundle": body["bundle"]}
    team.upload(newer)
    listed = ok(team.viewer.get("/plugins"))
    assert listed["nextCursor"] is None
    (item,) = listed["items"]
    # A pre-release is not "latest" while a release exists.
    assert item["id"] == "fuel-per-lap" and item["latestVersion"] == "1.0.0" and item["versionCount"] == 2
    detail = ok(team.viewer.get("/plugins/fuel-per-lap"))
    assert [v["version"] for v in detail["versions"]] == ["1.1.0-beta.1", "1.0.0"]
    assert detail["grants"] == []

    assert team.engineer.delete("/plugins/fuel-per-lap").status_code == 403
    assert team.admin.delete("/plugins/fuel-per-lap").status_code == 204
    failure(team.viewer.get("/plugins/fuel-per-lap"), 404)
    failure(team.invoke("fuel-per-lap", {"input": {}}), 404)
    assert (
        s3.list_objects_v2(Bucket=settings().plugins_bucket, Prefix=f"{team.account_id}/fuel-per-lap/").get("KeyCount")
        == 0
    )


def test_plugin_list_pages_with_a_cursor(team: Team) -> None:
    for name in ("a-one", "b-two", "c-three"):
        team.upload(plugin("var plugin = {math: (x) => x}", plugin_id=name))
    first = ok(team.viewer.get("/plugins?limit=2"))
    assert [p["id"] for p in first["items"]] == ["a-one", "b-two"]
    second = ok(team.viewer.get(f"/plugins?limit=2&cursor={first['nextCursor']}"))
    assert [p["id"] for p in second["items"]] == ["c-three"] and second["nextCursor"] is None
    assert failure(team.viewer.get("/plugins?sort=id"), 400)["field"] == "sort"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "Fuel_Per_Lap"}, "manifest.id"),
        ({"version": "1.0"}, "manifest.version"),
        ({"version": None}, "manifest.version"),
        ({"name": ""}, "manifest.name"),
        ({"interfaces": ["math", "render"]}, "manifest.interfaces[1]"),
        ({"interfaces": []}, "manifest.interfaces"),
        ({"capabilities": ["storage", "files"]}, "manifest.capabilities[1]"),
        ({"capabilities": ["fetch:"]}, "manifest.capabilities[0]"),
        ({"timeoutMs": 6000}, "manifest.timeoutMs"),
        ({"entryPoints": {"kpiProcessor": "kpi"}}, "manifest.entryPoints.kpiProcessor"),
        ({"author": "someone"}, "manifest.author"),
    ],
)
def test_manifest_errors_name_the_field(team: Team, change: dict[str, Any], field: str) -> None:
    body = example("fuel-per-lap")
    body["manifest"].update(change)
    error = failure(team.admin.post("/plugins", body), 400)
    assert error["field"] == field, error
    assert team.admin.get("/plugins").json()["items"] == []


@pytest.mark.parametrize(
    ("bundle", "words"),
    [
        ("var plugin = {math(x) {", "SyntaxError"),
        ("throw new Error('no config')", "no config"),
        ("var notPlugin = {}", "global object named plugin"),
        ("var plugin = {kpiProcessor() {}}", "plugin.math is not a function"),
        ("var plugin = {math() {}}; while (true) {}", "did not finish"),
    ],
)
def test_a_bundle_that_does_not_load_is_refused_at_upload(team: Team, bundle: str, words: str) -> None:
    error = failure(team.admin.post("/plugins", plugin(bundle, timeoutMs=200)), 400)
    assert error["field"] == "bundle" and words in error["message"], error


def test_size_limits(team: Team) -> None:
    big = "var plugin = {math: () => 1};\n//" + "x" * (1024 * 1024)
    assert "bundle" in failure(team.admin.post("/plugins", plugin(big)), 413)["message"]
    huge_body = plugin("var plugin = {math: () => 1}", description="x" * 100)
    huge_body["manifest"]["description"] = "x" * 600
    assert failure(team.admin.post("/plugins", huge_body), 400)["field"] == "manifest.description"


def test_only_admins_manage_plugins_and_viewers_invoke(team: Team) -> None:
    body = plugin("var plugin = {math: (x) => x * 2}")
    for who in (team.engineer, team.viewer):
        assert who.post("/plugins", body).status_code == 403
    plugin_id = team.upload(body)["id"]
    for who in (team.engineer, team.viewer):
        assert who.call("PUT", f"/plugins/{plugin_id}/grants", {"capabilities": []}).status_code == 403
        assert ok(team.invoke(plugin_id, {"input": 21}, who=who))["output"] == 42


# ---- the example plugins


def test_example_fuel_per_lap(team: Team) -> None:
    team.upload(example("fuel-per-lap"))
    first = ok(
        team.invoke(
            "fuel-per-lap",
            {"input": {"fuelLevelsL": [100.0, 96.8, 93.5, 90.3, 120.0, 116.9], "tankCapacityL": 120, "stintLaps": 30}},
        )
    )
    assert first["output"] == {
        "lapsCounted": 4,
        "fuelPerLapL": 3.2,
        "minFuelPerLapL": 3.1,
        "maxFuelPerLapL": 3.3,
        "lapsPerTank": 37,
        "fuelForStintL": 99.2,
    }
    assert first["version"] == "1.0.0" and first["compiled"] is True and first["durationMs"] >= 0
    assert ok(team.invoke("fuel-per-lap", {"input": {"fuelLevelsL": [50, 47]}}))["compiled"] is False
    error = failure(team.invoke("fuel-per-lap", {"input": {"fuelLevelsL": [1]}}), 422)
    assert error["code"] == "plugin_error"
    assert "TypeError: fuelLevelsL must list at least two fuel readings" in error["message"]


def _run_sheet_with_laps(team: Team, lap_times_ms: list[int], in_laps: set[int], out_laps: set[int]) -> str:
    owner = team.admin
    event = ok(owner.post("/events", {"name": "Sebring 12", "track": "Sebring"}), 201)
    session = ok(owner.post("/sessions", {"eventId": event["id"], "name": "Race", "type": "race"}), 201)
    car = ok(owner.post("/cars", {"eventId": event["id"], "number": "7", "class": "GTD"}), 201)
    sheet = ok(owner.post("/run-sheets", {"sessionId": session["id"], "carId": car["id"]}), 201)
    with psycopg.connect(team.stack.database_url) as conn:
        for number, lap_time_ms in reversed(list(enumerate(lap_times_ms, start=1))):
            conn.execute(
                "INSERT INTO laps (account_id, run_sheet_id, session_id, car_id, lap_number, lap_time_ms, "
                "is_in_lap, is_out_lap) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    team.account_id,
                    sheet["id"],
                    session["id"],
                    car["id"],
                    number,
                    lap_time_ms,
                    number in in_laps,
                    number in out_laps,
                ),
            )
    return str(sheet["id"])


STINT_LAPS_MS = [
    130_000,
    101_000,
    101_200,
    101_400,
    101_600,
    112_000,
    101_800,
    125_000,  # stint 1
    131_000,
    100_500,
    100_550,
    100_600,
    100_650,
    100_700,
]  # stint 2


def test_example_stint_pace_on_a_run_sheet_and_on_explicit_laps(team: Team) -> None:
    team.upload(example("stint-pace"))
    sheet_id = _run_sheet_with_laps(team, STINT_LAPS_MS, in_laps={8}, out_laps={1, 9})
    answer = ok(team.invoke("stint-pace", {"runSheetId": sheet_id}, "kpi"))
    stints = answer["output"]["stints"]
    assert [(s["stint"], s["firstLap"], s["lastLap"], s["lapsUsed"]) for s in stints] == [(1, 1, 8, 5), (2, 9, 14, 5)]
    assert stints[0]["avgLapMs"] == 101_400 and stints[0]["degradationMsPerLap"] == 162.2  # lap 6 is an outlier
    assert stints[1]["bestLapMs"] == 100_500 and stints[1]["degradationMsPerLap"] == 50.0
    assert answer["output"]["bestStint"] == 2 and answer["output"]["remembered"] is False

    laps = [
        {"lapNumber": n, "lapTimeMs": t, "isOutLap": n in (1, 9), "isInLap": n == 8}
        for n, t in enumerate(STINT_LAPS_MS, start=1)
    ]
    explicit = ok(team.invoke("stint-pace", {"laps": laps, "params": {"minLaps": 6}}, "kpi"))
    assert [s["avgLapMs"] for s in explicit["output"]["stints"]] == [None, None]

    # With storage granted, `remember` keeps the result per run sheet across calls.
    ok(team.grant("stint-pace", "storage"))
    remember = {"runSheetId": sheet_id, "params": {"remember": True}}
    first = ok(team.invoke("stint-pace", remember, "kpi"))["output"]
    assert first["remembered"] is True and first["previous"] is None
    assert ok(team.invoke("stint-pace", remember, "kpi"))["output"]["previous"] == stints


def test_kpi_input_errors(team: Team, rival: Team) -> None:
    team.upload(example("stint-pace"))
    assert failure(team.invoke("stint-pace", {}, "kpi"), 400)["field"] == "runSheetId"
    assert failure(team.invoke("stint-pace", {"runSheetId": "x"}, "kpi"), 400)["field"] == "runSheetId"
    # Found by schemathesis: a null runSheetId without laps answered 500.
    assert failure(team.invoke("stint-pace", {"runSheetId": None}, "kpi"), 400)["field"] == "runSheetId"
    bad_lap = {"laps": [{"lapNumber": 1, "lapTimeMs": 90_000}, {"lapNumber": 2}]}
    assert failure(team.invoke("stint-pace", bad_lap, "kpi"), 400)["field"] == "laps[1].lapTimeMs"
    # Another account's run sheet is 404, like a missing one.
    rival_sheet = _run_sheet_with_laps(rival, [100_000, 100_100], set(), set())
    failure(team.invoke("stint-pace", {"runSheetId": rival_sheet}, "kpi"), 404)
    failure(team.invoke("stint-pace", {"runSheetId": str(uuid.uuid4())}, "kpi"), 404)
    # The plugin declares kpiProcessor only.
    assert "does not implement math" in failure(team.invoke("stint-pace", {"input": 1}), 400)["message"]


def test_math_input_errors(team: Team) -> None:
    plugin_id = team.upload(plugin("var plugin = {math: (x) => x}"))["id"]
    assert failure(team.invoke(plugin_id, {}), 400)["field"] == "input"
    assert failure(team.invoke(plugin_id, {"input": 1, "extra": 2}), 400)["field"] == "extra"
    assert failure(team.invoke(plugin_id, {"input": 1, "version": "one"}), 400)["field"] == "version"
    assert "no version 9.9.9" in failure(team.invoke(plugin_id, {"input": 1, "version": "9.9.9"}), 404)["message"]
    failure(team.invoke("no-such-plugin", {"input": 1}), 404)
    failure(team.invoke("Not A Plugin Id", {"input": 1}), 404)
    assert ok(team.invoke(plugin_id, {"input": None}))["output"] is None


# ---- the compile cache


def test_second_call_hits_the_cache_and_a_new_version_misses(team: Team) -> None:
    plugin_id = f"cache-{uuid.uuid4().hex[:6]}"
    team.upload(plugin("var plugin = {math: () => 'v1'}", plugin_id=plugin_id))
    calls = [ok(team.invoke(plugin_id, {"input": None})) for _ in range(3)]
    assert [(c["output"], c["compiled"]) for c in calls] == [("v1", True), ("v1", False), ("v1", False)]

    team.upload(plugin("var plugin = {math: () => 'v2'}", plugin_id=plugin_id, version="1.1.0"))
    new = [ok(team.invoke(plugin_id, {"input": None})) for _ in range(2)]
    assert [(c["output"], c["version"], c["compiled"]) for c in new] == [("v2", "1.1.0", True), ("v2", "1.1.0", False)]
    pinned = ok(team.invoke(plugin_id, {"input": None, "version": "1.0.0"}))
    assert (pinned["output"], pinned["version"], pinned["compiled"]) == ("v1", "1.0.0", False)


def test_the_same_bundle_in_two_accounts_gets_two_contexts(team: Team, rival: Team) -> None:
    body = plugin("let calls = 0; var plugin = {math: () => ++calls}", plugin_id="counter")
    team.upload(body)
    rival.upload(body)
    assert [ok(team.invoke("counter", {"input": None}))["output"] for _ in range(3)] == [1, 2, 3]
    first_rival = ok(rival.invoke("counter", {"input": None}))
    assert (first_rival["output"], first_rival["compiled"]) == (1, True)


# ---- capabilities


def test_storage_declared_but_not_granted_is_refused_then_granted_works(team: Team) -> None:
    source = """var plugin = { async math(input) {
        if (input.put !== undefined) await host.storage.put('lap-target', input.put);
        return { value: await host.storage.get('lap-target'), capabilities: host.capabilities() };
    } };"""
    plugin_id = team.upload(plugin(source, capabilities=["storage"]))["id"]
    error = failure(team.invoke(plugin_id, {"input": {"put": 101_500}}), 422)
    assert error["code"] == "plugin_capability_refused"
    assert "storage is declared but not granted" in error["message"]
    assert f"PUT /plugins/{plugin_id}/grants" in error["message"]

    assert ok(team.grant(plugin_id, "storage"))["grants"] == ["storage"]
    assert ok(team.viewer.get(f"/plugins/{plugin_id}"))["grants"] == ["storage"]
    answer = ok(team.invoke(plugin_id, {"input": {"put": 101_500}}))
    assert answer["output"] == {"value": 101_500, "capabilities": ["storage"]}
    assert ok(team.invoke(plugin_id, {"input": {}}))["output"]["value"] == 101_500

    # Revoking takes effect on the next call, even with the context cached.
    ok(team.grant(plugin_id))
    assert failure(team.invoke(plugin_id, {"input": {}}), 422)["code"] == "plugin_capability_refused"


def test_grants_must_be_declared_capabilities(team: Team) -> None:
    plugin_id = team.upload(plugin("var plugin = {math: () => 1}", capabilities=["storage"]))["id"]
    error = failure(team.grant(plugin_id, "storage", "fetch:api.weather.example"), 400)
    assert error["field"] == "capabilities[1]" and "not declared" in error["message"]
    assert failure(team.grant(plugin_id, "root"), 400)["field"] == "capabilities[0]"
    assert failure(team.admin.call("PUT", f"/plugins/{plugin_id}/grants", {"grants": []}), 400)["field"] == "grants"


def test_a_capability_used_but_not_declared_is_refused(team: Team) -> None:
    source = "var plugin = {math: async () => host.storage.get('x')}"
    plugin_id = team.upload(plugin(source))["id"]
    error = failure(team.invoke(plugin_id, {"input": None}), 422)
    assert error["code"] == "plugin_capability_refused" and "storage is not declared" in error["message"]


@pytest.fixture()
def weather_server() -> Iterator[str]:
    """A tiny HTTP server on loopback, allow-listed in OUTBOUND_ALLOW."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"trackTempC": 41.5, "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    from tests.webhook_receiver import allow_outbound

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    allow_outbound(server.server_address[1])  # loopback needs OUTBOUND_ALLOW in every stage
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_reaches_granted_hosts_only(team: Team, weather_server: str) -> None:
    source = """var plugin = { async math(input) {
        const answer = await host.fetch(input.url);
        return { status: answer.status, data: await answer.json() };
    } };"""
    plugin_id = team.upload(plugin(source, capabilities=[f"fetch:{weather_server}", "fetch:169.254.169.254"]))["id"]
    url = f"http://{weather_server}/track?at=sebring"
    assert failure(team.invoke(plugin_id, {"input": {"url": url}}), 422)["code"] == "plugin_capability_refused"
    ok(team.grant(plugin_id, f"fetch:{weather_server}", "fetch:169.254.169.254"))
    answer = ok(team.invoke(plugin_id, {"input": {"url": url}}))
    assert answer["output"] == {"status": 200, "data": {"trackTempC": 41.5, "path": "/track?at=sebring"}}

    port = weather_server.split(":")[1]
    other_host = failure(team.invoke(plugin_id, {"input": {"url": f"http://localhost:{port}/"}}), 422)
    assert "fetch:localhost is not declared" in other_host["message"]
    metadata = failure(team.invoke(plugin_id, {"input": {"url": "http://169.254.169.254/latest/meta-data/"}}), 422)
    assert "cloud metadata" in metadata["message"]


def test_a_plugin_granted_the_emulator_cannot_reach_it(team: Team, stack: Stack) -> None:
    """STAGE=local, fetch:127.0.0.1:<emulator port> declared and granted: loopback is refused all the same."""
    from urllib.parse import urlsplit

    emulator = urlsplit(stack.aws_endpoint_url)
    target = f"{emulator.hostname}:{emulator.port}"
    source = "var plugin = { async math(input) { return (await host.fetch(input)).status; } };"
    plugin_id = team.upload(plugin(source, capabilities=[f"fetch:{target}"]))["id"]
    ok(team.grant(plugin_id, f"fetch:{target}"))
    error = failure(team.invoke(plugin_id, {"input": f"http://{target}/"}), 422)
    assert error["code"] == "plugin_capability_refused" and "loopback" in error["message"], error


def test_a_header_that_is_not_latin1_is_a_422_and_the_next_call_works(team: Team, weather_server: str) -> None:
    from chalicelib.plugins.sandbox import sandbox_pool

    source = """var plugin = { async math(input) {
        const answer = await host.fetch(input.url, { headers: { 'X-Driver': input.driver } });
        return answer.status;
    } };"""
    plugin_id = team.upload(plugin(source, capabilities=[f"fetch:{weather_server}"]))["id"]
    ok(team.grant(plugin_id, f"fetch:{weather_server}"))
    url = f"http://{weather_server}/"
    assert ok(team.invoke(plugin_id, {"input": {"url": url, "driver": "M\u00fcller"}}))["output"] == 200
    worker = sandbox_pool()._workers[team.account_id].process.pid
    for driver in ("\u017dilka", "\U0001f3c1", "a\r\nHost: evil"):
        error = failure(team.invoke(plugin_id, {"input": {"url": url, "driver": driver}}), 422)
        assert error["code"] == "plugin_capability_refused" and "header 'X-Driver'" in error["message"], error
        assert ok(team.invoke(plugin_id, {"input": {"url": url, "driver": "Kr\u00fcger"}}))["output"] == 200
    assert sandbox_pool()._workers[team.account_id].process.pid == worker  # the same worker served them all


def test_a_dripping_fetch_ends_within_the_time_limit_and_the_accounts_other_calls_are_served(team: Team) -> None:
    """The peer drips one header byte every 0.2 s for a minute: timeoutMs (host calls included) still ends it."""
    import concurrent.futures
    import time

    from tests.webhook_receiver import Answer, Receiver

    receiver = Receiver().start()
    receiver.answer = Answer(200, drip_s=0.2)
    target = f"127.0.0.1:{receiver.port}"
    source = """var plugin = { async math(input) {
        if (input === 'quick') return 'served';
        const answer = await host.fetch(input, { method: 'POST', body: '{}' });
        return answer.status;
    } };"""
    plugin_id = team.upload(plugin(source, capabilities=[f"fetch:{target}"], timeoutMs=1000))["id"]
    ok(team.grant(plugin_id, f"fetch:{target}"))
    assert ok(team.invoke(plugin_id, {"input": "quick"}))["output"] == "served"  # compiled: timing is the call's
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            started = time.monotonic()
            dripping = pool.submit(team.invoke, plugin_id, {"input": receiver.url})
            receiver.wait_for(1)
            quick = pool.submit(team.invoke, plugin_id, {"input": "quick"}, "math", team.engineer)
            error = failure(dripping.result(), 422)
            elapsed_s = time.monotonic() - started
            assert ok(quick.result())["output"] == "served"
    finally:
        receiver.stop()
    assert error["code"] in ("plugin_timeout", "plugin_error"), error
    assert elapsed_s < 1.0 + 4.0, elapsed_s  # timeoutMs plus a margin for a loaded machine; the drip lasts 60 s


# ---- limits and isolation


def test_limits_fail_the_call_but_not_the_next_one_or_another_account(team: Team, rival: Team) -> None:
    source = """let calls = 0; var plugin = { math(input) {
        calls++;
        if (input === 'loop') while (true) {}
        if (input === 'memory') { const keep = []; while (true) keep.push(new Array(100000).fill(calls)); }
        if (input === 'buffers') { const keep = []; while (true) keep.push(new Float64Array(1 << 20)); }
        if (input === 'output') return 'x'.repeat(2 * 1024 * 1024);
        if (input === 'throw') throw new RangeError('stint length must be positive');
        return { calls };
    } };"""
    # Generous time for the memory cases (only the memory limit should stop them), short for the loop.
    team.upload(plugin(source, plugin_id="limits", timeoutMs=5000))
    team.upload(plugin(source, plugin_id="limits-fast", timeoutMs=200))
    rival.upload(plugin(source, plugin_id="limits", timeoutMs=5000))
    assert ok(rival.invoke("limits", {"input": "ok"}))["output"] == {"calls": 1}

    cases = {
        ("limits-fast", "loop"): ("plugin_timeout", "timed out after 200 ms"),
        ("limits", "memory"): ("plugin_memory_limit", "memory limit of 64 MB"),
        ("limits", "buffers"): ("plugin_memory_limit", "memory limit of 64 MB"),
        ("limits", "output"): ("plugin_output_too_large", "output"),
        ("limits", "throw"): ("plugin_error", "RangeError: stint length must be positive"),
    }
    for (plugin_id, value), (code, words) in cases.items():
        error = failure(team.invoke(plugin_id, {"input": value}), 422)
        assert error["code"] == code and words in error["message"], (value, error)
        after = ok(team.invoke(plugin_id, {"input": "ok"}))
        assert "calls" in after["output"], (value, after)
    # The rival's context never noticed.
    assert ok(rival.invoke("limits", {"input": "ok"}))["output"] == {"calls": 2}


def test_another_accounts_plugin_ids_are_404(team: Team, rival: Team) -> None:
    team.upload(plugin("var plugin = {math: () => 'mine'}", plugin_id="secret-model", capabilities=["storage"]))
    for answer in (
        rival.admin.get("/plugins/secret-model"),
        rival.invoke("secret-model", {"input": None}),
        rival.invoke("secret-model", {"laps": []}, "kpi"),
        rival.grant("secret-model", "storage"),
        rival.admin.delete("/plugins/secret-model"),
    ):
        failure(answer, 404)
    assert rival.admin.get("/plugins").json()["items"] == []
    assert ok(team.invoke("secret-model", {"input": None}))["output"] == "mine"


def test_a_plugin_cannot_reach_another_accounts_storage(team: Team, rival: Team) -> None:
    source = """var plugin = { async math(input) {
        if (input.put) await host.storage.put(input.key, input.put);
        return host.storage.get(input.key);
    } };"""
    for side in (team, rival):
        side.upload(plugin(source, plugin_id="notes", capabilities=["storage"]))
        ok(side.grant("notes", "storage"))
    ok(team.invoke("notes", {"input": {"key": "setup", "put": "team secret"}}))
    assert ok(rival.invoke("notes", {"input": {"key": "setup"}}))["output"] is None
    # Keys are only keys: no way to name the other account's partition.
    for key in (
        f"plugin-storage#{team.account_id}#notes",
        f"../{team.account_id}/notes/setup",
        f"k#setup#{team.account_id}",
    ):
        assert ok(rival.invoke("notes", {"input": {"key": key}}))["output"] is None
    assert ok(team.invoke("notes", {"input": {"key": "setup"}}))["output"] == "team secret"


def test_escape_attempts_through_the_api_are_contained(team: Team) -> None:
    source = """var plugin = { async math() {
        const seen = {
            process: typeof process, require: typeof require, fetch: typeof fetch, setTimeout: typeof setTimeout,
            fnProcess: Function('return typeof process')(),
        };
        try { await import('fs'); seen.importFs = 'loaded'; } catch (e) { seen.importFs = 'refused'; }
        try { Object.prototype.polluted = true; } catch (e) {}
        seen.polluted = ({}).polluted === true;
        return seen;
    } };"""
    plugin_id = team.upload(plugin(source))["id"]
    for _ in range(2):
        assert ok(team.invoke(plugin_id, {"input": None}))["output"] == {
            "process": "undefined",
            "require": "undefined",
            "fetch": "undefined",
            "setTimeout": "undefined",
            "fnProcess": "undefined",
            "importFs": "refused",
            "polluted": False,
        }


def test_a_plugin_that_breaks_v8_only_loses_its_own_accounts_sandbox(team: Team, rival: Team) -> None:
    # Filling a huge sparse array grows a hash table inside one C++ built-in, which no V8 limit
    # interrupts: left alone it aborts the process ("Fatal JavaScript out of memory").
    source = """var plugin = { math(input) {
        if (input === 'crash') { const a = []; a.length = 2 ** 30; a.fill(1.5); }
        return 'alive';
    } };"""
    for side in (team, rival):
        side.upload(plugin(source, plugin_id="crasher", timeoutMs=1000))
        assert ok(side.invoke("crasher", {"input": None}))["compiled"] is True
    # Depending on how far V8 gets: the worker aborts, outgrows its memory allowance, or runs out
    # of time; in each case only this account's sandbox is replaced.
    error = failure(team.invoke("crasher", {"input": "crash"}), 422)
    assert error["code"] in ("plugin_memory_limit", "plugin_timeout"), error
    again = ok(team.invoke("crasher", {"input": None}))
    assert (again["output"], again["compiled"]) == ("alive", True)  # a fresh sandbox for this account
    untouched = ok(rival.invoke("crasher", {"input": None}))
    assert (untouched["output"], untouched["compiled"]) == ("alive", False)  # the rival's cache survived
