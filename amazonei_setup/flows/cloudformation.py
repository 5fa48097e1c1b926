"""A Plan as an AWS CloudFormation template: the same resources, names, rules and tags as setup makes.

Pure: no AWS calls, no printing. `build_template(plan)` returns the template as a dict, `to_yaml` its text,
`parameter_values(plan)` the plan's choices as create_stack parameters. Only long-form intrinsics are used
(`{"Ref": ...}`, `{"Fn::Sub": ...}`), so plain yaml.safe_dump / safe_load round-trip the text.

What the template can and cannot do, compared with setup:
* Everything setup creates is one stack resource, named and tagged as setup names and tags it, so
  `teardown` and `list` find a stack's resources too (and `delete_stack` removes them).
* An EI endpoint that already serves the VPC cannot be joined (a stack cannot modify a resource it does not
  own): instead its security group gets an ingress rule for 443 from ours (EndpointSecurityGroupId).
* VPC DNS attributes (enableDnsSupport / enableDnsHostnames, which the endpoint's private DNS needs) cannot be
  switched on for an existing VPC from a template: the Description says so.
* An EI *fleet* is N AWS::EC2::Instance resources, not an Auto Scaling group. EC2 launch templates and EC2
  Auto Scaling did support EI (LaunchTemplateData.ElasticInferenceAccelerators, eia1 types; the EC2 User
  Guide had a section on EI with Auto Scaling), but CloudFormation's current AWS::EC2::LaunchTemplate schema
  has no EI property (cfn-lint's schemas, checked with cfn-lint 1.58 on 2026-12-01), so a *template's*
  launch template cannot carry one; AWS::EC2::Instance still accepts ElasticInferenceAccelerators. Fleets of
  today's alternatives (inf2 / gpu) use a launch template and an Auto Scaling group.
"""
from __future__ import annotations

import ipaddress

from amazonei_setup.aws.resources import alarm, iam, keypair
from amazonei_setup.aws.resources import instance as instances
from amazonei_setup.core import access, catalog, rules, tags
from amazonei_setup.core.errors import UsageError
from amazonei_setup.core.plan import Plan
from amazonei_setup.core.rules import MAX_VOLUME_GIB, MIN_VOLUME_GIB, opens_to_world

CAPABILITIES = ["CAPABILITY_NAMED_IAM"]  # the role and profile have names (setup's names)

# Each member of an EI fleet is its own resource (see the module docstring); keep templates reviewable.
MAX_EI_FLEET = 20

# Logical ids
ROLE, PROFILE, GROUP, SELF_HTTPS = "InstanceRole", "InstanceProfile", "SecurityGroup", "SecurityGroupHttpsFromItself"
SESSION_MANAGER_ENDPOINT = "SessionManagerEndpoint"  # + the service: SessionManagerEndpointSsmmessages
ENDPOINT, ENDPOINT_INGRESS, KEY_PAIR = "EiEndpoint", "ExistingEndpointHttpsFromInstances", "KeyPair"
INSTANCE, LAUNCH_TEMPLATE, ASG = "Instance", "LaunchTemplate", "AutoScalingGroup"
IDLE_ALARM = "IdleStopAlarm"

# Conditions
CREATE_KEY_PAIR, CREATE_ENDPOINT, USE_EXISTING_ENDPOINT = "CreateKeyPair", "CreateEndpoint", "UseExistingEndpoint"

IPV4_CIDR_PATTERN = r"^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)/(3[0-2]|[12]?\d)$"
IPV6_CIDR_PATTERN = r"^[0-9a-fA-F:]*:[0-9a-fA-F:.]*/(12[0-8]|1[01]\d|[1-9]?\d)$"
SECURITY_GROUP_ID_PATTERN = r"^(sg-[0-9a-f]{8,17})?$"

# iam.ei_policy is the one definition of the EI policy; built with these placeholders, each string that
# holds one becomes an Fn::Sub, so the template works in any account and region.
_REGION, _ACCOUNT = "${AWS::Region}", "${AWS::AccountId}"


