"""CodeDeploy for every function's `live` alias.

prod shifts 10% of traffic to a new version for five minutes, then the rest; any of the function's
alarms firing meanwhile stops the deployment and rolls the alias back. Other stages switch at once.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codedeploy as codedeploy
from constructs import Construct

from ..config import GatewayConfig
from .functions import GatewayFunction


class Deployment(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GatewayConfig,
        functions: dict[str, GatewayFunction],
        alarms: dict[str, list[cloudwatch.IAlarm]],
    ) -> None:
        super().__init__(scope, construct_id)
        self.application = codedeploy.LambdaApplication(
            self, "Application", application_name=f"deepseek-gateway-{config.stage}"
        )
        deployment_config = (
            codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_5_MINUTES
            if config.is_prod
            else codedeploy.LambdaDeploymentConfig.ALL_AT_ONCE
        )
        self.groups: dict[str, codedeploy.LambdaDeploymentGroup] = {}
        for name, function in functions.items():
            function_alarms = list(alarms.get(name, [])) if config.is_prod else []
            group = codedeploy.LambdaDeploymentGroup(
                self,
                f"{function.spec.construct_id}DeploymentGroup",
                application=self.application,
                deployment_group_name=f"deepseek-gateway-{config.stage}-{name}",
                alias=function.alias,
                deployment_config=deployment_config,
                alarms=function_alarms,
                auto_rollback=codedeploy.AutoRollbackConfig(
                    failed_deployment=True,
                    stopped_deployment=True,
                    deployment_in_alarm=bool(function_alarms),
                ),
            )
            Validations.of(group).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSCodeDeployRoleForLambdaLimited]",
                    reason="CodeDeploy's service role for Lambda deployments uses the AWS managed policy "
                    "AWS documents for it; it only reads alarms, updates aliases and invokes hooks.",
                )
            )
            self.groups[name] = group
