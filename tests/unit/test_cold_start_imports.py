"""What a cold start imports: nothing heavy that the first request may not need."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers import ROOT

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("handler", "functions/api/handler.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps({name: name in sys.modules for name in ("openai", "anthropic", "aws_xray_sdk", "cedarpy")}))
"""


def imported_by_api_handler(extra_env: dict[str, str]) -> dict[str, bool]:
    env = {k: v for k, v in os.environ.items() if k != "AWS_XRAY_DAEMON_ADDRESS"} | extra_env
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,  # noqa: S603
                         check=True, timeout=60).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_api_handler_imports_no_provider_sdk_and_no_xray_without_a_daemon():
    loaded = imported_by_api_handler({})
    assert loaded == {"openai": False, "anthropic": False, "aws_xray_sdk": False, "cedarpy": False}


def test_with_an_xray_daemon_the_tracer_is_real():
    xray = {"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000", "POWERTOOLS_TRACE_DISABLED": "false"}
    loaded = imported_by_api_handler(xray)
    assert loaded["aws_xray_sdk"] is True
    assert loaded["openai"] is False