def ref(name: str) -> dict:
    return {"Ref": name}


def get_att(resource: str, attribute: str) -> dict:
    return {"Fn::GetAtt": [resource, attribute]}


def stack_name(deployment: str) -> str:
    """The stack has the name of the deployment's role, profile and group."""
    return tags.resource_name(deployment)


# ---- the template ----------------------------------------------------------------------------------------

def build_template(plan: Plan, *, fleet_size: int | None = None, endpoint_group_id: str | None = None) -> dict:
    """The plan as a template. fleet_size None: one instance; N >= 1: a fleet of N (FleetSize parameter).

    endpoint_group_id: a security group of the EI endpoint the VPC already has (plan.endpoint_id); it is the
    default of EndpointSecurityGroupId, and a plan that reuses an endpoint needs it (a second endpoint with
    private DNS for the same service cannot be created in one VPC).
    """
    if fleet_size is not None and fleet_size < 1:
        raise ValueError(f"fleet_size must be at least 1, not {fleet_size}")
    ei = _is_ei(plan)
    if ei and fleet_size is not None and fleet_size > MAX_EI_FLEET:
        raise ValueError(f"an EI fleet is one resource per instance: at most {MAX_EI_FLEET}, not {fleet_size}")
    if ei and plan.endpoint_id and not endpoint_group_id:
        raise ValueError(f"the plan reuses EI endpoint {plan.endpoint_id}: pass endpoint_group_id (one of its "
                         "security groups), so the stack can allow 443 from its instances there")
    resources = {ROLE: _role(plan), PROFILE: _profile(plan), GROUP: _security_group(plan), KEY_PAIR: _key_pair(plan)}
    conditions = {CREATE_KEY_PAIR: {"Fn::Equals": [ref("KeyName"), ""]}}
    if ei:
        resources[SELF_HTTPS] = _self_https()
        resources[ENDPOINT] = _endpoint(plan)
        resources[ENDPOINT_INGRESS] = _existing_endpoint_ingress()
        conditions[CREATE_ENDPOINT] = {"Fn::Equals": [ref("EndpointSecurityGroupId"), ""]}
        conditions[USE_EXISTING_ENDPOINT] = {"Fn::Not": [{"Condition": CREATE_ENDPOINT}]}
    for service, endpoint_id, _ in plan.ssm_endpoints:  # a private instance's way out: the ones the VPC lacks
        if not endpoint_id:
            resources[SESSION_MANAGER_ENDPOINT + service.capitalize()] = _ssm_endpoint(plan, service)
            resources[SELF_HTTPS] = _self_https()
    if fleet_size is None:
        resources[INSTANCE] = _instance(plan)
    elif ei:
        for index in range(1, fleet_size + 1):
            resources[_member(index)] = _instance(plan, condition=_member_condition(index))
        conditions.update(_member_conditions(fleet_size))
    else:
        resources[LAUNCH_TEMPLATE] = _launch_template(plan)
        resources[ASG] = _auto_scaling_group(plan)
    if plan.idle_stop_minutes:
        resources.update(_idle_alarms(plan, fleet_size, ei))
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": _description(plan, fleet_size),
        "Metadata": _interface(plan, fleet_size),
        "Parameters": _parameters(plan, fleet_size, endpoint_group_id),
        "Conditions": conditions,
        "Resources": resources,
        "Outputs": _outputs(plan, fleet_size),
    }


def to_yaml(template: dict) -> str:
    import yaml  # lazily: only the cloudformation command needs it

    class NoAliases(yaml.SafeDumper):
        """One tag list used twice would become a YAML anchor + alias, which CloudFormation rejects (W1101)."""

        def ignore_aliases(self, data) -> bool:
            return True

    return yaml.dump(template, Dumper=NoAliases, sort_keys=False, width=10_000, default_flow_style=False)


