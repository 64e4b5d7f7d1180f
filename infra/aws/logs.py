"""`make logs STAGE=prod`: follow every function of a deployed stage together (API, workers, WebSocket).

The functions have stable names (`race-platform-<stage>-<LogicalId>`, infra/aws/template.py), so
their log groups are found by prefix; events of all of them are printed in time order, each line
naming its function. Works with the AWS CLI v1 too (which has no `aws logs tail`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from typing import Any

from infra.aws.template import function_name

POLL_S = 2.0


def log_groups(logs: Any, stage: str) -> list[str]:
    prefix = f"/aws/lambda/{function_name(stage, '')}"
    groups: list[str] = []
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix):
        groups.extend(group["logGroupName"] for group in page.get("logGroups", []))
    return sorted(groups)


def _line(group: str, stage: str, event: dict[str, Any]) -> str:
    when = dt.datetime.fromtimestamp(event["timestamp"] / 1000, dt.UTC).strftime("%H:%M:%S.%f")[:-3]
    function = group.removeprefix(f"/aws/lambda/{function_name(stage, '')}")
    return f"{when} {function:<20} {event['message'].rstrip()}"


def follow(
    logs: Any,
    stage: str,
    groups: list[str],
    *,
    since_ms: int,
    rounds: int | None = None,
    out: Callable[[str], None] = print,
) -> None:
    """Print new events of `groups` in time order every POLL_S seconds (`rounds`: stop after that many)."""
    start = {group: since_ms for group in groups}
    seen: set[str] = set()
    done = 0
    while rounds is None or done < rounds:
        batch: list[tuple[int, str]] = []
        for group in groups:
            pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group, startTime=start[group])
            for page in pages:
                for event in page.get("events", []):
                    if event["eventId"] in seen:
                        continue  # startTime is inclusive: the last millisecond comes back
                    seen.add(event["eventId"])
                    start[group] = max(start[group], event["timestamp"])
                    batch.append((event["timestamp"], _line(group, stage, event)))
        for _, line in sorted(batch):
            out(line)
        done += 1
        if rounds is None or done < rounds:
            time.sleep(POLL_S)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.aws.logs", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True, choices=("dev", "prod"))
    parser.add_argument("--since-minutes", type=int, default=10, help="start this far back (default 10)")
    args = parser.parse_args(argv)
    import boto3

    logs = boto3.client("logs")
    groups = log_groups(logs, args.stage)
    if not groups:
        print(
            f"no log groups /aws/lambda/{function_name(args.stage, '')}*: is the {args.stage} stack deployed "
            "in this account and region (AWS_PROFILE, AWS_REGION)?",
            file=sys.stderr,
        )
        return 1
    print(f"following {len(groups)} functions ({', '.join(g.rsplit('-', 1)[-1] for g in groups)}); Ctrl-C stops")
    since_ms = int((time.time() - args.since_minutes * 60) * 1000)
    try:
        follow(logs, args.stage, groups, since_ms=since_ms)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
