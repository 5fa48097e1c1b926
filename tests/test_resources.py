"""Each resource step on its own, against the moto account: what it creates, how it is tagged,
what it tolerates (re-runs, things already gone) and how its retries end."""
from __future__ import annotations

import json
import stat
from types import SimpleNamespace
from urllib.parse import unquote

import pytest
from botocore.exceptions import ClientError

from amazonei_setup.aws.resources import iam, keypair, network
from amazonei_setup.aws.resources import instance as instances
from amazonei_setup.core import tags
from amazonei_setup.core.catalog import EI_SERVICE_NAME
from tests.conftest import ACCOUNT, REGION, SSH_CIDR, inject, record

OWNER = f"arn:aws:iam::{ACCOUNT}:user/tester"
TAGS = tags.tag_list("x", OWNER)
EXPECTED_TAGS = {tags.DEPLOYMENT: "x", tags.CREATED_BY: tags.TOOL, tags.OWNER: OWNER}
PROPAGATION_MESSAGE = ("Value (amazonei-setup-x) for parameter iamInstanceProfile.name is invalid. "
                       "Invalid IAM Instance Profile name")


class Sleeper:
    """A no-op sleep that remembers what it was asked to wait."""

    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def respond(client, operation: str, answer) -> None:
    """Answer `operation` with answer(request body) before moto sees it (AWS behaviour moto lacks)."""
    client.meta.events.register(
        f"before-call.{client.meta.service_model.service_name}.{operation}",
        lambda params, **_: (SimpleNamespace(status_code=200, headers={}), answer(params["body"])))


def document(value) -> dict:
    """IAM policy documents come back as dicts or URL-encoded JSON, depending on the path."""
    return value if isinstance(value, dict) else json.loads(unquote(value))


@pytest.fixture
def vpc(account):
    ec2 = account.ec2
    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = sorted(ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"],
                     key=lambda s: s["AvailabilityZone"])
    return SimpleNamespace(id=vpc_id, subnets=[s["SubnetId"] for s in subnets])


@pytest.fixture
def group(account, vpc):
    return network.create_security_group(account.ec2, vpc.id, "x", TAGS)


def endpoint_of(ec2, endpoint_id: str) -> dict:
    return ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]


# ---- IAM ---------------------------------------------------------------------------------

