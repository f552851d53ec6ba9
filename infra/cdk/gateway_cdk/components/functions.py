"""Every Lambda function of the gateway, built the same way from a list of `FunctionSpec`s.

Each function: arm64, the newest Python runtime the Powertools public layer exists for, three layers
(Powertools public layer, the dependency layer built from the project's pins, the core library),
X-Ray tracing, its own KMS-encrypted log group with retention, its own IAM role holding only its
grants, SnapStart on published versions and a `live` alias that API Gateway, event sources and
CodeDeploy use.

A new function is one more `FunctionSpec` in `function_specs()` (and its folder under functions/).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from ..bundling import dependency_layer_code
from ..config import GatewayConfig
from ..paths import FUNCTIONS_DIR, LAYERS_DIR, PYPROJECT
from .common import encrypted_log_group
from .grants import (
    Grant,
    SharedResources,
    name_provider_secret,
    publish_sms,
    read_provider_secret,
    read_secret,
    read_table,
    read_write_bucket,
    read_write_table,
    send_email,
    send_to_queue,
    write_bucket,
)
from .messaging import QUEUE_CONSUMER_TIMEOUTS

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
ALIAS_NAME = "live"

POWERTOOLS_ACCOUNT = "017000801446"

SERVICE_NAME = "deepseek-gateway"
METRICS_NAMESPACE = "DeepSeekGateway"

_ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "**/*.egg-info", "**/.pytest_cache"]


def powertools_layer_arn(region: str, version: int, *, partition: str = "aws") -> str:
    python = RUNTIME.name.replace(".", "")  # python3.14 -> python314
    return (
        f"arn:{partition}:lambda:{region}:{POWERTOOLS_ACCOUNT}:layer:"
        f"AWSLambdaPowertoolsPythonV3-{python}-arm64:{version}"
    )


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function: its folder under functions/, sizing, environment and grants."""

    name: str
    description: str
    timeout: Duration = field(default_factory=lambda: Duration.seconds(30))
    memory_mb: int = 512
    environment: Mapping[str, str] = field(default_factory=dict)
    grants: tuple[Grant, ...] = ()
    handler: str = "handler.lambda_handler"
    reserved_concurrency: int | None = None
    provisioned_concurrency: int = 0
    # Invoked synchronously (API Gateway): errors go back to the caller, a DLQ would never fill.
    synchronous: bool = False
    # A queue consumer: the event source mapping invokes it, so failed messages go to that queue's
    # DLQ (redrive) and a function DLQ would never fill. The stack attaches the `live` alias.
    consumes_queue: str | None = None
    queue_batch_size: int = 10
    queue_max_concurrency: int | None = None  # the event source's maximum concurrency
    # A Step Functions task that reports expected outcomes (a provider's 429, a policy denial) as errors for
    # the workflow's Retry/Catch: its alarm watches the error rate, not single errors.
    errors_are_outcomes: bool = False

    @property
    def code_dir(self) -> Path:
        return FUNCTIONS_DIR / self.name

    @property
    def construct_id(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))


def api_timeout(config: GatewayConfig) -> Duration:
    """The api function outlives API Gateway's integration timeout by one second, no more."""
    return Duration.seconds(config.integration_timeout_s + 1)


def has_handler(name: str) -> bool:
    return (FUNCTIONS_DIR / name / "handler.py").is_file()


def authorizer_spec(config: GatewayConfig, *, extra_issuers: Sequence[Mapping[str, Any]] = ()) -> FunctionSpec:
    """The authorizer; `extra_issuers` are issuers the stack itself creates (the optional Cognito pool).

    Their ids are CloudFormation tokens: a token survives `json.dumps` as an opaque `${Token[...]}`
    marker, and CDK renders the whole value as an `Fn::Join` around the references. Only ids (letters,
    digits, `_`, `-`) are tokens here, so the JSON needs no escaping at deploy time.
    """
    # Plan -> the API key of its usage plan (components/api.py creates them): the authorizer returns
    # the tenant's as usageIdentifierKey, falling back to "default".
    environment = {"USAGE_PLAN_KEYS": json.dumps(config.usage_plan_keys, separators=(",", ":"))}
    issuers = [*config.oidc_issuers, *extra_issuers]
    if issuers:
        environment["OIDC_ISSUERS"] = json.dumps(issuers, separators=(",", ":"))
    return FunctionSpec(
        name="authorizer",
        description="API Gateway REQUEST authorizer: gateway API keys and OIDC JWTs",
        timeout=Duration.seconds(10),
        memory_mb=512,
        environment=environment,
        grants=(read_table("tenants"),),
        synchronous=True,
    )


