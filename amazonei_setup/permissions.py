"""The IAM policy a user needs to run this tool: every action, once, as data (pure: no AWS SDK, no I/O).

`permissions [--accelerator ei|inf2|gpu]` prints policy(family). tests/test_permissions.py holds it to reality:
it runs the commands against moto with every AWS call recorded and asserts that each action called is here and
that nothing here is never called (a short list of actions only real AWS reaches is named there, with why).

Resources are scoped where the action allows it and the tool's names make it possible: IAM roles and instance
profiles live under the tool's IAM path (tags.IAM_PATH), the lock parameters under /amazonei-setup/locks/, the
idle alarms are named amazonei-*. EC2's create/describe calls are on "*": EC2 scopes them by tags on request
conditions, which this tool's first run cannot meet before its tags exist.
"""
from __future__ import annotations

from dataclasses import dataclass

from amazonei_setup import tags

FAMILIES = ("ei", "inf2", "gpu")
ALL = frozenset(FAMILIES)
ALTERNATIVES = frozenset({"inf2", "gpu"})
ANY_RESOURCE = "*"
ROLES = f"arn:aws:iam::*:role{tags.IAM_PATH}*"
PROFILES = f"arn:aws:iam::*:instance-profile{tags.IAM_PATH}*"
LOCKS = "arn:aws:ssm:*:*:parameter/amazonei-setup/locks/*"
STACK_KEYS = "arn:aws:ssm:*:*:parameter/ec2/keypair/*"  # where AWS keeps a stack-made key pair's private key
ALARMS = "arn:aws:cloudwatch:*:*:alarm:amazonei-*"
STACKS = "arn:aws:cloudformation:*:*:stack/amazonei-*/*"
FAMILY_AMI_PARAMETERS = "arn:aws:ssm:*::parameter/aws/service/*"  # AWS's public DLAMI parameters (inf2/gpu)
MANAGED_POLICIES = ("arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
                    "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy")  # catalog.FAMILY_MANAGED_POLICIES


