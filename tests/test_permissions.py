"""`permissions` (issue 16): the IAM policy a user needs, held to reality.

Each family's test runs every command of the tool against moto (setup, a re-run that converges, dry run, list,
idle-stop, export and export --deploy, teardown, and status/connect/stop/start when this build has them) with
every AWS call the tool makes recorded (conftest.CallRecorder, on aws.py's call log), then asserts
  (a) every action called is in the printed policy, and
  (b) nothing in the policy is never called, but for the short lists below, each entry saying why.
Design under pytest-xdist: a test records only what its own flows call, in its own process, and asserts on that
alone; no worker needs another's calls, so `-n auto` cannot split what one assertion needs.
"""
from __future__ import annotations

import json

import pytest

import amazonei_setup.cli.main as cli_module
from amazonei_setup.core import permissions
from tests.conftest import ACCOUNT, REGION, SSH_CIDR, CallRecorder
from tests.test_spot import spot_market  # noqa: F401 - a fixture: RunInstances makes its Spot request, as on AWS

# In the policy, but no API call of their own: AWS checks them as part of another call.
PERMISSION_ONLY = {
    "iam:PassRole": "RunInstances with an instance profile passes its role to EC2",
    "iam:TagRole": "CreateRole with Tags",
    "iam:TagInstanceProfile": "CreateInstanceProfile with Tags",
    "ec2:CreateTags": "RunInstances/CreateSecurityGroup/CreateKeyPair/CreateVpcEndpoint with TagSpecifications",
    "cloudwatch:TagResource": "PutMetricAlarm with Tags",
    "iam:CreateServiceLinkedRole": "CloudWatch creates AWSServiceRoleForCloudWatchEvents at the first alarm with an "
                                   "EC2 action, EC2 creates AWSServiceRoleForEC2Spot at the first Spot launch",
}
# Called only on paths moto cannot reach.
UNREACHABLE = {
    "sts:DecodeAuthorizationMessage": "only to explain an EC2 refusal (UnauthorizedOperation); moto never refuses",
    "pricing:GetProducts": "cost --live-prices: moto has no Pricing API (its tests use botocore's Stubber)",
}
# Called by commands other branches of issue 16/17 add (stop/start, quotas, capacity): in the policy already, so
# the merge needs no edit here. Once merged, an action here that the flows call is checked like any other; the
# lead may then empty this set.
PENDING_MERGE: dict[str, str] = {}  # actions of commands on branches not merged yet (none today)
# The flows' own setup steps (stopping an instance, turning a VPC's DNS off) use the test's boto3 clients, which
# do not log: only the tool's calls are recorded.


def plain_client(service: str):
    import boto3

    return boto3.client(service, region_name=REGION)


def known_flags(command: str) -> set[str]:
    parser = cli_module.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return {o for a in sub.choices[command]._actions for o in a.option_strings}


def ok(run) -> None:
    assert run.code == 0, run.stderr


