"""Synthesizes the CDK app once per test session: the dev and prod stacks, with cdk-nag.

Bundling is skipped (`aws:cdk:bundling-stacks: []`), so no pip and no Docker run here; the one
test that builds the dependency layer for real is opt-in (RUN_BUNDLING_TEST=1).

The prod stack is synthesized with WAF on and an alarm e-mail, dev with the defaults, so both
variants go through cdk-nag and cfn-lint.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

# jsii prints a large banner on every start under Node 20 (end of life); keep test output readable.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk.assertions import Template  # noqa: E402
from gateway_cdk.app_factory import build_app  # noqa: E402
from gateway_cdk.stack import GatewayStack  # noqa: E402

from tests.infra.infra_helpers import PROD_ALARM_EMAIL, context_with  # noqa: E402


@dataclass
class Synthesized:
    outdir: Path
    stacks: dict[str, GatewayStack]
    templates: dict[str, Template]
    raw: dict[str, dict]
    synth_error: Exception | None

    def validation_report(self) -> dict | None:
        path = self.outdir / "validation-report.json"
        return json.loads(path.read_text()) if path.exists() else None


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    outdir = tmp_path_factory.mktemp("cdk.out")
    context = context_with(prod={"waf": True, "alarm_email": PROD_ALARM_EMAIL})
    app, stacks = build_app(context, stages=["dev", "prod"], outdir=str(outdir))
    error: Exception | None = None
    try:
        app.synth()
    except RuntimeError as exc:  # cdk-nag findings stop synthesis after the templates are written
        error = exc
    raw = {
        stage: json.loads((outdir / f"{stack.stack_name}.template.json").read_text()) for stage, stack in stacks.items()
    }
    templates = {stage: Template.from_json(template) for stage, template in raw.items()}
    return Synthesized(outdir=outdir, stacks=stacks, templates=templates, raw=raw, synth_error=error)


@pytest.fixture(scope="session")
def dev(synthesized: Synthesized) -> Template:
    return synthesized.templates["dev"]


@pytest.fixture(scope="session")
def prod(synthesized: Synthesized) -> Template:
    return synthesized.templates["prod"]


@pytest.fixture(scope="session", params=["dev", "prod"])
def template(request: pytest.FixtureRequest, synthesized: Synthesized) -> Template:
    return synthesized.templates[request.param]


@pytest.fixture(scope="session", params=["dev", "prod"])
def raw_template(request: pytest.FixtureRequest, synthesized: Synthesized) -> dict:
    return synthesized.raw[request.param]
