"""The AWS artefact: packaged with Chalice from the locked wheelhouse, lint-clean, within its budget, runs
from the unzipped tree alone (a real plugin through the sandbox), and its data resources really create."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib.resources import RESOURCES
from infra.aws import budget, wheels
from infra.aws.package import _chalice, package
from infra.aws.template import hosting_resources, resources_template

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
# A shared .venv not rebuilt yet can be another version; `make` rebuilds its own .venv, so CI never skips.
RUNNING = f"{sys.version_info[0]}.{sys.version_info[1]}"
NOT_THE_RUNTIME = f"packaging needs Python {wheels.PYTHON_VERSION} (.python-version); this .venv is {RUNNING}"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if RUNNING != wheels.PYTHON_VERSION:
        pytest.skip(NOT_THE_RUNTIME)
    out = tmp_path_factory.mktemp("package") / "prod"
    template = package("prod", out)
    return {"path": template, "template": json.loads(template.read_text()), "zip": out / "deployment.zip"}


def test_packaged_template_passes_cfn_lint(packaged: dict[str, Any]) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(packaged["path"])], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_resource_is_in_the_template_once(packaged: dict[str, Any]) -> None:
    resources = packaged["template"]["Resources"]
    for table in RESOURCES.tables:
        assert resources[table.logical_id]["Properties"]["TableName"] == table.name
    for queue in RESOURCES.queues:
        redrive = resources[queue.logical_id]["Properties"]["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == queue.max_receive_count
        assert resources[f"{queue.logical_id}Dlq"]["Properties"]["QueueName"] == queue.dlq_name
    for bucket in RESOURCES.buckets:
        assert resources[bucket.logical_id]["Type"] == "AWS::S3::Bucket"


def test_functions_get_the_environment_and_sqs_sources_report_batch_failures(packaged: dict[str, Any]) -> None:
    functions = {k: v for k, v in packaged["template"]["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert functions
    for name, function in functions.items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["STAGE"] == "prod", name
        for table in RESOURCES.tables:
            assert table.env_var in variables
        assert "DATABASE_URL_PARAMETER" in variables and "WS_MANAGEMENT_URL" in variables
        assert "DATABASE_URL" not in variables  # never a plaintext environment value
        # Stable names: `make logs STAGE=prod` finds /aws/lambda/race-platform-prod-* (API, workers, WebSocket).
        assert function["Properties"]["FunctionName"] == f"race-platform-prod-{name}"
        assert variables["WEBHOOK_KEY_PARAMETER"] == {"Ref": "WebhookKeyParameter"}, name
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_database_url_is_a_secret_reference_and_sites_are_hosted(packaged: dict[str, Any]) -> None:
    template = packaged["template"]
    assert "DatabaseUrl" not in template["Parameters"]
    assert template["Parameters"]["DatabaseUrlParameter"]["Default"] == "/race/prod/database-url"
    functions = [v for v in template["Resources"].values() if v["Type"] == "AWS::Serverless::Function"]
    assert {"APIHandler", "WebsocketConnect", "WebsocketMessage", "WebsocketDisconnect", "WebhookDeliveries"} <= {
        f["Properties"]["FunctionName"].removeprefix("race-platform-prod-") for f in functions
    }
    for site in ("Web", "Docs"):
        assert template["Resources"][f"{site}Distribution"]["Type"] == "AWS::CloudFront::Distribution"
        assert {f"{site}BucketName", f"{site}DistributionId", f"{site}Url"} <= set(template["Outputs"])
    # Outside the resources part the emulator's CloudFormation builds (moto has no CloudFront).
    assert not set(hosting_resources()) & set(resources_template()["Resources"])


@pytest.fixture()
def private_emulator(tmp_path: Path) -> Any:
    """An emulator of its own: the stack's names would collide with the session's provisioned ones."""
    from infra.local.emulator import Emulator
    from infra.local.ports import free_port

    emulator = Emulator(port=free_port(), log_path=tmp_path / "moto.log")
    url = emulator.start()
    yield url
    emulator.stop()


def test_resource_part_creates_in_the_emulators_cloudformation(private_emulator: str) -> None:
    emulator_url = private_emulator
    cloudformation = boto3.client("cloudformation", endpoint_url=emulator_url)
    cloudformation.create_stack(StackName="race-data-test", TemplateBody=json.dumps(resources_template()))
    status = cloudformation.describe_stacks(StackName="race-data-test")["Stacks"][0]["StackStatus"]
    assert status == "CREATE_COMPLETE"
    dynamodb = boto3.client("dynamodb", endpoint_url=emulator_url)
    sqs = boto3.client("sqs", endpoint_url=emulator_url)
    s3 = boto3.client("s3", endpoint_url=emulator_url)
    tables = dynamodb.list_tables()["TableNames"]
    for table in RESOURCES.tables:
        assert table.name in tables
    for queue in RESOURCES.queues:
        url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == queue.max_receive_count
        assert sqs.get_queue_url(QueueName=queue.dlq_name)
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    for bucket in RESOURCES.buckets:
        assert any(name.startswith(bucket.name + "-") for name in buckets), (bucket.name, buckets)
    # Rows point at plugin bundles and attachments: S3 keeps their versions (moto's CloudFormation
    # ignores VersioningConfiguration, so the template itself is what is checked).
    template = resources_template()["Resources"]
    for bucket in RESOURCES.buckets:
        versioning = template[bucket.logical_id]["Properties"].get("VersioningConfiguration")
        assert versioning == ({"Status": "Enabled"} if bucket.versioned else None), bucket.name
    assert {b.name for b in RESOURCES.buckets if b.versioned} == {"race-plugins", "race-attachments"}


CLI_BAGGAGE = {"chalice", "pip", "setuptools", "click", "inquirer", "blessed", "pyyaml", "wheel"}


def test_the_zip_holds_the_lock_and_nothing_else_within_the_runtimes_glibc_and_size(
    packaged: dict[str, Any], record_property: Any
) -> None:
    report = budget.inspect(packaged["zip"])
    record_property("unzipped_mb", round(report.unzipped_bytes / 1e6, 1))
    print(f"deployment.zip: {report.unzipped_bytes / 1e6:.1f} MB unzipped (Lambda allows 262.1 MB)")
    assert report.problems == []
    assert report.distributions == {pin.name: pin.version for pin in wheels.read_pins(wheels.LOCK)}
    assert {"mini-racer", "psycopg-binary", "argon2-cffi-bindings"} <= set(report.distributions)
    assert not CLI_BAGGAGE & set(report.distributions)
    assert 0 < report.unzipped_bytes < budget.LAMBDA_UNZIPPED_MAX_BYTES


# Runs with `python -I -S`: the standard library and the unzipped tree (argv[1]), nothing else.
ISOLATED_CHILD = r"""
import json, sys, sysconfig
tree = sys.argv[1]
sys.path.insert(0, tree)
from app import app
from chalicelib.plugins.sandbox import InvokeRequest, SandboxPool
stdlib = sysconfig.get_paths()["stdlib"]
outside = sorted({m.__name__.split(".")[0] for m in list(sys.modules.values())
                  if getattr(m, "__file__", None) and not m.__file__.startswith((tree, stdlib))})
