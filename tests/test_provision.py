"""The whole provisioning run, through the CLI and through `provision.provision`: what it sends
to EC2, what it leaves in the account, how it converges onto what exists, and how it rolls
back every step it took when any step fails or the user presses Ctrl-C."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from amazonei_setup.aws import discover
from amazonei_setup.aws.resources import iam
from amazonei_setup.cli import wizard
from amazonei_setup.core import tags
from amazonei_setup.core.catalog import EI_SERVICE_NAME
from amazonei_setup.flows import provision
from tests.conftest import ACCOUNT, REGION, SSH_CIDR, inject, record, setup_args, snapshot
from tests.test_resources import document

PROPAGATION_MESSAGE = ("Value (amazonei-setup-demo) for parameter iamInstanceProfile.name is invalid. "
                       "Invalid IAM Instance Profile name")
TEARDOWN_COMMAND = f"python amazonei_setup.py teardown --region {REGION} --name demo"


def flat(text: str) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(text.split())


def error_line(result) -> str:
    text = flat(result.stderr)
    assert "error:" in text, result.stderr
    return text[text.index("error:"):]


def pem_of(home: Path, name: str = "demo") -> Path:
    return home / ".ssh" / f"amazonei-setup-{name}.pem"


def resources_of(result) -> dict[str, str]:
    return {r["kind"]: r["action"] for r in result.json["result"]["resources"]}


def live_instances(ec2) -> list[dict]:
    return [i for r in ec2.describe_instances(Filters=[
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])["Reservations"]
        for i in r["Instances"]]


def endpoints(ec2) -> list[dict]:
    return [e for e in ec2.describe_vpc_endpoints()["VpcEndpoints"] if e["State"].lower() != "deleted"]


def group_of(ec2, name: str) -> str:
    return ec2.describe_security_groups(Filters=[{"Name": f"tag:{tags.DEPLOYMENT}", "Values": [name]}])[
        "SecurityGroups"][0]["GroupId"]


def default_subnets(ec2) -> dict[str, str]:
    """AZ -> subnet id of the default VPC (the wizard picks us-west-2a's)."""
    return {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets(
        Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]}


class Fault:
    """A before-call fault that can be switched off again (conftest's `inject` cannot)."""

    def __init__(self, client, operation: str, raise_: BaseException | None = None, *, times: int | None = None,
                 when=lambda params: True):
        self.client, self.times, self.calls, self.when, self.error = client, times, 0, when, raise_
        self.event = f"before-parameter-build.{client.meta.service_model.service_name}.{operation}"
        client.meta.events.register(self.event, self)

    def __call__(self, params, **_):
        if not self.when(params) or (self.times is not None and self.calls >= self.times):
            return
        self.calls += 1
        raise self.error

    def stop(self) -> None:
        self.client.meta.events.unregister(self.event, self)


def client_error(operation: str, code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}},
                       operation)


def describing_one_instance(params) -> bool:
    """The wait's poll (discovery and snapshots describe by filter, not by id)."""
    return bool(params.get("InstanceIds"))


def report_state_once(ec2, state: str) -> list[str]:
    """Make the first DescribeInstances that returns an instance report `state` instead."""
    seen: list[str] = []

    def hook(parsed, **_):
        found = [i for r in parsed.get("Reservations", []) for i in r["Instances"]]
        if found and not seen:
            seen.append(found[0]["InstanceId"])
            found[0]["State"] = {"Code": 80, "Name": state}

    ec2.meta.events.register("after-call.ec2.DescribeInstances", hook)
    return seen


# ---- what setup creates and sends -----------------------------------------------------------

