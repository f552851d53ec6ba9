"""Batches: the batch workflow, its task functions, ingestion, the uploads notification and the Batch API routes.

Synthesized from a stand-in functions folder (a temporary copy with a throwaway handler for every
function the app knows), so these tests do not depend on which handlers exist in functions/ yet.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from deepseek_gateway.settings import Settings
from gateway_cdk.app_factory import build_app
from gateway_cdk.components import functions as functions_module
from gateway_cdk.components.functions import BACKEND_PROVIDERS, OPTIONAL_FUNCTIONS
from gateway_cdk.components.messaging import QUEUE_CONSUMER_TIMEOUTS
from gateway_cdk.paths import STATEMACHINES_DIR

from tests.infra.infra_helpers import (
    as_list,
    context_with,
    function_role_id,
    logical_id_of,
    nag_findings,
    only,
    policy_statements_of_role,
    props,
    resources,
)

TASK_FUNCTIONS = ("batch", "safety", "router", *(f"backend_{p}" for p in BACKEND_PROVIDERS))
READ_ONLY_DYNAMODB = {
    "dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable", "dynamodb:GetItem",
    "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:Query", "dynamodb:Scan",
}


def _stand_in_functions(root: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / "handler.py").write_text("def lambda_handler(event, context):\n    return {}\n")
    return root


def _synthesize(tmp_path: Path, names: tuple[str, ...]) -> tuple[dict, Path]:
    """The dev stack with exactly these functions' handlers (and the api's)."""
    outdir = tmp_path / "cdk.out"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(functions_module, "FUNCTIONS_DIR", _stand_in_functions(tmp_path / "functions", ("api", *names)))
        app, stacks = build_app(context_with(), stages=["dev"], outdir=str(outdir))
        with contextlib.suppress(RuntimeError):  # unacknowledged cdk-nag findings: asserted below
            app.synth()
    return json.loads((outdir / f"{stacks['dev'].stack_name}.template.json").read_text()), outdir


@pytest.fixture(scope="module")
def synthesized_all(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    return _synthesize(tmp_path_factory.mktemp("batches"), OPTIONAL_FUNCTIONS)


@pytest.fixture(scope="module")
def raw(synthesized_all: tuple[dict, Path]) -> dict:
    return synthesized_all[0]


def _id(raw: dict, resource_type: str, prefix: str) -> str:
    return only(resources(raw, resource_type), prefix)[0]


def _function(raw: dict, name: str) -> dict:
    construct = "".join(part.capitalize() for part in name.split("_"))
    return only(resources(raw, "AWS::Lambda::Function"), f"Functions{construct}Function")[1]


def _alias_id(raw: dict, name: str) -> str:
    construct = "".join(part.capitalize() for part in name.split("_"))
    return _id(raw, "AWS::Lambda::Alias", f"Functions{construct}LiveAlias")


def _target(resource: object) -> str:
    """The logical id a resource entry points at (`<bucket ARN>/*` names the bucket), else the literal."""
    if isinstance(resource, dict) and "Fn::Join" in resource:
        for part in resource["Fn::Join"][1]:
            if isinstance(part, dict) and "Fn::GetAtt" in part:
                return part["Fn::GetAtt"][0]
    return logical_id_of(resource) or (resource if isinstance(resource, str) else json.dumps(resource))


def _reach(raw: dict, name: str) -> dict[str, dict[str, set[str]]]:
    """service -> target logical id -> actions, over the function role's statements."""
    construct = "".join(part.capitalize() for part in name.split("_"))
    reach: dict[str, dict[str, set[str]]] = {}
    for statement in policy_statements_of_role(raw, function_role_id(raw, f"Functions{construct}Function")):
        assert statement["Effect"] == "Allow" and "Condition" not in statement, statement
        actions = as_list(statement["Action"])
        (service,) = {a.split(":")[0] for a in actions}
        for resource in as_list(statement["Resource"]):
            reach.setdefault(service, {}).setdefault(_target(resource), set()).update(actions)
    return reach


def _prefixed(targets: dict[str, set[str]]) -> set[str]:
    """Target logical ids without their hash suffix, e.g. StorageJobsTable."""
    return {t[:-8] for t in targets}


# --- the state machine --------------------------------------------------------------------------------


