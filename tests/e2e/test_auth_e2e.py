"""Keys and tokens end to end: the CLI creates and revokes, the OpenAI SDK feels the difference."""

from __future__ import annotations

import io
import json
import time
from contextlib import redirect_stdout

import openai
import pytest
from deepseek_gateway import admin_cli
from openai import OpenAI

from tests.e2e.conftest import AUTHORIZER_TTL_S

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-cloud")]

HELLO = [{"role": "user", "content": "Hello"}]


def cli(cloud, *args: str) -> dict:
    out = io.StringIO()
    with redirect_stdout(out):
        code = admin_cli.main(["--api-url", cloud.api_url, "--admin-key", cloud.keys["admin"], *args])
    assert code == 0, out.getvalue()
    return json.loads(out.getvalue())


def sdk(cloud, key: str) -> OpenAI:
    return OpenAI(base_url=cloud.info()["api_base_url"], api_key=key, max_retries=0, timeout=30)


def test_key_created_with_the_cli_works_and_stops_working_after_revocation_and_the_cache_ttl(cloud, provider):
    cli(cloud, "tenants", "create", "e2e-corp", "--name", "E2E Corp", "--rpm", "600")
    created = cli(cloud, "keys", "create", "e2e-corp", "--name", "laptop", "--scopes", "chat")
    client = sdk(cloud, created["key"])
    assert client.chat.completions.create(model="deepseek-chat", messages=HELLO).choices[0].message.content

    revoked = cli(cloud, "keys", "revoke", "e2e-corp", created["key_id"])
    assert revoked["revoked_at"] is not None
    time.sleep(AUTHORIZER_TTL_S + 0.5)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="deepseek-chat", messages=HELLO)


def test_wrong_key_is_the_sdks_authentication_error(cloud):
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk(cloud, "dsg_aaaaaaaaaaaaaaaa_" + "x" * 44).models.list()
    assert caught.value.status_code == 401


def test_chat_key_on_the_admin_api_is_permission_denied(cloud):
    import httpx

    response = httpx.get(f"{cloud.api_url}/admin/tenants", timeout=10,
                         headers={"Authorization": f"Bearer {cloud.keys['demo']}"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


def test_disabled_tenant_is_refused_with_the_reason(cloud):
    cli(cloud, "tenants", "create", "shortlived", "--name", "Short-lived")
    key = cli(cloud, "keys", "create", "shortlived")["key"]
    cli(cloud, "tenants", "disable", "shortlived")
    with pytest.raises(openai.PermissionDeniedError) as caught:
        sdk(cloud, key).chat.completions.create(model="deepseek-chat", messages=HELLO)
    assert caught.value.code == "tenant_disabled"


def test_oauth2_token_from_the_local_issuer_works_as_the_api_key(cloud, provider):
    token = cloud.issuer.mint("demo", ["chat"], subject="alice")
    answer = sdk(cloud, token).chat.completions.create(model="deepseek-chat", messages=HELLO)
    assert answer.choices[0].message.content


def test_oauth2_token_for_an_unknown_tenant_is_permission_denied(cloud):
    with pytest.raises(openai.PermissionDeniedError):
        sdk(cloud, cloud.issuer.mint("nobody", ["chat"])).models.list()


def test_policy_and_usage_through_the_cli(cloud, provider, tmp_path):
    cli(cloud, "tenants", "create", "cli-policy", "--name", "CLI policy")
    key = cli(cloud, "keys", "create", "cli-policy")["key"]
    cedar = tmp_path / "policy.cedar"
    cedar.write_text('@id("no-reasoner") forbid(principal, action, resource == Model::"deepseek-reasoner");')
    assert cli(cloud, "policy", "put", "cli-policy", "--cedar", str(cedar))["custom"] is True
    assert "no-reasoner" in cli(cloud, "policy", "get", "cli-policy")["cedar"]
    client = sdk(cloud, key)
    assert client.chat.completions.create(model="deepseek-chat", messages=HELLO).choices
    usage = cli(cloud, "usage", "cli-policy")
    assert usage["data"][0]["requests"] == 1
    assert cli(cloud, "policy", "reset", "cli-policy")["custom"] is False
