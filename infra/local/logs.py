"""`make logs`: follow the local stack's log, JSON lines shown as readable one-liners."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import IO, Any

_SKIP = {"level", "message", "timestamp", "service", "location", "sampling_rate", "cold_start", "xray_trace_id"}


class Tee:
    """A text stream that writes to the terminal and to the stack's log file (make dev)."""

    def __init__(self, stream: IO[str], file: IO[str]) -> None:
        self.stream = stream
        self.file = file

    def write(self, text: str) -> int:
        self.file.write(text)
        self.file.flush()
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()
        self.file.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def readable(line: str) -> str:
    """One log line for a human: JSON (Powertools, EMF) becomes `time LEVEL message key=value ...`."""
    text = line.rstrip("\n")
    if not text.startswith("{"):
        return text
    try:
        record = json.loads(text)
    except ValueError:
        return text
    if "_aws" in record:
        metrics = record["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        return "metric " + " ".join(f"{m['Name']}={record.get(m['Name'])}" for m in metrics)
    extras = " ".join(f"{k}={v}" for k, v in record.items() if k not in _SKIP)
    stamp = str(record.get("timestamp", ""))[11:23]
    return f"{stamp} {record.get('level', ''):<7} {record.get('message', '')} {extras}".rstrip()


def follow(path: Path, from_start: bool = False) -> int:
    """Print the log's recent lines, then new ones as they come (Ctrl-C stops)."""
    if not path.exists():
        print(f"no log yet at {path}: start the stack with ./setup.sh or make dev", file=sys.stderr)
        return 1
    with open(path, errors="replace") as log:
        if not from_start:
            lines = log.readlines()[-50:]
            for line in lines:
                print(readable(line))
        try:
            while True:
                line = log.readline()
                if line:
                    print(readable(line), flush=True)
                else:
                    time.sleep(0.2)
        except KeyboardInterrupt:
            return 0
