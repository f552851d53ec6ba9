"""Small helpers shared by the constructs: removal policies and encrypted log groups."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from ..config import GatewayConfig


def removal_policy(config: GatewayConfig) -> RemovalPolicy:
    """Prod keeps its data when the stack or resource goes away; other stages clean up."""
    return RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY


def encrypted_log_group(
    scope: Construct,
    construct_id: str,
    *,
    key: kms.IKey,
    config: GatewayConfig,
    log_group_name: str | None = None,
) -> logs.LogGroup:
    """A log group encrypted with the logs key, with the configured retention."""
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=log_group_name,
        encryption_key=key,
        retention=config.log_retention,
        removal_policy=removal_policy(config),
    )
