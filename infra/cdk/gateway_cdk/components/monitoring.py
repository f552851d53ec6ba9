"""CloudWatch dashboard and alarms, every alarm notifying one KMS-encrypted SNS topic.

Alarms: the API's 5xx rate, each function's errors on its `live` alias (CodeDeploy rolls a canary
back on these), and each dead-letter queue's depth. Custom metrics come from Powertools Metrics
(EMF) in the `DeepSeekGateway` namespace; their dimensions vary (provider, model), so the dashboard
finds them with SEARCH expressions.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnOutput, Duration, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from ..config import GatewayConfig
from .functions import METRICS_NAMESPACE, GatewayFunction
from .messaging import WorkQueue

TASK_ERROR_RATE_THRESHOLD_PERCENT = 50
CUSTOM_METRICS: tuple[str, ...] = ("Fallbacks", "ProviderErrors", "PromptTokens", "CompletionTokens", "CostUSD")
API_5XX_RATE_THRESHOLD_PERCENT = 5

_MINUTE = Duration.minutes(1)
_FIVE_MINUTES = Duration.minutes(5)


class ApiMetrics:
    """API Gateway stage metrics by literal API and stage name.

    Not `Stage.metric_*()`: those reference the stage resource, and the api function's deployment
    group watches the 5xx alarm while the stage (through its methods) depends on the function's
    alias, whose update policy names the deployment group: a cycle.
    """

    def __init__(self, api_name: str, stage_name: str) -> None:
        self._dimensions = {"ApiName": api_name, "Stage": stage_name}

    def _metric(self, name: str, **options) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/ApiGateway", metric_name=name, dimensions_map=self._dimensions, **options
        )

    def metric_count(self, **options) -> cloudwatch.Metric:
        return self._metric("Count", **options)

    def metric_server_error(self, **options) -> cloudwatch.Metric:
        return self._metric("5XXError", **options)

    def metric_client_error(self, **options) -> cloudwatch.Metric:
        return self._metric("4XXError", **options)

    def metric_latency(self, **options) -> cloudwatch.Metric:
        return self._metric("Latency", **options)

    def metric_integration_latency(self, **options) -> cloudwatch.Metric:
        return self._metric("IntegrationLatency", **options)


def _construct_id(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_") if part)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GatewayConfig,
        key: kms.IKey,
        api_name: str,
        functions: dict[str, GatewayFunction],
        queues: dict[str, WorkQueue],
        state_machines: dict[str, sfn.StateMachine] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stage = ApiMetrics(api_name, config.stage)
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"DeepSeek Gateway {config.stage} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if config.alarm_email:
            self.topic.add_subscription(
                subscriptions.EmailSubscription(config.alarm_email, dead_letter_queue=self._undelivered(key))
            )

        requests = stage.metric_count(period=_MINUTE, statistic="Sum")
        errors_5xx = stage.metric_server_error(period=_MINUTE, statistic="Sum")
        self.api_5xx_alarm = self._rate_alarm(
            "Api5xxRate", f"More than {API_5XX_RATE_THRESHOLD_PERCENT}% of API requests answered 5xx.",
            errors=errors_5xx, total=("requests", requests), label="5xx rate (%)",
            threshold=API_5XX_RATE_THRESHOLD_PERCENT,
        )

        # Errors are unhandled exceptions (the handlers answer expected failures themselves), so one is
        # enough to stop a canary, except in the workflow's router and backend tasks: they report a
        # provider's 429 or a policy denial as an error for the state machine's Retry/Catch, so their
        # alarm watches the error rate.
        self.function_alarms: dict[str, list[cloudwatch.Alarm]] = {}
        for name, function in functions.items():
            if function.spec.errors_are_outcomes:
                alarm = self._error_rate_alarm(name, function)
            else:
                alarm = cloudwatch.Alarm(
                    self,
                    f"{function.spec.construct_id}Errors",
                    alarm_description=f"The {name} function (alias live) raised unhandled errors.",
                    metric=function.alias.metric_errors(period=_MINUTE, statistic="Sum"),
                    threshold=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    evaluation_periods=1,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            self.function_alarms[name] = [alarm]
        # A failed batch execution leaves its batch `failed` (the FailBatch task): the operator should look.
        self.workflow_alarms = [
            cloudwatch.Alarm(
                self,
                f"{_construct_id(name)}ExecutionsFailed",
                alarm_description=f"Executions of the {name} state machine failed (their batches are failed).",
                metric=machine.metric_failed(period=Duration.minutes(5), statistic="Sum"),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            for name, machine in (state_machines or {}).items()
        ]

        # The API's 5xx rate also gates the api function's canary: a version that answers 500s
        # without raising shows up only there.
        if "api" in self.function_alarms:
            self.function_alarms["api"].append(self.api_5xx_alarm)

        self.alarms: list[cloudwatch.Alarm] = list(
            dict.fromkeys(
                [
                    self.api_5xx_alarm,
                    *(alarm for alarms in self.function_alarms.values() for alarm in alarms),
                    *(queue.dlq_alarm for queue in queues.values()),
                    *self.workflow_alarms,
                ]
            )
        )
        action = cloudwatch_actions.SnsAction(self.topic)
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

        self.dashboard = self._dashboard(config, stage, requests, errors_5xx, functions, queues)
        region = Stack.of(self).region
        CfnOutput(
            self,
            "DashboardUrl",
            value=(
                f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
                f"#dashboards:name={self.dashboard_name}"
            ),
        ).override_logical_id("DashboardUrl")
        CfnOutput(self, "AlarmTopicArn", value=self.topic.topic_arn).override_logical_id("AlarmTopicArn")

    def _dashboard(
        self,
        config: GatewayConfig,
        stage: ApiMetrics,
        requests: cloudwatch.IMetric,
        errors_5xx: cloudwatch.IMetric,
        functions: dict[str, GatewayFunction],
        queues: dict[str, WorkQueue],
    ) -> cloudwatch.Dashboard:
        self.dashboard_name = f"DeepSeekGateway-{config.stage}"
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=self.dashboard_name)

        def graph(title: str, left: list[cloudwatch.IMetric], width: int = 8) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(title=title, left=left, width=width, height=6)

        dashboard.add_widgets(
            cloudwatch.TextWidget(markdown=f"# DeepSeek Gateway — {config.stage}", width=24, height=1)
        )
        dashboard.add_widgets(
            graph("API requests", [requests]),
            graph(
                "API latency",
                [
                    stage.metric_latency(period=_MINUTE, statistic="p50", label="p50"),
                    stage.metric_latency(period=_MINUTE, statistic="p99", label="p99"),
                    stage.metric_integration_latency(period=_MINUTE, statistic="p99", label="integration p99"),
                ],
            ),
            graph(
                "API errors (4xx includes throttled 429s)",
                [stage.metric_client_error(period=_MINUTE, statistic="Sum", label="4xx"), errors_5xx],
            ),
        )
        dashboard.add_widgets(
            graph(
                "Lambda errors",
                [f.alias.metric_errors(period=_MINUTE, label=name) for name, f in functions.items()],
            ),
            graph(
                "Lambda duration",
                [
                    metric
                    for name, f in functions.items()
                    for metric in (
                        f.alias.metric_duration(period=_MINUTE, statistic="p50", label=f"{name} p50"),
                        f.alias.metric_duration(period=_MINUTE, statistic="p99", label=f"{name} p99"),
                    )
                ],
            ),
            graph(
                "Lambda throttles",
                [f.alias.metric_throttles(period=_MINUTE, label=name) for name, f in functions.items()],
            ),
        )
        dashboard.add_widgets(*(graph(metric_name, [self._search(metric_name)]) for metric_name in CUSTOM_METRICS))
        dashboard.add_widgets(
            graph(
                "Dead-letter queue depth",
                [
                    q.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=_MINUTE, statistic="Maximum", label=name
                    )
                    for name, q in queues.items()
                ],
                width=12,
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=12, height=6),
        )
        return dashboard

    def _error_rate_alarm(self, name: str, function: GatewayFunction) -> cloudwatch.Alarm:
        return self._rate_alarm(
            f"{function.spec.construct_id}ErrorRate",
            f"More than {TASK_ERROR_RATE_THRESHOLD_PERCENT}% of the {name} function's invocations (alias live) "
            "failed: a provider down for good, or a broken version.",
            errors=function.alias.metric_errors(period=_MINUTE, statistic="Sum"),
            total=("invocations", function.alias.metric_invocations(period=_MINUTE, statistic="Sum")),
            label="error rate (%)", threshold=TASK_ERROR_RATE_THRESHOLD_PERCENT,
        )

    def _rate_alarm(self, construct_id: str, description: str, *, errors: cloudwatch.IMetric,
                    total: tuple[str, cloudwatch.IMetric], label: str, threshold: float) -> cloudwatch.Alarm:
        """Errors as a percentage of `total` (0 when nothing happened) above `threshold` in 3 of 5 minutes."""
        total_name, total_metric = total
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=cloudwatch.MathExpression(
                expression=f"IF({total_name} > 0, 100 * errors / {total_name}, 0)",
                using_metrics={total_name: total_metric, "errors": errors},
                label=label,
                period=_MINUTE,
            ),
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _undelivered(self, key: kms.IKey) -> sqs.Queue:
        """Where SNS puts alarm notifications it could not deliver to the subscription."""
        stack = Stack.of(self)
        queue = sqs.Queue(
            self,
            "UndeliveredAlarms",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        # SNS encrypts what it moves to the dead-letter queue with the queue's key.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowSnsToUseTheKeyForUndeliveredAlarms",
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                # (The topic's own ARN would make a cycle: the topic is encrypted with this key.)
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:sns:{stack.region}:{stack.account}:*"},
                },
            )
        )
        Validations.of(queue).acknowledge(
            Acknowledgment(
                id="Serverless-SQSRedrivePolicy",
                reason="This queue is the dead-letter queue of the alarm e-mail subscription, the end "
                "of that redrive chain: nothing consumes it, the operator reads it.",
            ),
            Acknowledgment(
                id="AwsSolutions-SQS3",
                reason="This queue is a DLQ: the alarm e-mail subscription's SNS redrive policy targets "
                "it, which the rule (looking only for SQS redrive policies) does not see.",
            ),
        )
        return queue

    @staticmethod
    def _search(metric_name: str) -> cloudwatch.MathExpression:
        return cloudwatch.MathExpression(
            expression=f"SEARCH('{{{METRICS_NAMESPACE}}} MetricName=\"{metric_name}\"', 'Sum', 300)",
            using_metrics={},
            label=metric_name,
            period=_FIVE_MINUTES,
        )