bundle = open(sys.argv[2]).read()
pool = SandboxPool(max_workers=1)
try:
    def no_host(op, args, remaining_s):
        raise AssertionError(f"fuel-per-lap has no capabilities, it called {op}")
    request = InvokeRequest("acct", "fuel-per-lap", "1.0.0", "sha", "fuel-per-lap 1.0.0", "math",
                            {"fuelLevelsL": [60, 57, 54.2, 51.1], "tankCapacityL": 60}, 1000, [])
    result = pool.invoke(request, no_host, lambda: bundle)
    worker = next(iter(pool._workers.values())).process.pid
    worker_path = open(f"/proc/{worker}/cmdline", "rb").read().split(b"\0")
finally:
    pool.shutdown()
import py_mini_racer
print(json.dumps({"routes": len(app.routes), "outside": outside, "site": "site" in sys.modules,
                  "mini_racer": py_mini_racer.__file__, "output": result.output,
                  "worker": [a.decode() for a in worker_path if a]}))
"""


def test_the_unzipped_tree_alone_imports_app_and_runs_a_plugin_in_the_sandbox(
    packaged: dict[str, Any], tmp_path: Path
) -> None:
    tree = tmp_path / "task"
    with zipfile.ZipFile(packaged["zip"]) as archive:
        archive.extractall(tree)
    bundle = ROOT / "examples/plugins/fuel-per-lap/dist/plugin.js"
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", ISOLATED_CHILD, str(tree), str(bundle)],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["routes"] > 10 and report["outside"] == [] and report["site"] is False
    assert report["mini_racer"].startswith(str(tree))
    assert report["worker"][1:4] == ["-S", "-s", "-m"]  # the worker sees no site-packages either
    assert report["output"]["lapsCounted"] == 3 and report["output"]["lapsPerTank"] == 20


def _fake_wheel(folder: Path, name: str, tag: str) -> Path:
    """A tiny real wheel file, as pip reads one (METADATA) and Chalice sorts it (its tag in the name)."""
    path = folder / f"{name}-1.0-{tag}.whl"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "")
        archive.writestr(f"{name}-1.0.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        archive.writestr(f"{name}-1.0.dist-info/WHEEL", f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n")
        archive.writestr(f"{name}-1.0.dist-info/RECORD", "")
    return path


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A one-route Chalice project whose only requirement has a wheel for glibc 2.35 alone."""
    root = tmp_path / "project"
    (root / ".chalice").mkdir(parents=True)
    (root / ".chalice" / "config.json").write_text(json.dumps({"version": "2.0", "app_name": "budget-probe"}))
    route = "@app.route('/')\ndef index() -> dict[str, str]:\n    return {}\n"  # no function, no zip
    (root / "app.py").write_text(f"from chalice import Chalice\n\napp = Chalice(app_name='budget-probe')\n{route}")
    (root / "requirements.txt").write_text("notforlambda==1.0\n")
    wheel = _fake_wheel(tmp_path / "wheels", "notforlambda", "py3-none-manylinux_2_35_x86_64")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (root / "requirements.lock").write_text(f"notforlambda==1.0 \\\n    --hash=sha256:{digest}\n")
    return root


@pytest.mark.skipif(RUNNING != wheels.PYTHON_VERSION, reason=NOT_THE_RUNTIME)
def test_an_unavailable_requirement_stops_the_package_with_its_name(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELHOUSE", str(tmp_path / "wheels"))
    with pytest.raises(SystemExit, match=r"the wheelhouse failed for manylinux_2_34_x86_64 .*notforlambda==1\.0"):
        package("prod", tmp_path / "out", project=project)
    assert not (tmp_path / "out").exists()


def test_a_requirement_chalice_skips_stops_the_package_with_its_name(project: Path, tmp_path: Path) -> None:
    # Chalice's own pip finds the wheel (this host's glibc is newer) but it does not fit python3.12.
    args = ["--stage", "dev", "--pkg-format", "cloudformation", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match=r"chalice could not place notforlambda==1\.0 in the python3\.12 zip"):
        _chalice(args, project, tmp_path / "wheels")
