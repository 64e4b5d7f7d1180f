"""The npm tools of tools/npm/package.json (Spectral, Redocly, Swagger UI), installed once into .cache/npm.

The tests and the docs build call `install()`; it runs `npm ci` only when the package files changed,
so a warm run costs nothing and a fresh machine (CI) pays one install (about 20 s, 95 MB).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tools" / "npm"
CACHE = Path(os.environ.get("RACE_NPM_CACHE", ROOT / ".cache" / "npm"))
_OFFLINE = re.compile(r"ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNREFUSED|ECONNRESET|ENETUNREACH|network", re.IGNORECASE)


class RegistryUnreachable(RuntimeError):
    """npm could not reach its registry (the only reason a caller may skip instead of failing)."""


def _digest() -> str:
    files = (PACKAGE / "package.json", PACKAGE / "package-lock.json")
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def install() -> Path:
    """The node_modules folder with every tool, installed from the npm registry if not yet cached."""
    modules = CACHE / "node_modules"
    stamp = CACHE / ".installed"
    if stamp.exists() and stamp.read_text() == _digest() and modules.is_dir():
        return modules
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm (Node.js 20+) is required to install tools/npm/package.json")
    CACHE.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(PACKAGE / name, CACHE / name)
    # --ignore-scripts: none of these tools needs a postinstall step (one would only send telemetry).
    command = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
    done = subprocess.run(command, cwd=CACHE, capture_output=True, text=True, timeout=600, check=False)
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        if _OFFLINE.search(output):
            raise RegistryUnreachable(f"the npm registry is unreachable: {output[-500:]}")
        raise RuntimeError(f"npm ci failed ({done.returncode}):\n{output}")
    if output:
        print(output, file=sys.stderr)  # never swallowed: npm says little at --loglevel=error
    stamp.write_text(_digest())
    return modules


def tool(name: str) -> Path:
    """An installed tool's command, e.g. tool("spectral")."""
    return install() / ".bin" / name
