"""`make package`: Chalice's SAM template plus the merge template generated from the resources.

    python -m infra.aws.package --stage prod --out dist/prod

Runs `chalice package` once to learn the functions and SQS event sources Chalice generates, writes
the merge template (tables, queues + DLQs, buckets, IAM access, environment, ReportBatchItemFailures
on every SQS event source), then runs `chalice package --merge-template` for the final artefact.
Offline: set WHEELHOUSE to a folder of Lambda-platform wheels (docs/deploy.md says how to fill it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from infra.aws.template import merge_template

ROOT = Path(__file__).resolve().parents[2]


def _chalice(args: list[str]) -> None:
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    wheelhouse = os.environ.get("WHEELHOUSE")
    if wheelhouse:
        # Chalice downloads wheels with pip: point pip at the local folder and nowhere else.
        env.update({"PIP_FIND_LINKS": str(Path(wheelhouse).resolve()), "PIP_NO_INDEX": "1"})
    chalice = Path(sys.executable).with_name("chalice")
    done = subprocess.run([str(chalice), "package", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"chalice package failed:\n{done.stdout}{done.stderr}")


def package(stage: str, out: Path) -> Path:
    with tempfile.TemporaryDirectory() as scratch:
        _chalice(["--stage", stage, "--pkg-format", "cloudformation", f"{scratch}/first"])
        sam = json.loads(Path(f"{scratch}/first/sam.json").read_text())
    build = ROOT / "infra" / "aws" / "build"
    build.mkdir(parents=True, exist_ok=True)
    merge_path = build / f"merge-{stage}.json"
    merge_path.write_text(json.dumps(merge_template(sam, stage), indent=2))
    _chalice(["--stage", stage, "--pkg-format", "cloudformation", "--merge-template", str(merge_path), str(out)])
    template = out / "sam.json"
    print(
        f"packaged {stage}: {template} and {out / 'deployment.zip'} "
        f"({(out / 'deployment.zip').stat().st_size / 1e6:.1f} MB)"
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
