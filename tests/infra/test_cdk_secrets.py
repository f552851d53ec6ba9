"""Provider secrets: one per provider, KMS-encrypted, created with a generated placeholder."""

from __future__ import annotations

from tests.infra.infra_helpers import props, resources


def test_one_secret_per_provider_with_a_generated_placeholder(raw_template: dict) -> None:
    secrets = resources(raw_template, "AWS::SecretsManager::Secret")
    names = {logical_id.removeprefix("Secrets").split("ApiKey")[0] for logical_id in secrets}
    assert names == {"Deepseek", "Openai", "Anthropic"}
    for secret in secrets.values():
        p = props(secret)
        # A plain string (no JSON template) and never a value written into the template.
        assert "SecretString" not in p
        assert "SecretStringTemplate" not in p["GenerateSecretString"]


def test_secret_arns_are_stack_outputs_for_the_operator(raw_template: dict) -> None:
    outputs = raw_template["Outputs"]
    for provider in ("Deepseek", "Openai", "Anthropic"):
        assert f"{provider}SecretArn" in outputs


def test_prod_secrets_survive_stack_deletion(synthesized) -> None:
    for secret in resources(synthesized.raw["prod"], "AWS::SecretsManager::Secret").values():
        assert secret["DeletionPolicy"] == "Retain"
