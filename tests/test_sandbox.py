"""The --sandbox backend: an in-process moto server whose account survives across processes.

Real moto throughout (its in-process backends and its HTTP server on 127.0.0.1); nothing of
ours is mocked. Clients get the sandbox's endpoint and keys passed explicitly.
"""
import json
import pickle
import re
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from amazonei_setup.sandbox import account as sandbox
from amazonei_setup.sandbox.account import DLAMI_OWNER_ID, SANDBOX_ACCOUNT_ID, Sandbox, seed_deep_learning_amis
from amazonei_setup.sandbox.server import reset

REGION = "us-west-2"
AL1_FILTER = [{"Name": "name", "Values": ["Deep Learning AMI (Amazon Linux) Version *"]}]
EI_SERVICE = f"com.amazonaws.{REGION}.elastic-inference.runtime"
TAGS = [{"Key": "amazonei-setup", "Value": "demo"}]


@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    monkeypatch.setenv("AMAZONEI_SETUP_HOME", str(tmp_path / "home"))
    # Either would send clients elsewhere than the sandbox or the mock.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def client(sb, service, region=REGION):
    # No retries: an unimplemented call answers 500, which botocore would retry for seconds.
    return boto3.client(service, region_name=region, endpoint_url=sb.endpoint_url,
                        config=Config(retries={"max_attempts": 1}), **sb.credentials)


def default_vpc_id(ec2):
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1
    return vpcs[0]["VpcId"]


def tag_dict(tags):
    return {t["Key"]: t["Value"] for t in tags or []}


# --- seeding (plain mock_aws, as the rest of the suite uses it) ---------------------------

@mock_aws
def test_seeding_is_idempotent_and_the_name_filter_finds_the_two_amazon_linux_amis():
    ec2 = boto3.client("ec2", region_name=REGION)
    first = seed_deep_learning_amis(SANDBOX_ACCOUNT_ID, REGION)
    # Counted by owner id: Owners=["amazon"] alone returns moto's ~1200 bundled AMIs, slow.
    count = len(ec2.describe_images(Owners=[DLAMI_OWNER_ID])["Images"])
    assert seed_deep_learning_amis(SANDBOX_ACCOUNT_ID, REGION) == first
    assert len(ec2.describe_images(Owners=[DLAMI_OWNER_ID])["Images"]) == count
    assert len(set(first)) == 6

    images = ec2.describe_images(Owners=["amazon"], Filters=AL1_FILTER)["Images"]
    newest_first = sorted(images, key=lambda i: i["CreationDate"], reverse=True)
    assert [(i["Name"], i["CreationDate"]) for i in newest_first] == [
        ("Deep Learning AMI (Amazon Linux) Version 44.0", "2021-06-01T00:00:00.000Z"),
        ("Deep Learning AMI (Amazon Linux) Version 26.0", "2020-01-10T00:00:00.000Z"),
    ]
    image = newest_first[0]
    assert image["OwnerId"] == DLAMI_OWNER_ID
    assert image["ImageOwnerAlias"] == "amazon"
    assert (image["Architecture"], image["VirtualizationType"], image["RootDeviceType"],
            image["RootDeviceName"]) == ("x86_64", "hvm", "ebs", "/dev/xvda")


@mock_aws
def test_seeding_a_second_region_and_the_arm64_image():
    # MOTO_AMIS_PATH seeding with creation dates crashes the second region's backend;
    # seeding through the backend objects must not.
    for region in (REGION, "us-east-1"):
        seed_deep_learning_amis(SANDBOX_ACCOUNT_ID, region)
        ec2 = boto3.client("ec2", region_name=region)
        graviton = ec2.describe_images(Owners=["amazon"], Filters=[
            {"Name": "name", "Values": ["Deep Learning AMI Graviton*"]}])["Images"]
        assert [(i["Architecture"], i["CreationDate"]) for i in graviton] == [
            ("arm64", "2022-05-01T00:00:00.000Z")]


# --- the sandbox server ------------------------------------------------------------------