def _image_parameter(plan: Plan) -> str:
    """The public SSM parameter a family's template resolves: the one that named the plan's image in this region
    (the GPU DLAMI's is spelled two ways in AWS's docs), else the catalog's first."""
    family = catalog.FAMILIES[plan.family]
    return plan.image_source if plan.image_source in family.ami_parameters else family.ami_parameter


def parameter_values(plan: Plan, *, fleet_size: int | None = None, key_name: str | None = None) -> list[dict]:
    """The plan's choices as create_stack Parameters. key_name overrides the plan's key pair ("" lets the stack
    create one). EndpointSecurityGroupId is left to the template's default (build_template's argument)."""
    values = {
        "KeyName": key_name if key_name is not None else _default_key_name(plan),
        **({} if plan.via_ssm else {"SshCidr": _ssh_cidr(plan)}),
        "InstanceType": plan.instance_type,
        "ImageId": _image_parameter(plan) if plan.family else plan.ami_id,
        "VolumeSize": str(plan.volume_size),
    }
    if _is_ei(plan):
        values["AcceleratorType"] = plan.accelerator_type
    if fleet_size is not None:
        values["FleetSize"] = str(fleet_size)
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


# ---- description, parameters, console layout -------------------------------------------------------------

def _is_ei(plan: Plan) -> bool:
    return bool(plan.accelerator_type) and not plan.family


def _description(plan: Plan, fleet_size: int | None) -> str:
    what = f"a fleet of {fleet_size} instances" if fleet_size is not None else "an EC2 instance"
    if plan.family:
        family = catalog.FAMILIES[plan.family]
        return (f"amazonei-setup deployment '{plan.name}': {what} with {family.label} ({plan.instance_type}), "
                "its IAM role and instance profile, a security group (SSH from one range) and a key pair if none "
                "is given. Generated by amazonei-setup, as the alternative AWS recommends since it retired Elastic "
                "Inference (April 2024).")
    if not _is_ei(plan):
        return (f"amazonei-setup deployment '{plan.name}': {what} without an accelerator, its IAM role and instance "
                "profile, a security group (SSH from one range) and a key pair if none is given. Generated by "
                "amazonei-setup.")
    return (f"amazonei-setup deployment '{plan.name}': {what} with an Elastic Inference accelerator, its IAM role "
            "and instance profile, a security group, the EI runtime VPC endpoint (or access to the VPC's existing "
            "one) and a key pair if none is given. Generated by amazonei-setup. AWS retired Elastic Inference (April "
            "2024): no account can launch this instance today (an emulator still can). The endpoint's private "
            "DNS needs enableDnsSupport and enableDnsHostnames on the VPC; a template cannot switch those on for "
            "an existing VPC.")


def _default_key_name(plan: Plan) -> str:
    return "" if plan.create_key else plan.key_name


def _ssh_cidr(plan: Plan) -> str:
    return rules.cidr(plan.ssh_cidr)


def _ssh_is_ipv6(plan: Plan) -> bool:
    return ipaddress.ip_network(plan.ssh_cidr, strict=False).version == 6