def test_run_instances_request_has_accelerator_imdsv2_encrypted_root_profile_public_ip_and_tags(cli, account):
    requests = record(account.ec2, "RunInstances")

    result = cli(*setup_args("demo", "--volume-size", "120"), "--output", "json")

    assert result.code == 0, result.stderr
    [request] = [r for r in requests if not r.get("DryRun")]
    assert request["ElasticInferenceAccelerators"] == [{"Type": "eia2.medium", "Count": 1}]
    assert request["MetadataOptions"]["HttpTokens"] == "required"
    assert request["MetadataOptions"]["HttpPutResponseHopLimit"] in (1, 2)
    [root] = request["BlockDeviceMappings"]
    assert root["Ebs"]["Encrypted"] is True and root["Ebs"]["VolumeSize"] == 120
    assert request["IamInstanceProfile"] == {"Name": "amazonei-setup-demo"}
    [nic] = request["NetworkInterfaces"]
    assert nic["AssociatePublicIpAddress"] is True and nic["DeviceIndex"] == 0
    assert nic["Groups"] == [group_of(account.ec2, "demo")]
    assert request["KeyName"] == "amazonei-setup-demo"
    spec_tags = {s["ResourceType"]: tags.as_dict(s["Tags"]) for s in request["TagSpecifications"]}
    assert spec_tags["instance"][tags.DEPLOYMENT] == "demo"
    assert spec_tags["instance"][tags.CREATED_BY] == tags.TOOL
    assert spec_tags["volume"][tags.DEPLOYMENT] == "demo"

    # ... and what EC2 (moto) made of it.
    [instance] = live_instances(account.ec2)
    assert instance["InstanceId"] == result.json["result"]["instance_id"]
    assert instance["RootDeviceName"] == root["DeviceName"]
    assert instance["IamInstanceProfile"]["Arn"].endswith(":instance-profile/amazonei-setup/amazonei-setup-demo")
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["PublicIpAddress"] == result.json["result"]["public_ip"]
    instance_tags = tags.as_dict(instance["Tags"])
    assert instance_tags[tags.DEPLOYMENT] == "demo" and instance_tags[tags.ACCELERATOR] == "eia2.medium"
    [volume] = account.ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id",
                                                      "Values": [instance["InstanceId"]]}])["Volumes"]
    assert volume["Encrypted"] is True and volume["Size"] == 120

    # --accelerator-type reaches the request (a second deployment, same account).
    other = cli(*setup_args("other", "--accelerator-type", "eia2.large"), "--output", "json")
    assert other.code == 0, other.stderr
    assert [r["ElasticInferenceAccelerators"] for r in requests if not r.get("DryRun")] == [
        [{"Type": "eia2.medium", "Count": 1}], [{"Type": "eia2.large", "Count": 1}]]
    assert other.json["result"]["accelerator_type"] == "eia2.large"


def test_setup_creates_every_piece_tagged_and_reports_it_in_json(cli, account, isolated_env):
    before = snapshot(account)

    result = cli(*setup_args("demo"), "--output", "json")

    assert result.code == 0, result.stderr
    out = result.json
    assert (out["version"], out["command"], out["status"]) == (1, "setup", "success")
    data = out["result"]
    assert {"name", "region", "instance_id", "public_dns", "ssh_command", "port_forward_command", "hourly_usd",
            "resources"} <= set(data)
    assert (data["name"], data["region"]) == ("demo", REGION)
    assert data["public_dns"] and data["public_dns"] in data["ssh_command"]
    pem = pem_of(isolated_env)
    assert data["ssh_command"] == f"ssh -i {pem} ec2-user@{data['public_dns']}"
    assert data["port_forward_command"] == f"ssh -i {pem} -L 8888:localhost:8888 ec2-user@{data['public_dns']}"
    assert isinstance(data["hourly_usd"], float) and data["hourly_usd"] > 0
    assert resources_of(result) == {"iam-role": "created", "instance-profile": "created", "key-pair": "created",
                                    "security-group": "created", "vpc-endpoint": "created", "instance": "created"}
    assert {r["action"] for r in data["resources"]} == {"created"}

    after = snapshot(account)
    group = group_of(account.ec2, "demo")
    [endpoint] = endpoints(account.ec2)
    assert after["instances"] - before["instances"] == {data["instance_id"]}
    assert after["security_groups"] - before["security_groups"] == {group}
    assert after["endpoints"] - before["endpoints"] == {endpoint["VpcEndpointId"]}
    assert after["key_pairs"] - before["key_pairs"] == {"amazonei-setup-demo"}
    assert after["roles"] - before["roles"] == {"amazonei-setup-demo"}
    assert after["instance_profiles"] - before["instance_profiles"] == {"amazonei-setup-demo"}
    ids = {r["kind"]: r["id"] for r in data["resources"]}
    assert (ids["security-group"], ids["vpc-endpoint"], ids["instance"]) == \
        (group, endpoint["VpcEndpointId"], data["instance_id"])

    # IAM: the role carries exactly the least-privilege inline policy; the profile holds the role.
    assert account.iam.list_role_policies(RoleName="amazonei-setup-demo")["PolicyNames"] == [iam.POLICY_NAME]
    assert account.iam.list_attached_role_policies(RoleName="amazonei-setup-demo")["AttachedPolicies"] == []
    policy = account.iam.get_role_policy(RoleName="amazonei-setup-demo", PolicyName=iam.POLICY_NAME)
    assert document(policy["PolicyDocument"]) == iam.ei_policy(REGION, ACCOUNT)
    profile = account.iam.get_instance_profile(InstanceProfileName="amazonei-setup-demo")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == ["amazonei-setup-demo"]
    # Network: 22 from the given address only, 443 from the group only; the endpoint serves the group.
    rules = {p["FromPort"]: p for p in account.ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0][
        "IpPermissions"]}
    assert [r["CidrIp"] for r in rules[22]["IpRanges"]] == [SSH_CIDR]
    assert [g["GroupId"] for g in rules[443]["UserIdGroupPairs"]] == [group] and not rules[443]["IpRanges"]
    assert endpoint["ServiceName"] == EI_SERVICE_NAME.format(region=REGION) and endpoint["PrivateDnsEnabled"]
    assert [g["GroupId"] for g in endpoint["Groups"]] == [group]
    assert tags.as_dict(endpoint["Tags"])[tags.DEPLOYMENT] == "demo"
    # Key: the private half is on disk, owner-read-only.
    assert pem.exists() and oct(pem.stat().st_mode & 0o777) == "0o400"