def test_role_is_under_the_tool_path_trusts_ec2_is_tagged_and_its_policy_is_least_privilege(account):
    arn = iam.create_role(account.iam, "amazonei-setup-x", TAGS)
    iam.put_policy(account.iam, "amazonei-setup-x", iam.ei_policy(REGION, ACCOUNT))

    role = account.iam.get_role(RoleName="amazonei-setup-x")["Role"]
    assert arn == role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/amazonei-setup/amazonei-setup-x"
    assert role["Path"] == "/amazonei-setup/"
    assert document(role["AssumeRolePolicyDocument"])["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    assert tags.as_dict(role["Tags"]) == EXPECTED_TAGS
    assert [r["RoleName"] for r in account.iam.list_roles(PathPrefix="/amazonei-setup/")["Roles"]] == \
        ["amazonei-setup-x"]

    # One inline policy, nothing managed attached.
    assert account.iam.list_role_policies(RoleName="amazonei-setup-x")["PolicyNames"] == [iam.POLICY_NAME]
    assert account.iam.list_attached_role_policies(RoleName="amazonei-setup-x")["AttachedPolicies"] == []
    stored = document(account.iam.get_role_policy(RoleName="amazonei-setup-x",
                                                  PolicyName=iam.POLICY_NAME)["PolicyDocument"])
    grants = set()
    for statement in stored["Statement"]:
        assert statement["Effect"] == "Allow"
        assert not {"NotAction", "NotResource", "NotPrincipal", "Principal", "Condition"} & set(statement)
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        for action in actions:
            assert "*" not in action and "?" not in action, f"wildcard action {action}"
            grants |= {(action, resource) for resource in resources}
    # Elastic Inference: Connect only, to this account's accelerators in this region.
    assert {(a, r) for a, r in grants if a.startswith("elastic-inference:")} == {
        ("elastic-inference:Connect", f"arn:aws:elastic-inference:{REGION}:{ACCOUNT}:elastic-inference-accelerator/*")}
    # IAM: reads of the tool's own roles/profiles only (what EISetupValidator checks).
    assert {a for a, _ in grants if a.startswith("iam:")} == {
        "iam:GetInstanceProfile", "iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies",
        "iam:ListAttachedRolePolicies"}
    assert {r for a, r in grants if a.startswith("iam:")} == {
        f"arn:aws:iam::{ACCOUNT}:role/amazonei-setup/*", f"arn:aws:iam::{ACCOUNT}:instance-profile/amazonei-setup/*"}
    # The only grants on "*" are four EC2 describes (EC2 describes cannot be scoped to resources).
    assert {a for a, r in grants if r == "*"} == {"ec2:DescribeInstances", "ec2:DescribeSubnets",
                                                  "ec2:DescribeSecurityGroups", "ec2:DescribeVpcEndpoints"}
    assert {a.split(":")[0] for a, _ in grants} == {"elastic-inference", "ec2", "iam"}


def test_policy_is_scoped_to_the_region_and_account_it_is_built_for():
    policy = json.dumps(iam.ei_policy("eu-west-1", "210987654321"))
    assert "arn:aws:elastic-inference:eu-west-1:210987654321:elastic-inference-accelerator/*" in policy
    assert REGION not in policy and ACCOUNT not in policy


def test_profile_holds_the_role_and_deletes_remove_what_holds_them_and_treat_gone_as_done(account):
    iam.create_role(account.iam, "amazonei-setup-x", TAGS)
    iam.put_policy(account.iam, "amazonei-setup-x", iam.ei_policy(REGION, ACCOUNT))
    arn = iam.create_instance_profile(account.iam, "amazonei-setup-x", TAGS)
    iam.add_role_to_profile(account.iam, "amazonei-setup-x", "amazonei-setup-x")
    iam.add_role_to_profile(account.iam, "amazonei-setup-x", "amazonei-setup-x")  # a re-run: LimitExceeded

    profile = iam.get_instance_profile(account.iam, "amazonei-setup-x")
    assert profile["Arn"] == arn and profile["Path"] == "/amazonei-setup/"
    assert [r["RoleName"] for r in profile["Roles"]] == ["amazonei-setup-x"]
    assert tags.as_dict(profile["Tags"]) == EXPECTED_TAGS

    assert iam.delete_instance_profile(account.iam, "amazonei-setup-x") is True  # removes the role first
    assert iam.delete_role(account.iam, "amazonei-setup-x") is True  # deletes the inline policy first
    assert iam.get_instance_profile(account.iam, "amazonei-setup-x") is None
    assert iam.get_role(account.iam, "amazonei-setup-x") is None
    assert account.iam.list_roles()["Roles"] == []
    assert iam.delete_instance_profile(account.iam, "amazonei-setup-x") is False
    assert iam.delete_role(account.iam, "amazonei-setup-x") is False


def test_iam_delete_racing_another_delete_is_done_and_a_refusal_raises(account):
    iam.create_role(account.iam, "amazonei-setup-x", TAGS)
    iam.create_role(account.iam, "amazonei-setup-y", TAGS)
    raced = inject(account.iam, "DeleteRole", "NoSuchEntity", "The role with name amazonei-setup-x cannot be found.",
                   times=1)
    assert iam.delete_role(account.iam, "amazonei-setup-x") is False
    assert len(raced) == 1
    inject(account.iam, "DeleteRole", "AccessDenied", "not authorized to perform: iam:DeleteRole")
    with pytest.raises(ClientError) as raised:
        iam.delete_role(account.iam, "amazonei-setup-y")
    assert raised.value.response["Error"]["Code"] == "AccessDenied"


# ---- security group --------------------------------------------------------------------------

def rules(ec2, group_id: str) -> list[dict]:
    return ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["IpPermissions"]


def test_security_group_opens_443_to_itself_and_22_to_one_cidr_and_tolerates_a_rerun(account, vpc, group):
    network.authorize_ingress(account.ec2, group, SSH_CIDR)

    found = account.ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    assert found["GroupName"] == "amazonei-setup-x" and found["VpcId"] == vpc.id
    assert tags.as_dict(found["Tags"]) == EXPECTED_TAGS
    by_port = {p["FromPort"]: p for p in rules(account.ec2, group)}
    assert set(by_port) == {443, 22}
    https, ssh = by_port[443], by_port[22]
    assert (https["IpProtocol"], https["ToPort"], ssh["IpProtocol"], ssh["ToPort"]) == ("tcp", 443, "tcp", 22)
    assert [g["GroupId"] for g in https["UserIdGroupPairs"]] == [group]
    assert not https.get("IpRanges") and not https.get("Ipv6Ranges") and not https.get("PrefixListIds")
    assert [r["CidrIp"] for r in ssh["IpRanges"]] == [SSH_CIDR]
    assert not ssh.get("UserIdGroupPairs") and not ssh.get("Ipv6Ranges")
    assert [g["GroupId"] for g in network.find_security_groups(account.ec2, "x")] == [group]
    assert network.find_security_groups(account.ec2, "other") == []

    # A re-run authorizes again: InvalidPermission.Duplicate is fine and adds nothing.
    before = rules(account.ec2, group)
    network.authorize_ingress(account.ec2, group, SSH_CIDR)
    assert rules(account.ec2, group) == before

    # An IPv6 address goes to Ipv6Ranges.
    v6 = network.create_security_group(account.ec2, vpc.id, "v6", tags.tag_list("v6", OWNER))
    network.authorize_ingress(account.ec2, v6, "2001:db8:1234::/48")
    ssh6 = next(p for p in rules(account.ec2, v6) if p["FromPort"] == 22)
    assert [r["CidrIpv6"] for r in ssh6["Ipv6Ranges"]] == ["2001:db8:1234::/48"]
    assert not ssh6.get("IpRanges")

    # Any other refusal is raised.
    inject(account.ec2, "AuthorizeSecurityGroupIngress", "RulesPerSecurityGroupLimitExceeded", "too many rules")
    with pytest.raises(ClientError) as raised:
        network.authorize_ingress(account.ec2, group, SSH_CIDR)
    assert raised.value.response["Error"]["Code"] == "RulesPerSecurityGroupLimitExceeded"


def test_delete_security_group_retries_dependency_violation_and_treats_gone_as_done(account, vpc, group):
    calls = inject(account.ec2, "DeleteSecurityGroup", "DependencyViolation",
                   f"resource {group} has a dependent object", times=2)
    sleep = Sleeper()

    assert network.delete_security_group(account.ec2, group, sleep=sleep) is True
    assert len(calls) == 2 and len(sleep.calls) == 2
    assert not [g for g in account.ec2.describe_security_groups()["SecurityGroups"] if g["GroupId"] == group]
    assert network.delete_security_group(account.ec2, group, sleep=sleep) is False  # InvalidGroup.NotFound

    other = network.create_security_group(account.ec2, vpc.id, "y", TAGS)
    inject(account.ec2, "DeleteSecurityGroup", "UnauthorizedOperation", "no")
    sleep = Sleeper()
    with pytest.raises(ClientError):
        network.delete_security_group(account.ec2, other, sleep=sleep)
    assert sleep.calls == []  # not retried


def test_delete_security_group_gives_up_after_its_timeout(account, group):
    calls = inject(account.ec2, "DeleteSecurityGroup", "DependencyViolation", "has a dependent object")
    sleep = Sleeper()

    with pytest.raises(ClientError) as raised:
        network.delete_security_group(account.ec2, group, timeout=60, sleep=sleep)
    assert raised.value.response["Error"]["Code"] == "DependencyViolation"
    # The timeout is a budget of waiting: the (injected) sleeps add up to no more than it, and
    # not to much less either (it kept trying for about a minute).
    assert 30 <= sum(sleep.calls) <= 60
    assert len(calls) == len(sleep.calls) + 1
    assert account.ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"]


# ---- VPC DNS ---------------------------------------------------------------------------------

def test_vpc_dns_attributes_are_detected_and_enabled(account):
    vpc_id = account.ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    account.ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": False})
    account.ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": False})
    off = network.vpc_dns_attributes_off(account.ec2, vpc_id)
    assert sorted(off) == ["enableDnsHostnames", "enableDnsSupport"]

    network.enable_vpc_dns(account.ec2, vpc_id, off)
    assert network.vpc_dns_attributes_off(account.ec2, vpc_id) == []


# ---- EI endpoint -----------------------------------------------------------------------------

def test_endpoint_is_created_with_private_dns_in_the_subnet_and_group_and_deleted_ones_are_not_found(
        account, vpc, group):
    endpoint_id = network.create_ei_endpoint(account.ec2, REGION, vpc.id, vpc.subnets[0], group, TAGS, "t")

    found = endpoint_of(account.ec2, endpoint_id)
    assert found["ServiceName"] == EI_SERVICE_NAME.format(region=REGION) == \
        "com.amazonaws.us-west-2.elastic-inference.runtime"
    assert found["VpcEndpointType"] == "Interface" and found["VpcId"] == vpc.id
    assert found["PrivateDnsEnabled"] is True
    assert found["SubnetIds"] == [vpc.subnets[0]]
    assert [g["GroupId"] for g in found["Groups"]] == [group]
    # The creator's record of the subnet it put there (network.py: a zone leaves with the last that needs it).
    assert tags.as_dict(found["Tags"]) == {**EXPECTED_TAGS, tags.endpoint_subnets_key("x"): vpc.subnets[0]}
    assert network.endpoint_state(account.ec2, endpoint_id) == "available"
    [endpoint] = network.find_ei_endpoints(account.ec2, REGION, vpc.id)
    assert (endpoint.id, endpoint.private_dns, endpoint.created_by_tool) == (endpoint_id, True, True)

    # Deleted endpoints linger in listings (moto and AWS): find_ei_endpoints leaves them out, as it
    # leaves out other services' endpoints; without a VPC it finds the region's EI endpoints.
    assert network.delete_endpoint(account.ec2, endpoint_id) is True
    assert endpoint_of(account.ec2, endpoint_id)["State"].lower() == "deleted"
    assert network.endpoint_state(account.ec2, endpoint_id) == "deleted"
    live = network.create_ei_endpoint(account.ec2, REGION, vpc.id, vpc.subnets[0], group, TAGS, "t")
    account.ec2.create_vpc_endpoint(VpcEndpointType="Interface", VpcId=vpc.id,
                                    ServiceName=f"com.amazonaws.{REGION}.ssm", SubnetIds=[vpc.subnets[0]])
    other_vpc = account.ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    other_subnet = account.ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.30.0.0/24")["Subnet"]["SubnetId"]
    elsewhere = account.ec2.create_vpc_endpoint(
        VpcEndpointType="Interface", VpcId=other_vpc, ServiceName=EI_SERVICE_NAME.format(region=REGION),
        SubnetIds=[other_subnet])["VpcEndpoint"]["VpcEndpointId"]
    assert [e.id for e in network.find_ei_endpoints(account.ec2, REGION, vpc.id)] == [live]
    assert sorted(e.id for e in network.find_ei_endpoints(account.ec2, REGION)) == sorted([live, elsewhere])


def test_join_adds_subnet_and_group_and_asks_for_private_dns_and_leave_removes_the_group(account, vpc, group):
    other = network.create_security_group(account.ec2, vpc.id, "other", tags.tag_list("other", OWNER))
    endpoint_id = account.ec2.create_vpc_endpoint(
        VpcEndpointType="Interface", VpcId=vpc.id, ServiceName=EI_SERVICE_NAME.format(region=REGION),
        SubnetIds=[vpc.subnets[1]], SecurityGroupIds=[other], PrivateDnsEnabled=False)["VpcEndpoint"]["VpcEndpointId"]
    requests = record(account.ec2, "ModifyVpcEndpoint")

    network.join_endpoint(account.ec2, endpoint_id, add_subnet=vpc.subnets[0], add_group=group,
                             enable_private_dns=True)

    # moto ignores PrivateDnsEnabled on modify: the request is the proof.
    assert requests == [{"VpcEndpointId": endpoint_id, "AddSubnetIds": [vpc.subnets[0]],
                         "AddSecurityGroupIds": [group], "PrivateDnsEnabled": True}]
    found = endpoint_of(account.ec2, endpoint_id)
    assert sorted(found["SubnetIds"]) == sorted(vpc.subnets[:2])
    assert sorted(g["GroupId"] for g in found["Groups"]) == sorted([other, group])

    network.join_endpoint(account.ec2, endpoint_id, add_subnet=None, add_group=None, enable_private_dns=False)
    assert len(requests) == 1  # nothing to change: nothing sent

    joined = network.describe_endpoint(account.ec2, endpoint_id)
    network.leave_endpoint(account.ec2, joined, {group})
    assert [g["GroupId"] for g in endpoint_of(account.ec2, endpoint_id)["Groups"]] == [other]
    inject(account.ec2, "ModifyVpcEndpoint", "InvalidVpcEndpointId.NotFound", "does not exist")
    network.leave_endpoint(account.ec2, joined, {group})  # already gone: fine


def test_leaving_an_endpoint_as_its_last_group_puts_the_vpc_default_group_in(account, vpc, group):
    """AWS refuses to leave an interface endpoint without a security group."""
    endpoint_id = network.create_ei_endpoint(account.ec2, REGION, vpc.id, vpc.subnets[0], group, TAGS, "t")
    requests = record(account.ec2, "ModifyVpcEndpoint")

    network.leave_endpoint(account.ec2, network.describe_endpoint(account.ec2, endpoint_id), {group})

    default = network.default_security_group(account.ec2, vpc.id)
    assert requests == [{"VpcEndpointId": endpoint_id, "RemoveSecurityGroupIds": [group],
                         "AddSecurityGroupIds": [default]}]
    assert [g["GroupId"] for g in endpoint_of(account.ec2, endpoint_id)["Groups"]] == [default]


def test_deleting_an_endpoint_already_gone_is_done_and_a_refusal_raises(account, vpc, group):
    endpoint_id = network.create_ei_endpoint(account.ec2, REGION, vpc.id, vpc.subnets[0], group, TAGS, "t")
    gone = "vpce-0123456789abcdef0"

    def answer(body):  # what EC2 says (moto answers success for unknown ids)
        asked = body["VpcEndpointId.1"]
        code, message = (("InvalidVpcEndpoint.NotFound", f"The VpcEndpoint Id '{gone}' does not exist") if asked == gone
                         else ("UnauthorizedOperation", "You are not authorized to perform this operation."))
        return {"Unsuccessful": [{"ResourceId": asked, "Error": {"Code": code, "Message": message}}]}

    respond(account.ec2, "DeleteVpcEndpoints", answer)
    assert network.delete_endpoint(account.ec2, gone) is False
    with pytest.raises(ClientError) as raised:
        network.delete_endpoint(account.ec2, endpoint_id)
    assert raised.value.response["Error"]["Code"] == "UnauthorizedOperation"


# ---- key pair ----------------------------------------------------------------------------------

def test_key_pair_writes_an_owner_only_pem_is_tagged_and_deleting_it_twice_is_fine(account, tmp_path):
    pem = tmp_path / "keys" / "amazonei-setup-x.pem"

    assert keypair.create_key_pair(account.ec2, "amazonei-setup-x", pem, TAGS) == "amazonei-setup-x"

    assert stat.S_IMODE(pem.stat().st_mode) == 0o400
    assert pem.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert stat.S_IMODE(pem.parent.stat().st_mode) == 0o700
    found = keypair.find_our_key_pair(account.ec2, "x")
    assert found["KeyName"] == "amazonei-setup-x"
    assert tags.as_dict(found["Tags"]) == EXPECTED_TAGS
    assert keypair.find_our_key_pair(account.ec2, "other") is None

    assert keypair.delete_key_pair(account.ec2, "amazonei-setup-x") is True
    assert account.ec2.describe_key_pairs()["KeyPairs"] == []
    keypair.delete_key_pair(account.ec2, "amazonei-setup-x")  # AWS (and moto) answer success for a missing key
    inject(account.ec2, "DeleteKeyPair", "InvalidKeyPair.NotFound", "The key pair does not exist")
    assert keypair.delete_key_pair(account.ec2, "amazonei-setup-x") is False


def test_key_pair_refuses_to_overwrite_a_file_and_deletes_the_key_it_made(account, tmp_path):
    pem = tmp_path / "amazonei-setup-x.pem"
    pem.write_text("somebody's precious key\n")

    with pytest.raises(FileExistsError):
        keypair.create_key_pair(account.ec2, "amazonei-setup-x", pem, TAGS)

    assert pem.read_text() == "somebody's precious key\n"
    assert account.ec2.describe_key_pairs()["KeyPairs"] == []


# ---- instance --------------------------------------------------------------------------------

@pytest.fixture
def launch(account, vpc, group, tmp_path):
    """A complete launch request for deployment x (role, profile and key exist)."""
    iam.create_role(account.iam, "amazonei-setup-x", TAGS)
    iam.create_instance_profile(account.iam, "amazonei-setup-x", TAGS)
    iam.add_role_to_profile(account.iam, "amazonei-setup-x", "amazonei-setup-x")
    keypair.create_key_pair(account.ec2, "amazonei-setup-x", tmp_path / "k.pem", TAGS)
    image = account.ec2.describe_images(Owners=["amazon"], Filters=[
        {"Name": "name", "Values": ["Deep Learning AMI (Amazon Linux) Version 44.0"]}])["Images"][0]
    return instances.launch_request(
        ami_id=image["ImageId"], instance_type="m5.xlarge", accelerator_type="eia2.medium", subnet_id=vpc.subnets[0],
        group_id=group, key_name="amazonei-setup-x", profile_name="amazonei-setup-x",
        root_device=image["RootDeviceName"], volume_size=120, tag_list=TAGS, client_token="token-1")


def live_instances(ec2) -> list[dict]:
    return [i for r in ec2.describe_instances(Filters=[
        {"Name": "instance-state-name", "Values": instances.LIVE_STATES}])["Reservations"] for i in r["Instances"]]


def test_run_instances_launches_what_the_request_says_and_start_terminate_work(account, vpc, group, launch):
    requests = record(account.ec2, "RunInstances")

    [launched] = instances.run_instances(account.ec2, launch, sleep=Sleeper())

    assert requests[0]["ElasticInferenceAccelerators"] == [{"Type": "eia2.medium", "Count": 1}]
    [raw] = live_instances(account.ec2)
    assert raw["InstanceId"] == launched.id
    assert raw["IamInstanceProfile"]["Arn"].endswith(":instance-profile/amazonei-setup/amazonei-setup-x")
    assert raw["MetadataOptions"]["HttpTokens"] == "required"
    assert raw["MetadataOptions"]["HttpPutResponseHopLimit"] in (1, 2)
    assert raw["KeyName"] == "amazonei-setup-x" and raw["SubnetId"] == vpc.subnets[0]
    assert raw.get("PublicIpAddress") and launched.host
    assert [g["GroupId"] for n in raw["NetworkInterfaces"] for g in n["Groups"]] == [group]
    assert tags.as_dict(raw["Tags"]) == EXPECTED_TAGS
    volumes = account.ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [launched.id]}])
    [volume] = volumes["Volumes"]
    assert volume["Encrypted"] is True and volume["Size"] == 120
    assert [i.id for i in instances.find_instances(account.ec2, "x")] == [launched.id]

    account.ec2.stop_instances(InstanceIds=[launched.id])
    assert instances.describe(account.ec2, launched.id).state == "stopped"
    instances.start(account.ec2, [launched.id])
    assert instances.describe(account.ec2, launched.id).state == "running"
    instances.terminate(account.ec2, [launched.id])
    assert live_instances(account.ec2) == []
    instances.terminate(account.ec2, ["i-0123456789abcdef0"])  # InvalidInstanceID.NotFound: already gone


