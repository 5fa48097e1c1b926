"""The CloudFormation template of a plan (amazonei_setup/cloudformation.py).

* Structure: the resources, names, rules and tags setup itself makes, asserted on the template dict.
* Safety: no world-open range, IMDSv2 required, encrypted volumes, ownership tags on everything taggable.
* cfn-lint (its Python API, us-west-2 schemas): no errors and no warnings, except one explicit EI-only warning.
* moto: create_stack / delete_stack in the seeded account, and what each leaves behind (moto's quirks are
  asserted as moto behaves, with the reason, so a moto upgrade that changes them is noticed).
"""
from __future__ import annotations

import ast
import re
import warnings

import pytest
import yaml

from amazonei_setup.aws.resources import iam, keypair, network
from amazonei_setup.aws.resources import instance as instances
from amazonei_setup.core import catalog, tags
from amazonei_setup.core.plan import Plan
from amazonei_setup.flows import cloudformation as cf
from tests.conftest import ACCOUNT, REGION, SSH_CIDR, cfn_lint, snapshot

OWNER = f"arn:aws:iam::{ACCOUNT}:user/tester"
NAME = "demo"
RESOURCE = tags.resource_name(NAME)  # amazonei-setup-demo: role, profile, group, key pair, stack
OWNERSHIP = tags.tag_list(NAME, OWNER, REGION)  # setup tags every piece with its region too
ENDPOINT_GROUP = "sg-0fedcba9876543210"


def make_plan(family: str | None = None, **changes) -> Plan:
    """A plan as the wizard makes it for a fresh deployment (realistic ids; nothing exists yet)."""
    spec = catalog.FAMILIES[family] if family else None
    values = dict(
        name=NAME, region=REGION, account_id=ACCOUNT, owner=OWNER,
        instance_type=spec.default_type if spec else "m5.xlarge",
        accelerator_type=None if spec else catalog.DEFAULT_ACCELERATOR,
        os_key=None if spec else catalog.DEFAULT_OS,
        ami_id="ami-0a1b2c3d4e5f60718",
        ami_name="Deep Learning AMI Neuron (Ubuntu 24.04) 20260521" if spec
        else "Deep Learning AMI (Amazon Linux) Version 44.0",
        ssh_user=spec.ssh_user if spec else "ec2-user", root_device="/dev/sda1" if spec else "/dev/xvda",
        volume_size=100, vpc_id="vpc-0a1b2c3d4e5f60718", subnet_id="subnet-0a1b2c3d4e5f60718",
        availability_zone="us-west-2a", key_name=keypair.key_name(NAME), create_key=True,
        key_path=f"/home/tester/.ssh/{RESOURCE}.pem", ssh_cidr=SSH_CIDR,
        role_name=iam.role_name(NAME), profile_name=iam.profile_name(NAME),
        security_group_name=network.security_group_name(NAME), security_group_id=None, endpoint_id=None,
        family=family,
    )
    values.update(changes)
    return Plan(**values)


# The variants every safety and lint check runs over: (id, plan kwargs, build_template kwargs).
VARIANTS = [
    ("ei", {}, {}),
    ("ei-fleet", {}, {"fleet_size": 3}),
    ("inf2", {"family": "inf2"}, {}),
    ("inf2-fleet", {"family": "inf2"}, {"fleet_size": 3}),
    ("gpu", {"family": "gpu"}, {}),
    ("ei-existing-endpoint-ipv6-reused-key",
     {"endpoint_id": "vpce-0a1b2c3d4e5f60718", "ssh_cidr": "2001:db8::4/128", "create_key": False,
      "key_name": "mykey"}, {"endpoint_group_id": ENDPOINT_GROUP}),
    ("ei-ssm", {"access": "ssm", "ssh_cidr": ""}, {}),
    ("inf2-ssm-fleet", {"family": "inf2", "access": "ssm", "ssh_cidr": ""}, {"fleet_size": 3}),
    ("ei-ssm-private", {"access": "ssm", "ssh_cidr": "", "public_ip": False, "outbound": "nat"}, {}),
    ("inf2-ssm-private-endpoints",
     {"family": "inf2", "access": "ssm", "ssh_cidr": "", "public_ip": False, "outbound": "endpoints",
      "ssm_endpoints": (("ssm", "vpce-0a1b2c3d4e5f60718", False), ("ssmmessages", None, False),
                        ("ec2messages", None, False))}, {}),
]


def variant(name: str) -> tuple[Plan, dict]:
    _, plan_kwargs, build_kwargs = next(v for v in VARIANTS if v[0] == name)
    plan = make_plan(**plan_kwargs)
    return plan, cf.build_template(plan, **build_kwargs)


def of_type(template: dict, type_: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == type_}


def props(template: dict, logical_id: str) -> dict:
    return template["Resources"][logical_id]["Properties"]


def instance_tags(plan: Plan) -> list[dict]:
    """What provision._launch tags an instance with."""
    accelerator = plan.accelerator_type or plan.family
    return OWNERSHIP + [{"Key": "Name", "Value": NAME}, {"Key": tags.ACCELERATOR, "Value": accelerator},
                        {"Key": tags.SSH_USER, "Value": plan.ssh_user}, {"Key": tags.ACCESS, "Value": plan.access}]


