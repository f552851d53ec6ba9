"""One log line and a few metrics per verdict, without any content.

Logged: stage, blocked, categories, signal names, scores, entity counts, redaction count, timing.
Metrics (only when non-zero, so a clean request costs nothing here): `SafetyBlocked` and
`SafetyRedactions` on the shared Metrics object, plus one `SafetyBlocked` data point per category
(its own EMF line, with a `category` dimension).
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from deepseek_gateway.observability import NAMESPACE, logger, metrics
from deepseek_gateway.safety.verdicts import InputVerdict, OutputVerdict


def _by_category(categories: list[str]) -> None:
    from aws_lambda_powertools.metrics import single_metric  # noqa: PLC0415 - only on a block

    for category in categories:
        with single_metric(name="SafetyBlocked", unit=MetricUnit.Count, value=1, namespace=NAMESPACE,
                           default_dimensions=metrics.default_dimensions) as metric:
            metric.add_dimension(name="category", value=category.split(":")[0])


def record_input(verdict: InputVerdict) -> None:
    logger.info("safety verdict", extra={
        "safety_stage": "input",
        "blocked": verdict.blocked,
        "categories": verdict.categories,
        "signals": verdict.signals,
        "injection_score": verdict.injection_score,
        "indirect_injection_score": verdict.indirect_injection_score,
        "entities": verdict.entities,
        "redacted": verdict.redactions.count,
        "moderation": verdict.moderation.model_dump() if verdict.moderation else None,
        "safety_ms": verdict.elapsed_ms,
    })
    _count(verdict.blocked, verdict.categories, verdict.redactions.count)


def record_output(verdict: OutputVerdict) -> None:
    logger.info("safety verdict", extra={
        "safety_stage": "output",
        "blocked": verdict.blocked,
        "categories": verdict.categories,
        "entities": verdict.entities,
        "restored": verdict.restored,
        "redacted": verdict.redacted,
        "canary_leaked": verdict.canary_leaked,
        "json_valid": verdict.json_valid,
        "moderation": verdict.moderation.model_dump() if verdict.moderation else None,
        "safety_ms": verdict.elapsed_ms,
    })
    _count(verdict.blocked, verdict.categories, verdict.redacted)


def _count(blocked: bool, categories: list[str], redactions: int) -> None:
    if redactions:
        metrics.add_metric(name="SafetyRedactions", unit=MetricUnit.Count, value=redactions)
    if blocked:
        metrics.add_metric(name="SafetyBlocked", unit=MetricUnit.Count, value=1)
        _by_category(categories)
