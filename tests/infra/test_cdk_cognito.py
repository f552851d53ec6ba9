"""Cognito (optional, `-c cognito=true`): an OAuth2 client-credentials user pool that the authorizer trusts.

Off by default. The variant with it on is synthesized once for this module (dev with the defaults;
prod with its own domain prefix, client tenant and a static OIDC issuer from the context), with
bundling skipped and cdk-nag on, like the session synthesis in conftest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk
import pytest
from cfnlint.api import ManualArgs, lint
from deepseek_gateway.auth.oidc import parse_issuers
from gateway_cdk.app_factory import build_app
from gateway_cdk.components.functions import has_handler
from gateway_cdk.config import ConfigError, GatewayConfig

from tests.infra.infra_helpers import PROD_ALARM_EMAIL, context_with, nag_findings, only, props, resources

KEYCLOAK = {
    "issuer": "https://id.example.com/realms/main",
    "audiences": ["deepseek-gateway"],
    "jwks_url": "https://id.example.com/realms/main/protocol/openid-connect/certs",
    "flavor": "keycloak",
}
PROD_PREFIX = "acme-gateway-prod"
# Stand-ins for the values CloudFormation gives the references at deploy time.
POOL_ID = "us-east-1_AbCdEf123"
CLIENT_ID = "4kq2example0client0id0abc"
COGNITO_FINDINGS = {("AwsSolutions-COG8", "Cognito/UserPool/Resource")}

needs_authorizer = pytest.mark.skipif(not has_handler("authorizer"), reason="no authorizer function yet")


@dataclass
class CognitoSynth:
    outdir: Path
    raw: dict[str, dict]
    stack_names: dict[str, str]
    synth_error: Exception | None


def _context(**overrides: Any) -> dict:
    context = context_with(
        prod={
            "waf": True,
            "alarm_email": PROD_ALARM_EMAIL,
            "cognito_domain_prefix": PROD_PREFIX,
            "cognito_client_tenant": "acme",
            "oidc_issuers": [KEYCLOAK],
        }
    )
    return {**context, "cognito": "true", **overrides}  # a string, as `-c cognito=true` gives it


@pytest.fixture(scope="module")
def cognito_synth(tmp_path_factory: pytest.TempPathFactory) -> CognitoSynth:
    outdir = tmp_path_factory.mktemp("cdk.out.cognito")
    app, stacks = build_app(_context(), stages=["dev", "prod"], outdir=str(outdir))
    error: Exception | None = None
    try:
        app.synth()
    except RuntimeError as exc:  # cdk-nag findings stop synthesis after the templates are written
        error = exc
    names = {stage: stack.stack_name for stage, stack in stacks.items()}
    raw = {stage: json.loads((outdir / f"{name}.template.json").read_text()) for stage, name in names.items()}
    return CognitoSynth(outdir=outdir, raw=raw, stack_names=names, synth_error=error)


@pytest.fixture(scope="module", params=["dev", "prod"])
def on(request: pytest.FixtureRequest, cognito_synth: CognitoSynth) -> dict:
    return cognito_synth.raw[request.param]


def _one(raw: dict, resource_type: str) -> tuple[str, dict]:
    return only(resources(raw, resource_type), "Cognito")


def _render(value: Any, refs: dict[str, str]) -> str:
    """A string-valued intrinsic (Ref, Fn::Join) as CloudFormation would resolve it, given the Ref values."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return refs[value["Ref"]]
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(part, refs) for part in parts)
    raise AssertionError(f"unexpected intrinsic {value!r}")


def _refs(raw: dict) -> dict[str, str]:
    pool, _ = _one(raw, "AWS::Cognito::UserPool")
    client, _ = _one(raw, "AWS::Cognito::UserPoolClient")
    server, server_resource = _one(raw, "AWS::Cognito::UserPoolResourceServer")
    return {
        pool: POOL_ID,
        client: CLIENT_ID,
        server: props(server_resource)["Identifier"],  # a resource server's Ref is its identifier
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::AccountId": "123456789012",
    }


# --- off by default ---------------------------------------------------------------------------------


def test_cognito_is_off_by_default(raw_template: dict) -> None:
    assert GatewayConfig().cognito is False
    assert GatewayConfig.from_values({}).cognito is False
    assert not [r for r in raw_template["Resources"].values() if r["Type"].startswith("AWS::Cognito::")]
    assert not [key for key in raw_template.get("Outputs", {}) if key.startswith("Cognito")]
    for function in resources(raw_template, "AWS::Lambda::Function").values():
        assert "cognito" not in json.dumps(props(function).get("Environment", {}))


# --- the pool, its domain, resource server and machine client ---------------------------------------