def test_run_instances_retries_only_the_profile_propagation_error_then_succeeds(account, launch):
    calls = inject(account.ec2, "RunInstances", "InvalidParameterValue", PROPAGATION_MESSAGE, times=2)
    sleep, retries = Sleeper(), []

    [launched] = instances.run_instances(account.ec2, launch, sleep=sleep, on_retry=retries.append)

    assert len(calls) == 2
    assert sleep.calls == retries == [1.0, 2.0]
    assert [i["InstanceId"] for i in live_instances(account.ec2)] == [launched.id]

    # Another InvalidParameterValue is the user's to fix: no retry.
    other = inject(account.ec2, "RunInstances", "InvalidParameterValue", "Value (m5.huge) for parameter instanceType")
    sleep = Sleeper()
    with pytest.raises(ClientError):
        instances.run_instances(account.ec2, launch, sleep=sleep)
    assert len(other) == 1 and sleep.calls == []


def test_run_instances_gives_up_on_propagation_after_its_timeout(account, launch):
    calls = inject(account.ec2, "RunInstances", "InvalidParameterValue", PROPAGATION_MESSAGE)
    sleep = Sleeper()

    with pytest.raises(ClientError) as raised:
        instances.run_instances(account.ec2, launch, sleep=sleep, timeout=30)

    assert raised.value.response["Error"]["Code"] == "InvalidParameterValue"
    # The (injected) waits add up to the timeout, not to whatever fits into 30 s of a busy loop.
    assert 10 <= sum(sleep.calls) <= 30
    assert len(calls) == len(sleep.calls) + 1
    assert live_instances(account.ec2) == []


def test_launch_request_without_accelerator_has_no_accelerator_field():
    request = instances.launch_request(
        ami_id="ami-1", instance_type="m5.xlarge", accelerator_type=None, subnet_id="subnet-1", group_id="sg-1",
        key_name="k", profile_name="p", root_device="/dev/xvda", volume_size=100, tag_list=TAGS, client_token="t")
    assert "ElasticInferenceAccelerators" not in request
