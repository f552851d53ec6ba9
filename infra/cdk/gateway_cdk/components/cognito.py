"""Optional Amazon Cognito user pool: a ready OAuth2 machine-to-machine (client-credentials) setup.

On with the context flag `cognito`. The pool holds no users (self sign-up is off); it exists to issue
access tokens to backend services through its token endpoint:

- a domain (`cognito_domain_prefix`, default `deepseek-gateway-<stage>-<account>`), whose
  `/oauth2/token` endpoint serves the client-credentials grant;
- a resource server `gateway` with the scopes `chat`, `batch`, `files` and `admin`;
- one confidential app client (generated secret) allowed only the client-credentials flow and the
  scopes `gateway/chat`, `gateway/batch`, `gateway/files` (not `gateway/admin`).

`oidc_issuer` is the authorizer's issuer entry for the pool (the fields of
`deepseek_gateway.auth.oidc.IssuerConfig`): the stack adds it to the authorizer's `OIDC_ISSUERS`,
mapping the client to the tenant `cognito_client_tenant` and the `gateway/*` scopes to the gateway's.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnOutput, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from ..config import GatewayConfig

RESOURCE_SERVER_ID = "gateway"
# Resource-server scope -> description. Each maps to the gateway scope of the same name.
SCOPES = {
    "chat": "Chat completions, messages, embeddings and models",
    "batch": "Batch jobs",
    "files": "File uploads and downloads",
    "admin": "Tenant and key administration",
}
# What the machine client may request; `admin` needs a deliberate change (or a second client).
CLIENT_SCOPES = ("chat", "batch", "files")


def default_domain_prefix(config: GatewayConfig, account: str) -> str:
    """`deepseek-gateway-<stage>-<account>`: unique per account, stage and region (prefixes are global per region).

    `account` may be the `AWS::AccountId` token when the stack is account-agnostic.
    """
    return f"deepseek-gateway-{config.stage}-{account}"


class CognitoM2M(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: GatewayConfig) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=f"deepseek-gateway-{config.stage}",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(username=True),
            # No users are expected; should an operator add one, it gets a strong password and TOTP MFA.
            password_policy=cognito.PasswordPolicy(
                min_length=14,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(1),
            ),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.NONE,
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            deletion_protection=config.is_prod,
            removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
        )
        Validations.of(self.user_pool).acknowledge(
            Acknowledgment(
                id="AwsSolutions-COG8",
                reason="The pool has no users (self sign-up off) and serves only the client-credentials "
                "grant. The Plus plan's threat protection scores user sign-ins, never client-credentials "
                "token requests, so it would be billed without protecting anything here.",
            )
        )

        self.domain_prefix = config.cognito_domain_prefix or default_domain_prefix(config, stack.account)
        self.domain = self.user_pool.add_domain(
            "Domain", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=self.domain_prefix)
        )

        scopes = {
            name: cognito.ResourceServerScope(scope_name=name, scope_description=description)
            for name, description in SCOPES.items()
        }
        self.resource_server = self.user_pool.add_resource_server(
            "ResourceServer",
            identifier=RESOURCE_SERVER_ID,
            user_pool_resource_server_name="DeepSeek Gateway",
            scopes=list(scopes.values()),
        )
        self.client = self.user_pool.add_client(
            "MachineClient",
            user_pool_client_name=f"deepseek-gateway-{config.stage}-machine",
            generate_secret=True,
            # Only the refresh-token flow, which Cognito always lists; client credentials issue no
            # refresh tokens, and no user password or SRP flow is allowed.
            auth_flows=cognito.AuthFlow(user_srp=False),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(client_credentials=True),
                scopes=[cognito.OAuthScope.resource_server(self.resource_server, scopes[s]) for s in CLIENT_SCOPES],
            ),
            access_token_validity=Duration.hours(1),
            enable_token_revocation=True,
            prevent_user_existence_errors=True,
        )

        self.token_endpoint = f"{self.domain.base_url()}/oauth2/token"
        self.issuer = f"https://cognito-idp.{stack.region}.{stack.url_suffix}/{self.user_pool.user_pool_id}"
        client_id = self.client.user_pool_client_id
        self.oidc_issuer: dict[str, Any] = {
            "issuer": self.issuer,
            "flavor": "cognito",
            "audiences": [client_id],
            "jwks_url": f"{self.issuer}/.well-known/jwks.json",
            "scope_map": {f"{RESOURCE_SERVER_ID}/{name}": name for name in SCOPES},
            "client_tenants": {client_id: config.cognito_client_tenant},
        }

        for output_id, value, description in (
            ("CognitoUserPoolId", self.user_pool.user_pool_id, "The Cognito user pool (OAuth2 machine clients)"),
            ("CognitoTokenEndpoint", self.token_endpoint, "OAuth2 token endpoint (client_credentials grant)"),
            (
                "CognitoClientId",
                client_id,
                "The machine client's id; its secret: aws cognito-idp describe-user-pool-client",
            ),
        ):
            CfnOutput(self, output_id, value=value, description=description).override_logical_id(output_id)