# ---- reuse and convergence ------------------------------------------------------------------

def test_existing_ei_endpoint_in_the_vpc_is_joined_not_duplicated(cli, account):
    subnets = default_subnets(account.ec2)
    vpc_id = account.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    theirs = account.ec2.create_security_group(GroupName="theirs", Description="d", VpcId=vpc_id)["GroupId"]
    endpoint_id = account.ec2.create_vpc_endpoint(
        VpcEndpointType="Interface", VpcId=vpc_id, ServiceName=EI_SERVICE_NAME.format(region=REGION),
        SubnetIds=[subnets["us-west-2b"]], SecurityGroupIds=[theirs],
        PrivateDnsEnabled=False)["VpcEndpoint"]["VpcEndpointId"]
    modifies = record(account.ec2, "ModifyVpcEndpoint")
    creates = record(account.ec2, "CreateVpcEndpoint")

    result = cli(*setup_args("demo"), "--output", "json")

    assert result.code == 0, result.stderr
    assert creates == []
    assert [e["VpcEndpointId"] for e in endpoints(account.ec2)] == [endpoint_id]
    group = group_of(account.ec2, "demo")
    found = endpoints(account.ec2)[0]
    assert sorted(g["GroupId"] for g in found["Groups"]) == sorted([theirs, group])
    assert sorted(found["SubnetIds"]) == sorted([subnets["us-west-2b"], subnets["us-west-2a"]])
    # moto ignores PrivateDnsEnabled on modify: the request proves setup asked for it.
    assert modifies == [{"VpcEndpointId": endpoint_id, "AddSubnetIds": [subnets["us-west-2a"]],
                         "AddSecurityGroupIds": [group], "PrivateDnsEnabled": True}]
    assert resources_of(result)["vpc-endpoint"] == "reused"
    assert [r["id"] for r in result.json["result"]["resources"] if r["kind"] == "vpc-endpoint"] == [endpoint_id]


def test_existing_key_name_is_used_and_no_key_pair_or_pem_is_made(cli, account, isolated_env):
    account.ec2.create_key_pair(KeyName="mine")
    requests = record(account.ec2, "RunInstances")
    creates = record(account.ec2, "CreateKeyPair")

    result = cli(*setup_args("demo", "--key-name", "mine"), "--output", "json")

    assert result.code == 0, result.stderr
    assert creates == []
    assert {k["KeyName"] for k in account.ec2.describe_key_pairs()["KeyPairs"]} == {"mine"}
    assert not pem_of(isolated_env).exists()
    assert list(isolated_env.rglob("*.pem")) == []
    assert requests[0]["KeyName"] == "mine"
    assert live_instances(account.ec2)[0]["KeyName"] == "mine"
    assert resources_of(result)["key-pair"] == "reused"
    assert result.json["result"]["ssh_command"].startswith(f"ssh -i {isolated_env / '.ssh' / 'mine.pem'} ")