def exercise(cli, family: str, tmp_path) -> set[str]:
    """Every command, against moto, with the tool's calls recorded; returns the IAM actions called."""
    ec2 = plain_client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    chosen = [] if family == "ei" else ["--accelerator", family]  # the re-run: the type comes from the instance

    def setup(name, *extra):
        return cli("--region", REGION, "--yes", "--name", name, "--ssh-cidr", SSH_CIDR, *chosen,
                   "--instance-type", INSTANCE_TYPES[family], *extra)

    if family == "ei":  # setup must turn on what private DNS needs (ec2:ModifyVpcAttribute)
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": False})
    recorder = CallRecorder()
    with recorder:
        ok(setup("perm", "--idle-stop", "60"))
        if family == "ei":
            # Joins the first one's EI endpoint in another zone (ec2:ModifyVpcEndpoint, ec2:CreateTags: the record of
            # the subnet it adds, which its teardown takes back with ec2:DeleteTags).
            other_zone = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                       {"Name": "availability-zone", "Values": [f"{REGION}b"]}])
            ok(setup("perm-two", "--subnet-id", other_zone["Subnets"][0]["SubnetId"]))
        ok(setup("perm-dry", "--dry-run"))
        ok(setup("perm-spot", "--spot"))  # the Spot prices; its request is looked up by list, status and teardown
    instance_id = ec2.describe_instances(Filters=[{"Name": "tag:amazonei-setup:deployment", "Values": ["perm"]}])[
        "Reservations"][0]["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[instance_id])
    with recorder:
        # A re-run converges: starts the stopped instance, closes the old SSH range for the new one.
        ok(cli("--region", REGION, "--yes", "--name", "perm", "--ssh-cidr", "203.0.113.9/32", *chosen))
        ok(cli("list", "--region", REGION))
        ok(cli("list", "--all-regions"))
        ok(cli("idle-stop", "--name", "perm", "30"))
        ok(cli("idle-stop", "--name", "perm", "off", "--region", REGION))
        for command, extra in (("status", ()), ("connect", ("--print",)), ("stop", ("--yes",)),
                               ("start", ("--yes",))):
            if command in cli_module.COMMANDS:  # the day-two commands, once merged
                flags = known_flags(command)
                ok(cli(command, "--name", "perm", "--region", REGION, *[f for f in extra if f in flags]))
        ok(cli("export", *setup_flags(family), "--name", "perm-tpl", "--out", str(tmp_path / "t.yaml")))
        ok(cli("export", *setup_flags(family), "--name", "perm-stack", "--deploy"))
        ok(cli("teardown", "--name", "perm-stack", "--yes"))
        if family == "ei":
            ok(cli("teardown", "--name", "perm-two", "--yes", "--region", REGION))
        ok(cli("teardown", "--name", "perm", "--yes"))
        ok(cli("teardown", "--name", "perm-spot", "--yes"))
    return recorder.actions


INSTANCE_TYPES = {"ei": "m5.xlarge", "inf2": "inf2.xlarge", "gpu": "g4dn.xlarge"}


def setup_flags(family: str) -> list[str]:
    chosen = [] if family == "ei" else ["--accelerator", family]
    return ["--region", REGION, "--yes", "--ssh-cidr", SSH_CIDR, "--instance-type", INSTANCE_TYPES[family], *chosen]


@pytest.mark.parametrize("family", permissions.FAMILIES)
@pytest.mark.usefixtures("spot_market")  # teardown and list find the Spot request and cancel it, as on AWS
def test_the_policy_allows_every_call_and_nothing_more(cli, account, family, tmp_path):
    from amazonei_setup.sandbox.account import seed_alternative_amis

    seed_alternative_amis(ACCOUNT, REGION)
    called = exercise(cli, family, tmp_path)
    allowed = permissions.actions(family)
    missing = sorted(called - allowed)
    assert not missing, f"the {family} policy lacks actions the tool calls: {missing}"
    explained = set(PERMISSION_ONLY) | set(UNREACHABLE) | {a for a in PENDING_MERGE if a not in called}
    unused = sorted(allowed - called - explained)
    assert not unused, f"the {family} policy allows actions no command called: {unused}"


def test_the_lists_of_uncalled_actions_name_only_actions_of_the_policy():
    everything = set().union(*(permissions.actions(f) for f in permissions.FAMILIES))
    for listed in (PERMISSION_ONLY, UNREACHABLE, PENDING_MERGE):
        assert set(listed) <= everything


def test_permissions_prints_the_policy_document_alone_on_stdout(cli):
    run = cli("permissions", "--accelerator", "inf2")
    assert run.code == 0, run.stderr
    document = json.loads(run.stdout)
    assert document["Version"] == "2012-10-17"
    actions = {a for s in document["Statement"] for a in s["Action"]}
    assert "ssm:GetParameters" in actions and "ec2:CreateVpcEndpoint" not in actions  # inf2: AMI parameters, no EI
    assert "cloudwatch:PutMetricAlarm" in actions and "ec2:StopInstances" in actions
    assert all(s["Effect"] == "Allow" and s["Sid"].isalnum() for s in document["Statement"])
    ei = json.loads(cli("permissions").stdout)
    assert "ec2:CreateVpcEndpoint" in {a for s in ei["Statement"] for a in s["Action"]}


def test_permissions_json_is_the_envelope_with_the_policy(cli):
    run = cli("permissions", "--accelerator", "gpu", "--output", "json")
    assert run.code == 0, run.stderr
    envelope = run.json
    assert envelope["command"] == "permissions" and envelope["status"] == "success"
    assert envelope["result"]["accelerator"] == "gpu"
    assert envelope["result"]["policy"] == permissions.policy("gpu")


def test_permissions_refuses_an_unknown_family_in_one_sentence(cli):
    run = cli("permissions", "--accelerator", "tpu")
    assert run.code == 2
    assert "invalid choice: 'tpu'" in run.stderr and "Traceback" not in run.stderr


# --access ssm: what ssh's ProxyCommand needs, which `aws ssm start-session` and the Session Manager plugin call
# (never the tool itself).
PROXY_ONLY = {
    "ssm:StartSession": "`aws ssm start-session` in the Host block's ProxyCommand",
    "ssm:TerminateSession": "the Session Manager plugin, when ssh's session ends",
    "ssm:ResumeSession": "the Session Manager plugin, when a dropped connection comes back",
}


def plain_account():
    """The account through the test's own (unrecorded) clients."""
    from amazonei_setup.aws.client import Aws

    return Aws(REGION)


def exercise_ssm(cli, family: str) -> set[str]:
    """The commands of a Session Manager deployment (setup, a re-run keeping it, status, connect, stop, start,
    export, teardown), recorded."""
    chosen = [] if family == "ei" else ["--accelerator", family]
    flags = ["--region", REGION, "--yes", "--instance-type", INSTANCE_TYPES[family], "--access", "ssm", *chosen]
    from tests.test_ssm_access import nat_subnet

    private = nat_subnet(plain_account())
    ec2 = plain_client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": False})  # the endpoints' private DNS needs it
    no_nat = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                           {"Name": "availability-zone", "Values": [f"{REGION}b"]}])["Subnets"][0]
    no_nat = no_nat["SubnetId"]
    with CallRecorder() as recorder:
        ok(cli(*flags, "--name", "perm-ssm"))
        ok(cli(*flags, "--name", "perm-private", "--no-public-ip", "--subnet-id", private))
        ok(cli("teardown", "--name", "perm-private", "--yes"))
        # No NAT: Session Manager's endpoints are made, then shared by a second deployment, then deleted.
        ok(cli(*flags, "--name", "perm-endpoints", "--no-public-ip", "--subnet-id", no_nat))
        ok(cli(*flags, "--name", "perm-endpoints-2", "--no-public-ip", "--subnet-id", no_nat))
        ok(cli("teardown", "--name", "perm-endpoints", "--yes"))
        ok(cli("teardown", "--name", "perm-endpoints-2", "--yes"))
        ok(cli("--region", REGION, "--yes", "--name", "perm-ssm", *chosen))  # keeps ssm without the flag
        for command, extra in (("status", ()), ("connect", ("--print",)), ("stop", ("--yes",)),
                               ("start", ("--yes",))):
            if command in cli_module.COMMANDS:
                known = known_flags(command)
                ok(cli(command, "--name", "perm-ssm", "--region", REGION, *[f for f in extra if f in known]))
        ok(cli("export", *flags, "--name", "perm-ssm-tpl"))
        ok(cli("teardown", "--name", "perm-ssm", "--yes"))
    return recorder.actions


