"""Test-wide environment: fake AWS credentials and region, no X-Ray, quiet empty-metric warnings."""

from __future__ import annotations

import os

# Tests never talk to real AWS: moto intercepts, and these keep boto3 from finding real credentials.
for key, value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
}.items():
    os.environ[key] = value
os.environ.pop("AWS_PROFILE", None)

