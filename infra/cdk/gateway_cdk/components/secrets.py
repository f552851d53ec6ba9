"""One Secrets Manager secret per provider, holding that provider's API key as a plain string.

The secrets are created with a random placeholder; the operator puts the real key after the first
deploy (`aws secretsmanager put-secret-value --secret-id <arn> --secret-string sk-...`). CloudFormation
never sees a key, and a redeploy does not overwrite what the operator put.

Beside them, `webhook_signing`: the notifier's master secret, from which every tenant's webhook
signing secret is derived. Its generated value is used as is; rotating it rotates every tenant's
webhook secret at once, so it is rotated by hand, announced to tenants beforehand.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from ..config import GatewayConfig
from .common import removal_policy

PROVIDERS: tuple[str, ...] = ("deepseek", "openai", "anthropic")


class ProviderSecrets(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.secrets: dict[str, secretsmanager.Secret] = {}
        for provider in PROVIDERS:
            secret = secretsmanager.Secret(
                self,
                f"{provider.capitalize()}ApiKey",
                description=(
                    f"DeepSeek Gateway {config.stage}: the {provider} API key as a plain string. "
                    "Created with a placeholder; set it with put-secret-value."
                ),
                encryption_key=key,
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    exclude_punctuation=True, password_length=40
                ),
                removal_policy=removal_policy(config),
            )
            Validations.of(secret).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-SMG4",
                    reason=f"The {provider} API key is issued by the provider's own console; Secrets "
                    "Manager has no rotation function that can mint or revoke third-party provider "
                    "keys, so the operator rotates it by putting a new value.",
                )
            )
            self.secrets[provider] = secret

        self.webhook_signing = secretsmanager.Secret(
            self,
            "WebhookSigningSecret",
            description=(
                f"DeepSeek Gateway {config.stage}: the notifier's master webhook signing secret; every "
                "tenant's webhook secret is derived from it. Rotate only by hand, announced to tenants."
            ),
            encryption_key=key,
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=64),
            removal_policy=removal_policy(config),
        )
        Validations.of(self.webhook_signing).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="Every tenant's webhook signing secret is derived from this one: rotating it rotates "
                "them all at once and breaks every tenant's signature checks, so rotation is a manual, "
                "announced operation rather than a schedule.",
            )
        )

    @property
    def all_secrets(self) -> dict[str, secretsmanager.Secret]:
        """The provider secrets and `webhook_signing`, by name (what functions may be granted)."""
        return {**self.secrets, "webhook_signing": self.webhook_signing}