@pytest.mark.parametrize("family", ["ei", "inf2"])
def test_the_ssm_policy_adds_exactly_what_session_manager_access_calls(cli, account, family, tmp_path, monkeypatch):
    from amazonei_setup.sandbox.account import seed_alternative_amis
    from tests.test_ssm_access import Agents

    seed_alternative_amis(ACCOUNT, REGION)  # also AWS's managed policies, which moto does not load
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("aws", "session-manager-plugin"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 1\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    account.client("ssm").meta.events.register("before-call.ssm.DescribeInstanceInformation", Agents(account))
    called = exercise_ssm(cli, family)
    allowed = permissions.actions(family, "ssm")
    missing = sorted(called - allowed)
    assert not missing, f"the {family} ssm policy lacks actions the tool calls: {missing}"
    added = allowed - permissions.actions(family, "ssh")
    unused = sorted(added - called - set(PROXY_ONLY))
    assert not unused, f"the {family} ssm policy adds actions no command called: {unused}"
    assert set(PROXY_ONLY) <= added


def test_the_ssm_session_is_limited_to_this_tools_instances_and_the_ssh_document(cli):
    run = cli("permissions", "--access", "ssm")
    assert run.code == 0, run.stderr
    sessions = [s for s in json.loads(run.stdout)["Statement"] if "ssm:StartSession" in s["Action"]]
    assert {s["Resource"] for s in sessions} == {"arn:aws:ec2:*:*:instance/*",
                                                 "arn:aws:ssm:*::document/AWS-StartSSHSession"}
    on_instances = next(s for s in sessions if s["Resource"].startswith("arn:aws:ec2"))
    assert on_instances["Condition"] == {"StringEquals": {"aws:ResourceTag/amazonei-setup:created-by":
                                                          "amazonei-setup"}}
    plain = json.loads(cli("permissions").stdout)
    assert not any(a.startswith("ssm:StartSession") for s in plain["Statement"] for a in s["Action"])


def test_only_the_two_service_linked_roles_aws_creates_for_the_tool_may_be_created(cli):
    """iam:CreateServiceLinkedRole is never called by the tool: CloudWatch (an alarm's EC2 action) and EC2 (a Spot
    launch, RunInstances with InstanceMarketOptions) call it on the caller's behalf, each for its own role only."""
    statements = [s for s in json.loads(cli("permissions", "--accelerator", "gpu").stdout)["Statement"]
                  if "iam:CreateServiceLinkedRole" in s["Action"]]
    assert {s["Sid"]: (s["Action"], s["Resource"], s["Condition"]) for s in statements} == {
        "AlarmEc2ActionRole": (["iam:CreateServiceLinkedRole"],
                               "arn:aws:iam::*:role/aws-service-role/events.amazonaws.com/"
                               "AWSServiceRoleForCloudWatchEvents*",
                               {"StringEquals": {"iam:AWSServiceName": "events.amazonaws.com"}}),
        "SpotServiceLinkedRole": (["iam:CreateServiceLinkedRole"],
                                  "arn:aws:iam::*:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot",
                                  {"StringEquals": {"iam:AWSServiceName": "spot.amazonaws.com"}})}
