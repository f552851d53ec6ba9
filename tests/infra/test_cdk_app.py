"""`python infra/cdk/app.py` synthesizes offline: no AWS credentials, no Docker, no CDK CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.infra.infra_helpers import ROOT, SKIP_BUNDLING, offline_env

APP = ROOT / "infra" / "cdk" / "app.py"


def _run(tmp_path: Path, context: dict) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603 - our own entry point
        [sys.executable, str(APP)],
        cwd=tmp_path,  # not the project root: paths must not depend on the current directory
        env=offline_env(tmp_path, context),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert not (tmp_path / "docker-was-called").exists()
    return result, time.monotonic() - started


def test_app_synthesizes_the_stage_from_context_offline_in_seconds(tmp_path: Path) -> None:
    result, elapsed = _run(tmp_path, {**SKIP_BUNDLING, "stage": "prod"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert elapsed < 30
    template = json.loads((tmp_path / "cdk.out" / "DeepSeekGateway-prod.template.json").read_text())
    assert any(r["Type"] == "AWS::Lambda::Function" for r in template["Resources"].values())
    assert not (tmp_path / "cdk.out" / "DeepSeekGateway-dev.template.json").exists()


def test_app_refuses_a_bad_context_value(tmp_path: Path) -> None:
    result, _ = _run(tmp_path, {**SKIP_BUNDLING, "log_retention_days": 31})
    assert result.returncode != 0
    assert "log_retention_days" in result.stderr


def test_cdk_json_runs_the_app_with_the_project_venv() -> None:
    cdk_json = json.loads((ROOT / "cdk.json").read_text())
    assert cdk_json["app"] == ".venv/bin/python infra/cdk/app.py"
    context = cdk_json["context"]
    assert context["stage"] == "dev"
    assert context["region"] == "us-east-1"
    assert context["@aws-cdk/aws-lambda:recognizeLayerVersion"] is True