def _parameters(plan: Plan, fleet_size: int | None, endpoint_group_id: str | None) -> dict:
    params: dict[str, dict] = {
        "KeyName": {
            "Type": "String", "Default": _default_key_name(plan),
            "Description": f"An existing EC2 key pair for SSH; empty: the stack creates {keypair.key_name(plan.name)} "
                           "and keeps its private key in SSM Parameter Store (see the PrivateKeyCommand output).",
        },
    }
    if not plan.via_ssm:  # through Session Manager no range is opened: nothing to ask
        params["SshCidr"] = {
            "Type": "String",
            # Never a default open to the whole internet: a plan that chose that must say it again at deploy time.
            **({} if opens_to_world(plan.ssh_cidr) else {"Default": _ssh_cidr(plan)}),
            "AllowedPattern": IPV6_CIDR_PATTERN if _ssh_is_ipv6(plan) else IPV4_CIDR_PATTERN,
            "ConstraintDescription": "an IPv6 range like 2001:db8::1/128" if _ssh_is_ipv6(plan)
            else "an IPv4 range like 203.0.113.7/32",
            "Description": "The only range SSH (port 22) is open to: your own address, /32 (or /128).",
        }
    params["InstanceType"] = {"Type": "String", "Default": plan.instance_type, "Description": "The EC2 instance type."}
    if plan.family:
        family = catalog.FAMILIES[plan.family]
        params["InstanceType"]["AllowedValues"] = list(dict.fromkeys([*family.instance_types, plan.instance_type]))
        params["ImageId"] = {
            "Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>", "Default": _image_parameter(plan),
            "Description": f"The public SSM parameter naming the newest {family.label} Deep Learning AMI.",
        }
    else:
        params["ImageId"] = {
            "Type": "AWS::EC2::Image::Id", "Default": plan.ami_id,
            "Description": f"The Deep Learning AMI with the EI environments ({plan.ami_name or plan.ami_id}); "
                           "these AMIs have no public SSM parameter.",
        }
    if _is_ei(plan):
        params["AcceleratorType"] = {
            "Type": "String", "Default": plan.accelerator_type, "AllowedValues": list(catalog.ACCELERATORS),
            "Description": "The Elastic Inference accelerator of each instance (eia2 was never offered in "
                           "ap-northeast-1).",
        }
    params["VolumeSize"] = {
        "Type": "Number", "Default": plan.volume_size, "MinValue": MIN_VOLUME_GIB, "MaxValue": MAX_VOLUME_GIB,
        "Description": "Root volume size in GiB (gp3, encrypted).",
    }
    if fleet_size is not None and _is_ei(plan):
        # One resource per member: 1 to the size the template was generated for. A String with the allowed values
        # (a console drop-down), compared as strings by the members' conditions.
        params["FleetSize"] = {"Type": "String", "Default": str(fleet_size),
                               "AllowedValues": [str(n) for n in range(1, fleet_size + 1)],
                               "Description": f"How many instances the fleet runs (at most {fleet_size}: generate "
                                              "the template again for more)."}
    elif fleet_size is not None:
        params["FleetSize"] = {"Type": "Number", "Default": fleet_size, "MinValue": 1,
                               "Description": "How many instances the fleet runs."}
    if _is_ei(plan):
        params["EndpointSecurityGroupId"] = {
            "Type": "String", "Default": endpoint_group_id or "", "AllowedPattern": SECURITY_GROUP_ID_PATTERN,
            "Description": "Empty: create the VPC's EI runtime endpoint. A security group id: the VPC already has "
                           "an EI endpoint with this group; allow 443 from the instances there instead (that "
                           "endpoint must cover the subnet's AZ and have private DNS on, which needs the VPC's "
                           "enableDnsSupport and enableDnsHostnames).",
        }
    return params


def _interface(plan: Plan, fleet_size: int | None) -> dict:
    """Parameter groups and labels for the console."""
    instance = ["InstanceType", *(["AcceleratorType"] if _is_ei(plan) else []), "ImageId", "VolumeSize",
                *(["FleetSize"] if fleet_size is not None else [])]
    access = ["KeyName", *([] if plan.via_ssm else ["SshCidr"]),
              *(["EndpointSecurityGroupId"] if _is_ei(plan) else [])]
    labels = {
        "InstanceType": "Instance type", "AcceleratorType": "Elastic Inference accelerator", "ImageId": "AMI",
        "VolumeSize": "Root volume (GiB)", "FleetSize": "Number of instances", "KeyName": "Key pair",
        "SshCidr": "SSH allowed from", "EndpointSecurityGroupId": "Existing EI endpoint's security group",
    }
    used = instance + access
    return {"AWS::CloudFormation::Interface": {
        "ParameterGroups": [{"Label": {"default": "Instance"}, "Parameters": instance},
                            {"Label": {"default": "Access"}, "Parameters": access}],
        "ParameterLabels": {name: {"default": labels[name]} for name in used},
    }}


# ---- IAM, network, key pair ------------------------------------------------------------------------------

