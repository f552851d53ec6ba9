#!/usr/bin/env python3
"""CDK entry point: `cdk deploy -c stage=prod`, or `python infra/cdk/app.py` to synthesize offline.

Synthesizes the stage's stack into cdk.out/ with cdk-nag's AwsSolutions and Serverless checks;
an unacknowledged finding stops the synthesis.
"""

from __future__ import annotations

import os

from gateway_cdk.app_factory import build_app
from gateway_cdk.paths import ROOT


def main() -> None:
    # Run directly (not by the CDK CLI), write where `cdk` would: cdk.out at the project root.
    outdir = None if os.environ.get("CDK_OUTDIR") else str(ROOT / "cdk.out")
    app, _ = build_app(outdir=outdir)
    app.synth()


if __name__ == "__main__":
    main()