def notifier_spec(config: GatewayConfig) -> FunctionSpec:
    """The notifier: consumes the notifications queue, delivers to webhooks, SES and SNS (SMS)."""
    environment: dict[str, str] = {}
    if config.allow_private_webhooks:  # the local cloud only; the config refuses it for prod
        environment["ALLOW_PRIVATE_WEBHOOKS"] = "true"
    return FunctionSpec(
        name="notifier",
        description="Notifications queue consumer: signed webhooks, e-mail (SES) and SMS (SNS)",
        timeout=QUEUE_CONSUMER_TIMEOUTS["notifications"],  # the queue's visibility is sized for it
        memory_mb=512,
        environment=environment,
        grants=(
            read_table("tenants"),  # tenants' notification settings
            read_write_table("idempotency"),  # the delivery ledger
            read_secret("webhook_signing", "WEBHOOK_SIGNING_SECRET_ARN"),
            send_email(),  # only with context `ses_sender` (sets SES_SENDER)
            publish_sms(),
        ),
        consumes_queue="notifications",
        queue_batch_size=10,
        queue_max_concurrency=5,  # spares tenants' endpoints and SES/SNS quotas in a burst
    )


BACKEND_PROVIDERS = ("deepseek", "openai", "anthropic")

# Functions that join the stack when their handler exists (the api function always exists).
OPTIONAL_FUNCTIONS = (
    "authorizer",
    "safety",
    "notifier",
    "ingestion",
    "batch",
    "router",
    *(f"backend_{provider}" for provider in BACKEND_PROVIDERS),
)


def absent_functions() -> frozenset[str]:
    """The functions the app knows but whose handler does not exist yet (so they are not in the stack)."""
    return frozenset(name for name in OPTIONAL_FUNCTIONS if not has_handler(name))


def ingestion_spec() -> FunctionSpec:
    """The ingestion queue's consumer: S3 uploads and submitted batches, validated into work chunks.

    The stack adds BATCH_STATE_MACHINE_ARN and states:StartExecution on the batch workflow, once that exists.
    """
    return FunctionSpec(
        name="ingestion",
        description="Ingestion queue consumer: uploaded files and submitted batches into the batch workflow",
        timeout=QUEUE_CONSUMER_TIMEOUTS["ingestion"],  # the queue's visibility is sized for it
        memory_mb=2048,  # streams a batch file (200 MB: ~290 MB peak); the memory buys the CPU share (bench_ingestion)
        grants=(
            read_write_bucket("uploads"),  # input files; direct uploads copied to <tenant>/files/
            write_bucket("results"),  # work chunks
            read_write_table("jobs"),  # file and batch records, invalid lines' results
            read_table("tenants"),  # a direct upload's tenant must exist and be active
            send_to_queue("notifications"),  # file.ingested, batch.failed
            read_write_table("idempotency"),  # Powertools idempotency of the messages
        ),
        consumes_queue="ingestion",
        # One message can be a whole batch file to validate: one per invocation, so that a large file
        # does not make the messages beside it time out and come back.
        queue_batch_size=1,
    )


def batch_spec() -> FunctionSpec:
    """The batch workflow's bookkeeping task: load_chunk, record, finalize, fail."""
    return FunctionSpec(
        name="batch",
        description="Batch workflow task: loads work chunks, records line results, finalizes or fails batches",
        # finalize writes the output and error files of up to 50,000 lines.
        timeout=Duration.seconds(300),
        memory_mb=1024,
        grants=(
            read_write_table("jobs"),  # batch records and line results
            read_write_bucket("uploads"),  # the output and error files, as file records' objects
            read_write_bucket("results"),  # work chunks: read per chunk, every version deleted at finalize
            read_write_table("usage"),  # billing of answered lines (usage records, totals, month spend)
            read_table("tenants"),
            send_to_queue("notifications"),  # batch.completed, batch.failed
        ),
        synchronous=True,  # a state machine task: errors go back to the workflow's Retry/Catch
    )