def _tags(plan: Plan) -> list[dict]:
    """Ownership tags: teardown and list find a deployment's resources by them."""
    return tags.tag_list(plan.name, plan.owner, plan.region)


def _instance_tags(plan: Plan) -> list[dict]:
    """As provision._launch tags an instance: ownership, Name, accelerator (or family), SSH user."""
    extra = {tags.ACCELERATOR: plan.accelerator_type or plan.family, tags.SSH_USER: plan.ssh_user,
             tags.ACCESS: plan.access}
    return (_tags(plan) + [{"Key": "Name", "Value": plan.name}]
            + [{"Key": k, "Value": v} for k, v in extra.items() if v])


def _with_sub(value):
    """Every string that holds a ${AWS::...} placeholder becomes an Fn::Sub."""
    if isinstance(value, dict):
        return {k: _with_sub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_sub(v) for v in value]
    if isinstance(value, str) and "${AWS::" in value:
        return {"Fn::Sub": value}
    return value


def ei_policy_document() -> dict:
    """iam.ei_policy for whichever account and region the stack is created in."""
    return _with_sub(iam.ei_policy(_REGION, _ACCOUNT))


def _role(plan: Plan) -> dict:
    props: dict = {
        "RoleName": plan.role_name, "Path": tags.IAM_PATH, "AssumeRolePolicyDocument": iam.TRUST_POLICY,
        "Description": "EC2 instance role for an Elastic Inference deployment (amazonei-setup)" if _is_ei(plan)
        else f"EC2 instance role for an amazonei-setup {plan.family} deployment",
    }
    if plan.family:
        props["ManagedPolicyArns"] = list(catalog.FAMILY_MANAGED_POLICIES)
    elif _is_ei(plan):
        # Inline, on the role: a separate policy resource attached to the role outlives moto's delete_stack.
        props["Policies"] = [{"PolicyName": iam.POLICY_NAME, "PolicyDocument": ei_policy_document()}]
    if plan.via_ssm and not plan.family:  # the SSM agent registers with the role (the families' have it already)
        props["ManagedPolicyArns"] = [access.SSM_CORE_POLICY]
    props["Tags"] = _tags(plan)
    return {"Type": "AWS::IAM::Role", "Properties": props}


def _profile(plan: Plan) -> dict:
    # CloudFormation's AWS::IAM::InstanceProfile takes no Tags (setup tags its profiles): teardown accepts the
    # profile because the deployment's stack holds it; its name and IAM path are setup's.
    return {"Type": "AWS::IAM::InstanceProfile",
            "Properties": {"InstanceProfileName": plan.profile_name, "Path": tags.IAM_PATH, "Roles": [ref(ROLE)]}}


def _security_group(plan: Plan) -> dict:
    https = ", HTTPS to the EI endpoint" if _is_ei(plan) else ""
    access_tag = [{"Key": tags.ACCESS, "Value": plan.access}]
    if plan.via_ssm:  # no inbound rule but EI's 443 from the group itself (a resource of its own)
        return {"Type": "AWS::EC2::SecurityGroup", "Properties": {
            "GroupName": plan.security_group_name, "VpcId": plan.vpc_id,
            "GroupDescription": f"amazonei-setup {plan.name}: no inbound SSH (Session Manager){https}",
            "Tags": _tags(plan) + access_tag,
        }}
    ssh_range = {"CidrIpv6": ref("SshCidr")} if _ssh_is_ipv6(plan) else {"CidrIp": ref("SshCidr")}
    return {"Type": "AWS::EC2::SecurityGroup", "Properties": {
        "GroupName": plan.security_group_name, "VpcId": plan.vpc_id,
        "GroupDescription": f"amazonei-setup {plan.name}: SSH from one address{https}",
        "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, **ssh_range,
                                  "Description": "SSH (amazonei-setup)"}],
        "Tags": _tags(plan) + access_tag,
    }}


def _self_https() -> dict:
    # A rule naming its own group must be a resource of its own (inline it would be a circular reference).
    return {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": {
        "GroupId": get_att(GROUP, "GroupId"), "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
        "SourceSecurityGroupId": get_att(GROUP, "GroupId"), "Description": "EI endpoint (amazonei-setup)",
    }}


