"""The gateway stack: one per stage, composing one construct per concern."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from .components.api import Api
from .components.cognito import CognitoM2M
from .components.deployment import Deployment
from .components.encryption import Encryption
from .components.functions import Functions, function_specs
from .components.grants import SharedResources
from .components.messaging import Messaging
from .components.monitoring import Monitoring
from .components.orchestration import Orchestration
from .components.secrets import ProviderSecrets
from .components.storage import Storage
from .config import GatewayConfig


class GatewayStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GatewayConfig,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        Tags.of(self).add("project", "deepseek-gateway")
        Tags.of(self).add("stage", config.stage)

        self.encryption = Encryption(self, "Encryption", config=config)
        self.storage = Storage(self, "Storage", config=config, key=self.encryption.data_key)
        self.secrets = ProviderSecrets(self, "Secrets", config=config, key=self.encryption.data_key)
        self.messaging = Messaging(self, "Messaging", key=self.encryption.data_key)
        resources = SharedResources(
            config=config,
            tables=self.storage.tables,
            buckets=self.storage.buckets,
            queues=self.messaging.queues,
            secrets=self.secrets.all_secrets,
        )
        # Optional: a Cognito user pool for OAuth2 client credentials, trusted by the authorizer.
        self.cognito = CognitoM2M(self, "Cognito", config=config) if config.cognito else None
        self.functions = Functions(
            self,
            "Functions",
            config=config,
            logs_key=self.encryption.logs_key,
            resources=resources,
            specs=function_specs(config, extra_oidc_issuers=[self.cognito.oidc_issuer] if self.cognito else ()),
        )
        self._connect_consumers()
        self.api = Api(
            self,
            "Api",
            config=config,
            handler=self.functions.functions["api"].alias,
            authorizer_handler=self.functions.alias("authorizer"),
            logs_key=self.encryption.logs_key,
        )
        self.orchestration = Orchestration(
            self,
            "Orchestration",
            config=config,
            logs_key=self.encryption.logs_key,
            aliases={name: f.alias for name, f in self.functions.functions.items()},
            resources=resources,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            key=self.encryption.data_key,
            api_name=self.api.rest_api_name,
            functions=self.functions.functions,
            queues=self.messaging.queues,
        )
        self.deployment = Deployment(
            self,
            "Deployment",
            config=config,
            functions=self.functions.functions,
            alarms=self.monitoring.function_alarms,
        )
        for provider, secret in self.secrets.secrets.items():
            CfnOutput(self, f"{provider.capitalize()}SecretArn", value=secret.secret_arn)
        CfnOutput(
            self,
            "WebhookSigningSecretArn",
            value=self.secrets.webhook_signing.secret_arn,
            description="The notifier's master webhook signing secret (rotate by hand, announced)",
        )

    def _connect_consumers(self) -> None:
        """Each queue consumer's `live` alias receives its queue's messages (partial batch responses)."""
        for function in self.functions.functions.values():
            spec = function.spec
            if spec.consumes_queue:
                self.messaging.queues[spec.consumes_queue].add_consumer(
                    function.alias,
                    timeout=spec.timeout,
                    batch_size=spec.queue_batch_size,
                    max_concurrency=spec.queue_max_concurrency,
                )
