"""The local cloud: synthesize, deploy into moto, run every function, serve the API. No Docker.

`LocalCloud(config).start()` brings up what `cdk deploy` would create, on this machine:
the local provider, moto on the AWS port with the template deployed, a warm pool of real
handlers per function, SQS pollers per event source mapping, and API Gateway on the API port.
`stop()` ends every process and thread it started.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from local_cloud.apigateway import ApiServer, RestApi
from local_cloud.deploy import Deployment, deploy
from local_cloud.errors import LocalCloudError
from local_cloud.functions import FunctionPool, FunctionStartError, InvocationError, base_environment
from local_cloud.oidc_issuer import LocalIssuer
from local_cloud.pollers import SqsPoller, sqs_mappings
from local_cloud.provider import LocalProvider
from local_cloud.template import Template

ROOT = Path(__file__).resolve().parents[3]
PROVIDERS = ("deepseek", "openai", "anthropic")


@dataclass
class LocalCloudConfig:
    api_port: int = 8080
    aws_port: int = 4566
    provider_port: int = 8787
    host: str = "127.0.0.1"
    region: str = "us-east-1"
    stage: str = "dev"
    concurrency: int = 4
    state_dir: Path = ROOT / ".local-cloud"
    # Extra CDK context for the synthesis, e.g. {"authorizer_cache_ttl_s": 2} (`make run ARGS="-c k=v"`).
    context: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def real_provider(self, name: str) -> bool:
        return bool(self.env.get(f"{name.upper()}_API_KEY"))


def _check_port_free(host: str, port: int, what: str) -> None:
    with socket.socket() as sock:
        # As the servers themselves bind (SO_REUSEADDR): connections of a run that just ended, left in
        # TIME_WAIT, do not make the port look taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise LocalCloudError(
                f"port {port} ({what}) is already taken on {host}: stop whatever uses it or choose another "
                f"port (see `make run` options in the README)"
            ) from exc


class _InvokeServer(ThreadingHTTPServer):
    request_queue_size = 512
    """Where moto sends the Lambda invocations it cannot run itself (Invoke API, Step Functions)."""

    daemon_threads = True

    def __init__(self, pools_by_name: dict[str, FunctionPool]) -> None:
        self.pools_by_name = pools_by_name
        super().__init__(("127.0.0.1", 0), _InvokeHandler)


class _InvokeHandler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms Nagle stall
    protocol_version = "HTTP/1.1"
    server: _InvokeServer

    def do_GET(self) -> None:  # noqa: N802 - GET /stats: every sandbox's figures, for the benchmark
        stats = {name: pool.stats() for name, pool in self.server.pools_by_name.items()}
        body = json.dumps({"main_pid": os.getpid(), "functions": stats}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        parts = self.path.strip("/").split("/")  # functions/<name>/invoke
        pool = self.server.pools_by_name.get(parts[1]) if len(parts) == 3 else None
        length = int(self.headers.get("content-length") or 0)
        event = json.loads(self.rfile.read(length) or b"{}")
        status, extra = 200, {}
        if pool is None:
            status, payload = 404, {"errorType": "ResourceNotFoundException", "errorMessage": self.path}
        else:
            try:
                payload = pool.invoke(event)
            except InvocationError as exc:
                status, payload, extra = 200, exc.payload, {"x-amz-function-error": "Unhandled"}
        body = json.dumps(payload).encode()
        self.send_response(status)
        for key, value in {"content-type": "application/json", "content-length": str(len(body)), **extra}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        return


class _LocalSession:
    """A boto3 session whose clients all talk to the local AWS endpoint."""

    def __init__(self, session: Any, endpoint: str) -> None:
        self._session, self._endpoint, self._clients = session, endpoint, {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service, endpoint_url=self._endpoint)
        return self._clients[service]


class LocalCloud:
    def __init__(self, config: LocalCloudConfig, progress: Callable[[str], None] = lambda _: None) -> None:
        self.config = config
        self.progress = progress
        self.provider: LocalProvider | None = None
        self.moto: subprocess.Popen[bytes] | None = None
        self.pools: dict[str, FunctionPool] = {}
        self.pollers: list[SqsPoller] = []
        self.api_server: ApiServer | None = None
        self.invoke_server: _InvokeServer | None = None
        self.deployment: Deployment | None = None
        self.session: Any = None
        self.timings: dict[str, float] = {}
        self.issuer = LocalIssuer(config.state_dir)
        self.keys: dict[str, str] = {}

    # --- endpoints -----------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://{self.config.host}:{self.config.api_port}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://{self.config.host}:{self.config.aws_port}"

    def provider_base_url(self, name: str) -> str:
        return f"http://{self.config.host}:{self.config.provider_port}" + {
            "deepseek": "/deepseek/v1", "openai": "/openai/v1", "anthropic": "/anthropic"}[name]

    # --- start ---------------------------------------------------------------------------------

    def start(self) -> LocalCloud:
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        (cfg.state_dir / "logs").mkdir(exist_ok=True)
        for port, what in ((cfg.api_port, "API"), (cfg.aws_port, "AWS endpoint (moto)"),
                           (cfg.provider_port, "local provider")):
            _check_port_free(cfg.host, port, what)
        try:
            self._step("local provider", self._start_provider)
            self._step("synthesize the CDK app", self._synthesize)
            self._step("moto on " + self.aws_endpoint, self._start_moto)
            self._step("deploy the template into moto", self._deploy)
            self._step("start every function's handler", self._start_functions)
            self._step("SQS pollers and API Gateway", self._start_front)
            self._step("demo tenant and keys", self._seed_tenants)
        except BaseException:
            self.stop()
            raise
        return self

    def _step(self, label: str, action: Callable[[], None]) -> None:
        self.progress(f"… {label}")
        started = time.perf_counter()
        action()
        self.timings[label] = time.perf_counter() - started
        self.progress(f"✓ {label} ({self.timings[label]:.1f} s)")

    def _start_provider(self) -> None:
        self.provider = LocalProvider(port=self.config.provider_port).start()

    def _context(self) -> dict[str, Any]:
        context: dict[str, Any] = {
            "stage": self.config.stage,
            "region": self.config.region,
            "aws:cdk:bundling-stacks": [],
            "aws:cdk:disable-asset-staging": True,
            "aws:cdk:enable-asset-metadata": True,
            "oidc_issuers": [*self._configured_issuers(), self.issuer.ensure().issuer_config()],
            # The notifier may call http:// and loopback webhooks (tests' and developers' receivers).
            "allow_private_webhooks": True,
            **self.config.context,
        }
        for name in PROVIDERS:
            override = self.config.env.get(f"{name.upper()}_BASE_URL")
            if override:
                context[f"{name}_base_url"] = override
            elif not self.config.real_provider(name):
                context[f"{name}_base_url"] = self.provider_base_url(name)
        return context

    def _configured_issuers(self) -> list[dict[str, Any]]:
        """Issuers from the environment (OIDC_ISSUERS, a JSON list) are trusted beside the local one."""
        raw = self.config.env.get("OIDC_ISSUERS")
        try:
            issuers = json.loads(raw) if raw else []
        except ValueError as exc:
            raise LocalCloudError(f"OIDC_ISSUERS is not valid JSON: {exc}") from exc
        if not isinstance(issuers, list):
            raise LocalCloudError("OIDC_ISSUERS must be a JSON list of issuer configurations")
        return issuers

    def _synthesize(self) -> None:
        outdir = self.config.state_dir / "cdk.out"
        env = {**self.config.env, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": json.dumps(self._context())}
        result = subprocess.run(  # noqa: S603 - our own interpreter and app
            [sys.executable, str(ROOT / "infra" / "cdk" / "app.py")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )
        if result.returncode != 0:
            raise LocalCloudError(f"CDK synthesis failed:\n{result.stderr[-4000:]}")
        manifest = json.loads((outdir / "manifest.json").read_text())
        stacks = [a for a in manifest["artifacts"].values() if a.get("type") == "aws:cloudformation:stack"]
        if len(stacks) != 1:
            raise LocalCloudError(f"expected one stack in the CDK app, found {len(stacks)}")
        self.template = Template.load(outdir / stacks[0]["properties"]["templateFile"])
        self.stack_name = stacks[0].get("displayName", "").split("/")[-1] or "DeepSeekGateway"

    def _start_moto(self) -> None:
        self.invoke_server = _InvokeServer({})
        threading.Thread(target=self.invoke_server.serve_forever, daemon=True).start()
        invoke_url = f"http://127.0.0.1:{self.invoke_server.server_address[1]}"
        log = (self.config.state_dir / "logs" / "moto.log").open("ab")
        self.moto = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "local_cloud.moto_server", "--host", self.config.host,
             "--port", str(self.config.aws_port), "--invoke-url", invoke_url],
            stdout=log, stderr=subprocess.STDOUT, env={**self.config.env, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.moto.poll() is not None:
                raise LocalCloudError(f"moto exited at start; see {self.config.state_dir / 'logs' / 'moto.log'}")
            try:
                with socket.create_connection((self.config.host, self.config.aws_port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise LocalCloudError("moto did not start within 30 s")

    def _deploy(self) -> None:
        import boto3

        credentials = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}  # moto accepts any
        self.session = _LocalSession(boto3.Session(region_name=self.config.region, **credentials), self.aws_endpoint)
        self.deployment = deploy(self.template, self.stack_name, self.config.region, self.session)
        self._set_provider_keys()
        self._verify_ses_sender()

    def _verify_ses_sender(self) -> None:
        """The notifier's SES sender (context `ses_sender`) is a verified identity, as in the account."""
        assert self.deployment is not None
        for spec in self.deployment.function_specs():
            sender = spec.environment.get("SES_SENDER")
            if sender:
                self.session.client("ses").verify_email_identity(EmailAddress=sender)

    def _set_provider_keys(self) -> None:
        """Each provider's secret holds a real key when one is configured, the local provider's otherwise."""
        assert self.deployment is not None
        secretsmanager = self.session.client("secretsmanager")
        for spec in self.deployment.function_specs():
            for name in PROVIDERS:
                arn = spec.environment.get(f"{name.upper()}_SECRET_ARN")
                if arn:
                    value = self.config.env.get(f"{name.upper()}_API_KEY") or f"local-{name}-key"
                    secretsmanager.put_secret_value(SecretId=arn, SecretString=value)

    def _start_functions(self) -> None:
        assert self.deployment is not None and self.invoke_server is not None
        base = base_environment(self.aws_endpoint, self.config.region)
        specs = self.deployment.function_specs()
        for spec in specs:
            self.pools[spec.logical_id] = FunctionPool(spec, base, self.config.state_dir / "logs",
                                                       self.config.concurrency)
        threads, errors = [], []

        def start(pool: FunctionPool) -> None:
            try:
                pool.start(warm=1)
            except FunctionStartError as exc:
                errors.append(str(exc))

        for pool in self.pools.values():
            threads.append(threading.Thread(target=start, args=(pool,)))
            threads[-1].start()
        for thread in threads:
            thread.join()
        if errors:
            raise LocalCloudError("\n".join(errors))
        self.invoke_server.pools_by_name.update({p.spec.name: p for p in self.pools.values()})

    def _start_front(self) -> None:
        assert self.deployment is not None
        sqs = self.session.client("sqs")
        for mapping in sqs_mappings(self.deployment):
            poller = SqsPoller(mapping, self.pools[mapping.function], sqs, self.config.region)
            poller.start()
            self.pollers.append(poller)
        self.api_server = ApiServer(self.config.host, self.config.api_port, RestApi(self.deployment, self.pools))
        self.api_server.serve_in_background()

    def tenants_table(self) -> str | None:
        assert self.deployment is not None
        for spec in self.deployment.function_specs():
            if spec.environment.get("TENANTS_TABLE_NAME"):
                return spec.environment["TENANTS_TABLE_NAME"]
        return None

    def bucket(self, name: str) -> str | None:
        """The physical name of the stack's `uploads` or `results` bucket."""
        if self.deployment is None:
            return None
        wanted = f"{name.capitalize()}Bucket"
        for logical_id, _ in self.deployment.template.of_type("AWS::S3::Bucket"):
            if wanted in logical_id:
                return self.deployment.ref(logical_id)
        return None

    def _seed_tenants(self) -> None:
        """An operators tenant with an admin key and a demo tenant with a chat key, as dsg-admin would."""
        from deepseek_gateway.tenancy.models import KeyCreate, TenantCreate
        from deepseek_gateway.tenancy.store import TenantStore

        table = self.tenants_table()
        if table is None:
            return
        store = TenantStore(table, self.session.client("dynamodb"))
        store.create_tenant(TenantCreate(tenant_id="operators", name="Gateway operators"))
        self.keys["admin"] = store.create_key("operators", KeyCreate(name="local admin", scopes=["admin"])).key
        store.create_tenant(TenantCreate(tenant_id="demo", name="Demo tenant"))
        self.keys["demo"] = store.create_key(
            "demo", KeyCreate(name="local demo", scopes=["chat", "batch", "files"])).key

    # --- info and stop -------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        api_base = f"{self.api_url}/v1"
        control = f"http://{self.config.host}:{self.config.provider_port}/_control"
        stats = f"http://127.0.0.1:{self.invoke_server.server_address[1]}/stats" if self.invoke_server else None
        demo_key = self.keys.get("demo", "<key>")
        chat_body = '{"model": "deepseek-chat", "messages": [{"role": "user", "content": "Hello"}]}'
        return {
            "api_base_url": api_base,
            "aws_endpoint_url": self.aws_endpoint,
            "region": self.config.region,
            "stack_name": getattr(self, "stack_name", None),
            "providers": {name: ("real" if self.config.real_provider(name) else self.provider_base_url(name))
                          for name in PROVIDERS},
            "provider_control_url": control,
            "stats_url": stats,
            "keys": self.keys,
            "tables": {"tenants": self.tenants_table() if self.deployment else None},
            "buckets": {"uploads": self.bucket("uploads"), "results": self.bucket("results")},
            "oidc": {"issuer": self.issuer.issuer_config()["issuer"], "audience": "deepseek-gateway",
                     "mint_token": "python -m local_cloud.token --tenant demo --scopes chat"},
            "functions": {p.spec.logical_id: {"name": p.spec.name, "log": str(p.log_path)}
                          for p in self.pools.values()},
            "examples": {
                "openai_sdk": f'OpenAI(base_url="{api_base}", api_key="{demo_key}")',
                "anthropic_sdk": f'Anthropic(base_url="{api_base.removesuffix("/v1")}", auth_token="{demo_key}")',
                "curl": (f"curl {api_base}/chat/completions -H 'Authorization: Bearer {demo_key}' "
                         f"-H 'Content-Type: application/json' -d '{chat_body}'"),
                "s3_upload": (f"aws --endpoint-url {self.aws_endpoint} s3 cp batch.jsonl "
                              f"s3://{self.bucket('uploads') or '<uploads-bucket>'}/demo/batches/batch.jsonl"),
                "fail_deepseek": f"curl -X PUT {control}/deepseek -d '{{\"status\": 500}}'",
            },
            "startup_seconds": round(sum(self.timings.values()), 1),
        }

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stopping.set()
        if self.api_server is not None:
            self.api_server.shutdown()
            self.api_server.server_close()
        for pool in self.pools.values():
            pool.stop()
        if self.invoke_server is not None:
            self.invoke_server.shutdown()
            self.invoke_server.server_close()
        if self.moto is not None and self.moto.poll() is None:
            self.moto.terminate()
            try:
                self.moto.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.moto.kill()
        if self.provider is not None:
            self.provider.stop()
        self.pools, self.pollers, self.api_server, self.moto, self.provider = {}, [], None, None, None
