"""One Secrets Manager secret per provider, holding that provider's API key as a plain string.

The secrets are created with a random placeholder; the operator puts the real key after the first
deploy (`aws secretsmanager put-secret-value --secret-id <arn> --secret-string sk-...`). CloudFormation
never sees a key, and a redeploy does not overwrite what the operator put.
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
