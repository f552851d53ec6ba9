"""cfn-lint: the synthesized templates have no errors (W3005, noise on CDK output, is ignored)."""

from __future__ import annotations

import pytest
from cfnlint.api import ManualArgs, lint


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_cfn_lint_finds_no_error(synthesized, stage: str) -> None:
    template = (synthesized.outdir / f"{synthesized.stacks[stage].stack_name}.template.json").read_text()
    matches = lint(template, config=ManualArgs(regions=["us-east-1"], ignore_checks=["W3005"]))
    errors = [f"{m.rule.id} {m.message} at {'/'.join(map(str, m.path))}" for m in matches if m.rule.id.startswith("E")]
    assert errors == []