def test_a_fresh_sandbox_looks_like_a_new_account(tmp_path):
    with Sandbox([REGION], state_dir=tmp_path / "sb") as sb:
        assert sb.endpoint_url.startswith("http://127.0.0.1:")
        ec2, iam = client(sb, "ec2"), client(sb, "iam")
        assert client(sb, "sts").get_caller_identity()["Account"] == SANDBOX_ACCOUNT_ID
        vpc = default_vpc_id(ec2)
        subnets = ec2.describe_subnets()["Subnets"]
        assert len(subnets) == len({s["AvailabilityZone"] for s in subnets}) >= 2
        assert all(s["DefaultForAz"] and s["VpcId"] == vpc for s in subnets)
        assert [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]] == ["default"]
        assert ec2.describe_instances()["Reservations"] == []
        assert ec2.describe_key_pairs()["KeyPairs"] == []
        assert ec2.describe_vpc_endpoints()["VpcEndpoints"] == []
        assert iam.list_roles()["Roles"] == []
        assert len(ec2.describe_images(Owners=["amazon"], Filters=AL1_FILTER)["Images"]) == 2


def create_demo_resources(sb):
    """What `setup` creates, roughly; returns the ids to look for afterwards."""
    ec2, iam = client(sb, "ec2"), client(sb, "iam")
    vpc = default_vpc_id(ec2)
    sg = ec2.create_security_group(
        GroupName="amazonei-demo", Description="EI endpoint", VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": TAGS}])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "203.0.113.7/32"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": sg}]},
    ])
    ec2.create_key_pair(KeyName="amazonei-demo")
    iam.create_role(RoleName="amazonei-demo", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "ec2.amazonaws.com"}}]}),
        Tags=TAGS)
    iam.put_role_policy(RoleName="amazonei-demo", PolicyName="ei-connect", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "elastic-inference:Connect", "Resource": "*"}]}))
    iam.create_instance_profile(InstanceProfileName="amazonei-demo", Tags=TAGS)
    iam.add_role_to_instance_profile(InstanceProfileName="amazonei-demo", RoleName="amazonei-demo")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc, ServiceName=EI_SERVICE, VpcEndpointType="Interface", SubnetIds=[subnet],
        SecurityGroupIds=[sg], TagSpecifications=[{"ResourceType": "vpc-endpoint", "Tags": TAGS}],
    )["VpcEndpoint"]["VpcEndpointId"]
    ami = ec2.describe_images(Owners=["amazon"], Filters=AL1_FILTER)["Images"][0]["ImageId"]
    instance = ec2.run_instances(
        ImageId=ami, InstanceType="m5.large", MinCount=1, MaxCount=1, KeyName="amazonei-demo",
        SubnetId=subnet, SecurityGroupIds=[sg], IamInstanceProfile={"Name": "amazonei-demo"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": TAGS}],
    )["Instances"][0]["InstanceId"]
    return {"sg": sg, "endpoint": endpoint, "instance": instance, "vpc": vpc,
            "subnets": sorted(s["SubnetId"] for s in ec2.describe_subnets()["Subnets"])}


def test_a_second_sandbox_sees_what_the_first_created(tmp_path):
    state = tmp_path / "sb"
    with Sandbox([REGION], state_dir=state) as sb:
        made = create_demo_resources(sb)
        amis = len(client(sb, "ec2").describe_images(Owners=[DLAMI_OWNER_ID])["Images"])

    with Sandbox([REGION], state_dir=state) as sb:
        ec2, iam = client(sb, "ec2"), client(sb, "iam")
        [reservation] = ec2.describe_instances(InstanceIds=[made["instance"]])["Reservations"]
        [instance] = reservation["Instances"]
        assert instance["State"]["Name"] == "running"
        assert tag_dict(instance["Tags"]) == tag_dict(TAGS)
        assert instance["KeyName"] == "amazonei-demo"
        assert instance["IamInstanceProfile"]["Arn"].endswith("instance-profile/amazonei-demo")

        [group] = ec2.describe_security_groups(GroupIds=[made["sg"]])["SecurityGroups"]
        assert tag_dict(group["Tags"]) == tag_dict(TAGS)
        rules = {(p["FromPort"], tuple(r["CidrIp"] for r in p["IpRanges"]),
                  tuple(g["GroupId"] for g in p["UserIdGroupPairs"])) for p in group["IpPermissions"]}
        assert rules == {(22, ("203.0.113.7/32",), ()), (443, (), (made["sg"],))}

        [endpoint] = ec2.describe_vpc_endpoints(VpcEndpointIds=[made["endpoint"]])["VpcEndpoints"]
        assert (endpoint["ServiceName"], endpoint["State"]) == (EI_SERVICE, "available")
        assert tag_dict(endpoint["Tags"]) == tag_dict(TAGS)
        assert [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]] == ["amazonei-demo"]

        role = iam.get_role(RoleName="amazonei-demo")["Role"]
        assert tag_dict(role["Tags"]) == tag_dict(TAGS)
        assert iam.list_role_policies(RoleName="amazonei-demo")["PolicyNames"] == ["ei-connect"]
        profile = iam.get_instance_profile(InstanceProfileName="amazonei-demo")["InstanceProfile"]
        assert [r["RoleName"] for r in profile["Roles"]] == ["amazonei-demo"]
        assert tag_dict(profile["Tags"]) == tag_dict(TAGS)

        # Restoring must not let moto build a second default VPC or more default subnets,
        # nor seeding add the DLAMIs twice.
        assert default_vpc_id(ec2) == made["vpc"]
        assert len(ec2.describe_vpcs()["Vpcs"]) == 1
        assert sorted(s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]) == made["subnets"]
        assert len(ec2.describe_images(Owners=[DLAMI_OWNER_ID])["Images"]) == amis

        # and the restored account still works: teardown in a later run
        ec2.terminate_instances(InstanceIds=[made["instance"]])

    with Sandbox([REGION], state_dir=state) as sb:
        [reservation] = client(sb, "ec2").describe_instances(InstanceIds=[made["instance"]])["Reservations"]
        assert reservation["Instances"][0]["State"]["Name"] == "terminated"


