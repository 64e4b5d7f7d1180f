"""Named, parameterised SQL: every `store/sql/*.sql` file holds blocks that start `-- name: <name>`."""

from __future__ import annotations

import functools
import re
from pathlib import Path

SQL_DIR = Path(__file__).with_name("sql")
_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    queries: dict[str, str] = {}
    parts = _NAME.split(text)
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body.strip()
    return queries


@functools.cache
def queries() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(SQL_DIR.glob("*.sql")):
        for name, text in parse(path.read_text()).items():
            if name in found:
                raise ValueError(f"query {name!r} is defined twice (again in {path.name})")
            found[name] = text
    return found


def query(name: str) -> str:
    return queries()[name]