def test_second_deployment_in_the_vpc_shares_the_endpoint(cli, account):
    first = cli(*setup_args("demo"), "--output", "json")
    assert first.code == 0, first.stderr
    creates = record(account.ec2, "CreateVpcEndpoint")

    second = cli(*setup_args("other"), "--output", "json")

    assert second.code == 0, second.stderr
    assert creates == []
    [endpoint] = endpoints(account.ec2)
    assert sorted(g["GroupId"] for g in endpoint["Groups"]) == sorted(
        [group_of(account.ec2, "demo"), group_of(account.ec2, "other")])
    assert resources_of(first)["vpc-endpoint"] == "created"
    assert resources_of(second)["vpc-endpoint"] == "reused"
    assert len(live_instances(account.ec2)) == 2
    assert {r["RoleName"] for r in account.iam.list_roles()["Roles"]} == {"amazonei-setup-demo", "amazonei-setup-other"}


def test_rerun_with_the_same_name_converges_and_reuses_everything(cli, account):
    first = cli(*setup_args("demo"), "--output", "json")
    assert first.code == 0, first.stderr
    after_first = snapshot(account)
    launches = record(account.ec2, "RunInstances")

    again = cli(*setup_args("demo"), "--output", "json")

    assert again.code == 0, again.stderr
    assert [r for r in launches if not r.get("DryRun")] == []
    assert snapshot(account) == after_first
    assert again.json["result"]["instance_id"] == first.json["result"]["instance_id"]
    assert resources_of(again) == {"iam-role": "reused", "instance-profile": "reused", "key-pair": "reused",
                                   "security-group": "reused", "vpc-endpoint": "reused", "instance": "reused"}
    assert {r["id"] for r in again.json["result"]["resources"]} == {r["id"] for r in first.json["result"]["resources"]}


def test_rerun_starts_a_stopped_instance(cli, account):
    first = cli(*setup_args("demo"), "--output", "json")
    assert first.code == 0, first.stderr
    instance_id = first.json["result"]["instance_id"]
    account.ec2.stop_instances(InstanceIds=[instance_id])
    assert live_instances(account.ec2)[0]["State"]["Name"] == "stopped"
    starts = record(account.ec2, "StartInstances")

    again = cli(*setup_args("demo"), "--output", "json")

    assert again.code == 0, again.stderr
    assert starts == [{"InstanceIds": [instance_id]}]
    [instance] = live_instances(account.ec2)
    assert (instance["InstanceId"], instance["State"]["Name"]) == (instance_id, "running")
    assert (again.json["result"]["instance_id"], again.json["result"]["state"]) == (instance_id, "running")
    assert resources_of(again)["instance"] == "reused"
    assert "Starting stopped instance" in flat(again.stderr)


# ---- dry run ---------------------------------------------------------------------------------