def router_spec(providers: Sequence[str] = BACKEND_PROVIDERS) -> FunctionSpec:
    """The batch workflow's model router: the provider chain for an item, and the next candidate.

    `providers`: those with a backend function. Their secrets' ARNs (not the right to read them) tell
    the router which providers are configured; a provider without a backend is never routed to.
    """
    return FunctionSpec(
        name="router",
        errors_are_outcomes=True,
        description="Batch workflow task: routes an item to a provider chain (policy, budget, breaker)",
        timeout=Duration.seconds(10),
        memory_mb=512,
        grants=(
            read_table("tenants"),  # the tenant's policy
            read_table("breaker"),  # open circuit breakers are skipped
            read_table("jobs"),  # the batch's status and window (cancelled, expired)
            read_table("usage"),  # the tenant's budget
            *(name_provider_secret(provider) for provider in providers),
        ),
        synchronous=True,
    )


def backend_spec(provider: str) -> FunctionSpec:
    """One provider's caller: only that provider's secret, the breaker, and idempotency of calls."""
    timeout_s = 120
    return FunctionSpec(
        name=f"backend_{provider}",
        errors_are_outcomes=True,
        description=f"Batch workflow task: one chat completion from {provider} (idempotent per batch line)",
        timeout=Duration.seconds(timeout_s),
        memory_mb=512,
        environment={
            # The core gives up (ProviderRetryableError) before Lambda stops the function.
            "REQUEST_DEADLINE_S": str(timeout_s - 10),
        },
        grants=(
            read_provider_secret(provider),  # its secret and base URL, and no other provider's
            read_write_table("breaker"),
            read_write_table("idempotency"),  # Powertools idempotency on the item's idempotency_key
        ),
        synchronous=True,
    )


def function_specs(
    config: GatewayConfig, *, extra_oidc_issuers: Sequence[Mapping[str, Any]] = ()
) -> list[FunctionSpec]:
    """The functions that exist. Later capabilities add one entry each.

    The authorizer joins when its handler exists; with it, the API switches from IAM
    authorization to the Lambda authorizer and usage-plan keys.
    """
    specs = [
        FunctionSpec(
            name="api",
            description="OpenAI-compatible HTTP API: the synchronous path, all providers in-process",
            timeout=api_timeout(config),
            memory_mb=1024,
            environment={
                # The core gives up (504 in the OpenAI shape) before API Gateway does.
                "REQUEST_DEADLINE_S": str(max(1, config.integration_timeout_s - 1)),
            },
            grants=(
                read_write_table("breaker"),
                read_write_table("tenants"),  # the admin API: tenants, keys, policies
                read_write_table("usage"),  # limit counters, usage records and aggregates
                send_to_queue("notifications"),  # budget threshold events
                send_to_queue("ingestion"),  # batch.submitted (Batch API)
                read_write_table("jobs"),  # file and batch records (Files and Batch APIs)
                read_write_bucket("uploads"),  # file contents under <tenant>/files/
                read_provider_secret("deepseek"),
                read_provider_secret("openai"),
                read_provider_secret("anthropic"),
            ),
            reserved_concurrency=config.reserved_concurrency,
            provisioned_concurrency=config.provisioned_concurrency,
            synchronous=True,
        ),
    ]
    if has_handler("authorizer"):
        specs.append(authorizer_spec(config, extra_issuers=extra_oidc_issuers))
    if has_handler("safety"):
        specs.append(FunctionSpec(
            name="safety",
            description="The safety layer as a Step Functions task: input and output checks of batch items",
            timeout=Duration.seconds(10),
            memory_mb=512,
            grants=(
                read_table("tenants"),  # tenants' canary seeds, never carried in execution inputs
                read_provider_secret("openai"),  # OpenAI's moderation endpoint, when a tenant's settings use it
            ),
            synchronous=True,  # a state machine task: errors go back to the workflow's Retry/Catch
        ))
    if has_handler("notifier"):
        specs.append(notifier_spec(config))
    # The batches: ingestion, and the batch workflow's task functions (statemachines/batch.asl.json).
    if has_handler("ingestion"):
        specs.append(ingestion_spec())
    if has_handler("batch"):
        specs.append(batch_spec())
    if has_handler("router"):
        specs.append(router_spec([p for p in BACKEND_PROVIDERS if has_handler(f"backend_{p}")]))
    for provider in BACKEND_PROVIDERS:
        if has_handler(f"backend_{provider}"):
            specs.append(backend_spec(provider))
    return specs


