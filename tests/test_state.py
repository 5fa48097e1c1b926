"""Deployment state you can trust (issue 14): what the tool says matches what exists in AWS.

Re-runs converge onto what the flags declare; a name is one deployment in the account, whichever region;
teardown never removes what a deployment in another region uses. Every test asserts on the moto account
and on what the user sees.
"""
from __future__ import annotations

from amazonei_setup import tags
from tests.conftest import REGION, setup_args

NAME = "demo"
GROUP_NAME = tags.resource_name(NAME)


def group(ec2, name: str = NAME) -> dict:
    [found] = ec2.describe_security_groups(Filters=[{"Name": f"tag:{tags.DEPLOYMENT}", "Values": [name]}])[
        "SecurityGroups"]
    return found


def ssh_ranges(found: dict) -> list[str]:
    return sorted(r["CidrIp"] for rule in found["IpPermissions"] if rule.get("FromPort") == 22
                  for r in rule.get("IpRanges", []))


def https_sources(found: dict) -> list[str]:
    return [p["GroupId"] for rule in found["IpPermissions"] if rule.get("FromPort") == 443
            for p in rule.get("UserIdGroupPairs", [])]


def setup_with_cidr(cli, cidr: str, *extra: str):
    args = setup_args(NAME, *extra)
    args[args.index("--ssh-cidr") + 1] = cidr
    return cli(*args, "--output", "json")


def planned_group(cli, cidr: str) -> dict:
    """What --dry-run's plan says it would do to the deployment's group."""
    dry = setup_with_cidr(cli, cidr, "--dry-run")
    assert dry.code == 0, dry.stderr
    [item] = [i for i in dry.json["result"]["plan"]["items"] if i["kind"] == "security-group"]
    return item


# ---- 1. a re-run converges the SSH range ----------------------------------------------------------------

def test_rerun_with_a_new_ssh_cidr_replaces_the_old_range(cli, account):
    """The everyday case: my address changed, I run setup again. Port 22 must follow, and the old range close."""
    first = setup_with_cidr(cli, "0.0.0.0/0")
    assert first.code == 0, first.stderr
    assert ssh_ranges(group(account.ec2)) == ["0.0.0.0/0"]

    item = planned_group(cli, "203.0.113.7/32")
    assert item["action"] == "update" and "0.0.0.0/0 -> 203.0.113.7/32" in item["detail"]
    assert ssh_ranges(group(account.ec2)) == ["0.0.0.0/0"]  # a dry run changes nothing

    again = setup_with_cidr(cli, "203.0.113.7/32")

    assert again.code == 0, again.stderr
    found = group(account.ec2)
    assert ssh_ranges(found) == ["203.0.113.7/32"]  # the new range is open and 0.0.0.0/0 is closed
    assert https_sources(found) == [found["GroupId"]]  # the 443 rule survives the change
    assert "0.0.0.0/0 -> 203.0.113.7/32" in again.stderr  # the plan the user confirmed said so
    assert "now only from 203.0.113.7/32" in again.stderr and "closed 0.0.0.0/0" in again.stderr


def test_rerun_with_the_same_cidr_changes_nothing_and_says_reuse(cli, account):
    assert setup_with_cidr(cli, "203.0.113.7/32").code == 0
    before = group(account.ec2)["IpPermissions"]

    again = setup_with_cidr(cli, "203.0.113.7/32")

    assert again.code == 0, again.stderr
    assert group(account.ec2)["IpPermissions"] == before
    assert planned_group(cli, "203.0.113.7/32")["action"] == "reuse"


def test_a_hand_made_ssh_rule_is_left_alone(cli, account):
    """Only the ranges this tool opened are closed: a rule the user added themselves stays."""
    assert setup_with_cidr(cli, "198.51.100.4/32").code == 0
    group_id = group(account.ec2)["GroupId"]
    account.ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "192.0.2.0/24", "Description": "office VPN"}]}])

    again = setup_with_cidr(cli, "203.0.113.7/32")

    assert again.code == 0, again.stderr
    assert ssh_ranges(group(account.ec2)) == ["192.0.2.0/24", "203.0.113.7/32"]


def test_a_new_ssh_range_is_opened_although_the_https_rule_exists(cli, account):
    """AWS refuses a whole AuthorizeSecurityGroupIngress when one rule in it exists: the SSH rule must not be
    sent in the same call as the 443 rule a first run already made."""
    assert setup_with_cidr(cli, "198.51.100.4/32").code == 0
    group_id = group(account.ec2)["GroupId"]
    account.ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "198.51.100.4/32"}]}])

    item = planned_group(cli, "198.51.100.4/32")
    assert item["action"] == "update" and "nowhere -> 198.51.100.4/32" in item["detail"]

    again = setup_with_cidr(cli, "198.51.100.4/32")

    assert again.code == 0, again.stderr
    assert ssh_ranges(group(account.ec2)) == ["198.51.100.4/32"]


def test_teardown_after_a_cidr_change_leaves_nothing(cli, account):
    assert setup_with_cidr(cli, "0.0.0.0/0").code == 0
    assert setup_with_cidr(cli, "203.0.113.7/32").code == 0
    gone = cli("teardown", "--region", REGION, "--name", NAME, "--yes")
    assert gone.code == 0, gone.stderr
    assert account.ec2.describe_security_groups(Filters=tags.filters_for(NAME))["SecurityGroups"] == []
