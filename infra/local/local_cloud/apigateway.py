"""API Gateway (REST) on 127.0.0.1, from the template: routes, REQUEST authorizer with its cache,
Lambda proxy events, gateway responses for denials, and the 10 MB payload limit.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local_cloud.deploy import Deployment
from local_cloud.functions import FunctionPool, InvocationError
from local_cloud.template import ACCOUNT, referenced_ids

PAYLOAD_LIMIT_BYTES = 10 * 1024 * 1024


@dataclass
class Authorizer:
    function: str  # logical id
    identity_headers: list[str]
    ttl_s: int
    cache: dict[tuple[str, ...], tuple[float, dict[str, Any]]] = field(default_factory=dict)


@dataclass
class Route:
    resource: str  # e.g. /v1/models/{model}
    method: str  # GET, POST, ANY
    function: str  # logical id
    authorizer: Authorizer | None
    pattern: re.Pattern[str]


@dataclass
class GatewayResponse:
    status: int
    template: str | None
    headers: dict[str, str]


def _function_of(value: Any, deployment: Deployment) -> str | None:
    for logical_id in referenced_ids(value):
        kind = deployment.template.type_of(logical_id)
        if kind == "AWS::Lambda::Function":
            return logical_id
        if kind == "AWS::Lambda::Alias":
            return deployment.alias_target.get(logical_id)
    return None


def _pattern(resource: str) -> re.Pattern[str]:
    regex = ""
    for part in resource.strip("/").split("/"):
        if not part:
            continue
        if part.startswith("{") and part.endswith("+}"):
            regex += rf"/(?P<{part[1:-2]}>.+)"
        elif part.startswith("{"):
            regex += rf"/(?P<{part[1:-1]}>[^/]+)"
        else:
            regex += "/" + re.escape(part)
    return re.compile(f"^{regex or '/'}$")


class RestApi:
    """The routes and responses of the template's REST API, and how a request goes through them."""

    def __init__(self, deployment: Deployment, pools: dict[str, FunctionPool]) -> None:
        template = deployment.template
        self.pools = pools
        self.deployment = deployment
        self.api_id = next((deployment.physical.get(i, i) for i, _ in template.of_type("AWS::ApiGateway::RestApi")),
                           "local")
        self.stage = next((r["Properties"].get("StageName", "local") for _, r in
                           template.of_type("AWS::ApiGateway::Stage")), "local")
        paths: dict[str, str] = {}

        def path_of(resource_ref: Any) -> str:
            if not isinstance(resource_ref, dict) or "Ref" not in resource_ref:
                return ""  # the root resource (Fn::GetAtt RestApi.RootResourceId)
            logical_id = resource_ref["Ref"]
            if logical_id not in paths:
                props = template.props(logical_id)
                paths[logical_id] = f"{path_of(props['ParentId'])}/{props['PathPart']}"
            return paths[logical_id]

        authorizers: dict[str, Authorizer] = {}
        for logical_id, resource in template.of_type("AWS::ApiGateway::Authorizer"):
            props = resource["Properties"]
            function = _function_of(props.get("AuthorizerUri"), deployment)
            if function is None:
                continue
            sources = [s.strip() for s in str(props.get("IdentitySource", "")).split(",") if s.strip()]
            headers = [s.removeprefix("method.request.header.").lower() for s in sources
                       if s.startswith("method.request.header.")]
            authorizers[logical_id] = Authorizer(function, headers, int(props.get("AuthorizerResultTtlInSeconds", 300)))

        self.routes: list[Route] = []
        for _, resource in template.of_type("AWS::ApiGateway::Method"):
            props = resource["Properties"]
            function = _function_of((props.get("Integration") or {}).get("Uri"), deployment)
            if function is None:
                continue
            path = path_of(props.get("ResourceId")) or "/"
            authorizer_ref = props.get("AuthorizerId")
            authorizer = authorizers.get(authorizer_ref.get("Ref")) if isinstance(authorizer_ref, dict) else None
            self.routes.append(Route(path, props["HttpMethod"].upper(), function, authorizer, _pattern(path)))
        # Static paths win over {param} paths, which win over {proxy+}, as in API Gateway.
        self.routes.sort(key=lambda r: (r.resource.count("+}"), r.resource.count("{"), -len(r.resource)))

        self.responses: dict[str, GatewayResponse] = {}
        for _, resource in template.of_type("AWS::ApiGateway::GatewayResponse"):
            props = resource["Properties"]
            headers = {k.removeprefix("gatewayresponse.header."): v.strip("'")
                       for k, v in (props.get("ResponseParameters") or {}).items()}
            template_text = (props.get("ResponseTemplates") or {}).get("application/json")
            status = int(props.get("StatusCode") or 0)
            self.responses[props["ResponseType"]] = GatewayResponse(status, template_text, headers)

    # --- gateway responses ---------------------------------------------------------------------

    _DEFAULT_STATUS = {"UNAUTHORIZED": 401, "ACCESS_DENIED": 403, "MISSING_AUTHENTICATION_TOKEN": 403,
                       "REQUEST_TOO_LARGE": 413, "THROTTLED": 429, "AUTHORIZER_FAILURE": 500,
                       "INTEGRATION_FAILURE": 504, "INTEGRATION_TIMEOUT": 504, "DEFAULT_5XX": 502}

    def gateway_response(self, kind: str, message: str, request_id: str,
                         authorizer: dict[str, Any] | None = None) -> tuple[int, dict[str, str], bytes]:
        status = self._DEFAULT_STATUS.get(kind, 400)
        fallback = "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX"
        response = self.responses.get(kind) or self.responses.get(fallback)
        headers = {"content-type": "application/json", "x-amzn-requestid": request_id,
                   "x-amzn-errortype": kind}
        if response is None:
            return status, headers, json.dumps({"message": message}).encode()
        body = response.template or json.dumps({"message": message})
        body = (body.replace("$context.error.messageString", json.dumps(message))
                .replace("$context.error.message", message)
                .replace("$context.error.responseType", kind)
                .replace("$context.requestId", request_id))
        body = re.sub(r"\$context\.authorizer\.(\w+)", lambda m: str((authorizer or {}).get(m.group(1), "")), body)
        headers.update(response.headers)
        return response.status or status, headers, body.encode()

    # --- a request ------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str
               ) -> tuple[int, dict[str, str] | dict[str, list[str]], bytes]:
        request_id = str(uuid.uuid4())
        url = urlsplit(raw_path)
        path = url.path
        if path.startswith(f"/{self.stage}/"):
            path = path[len(self.stage) + 1:]
        if len(body) > PAYLOAD_LIMIT_BYTES:
            return self.gateway_response("REQUEST_TOO_LARGE", "Request Too Long", request_id)
        route, params = self._match(method, path)
        if route is None:
            return self.gateway_response("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", request_id)
        event = self._proxy_event(route, method, path, params, url.query, headers, body, request_id, source_ip)
        if route.authorizer is not None:
            denial = self._authorize(route, event, headers, request_id)
            if denial is not None:
                return denial
        try:
            result = self.pools[route.function].invoke(event, request_id)
        except InvocationError:
            return self.gateway_response("DEFAULT_5XX", "Internal server error", request_id)
        if not isinstance(result, dict) or "statusCode" not in result:
            return self.gateway_response("DEFAULT_5XX", "Internal server error", request_id)
        out: dict[str, Any] = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            out[key.lower()] = [str(v) for v in values] if len(values) > 1 else str(values[-1])
        out.setdefault("x-amzn-requestid", request_id)
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        return int(result["statusCode"]), out, data

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.routes:
            if route.method not in (method, "ANY"):
                continue
            match = route.pattern.match(path)
            if match:
                return route, match.groupdict()
        return None, {}

    def _proxy_event(self, route: Route, method: str, path: str, params: dict[str, str], query: str,
                     headers: dict[str, str], body: bytes, request_id: str, source_ip: str) -> dict[str, Any]:
        multi_query = parse_qs(query, keep_blank_values=True) if query else None
        try:
            text, is_b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_b64 = base64.b64encode(body).decode(), True
        now = time.time()
        return {
            "resource": route.resource,
            "path": path,
            "httpMethod": method,
            "headers": headers or None,
            "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} if multi_query else None,
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route.resource,
                "httpMethod": method,
                "path": f"/{self.stage}{path}",
                "accountId": ACCOUNT,
                "protocol": "HTTP/1.1",
                "stage": self.stage,
                "requestId": request_id,
                "extendedRequestId": request_id,
                "requestTime": formatdate(now, usegmt=True),
                "requestTimeEpoch": int(now * 1000),
                "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent")},
                "domainName": "127.0.0.1",
                "apiId": self.api_id,
            },
            "body": text if body else None,
            "isBase64Encoded": is_b64,
        }

    def _authorize(self, route: Route, event: dict[str, Any], headers: dict[str, str], request_id: str):
        authorizer = route.authorizer
        assert authorizer is not None
        lower = {k.lower(): v for k, v in headers.items()}
        identity = tuple(lower.get(h, "") for h in authorizer.identity_headers)
        if authorizer.identity_headers and not all(identity):
            return self.gateway_response("UNAUTHORIZED", "Unauthorized", request_id)
        method_arn = (f"arn:aws:execute-api:{self.deployment.region}:{ACCOUNT}:{self.api_id}/{self.stage}/"
                      f"{event['httpMethod']}{event['path']}")
        cached = authorizer.cache.get(identity)
        if cached and cached[0] > time.monotonic():
            result = cached[1]
        else:
            auth_event = {**{k: v for k, v in event.items() if k != "body"}, "type": "REQUEST",
                          "methodArn": method_arn}
            try:
                result = self.pools[authorizer.function].invoke(auth_event, request_id)
            except InvocationError as exc:
                if exc.payload.get("errorMessage") == "Unauthorized":
                    return self.gateway_response("UNAUTHORIZED", "Unauthorized", request_id)
                return self.gateway_response("AUTHORIZER_FAILURE", "Authorizer error", request_id)
            if authorizer.ttl_s > 0:
                authorizer.cache[identity] = (time.monotonic() + authorizer.ttl_s, result)
        if not _allows(result, method_arn):
            return self.gateway_response(
                "ACCESS_DENIED", "User is not authorized to access this resource with an explicit deny", request_id,
                authorizer=result.get("context") if isinstance(result, dict) else None,
            )
        context = dict(result.get("context") or {})
        context["principalId"] = result.get("principalId")
        event["requestContext"]["authorizer"] = context
        event["requestContext"]["identity"]["apiKey"] = result.get("usageIdentifierKey")
        return None


