"""The local cloud's machinery on small synthetic templates: start-up faults, API Gateway's
authorizer and gateway responses, and SQS event source mappings with partial batch responses."""

from __future__ import annotations

import json
import socket
import textwrap

import boto3
import pytest
from local_cloud.apigateway import RestApi
from local_cloud.cloud import LocalCloud, LocalCloudConfig
from local_cloud.deploy import DeployError, Deployment, deploy
from local_cloud.errors import LocalCloudError
from local_cloud.functions import FunctionPool, FunctionSpec, FunctionStartError, InvocationError, free_port
from local_cloud.pollers import Mapping, SqsPoller
from local_cloud.template import Template
from moto import mock_aws

# --- start-up faults ----------------------------------------------------------------------------


def test_port_already_taken_is_named_and_nothing_starts(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cloud = LocalCloud(LocalCloudConfig(api_port=port, aws_port=free_port(), provider_port=free_port(),
                                            state_dir=tmp_path))
        with pytest.raises(LocalCloudError, match=f"port {port}"):
            cloud.start()
    assert cloud.provider is None and cloud.moto is None and cloud.pools == {}


def test_handler_crashing_at_import_is_reported_with_its_traceback(tmp_path):
    code = tmp_path / "broken"
    code.mkdir()
    (code / "handler.py").write_text("import not_a_module_anywhere\n")
    spec = FunctionSpec("BrokenFunction", "broken", code, "handler.lambda_handler", {}, 3, 128)
    pool = FunctionPool(spec, {"PATH": "/usr/bin:/bin"}, tmp_path, size=1)
    with pytest.raises(FunctionStartError) as caught:
        pool.start()
    assert "BrokenFunction" in str(caught.value)
    assert "not_a_module_anywhere" in str(caught.value)
    assert all(w.process.poll() is not None for w in pool._workers)


def test_handler_exception_is_a_function_error_and_the_sandbox_stays_warm(tmp_path):
    code = tmp_path / "flaky"
    code.mkdir()
    (code / "handler.py").write_text(textwrap.dedent("""
        def lambda_handler(event, context):
            if event.get("fail"):
                raise ValueError("asked to fail")
            return {"echo": event, "fn": context.function_name}
    """))
    spec = FunctionSpec("Flaky", "flaky-fn", code, "handler.lambda_handler", {}, 3, 128)
    pool = FunctionPool(spec, {"PATH": "/usr/bin:/bin"}, tmp_path, size=1)
    pool.start()
    try:
        with pytest.raises(InvocationError) as caught:
            pool.invoke({"fail": True})
        assert caught.value.payload["errorType"] == "ValueError"
        assert pool.invoke({"n": 1}) == {"echo": {"n": 1}, "fn": "flaky-fn"}
        assert pool.stats()[0]["invocations"] == 2
    finally:
        pool.stop()


def test_template_moto_cannot_deploy_fails_with_the_reason(tmp_path):
    body = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue",
                                    "Properties": {"QueueName": {"Fn::GetAtt": ["Missing", "Arn"]}}}}}
    path = tmp_path / "Broken.template.json"
    path.write_text(json.dumps(body))
    with mock_aws(), pytest.raises(DeployError, match="Missing"):
        deploy(Template.load(path), "Broken", "us-east-1", boto3.Session(region_name="us-east-1"))


# --- API Gateway emulation ------------------------------------------------------------------------


class FakePool:
    """Stands in for a function's sandboxes: records events, answers from a function."""

    def __init__(self, answer):
        self.answer = answer
        self.events = []

    def invoke(self, event, request_id=None):
        self.events.append(event)
        return self.answer(event)