def launch_request(plan: Plan) -> dict:
    """setup's own run_instances request for the plan: the template must match it."""
    return instances.launch_request(
        ami_id=plan.ami_id, instance_type=plan.instance_type, accelerator_type=plan.accelerator_type,
        subnet_id=plan.subnet_id, group_id="sg-x", key_name=plan.key_name, profile_name=plan.profile_name,
        root_device=plan.root_device, volume_size=plan.volume_size, tag_list=instance_tags(plan), client_token="t")


def evaluate(template: dict, condition: str, **parameters: str) -> bool:
    """A template condition under the parameters' defaults overridden by `parameters`."""
    values = {k: str(p.get("Default", "")) for k, p in template["Parameters"].items()} | parameters

    def value(node):
        if isinstance(node, dict):
            ((function, argument),) = node.items()
            if function == "Ref":
                return values[argument]
            if function == "Condition":
                return value(template["Conditions"][argument])
            if function == "Fn::Equals":
                return value(argument[0]) == value(argument[1])
            if function == "Fn::Not":
                return not value(argument[0])
            if function == "Fn::And":
                return all(value(a) for a in argument)
            raise AssertionError(f"unexpected {function} in a condition")
        return node

    return value(template["Conditions"][condition])


def created(template: dict, **parameters: str) -> dict[str, str]:
    """Logical id -> type of the resources a stack creates with these parameter values."""
    return {k: r["Type"] for k, r in template["Resources"].items()
            if "Condition" not in r or evaluate(template, r["Condition"], **parameters)}


def substituted(node, region: str, account: str):
    """Resolve the template's ${AWS::Region} / ${AWS::AccountId} Fn::Subs as CloudFormation would."""
    if isinstance(node, dict):
        if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
            return node["Fn::Sub"].replace("${AWS::Region}", region).replace("${AWS::AccountId}", account)
        return {k: substituted(v, region, account) for k, v in node.items()}
    if isinstance(node, list):
        return [substituted(v, region, account) for v in node]
    return node


# ---- structure -----------------------------------------------------------------------------------------