def _endpoint(plan: Plan) -> dict:
    return {"Type": "AWS::EC2::VPCEndpoint", "Condition": CREATE_ENDPOINT, "Properties": {
        "VpcEndpointType": "Interface",
        "ServiceName": {"Fn::Sub": catalog.EI_SERVICE_NAME.format(region=_REGION)},
        "VpcId": plan.vpc_id, "SubnetIds": [plan.subnet_id], "SecurityGroupIds": [get_att(GROUP, "GroupId")],
        "PrivateDnsEnabled": True, "Tags": _tags(plan),
    }}


def _ssm_endpoint(plan: Plan, service: str) -> dict:
    """One of Session Manager's endpoints, as setup makes it (resources/network.create_ssm_endpoint). One the VPC
    has already is used as it is: a stack cannot attach its group to an endpoint it does not own."""
    return {"Type": "AWS::EC2::VPCEndpoint", "Properties": {
        "VpcEndpointType": "Interface", "ServiceName": {"Fn::Sub": f"com.amazonaws.${{AWS::Region}}.{service}"},
        "VpcId": plan.vpc_id, "SubnetIds": [plan.subnet_id], "SecurityGroupIds": [get_att(GROUP, "GroupId")],
        "PrivateDnsEnabled": True, "Tags": _tags(plan),
    }}


def _existing_endpoint_ingress() -> dict:
    """The VPC already has an EI endpoint: let our instances reach it (the rule goes with the stack)."""
    return {"Type": "AWS::EC2::SecurityGroupIngress", "Condition": USE_EXISTING_ENDPOINT, "Properties": {
        "GroupId": ref("EndpointSecurityGroupId"), "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
        "SourceSecurityGroupId": get_att(GROUP, "GroupId"), "Description": "EI endpoint (amazonei-setup)",
    }}


def _key_pair(plan: Plan) -> dict:
    # AWS keeps the private key of a key pair CloudFormation creates in SSM: /ec2/keypair/<KeyPairId>.
    return {"Type": "AWS::EC2::KeyPair", "Condition": CREATE_KEY_PAIR, "Properties": {
        "KeyName": keypair.key_name(plan.name), "KeyType": "rsa", "Tags": _tags(plan)}}


def _key_name() -> dict:
    return {"Fn::If": [CREATE_KEY_PAIR, ref(KEY_PAIR), ref("KeyName")]}


# ---- instances -------------------------------------------------------------------------------------------

def _launch_settings(plan: Plan) -> dict:
    """What setup's run_instances request says about metadata, network and disk (instances.launch_request is
    the one definition; this template follows it)."""
    return instances.launch_request(
        ami_id=plan.ami_id, instance_type=plan.instance_type, accelerator_type=plan.accelerator_type,
        subnet_id=plan.subnet_id, group_id="", key_name="", profile_name="", root_device=plan.root_device,
        volume_size=plan.volume_size, tag_list=[], client_token="", public_ip=plan.public_ip)


def _block_devices(plan: Plan) -> list[dict]:
    mappings = _launch_settings(plan)["BlockDeviceMappings"]
    return [{**m, "Ebs": {**m["Ebs"], "VolumeSize": ref("VolumeSize")}} for m in mappings]


def _interface_flags(plan: Plan) -> dict:
    (nic,) = _launch_settings(plan)["NetworkInterfaces"]
    return {k: nic[k] for k in ("AssociatePublicIpAddress", "DeleteOnTermination")}


def _accelerators(plan: Plan) -> dict:
    return {"ElasticInferenceAccelerators": [{"Type": ref("AcceleratorType"), "Count": 1}]} if _is_ei(plan) else {}


