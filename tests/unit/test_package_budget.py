"""The packaging checks on small made-up inputs: each one can fail, and names what broke it."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
from chalice.constants import MISSING_DEPENDENCIES_TEMPLATE

from infra.aws import budget, wheels
from infra.aws.package import check_runtime, skipped_requirements

pytestmark = pytest.mark.unit


def test_the_project_targets_the_lambda_runtime_it_locks_for() -> None:
    assert (wheels.PYTHON_VERSION, wheels.RUNTIME, wheels.GLIBC) == ("3.12", "python3.12", (2, 34))
    assert "manylinux_2_34_x86_64" in wheels.PIP_TARGET and "manylinux_2_27_x86_64" in wheels.PIP_TARGET


def test_chalices_skip_warning_is_read_back_as_the_skipped_names() -> None:
    output = "Creating deployment package.\n" + MISSING_DEPENDENCIES_TEMPLATE % "mini-racer==0.14.1\ncffi==2.1.1"
    assert skipped_requirements(output) == ["mini-racer==0.14.1", "cffi==2.1.1"]
    assert skipped_requirements("Creating deployment package.\nReusing existing deployment package.\n") == []


def test_a_function_on_another_runtime_or_architecture_stops_the_package() -> None:
    def template(**properties: object) -> dict[str, object]:
        return {"Resources": {"Api": {"Type": "AWS::Serverless::Function", "Properties": properties}}}

    check_runtime(template(Runtime="python3.12", Architectures=["x86_64"]))
    check_runtime(template(Runtime="python3.12"))  # SAM's default architecture is x86_64
    with pytest.raises(SystemExit, match=r"Api runs on python3\.11"):
        check_runtime(template(Runtime="python3.11"))
    with pytest.raises(SystemExit, match="arm64"):
        check_runtime(template(Runtime="python3.12", Architectures=["arm64"]))


def test_every_requirement_is_in_the_lock_and_a_stale_lock_is_named(tmp_path: Path) -> None:
    assert wheels.stale_pins() == []  # the committed lock matches requirements.txt
    requirements, lock = tmp_path / "requirements.txt", tmp_path / "requirements.lock"
    requirements.write_text("psycopg[binary]==3.3.9  # extras are part of the name's line\nmissing-one==1.0\n")
    lock.write_text(f"psycopg==3.3.9 \\\n    --hash=sha256:{'a' * 64}\n")
    assert wheels.stale_pins(requirements, lock) == ["missing-one==1.0"]
    with pytest.raises(SystemExit, match=r"lacks missing-one==1\.0 .*make lock"):
        wheels.wheelhouse(tmp_path / "wheelhouse", locked=lock, requirements=requirements)
    requirements.write_text("unpinned>=1\n")
    with pytest.raises(SystemExit, match="not pinned"):
        wheels.read_pins(requirements)


def _wheel_dir(archive: zipfile.ZipFile, dist: str, version: str, tag: str) -> None:
    archive.writestr(f"{dist}-{version}.dist-info/WHEEL", f"Wheel-Version: 1.0\nTag: {tag}\n")


def _zip(tmp_path: Path, *, tag: str, so: bytes = b"", extra: str = "", chalice_cli: bool = False) -> Path:
    path = tmp_path / "deployment.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("app.py", "app = None\n")
        archive.writestr("chalice/app.py", "")
        _wheel_dir(archive, "native_dist", "1.0", tag)
        archive.writestr("native_dist/_speed.cpython-312-x86_64-linux-gnu.so", b"\x7fELF" + so)
        if extra:
            _wheel_dir(archive, extra, "2.0", "py3-none-any")
        if chalice_cli:
            archive.writestr("chalice/cli/__init__.py", "")
    return path


@pytest.fixture()
def lock(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.lock"
    path.write_text(f"native-dist==1.0 --hash=sha256:{hashlib.sha256(b'x').hexdigest()}\n")
    return path


def test_a_zip_within_budget_has_no_problems(tmp_path: Path, lock: Path) -> None:
    report = budget.inspect(
        _zip(tmp_path, tag="cp312-cp312-manylinux_2_34_x86_64", so=b"GLIBC_2.17\x00GLIBC_2.34\x00GLIBC_PRIVATE\x00"),
        lock,
    )
    assert (report.problems, report.distributions) == ([], {"native-dist": "1.0"})
    assert report.unzipped_bytes > 0


@pytest.mark.parametrize(
    ("tag", "so", "expected"),
    [
        ("cp312-cp312-manylinux_2_35_x86_64", b"", "needs glibc 2.35, python3.12 has 2.34"),
        ("cp312-cp312-linux_x86_64", b"", "is not manylinux"),
        ("cp312-cp312-manylinux2014_aarch64", b"", "is not x86_64"),
        ("cp312-cp312-manylinux2014_x86_64", b"GLIBC_2.38\x00", "links against GLIBC_2.38"),
    ],
)
def test_a_wheel_or_binary_beyond_the_runtimes_glibc_is_named(
    tmp_path: Path, lock: Path, tag: str, so: bytes, expected: str
) -> None:
    problems = budget.inspect(_zip(tmp_path, tag=tag, so=so), lock).problems
    assert len(problems) == 1 and expected in problems[0], problems


def test_cli_baggage_and_missing_locked_distributions_are_named(tmp_path: Path, lock: Path) -> None:
    path = _zip(tmp_path, tag="py3-none-any", extra="click", chalice_cli=True)
    problems = budget.inspect(path, lock).problems
    assert any("not in requirements.lock" in p and "click==2.0" in p for p in problems), problems
    assert any("the Chalice CLI ships: chalice/cli/__init__.py" in p for p in problems), problems
    lock.write_text(lock.read_text() + f"mini-racer==0.14.1 --hash=sha256:{'b' * 64}\n")
    problems = budget.inspect(path, lock).problems
    assert "mini-racer==0.14.1 is locked but the zip has nothing" in problems


def test_an_oversized_zip_is_named(tmp_path: Path, lock: Path) -> None:
    problems = budget.inspect(_zip(tmp_path, tag="py3-none-any"), lock, max_bytes=10).problems
    assert len(problems) == 1 and "Lambda allows 0.0 MB" in problems[0]
