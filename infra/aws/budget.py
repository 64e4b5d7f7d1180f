"""What a deployment zip must be to run on Lambda, read from the zip itself.

Every locked distribution present and nothing else installed (no CLI baggage), each native wheel's
manylinux tag and each shared object's glibc symbol versions within the runtime's glibc, and the
unzipped size under Lambda's 250 MB limit.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from infra.aws import wheels

LAMBDA_UNZIPPED_MAX_BYTES = 262_144_000  # Lambda's "250 MB" for a function and its layers, unzipped
# What Chalice's packager adds itself so that `from chalice import ...` works without the CLI.
CHALICE_RUNTIME_FILES = {"chalice/__init__.py", "chalice/app.py"}
_TAG = re.compile(r"^(?:manylinux_(\d+)_(\d+)|manylinux(1|2010|2014))_(\w+)$")
_LEGACY_GLIBC = {"1": (2, 5), "2010": (2, 12), "2014": (2, 17)}
_GLIBC_SYMBOL = re.compile(rb"GLIBC_(\d+)\.(\d+)(?:\.\d+)?\x00")


@dataclass
class Report:
    unzipped_bytes: int = 0
    distributions: dict[str, str] = field(default_factory=dict)  # canonical name -> version
    problems: list[str] = field(default_factory=list)


def _platform_problem(dist: str, tag: str, glibc: tuple[int, int]) -> str | None:
    platform = tag.rsplit("-", 1)[-1]
    if platform == "any":
        return None
    match = _TAG.match(platform)
    if not match:
        return f"{dist}: wheel tag {tag} is not manylinux: it cannot run on Lambda"
    needs = _LEGACY_GLIBC[match[3]] if match[3] else (int(match[1]), int(match[2]))
    if match[4] != wheels.ARCHITECTURE:
        return f"{dist}: wheel tag {tag} is not {wheels.ARCHITECTURE}"
    if needs > glibc:
        return f"{dist}: wheel tag {tag} needs glibc {needs[0]}.{needs[1]}, {wheels.RUNTIME} has {glibc[0]}.{glibc[1]}"
    return None


def _dist_info(archive: zipfile.ZipFile, report: Report, glibc: tuple[int, int]) -> None:
    for name in archive.namelist():
        top = name.split("/", 1)[0]
        if name.endswith(".dist-info/WHEEL") and name.count("/") == 1:
            dist, version = top.removesuffix(".dist-info").rsplit("-", 1)
            report.distributions[wheels.canonical(dist)] = version
            tags = re.findall(r"^Tag: (\S+)$", archive.read(name).decode(), re.MULTILINE)
            for tag in tags:
                problem = _platform_problem(dist, tag, glibc)
                if problem:
                    report.problems.append(problem)


def _shared_objects(archive: zipfile.ZipFile, report: Report, glibc: tuple[int, int]) -> None:
    """The real requirement: the newest GLIBC_x.y symbol version each .so links against."""
    for info in archive.infolist():
        if not re.search(r"\.so(\.\d+)*$", info.filename):
            continue
        versions = {(int(a), int(b)) for a, b in _GLIBC_SYMBOL.findall(archive.read(info))}
        newest = max(versions, default=(0, 0))
        if newest > glibc:
            report.problems.append(
                f"{info.filename} links against GLIBC_{newest[0]}.{newest[1]}, "
                f"{wheels.RUNTIME} has {glibc[0]}.{glibc[1]}"
            )


def inspect(
    zip_path: Path,
    locked: Path = wheels.LOCK,
    glibc: tuple[int, int] = wheels.GLIBC,
    max_bytes: int = LAMBDA_UNZIPPED_MAX_BYTES,
) -> Report:
    report = Report()
    with zipfile.ZipFile(zip_path) as archive:
        report.unzipped_bytes = sum(info.file_size for info in archive.infolist())
        _dist_info(archive, report, glibc)
        _shared_objects(archive, report, glibc)
        chalice = {n for n in archive.namelist() if n.startswith("chalice/") and not n.endswith("/")}
    for pin in wheels.read_pins(locked):
        shipped = report.distributions.get(pin.name)
        if shipped != pin.version:
            report.problems.append(f"{pin.name}=={pin.version} is locked but the zip has {shipped or 'nothing'}")
    locked_names = {pin.name for pin in wheels.read_pins(locked)}
    extra = sorted(f"{n}=={v}" for n, v in report.distributions.items() if n not in locked_names)
    if extra:
        report.problems.append(f"not in requirements.lock (CLI or build baggage?): {', '.join(extra)}")
    if chalice - CHALICE_RUNTIME_FILES:
        report.problems.append(f"the Chalice CLI ships: {', '.join(sorted(chalice - CHALICE_RUNTIME_FILES)[:5])} ...")
    if report.unzipped_bytes >= max_bytes:
        report.problems.append(f"unzipped {report.unzipped_bytes / 1e6:.1f} MB, Lambda allows {max_bytes / 1e6:.1f} MB")
    return report