def api_template() -> dict:
    integration = {"Type": "AWS_PROXY", "Uri": {"Fn::Join": ["", ["arn:", {"Fn::GetAtt": ["ApiFn", "Arn"]}]]}}
    return {"Resources": {
        "ApiFn": {"Type": "AWS::Lambda::Function", "Properties": {}},
        "AuthFn": {"Type": "AWS::Lambda::Function", "Properties": {}},
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {}},
        "Stage": {"Type": "AWS::ApiGateway::Stage", "Properties": {"StageName": "dev"}},
        "V1": {"Type": "AWS::ApiGateway::Resource",
               "Properties": {"ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]}, "PathPart": "v1"}},
        "Models": {"Type": "AWS::ApiGateway::Resource",
                   "Properties": {"ParentId": {"Ref": "V1"}, "PathPart": "models"}},
        "Model": {"Type": "AWS::ApiGateway::Resource",
                  "Properties": {"ParentId": {"Ref": "Models"}, "PathPart": "{model}"}},
        "Auth": {"Type": "AWS::ApiGateway::Authorizer", "Properties": {
            "Type": "REQUEST", "IdentitySource": "method.request.header.Authorization",
            "AuthorizerResultTtlInSeconds": 300,
            "AuthorizerUri": {"Fn::Join": ["", [{"Fn::GetAtt": ["AuthFn", "Arn"]}, "/invocations"]]}}},
        "GetModel": {"Type": "AWS::ApiGateway::Method", "Properties": {
            "HttpMethod": "GET", "ResourceId": {"Ref": "Model"}, "AuthorizationType": "CUSTOM",
            "AuthorizerId": {"Ref": "Auth"}, "Integration": integration}},
        "Unauthorized": {"Type": "AWS::ApiGateway::GatewayResponse", "Properties": {
            "ResponseType": "UNAUTHORIZED", "StatusCode": "401",
            "ResponseTemplates": {"application/json":
                '{"error":{"message":$context.error.messageString,"type":"authentication_error",'
                '"param":null,"code":"invalid_api_key"}}'}}},
    }}


def rest_api(tmp_path, authorize):
    path = tmp_path / "Api.template.json"
    path.write_text(json.dumps(api_template()))
    deployment = Deployment(Template.load(path), "Api", "us-east-1", physical={"Api": "abc123"})
    backend = FakePool(lambda e: {"statusCode": 200, "headers": {"x-model": e["pathParameters"]["model"]},
                                  "body": json.dumps(e["requestContext"].get("authorizer"))})
    authorizer = FakePool(authorize)
    return RestApi(deployment, {"ApiFn": backend, "AuthFn": authorizer}), backend, authorizer


def allow(event):
    return {"principalId": "tenant-1", "context": {"tenant_id": "t1"},
            "policyDocument": {"Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke",
                                              "Resource": event["methodArn"].rsplit("/", 3)[0] + "/*"}]}}


def test_authorizer_runs_first_and_its_context_reaches_the_function(tmp_path):
    api, backend, _ = rest_api(tmp_path, allow)
    status, headers, body = api.handle("GET", "/v1/models/deepseek-chat", {"Authorization": "Bearer k"}, b"",
                                       "127.0.0.1")
    assert status == 200
    assert headers["x-model"] == "deepseek-chat"
    assert json.loads(body) == {"tenant_id": "t1", "principalId": "tenant-1"}
    assert backend.events[0]["resource"] == "/v1/models/{model}"


def test_authorizer_result_is_cached_per_identity(tmp_path):
    api, _, authorizer = rest_api(tmp_path, allow)
    for _ in range(3):
        api.handle("GET", "/v1/models/a", {"Authorization": "Bearer k1"}, b"", "127.0.0.1")
    api.handle("GET", "/v1/models/a", {"Authorization": "Bearer k2"}, b"", "127.0.0.1")
    assert len(authorizer.events) == 2


def test_missing_identity_source_is_401_from_the_gateway_response_without_calling_anything(tmp_path):
    api, backend, authorizer = rest_api(tmp_path, allow)
    status, _, body = api.handle("GET", "/v1/models/a", {}, b"", "127.0.0.1")
    assert status == 401
    assert json.loads(body)["error"]["code"] == "invalid_api_key"
    assert backend.events == [] and authorizer.events == []