def test_state_is_saved_when_the_body_raises(tmp_path):
    with pytest.raises(KeyboardInterrupt), Sandbox([REGION], state_dir=tmp_path) as sb:
        client(sb, "ec2").create_key_pair(KeyName="half-done")
        raise KeyboardInterrupt
    with Sandbox([REGION], state_dir=tmp_path) as sb:
        assert [k["KeyName"] for k in client(sb, "ec2").describe_key_pairs()["KeyPairs"]] == ["half-done"]


def test_ssm_and_kms_state_round_trips(tmp_path):
    # Both need the sandbox's own pickling help: SSM keeps a defaultdict of a lambda and a
    # defaultdict subclass; an encrypted volume makes a KMS key holding a private key object.
    with Sandbox([REGION], state_dir=tmp_path) as sb:
        ec2 = client(sb, "ec2")
        ami = seed_deep_learning_amis(sb.account_id, REGION)[0]
        ec2.run_instances(ImageId=ami, InstanceType="m5.large", MinCount=1, MaxCount=1,
                          BlockDeviceMappings=[{"DeviceName": "/dev/xvda",
                                                "Ebs": {"VolumeSize": 100, "Encrypted": True}}])
        [volume] = ec2.describe_volumes()["Volumes"]
        client(sb, "ssm").put_parameter(Name="/amazonei/demo", Value="v1", Type="String", Tags=TAGS)

    with Sandbox([REGION], state_dir=tmp_path) as sb:
        ssm, kms = client(sb, "ssm"), client(sb, "kms")
        assert ssm.get_parameter(Name="/amazonei/demo")["Parameter"]["Value"] == "v1"
        assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/amazonei/demo")["TagList"] == TAGS
        ssm.put_parameter(Name="/amazonei/demo", Value="v2", Type="String", Overwrite=True)
        assert ssm.get_parameter(Name="/amazonei/demo")["Parameter"]["Version"] == 2
        [restored] = client(sb, "ec2").describe_volumes(VolumeIds=[volume["VolumeId"]])["Volumes"]
        assert restored["KmsKeyId"] == volume["KmsKeyId"]
        assert kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"] == volume["KmsKeyId"]


def test_reset_empties_the_default_sandbox():
    assert reset() is False  # nothing saved yet (default state dir under AMAZONEI_SETUP_HOME)
    with Sandbox([REGION]) as sb:
        client(sb, "ec2").create_key_pair(KeyName="to-forget")
    assert (sandbox.paths.sandbox_dir() / sandbox.STATE_FILE).is_file()
    assert reset() is True
    assert reset() is False
    with Sandbox([REGION]) as sb:
        assert client(sb, "ec2").describe_key_pairs()["KeyPairs"] == []


