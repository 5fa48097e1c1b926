"""IAM: the instance role, its least-privilege inline policy, and the instance profile.

Every deployment gets its own role and profile (IAM is free, and per-deployment pieces mean a
teardown can never break a sibling). Names are derived from the deployment name and live under
the /amazonei-setup/ path, so teardown can find them from any machine; their tags prove we made
them before anything is deleted.
"""
from __future__ import annotations

import json

from botocore.exceptions import ClientError

from amazonei_setup.core import tags
from amazonei_setup.core.errors import error_code

POLICY_NAME = "amazonei-setup-elastic-inference"

TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


role_name = tags.resource_name


profile_name = role_name  # one profile per role, same name: easy to find, easy to explain


def ei_policy(region: str, account_id: str) -> dict:
    """Least privilege for the EI client on the instance.

    AWS's documented EI role policy (EC2 User Guide "Setting up to launch EC2 with EI", also used
    by the original amazonei_setup.py) granted elastic-inference:Connect plus iam:List*, iam:Get*,
    ec2:Describe*, ec2:Get* on *. Connect is scoped to this account's accelerators in this region.
    The reads are narrowed to what the DLAMI's EISetupValidator.py checks: the instance, its
    subnet, security groups and the EI endpoint (EC2 describes support no resource scoping), and
    the instance's own role and profile (scoped to our IAM path).
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConnectToElasticInference",
                "Effect": "Allow",
                "Action": "elastic-inference:Connect",
                "Resource": f"arn:aws:elastic-inference:{region}:{account_id}:elastic-inference-accelerator/*",
            },
            {
                "Sid": "ReadOwnNetworkSetup",
                "Effect": "Allow",
                "Action": ["ec2:DescribeInstances", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
                           "ec2:DescribeVpcEndpoints"],
                "Resource": "*",
            },
            {
                "Sid": "ReadOwnRole",
                "Effect": "Allow",
                "Action": ["iam:GetInstanceProfile", "iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies",
                           "iam:ListAttachedRolePolicies"],
                "Resource": [f"arn:aws:iam::{account_id}:role{tags.IAM_PATH}*",
                             f"arn:aws:iam::{account_id}:instance-profile{tags.IAM_PATH}*"],
            },
        ],
    }


def get_role(iam, name: str) -> dict | None:
    try:
        return iam.get_role(RoleName=name)["Role"]
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return None
        raise


def get_instance_profile(iam, name: str) -> dict | None:
    """The profile with its tags (list_instance_profile_tags is not needed: get returns them)."""
    try:
        return iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return None
        raise


def create_role(iam, name: str, tag_list: list[dict]) -> str:
    role = iam.create_role(
        RoleName=name, Path=tags.IAM_PATH, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
        Description="EC2 instance role for an Elastic Inference deployment (amazonei-setup)",
        Tags=tag_list,
    )["Role"]
    return role["Arn"]


def put_policy(iam, role: str, policy: dict) -> None:
    iam.put_role_policy(RoleName=role, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))


def attach_managed_policies(iam, role: str, policy_arns) -> None:
    """Attach AWS managed policies (idempotent: attaching an attached policy is a no-op in IAM)."""
    for arn in policy_arns:
        iam.attach_role_policy(RoleName=role, PolicyArn=arn)


def create_instance_profile(iam, name: str, tag_list: list[dict]) -> str:
    profile = iam.create_instance_profile(InstanceProfileName=name, Path=tags.IAM_PATH, Tags=tag_list)
    return profile["InstanceProfile"]["Arn"]


def add_role_to_profile(iam, profile: str, role: str) -> None:
    try:
        iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role)
    except ClientError as err:
        if error_code(err) != "LimitExceeded":  # the profile already holds its one role
            raise


# ---- delete (teardown and rollback) -------------------------------------------------------
# Granular calls so teardown can run them in two concurrent rounds: first everything that holds
# something (role in profile, policies on role), then the profile and the role themselves.

def inline_policies(iam, role: str) -> list[str]:
    """Names of the role's inline policies; empty when the role is gone."""
    try:
        return iam.list_role_policies(RoleName=role)["PolicyNames"]
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return []
        raise


def attached_policies(iam, role: str) -> list[str]:
    """ARNs of the managed policies attached to the role; empty when the role is gone."""
    try:
        return [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]]
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return []
        raise


def remove_role_from_profile(iam, profile: str, role: str) -> bool:
    return _ignore_missing(iam.remove_role_from_instance_profile, InstanceProfileName=profile, RoleName=role)


def delete_role_policy(iam, role: str, policy: str) -> bool:
    return _ignore_missing(iam.delete_role_policy, RoleName=role, PolicyName=policy)


def detach_role_policy(iam, role: str, policy_arn: str) -> bool:
    return _ignore_missing(iam.detach_role_policy, RoleName=role, PolicyArn=policy_arn)


def delete_empty_instance_profile(iam, name: str) -> bool:
    return _ignore_missing(iam.delete_instance_profile, InstanceProfileName=name)


def delete_empty_role(iam, name: str) -> bool:
    # A profile we did not make may still hold the role (DeleteConflict): that is the user's to fix.
    return _ignore_missing(iam.delete_role, RoleName=name)


def delete_instance_profile(iam, name: str) -> bool:
    """Remove its roles, then delete it (sequential; rollback's path). False when already gone."""
    profile = get_instance_profile(iam, name)
    if profile is None:
        return False
    for role in profile.get("Roles", []):
        remove_role_from_profile(iam, name, role["RoleName"])
    return delete_empty_instance_profile(iam, name)


def delete_role(iam, name: str) -> bool:
    """Delete its inline policies, detach managed ones, then the role (sequential; rollback's path)."""
    for policy in inline_policies(iam, name):
        delete_role_policy(iam, name, policy)
    for arn in attached_policies(iam, name):
        detach_role_policy(iam, name, arn)
    return delete_empty_role(iam, name)


def _ignore_missing(call, **kwargs) -> bool:
    try:
        call(**kwargs)
        return True
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return False
        raise


def our_roles(iam) -> list[dict]:
    """Every role under our IAM path, with its tags (ListRoles leaves tags out: one GetRole each)."""
    pages = iam.get_paginator("list_roles").paginate(PathPrefix=tags.IAM_PATH)
    found = [get_role(iam, r["RoleName"]) for page in pages for r in page["Roles"]]
    return [r for r in found if r is not None]