@dataclass(frozen=True)
class Grant:
    """Actions on resources, what needs them (commands), and for which accelerator families."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...] = (ANY_RESOURCE,)
    families: frozenset[str] = ALL
    commands: tuple[str, ...] = ()
    condition: dict | None = None


GRANTS: tuple[Grant, ...] = (
    Grant("ReadAccount", ("sts:GetCallerIdentity", "sts:DecodeAuthorizationMessage"),
          commands=("setup", "teardown", "status", "idle-stop", "export --deploy")),
    Grant("DiscoverEc2", (
        "ec2:DescribeRegions", "ec2:DescribeVpcs", "ec2:DescribeSubnets",
        "ec2:DescribeImages", "ec2:DescribeInstanceTypes", "ec2:DescribeInstanceTypeOfferings",
        "ec2:DescribeKeyPairs", "ec2:DescribeSecurityGroups", "ec2:DescribeInstances",
        "ec2:DescribeVolumes"),  # `stop`: what still costs money (the volumes)
        commands=("setup", "teardown", "list", "status", "connect", "exec", "stop", "start", "idle-stop", "export")),
    Grant("CreateAndChangeEc2", (
        "ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress",
        "ec2:CreateKeyPair", "ec2:RunInstances", "ec2:CreateTags", "ec2:StartInstances", "ec2:StopInstances"),
        commands=("setup", "stop", "start", "export --deploy")),
    Grant("RemoveEc2", ("ec2:TerminateInstances", "ec2:DeleteSecurityGroup", "ec2:DeleteKeyPair"),
          commands=("teardown", "setup (rollback)")),
    Grant("ElasticInferenceEndpoint", (
        "ec2:DescribeVpcEndpointServices", "ec2:DescribeVpcEndpoints", "ec2:CreateVpcEndpoint",
        "ec2:ModifyVpcEndpoint", "ec2:DeleteVpcEndpoints", "ec2:DescribeVpcAttribute", "ec2:ModifyVpcAttribute",
        # A shared endpoint carries each deployment's record of the subnets it added (tags.ENDPOINT_SUBNETS):
        # written (CreateTags, granted above) before a subnet is added, deleted when its deployment goes.
        "ec2:DeleteTags"),
        families=frozenset({"ei"}), commands=("setup", "teardown", "list", "status")),
    Grant("ListEndpointsOfAnyFamily", ("ec2:DescribeVpcEndpoints",), families=ALTERNATIVES,
          commands=("list", "teardown")),  # list and teardown look for EI endpoints whatever the family
    Grant("InstanceRoleAndProfile", (
        "iam:CreateRole", "iam:GetRole", "iam:DeleteRole", "iam:TagRole",
        "iam:CreateInstanceProfile", "iam:GetInstanceProfile", "iam:DeleteInstanceProfile",
        "iam:TagInstanceProfile", "iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile",
        "iam:ListRolePolicies", "iam:ListAttachedRolePolicies"),
        resources=(ROLES, PROFILES), commands=("setup", "teardown", "idle-stop", "export --deploy")),
    Grant("EiConnectPolicy", ("iam:PutRolePolicy", "iam:DeleteRolePolicy"), resources=(ROLES,),
          families=frozenset({"ei"}), commands=("setup", "teardown")),
    Grant("FamilyManagedPolicies", ("iam:AttachRolePolicy", "iam:DetachRolePolicy"), resources=(ROLES,),
          families=ALTERNATIVES, commands=("setup", "teardown"),
          condition={"ArnEquals": {"iam:PolicyARN": list(MANAGED_POLICIES)}}),
    Grant("PassTheInstanceRole", ("iam:PassRole",), resources=(ROLES,), commands=("setup", "export --deploy"),
          condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}),
    Grant("ListDeployments", ("iam:ListRoles",), commands=("list", "teardown", "idle-stop", "status")),
    Grant("FamilyImages", ("ssm:GetParameters",), resources=(FAMILY_AMI_PARAMETERS,), families=ALTERNATIVES,
          commands=("setup", "export")),
    Grant("DeploymentLock", ("ssm:PutParameter", "ssm:GetParameter", "ssm:DeleteParameter"), resources=(LOCKS,),
          commands=("setup", "teardown", "idle-stop", "export --deploy", "stop", "start")),
    Grant("IdleAutoStop", ("cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:ListTagsForResource",
                           "cloudwatch:TagResource"),
          resources=(ALARMS,), commands=("setup --idle-stop", "idle-stop", "teardown", "list", "status")),
    Grant("FindIdleAlarms", ("cloudwatch:DescribeAlarms",), commands=("setup", "teardown", "list", "status")),
    # The first alarm with an EC2 action in an account makes CloudWatch create its service-linked role.
    Grant("AlarmEc2ActionRole", ("iam:CreateServiceLinkedRole",),
          resources=("arn:aws:iam::*:role/aws-service-role/events.amazonaws.com/AWSServiceRoleForCloudWatchEvents*",),
          commands=("setup --idle-stop", "idle-stop"),
          condition={"StringEquals": {"iam:AWSServiceName": "events.amazonaws.com"}}),
    Grant("Quotas", ("servicequotas:GetServiceQuota",), commands=("setup",)),
    Grant("Stacks", ("cloudformation:CreateStack", "cloudformation:DescribeStacks",
                     "cloudformation:DescribeStackEvents", "cloudformation:ListStackResources",
                     "cloudformation:DeleteStack"), resources=(STACKS,),
          commands=("export --deploy", "teardown", "idle-stop", "status")),
    Grant("StackKeyPair", ("ssm:PutParameter", "ssm:GetParameter", "ssm:DeleteParameter"), resources=(STACK_KEYS,),
          commands=("export --deploy", "teardown")),
    Grant("LivePrices", ("pricing:GetProducts",), commands=("cost --live-prices",)),
)


def grants(family: str) -> list[Grant]:
    if family not in FAMILIES:
        raise ValueError(f"unknown accelerator family {family!r}: one of {', '.join(FAMILIES)}")
    return [g for g in GRANTS if family in g.families]


def actions(family: str) -> set[str]:
    """Every action the policy of `family` allows."""
    return {a for g in grants(family) for a in g.actions}


def policy(family: str = "ei") -> dict:
    """The IAM policy document (Version 2012-10-17), one statement per grant, actions sorted."""
    statements = []
    for grant in grants(family):
        statement = {"Sid": grant.sid, "Effect": "Allow", "Action": sorted(grant.actions),
                     "Resource": list(grant.resources) if len(grant.resources) > 1 else grant.resources[0]}
        if grant.condition:
            statement["Condition"] = grant.condition
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}
