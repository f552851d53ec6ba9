"""Deployment: CodeDeploy on each live alias — canary with alarm rollback in prod, all at once in dev."""

from __future__ import annotations

from tests.infra.infra_helpers import logical_id_of, props, resources


def test_every_function_alias_has_a_deployment_group(raw_template: dict) -> None:
    aliases = resources(raw_template, "AWS::Lambda::Alias")
    groups = resources(raw_template, "AWS::CodeDeploy::DeploymentGroup")
    assert len(groups) == len(aliases)
    for alias in aliases.values():
        policy = alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
        assert logical_id_of(policy["DeploymentGroupName"]) in groups


def test_prod_shifts_ten_percent_for_five_minutes_and_rolls_back_on_alarm(synthesized) -> None:
    raw = synthesized.raw["prod"]
    alarms = resources(raw, "AWS::CloudWatch::Alarm")
    for group in resources(raw, "AWS::CodeDeploy::DeploymentGroup").values():
        p = props(group)
        assert p["DeploymentConfigName"] == "CodeDeployDefault.LambdaCanary10Percent5Minutes"
        assert p["AlarmConfiguration"]["Enabled"] is True
        watched = [logical_id_of(a["Name"]) for a in p["AlarmConfiguration"]["Alarms"]]
        assert watched and all(w in alarms for w in watched)
        assert "DEPLOYMENT_STOP_ON_ALARM" in p["AutoRollbackConfiguration"]["Events"]
        assert p["AutoRollbackConfiguration"]["Enabled"] is True


def test_dev_switches_all_at_once_without_alarm_gates(synthesized) -> None:
    for group in resources(synthesized.raw["dev"], "AWS::CodeDeploy::DeploymentGroup").values():
        p = props(group)
        assert p["DeploymentConfigName"] == "CodeDeployDefault.LambdaAllAtOnce"
        assert "AlarmConfiguration" not in p or not p["AlarmConfiguration"].get("Alarms")


def test_the_api_canary_also_stops_on_the_api_5xx_rate(synthesized) -> None:
    raw = synthesized.raw["prod"]
    (group,) = [
        g for k, g in resources(raw, "AWS::CodeDeploy::DeploymentGroup").items() if k.startswith("DeploymentApi")
    ]
    watched = {logical_id_of(a["Name"]) for a in props(group)["AlarmConfiguration"]["Alarms"]}
    assert any(w.startswith("MonitoringApiErrors") for w in watched)
    assert any(w.startswith("MonitoringApi5xxRate") for w in watched)