def _instance(plan: Plan, condition: str | None = None) -> dict:
    props = {
        "ImageId": ref("ImageId"), "InstanceType": ref("InstanceType"), "KeyName": _key_name(),
        "IamInstanceProfile": ref(PROFILE),
        "NetworkInterfaces": [{"DeviceIndex": "0", "SubnetId": plan.subnet_id, "GroupSet": [get_att(GROUP, "GroupId")],
                               **_interface_flags(plan)}],
        "BlockDeviceMappings": _block_devices(plan),
        # IMDSv2 as setup launches it. AWS::EC2::Instance takes MetadataOptions itself now (CloudFormation's
        # current schema, cfn-lint 1.51): no launch template is needed just to carry them.
        "MetadataOptions": _launch_settings(plan)["MetadataOptions"],
        **_accelerators(plan),
        "PropagateTagsToVolumeOnCreation": True,  # setup tags the root volume too
        "Tags": _instance_tags(plan),
    }
    resource = {"Type": "AWS::EC2::Instance", "Properties": props}
    if condition:
        resource["Condition"] = condition
    return resource


def _member(index: int) -> str:
    return f"{INSTANCE}{index}"


def _member_condition(index: int) -> str | None:
    return None if index == 1 else f"Launch{_member(index)}"


def _member_conditions(fleet_size: int) -> dict:
    """EI fleet member i exists when FleetSize >= i: FleetSize is not 1, and (for i > 2) not i-1 while member
    i-1 exists. Conditions have no comparison, so the chain spells it out."""
    conditions = {}
    for index in range(2, fleet_size + 1):
        not_smaller = {"Fn::Not": [{"Fn::Equals": [ref("FleetSize"), str(index - 1)]}]}
        previous = _member_condition(index - 1)
        conditions[_member_condition(index)] = (
            not_smaller if previous is None else {"Fn::And": [{"Condition": previous}, not_smaller]})
    return conditions


def _launch_template(plan: Plan) -> dict:
    data = {
        "ImageId": ref("ImageId"), "InstanceType": ref("InstanceType"), "KeyName": _key_name(),
        "IamInstanceProfile": {"Arn": get_att(PROFILE, "Arn")},
        "MetadataOptions": _launch_settings(plan)["MetadataOptions"],
        "BlockDeviceMappings": _block_devices(plan),
        "NetworkInterfaces": [{"DeviceIndex": 0, "Groups": [get_att(GROUP, "GroupId")], **_interface_flags(plan)}],
        "TagSpecifications": tags.tag_specs(["instance", "volume"], _instance_tags(plan)),
    }
    return {"Type": "AWS::EC2::LaunchTemplate", "Properties": {
        "LaunchTemplateName": tags.resource_name(plan.name), "LaunchTemplateData": data,
        "TagSpecifications": tags.tag_specs(["launch-template"], _tags(plan)),
    }}


def _auto_scaling_group(plan: Plan) -> dict:
    return {"Type": "AWS::AutoScaling::AutoScalingGroup", "Properties": {
        "AutoScalingGroupName": tags.resource_name(plan.name),
        "LaunchTemplate": {"LaunchTemplateId": ref(LAUNCH_TEMPLATE),
                           "Version": get_att(LAUNCH_TEMPLATE, "LatestVersionNumber")},
        "MinSize": ref("FleetSize"), "MaxSize": ref("FleetSize"), "DesiredCapacity": ref("FleetSize"),
        "VPCZoneIdentifier": [plan.subnet_id],
        "Tags": [{**t, "PropagateAtLaunch": True} for t in _instance_tags(plan)],
    }}


# ---- idle auto-stop --------------------------------------------------------------------------------------