def test_deny_policy_is_403_and_the_function_is_not_called(tmp_path):
    def deny(event):
        return {"principalId": "x", "policyDocument": {"Statement": [
            {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": event["methodArn"]}]}}

    api, backend, _ = rest_api(tmp_path, deny)
    status, _, _ = api.handle("GET", "/v1/models/a", {"Authorization": "Bearer k"}, b"", "127.0.0.1")
    assert status == 403
    assert backend.events == []


def test_payload_over_10_mb_is_refused_by_the_gateway(tmp_path):
    api, backend, _ = rest_api(tmp_path, allow)
    status, _, _ = api.handle("GET", "/v1/models/a", {"Authorization": "Bearer k"}, b"x" * (10 * 1024 * 1024 + 1),
                              "127.0.0.1")
    assert status == 413
    assert backend.events == []


# --- SQS event source mappings --------------------------------------------------------------------


@pytest.fixture
def queues():
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue = sqs.create_queue(QueueName="work", Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})})["QueueUrl"]
        yield sqs, queue, dlq


def test_partial_batch_response_deletes_only_the_successes(queues):
    sqs, queue, _ = queues
    for body in ("ok-1", "bad", "ok-2"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    pool = FakePool(lambda e: {"batchItemFailures": [
        {"itemIdentifier": r["messageId"]} for r in e["Records"] if r["body"] == "bad"]})
    poller = SqsPoller(Mapping(queue, "arn:aws:sqs:us-east-1:123456789012:work", "Fn", 10, 0, True),
                       pool, sqs, "us-east-1")
    assert poller.poll_once() == 3
    assert [r["body"] for r in pool.events[0]["Records"]] == ["ok-1", "bad", "ok-2"]
    assert poller.poll_once() == 1  # only the failed message comes back
    assert pool.events[1]["Records"][0]["body"] == "bad"


def test_poison_message_lands_in_the_dlq_after_max_receive_count(queues):
    sqs, queue, dlq = queues
    sqs.send_message(QueueUrl=queue, MessageBody="poison")

    def crash(event):
        raise InvocationError("Fn", {"errorType": "ValueError", "errorMessage": "poison"})

    poller = SqsPoller(Mapping(queue, "arn", "Fn", 10, 0, True), FakePool(crash), sqs, "us-east-1")
    poller.poll_once()
    poller.poll_once()
    assert poller.poll_once() == 0
    moved = sqs.receive_message(QueueUrl=dlq).get("Messages", [])
    assert [m["Body"] for m in moved] == ["poison"]


def test_batch_size_is_respected(queues):
    sqs, queue, _ = queues
    for n in range(5):
        sqs.send_message(QueueUrl=queue, MessageBody=str(n))
    pool = FakePool(lambda e: {"batchItemFailures": []})
    poller = SqsPoller(Mapping(queue, "arn", "Fn", 2, 0, True), pool, sqs, "us-east-1")
    assert poller.poll_once() == 2
    assert len(pool.events[0]["Records"]) == 2




def test_state_machine_definition_substitutions_reach_moto_with_alias_arns(tmp_path):
    """Given a state machine whose task names a function's `live` alias through DefinitionSubstitutions
    (as CDK writes it), when the template is deployed into moto, then the definition moto runs names
    the alias ARN (moto itself ignores DefinitionSubstitutions), and the alias exists in moto."""
    definition = json.dumps({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "${FunctionArn_work}",
                                                               "End": True}}})
    body = {"Resources": {
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}},
        "WorkFn": {"Type": "AWS::Lambda::Function", "Properties": {
            "Runtime": "python3.12", "Handler": "handler.lambda_handler", "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Code": {"ZipFile": "def lambda_handler(event, context):\n    return event\n"}}},
        "WorkAlias": {"Type": "AWS::Lambda::Alias", "Properties": {
            "FunctionName": {"Ref": "WorkFn"}, "FunctionVersion": "1", "Name": "live"}},
        "Machine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
            "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]}, "DefinitionString": definition,
            "DefinitionSubstitutions": {"FunctionArn_work": {"Ref": "WorkAlias"}}}},
    }}
    path = tmp_path / "Machine.template.json"
    path.write_text(json.dumps(body))
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        deployment = deploy(Template.load(path), "Machine", "us-east-1", session)
        function_name = deployment.ref("WorkFn")
        described = session.client("stepfunctions").describe_state_machine(
            stateMachineArn=deployment.ref("Machine"))
        resource = json.loads(described["definition"])["States"]["T"]["Resource"]
        assert resource == f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}:live"
        alias = session.client("lambda").get_alias(FunctionName=function_name, Name="live")
        assert alias["FunctionVersion"] != "$LATEST"
