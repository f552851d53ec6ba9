"""`dsg-admin`: the operator's command line for tenants and keys.

Everything but `bootstrap` goes through the admin API with an admin key, against a deployed stage
or the local cloud. `bootstrap` creates the first admin key directly in the tenants table with the
operator's own AWS credentials, because no admin key exists yet to call the API with.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

LOCAL_ENDPOINTS = Path(".local-cloud/endpoints.json")
OPERATOR_TENANT = "operators"


class CliError(Exception):
    pass


def _local() -> dict[str, Any]:
    if not LOCAL_ENDPOINTS.exists():
        raise CliError(f"{LOCAL_ENDPOINTS} not found: is `make run` running in this folder?")
    return json.loads(LOCAL_ENDPOINTS.read_text())


def _api_target(args: argparse.Namespace) -> tuple[str, str]:
    url, key = args.api_url or os.environ.get("DSG_API_URL"), args.admin_key or os.environ.get("DSG_ADMIN_KEY")
    if args.local:
        local = _local()
        url, key = url or local["api_base_url"].removesuffix("/v1"), key or local["keys"]["admin"]
    if not url or not key:
        raise CliError("set --api-url and --admin-key (or DSG_API_URL and DSG_ADMIN_KEY), or use --local")
    return url.rstrip("/"), key


def _call(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    import httpx

    url, key = _api_target(args)
    response = httpx.request(method, f"{url}/admin{path}", json=body, timeout=30,
                             headers={"Authorization": f"Bearer {key}"})
    payload = response.json() if response.content else {}
    if response.status_code >= 400:
        error = payload.get("error", payload) if isinstance(payload, dict) else payload
        message = error.get("message", error) if isinstance(error, dict) else error
        raise CliError(f"HTTP {response.status_code}: {message}")
    return payload


def _limits(args: argparse.Namespace) -> dict[str, Any] | None:
    limits = {
        "requests_per_minute": args.rpm,
        "tokens_per_minute": args.tpm,
        "concurrent_requests": args.concurrency,
        "monthly_budget_usd": args.budget,
    }
    chosen = {k: v for k, v in limits.items() if v is not None}
    return chosen or None


def _tenant_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if args.name is not None:
        fields["name"] = args.name
    if args.plan is not None:
        fields["plan"] = args.plan
    if (limits := _limits(args)) is not None:
        fields["limits"] = limits
    if args.models is not None:
        fields["allowed_models"] = [m for m in args.models.split(",") if m]
    if args.webhook is not None or args.email is not None:
        fields["notifications"] = {"webhook_url": args.webhook, "email": args.email}
    return fields


def bootstrap(args: argparse.Namespace) -> dict[str, Any]:
    """Create the operators tenant (if missing) and an admin key, straight in DynamoDB."""
    import boto3

    from deepseek_gateway.errors import ConflictError
    from deepseek_gateway.tenancy.models import KeyCreate, TenantCreate
    from deepseek_gateway.tenancy.store import TenantStore

    endpoint, table = args.endpoint_url, args.table
    if args.local:
        local = _local()
        endpoint, table = endpoint or local["aws_endpoint_url"], table or local["tables"]["tenants"]
    if table is None and args.stack:
        cloudformation = boto3.client("cloudformation", endpoint_url=endpoint, region_name=args.region)
        resources = cloudformation.describe_stack_resources(StackName=args.stack)["StackResources"]
        table = next((r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::DynamoDB::Table"
                      and r["LogicalResourceId"].startswith("StorageTenantsTable")), None)
    if table is None:
        raise CliError("name the tenants table with --table, or the stack with --stack")
    store = TenantStore(table, boto3.client("dynamodb", endpoint_url=endpoint, region_name=args.region))
    with contextlib.suppress(ConflictError):
        store.create_tenant(TenantCreate(tenant_id=OPERATOR_TENANT, name="Gateway operators", plan="default"))
    created = store.create_key(OPERATOR_TENANT, KeyCreate(name=args.name or "bootstrap admin", scopes=["admin"]))
    return {"tenant_id": OPERATOR_TENANT, "key_id": created.key_id, "key": created.key,
            "note": "Shown once. Store it in your secret manager; revoke it with `dsg-admin keys revoke`."}


def run(args: argparse.Namespace) -> Any:
    command = args.command
    if command == "bootstrap":
        return bootstrap(args)
    if command == "tenants":
        action = args.action
        if action == "create":
            return _call(args, "POST", "/tenants", {"tenant_id": args.tenant_id, **_tenant_fields(args)})
        if action == "list":
            return _call(args, "GET", "/tenants")
        if action == "get":
            return _call(args, "GET", f"/tenants/{args.tenant_id}")
        if action == "update":
            return _call(args, "PATCH", f"/tenants/{args.tenant_id}", _tenant_fields(args))
        if action == "disable":
            return _call(args, "DELETE", f"/tenants/{args.tenant_id}")
        if action == "enable":
            return _call(args, "PATCH", f"/tenants/{args.tenant_id}", {"status": "active"})
    if command == "keys":
        if args.action == "create":
            body: dict[str, Any] = {"name": args.name or "", "scopes": args.scopes.split(",")}
            if args.expires_in_days:
                body["expires_at"] = int(time.time() + args.expires_in_days * 86400)
            if (limits := _limits(args)) is not None:
                body["limits"] = limits
            return _call(args, "POST", f"/tenants/{args.tenant_id}/keys", body)
        if args.action == "list":
            return _call(args, "GET", f"/tenants/{args.tenant_id}/keys")
        if args.action == "revoke":
            return _call(args, "DELETE", f"/tenants/{args.tenant_id}/keys/{args.key_id}")
    if command == "policy":
        if args.action == "get":
            return _call(args, "GET", f"/tenants/{args.tenant_id}/policy")
        if args.action == "put":
            return _call(args, "PUT", f"/tenants/{args.tenant_id}/policy", _policy_body(args))
        if args.action == "reset":
            return _call(args, "DELETE", f"/tenants/{args.tenant_id}/policy")
    if command == "usage":
        query = {k: v for k, v in {"granularity": args.granularity, "start": args.start, "end": args.end,
                                   "key_id": args.key_id}.items() if v}
        suffix = "&".join(f"{k}={v}" for k, v in query.items())
        return _call(args, "GET", f"/tenants/{args.tenant_id}/usage" + (f"?{suffix}" if suffix else ""))
    raise CliError(f"unknown command {command}")


def _policy_body(args: argparse.Namespace) -> dict[str, Any]:
    """`--cedar FILE` (Cedar text) and/or `--settings FILE` (JSON), or `--file FILE` with both as JSON."""
    if args.file:
        return json.loads(Path(args.file).read_text())
    body: dict[str, Any] = {}
    if args.cedar:
        body["cedar"] = Path(args.cedar).read_text()
    if args.settings:
        body["settings"] = json.loads(Path(args.settings).read_text())
    if not body:
        raise CliError("give the policy with --cedar FILE and/or --settings FILE, or --file FILE")
    return body


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dsg-admin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--local", action="store_true", help="use the running local cloud (make run)")
    parser.add_argument("--api-url", help="the stage's base URL, without /v1 (env DSG_API_URL)")
    parser.add_argument("--admin-key", help="an admin-scope key (env DSG_ADMIN_KEY)")
    commands = parser.add_subparsers(dest="command", required=True)

    boot = commands.add_parser("bootstrap", help="create the first admin key directly in DynamoDB")
    boot.add_argument("--stack", help="the CloudFormation stack, e.g. DeepSeekGateway-prod")
    boot.add_argument("--table", help="the tenants table name (instead of --stack)")
    boot.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    boot.add_argument("--endpoint-url", help="an AWS endpoint other than AWS's own")
    boot.add_argument("--name", help="a label for the key")

    def tenant_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--name")
        sub.add_argument("--plan")
        sub.add_argument("--models", help="comma-separated allowed models")
        sub.add_argument("--webhook", help="HTTPS webhook URL for notifications")
        sub.add_argument("--email", help="email for notifications")
        limit_options(sub)

    def limit_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--rpm", type=int, help="requests per minute")
        sub.add_argument("--tpm", type=int, help="tokens per minute")
        sub.add_argument("--concurrency", type=int, help="concurrent requests")
        sub.add_argument("--budget", help="monthly budget in USD")

    tenants = commands.add_parser("tenants").add_subparsers(dest="action", required=True)
    create = tenants.add_parser("create")
    create.add_argument("tenant_id")
    tenant_options(create)
    tenants.add_parser("list")
    for name in ("get", "disable", "enable"):
        tenants.add_parser(name).add_argument("tenant_id")
    update = tenants.add_parser("update")
    update.add_argument("tenant_id")
    tenant_options(update)

    keys = commands.add_parser("keys").add_subparsers(dest="action", required=True)
    key_create = keys.add_parser("create")
    key_create.add_argument("tenant_id")
    key_create.add_argument("--name")
    key_create.add_argument("--scopes", default="chat", help="comma-separated: chat,batch,files,admin")
    key_create.add_argument("--expires-in-days", type=float)
    limit_options(key_create)
    keys.add_parser("list").add_argument("tenant_id")
    revoke = keys.add_parser("revoke")
    revoke.add_argument("tenant_id")
    revoke.add_argument("key_id")
    policy = commands.add_parser("policy", help="a tenant's Cedar policy and settings").add_subparsers(
        dest="action", required=True)
    for name in ("get", "reset"):
        policy.add_parser(name).add_argument("tenant_id")
    put = policy.add_parser("put", help="validated by the gateway when written")
    put.add_argument("tenant_id")
    put.add_argument("--cedar", help="a file of Cedar policies")
    put.add_argument("--settings", help="a JSON file of settings (retention_days, store_prompts, safety)")
    put.add_argument("--file", help='a JSON file {"cedar": "...", "settings": {...}}')

    usage = commands.add_parser("usage", help="a tenant's usage and cost")
    usage.add_argument("tenant_id")
    usage.add_argument("--granularity", choices=["day", "month"])
    usage.add_argument("--start", help="YYYY-MM-DD (day) or YYYY-MM (month)")
    usage.add_argument("--end")
    usage.add_argument("--key-id")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result = run(args)
    except CliError as exc:
        print(f"dsg-admin: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