def _idle_alarms(plan: Plan, fleet_size: int | None, ei: bool) -> dict:
    """setup --idle-stop's alarm, one per instance resource, with the very definition setup puts
    (resources/alarm.py). An Auto Scaling group cannot have one: it would replace an instance the alarm stops."""
    if fleet_size is not None and not ei:
        raise UsageError("--idle-stop cannot go into an Auto Scaling group's template: the group would replace "
                         "each instance the alarm stops. Drop --idle-stop, or export one instance (no --fleet, "
                         "--count 1).")
    members = [(IDLE_ALARM, INSTANCE, None)] if fleet_size is None else [
        (f"{IDLE_ALARM}{index}", _member(index), _member_condition(index)) for index in range(1, fleet_size + 1)]
    found = {}
    for logical_id, instance, condition in members:
        props = alarm.definition(plan.name, ref(instance), plan.region, plan.idle_stop_minutes)
        props["AlarmName"] = {"Fn::Sub": f"{alarm.alarm_prefix(plan.name)}${{{instance}}}"}
        props["AlarmActions"] = [{"Fn::Sub": alarm.stop_action(_REGION)}]
        props["Tags"] = _tags(plan)
        resource = {"Type": "AWS::CloudWatch::Alarm", "Properties": props}
        if condition:
            resource["Condition"] = condition
        found[logical_id] = resource
    return found


# ---- outputs ---------------------------------------------------------------------------------------------

def _key_file() -> dict:
    """Fn::Sub variables naming the key pair, for commands that say `-i <key>.pem`."""
    return {"Key": _key_name()}


def _outputs(plan: Plan, fleet_size: int | None) -> dict:
    outputs: dict[str, dict] = {}
    if fleet_size is None and plan.via_ssm:  # through Session Manager: the instance id is the host
        proxy = ("-o 'ProxyCommand=aws ssm start-session --target %h --document-name "
                 f"{access.SSH_DOCUMENT} --parameters portNumber=%p --region ${{AWS::Region}}'")
        host = f"{proxy} {plan.ssh_user}@${{{INSTANCE}}}"
    if fleet_size is None:
        host = host if plan.via_ssm else f"{plan.ssh_user}@${{{INSTANCE}.PublicDnsName}}"
        outputs["InstanceId"] = {"Description": "The instance", "Value": ref(INSTANCE)}
        if plan.public_ip:
            outputs["PublicDnsName"] = {"Description": "Its public DNS name",
                                        "Value": get_att(INSTANCE, "PublicDnsName")}
        outputs["SshCommand"] = {"Description": "Log in",
                                 "Value": {"Fn::Sub": [f"ssh -i ${{Key}}.pem {host}", _key_file()]}}
        outputs["JupyterCommand"] = {
            "Description": "Forward Jupyter (port 8888) to this machine",
            "Value": {"Fn::Sub": [f"ssh -i ${{Key}}.pem -L 8888:localhost:8888 {host}", _key_file()]}}
    else:
        if not _is_ei(plan):
            outputs["AutoScalingGroupName"] = {"Description": "The fleet", "Value": ref(ASG)}
        outputs["ListInstancesCommand"] = {
            "Description": "The fleet's running instances and their public DNS names",
            "Value": {"Fn::Sub": f"aws ec2 describe-instances --region ${{AWS::Region}} --filters "
                                 f"Name=tag:{tags.DEPLOYMENT},Values={plan.name} "
                                 "Name=instance-state-name,Values=running "
                                 "--query 'Reservations[].Instances[].[InstanceId,PublicDnsName]' --output text"}}
    outputs["SecurityGroupId"] = {"Description": "The instances' security group", "Value": get_att(GROUP, "GroupId")}
    outputs["RoleName"] = {"Description": "The instances' IAM role", "Value": ref(ROLE)}
    if _is_ei(plan):
        outputs["EndpointId"] = {"Description": "The EI runtime endpoint this stack created",
                                 "Condition": CREATE_ENDPOINT, "Value": ref(ENDPOINT)}
    name = keypair.key_name(plan.name)
    outputs["PrivateKeyCommand"] = {
        "Description": "Save the private key of the key pair this stack created",
        "Condition": CREATE_KEY_PAIR,
        "Value": {"Fn::Sub": "aws ssm get-parameter --region ${AWS::Region} "
                             f"--name /ec2/keypair/${{{KEY_PAIR}.KeyPairId}} --with-decryption "
                             f"--query Parameter.Value --output text > {name}.pem "
                             f"&& chmod 400 {name}.pem"}}
    return outputs
