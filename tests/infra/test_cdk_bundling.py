"""The dependency layer: built from pyproject's pins by pip on this machine, for arm64 Lambda, no Docker."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from gateway_cdk.app_factory import cdk_json_context
from gateway_cdk.bundling import dependency_layer_code, layer_requirements, pip_command
from gateway_cdk.components.functions import ARCHITECTURE, RUNTIME
from gateway_cdk.paths import LAYERS_DIR, PYPROJECT

from tests.infra.infra_helpers import ROOT, offline_env


def test_layer_gets_every_pin_except_what_lambda_provides() -> None:
    pins = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    requirements = layer_requirements(PYPROJECT)
    assert not [r for r in requirements if r.startswith(("boto3", "botocore", "aws-lambda-powertools"))]
    assert set(requirements) == {p for p in pins if not p.startswith(("boto3", "aws-lambda-powertools"))}
    assert any(r.startswith("pydantic==") for r in requirements)


def test_pip_downloads_arm64_wheels_for_the_lambda_python_only() -> None:
    command = pip_command("req.txt", "/out/python", python_version="3.14", platforms=("manylinux2014_aarch64",))
    joined = " ".join(command)
    assert "--platform manylinux2014_aarch64" in joined
    assert "--only-binary=:all:" in command
    assert "--python-version 3.14" in joined
    assert "--implementation cp" in joined
    assert "--target /out/python" in joined


def _layer_asset_hash(pyproject: Path) -> str:
    app = App(context={**cdk_json_context(), "aws:cdk:bundling-stacks": []})
    stack = Stack(app, "LayerStack")
    code = dependency_layer_code(
        source_dir=LAYERS_DIR / "deps", pyproject=pyproject, runtime=RUNTIME, architecture=ARCHITECTURE
    )
    layer = lambda_.LayerVersion(stack, "Deps", code=code)
    return stack.resolve(layer.node.default_child.content)["s3Key"]  # type: ignore[union-attr]


def test_changing_a_pin_rebuilds_the_layer(tmp_path: Path) -> None:
    changed = tmp_path / "pyproject.toml"
    changed.write_text(PYPROJECT.read_text().replace('"httpx==', '"httpx>=', 1))
    assert _layer_asset_hash(PYPROJECT) != _layer_asset_hash(changed)
    assert _layer_asset_hash(PYPROJECT) == _layer_asset_hash(PYPROJECT)


@pytest.mark.skipif(os.environ.get("RUN_BUNDLING_TEST") != "1", reason="downloads wheels; set RUN_BUNDLING_TEST=1")
def test_app_builds_an_arm64_dependency_layer_with_pip_and_never_docker(tmp_path: Path) -> None:
    env = offline_env(tmp_path, {"stage": "dev"})
    result = subprocess.run(  # noqa: S603 - our own entry point
        [sys.executable, str(ROOT / "infra" / "cdk" / "app.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "docker-was-called").exists()
    (asset,) = [p for p in (tmp_path / "cdk.out").glob("asset.*") if (p / "requirements.txt").exists()]
    site = asset / "python"
    for package in ("pydantic", "pydantic_core", "pydantic_settings", "httpx", "openai", "anthropic", "jwt"):
        assert (site / package).is_dir(), package
    assert not (site / "boto3").exists() and not (site / "aws_lambda_powertools").exists()
    (core,) = (site / "pydantic_core").glob("_pydantic_core.*.so")
    assert "cpython-314-aarch64-linux-gnu" in core.name
    assert (asset / "requirements.txt").read_text().splitlines() == layer_requirements(PYPROJECT)
