"""One local cloud per test session, on free ports, with its own state directory."""

from __future__ import annotations

import pytest
from local_cloud.cloud import LocalCloud, LocalCloudConfig
from local_cloud.functions import free_port

# Short, so the revocation test can watch a cached authorization expire.
AUTHORIZER_TTL_S = 2


@pytest.fixture(scope="session")
def cloud(tmp_path_factory):
    config = LocalCloudConfig(
        api_port=free_port(),
        aws_port=free_port(),
        provider_port=free_port(),
        state_dir=tmp_path_factory.mktemp("local-cloud"),
        concurrency=2,
        context={"authorizer_cache_ttl_s": AUTHORIZER_TTL_S},
    )
    # Real keys in the developer's environment must not turn tests into calls to real providers.
    for name in ("DEEPSEEK", "OPENAI", "ANTHROPIC"):
        config.env.pop(f"{name}_API_KEY", None)
        config.env.pop(f"{name}_BASE_URL", None)
    local_cloud = LocalCloud(config).start()
    yield local_cloud
    local_cloud.stop()


@pytest.fixture
def provider(cloud):
    cloud.provider.reset()
    yield cloud.provider
    cloud.provider.reset()


@pytest.fixture
def client(cloud):
    from openai import OpenAI

    return OpenAI(base_url=cloud.info()["api_base_url"], api_key=cloud.keys["demo"], max_retries=0, timeout=30)


@pytest.fixture
def aws(cloud):
    return cloud.session