def test_the_batch_workflow_is_an_inline_logged_traced_standard_state_machine(raw: dict) -> None:
    (_, machine) = only(resources(raw, "AWS::StepFunctions::StateMachine"), "OrchestrationBatch")
    p = props(machine)
    assert p["StateMachineType"] == "STANDARD"
    assert json.loads(p["DefinitionString"]) == json.loads((STATEMACHINES_DIR / "batch.asl.json").read_text())
    assert p["TracingConfiguration"] == {"Enabled": True}
    logging = p["LoggingConfiguration"]
    assert logging["Level"] == "ALL" and logging["IncludeExecutionData"] is False  # inputs carry prompts
    log_group = raw["Resources"][logical_id_of(logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"])]
    assert "KmsKeyId" in props(log_group)
    # Each task names its function's `live` alias.
    assert {k: logical_id_of(v) for k, v in p["DefinitionSubstitutions"].items()} == {
        f"FunctionArn_{name}": _alias_id(raw, name) for name in TASK_FUNCTIONS
    }


def test_the_workflow_may_invoke_exactly_its_task_functions_live_aliases(raw: dict) -> None:
    machine_id = _id(raw, "AWS::StepFunctions::StateMachine", "OrchestrationBatch")
    role = logical_id_of(props(raw["Resources"][machine_id])["RoleArn"])
    statements = policy_statements_of_role(raw, role)
    invoked = {logical_id_of(r) for s in statements if "lambda:InvokeFunction" in as_list(s["Action"])
               for r in as_list(s["Resource"])}
    assert invoked == {_alias_id(raw, name) for name in TASK_FUNCTIONS}
    services = {a.split(":")[0] for s in statements for a in as_list(s["Action"])}
    assert services == {"lambda", "logs", "xray", "states"}


def test_the_outer_map_is_distributed_and_may_run_only_its_own_child_executions(raw: dict) -> None:
    """Each chunk is a child execution with its own history (an execution's history holds 25,000 events)."""
    definition = json.loads((STATEMACHINES_DIR / "batch.asl.json").read_text())
    assert definition["States"]["ProcessChunks"]["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    (machine_id, machine) = only(resources(raw, "AWS::StepFunctions::StateMachine"), "OrchestrationBatch")
    name = props(machine)["StateMachineName"]
    assert name == "deepseek-gateway-dev-batch"
    role = logical_id_of(props(machine)["RoleArn"])
    states = [s for s in policy_statements_of_role(raw, role) if as_list(s["Action"])[0].startswith("states:")]
    granted = {tuple(sorted(as_list(s["Action"]))): json.dumps(s["Resource"]) for s in states}
    assert set(granted) == {("states:StartExecution",), ("states:DescribeExecution", "states:StopExecution")}
    assert granted[("states:StartExecution",)].endswith(f':stateMachine:{name}"]]}}')
    assert granted[("states:DescribeExecution", "states:StopExecution")].endswith(f':execution:{name}/*"]]}}')


# --- the task functions -------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", BACKEND_PROVIDERS)
def test_each_backend_reads_exactly_its_own_provider_secret(raw: dict, provider: str) -> None:
    reach = _reach(raw, f"backend_{provider}")
    secret = _id(raw, "AWS::SecretsManager::Secret", f"Secrets{provider.capitalize()}ApiKey")
    assert reach.pop("secretsmanager") == {secret: {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}}
    assert _prefixed(reach.pop("dynamodb")) == {"StorageBreakerTable", "StorageIdempotencyTable"}
    assert set(reach) == {"kms", "logs", "xray"}
    env = props(_function(raw, f"backend_{provider}"))["Environment"]["Variables"]
    assert logical_id_of(env[f"{provider.upper()}_SECRET_ARN"]) == secret
    assert env[f"{provider.upper()}_BASE_URL"].startswith("https://")
    others = [p for p in BACKEND_PROVIDERS if p != provider]
    assert not {f"{p.upper()}_SECRET_ARN" for p in others} & set(env)
    assert {"BREAKER_TABLE_NAME", "IDEMPOTENCY_TABLE_NAME"} <= set(env)
    assert int(env["REQUEST_DEADLINE_S"]) < props(_function(raw, f"backend_{provider}"))["Timeout"]


def test_no_other_role_reads_a_backend_callers_secret_except_the_api_and_safetys_moderation(raw: dict) -> None:
    readers: dict[str, set[str]] = {}
    for name in (*OPTIONAL_FUNCTIONS, "api"):
        for target in _reach(raw, name).get("secretsmanager", {}):
            readers.setdefault(target[: -8], set()).add(name)
    expected = {f"Secrets{p.capitalize()}ApiKey": {"api", f"backend_{p}"} for p in BACKEND_PROVIDERS}
    expected["SecretsOpenaiApiKey"].add("safety")  # OpenAI's moderation endpoint, as the api function uses it
    assert readers == expected | {"SecretsWebhookSigningSecret": {"notifier"}}


def test_the_router_only_reads_tenants_breaker_jobs_and_usage(raw: dict) -> None:
    reach = _reach(raw, "router")
    dynamodb = reach.pop("dynamodb")
    assert _prefixed(dynamodb) == {"StorageTenantsTable", "StorageBreakerTable", "StorageJobsTable",
                                   "StorageUsageTable"}
    assert all(actions <= READ_ONLY_DYNAMODB for actions in dynamodb.values())
    assert set(reach) == {"kms", "logs", "xray"}  # no secretsmanager: it never calls a provider
    assert all(actions <= {"kms:Decrypt", "kms:DescribeKey"} for actions in reach["kms"].values())
    # The providers with a backend function count as configured: their secrets are named, not readable.
    env = props(_function(raw, "router"))["Environment"]["Variables"]
    for provider in BACKEND_PROVIDERS:
        secret = _id(raw, "AWS::SecretsManager::Secret", f"Secrets{provider.capitalize()}ApiKey")
        assert logical_id_of(env[f"{provider.upper()}_SECRET_ARN"]) == secret


def test_the_batch_task_reaches_its_tables_buckets_and_the_notifications_queue(raw: dict) -> None:
    reach = _reach(raw, "batch")
    dynamodb = reach.pop("dynamodb")
    assert _prefixed(dynamodb) == {"StorageJobsTable", "StorageUsageTable", "StorageTenantsTable"}
    (tenants,) = [t for t in dynamodb if t.startswith("StorageTenantsTable")]
    assert dynamodb[tenants] <= READ_ONLY_DYNAMODB
    s3 = reach.pop("s3")
    assert _prefixed(s3) == {"StorageUploadsBucket", "StorageResultsBucket"}
    (results,) = [t for t in s3 if t.startswith("StorageResultsBucket")]
    # chunks are read, then every version deleted at finalize
    assert {"s3:GetObject*", "s3:List*", "s3:DeleteObject*"} <= s3[results]
    assert _prefixed(reach.pop("sqs")) == {"MessagingNotificationsQueue"}
    assert set(reach) == {"kms", "logs", "xray"}
    env = props(_function(raw, "batch"))["Environment"]["Variables"]
    assert {"JOBS_TABLE_NAME", "USAGE_TABLE_NAME", "TENANTS_TABLE_NAME", "UPLOADS_BUCKET_NAME", "RESULTS_BUCKET_NAME",
            "NOTIFICATIONS_QUEUE_URL"} <= set(env)


def test_every_task_function_is_synchronous_and_has_no_dlq(raw: dict) -> None:
    for name in TASK_FUNCTIONS:
        assert "DeadLetterConfig" not in props(_function(raw, name))


# --- ingestion ----------------------------------------------------------------------------------------


def test_ingestion_consumes_the_ingestion_queue_with_partial_batch_responses(raw: dict) -> None:
    (_, mapping) = only(resources(raw, "AWS::Lambda::EventSourceMapping"), "FunctionsIngestion")
    p = props(mapping)
    queue_id, queue = only(resources(raw, "AWS::SQS::Queue"), "MessagingIngestionQueue")
    assert logical_id_of(p["EventSourceArn"]) == queue_id
    assert logical_id_of(p["FunctionName"]) == _alias_id(raw, "ingestion")
    assert p["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert p["BatchSize"] == 1
    timeout = props(_function(raw, "ingestion"))["Timeout"]
    assert timeout == QUEUE_CONSUMER_TIMEOUTS["ingestion"].to_seconds()
    assert props(queue)["VisibilityTimeout"] >= 6 * timeout


def test_ingestion_may_start_only_the_batch_state_machine(raw: dict) -> None:
    machine = _id(raw, "AWS::StepFunctions::StateMachine", "OrchestrationBatch")
    reach = _reach(raw, "ingestion")
    assert reach.pop("states") == {machine: {"states:StartExecution"}}
    env = props(_function(raw, "ingestion"))["Environment"]["Variables"]
    assert logical_id_of(env["BATCH_STATE_MACHINE_ARN"]) == machine
    # No other role may start executions (the workflow's own role starts only its child executions).
    machine_role = logical_id_of(props(raw["Resources"][machine])["RoleArn"])
    starters = {
        role for role in resources(raw, "AWS::IAM::Role")
        if any("states:StartExecution" in as_list(s["Action"]) for s in policy_statements_of_role(raw, role))
    }
    assert starters == {function_role_id(raw, "FunctionsIngestionFunction"), machine_role}


def test_ingestion_reaches_exactly_its_buckets_tables_and_queues(raw: dict) -> None:
    reach = _reach(raw, "ingestion")
    s3 = reach.pop("s3")
    assert _prefixed(s3) == {"StorageUploadsBucket", "StorageResultsBucket"}
    (results,) = [t for t in s3 if t.startswith("StorageResultsBucket")]
    assert all(a.startswith(("s3:PutObject", "s3:Abort")) for a in s3[results])  # chunks are only written
    dynamodb = reach.pop("dynamodb")
    assert _prefixed(dynamodb) == {"StorageJobsTable", "StorageTenantsTable", "StorageIdempotencyTable"}
    (tenants,) = [t for t in dynamodb if t.startswith("StorageTenantsTable")]
    assert dynamodb[tenants] <= READ_ONLY_DYNAMODB
    sqs = reach.pop("sqs")
    assert _prefixed(sqs) == {"MessagingNotificationsQueue", "MessagingIngestionQueue"}
    (notifications,) = [q for q in sqs if q.startswith("MessagingNotificationsQueue")]
    assert "sqs:ReceiveMessage" not in sqs[notifications]
    assert _prefixed(reach.pop("kms")) == {"EncryptionDataKey", "EncryptionIngestionKey"}
    assert set(reach) == {"states", "logs", "xray"}


def test_the_api_function_sends_batch_submitted_to_the_ingestion_queue(raw: dict) -> None:
    queue = _id(raw, "AWS::SQS::Queue", "MessagingIngestionQueue")
    assert _reach(raw, "api")["sqs"][queue] == {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
    env = props(_function(raw, "api"))["Environment"]["Variables"]
    assert logical_id_of(env["INGESTION_QUEUE_URL"]) == queue


def test_the_environment_names_are_the_settings_fields(raw: dict) -> None:
    """What the grants set is what deepseek_gateway.settings reads (IDEMPOTENCY_TABLE_NAME, ...)."""
    fields = {name.upper() for name in Settings.model_fields}
    for name in ("ingestion", "batch", "router", *(f"backend_{p}" for p in BACKEND_PROVIDERS)):
        env = set(props(_function(raw, name))["Environment"]["Variables"])
        unknown = {v for v in env - fields if not v.startswith("POWERTOOLS_")}
        assert unknown == set(), (name, unknown)


# --- the uploads bucket's notifications ---------------------------------------------------------------


def test_the_uploads_bucket_notifies_the_ingestion_queue_of_created_objects(raw: dict) -> None:
    uploads = _id(raw, "AWS::S3::Bucket", "StorageUploadsBucket")
    queue = _id(raw, "AWS::SQS::Queue", "MessagingIngestionQueue")
    (_, notifications) = only(resources(raw, "Custom::S3BucketNotifications"))
    p = props(notifications)
    assert logical_id_of(p["BucketName"]) == uploads
    assert p["NotificationConfiguration"] == {
        "QueueConfigurations": [{"Events": ["s3:ObjectCreated:*"], "QueueArn": {"Fn::GetAtt": [queue, "Arn"]}}]
    }
    # S3 may send to the queue, from the uploads bucket only...
    (_, policy) = only(resources(raw, "AWS::SQS::QueuePolicy"), "MessagingIngestionQueuePolicy")
    (allow,) = [s for s in props(policy)["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert "sqs:SendMessage" in as_list(allow["Action"])
    assert logical_id_of(allow["Condition"]["ArnLike"]["aws:SourceArn"]) == uploads
    # ... and use the queue's key, which is not the data key (S3 gets no permission on that).
    key = _id(raw, "AWS::KMS::Key", "EncryptionIngestionKey")
    assert logical_id_of(props(raw["Resources"][queue])["KmsMasterKeyId"]) == key
    s3_on_key = [s for s in props(raw["Resources"][key])["KeyPolicy"]["Statement"]
                 if s.get("Principal") == {"Service": "s3.amazonaws.com"}]
    assert {a for s in s3_on_key for a in as_list(s["Action"])} >= {"kms:GenerateDataKey*", "kms:Decrypt"}
    data_key = _id(raw, "AWS::KMS::Key", "EncryptionDataKey")
    assert "s3.amazonaws.com" not in json.dumps(props(raw["Resources"][data_key])["KeyPolicy"])


def test_the_notifications_handler_may_only_configure_the_uploads_bucket(raw: dict) -> None:
    uploads = _id(raw, "AWS::S3::Bucket", "StorageUploadsBucket")
    (role,) = [r for r in resources(raw, "AWS::IAM::Role") if r.startswith("BucketNotificationsHandler")]
    statements = policy_statements_of_role(raw, role)
    assert [(s["Action"], logical_id_of(s["Resource"])) for s in statements] == [("s3:PutBucketNotification", uploads)]


# --- the Batch API ------------------------------------------------------------------------------------


def test_the_batch_api_routes_go_to_the_api_function(raw: dict) -> None:
    from tests.infra.test_cdk_api import _routes

    routes = _routes(raw)
    api_alias = _alias_id(raw, "api")
    for route in (("GET", "/v1/batches"), ("POST", "/v1/batches"), ("GET", "/v1/batches/{batch_id}"),
                  ("POST", "/v1/batches/{batch_id}/cancel")):
        integration = routes[route]["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert {"Ref": api_alias} in integration["Uri"]["Fn::Join"][1]
        assert routes[route]["AuthorizationType"] == "CUSTOM"  # the authorizer's stand-in handler exists here


# --- cdk-nag, and the stack before every handler exists ---------------------------------------------------


def test_with_every_function_cdk_nag_finds_nothing_unacknowledged(synthesized_all: tuple[dict, Path]) -> None:
    assert nag_findings(synthesized_all[1] / "validation-report.json") == set()


@pytest.fixture(scope="module")
def without_anthropic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    names = tuple(n for n in OPTIONAL_FUNCTIONS if n != "backend_anthropic")
    yield _synthesize(tmp_path_factory.mktemp("no-anthropic"), names)[0]


def test_until_every_task_function_exists_the_workflow_is_left_out_and_nothing_may_start_it(
    without_anthropic: dict,
) -> None:
    assert resources(without_anthropic, "AWS::StepFunctions::StateMachine") == {}
    env = props(_function(without_anthropic, "ingestion"))["Environment"]["Variables"]
    assert "BATCH_STATE_MACHINE_ARN" not in env
    assert "states" not in _reach(without_anthropic, "ingestion")
    # The uploads still reach the ingestion function.
    assert len(resources(without_anthropic, "Custom::S3BucketNotifications")) == 1


def test_the_router_counts_only_providers_with_a_backend_function_as_configured(without_anthropic: dict) -> None:
    env = props(_function(without_anthropic, "router"))["Environment"]["Variables"]
    assert {"DEEPSEEK_SECRET_ARN", "OPENAI_SECRET_ARN"} <= set(env)
    assert "ANTHROPIC_SECRET_ARN" not in env


def test_an_execution_that_ends_without_failbatch_reaches_the_batch_function(raw: dict) -> None:
    # Given the EventBridge rule for the batch workflow's ended executions
    rule = props(only(resources(raw, "AWS::Events::Rule"), "BatchExecutionEnded")[1])
    pattern = rule["EventPattern"]
    # Then it matches exactly this state machine's FAILED, TIMED_OUT and ABORTED executions
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    (machine,) = pattern["detail"]["stateMachineArn"]
    assert logical_id_of(machine) == _id(raw, "AWS::StepFunctions::StateMachine", "OrchestrationBatch")
    # And its one target is the batch function's live alias, with retries
    (target,) = rule["Targets"]
    assert logical_id_of(target["Arn"]).startswith("FunctionsBatchAlias") or "Batch" in json.dumps(target["Arn"])
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8