class GatewayFunction(Construct):
    """One function with its role, log group, SnapStart version and `live` alias."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        config: GatewayConfig,
        layers: list[lambda_.ILayerVersion],
        logs_key: kms.IKey,
        resources: SharedResources,
    ) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        self.log_group = encrypted_log_group(self, "LogGroup", key=logs_key, config=config)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"DeepSeek Gateway {config.stage}: the {spec.name} function",
        )
        self.log_group.grant_write(self.role)

        # SnapStart and provisioned concurrency cannot be combined on one version.
        snap_start = None if spec.provisioned_concurrency else lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS
        self.function = lambda_.Function(
            self,
            "Function",
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=spec.handler,
            code=lambda_.Code.from_asset(str(spec.code_dir), exclude=_ASSET_EXCLUDES),
            layers=layers,
            timeout=spec.timeout,
            memory_size=spec.memory_mb,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            snap_start=snap_start,
            reserved_concurrent_executions=spec.reserved_concurrency,
            environment={
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": config.log_level,
                # Responses carry prompts and completions: keep them out of X-Ray.
                "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
                "STAGE": config.stage,
                **spec.environment,
            },
        )
        for grant in spec.grants:
            grant(resources, self.function)

        self.alias = lambda_.Alias(
            self,
            "LiveAlias",
            alias_name=ALIAS_NAME,
            version=self.function.current_version,
            provisioned_concurrent_executions=spec.provisioned_concurrency or None,
        )
        CfnOutput(
            self, "FunctionName", value=self.function.function_name, description=f"The {spec.name} function"
        ).override_logical_id(f"{spec.construct_id}FunctionName")

        Validations.of(self.function).acknowledge(
            Acknowledgment(
                id="@aws-cdk/aws-lambda:snapStartRequirePublish",
                reason="Every deploy publishes a version (current_version) behind the live alias; "
                "nothing invokes $LATEST.",
            )
        )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="Only xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing) use "
                "Resource '*': X-Ray supports no resource-level permissions for them. Every other "
                "statement names its resource.",
            )
        )
        if spec.synchronous:
            Validations.of(self.function).acknowledge(
                Acknowledgment(
                    id="Serverless-LambdaDLQ",
                    reason=f"The {spec.name} function is invoked synchronously (by API Gateway or as a "
                    "Step Functions task) and its caller gets the error back; a DLQ only receives "
                    "failed asynchronous invocations.",
                )
            )
        elif spec.consumes_queue:
            Validations.of(self.function).acknowledge(
                Acknowledgment(
                    id="Serverless-LambdaDLQ",
                    reason=f"The {spec.name} function consumes the {spec.consumes_queue} queue through an "
                    "event source mapping: messages it fails return to that queue and move to its "
                    "dead-letter queue after maxReceiveCount. A function DLQ only receives failed "
                    "asynchronous invocations and would never fill.",
                )
            )


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GatewayConfig,
        logs_key: kms.IKey,
        resources: SharedResources,
        specs: list[FunctionSpec] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        layer_removal = RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY

        powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Layer0Powertools",
            powertools_layer_arn(stack.region, config.powertools_layer_version, partition=stack.partition),
        )
        self.dependency_layer = lambda_.LayerVersion(
            self,
            "Layer1Dependencies",
            description="Third-party dependencies pinned in pyproject.toml (less boto3 and Powertools)",
            code=dependency_layer_code(
                source_dir=LAYERS_DIR / "deps", pyproject=PYPROJECT, runtime=RUNTIME, architecture=ARCHITECTURE
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            removal_policy=layer_removal,
        )
        self.core_layer = lambda_.LayerVersion(
            self,
            "Layer2Core",
            description="The deepseek_gateway core library",
            code=lambda_.Code.from_asset(str(LAYERS_DIR / "core"), exclude=_ASSET_EXCLUDES),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            removal_policy=layer_removal,
        )
        # Order matters: Lambda extracts layers in order and later ones overwrite earlier files in
        # /opt/python, so our pins must come after whatever the Powertools layer bundles. CDK sorts a
        # function's layers by construct path, hence the numbered construct ids.
        layers = [powertools, self.dependency_layer, self.core_layer]

        self.functions: dict[str, GatewayFunction] = {}
        for spec in specs if specs is not None else function_specs(config):
            self.functions[spec.name] = GatewayFunction(
                self,
                spec.construct_id,
                spec=spec,
                config=config,
                layers=layers,
                logs_key=logs_key,
                resources=resources,
            )

    def alias(self, name: str) -> lambda_.Alias | None:
        function = self.functions.get(name)
        return function.alias if function else None