def test_dry_run_prints_the_plan_creates_nothing_and_names_refusals(cli, account):
    before = snapshot(account)
    requests = {op: record(account.ec2, op) for op in ("CreateSecurityGroup", "RunInstances", "CreateVpcEndpoint")}

    text = cli(*setup_args("demo", "--dry-run"))
    as_json = cli(*setup_args("demo", "--dry-run"), "--output", "json")

    assert text.code == 0, text.stderr
    assert "Dry run" in text.stderr and "elastic-inference.runtime" in text.stderr
    assert "amazonei-setup-demo" in text.stderr  # the plan, before the check: the conversation
    # The result, on stdout: the verdict of the permission check the dry run advertises.
    # Issue 17: and the vCPU quota check's.
    assert text.stdout.splitlines() == ["EC2 permission check (DryRun): passed",
                                        "vCPU quota L-1216C47A: 512 vCPUs, 0 in use, 4 needed: enough",
                                        "Dry run: nothing was created."]
    assert as_json.code == 0, as_json.stderr
    result = as_json.json["result"]
    assert result["dry_run"] is True and result["permission_problems"] == []
    assert result["plan"]["name"] == "demo" and result["plan"]["accelerator_type"] == "eia2.medium"
    assert {i["kind"]: i["action"] for i in result["plan"]["items"]}["vpc-endpoint"] == "create"
    # Every call that could create something carried DryRun, and nothing is left behind.
    assert all(r.get("DryRun") is True for calls in requests.values() for r in calls)
    assert all(len(calls) == 2 for calls in requests.values())
    assert snapshot(account) == before
    assert endpoints(account.ec2) == []

    # A permission EC2 refuses is named, and the dry run exits 1.
    inject(account.ec2, "RunInstances", "UnauthorizedOperation", "You are not authorized to perform this operation.")
    refused = cli(*setup_args("demo", "--dry-run"))
    assert refused.code == 1
    assert refused.stdout.splitlines()[:2] == [
        "EC2 permission check (DryRun): 1 problem:",
        "- You may not call ec2:RunInstances: ask an administrator for that permission."]
    assert "Traceback" not in refused.stderr
    assert snapshot(account) == before


# ---- rollback --------------------------------------------------------------------------------

STEP_FAILURES = [
    ("iam", "CreateRole", "AccessDenied",
     f"User: arn:aws:iam::{ACCOUNT}:user/tester is not authorized to perform: iam:CreateRole on resource: x",
     "iam:CreateRole"),
    ("iam", "CreateInstanceProfile", "LimitExceeded", "Cannot exceed quota for InstanceProfilesPerAccount: 1000",
     "CreateInstanceProfile"),
    ("iam", "PutRolePolicy", "MalformedPolicyDocument", "Policy document is malformed", "PutRolePolicy"),
    ("iam", "AddRoleToInstanceProfile", "AccessDenied",
     f"User: arn:aws:iam::{ACCOUNT}:user/tester is not authorized to perform: iam:AddRoleToInstanceProfile on x",
     "iam:AddRoleToInstanceProfile"),
    ("ec2", "CreateSecurityGroup", "SecurityGroupLimitExceeded", "The maximum number of security groups has been "
     "reached", "CreateSecurityGroup"),
    ("ec2", "AuthorizeSecurityGroupIngress", "RulesPerSecurityGroupLimitExceeded", "The maximum number of rules per "
     "security group has been reached", "AuthorizeSecurityGroupIngress"),
    ("ec2", "CreateVpcEndpoint", "VpcEndpointLimitExceeded", "The maximum number of VPC endpoints has been reached",
     "CreateVpcEndpoint"),
    ("ec2", "CreateKeyPair", "KeyPairLimitExceeded", "Maximum of 5000 keypairs reached", "CreateKeyPair"),
    ("ec2", "RunInstances", "InsufficientInstanceCapacity", "We currently do not have sufficient m5.xlarge capacity "
     "in the Availability Zone you requested (us-west-2a).", "refused m5.xlarge in every Availability Zone"),
    # (issue 17: each zone of the VPC was tried before this failure)
]


def test_failure_at_any_step_rolls_back_everything(cli, account, isolated_env):
    """Each step in turn, in one account (a fresh moto account costs more than a run): every
    failure exits 1 with one sentence, no traceback, and leaves the account exactly as it was."""
    problems: list[str] = []

    def check(step: str, result, named: str, before: dict) -> None:
        text = flat(result.stderr)
        line = text[text.find("error:"):] if "error:" in text else ""
        left = snapshot(account)
        for ok, what in ((result.code == 1, f"exit code {result.code}"),
                         ("Traceback" not in result.stderr, "traceback shown"),
                         (named in line, f"'{named}' not in the error line: {line!r}"),
                         ("Everything this run created was removed." in line, f"no rollback sentence: {line!r}"),
                         (left == before, f"left behind: {left} (before: {before})"),
                         (not pem_of(isolated_env).exists(), "the .pem file was left")):
            if not ok:
                problems.append(f"{step}: {what}")

    for service, operation, code, message, named in STEP_FAILURES:
        before = snapshot(account)
        fault = Fault(getattr(account, service), operation, client_error(operation, code, message))
        result = cli(*setup_args("demo"))
        fault.stop()
        if not fault.calls:
            problems.append(f"{operation}: never called")
        check(operation, result, named, before)

    # The wait for 'running': EC2 reports a failed state ...
    before = snapshot(account)
    reported = report_state_once(account.ec2, "stopped")
    result = cli(*setup_args("demo"))
    assert reported, "the wait never polled"
    check("wait (stopped)", result, f"Instance {reported[0]} went to state 'stopped'", before)

    # ... or the poll itself fails.
    before = snapshot(account)
    fault = Fault(account.ec2, "DescribeInstances", client_error("DescribeInstances", "InternalError", "boom"),
                  times=1, when=describing_one_instance)
    result = cli(*setup_args("demo"))
    assert fault.calls == 1
    check("wait (error)", result, "AWS refused DescribeInstances: InternalError: boom.", before)

    assert problems == []


