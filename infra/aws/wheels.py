"""The runtime set for Lambda: requirements.lock (pinned, hashed) and the wheelhouse built from it.

    python -m infra.aws.wheels lock          # `make lock`: requirements.txt -> requirements.lock
    python -m infra.aws.wheels wheelhouse    # the lock's wheels in infra/aws/build/wheelhouse

pip resolves requirements.txt for the Lambda platform (CPython 3.12, manylinux_2_34_x86_64, wheels
only); every wheel it picks becomes one `name==version --hash=sha256:...` line. The wheelhouse is
downloaded from that lock with `--require-hashes`, from the package index or from a folder
(WHEELHOUSE=dir, offline), so the zip holds exactly the locked files.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON_VERSION = (ROOT / ".python-version").read_text().strip()
RUNTIME = f"python{PYTHON_VERSION}"
ARCHITECTURE = "x86_64"
# glibc of the Lambda image per runtime: Amazon Linux 2 (python3.8-3.11) has 2.26, Amazon Linux 2023 2.34.
RUNTIME_GLIBC = {"3.11": (2, 26), "3.12": (2, 34), "3.13": (2, 34)}
GLIBC = RUNTIME_GLIBC[PYTHON_VERSION]
PLATFORM = f"manylinux_{GLIBC[0]}_{GLIBC[1]}_{ARCHITECTURE}"
LOCK = ROOT / "requirements.lock"
WHEELHOUSE = ROOT / "infra" / "aws" / "build" / "wheelhouse"
# pip does not widen a manylinux_2_34 platform to older glibc tags: every minor is named, and the
# manylinux2014 alias brings in the legacy ones (2010, manylinux1).
_PLATFORMS = [f"manylinux_{GLIBC[0]}_{minor}_{ARCHITECTURE}" for minor in range(GLIBC[1], 16, -1)]
PIP_TARGET = [
    "--only-binary=:all:",
    *(arg for platform in [*_PLATFORMS, f"manylinux2014_{ARCHITECTURE}"] for arg in ("--platform", platform)),
    "--python-version",
    PYTHON_VERSION,
    "--implementation",
    "cp",
    *("--abi", f"cp{PYTHON_VERSION.replace('.', '')}", "--abi", "abi3", "--abi", "none"),  # mini-racer is py3-none
]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#\\]+)")


class LockError(SystemExit):
    """A lock or wheelhouse that cannot be made: the message names the requirement."""


@dataclass(frozen=True)
class Pin:
    name: str  # canonical: lower case, runs of -_. as one -
    version: str
    hashes: tuple[str, ...] = ()


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_pin(wheel: Path) -> Pin:
    """name and version from a wheel's file name (PEP 427), with the file's sha256."""
    name, version = wheel.name.split("-")[:2]
    return Pin(canonical(name), version, (hashlib.sha256(wheel.read_bytes()).hexdigest(),))


def read_pins(path: Path) -> list[Pin]:
    """`name==version` lines (extras dropped, `--hash` options collected); a line without `==` is refused."""
    pins: list[Pin] = []
    text = path.read_text().replace("\\\n", " ")
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        match = _PIN.match(line)
        if not match:
            raise LockError(f"{path.name}:{number}: {line!r} is not pinned as name==version")
        pins.append(Pin(canonical(match[1]), match[2], tuple(re.findall(r"--hash=sha256:([0-9a-f]{64})", line))))
    return pins


def _pip(args: list[str], what: str) -> str:
    """pip's output is always shown; a failure stops the build with it (pip names the requirement)."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
    )
    print(done.stdout + done.stderr, end="", file=sys.stderr)
    if done.returncode != 0:
        failed = re.findall(r"(?:No matching distribution found for|satisfies the requirement) (\S+)", done.stderr)
        names = ", ".join(dict.fromkeys(failed)) or "see pip's output above"
        raise LockError(f"{what} failed for {PLATFORM} / {RUNTIME}: {names}")
    return done.stdout


def lock(requirements: Path = ROOT / "requirements.txt", out: Path = LOCK) -> list[Pin]:
    with tempfile.TemporaryDirectory() as scratch:
        _pip([*PIP_TARGET, "--dest", scratch, "-r", str(requirements)], "resolving requirements.txt")
        pins = sorted((wheel_pin(wheel) for wheel in Path(scratch).glob("*.whl")), key=lambda p: p.name)
    lines = [
        f"# The Lambda runtime set ({RUNTIME}, {PLATFORM}), resolved from {requirements.name} by `make lock`.",
        "# Generated: do not edit. `make package` downloads exactly these files (pip --require-hashes).",
    ]
    lines += [f"{pin.name}=={pin.version} \\\n    --hash=sha256:{pin.hashes[0]}" for pin in pins]
    out.write_text("\n".join(lines) + "\n")
    print(f"locked {len(pins)} distributions for {RUNTIME} in {out.name}")
    return pins


def stale_pins(requirements: Path = ROOT / "requirements.txt", locked: Path = LOCK) -> list[str]:
    """requirements.txt pins the lock does not hold at the same version (`make lock` was not run)."""
    have = {pin.name: pin.version for pin in read_pins(locked)}
    return [f"{pin.name}=={pin.version}" for pin in read_pins(requirements) if have.get(pin.name) != pin.version]


def wheelhouse(dest: Path = WHEELHOUSE, *, locked: Path = LOCK, requirements: Path = ROOT / "requirements.txt") -> Path:
    """The locked wheels in dest, checked against their hashes; files the lock does not name are removed."""
    stale = stale_pins(requirements, locked)
    if stale:
        raise LockError(f"requirements.lock lacks {', '.join(stale)} from {requirements.name}: run `make lock`")
    dest.mkdir(parents=True, exist_ok=True)
    source = os.environ.get("WHEELHOUSE")
    # Offline: the folder and nowhere else; pip still checks every file against the lock's hash.
    where = ["--no-index", "--find-links", str(Path(source).resolve())] if source else []
    _pip([*PIP_TARGET, *where, "--require-hashes", "--dest", str(dest), "-r", str(locked)], "the wheelhouse")
    wanted = {digest for pin in read_pins(locked) for digest in pin.hashes}
    for wheel in dest.iterdir():
        if wheel_pin(wheel).hashes[0] not in wanted:
            wheel.unlink()  # left by an older lock: Chalice's own pip run could pick it
    return dest


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("lock", "wheelhouse"))
    args = parser.parse_args(argv)
    if args.command == "lock":
        lock()
    else:
        print(f"wheelhouse: {wheelhouse()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
