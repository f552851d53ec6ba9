"""The gateway stack: one per stage, composing one construct per concern."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnOutput, Stack, Tags, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3_notifications
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from .components.api import Api
from .components.cognito import CognitoM2M
from .components.deployment import Deployment
from .components.encryption import Encryption
from .components.functions import Functions, absent_functions, function_specs
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
        self.messaging = Messaging(
            self,
            "Messaging",
            key=self.encryption.data_key,
            queue_keys={"ingestion": self.encryption.ingestion_key},
        )
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
            absent=absent_functions(),
        )
        self._connect_batches()
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            key=self.encryption.data_key,
            api_name=self.api.rest_api_name,
            functions=self.functions.functions,
            queues=self.messaging.queues,
            state_machines=self.orchestration.state_machines,
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

    def _connect_batches(self) -> None:
        """Uploads reach the ingestion function, which starts the batch workflow.

        The workflow invokes the task functions' aliases, so the ingestion function gets its ARN (and
        the right to start it) only now, after both exist: the state machine never refers back to it.
        """
        ingestion = self.functions.functions.get("ingestion")
        if ingestion is None:
            return  # nobody would consume the uploads' notifications
        self.storage.buckets["uploads"].add_event_notification(
            s3.EventType.OBJECT_CREATED, s3_notifications.SqsDestination(self.messaging.queues["ingestion"].queue)
        )
        self._acknowledge_bucket_notifications_handler()
        batch_workflow = self.orchestration.state_machines.get("batch")
        if batch_workflow is not None:
            batch_workflow.grant_start_execution(ingestion.function)
            ingestion.function.add_environment("BATCH_STATE_MACHINE_ARN", batch_workflow.state_machine_arn)
            self._fail_batches_of_ended_executions(batch_workflow)

    def _fail_batches_of_ended_executions(self, batch_workflow: sfn.StateMachine) -> None:
        """An execution stopped by hand or timed out runs no FailBatch: EventBridge tells the batch function,
        which fails the batch (and tells the tenant) instead of leaving it `in_progress`."""
        batch = self.functions.functions.get("batch")
        if batch is None:
            return
        rule = events.Rule(
            self,
            "BatchExecutionEnded",
            description="Fails the batch of a batch-workflow execution that ended FAILED, TIMED_OUT or ABORTED",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={"stateMachineArn": [batch_workflow.state_machine_arn],
                        "status": ["FAILED", "TIMED_OUT", "ABORTED"]},
            ),
            targets=[targets.LambdaFunction(batch.alias, retry_attempts=8)],
        )
        Validations.of(rule).acknowledge(
            Acknowledgment(
                id="Serverless-EventBusDLQ",
                reason="EventBridge retries the delivery (8 attempts, up to 24 h). An event still lost leaves its "
                "batch in_progress; the ExecutionsFailed alarm has already shown the FAILED and TIMED_OUT ones, "
                "and ABORTED is an operator's own stop. A DLQ would need the data key to trust EventBridge.",
            )
        )


    def _acknowledge_bucket_notifications_handler(self) -> None:
        """CDK writes a bucket's notification configuration with a singleton function of its own."""
        handlers = [c for c in self.node.children if c.node.id.startswith("BucketNotificationsHandler")]
        for handler in handlers:
            Validations.of(handler).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]",
                    reason="The role of CDK's bucket-notifications handler (Custom::S3BucketNotifications), "
                    "which runs only during deployments to write the uploads bucket's notification "
                    "configuration: the managed policy lets it write its logs; its one other permission is "
                    "s3:PutBucketNotification on the uploads bucket.",
                )
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