def test_rollback_of_a_run_that_joined_an_endpoint_detaches_only_its_own_group(cli, account):
    subnets = default_subnets(account.ec2)
    vpc_id = account.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    theirs = account.ec2.create_security_group(GroupName="theirs", Description="d", VpcId=vpc_id)["GroupId"]
    endpoint_id = account.ec2.create_vpc_endpoint(
        VpcEndpointType="Interface", VpcId=vpc_id, ServiceName=EI_SERVICE_NAME.format(region=REGION),
        SubnetIds=[subnets["us-west-2b"]], SecurityGroupIds=[theirs])["VpcEndpoint"]["VpcEndpointId"]
    before = snapshot(account)
    inject(account.ec2, "RunInstances", "InsufficientInstanceCapacity", "no capacity")

    result = cli(*setup_args("demo"))

    assert result.code == 1 and "Everything this run created was removed." in error_line(result)
    assert snapshot(account) == before
    [endpoint] = endpoints(account.ec2)
    assert endpoint["VpcEndpointId"] == endpoint_id
    assert [g["GroupId"] for g in endpoint["Groups"]] == [theirs]
    assert endpoint["SubnetIds"] == [subnets["us-west-2b"]]


def test_rollback_that_cannot_delete_prints_the_teardown_command(cli, account, isolated_env):
    before = snapshot(account)
    inject(account.ec2, "RunInstances", "InsufficientInstanceCapacity", "no capacity")
    stuck = Fault(account.ec2, "DeleteSecurityGroup",
                  client_error("DeleteSecurityGroup", "DependencyViolation", "resource has a dependent object"))

    result = cli(*setup_args("demo"))

    assert result.code == 1, result.stderr
    assert "Traceback" not in result.stderr
    line = error_line(result)
    assert "Rollback could not remove security-group sg-" in line
    assert TEARDOWN_COMMAND in line
    assert "Everything this run created was removed" not in line
    left = snapshot(account)
    assert left["security_groups"] - before["security_groups"] == {group_of(account.ec2, "demo")}
    assert {k: v for k, v in left.items() if k != "security_groups"} == \
        {k: v for k, v in before.items() if k != "security_groups"}

    # The printed command finishes the job (a script adds --yes; a person confirms at the prompt).
    stuck.stop()
    finished = cli(*TEARDOWN_COMMAND.split()[2:], "--yes")
    assert finished.code == 0, finished.stderr
    assert snapshot(account) == before


def test_ctrl_c_at_launch_rolls_back_and_exits_130(cli, account, isolated_env):
    before = snapshot(account)
    interrupt = Fault(account.ec2, "RunInstances", KeyboardInterrupt(), times=1)

    result = cli(*setup_args("demo"))

    assert interrupt.calls == 1
    assert result.code == 130, result.stderr
    assert "Traceback" not in result.stderr
    line = error_line(result)
    assert "Interrupted" in line and "Everything this run created was removed." in line
    assert snapshot(account) == before
    assert not pem_of(isolated_env).exists()