def test_a_second_user_of_the_state_times_out_with_a_clear_error(tmp_path):
    with Sandbox([REGION], state_dir=tmp_path):
        start = time.monotonic()
        with pytest.raises(RuntimeError, match="Another sandbox run is using .* within 0.2 seconds"):
            Sandbox([REGION], state_dir=tmp_path, lock_timeout=0.2).__enter__()
        assert time.monotonic() - start >= 0.2
        with pytest.raises(RuntimeError, match="Another sandbox run"):
            reset(tmp_path, lock_timeout=0.1)
        # A sandbox on another directory still shares moto's process-wide backends.
        with pytest.raises(RuntimeError, match="already open in this process"):
            Sandbox([REGION], state_dir=tmp_path / "other", lock_timeout=0.1).__enter__()
    # Both refusals let go of what they took: the state is usable again at once.
    with Sandbox([REGION], state_dir=tmp_path, lock_timeout=0.1):
        pass


def test_a_state_file_from_another_moto_or_damaged_is_reported_not_loaded(tmp_path):
    state_file = tmp_path / sandbox.STATE_FILE
    state_file.write_bytes(pickle.dumps({"moto": "0.0.1", "services": {}}))
    with pytest.raises(RuntimeError, match="written by moto 0.0.1 and this is moto .*rm -rf"):
        Sandbox([REGION], state_dir=tmp_path).__enter__()
    state_file.write_bytes(b"not a pickle")
    with pytest.raises(RuntimeError, match="cannot be read .*rm -rf"):
        Sandbox([REGION], state_dir=tmp_path).__enter__()
    assert state_file.read_bytes() == b"not a pickle"  # left for the user to look at or reset
    assert reset(tmp_path) is True
    with Sandbox([REGION], state_dir=tmp_path, lock_timeout=0.1):
        pass


@pytest.mark.parametrize("region", ["us-west-2", "eu-west-1", "ap-northeast-1"])
def test_the_ei_endpoint_service_is_moto_s_own_answer_without_its_thirteen_other_services(region):
    """moto_speed._endpoint_services_by_name_listed_alone: asked by name, the EI runtime's service is the
    entry moto's full list holds (zones, type, DNS names), the same on every call, and no S3, DynamoDB, ...
    backend is set up in the account for it; a call by another name, or by none, is moto's own answer."""
    from moto.core.base_backend import BackendDict
    from moto.ec2.models import vpcs

    assert vpcs.VPCBackend.describe_vpc_endpoint_services.by_name  # make_moto_behave ran (conftest's quick_moto)
    ei = f"com.amazonaws.{region}.elastic-inference.runtime"

    def comparable(services):  # a service's id is random, and is part of its DNS names too
        return [re.sub(r"vpce-svc-[0-9a-f]+", "vpce-svc-*", json.dumps(s, sort_keys=True, default=str))
                for s in services]

    with mock_aws():
        vpcs.DEFAULT_VPC_ENDPOINT_SERVICES.pop(region, None)
        ec2 = boto3.client("ec2", region_name=region)
        first = ec2.describe_vpc_endpoint_services(ServiceNames=[ei])["ServiceDetails"]
        again = ec2.describe_vpc_endpoint_services(ServiceNames=[ei])["ServiceDetails"]
        set_up = {d.service_name for d in BackendDict._instances if SANDBOX_ACCOUNT_ID in d}
        with pytest.raises(ClientError, match="InvalidServiceName"):
            ec2.describe_vpc_endpoint_services(ServiceNames=[f"com.amazonaws.{region}.no-such-service"])
        everything = vpcs.VPCBackend._collect_default_endpoint_services.moto_original(SANDBOX_ACCOUNT_ID, region)
        s3 = ec2.describe_vpc_endpoint_services(ServiceNames=[f"com.amazonaws.{region}.s3"])["ServiceDetails"]
    expected = [s for s in everything if s["ServiceName"] == ei]
    assert comparable(first) == comparable(expected) and len(first) == 1
    assert first == again  # the same id each time
    assert set_up <= {"ec2", "sts", "iam"}, set_up  # the services a call needs, none of the thirteen
    assert {s["ServiceType"][0]["ServiceType"] for s in s3} == {"Gateway", "Interface"}  # moto's own, S3's
