"""Cold start: a fresh process that imports `app` and answers GET /events, vs one that only imports
psycopg and runs the route's SQL."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from bench.common import REPO, Stack, account_id_for, emit, fmt, local_stack, token_for

TARGETS = {"cold_start_events": "<= 1.5x"}
WHY_BEHIND = {
    "cold_start_events": "Borderline: 1.4-1.6x across runs on Python 3.11, 1.7x on 3.12 (Lambda's runtime "
    "since #18; its imports cost ~15-20% more CPU). `import app` (~65-95 ms: Chalice ~22 ms, the "
    "standard library's logging/re/dataclasses/typing, our blueprints) comes on top of what the floor does; "
    "heavy imports (psycopg, boto3, PyJWT, Powertools) are already deferred to the first request.",
}
RUNS = 7
REPORT = '{"status": '

# The child that plays a Lambda cold start: import the app, then one API Gateway event in-process.
APP_CHILD = r"""
import json, sys, time, uuid
for hidden in sys.argv[2:]:
    sys.modules[hidden] = None  # not in the Lambda bundle: the import fails there, so it does here
t0 = time.perf_counter()
from app import app
t1 = time.perf_counter()
token = sys.argv[1]
rid = str(uuid.uuid4())
headers = {"Authorization": "Bearer " + token, "Host": "bench.local", "Accept": "application/json"}
event = {
    "resource": "/events", "path": "/events", "httpMethod": "GET",
    "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
    "queryStringParameters": None, "multiValueQueryStringParameters": None,
    "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
    "requestContext": {
        "resourcePath": "/events", "httpMethod": "GET", "path": "/events", "stage": "local",
        "requestId": rid, "extendedRequestId": rid, "accountId": "123456789012", "apiId": "local",
        "requestTimeEpoch": int(time.time() * 1000), "domainName": "bench.local",
        "identity": {"sourceIp": "127.0.0.1", "userAgent": "bench"},
    },
}
class Context:
    function_name = "race-platform-local"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:race-platform-local"
    memory_limit_in_mb = 1024
    aws_request_id = rid
    log_group_name = "/aws/lambda/race-platform-local"
    log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 30000
response = app(event, Context())
t2 = time.perf_counter()
items = len(json.loads(response["body"])["items"]) if response["statusCode"] == 200 else response["body"]
print(json.dumps({"status": response["statusCode"], "items": items, "import_s": t1 - t0, "answer_s": t2 - t1}),
      flush=True)
"""

# The floor: the least a process can do to answer the same question.
FLOOR_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import psycopg
with psycopg.connect(sys.argv[1]) as conn:
    rows = conn.execute(sys.argv[2], (sys.argv[3],)).fetchall()
print(json.dumps({"status": 200, "items": len(rows), "import_s": 0, "answer_s": time.perf_counter() - t0}),
      flush=True)
"""


def events_sql() -> str:
    """The SQL GET /events runs (columns, scope, keyset order, page size + 1), as plain text."""
    from chalicelib.domain.listing import DEFAULT_LIMIT
    from chalicelib.domain.records import EVENTS

    columns = ", ".join(f.column for f in EVENTS.fields)
    order = ", ".join(EVENTS.order)
    return f"SELECT {columns} FROM events WHERE account_id = %s ORDER BY {order} LIMIT {DEFAULT_LIMIT + 1}"


def timed_child(code: str, args: list[str], env: dict[str, str]) -> tuple[float, dict[str, object]]:
    """Wall time from spawn to the answer line, and the child's own report."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    other: list[str] = []  # the app's own log lines (Powertools logs to stdout)
    for line in child.stdout:
        if line.startswith(REPORT):
            break
        other.append(line)
    elapsed = time.perf_counter() - started
    _, err = child.communicate(timeout=30)
    if not line.startswith(REPORT):
        raise RuntimeError(f"child failed (exit {child.returncode}): {''.join(other)[-500:]} {err[-500:]}")
    if other:
        print(f"(child also printed: {''.join(other)[:300]!r})", file=sys.stderr)
    report = json.loads(line)
    if report["status"] != 200:
        raise RuntimeError(f"child answered {report['status']}: {report['items']}")
    return elapsed, report


def not_shipped(candidates: tuple[str, ...] = ("cryptography",)) -> list[str]:
    """Packages in this virtualenv (for moto, cfn-lint...) that requirements.txt does not ship to Lambda
    but that the app's libraries would import if present (PyJWT loads `cryptography` when it can)."""
    import re
    from importlib import metadata

    wanted = [
        re.split(r"[<>=\[; ]", line.strip())[0]
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    shipped: set[str] = set()
    while wanted:
        name = wanted.pop().lower().replace("_", "-")
        if name in shipped:
            continue
        shipped.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        wanted += [re.split(r"[<>=\[; (]", r)[0] for r in requires if "extra ==" not in r]
    return [c for c in candidates if c not in shipped]


def child_env(stack: Stack) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    return {**keep, **stack.env()}


def main() -> None:
    with local_stack() as stack:
        token = token_for(stack)
        account_id = account_id_for(stack)
        env = child_env(stack)
        hidden = not_shipped()
        app_args = [token, *hidden]
        floor_args = [stack.database_url, events_sql(), account_id]
        # One discarded run each (bytecode caches, page cache), then interleaved runs against drift.
        timed_child(APP_CHILD, app_args, env)
        timed_child(FLOOR_CHILD, floor_args, env)
        ours, floor, imports, answers = [], [], [], []
        for _ in range(RUNS):
            elapsed, report = timed_child(APP_CHILD, app_args, env)
            ours.append(elapsed)
            imports.append(float(report["import_s"]))  # type: ignore[arg-type]
            answers.append(float(report["answer_s"]))  # type: ignore[arg-type]
            floor.append(timed_child(FLOOR_CHILD, floor_args, env)[0])
    ours_ms, floor_ms = statistics.median(ours) * 1000, statistics.median(floor) * 1000
    note = (
        f"median of {RUNS} fresh processes, spawn to answer; lower is better; "
        f"of ours: `import app` {fmt(statistics.median(imports) * 1000)} ms, "
        f"first request {fmt(statistics.median(answers) * 1000)} ms; packages the bundle lacks are hidden "
        f"from the child: {', '.join(hidden) or 'none'}"
    )
    emit("cold_start_events", ours_ms, floor_ms, "ms", note)


if __name__ == "__main__":
    main()