def test_ctrl_c_while_run_instances_is_in_flight_finds_and_terminates_the_instance(cli, account):
    """EC2 launched the instance but the answer never arrived: rollback finds it by its token."""
    neighbour = cli(*setup_args("other"))  # another deployment's instance must be left alone
    assert neighbour.code == 0, neighbour.stderr
    before = snapshot(account)
    launched = []

    def interrupt_after_launch(parsed, **_):
        launched.append(parsed["Instances"][0]["InstanceId"])
        raise KeyboardInterrupt

    account.ec2.meta.events.register("after-call.ec2.RunInstances", interrupt_after_launch)

    result = cli(*setup_args("demo"))

    assert len(launched) == 1
    assert result.code == 130, result.stderr
    assert "Traceback" not in result.stderr
    assert "Everything this run created was removed." in error_line(result)
    assert snapshot(account) == before
    assert launched[0] not in {i["InstanceId"] for i in live_instances(account.ec2)}


def test_ctrl_c_while_waiting_for_the_instance_terminates_it_and_exits_130(cli, account):
    before = snapshot(account)
    launches = record(account.ec2, "RunInstances")
    interrupt = Fault(account.ec2, "DescribeInstances", KeyboardInterrupt(), times=1, when=describing_one_instance)

    result = cli(*setup_args("demo"))

    assert interrupt.calls == 1 and len(launches) == 1
    assert result.code == 130, result.stderr
    assert "Traceback" not in result.stderr
    assert "Everything this run created was removed." in error_line(result)
    assert snapshot(account) == before
    terminated = account.ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["terminated"]}])
    assert len(terminated["Reservations"]) == 1


# ---- IAM propagation -------------------------------------------------------------------------

def test_iam_propagation_error_is_retried_through_the_cli(cli, account):
    calls = inject(account.ec2, "RunInstances", "InvalidParameterValue", PROPAGATION_MESSAGE, times=2)

    result = cli(*setup_args("demo"), "--output", "json")

    assert result.code == 0, result.stderr
    assert len(calls) == 2
    assert len(live_instances(account.ec2)) == 1
    assert live_instances(account.ec2)[0]["InstanceId"] == result.json["result"]["instance_id"]
    assert flat(result.stderr).count("EC2 does not see the new instance profile yet; retrying") == 2


# ---- provision() on its own ------------------------------------------------------------------

def plan_for(aws, home: Path, name: str = "demo", **request):
    facts = discover.gather(aws, instance_type="m5.xlarge", ami_id=None, public_ip_lookup=None)
    return wizard.build_plan(wizard.SetupRequest(instance_type="m5.xlarge", name=name, ssh_cidr=SSH_CIDR,
                                                 key_dir=str(home / ".ssh"), **request), facts, wizard.DefaultsAsker())


def test_check_permissions_leaves_nothing_behind_and_provision_reports_each_step(account, isolated_env):
    plan = plan_for(account, isolated_env)
    before = snapshot(account)

    assert provision.check_permissions(account, plan) == []
    assert snapshot(account) == before
    assert endpoints(account.ec2) == []

    events = []

    result = provision.provision(account, plan, events.append, sleep=lambda s: None)

    assert result.instance.state == "running" and result.instance.host
    assert result.to_dict()["instance_id"] == live_instances(account.ec2)[0]["InstanceId"]
    created = {(e.resource, e.id) for e in events if e.kind == "created"}
    assert {kind for kind, _ in created} == {"iam-role", "instance-profile", "key-pair", "security-group",
                                              "vpc-endpoint", "instance"}
    assert ("instance", result.instance.id) in created
    assert Path(result.key_path) == pem_of(isolated_env)


def test_rollback_removes_role_and_profile_whichever_was_created_first(account, isolated_env):
    """The role and the profile are created concurrently; the profile holds the role once linked,
    so undoing the role before the profile fails (DeleteConflict) unless rollback orders them."""
    plan = plan_for(account, isolated_env)
    before = snapshot(account)
    profile_journaled = threading.Event()

    def report(event):
        if event.kind == "created" and event.resource == "instance-profile":
            profile_journaled.set()

    def hold_role(**_):  # make the role land in the journal after the profile
        profile_journaled.wait(timeout=10)

    account.iam.meta.events.register("before-call.iam.CreateRole", hold_role)
    inject(account.ec2, "RunInstances", "InsufficientInstanceCapacity", "no capacity")

    with pytest.raises(provision.ToolError) as raised:
        provision.provision(account, plan, report, sleep=lambda s: None)

    assert "Everything this run created was removed." in str(raised.value)
    assert snapshot(account) == before
