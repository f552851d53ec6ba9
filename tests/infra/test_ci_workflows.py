"""GitHub Actions workflows, checked structurally (actionlint cannot be installed here).

CI runs the tests and cdk-nag on pull requests; deploy assumes roles through OIDC (never stored
AWS keys), deploys dev on pushes to main and prod only after dev, behind the production
environment's approval.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.infra.infra_helpers import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"


def _load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def _triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the key `on` as the boolean True.
    triggers = workflow.get("on", workflow.get(True))
    return {t: None for t in triggers} if isinstance(triggers, list) else triggers


def _runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job.get("steps", []))


def _uses(job: dict, action: str) -> list[dict]:
    return [step for step in job.get("steps", []) if step.get("uses", "").startswith(f"{action}@")]


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml"])
def test_workflow_is_valid_yaml_with_jobs_that_have_steps_or_call_a_workflow(name: str) -> None:
    workflow = _load(name)
    assert workflow["name"]
    assert workflow["jobs"]
    for job_id, job in workflow["jobs"].items():
        assert "steps" in job or "uses" in job, job_id
        if "steps" in job:
            assert job["runs-on"], job_id
            for step in job["steps"]:
                assert ("uses" in step) != ("run" in step), (job_id, step)
                if "uses" in step and not step["uses"].startswith("./"):
                    assert re.match(r"^[\w.-]+/[\w.-]+@\S+$", step["uses"]), step["uses"]


@pytest.mark.parametrize("name", ["ci.yml", "deploy.yml"])
def test_every_needed_job_exists(name: str) -> None:
    jobs = _load(name)["jobs"]
    for job in jobs.values():
        needs = job.get("needs", [])
        for need in [needs] if isinstance(needs, str) else needs:
            assert need in jobs


def test_ci_runs_the_tests_and_synthesizes_with_cdk_nag_on_pull_requests() -> None:
    workflow = _load("ci.yml")
    assert "pull_request" in _triggers(workflow)
    assert "workflow_call" in _triggers(workflow)
    runs = "\n".join(_runs(job) for job in workflow["jobs"].values())
    assert "make test" in runs
    assert "infra/cdk/app.py" in runs
    assert workflow["permissions"] == {"contents": "read"}


def test_deploy_runs_on_pushes_to_main_after_the_tests() -> None:
    workflow = _load("deploy.yml")
    assert _triggers(workflow)["push"]["branches"] == ["main"]
    jobs = workflow["jobs"]
    assert jobs["test"]["uses"] == "./.github/workflows/ci.yml"
    assert jobs["deploy-dev"]["needs"] == "test"
    assert jobs["deploy-prod"]["needs"] == "deploy-dev"


@pytest.mark.parametrize(("job_id", "stage"), [("deploy-dev", "dev"), ("deploy-prod", "prod")])
def test_deploy_jobs_assume_a_role_with_oidc(job_id: str, stage: str) -> None:
    job = _load("deploy.yml")["jobs"][job_id]
    assert job["permissions"]["id-token"] == "write"
    (credentials,) = _uses(job, "aws-actions/configure-aws-credentials")
    assert credentials["with"]["role-to-assume"]
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(credentials["with"])
    assert f"cdk deploy -c stage={stage}" in _runs(job)


def test_prod_waits_for_the_production_environment_approval() -> None:
    jobs = _load("deploy.yml")["jobs"]
    assert jobs["deploy-prod"]["environment"] == "production"
    assert jobs["deploy-dev"]["environment"] != "production"


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.y*ml")), ids=lambda p: p.name)
def test_no_workflow_references_long_lived_aws_keys(path: Path) -> None:
    text = path.read_text()
    for forbidden in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "aws-access-key-id", "aws-secret-access-key"):
        assert forbidden not in text
    assert not re.search(r"AKIA[0-9A-Z]{16}", text)


def test_workflows_pass_actionlint() -> None:
    """actionlint type-checks expressions, action inputs and job graphs beyond the structure above."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    binary = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if binary is None:
        import pytest

        pytest.skip("actionlint is installed by `make install` on x86_64 Linux only (see pyproject.toml)")
    result = subprocess.run([binary, "-no-color"], cwd=ROOT, capture_output=True, text=True, timeout=60)  # noqa: S603
    assert result.returncode == 0, result.stdout + result.stderr