def _allows(result: Any, method_arn: str) -> bool:
    if not isinstance(result, dict):
        return False
    statements = (result.get("policyDocument") or {}).get("Statement") or []
    allowed = False
    for statement in statements:
        resources = statement.get("Resource") or []
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatch.fnmatchcase(method_arn, r) for r in resources):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    # SO_REUSEADDR: a restart right after a run binds despite its connections in TIME_WAIT (Linux still
    # refuses a second listener on the port, so a port really in use is reported).
    allow_reuse_address = True
    request_queue_size = 512  # the listen backlog: the default 5 resets bursts of concurrent clients

    def __init__(self, host: str, port: int, api: RestApi) -> None:
        self.api = api
        super().__init__((host, port), _ApiRequestHandler)

    def serve_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="api-gateway", daemon=True)
        thread.start()
        return thread


class _ApiRequestHandler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms Nagle stall
    protocol_version = "HTTP/1.1"
    server: ApiServer

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        status, out, data = self.server.api.handle(self.command, self.path, headers, body, self.client_address[0])
        self.send_response(status)
        for key, value in out.items():
            if key in {"content-length", "connection", "transfer-encoding"}:
                continue
            for item in value if isinstance(value, list) else [value]:
                self.send_header(key, item)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle  # noqa: N815

    def log_message(self, *_: Any) -> None:
        return