def test_the_pool_has_no_self_sign_up_and_is_protected_in_prod_only(cognito_synth: CognitoSynth) -> None:
    for stage, protection, policy in (("dev", "INACTIVE", "Delete"), ("prod", "ACTIVE", "Retain")):
        _, pool = _one(cognito_synth.raw[stage], "AWS::Cognito::UserPool")
        p = props(pool)
        assert p["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
        assert p["DeletionProtection"] == protection
        assert pool["DeletionPolicy"] == pool["UpdateReplacePolicy"] == policy
        # cdk-nag COG1 and COG2, met rather than acknowledged (should anyone ever add a user).
        assert p["MfaConfiguration"] == "ON" and p["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
        policy_ = p["Policies"]["PasswordPolicy"]
        assert policy_["MinimumLength"] >= 8
        assert policy_["RequireUppercase"] and policy_["RequireNumbers"] and policy_["RequireSymbols"]


def test_the_domain_prefix_defaults_to_stage_and_account_and_can_be_set(cognito_synth: CognitoSynth) -> None:
    dev, prod = cognito_synth.raw["dev"], cognito_synth.raw["prod"]
    for raw in (dev, prod):
        pool, _ = _one(raw, "AWS::Cognito::UserPool")
        _, domain = _one(raw, "AWS::Cognito::UserPoolDomain")
        assert props(domain)["UserPoolId"] == {"Ref": pool}
    _, dev_domain = _one(dev, "AWS::Cognito::UserPoolDomain")
    assert props(dev_domain)["Domain"] == {"Fn::Join": ["", ["deepseek-gateway-dev-", {"Ref": "AWS::AccountId"}]]}
    _, prod_domain = _one(prod, "AWS::Cognito::UserPoolDomain")
    assert props(prod_domain)["Domain"] == PROD_PREFIX


def test_the_resource_server_is_gateway_with_four_scopes(on: dict) -> None:
    pool, _ = _one(on, "AWS::Cognito::UserPool")
    _, server = _one(on, "AWS::Cognito::UserPoolResourceServer")
    p = props(server)
    assert p["Identifier"] == "gateway"
    assert p["UserPoolId"] == {"Ref": pool}
    assert sorted(scope["ScopeName"] for scope in p["Scopes"]) == ["admin", "batch", "chat", "files"]


def test_the_machine_client_uses_client_credentials_with_a_secret_and_no_admin_scope(on: dict) -> None:
    pool, _ = _one(on, "AWS::Cognito::UserPool")
    _, client = _one(on, "AWS::Cognito::UserPoolClient")
    p = props(client)
    assert p["UserPoolId"] == {"Ref": pool}
    assert p["GenerateSecret"] is True
    assert p["AllowedOAuthFlows"] == ["client_credentials"]
    assert p["AllowedOAuthFlowsUserPoolClient"] is True
    assert p["ExplicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH"]  # no password or SRP sign-in
    assert "CallbackURLs" not in p
    scopes = [_render(scope, _refs(on)) for scope in p["AllowedOAuthScopes"]]
    assert sorted(scopes) == ["gateway/batch", "gateway/chat", "gateway/files"]


def test_outputs_name_the_pool_the_token_endpoint_and_the_client_but_not_the_secret(on: dict) -> None:
    pool, _ = _one(on, "AWS::Cognito::UserPool")
    client, _ = _one(on, "AWS::Cognito::UserPoolClient")
    domain, domain_resource = _one(on, "AWS::Cognito::UserPoolDomain")
    outputs = on["Outputs"]
    assert outputs["CognitoUserPoolId"]["Value"] == {"Ref": pool}
    assert outputs["CognitoClientId"]["Value"] == {"Ref": client}
    assert outputs["CognitoTokenEndpoint"]["Value"] == {
        "Fn::Join": ["", ["https://", {"Ref": domain}, ".auth.us-east-1.amazoncognito.com/oauth2/token"]]
    }
    prefix = _render(props(domain_resource)["Domain"], _refs(on))
    assert _render(outputs["CognitoTokenEndpoint"]["Value"], {**_refs(on), domain: prefix}) == (
        f"https://{prefix}.auth.us-east-1.amazoncognito.com/oauth2/token"
    )
    assert "ClientSecret" not in json.dumps(outputs)


# --- the authorizer trusts the pool -----------------------------------------------------------------


@needs_authorizer
def test_the_authorizer_trusts_the_pool_with_the_client_mapped_to_its_tenant(cognito_synth: CognitoSynth) -> None:
    for stage, tenant, static in (("dev", "default", []), ("prod", "acme", [KEYCLOAK])):
        raw = cognito_synth.raw[stage]
        pool, _ = _one(raw, "AWS::Cognito::UserPool")
        client, _ = _one(raw, "AWS::Cognito::UserPoolClient")
        _, function = only(resources(raw, "AWS::Lambda::Function"), "FunctionsAuthorizerFunction")
        value = props(function)["Environment"]["Variables"]["OIDC_ISSUERS"]

        # Built with tokens: a join whose references are exactly the pool and the client (and the URL suffix).
        parts = value["Fn::Join"][1]
        assert value["Fn::Join"][0] == ""
        assert {part["Ref"] for part in parts if isinstance(part, dict)} == {pool, client, "AWS::URLSuffix"}

        issuers = json.loads(_render(value, _refs(raw)))
        issuer = f"https://cognito-idp.us-east-1.amazonaws.com/{POOL_ID}"
        assert issuers == [
            *static,  # the issuers from the context stay, first
            {
                "issuer": issuer,
                "flavor": "cognito",
                "audiences": [CLIENT_ID],
                "jwks_url": f"{issuer}/.well-known/jwks.json",
                "scope_map": {
                    "gateway/chat": "chat",
                    "gateway/batch": "batch",
                    "gateway/files": "files",
                    "gateway/admin": "admin",
                },
                "client_tenants": {CLIENT_ID: tenant},
            },
        ]
        # The authorizer's own validator accepts it at cold start.
        (parsed,) = [c for c in parse_issuers(json.dumps(issuers)) if c.issuer == issuer]
        assert parsed.flavor == "cognito" and parsed.client_tenants == {CLIENT_ID: tenant}


# --- checks: cdk-nag and cfn-lint -------------------------------------------------------------------


def test_cdk_nag_finds_nothing_unacknowledged_with_cognito_on(cognito_synth: CognitoSynth) -> None:
    assert nag_findings(cognito_synth.outdir / "validation-report.json") == set()
    assert cognito_synth.synth_error is None, str(cognito_synth.synth_error)


def test_the_cognito_acknowledgments_are_exactly_the_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without acknowledgments, the Cognito constructs have exactly the findings listed here.

    (The rest of the stack's are test_cdk_nag's business; Cognito changes nothing there.)
    """
    monkeypatch.setattr(aws_cdk.Validations, "acknowledge", lambda self, *rules: None)
    app, _ = build_app({**context_with(), "cognito": True}, stages=["dev"], outdir=str(tmp_path))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    findings = nag_findings(tmp_path / "validation-report.json")
    assert {(rule, path) for rule, path in findings if path.startswith("Cognito/")} == COGNITO_FINDINGS


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_cfn_lint_finds_no_error_with_cognito_on(cognito_synth: CognitoSynth, stage: str) -> None:
    template = (cognito_synth.outdir / f"{cognito_synth.stack_names[stage]}.template.json").read_text()
    matches = lint(template, config=ManualArgs(regions=["us-east-1"], ignore_checks=["W3005"]))
    errors = [f"{m.rule.id} {m.message} at {'/'.join(map(str, m.path))}" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


# --- configuration ----------------------------------------------------------------------------------


def test_cognito_context_values_are_parsed() -> None:
    config = GatewayConfig.from_values(
        {"cognito": "true", "cognito_domain_prefix": "acme-ai-gw", "cognito_client_tenant": "acme"}
    )
    assert config.cognito is True
    assert config.cognito_domain_prefix == "acme-ai-gw"
    assert config.cognito_client_tenant == "acme"
    assert GatewayConfig.from_values({"cognito": True, "cognito_domain_prefix": ""}).cognito_domain_prefix is None
    assert GatewayConfig.from_values({"cognito": True}).cognito_client_tenant == "default"


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"cognito": "perhaps"}, "cognito"),
        ({"cognito_domain_prefix": "Acme"}, "cognito_domain_prefix"),
        ({"cognito_domain_prefix": "-acme"}, "cognito_domain_prefix"),
        ({"cognito_domain_prefix": "acme-"}, "cognito_domain_prefix"),
        ({"cognito_domain_prefix": "acme_gw"}, "cognito_domain_prefix"),
        ({"cognito_domain_prefix": "a" * 64}, "cognito_domain_prefix"),
        ({"cognito_domain_prefix": "my-cognito-gw"}, "cognito_domain_prefix"),
        ({"cognito_domain_prefix": "aws-gw"}, "cognito_domain_prefix"),
        ({"cognito_domain_prefix": "amazon-gw"}, "cognito_domain_prefix"),
        ({"cognito": True, "stage": "awsdev"}, "cognito_domain_prefix"),
        ({"cognito_client_tenant": "acme corp"}, "cognito_client_tenant"),
        ({"cognito_client_tenant": ""}, "cognito_client_tenant"),
    ],
)
def test_bad_cognito_values_are_refused_naming_the_key(values: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        GatewayConfig.from_values(values)
