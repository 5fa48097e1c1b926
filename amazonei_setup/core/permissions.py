"""The IAM policy a user needs to run this tool: every action, once, as data (pure: no AWS SDK, no I/O).

`permissions [--accelerator ei|inf2|gpu] [--access ssh|ssm]` prints policy(family, access).
tests/test_permissions.py holds it to reality:
it runs the commands against moto with every AWS call recorded and asserts that each action called is here and
that nothing here is never called (a short list of actions only real AWS reaches is named there, with why).

Resources are scoped where the action allows it and the tool's names make it possible: IAM roles and instance
profiles live under the tool's IAM path (tags.IAM_PATH), the lock parameters under /amazonei-setup/locks/, the
idle alarms are named amazonei-*. EC2's create/describe calls are on "*": EC2 scopes them by tags on request
conditions, which this tool's first run cannot meet before its tags exist.
"""
from __future__ import annotations

from dataclasses import dataclass

from amazonei_setup.core import tags

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
ACCESS_MODES = ("ssh", "ssm")
BOTH = frozenset(ACCESS_MODES)
SSM_ONLY = frozenset({"ssm"})
SSM_CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"  # access.SSM_CORE_POLICY
OUR_INSTANCES = "arn:aws:ec2:*:*:instance/*"
SSH_DOCUMENT = "arn:aws:ssm:*::document/AWS-StartSSHSession"  # access.SSH_DOCUMENT, AWS's own document
OWN_SESSIONS = "arn:aws:ssm:*:*:session/${aws:userid}-*"  # Session Manager names a session after its user
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
    access: frozenset[str] = BOTH  # how ssh gets in: ssh (port 22) and/or ssm (Session Manager)


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
    # list and teardown look for EI endpoints whatever the family; a named setup for Session Manager's (its re-run)
    Grant("ListEndpointsOfAnyFamily", ("ec2:DescribeVpcEndpoints",), families=ALTERNATIVES,
          commands=("list", "teardown", "setup")),
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
    # Spot (setup --spot): the launch's request is found by its tags (list, teardown, a rollback) and cancelled
    # before its instance goes; prices for the plan, list and status.
    Grant("SpotRequests", ("ec2:DescribeSpotInstanceRequests", "ec2:CancelSpotInstanceRequests",
                           "ec2:DescribeSpotPriceHistory"),
          commands=("setup --spot", "list", "status", "teardown", "cost --spot")),
    # The first Spot request in an account makes EC2 create its service-linked role AWSServiceRoleForEC2Spot
    # (EC2 User Guide, "Service-linked role for Spot Instance requests").
    Grant("SpotServiceLinkedRole", ("iam:CreateServiceLinkedRole",),
          resources=("arn:aws:iam::*:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot",),
          commands=("setup --spot",), condition={"StringEquals": {"iam:AWSServiceName": "spot.amazonaws.com"}}),
    Grant("Stacks", ("cloudformation:CreateStack", "cloudformation:DescribeStacks",
                     "cloudformation:DescribeStackEvents", "cloudformation:ListStackResources",
                     "cloudformation:DeleteStack"), resources=(STACKS,),
          commands=("export --deploy", "teardown", "idle-stop", "status")),
    Grant("StackKeyPair", ("ssm:PutParameter", "ssm:GetParameter", "ssm:DeleteParameter"), resources=(STACK_KEYS,),
          commands=("export --deploy", "teardown")),
    Grant("LivePrices", ("pricing:GetProducts",), commands=("cost --live-prices",)),
    # --access ssm: the tool waits for each instance's SSM agent (no resource scoping for this read) and, for an EI
    # deployment, attaches Session Manager's managed policy to the role (the alternatives' roles have it already).
    Grant("SessionManagerAgents", ("ssm:DescribeInstanceInformation",),
          commands=("setup --access ssm", "start", "export --deploy --access ssm"),
          access=SSM_ONLY),
    # Whether the chosen subnet is public (its default route reaches an internet gateway); denied, it is taken as
    # public. For --access ssm without a public IP it also tells whether a NAT gateway is the agent's way out.
    Grant("SubnetRoutes", ("ec2:DescribeRouteTables",), commands=("setup",)),
    # --access ssm with no public IP and no NAT: Session Manager's interface endpoints, created, shared (our group
    # attached) and deleted with the last deployment using them, with the VPC DNS their private DNS needs. The EI
    # policy has these actions already (its own endpoint).
    Grant("SessionManagerEndpoints", (
        "ec2:DescribeVpcEndpoints", "ec2:CreateVpcEndpoint", "ec2:ModifyVpcEndpoint", "ec2:DeleteVpcEndpoints",
        "ec2:DescribeVpcAttribute", "ec2:ModifyVpcAttribute"),
        families=ALTERNATIVES, commands=("setup --access ssm (private instance)", "teardown"), access=SSM_ONLY),
    Grant("SessionManagerOnTheRole", ("iam:AttachRolePolicy", "iam:DetachRolePolicy"), resources=(ROLES,),
          families=frozenset({"ei"}), commands=("setup --access ssm", "teardown"),
          condition={"ArnEquals": {"iam:PolicyARN": [SSM_CORE]}}, access=SSM_ONLY),
    # What `ssh NAME` itself needs (its ProxyCommand runs `aws ssm start-session`): a session on this tool's
    # instances only (their created-by tag), with AWS's SSH document only, and ending or resuming the user's own.
    Grant("SshThroughSessionManager", ("ssm:StartSession",), resources=(OUR_INSTANCES,),
          commands=("ssh NAME (ProxyCommand)",), access=SSM_ONLY,
          condition={"StringEquals": {f"aws:ResourceTag/{tags.CREATED_BY}": tags.TOOL}}),
    Grant("SshSessionDocument", ("ssm:StartSession",), resources=(SSH_DOCUMENT,),
          commands=("ssh NAME (ProxyCommand)",), access=SSM_ONLY),
    Grant("OwnSessions", ("ssm:TerminateSession", "ssm:ResumeSession"), resources=(OWN_SESSIONS,),
          commands=("ssh NAME (ProxyCommand)",), access=SSM_ONLY),
)


def grants(family: str, access: str = "ssh") -> list[Grant]:
    if family not in FAMILIES:
        raise ValueError(f"unknown accelerator family {family!r}: one of {', '.join(FAMILIES)}")
    if access not in ACCESS_MODES:
        raise ValueError(f"unknown access {access!r}: one of {', '.join(ACCESS_MODES)}")
    return [g for g in GRANTS if family in g.families and access in g.access]


def actions(family: str, access: str = "ssh") -> set[str]:
    """Every action the policy of `family` (reached by `access`) allows."""
    return {a for g in grants(family, access) for a in g.actions}


def policy(family: str = "ei", access: str = "ssh") -> dict:
    """The IAM policy document (Version 2012-10-17), one statement per grant, actions sorted."""
    statements = []
    for grant in grants(family, access):
        statement = {"Sid": grant.sid, "Effect": "Allow", "Action": sorted(grant.actions),
                     "Resource": list(grant.resources) if len(grant.resources) > 1 else grant.resources[0]}
        if grant.condition:
            statement["Condition"] = grant.condition
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}