def test_ei_single_instance_has_setups_resources_names_and_rules():
    plan, template = variant("ei")
    assert created(template) == {
        "InstanceRole": "AWS::IAM::Role", "InstanceProfile": "AWS::IAM::InstanceProfile",
        "SecurityGroup": "AWS::EC2::SecurityGroup", "KeyPair": "AWS::EC2::KeyPair",
        "SecurityGroupHttpsFromItself": "AWS::EC2::SecurityGroupIngress", "EiEndpoint": "AWS::EC2::VPCEndpoint",
        "Instance": "AWS::EC2::Instance"}
    assert "AWS retired Elastic Inference (April 2024)" in template["Description"]
    assert "enableDnsHostnames" in template["Description"] and NAME in template["Description"]

    role = props(template, "InstanceRole")
    assert (role["RoleName"], role["Path"], role["AssumeRolePolicyDocument"]) == (
        RESOURCE, tags.IAM_PATH, iam.TRUST_POLICY)
    assert [p["PolicyName"] for p in role["Policies"]] == [iam.POLICY_NAME] and "ManagedPolicyArns" not in role
    assert props(template, "InstanceProfile") == {"InstanceProfileName": RESOURCE, "Path": tags.IAM_PATH,
                                                  "Roles": [{"Ref": "InstanceRole"}]}

    group = props(template, "SecurityGroup")
    assert (group["GroupName"], group["VpcId"]) == (RESOURCE, plan.vpc_id)
    assert group["GroupDescription"] == f"amazonei-setup {NAME}: SSH from one address, HTTPS to the EI endpoint"
    assert group["SecurityGroupIngress"] == [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                              "CidrIp": {"Ref": "SshCidr"}, "Description": "SSH (amazonei-setup)"}]
    own_group = {"Fn::GetAtt": ["SecurityGroup", "GroupId"]}
    https = props(template, "SecurityGroupHttpsFromItself")
    assert (https["GroupId"], https["SourceSecurityGroupId"], https["FromPort"], https["ToPort"]) == (
        own_group, own_group, 443, 443)

    endpoint = props(template, "EiEndpoint")
    assert endpoint["ServiceName"] == {"Fn::Sub": catalog.EI_SERVICE_NAME.format(region="${AWS::Region}")}
    assert (endpoint["VpcEndpointType"], endpoint["VpcId"], endpoint["SubnetIds"], endpoint["SecurityGroupIds"],
            endpoint["PrivateDnsEnabled"]) == ("Interface", plan.vpc_id, [plan.subnet_id], [own_group], True)

    instance = props(template, "Instance")
    request = launch_request(plan)
    assert instance["ElasticInferenceAccelerators"] == [{"Type": {"Ref": "AcceleratorType"}, "Count": 1}]
    assert instance["MetadataOptions"] == request["MetadataOptions"]  # IMDSv2 required, hop limit 2
    assert instance["NetworkInterfaces"] == [{"DeviceIndex": "0", "SubnetId": plan.subnet_id, "GroupSet": [own_group],
                                              "AssociatePublicIpAddress": True, "DeleteOnTermination": True}]
    (root,) = instance["BlockDeviceMappings"]
    assert root == {"DeviceName": "/dev/xvda", "Ebs": {**request["BlockDeviceMappings"][0]["Ebs"],
                                                        "VolumeSize": {"Ref": "VolumeSize"}}}
    assert instance["IamInstanceProfile"] == {"Ref": "InstanceProfile"}
    assert instance["KeyName"] == {"Fn::If": ["CreateKeyPair", {"Ref": "KeyPair"}, {"Ref": "KeyName"}]}
    assert instance["Tags"] == instance_tags(plan)

    defaults = {k: p.get("Default") for k, p in template["Parameters"].items()}
    assert defaults == {"KeyName": "", "SshCidr": SSH_CIDR, "InstanceType": "m5.xlarge", "ImageId": plan.ami_id,
                        "AcceleratorType": "eia2.medium", "VolumeSize": 100, "EndpointSecurityGroupId": ""}
    assert template["Parameters"]["ImageId"]["Type"] == "AWS::EC2::Image::Id"
    assert template["Parameters"]["AcceleratorType"]["AllowedValues"] == list(catalog.ACCELERATORS)
    assert set(template["Outputs"]) == {"InstanceId", "PublicDnsName", "SshCommand", "JupyterCommand",
                                        "SecurityGroupId", "RoleName", "EndpointId", "PrivateKeyCommand"}
    assert template["Outputs"]["EndpointId"]["Condition"] == "CreateEndpoint"
    assert template["Outputs"]["SshCommand"]["Value"]["Fn::Sub"][0] == (
        "ssh -i ${Key}.pem ec2-user@${Instance.PublicDnsName}")
    interface = template["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = [p for g in interface["ParameterGroups"] for p in g["Parameters"]]
    assert sorted(grouped) == sorted(template["Parameters"]) == sorted(interface["ParameterLabels"])


def test_the_key_pair_is_created_only_without_a_key_name():
    plan, template = variant("ei")
    key = template["Resources"]["KeyPair"]
    assert key["Properties"]["KeyName"] == RESOURCE and key["Properties"]["Tags"] == OWNERSHIP
    assert "KeyPair" in created(template) and "KeyPair" not in created(template, KeyName="mykey")
    command = template["Outputs"]["PrivateKeyCommand"]
    assert command["Condition"] == "CreateKeyPair"
    assert command["Value"]["Fn::Sub"] == (
        "aws ssm get-parameter --region ${AWS::Region} --name /ec2/keypair/${KeyPair.KeyPairId} --with-decryption "
        f"--query Parameter.Value --output text > {RESOURCE}.pem && chmod 400 {RESOURCE}.pem")
    reused = cf.build_template(make_plan(create_key=False, key_name="mykey"))
    assert reused["Parameters"]["KeyName"]["Default"] == "mykey" and "KeyPair" not in created(reused)


def test_ei_fleet_is_one_instance_resource_per_member():
    """CloudFormation's current AWS::EC2::LaunchTemplate schema has no EI property (EC2 launch templates once took
    eia1 accelerators), so an EI fleet cannot be an Auto Scaling group: it is N instances, FleetSize choosing how
    many of them exist."""
    plan, template = variant("ei-fleet")
    members = of_type(template, "AWS::EC2::Instance")
    assert list(members) == ["Instance1", "Instance2", "Instance3"]
    assert not of_type(template, "AWS::EC2::LaunchTemplate")
    assert not of_type(template, "AWS::AutoScaling::AutoScalingGroup")
    for member in members.values():
        assert member["Properties"]["ElasticInferenceAccelerators"] == [{"Type": {"Ref": "AcceleratorType"},
                                                                         "Count": 1}]
        assert member["Properties"]["Tags"] == instance_tags(plan)
    fleet = template["Parameters"]["FleetSize"]
    # a String: moto turns a Number parameter into an int, and Fn::Equals with "2" would never hold there
    assert (fleet["Type"], fleet["Default"], fleet["AllowedValues"]) == ("String", "3", ["1", "2", "3"])
    for size in (1, 2, 3):
        launched = [k for k, t in created(template, FleetSize=str(size)).items() if t == "AWS::EC2::Instance"]
        assert launched == [f"Instance{i}" for i in range(1, size + 1)]
    assert "ListInstancesCommand" in template["Outputs"] and "InstanceId" not in template["Outputs"]
    with pytest.raises(ValueError, match="at most"):
        cf.build_template(plan, fleet_size=cf.MAX_EI_FLEET + 1)
    with pytest.raises(ValueError, match="at least 1"):
        cf.build_template(plan, fleet_size=0)


def test_inf2_has_no_ei_pieces_and_finds_its_ami_through_ssm():
    plan, template = variant("inf2")
    assert set(created(template)) == {"InstanceRole", "InstanceProfile", "SecurityGroup", "KeyPair", "Instance"}
    assert "April 2024" in template["Description"] and "Inferentia2" in template["Description"]
    role = props(template, "InstanceRole")
    assert role["ManagedPolicyArns"] == list(catalog.FAMILY_MANAGED_POLICIES) and "Policies" not in role
    image = template["Parameters"]["ImageId"]
    assert image["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert image["Default"] == catalog.FAMILIES["inf2"].ami_parameter
    assert template["Parameters"]["InstanceType"]["AllowedValues"] == list(catalog.FAMILIES["inf2"].instance_types)
    assert "AcceleratorType" not in template["Parameters"] and "EndpointSecurityGroupId" not in template["Parameters"]
    assert set(template["Conditions"]) == {"CreateKeyPair"}
    instance = props(template, "Instance")
    assert "ElasticInferenceAccelerators" not in instance
    assert instance["BlockDeviceMappings"][0]["DeviceName"] == "/dev/sda1"
    assert instance["Tags"] == instance_tags(plan)  # accelerator tag = the family
    assert [r["FromPort"] for r in props(template, "SecurityGroup")["SecurityGroupIngress"]] == [22]
    assert "EndpointId" not in template["Outputs"]


def test_inf2_fleet_is_a_launch_template_and_an_auto_scaling_group():
    plan, template = variant("inf2-fleet")
    assert set(created(template)) == {"InstanceRole", "InstanceProfile", "SecurityGroup", "KeyPair",
                                      "LaunchTemplate", "AutoScalingGroup"}
    launch = props(template, "LaunchTemplate")
    assert launch["LaunchTemplateName"] == RESOURCE
    assert launch["TagSpecifications"] == [{"ResourceType": "launch-template", "Tags": OWNERSHIP}]
    data = launch["LaunchTemplateData"]
    request = launch_request(plan)
    assert data["MetadataOptions"] == request["MetadataOptions"]
    assert data["IamInstanceProfile"] == {"Arn": {"Fn::GetAtt": ["InstanceProfile", "Arn"]}}
    assert data["NetworkInterfaces"] == [{"DeviceIndex": 0, "Groups": [{"Fn::GetAtt": ["SecurityGroup", "GroupId"]}],
                                          "AssociatePublicIpAddress": True, "DeleteOnTermination": True}]
    assert data["TagSpecifications"] == [{"ResourceType": "instance", "Tags": instance_tags(plan)},
                                         {"ResourceType": "volume", "Tags": instance_tags(plan)}]
    group = props(template, "AutoScalingGroup")
    assert group["AutoScalingGroupName"] == RESOURCE and group["VPCZoneIdentifier"] == [plan.subnet_id]
    assert group["MinSize"] == group["MaxSize"] == group["DesiredCapacity"] == {"Ref": "FleetSize"}
    assert group["LaunchTemplate"] == {"LaunchTemplateId": {"Ref": "LaunchTemplate"},
                                       "Version": {"Fn::GetAtt": ["LaunchTemplate", "LatestVersionNumber"]}}
    assert group["Tags"] == [{**t, "PropagateAtLaunch": True} for t in instance_tags(plan)]
    assert template["Parameters"]["FleetSize"]["Default"] == 3 and "MaxValue" not in template["Parameters"]["FleetSize"]
    assert {"AutoScalingGroupName", "ListInstancesCommand"} <= set(template["Outputs"])
    listing = template["Outputs"]["ListInstancesCommand"]["Value"]["Fn::Sub"]
    assert f"Name=tag:{tags.DEPLOYMENT},Values={NAME}" in listing


# ---- safety --------------------------------------------------------------------------------------------

def launch_specs(template: dict) -> list[dict]:
    """Everything that launches instances: instances' properties and launch templates' data."""
    return ([r["Properties"] for r in of_type(template, "AWS::EC2::Instance").values()]
            + [r["Properties"]["LaunchTemplateData"] for r in of_type(template, "AWS::EC2::LaunchTemplate").values()])


@pytest.mark.parametrize("name", [v[0] for v in VARIANTS])
def test_safe_by_construction(name):
    plan, template = variant(name)
    text = cf.to_yaml(template)
    assert "0.0.0.0/0" not in text and "::/0" not in text
    # A shared tag list must not become a YAML anchor/alias: CloudFormation rejects aliases (cfn-lint W1101).
    assert not re.search(r"[&*]id\d+", text)
    specs = launch_specs(template)
    assert specs
    for spec in specs:
        assert spec["MetadataOptions"] == {"HttpTokens": "required", "HttpEndpoint": "enabled",
                                           "HttpPutResponseHopLimit": 2}
        for mapping in spec["BlockDeviceMappings"]:
            assert mapping["Ebs"]["Encrypted"] is True and mapping["Ebs"]["VolumeType"] == "gp3"
        assert ("ElasticInferenceAccelerators" in spec) == (plan.family is None)


def test_a_world_open_plan_gets_no_default_range():
    """setup allows 0.0.0.0/0 with a warning; the template never offers it: whoever deploys must type it."""
    plan = make_plan(ssh_cidr="0.0.0.0/0")
    template = cf.build_template(plan)
    assert "Default" not in template["Parameters"]["SshCidr"]
    assert "0.0.0.0/0" not in cf.to_yaml(template)
    assert {"ParameterKey": "SshCidr", "ParameterValue": "0.0.0.0/0"} in cf.parameter_values(plan)


def taggable(resource_type: str) -> bool:
    """Whether CloudFormation's schema (as cfn-lint ships it for us-west-2) lets this type carry tags."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    properties = PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, resource_type).schema["properties"]
    return "Tags" in properties or "TagSpecifications" in properties


def own_tags(resource: dict) -> list[dict]:
    properties = resource["Properties"]
    if "TagSpecifications" in properties:
        return [t for spec in properties["TagSpecifications"] for t in spec["Tags"]]
    return [{"Key": t["Key"], "Value": t["Value"]} for t in properties.get("Tags", [])]


@pytest.mark.parametrize("name", [v[0] for v in VARIANTS])
def test_every_taggable_resource_carries_the_ownership_tags(name):
    _, template = variant(name)
    untaggable = set()
    for logical_id, resource in template["Resources"].items():
        if not taggable(resource["Type"]):
            untaggable.add(resource["Type"])
            continue
        carried = own_tags(resource)
        assert all(t in carried for t in OWNERSHIP), logical_id
    # Instance profiles and security group rules take no tags: teardown finds profiles by IAM path.
    assert untaggable <= {"AWS::IAM::InstanceProfile", "AWS::EC2::SecurityGroupIngress"}


def test_the_inline_policy_is_setups_policy_for_any_account_and_region():
    _, template = variant("ei")
    (policy,) = props(template, "InstanceRole")["Policies"]
    document = policy["PolicyDocument"]
    assert ACCOUNT not in str(document) and REGION not in str(document)  # portable: pseudo parameters only
    for region, account in ((REGION, ACCOUNT), ("eu-west-1", "210987654321")):
        assert substituted(document, region, account) == iam.ei_policy(region, account)


def test_an_existing_endpoint_gets_an_ingress_rule_instead_of_a_second_endpoint():
    plan, template = variant("ei-existing-endpoint-ipv6-reused-key")
    assert template["Parameters"]["EndpointSecurityGroupId"]["Default"] == ENDPOINT_GROUP
    stack = created(template)
    assert "EiEndpoint" not in stack and stack["ExistingEndpointHttpsFromInstances"] == "AWS::EC2::SecurityGroupIngress"
    rule = props(template, "ExistingEndpointHttpsFromInstances")
    assert rule == {"GroupId": {"Ref": "EndpointSecurityGroupId"}, "IpProtocol": "tcp", "FromPort": 443,
                    "ToPort": 443, "SourceSecurityGroupId": {"Fn::GetAtt": ["SecurityGroup", "GroupId"]},
                    "Description": "EI endpoint (amazonei-setup)"}
    # The same template, deployed with the parameter emptied, creates the endpoint and no foreign rule.
    emptied = created(template, EndpointSecurityGroupId="")
    assert "EiEndpoint" in emptied and "ExistingEndpointHttpsFromInstances" not in emptied
    assert not evaluate(template, "CreateEndpoint")
    # IPv6 SSH range: the rule uses CidrIpv6 and the parameter's pattern is the IPv6 one.
    (ssh,) = props(template, "SecurityGroup")["SecurityGroupIngress"]
    assert ssh["CidrIpv6"] == {"Ref": "SshCidr"} and "CidrIp" not in ssh
    assert re.match(template["Parameters"]["SshCidr"]["AllowedPattern"], "2001:db8::4/128")
    with pytest.raises(ValueError, match="endpoint_group_id"):
        cf.build_template(plan)


def test_parameter_values_are_the_plans_choices_and_fit_the_parameters():
    for name in ("ei", "ei-fleet", "inf2-fleet", "ei-existing-endpoint-ipv6-reused-key"):
        plan, template = variant(name)
        fleet = 3 if "fleet" in name else None
        given = {p["ParameterKey"]: p["ParameterValue"] for p in cf.parameter_values(plan, fleet_size=fleet)}
        assert set(given) == set(template["Parameters"]) - {"EndpointSecurityGroupId"}
        for key, value in given.items():
            spec = template["Parameters"][key]
            assert isinstance(value, str)
            assert value in spec.get("AllowedValues", [value]), key
            assert re.match(spec.get("AllowedPattern", ".*"), value), key
            assert spec.get("MinValue", 0) <= (int(value) if spec["Type"] == "Number" else 0) <= spec.get(
                "MaxValue", 10**6), key
            if "Default" in spec:  # the defaults are the plan's choices too
                assert str(spec["Default"]) == value, key
    plan = make_plan()
    values = {p["ParameterKey"]: p["ParameterValue"] for p in cf.parameter_values(plan, key_name="mykey")}
    assert values["KeyName"] == "mykey" and values["AcceleratorType"] == "eia2.medium"
    inf2 = {p["ParameterKey"]: p["ParameterValue"] for p in cf.parameter_values(make_plan(family="inf2"))}
    assert inf2["ImageId"] == catalog.FAMILIES["inf2"].ami_parameter and "AcceleratorType" not in inf2


def test_yaml_round_trips_with_long_form_intrinsics_only():
    for name in ("ei", "ei-fleet", "inf2-fleet"):
        _, template = variant(name)
        text = cf.to_yaml(template)
        assert yaml.safe_load(text) == template
        assert not re.search(r"!(Ref|Sub|GetAtt|If|Equals|Not|And)\b", text)
        assert max(len(line) for line in text.splitlines()) > 200  # long strings are not folded
    assert cf.stack_name(NAME) == RESOURCE and cf.stack_name("amazonei-3fa9c1") == "amazonei-3fa9c1"
    assert cf.CAPABILITIES == ["CAPABILITY_NAMED_IAM"]


# ---- cfn-lint ------------------------------------------------------------------------------------------

def allowed(match) -> bool:
    """The one finding we accept, EI-only: W3037 says 'elastic-inference' is not an IAM service prefix. It is
    not, any more: the IAM service reference dropped EI at its end of life, yet the DLAMI's EI client still
    needs elastic-inference:Connect in accounts that keep EI access. Any other W3037 (a typo in an ec2:/iam:
    action) still fails."""
    return match.rule.id == "W3037" and "'elastic-inference' is not one of" in match.message


@pytest.mark.parametrize("name", [v[0] for v in VARIANTS])
def test_cfn_lint_finds_no_errors_and_no_warnings(name):
    plan, template = variant(name)
    matches = cfn_lint(cf.to_yaml(template))
    assert [f"{m.rule.id} {m.message} at {m.path_string}" for m in matches if not allowed(m)] == []
    assert bool(matches) == (plan.family is None)  # the EI policy's Connect action is the one finding


# ---- moto: create_stack / delete_stack -----------------------------------------------------------------

@pytest.fixture
def live(account):
    """Plans for the seeded moto account: its default VPC and first subnet, its newest Amazon Linux DLAMI."""
    ec2 = account.ec2
    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnet = sorted(ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"],
                    key=lambda s: s["AvailabilityZone"])[0]
    pattern = catalog.OPERATING_SYSTEMS[catalog.DEFAULT_OS].ami_name_pattern
    images = ec2.describe_images(Owners=[catalog.DLAMI_OWNER], Filters=[{"Name": "name", "Values": [pattern]}])
    newest = max(images["Images"], key=lambda i: i["CreationDate"])
    ec2.create_key_pair(KeyName="mykey")  # moto's CloudFormation has no AWS::EC2::KeyPair: reuse a key

    def plan(family: str | None = None, **changes) -> Plan:
        base = dict(vpc_id=vpc_id, subnet_id=subnet["SubnetId"], availability_zone=subnet["AvailabilityZone"],
                    ami_id=newest["ImageId"], ami_name=newest["Name"])
        if family:
            from amazonei_setup.sandbox.account import seed_alternative_amis

            base["ami_id"] = seed_alternative_amis(ACCOUNT, REGION)[family]
        return make_plan(family, **{**base, **changes})

    return plan


def deploy(account, plan: Plan, fleet_size: int | None = None, *, deployed_fleet: int | None = None,
           endpoint_group_id: str | None = None) -> dict:
    """create_stack as the CLI would, with the existing key pair; returns the stack (CREATE_COMPLETE)."""
    cfn = account.client("cloudformation")
    template = cf.build_template(plan, fleet_size=fleet_size, endpoint_group_id=endpoint_group_id)
    cfn.create_stack(StackName=cf.stack_name(plan.name), TemplateBody=cf.to_yaml(template),
                     Parameters=cf.parameter_values(plan, fleet_size=deployed_fleet or fleet_size, key_name="mykey"),
                     Capabilities=cf.CAPABILITIES, Tags=tags.tag_list(plan.name, plan.owner, plan.region))
    (stack,) = cfn.describe_stacks(StackName=cf.stack_name(plan.name))["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return stack


def delete(account, plan: Plan) -> None:
    cfn = account.client("cloudformation")
    cfn.delete_stack(StackName=cf.stack_name(plan.name))
    summaries = cfn.list_stacks()["StackSummaries"]
    assert [s["StackStatus"] for s in summaries if s["StackName"] == cf.stack_name(plan.name)] == ["DELETE_COMPLETE"]


def outputs(stack: dict) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def deployment_instances(account, plan: Plan) -> list[dict]:
    return [instances.InstanceInfo.from_api(i).__dict__ | {"raw": i}
            for r in account.ec2.describe_instances(Filters=tags.filters_for(plan.name) + [
                {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]
            for i in r["Instances"]]


def group_rules(account, group_id: str) -> list[tuple]:
    (group,) = account.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    return sorted((p["FromPort"], tuple(r["CidrIp"] for r in p["IpRanges"]),
                   tuple(g["GroupId"] for g in p["UserIdGroupPairs"])) for p in group["IpPermissions"])


def test_ei_stack_creates_setups_resources_and_delete_stack_removes_them(account, live):
    plan = live()
    before = snapshot(account)
    stack = deploy(account, plan)
    out = outputs(stack)
    assert set(out) == {"InstanceId", "PublicDnsName", "SshCommand", "JupyterCommand", "SecurityGroupId",
                        "RoleName", "EndpointId"}  # no PrivateKeyCommand: the stack did not create the key

    # IAM: the role with setup's inline policy (moto resolved the Fn::Subs), the profile holding it
    assert account.iam.list_role_policies(RoleName=RESOURCE)["PolicyNames"] == [iam.POLICY_NAME]
    document = account.iam.get_role_policy(RoleName=RESOURCE, PolicyName=iam.POLICY_NAME)["PolicyDocument"]
    # moto 5.2.1 stores an inline policy that came through CloudFormation as Python's repr of the dict, not as
    # JSON, so boto3 cannot decode it and hands back that string; real IAM returns the JSON document.
    assert (document if isinstance(document, dict) else ast.literal_eval(document)) == iam.ei_policy(REGION, ACCOUNT)
    assert tags.is_ours(account.iam.get_role(RoleName=RESOURCE)["Role"]["Tags"], NAME)
    profile = account.iam.get_instance_profile(InstanceProfileName=RESOURCE)["InstanceProfile"]
    assert profile["Path"] == tags.IAM_PATH and [r["RoleName"] for r in profile["Roles"]] == [RESOURCE]

    # network: 22 from the plan's range, 443 from the group itself; the endpoint, tagged like setup's
    group_id = out["SecurityGroupId"]
    assert group_rules(account, group_id) == [(22, (SSH_CIDR,), ()), (443, (), (group_id,))]
    assert network.find_security_groups(account.ec2, NAME)[0]["GroupId"] == group_id
    (endpoint,) = network.find_ei_endpoints(account.ec2, REGION, plan.vpc_id)
    assert endpoint.id == out["EndpointId"] and endpoint.created_by_tool
    assert endpoint.tags[tags.DEPLOYMENT] == NAME and endpoint.group_ids == (group_id,) and endpoint.private_dns

    # the instance: running, the plan's image/type/key, our profile, setup's tags (so list/teardown find it)
    (instance,) = deployment_instances(account, plan)
    assert instance["id"] == out["InstanceId"] and instance["state"] == "running"
    assert (instance["image_id"], instance["instance_type"], instance["key_name"]) == (
        plan.ami_id, plan.instance_type, "mykey")
    assert instance["raw"]["IamInstanceProfile"]["Arn"] == profile["Arn"]
    assert all(instance["tags"][t["Key"]] == t["Value"] for t in instance_tags(plan))
    assert out["SshCommand"] == f"ssh -i mykey.pem ec2-user@{instance['public_dns']}"
    # moto quirks (not asserted, so a fix does not fail us): moto's AWS::EC2::Instance reads only top-level
    # SubnetId / SecurityGroups, so the instance lands in the VPC's default subnet and group; it ignores
    # MetadataOptions (HttpTokens stays "optional"); and it drops ElasticInferenceAccelerators, as run_instances.

    delete(account, plan)
    after = snapshot(account)
    # moto's delete_stack leaves the VPC endpoint behind (moto 5.2.1 does not delete AWS::EC2::VPCEndpoint);
    # real CloudFormation deletes it, and setup's teardown would sweep it by its deployment tag.
    assert after == {**before, "endpoints": before["endpoints"] | {out["EndpointId"]}}


@pytest.mark.parametrize("deployed", [3, 2], ids=["all-three", "fleet-size-2"])
def test_ei_fleet_stack_launches_fleetsize_instances(account, live, deployed):
    plan = live()
    before = snapshot(account)
    stack = deploy(account, plan, fleet_size=3, deployed_fleet=deployed)
    fleet = deployment_instances(account, plan)
    assert len(fleet) == deployed
    for member in fleet:
        assert member["state"] == "running" and all(member["tags"][t["Key"]] == t["Value"]
                                                     for t in instance_tags(plan))
    logical = sorted(i["tags"]["aws:cloudformation:logical-id"] for i in fleet)
    assert logical == [f"Instance{i}" for i in range(1, deployed + 1)]
    assert f"Values={NAME}" in outputs(stack)["ListInstancesCommand"]
    delete(account, plan)
    assert snapshot(account) == {**before, "endpoints": before["endpoints"] | {outputs(stack)["EndpointId"]}}


def test_inf2_stack_resolves_the_ami_through_ssm_and_has_no_ei_pieces(account, live):
    plan = live("inf2")
    before = snapshot(account)
    stack = deploy(account, plan)
    (instance,) = deployment_instances(account, plan)
    assert instance["image_id"] == plan.ami_id  # moto read AWS's public SSM parameter (seeded)
    assert instance["instance_type"] == "inf2.xlarge" and instance["tags"][tags.ACCELERATOR] == "inf2"
    assert account.iam.list_role_policies(RoleName=RESOURCE)["PolicyNames"] == []
    # moto 5.2.1's AWS::IAM::Role ignores ManagedPolicyArns (it handles only inline Policies): the role comes
    # out with no managed policy. Real CloudFormation attaches both; the template says so (structure test).
    assert account.iam.list_attached_role_policies(RoleName=RESOURCE)["AttachedPolicies"] == []
    assert group_rules(account, outputs(stack)["SecurityGroupId"]) == [(22, (SSH_CIDR,), ())]
    assert snapshot(account)["endpoints"] == before["endpoints"]
    delete(account, plan)
    assert snapshot(account) == before


def test_inf2_fleet_stack_is_an_auto_scaling_group_of_tagged_instances(account, live):
    plan = live("inf2")
    before = snapshot(account)
    stack = deploy(account, plan, fleet_size=3)
    autoscaling = account.client("autoscaling")
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[RESOURCE])["AutoScalingGroups"]
    assert outputs(stack)["AutoScalingGroupName"] == RESOURCE
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (3, 3, 3)
    assert group["VPCZoneIdentifier"] == plan.subnet_id
    # moto's Auto Scaling launches the instances, from the launch template, with the group's tags propagated
    fleet = deployment_instances(account, plan)
    assert len(fleet) == 3 and {i["id"] for i in fleet} == {i["InstanceId"] for i in group["Instances"]}
    for member in fleet:
        assert member["image_id"] == plan.ami_id and member["subnet_id"] == plan.subnet_id
        assert all(member["tags"][t["Key"]] == t["Value"] for t in instance_tags(plan))
    (launch_template,) = account.ec2.describe_launch_templates(LaunchTemplateNames=[RESOURCE])["LaunchTemplates"]
    assert tags.is_ours(launch_template["Tags"], NAME)
    delete(account, plan)
    assert snapshot(account) == before
    assert autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"] == []
    assert account.ec2.describe_launch_templates()["LaunchTemplates"] == []


def test_a_stack_in_a_vpc_with_an_ei_endpoint_opens_that_endpoints_group(account, live):
    plan = live()
    ec2 = account.ec2
    endpoint_group = network.create_security_group(ec2, plan.vpc_id, "other", tags.tag_list("other"))
    existing = network.create_ei_endpoint(ec2, REGION, plan.vpc_id, plan.subnet_id, endpoint_group,
                                          tags.tag_list("other"), "other-run")
    plan = live(endpoint_id=existing)
    stack = deploy(account, plan, endpoint_group_id=endpoint_group)
    out = outputs(stack)
    assert "EndpointId" not in out  # its Condition is false
    assert [e.id for e in network.find_ei_endpoints(ec2, REGION, plan.vpc_id)] == [existing]
    assert group_rules(account, endpoint_group) == [(443, (), (out["SecurityGroupId"],))]
    delete(account, plan)
    # moto 5.2.1 deletes no AWS::EC2::SecurityGroupIngress on delete_stack: the rule stays on the endpoint's
    # group, naming our deleted group. Real CloudFormation revokes it (it must, before it can delete our group).
    assert group_rules(account, endpoint_group) == [(443, (), (out["SecurityGroupId"],))]
    assert not network.find_security_groups(ec2, NAME)


def test_moto_cannot_create_the_key_pair(account, live):
    """What `KeyName=""` (the stack creates the key pair) does on moto 5.2.1, which has no AWS::EC2::KeyPair
    in CloudFormation: create_stack succeeds with a warning and no key pair; the instance has no key; and
    describe_stacks fails, as the PrivateKeyCommand output names ${KeyPair.KeyPairId}. Under a false condition
    (every other test) moto never looks at the type. Real CloudFormation creates the key pair."""
    plan = live()
    cfn = account.client("cloudformation")
    with pytest.warns(UserWarning, match="AWS::EC2::KeyPair but it's not supported"):
        cfn.create_stack(StackName=cf.stack_name(NAME), TemplateBody=cf.to_yaml(cf.build_template(plan)),
                         Parameters=cf.parameter_values(plan, key_name=""), Capabilities=cf.CAPABILITIES)
    assert [k["KeyName"] for k in account.ec2.describe_key_pairs()["KeyPairs"]] == ["mykey"]
    (instance,) = deployment_instances(account, plan)
    assert instance["key_name"] == ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto repeats the warning each time it reads the template
        with pytest.raises(Exception, match="Fn::GetAtt references undefined resource KeyPair"):
            cfn.describe_stacks(StackName=cf.stack_name(NAME))
        cfn.delete_stack(StackName=cf.stack_name(NAME))
    assert deployment_instances(account, plan) == []


@pytest.mark.parametrize("name", ["ei-ssm", "inf2-ssm-fleet"])
def test_ssm_access_opens_no_port_and_gives_the_role_session_manager(name):
    plan, template = variant(name)
    assert "SshCidr" not in template["Parameters"]
    access_group = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"][1]["Parameters"]
    assert "SshCidr" not in access_group
    group = props(template, "SecurityGroup")
    assert "SecurityGroupIngress" not in group and {"Key": tags.ACCESS, "Value": "ssm"} in group["Tags"]
    ingress = [r["Properties"] for r in of_type(template, "AWS::EC2::SecurityGroupIngress").values()]
    assert all(rule["FromPort"] == 443 for rule in ingress)  # EI's 443 from the group itself, nothing else
    role = props(template, "InstanceRole")
    assert "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore" in role["ManagedPolicyArns"]
    assert {v["ParameterKey"] for v in cf.parameter_values(plan)} <= set(template["Parameters"])


def test_a_private_ssm_instance_has_no_public_ip_in_the_template():
    """checkov's CKV_AWS_88 (an EC2 instance with a public IP) has nothing to find: AssociatePublicIpAddress false."""
    _, template = variant("ei-ssm-private")
    (nic,) = props(template, "Instance")["NetworkInterfaces"]
    assert nic["AssociatePublicIpAddress"] is False
    assert "PublicDnsName" not in template["Outputs"]
    assert "ProxyCommand=aws ssm start-session" in str(template["Outputs"]["SshCommand"])


def test_a_private_instance_s_template_makes_the_session_manager_endpoints_the_vpc_lacks():
    plan, template = variant("inf2-ssm-private-endpoints")
    endpoints = of_type(template, "AWS::EC2::VPCEndpoint")
    services = sorted(str(e["Properties"]["ServiceName"]["Fn::Sub"]).rsplit(".", 1)[-1] for e in endpoints.values())
    assert services == ["ec2messages", "ssmmessages"]  # the VPC's own ssm endpoint is used as it is
    for endpoint in endpoints.values():  # as setup makes them: the instance's subnet, its group, private DNS
        assert endpoint["Properties"]["SubnetIds"] == [plan.subnet_id] and endpoint["Properties"]["PrivateDnsEnabled"]
        assert endpoint["Properties"]["SecurityGroupIds"] == [cf.get_att("SecurityGroup", "GroupId")]
    rule = props(template, "SecurityGroupHttpsFromItself")  # the instance reaches them on 443, nothing opens 22
    assert rule["FromPort"] == 443 and rule["SourceSecurityGroupId"] == cf.get_att("SecurityGroup", "GroupId")
    (nic,) = props(template, "Instance")["NetworkInterfaces"]
    assert nic["AssociatePublicIpAddress"] is False
