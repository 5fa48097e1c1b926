"""The tags that mark what amazonei-setup created. Tags, not local files, are the source of
truth for teardown and list: a deployment can be found from any machine."""
from __future__ import annotations

DEPLOYMENT = "amazonei-setup:deployment"
CREATED_BY = "amazonei-setup:created-by"
TOOL = "amazonei-setup"
# Who created the deployment, so a second user cannot converge onto (or tear down) it by name.
OWNER = "amazonei-setup:owner"
# Stored on the instance because EC2 no longer reports the EI association reliably (moto drops it).
ACCELERATOR = "amazonei-setup:accelerator"
SSH_USER = "amazonei-setup:ssh-user"
# How ssh gets in (ssh: port 22 from a range; ssm: Session Manager, no inbound port), on the security group and the
# instances: a re-run without --access keeps it, and start/connect write the matching Host block.
ACCESS = "amazonei-setup:access"
# The region the deployment lives in, on every piece: IAM is global, so a role alone cannot say which region's
# deployment it serves. A name is one deployment in the account; setup and teardown elsewhere are refused.
REGION = "amazonei-setup:region"
# The run that created a piece: when a create's reply is lost and the retry answers "already exists", this says
# the thing is this run's own (to roll back), not something to reuse.
RUN = "amazonei-setup:run"
# Set by CloudFormation itself on what a stack creates: such a deployment belongs to its stack (export --deploy).
CFN_STACK_NAME = "aws:cloudformation:stack-name"
# On an EI endpoint this deployment shares: the subnets it added (space-separated), one key per deployment
# (`endpoint_subnets_key`). Written before the subnet is added, so a teardown finds them even after a crash, and
# takes back what no other deployment needs (an interface endpoint is billed per zone it serves). Its security
# group needs no such record: being attached is the record (see resources/network.py).
ENDPOINT_SUBNETS = "amazonei-setup:endpoint-subnets:"
# IAM path for every role and instance profile we create: list_roles(PathPrefix=...) finds them.
IAM_PATH = "/amazonei-setup/"


def endpoint_subnets_key(deployment: str) -> str:
    return ENDPOINT_SUBNETS + deployment


def resource_name(deployment: str) -> str:
    """The name of every named resource of a deployment (role, profile, group, key pair).

    The default deployment names (amazonei-3fa9c1) already say whose they are and are used as
    they are; any other name is prefixed (demo -> amazonei-setup-demo). Two deployment names can
    map to one resource name (`amazonei-setup-x` and `x`); the deployment tag tells them apart,
    and setup refuses to adopt a resource tagged for another deployment.
    """
    return deployment if deployment.startswith("amazonei-") else f"amazonei-setup-{deployment}"


def tag_list(name: str, owner: str | None = None, region: str | None = None, **extra: str) -> list[dict[str, str]]:
    tags = {DEPLOYMENT: name, CREATED_BY: TOOL}
    tags.update({k: v for k, v in {OWNER: owner, REGION: region, **extra}.items() if v})
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def tag_specs(resource_types: list[str], tags: list[dict[str, str]]) -> list[dict]:
    return [{"ResourceType": rt, "Tags": tags} for rt in resource_types]


def as_dict(tags: list[dict] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}


def is_ours(tags: list[dict] | None, name: str | None = None) -> bool:
    """True when the tags say amazonei-setup created it (for deployment `name`, if given)."""
    d = as_dict(tags)
    return d.get(CREATED_BY) == TOOL and (name is None or d.get(DEPLOYMENT) == name)


def home_region(tags: list[dict] | None) -> str | None:
    """The region a piece says its deployment lives in (None on pieces made before the region tag existed)."""
    return as_dict(tags).get(REGION)


def filters_for(name: str | None) -> list[dict]:
    """EC2 filters matching resources of one deployment (or of any, when name is None)."""
    if name is None:
        return [{"Name": f"tag:{CREATED_BY}", "Values": [TOOL]}]
    return [{"Name": f"tag:{DEPLOYMENT}", "Values": [name]}, {"Name": f"tag:{CREATED_BY}", "Values": [TOOL]}]
