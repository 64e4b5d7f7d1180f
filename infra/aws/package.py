"""`make package`: Chalice's SAM template plus the merge template generated from the resources.

    python -m infra.aws.package --stage prod --out dist/prod

Downloads the wheels requirements.lock names (checked against its hashes) into a wheelhouse, runs
`chalice package` from it once to learn the functions and SQS event sources Chalice generates, writes
the merge template (tables, queues + DLQs, buckets, IAM access, environment, ReportBatchItemFailures
on every SQS event source), then runs `chalice package --merge-template` for the final artefact.
Fails, naming the requirement, when Chalice skips one it cannot place; then checks the runtime, the
architecture and the zip's budget (infra/aws/budget.py). Offline: WHEELHOUSE=dir holds the lock's wheels.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from infra.aws import budget, wheels
from infra.aws.template import merge_template

ROOT = Path(__file__).resolve().parents[2]
# Chalice's warning when it cannot place a requirement (chalice.constants.MISSING_DEPENDENCIES_TEMPLATE).
_SKIPPED = re.compile(r"Could not install dependencies:\n(.*?)\nYou will have to build", re.DOTALL)


def skipped_requirements(output: str) -> list[str]:
    """The requirements Chalice left out of the zip, from its output (it exits 0 regardless)."""
    return [name.strip() for found in _SKIPPED.findall(output) for name in found.splitlines() if name.strip()]


def _chalice(args: list[str], project: Path, wheelhouse: Path) -> None:
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    # Chalice downloads wheels with pip: the locked wheelhouse and nowhere else.
    env.update({"PIP_FIND_LINKS": str(wheelhouse.resolve()), "PIP_NO_INDEX": "1"})
    chalice = Path(sys.executable).with_name("chalice")
    done = subprocess.run([str(chalice), "package", *args], cwd=project, env=env, capture_output=True, text=True)
    print(done.stdout + done.stderr, end="", file=sys.stderr)
    if done.returncode != 0:
        raise SystemExit(f"chalice package failed (exit {done.returncode}): see its output above")
    skipped = skipped_requirements(done.stdout + done.stderr)
    if skipped:
        raise SystemExit(f"chalice could not place {', '.join(skipped)} in the {wheels.RUNTIME} zip: no usable wheel")


def check_runtime(template: dict[str, object]) -> None:
    """Every function runs on the locked runtime and architecture (Chalice takes both from its interpreter)."""
    resources = template.get("Resources", {})
    assert isinstance(resources, dict)
    globals_ = template.get("Globals", {})
    defaults = globals_.get("Function", {}) if isinstance(globals_, dict) else {}
    for name, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = {**defaults, **resource.get("Properties", {})}
        runtime, architectures = properties.get("Runtime"), properties.get("Architectures", [wheels.ARCHITECTURE])
        if runtime != wheels.RUNTIME or architectures != [wheels.ARCHITECTURE]:
            raise SystemExit(f"{name} runs on {runtime} {architectures}, not {wheels.RUNTIME} [{wheels.ARCHITECTURE}]")


def package(stage: str, out: Path, project: Path = ROOT) -> Path:
    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if running != wheels.PYTHON_VERSION:
        raise SystemExit(f"packaging needs Python {wheels.PYTHON_VERSION} (the Lambda runtime); this is {running}")
    wheelhouse = wheels.wheelhouse(
        project / "infra" / "aws" / "build" / "wheelhouse",
        locked=project / "requirements.lock",
        requirements=project / "requirements.txt",
    )
    # Chalice reuses a cached zip keyed on requirements.txt and the code, not the lock, and then repeats no warning.
    shutil.rmtree(project / ".chalice" / "deployments", ignore_errors=True)
    with tempfile.TemporaryDirectory() as scratch:
        _chalice(["--stage", stage, "--pkg-format", "cloudformation", f"{scratch}/first"], project, wheelhouse)
        sam = json.loads(Path(f"{scratch}/first/sam.json").read_text())
    build = project / "infra" / "aws" / "build"
    build.mkdir(parents=True, exist_ok=True)
    merge_path = build / f"merge-{stage}.json"
    merge_path.write_text(json.dumps(merge_template(sam, stage), indent=2))
    args = ["--stage", stage, "--pkg-format", "cloudformation", "--merge-template", str(merge_path), str(out)]
    _chalice(args, project, wheelhouse)
    template = out / "sam.json"
    check_runtime(json.loads(template.read_text()))
    report = budget.inspect(out / "deployment.zip", project / "requirements.lock")
    if report.problems:
        raise SystemExit("the zip breaks its budget:\n  " + "\n  ".join(report.problems))
    print(
        f"packaged {stage} for {wheels.RUNTIME} {wheels.ARCHITECTURE}: {template} and {out / 'deployment.zip'} "
        f"({(out / 'deployment.zip').stat().st_size / 1e6:.1f} MB, {report.unzipped_bytes / 1e6:.1f} MB unzipped)"
    )
    return template


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="prod", choices=("dev", "prod"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    package(args.stage, args.out or ROOT / "dist" / args.stage)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
