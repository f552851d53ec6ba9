"""Secrets: one per provider and the notifier's webhook signing secret, KMS-encrypted, generated values."""

from __future__ import annotations

from tests.infra.infra_helpers import logical_id_of, props, resources


def test_one_secret_per_provider_with_a_generated_placeholder(raw_template: dict) -> None:
    secrets = {k: v for k, v in resources(raw_template, "AWS::SecretsManager::Secret").items() if "ApiKey" in k}
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


def test_the_webhook_signing_secret_is_generated_64_chars_without_punctuation_under_the_data_key(
    raw_template: dict,
) -> None:
    (secret,) = [v for k, v in resources(raw_template, "AWS::SecretsManager::Secret").items()
                 if k.startswith("SecretsWebhookSigningSecret")]
    p = props(secret)
    assert "SecretString" not in p
    assert p["GenerateSecretString"] == {"ExcludePunctuation": True, "PasswordLength": 64}
    assert logical_id_of(p["KmsKeyId"]).startswith("EncryptionDataKey")
    assert "WebhookSigningSecretArn" in raw_template["Outputs"]
