"""The one place Powertools Logger, Metrics and Tracer are created; everything imports them."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

NAMESPACE = "DeepSeekGateway"

logger = Logger(service="deepseek-gateway")
metrics = Metrics(namespace=NAMESPACE, service="deepseek-gateway")
tracer = Tracer(service="deepseek-gateway")
