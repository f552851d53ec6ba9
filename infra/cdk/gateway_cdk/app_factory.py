"""Builds the CDK app: the stage's stack, with cdk-nag's AwsSolutions and Serverless checks.

`app.py` calls `build_app()`, and so `cdk synth`/`cdk deploy` (through cdk.json), `make synth` and
the local cloud (which runs app.py) all synthesize the same thing; the infra tests call it directly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from .config import GatewayConfig
from .paths import CDK_JSON
from .stack import GatewayStack


def cdk_json_context() -> dict[str, Any]:
    """The `context` of cdk.json: feature flags and configuration defaults."""
    with CDK_JSON.open(encoding="utf-8") as handle:
        return dict(json.load(handle).get("context", {}))


def build_app(
    context: Mapping[str, Any] | None = None,
    *,
    stages: Sequence[str] | None = None,
    outdir: str | None = None,
) -> tuple[App, dict[str, GatewayStack]]:
    """An app with one stack per stage (default: the `stage` context value).

    `context` is laid over cdk.json's; when run by the CDK CLI, the CLI's context wins over both.
    """
    merged = {**cdk_json_context(), **(context or {})}
    app = App(context=merged, outdir=outdir or os.environ.get("CDK_OUTDIR") or None)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    stacks: dict[str, GatewayStack] = {}
    for stage in stages or [None]:
        config = GatewayConfig.from_node(app.node, stage=stage)
        account = config.account or os.environ.get("CDK_DEFAULT_ACCOUNT")
        stacks[config.stage] = GatewayStack(
            app,
            config.stack_name,
            config=config,
            env=Environment(account=account, region=config.region),
            description=f"DeepSeek Gateway ({config.stage}): OpenAI-compatible AI gateway",
            termination_protection=config.is_prod,
        )
    return app, stacks
