"""EC2 networking: the deployment's security group, the shared interface endpoints (EI's runtime endpoint; Session
Manager's ssm, ssmmessages and ec2messages for an instance with no other way out), VPC DNS, subnets' routes.

Sharing rule for an endpoint (AWS allows one private-DNS endpoint per service per VPC, so
deployments in one VPC must share it): a deployment *uses* the endpoint when its own security
group is attached to it. Teardown detaches its group; the endpoint itself is deleted only when
amazonei-setup created it and no other deployment's group remains attached, so a teardown can
never break a sibling and the last teardown removes the endpoint.

EI's subnets (one per zone; the endpoint is billed per zone it serves) are recorded: each deployment
lists the subnets it put on the endpoint in a tag of its own there (tags.endpoint_subnets_key),
written *before* the subnet is added (write-ahead: a run killed in between still leaves the
record). A teardown takes back the subnets it lists, unless another deployment runs in that zone
or lists the subnet too; such a deployment then inherits the record, so the zone leaves with the
last deployment that needs it.
"""
from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from amazonei_setup.core import tags
from amazonei_setup.core.access import INTERNET, NAT, NO_WAY_OUT, SSM_ENDPOINT_SERVICES
from amazonei_setup.core.catalog import EI_SERVICE_NAME
from amazonei_setup.core.errors import error_code, error_message

EI_SERVICE = "elastic-inference.runtime"  # the short name service_name() expands (Session Manager's are their own)
GONE_ENDPOINT_STATES = {"deleting", "deleted", "failed", "rejected", "expired"}


security_group_name = tags.resource_name


# ---- the way out of a subnet (Session Manager's agent must reach AWS) --------------------------------------

def route_tables(ec2) -> list[dict]:
    pages = ec2.get_paginator("describe_route_tables").paginate()
    return [t for page in pages for t in page["RouteTables"]]


def subnet_ways_out(tables: list[dict], subnets: list[tuple[str, str]]) -> dict[str, str]:
    """Subnet id -> where its route table (its own, else its VPC's main one) sends 0.0.0.0/0: an internet gateway
    (INTERNET: a public subnet), a NAT gateway (NAT: private, but an instance there still reaches AWS's public
    endpoints), or nowhere (NO_WAY_OUT: only the VPC's own interface endpoints reach AWS). subnets: (id, VPC id)."""

    def way_out(table: dict) -> str:
        for route in table.get("Routes", []):
            if route.get("DestinationCidrBlock") != "0.0.0.0/0" or route.get("State", "active") != "active":
                continue
            if route.get("NatGatewayId"):
                return NAT
            if str(route.get("GatewayId", "")).startswith("igw-"):
                return INTERNET
        return NO_WAY_OUT

    explicit = {a["SubnetId"]: t for t in tables for a in t.get("Associations", []) if a.get("SubnetId")}
    main = {t["VpcId"]: t for t in tables for a in t.get("Associations", []) if a.get("Main")}
    found = {}
    for subnet_id, vpc_id in subnets:
        table = explicit.get(subnet_id) or main.get(vpc_id)
        found[subnet_id] = way_out(table) if table else NO_WAY_OUT
    return found


# ---- security group ------------------------------------------------------------------------

def find_security_groups(ec2, name: str | None) -> list[dict]:
    """Our groups for one deployment (or all deployments when name is None)."""
    pages = ec2.get_paginator("describe_security_groups").paginate(Filters=tags.filters_for(name))
    return [g for page in pages for g in page["SecurityGroups"]]


def create_security_group(ec2, vpc_id: str, deployment: str, tag_list: list[dict]) -> str:
    return ec2.create_security_group(
        GroupName=security_group_name(deployment), VpcId=vpc_id,
        Description=f"amazonei-setup {deployment}: SSH from one address, HTTPS to the EI endpoint",
        TagSpecifications=tags.tag_specs(["security-group"], tag_list),
    )["GroupId"]


SSH_RULE_DESCRIPTION = "SSH (amazonei-setup)"  # marks the SSH ranges this tool opened (and may revoke)


def ingress_permissions(group_id: str, ssh_cidr: str | None, https_from_itself: bool = True) -> list[dict]:
    """443 only from members of the group itself (instance -> the endpoints the group is attached to: EI's, Session
    Manager's); 22 from one CIDR (none with Session Manager: ssh_cidr None)."""
    ssh = [_ssh_permission(ssh_cidr)] if ssh_cidr else []
    if not https_from_itself:
        return ssh
    return [
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "UserIdGroupPairs": [{"GroupId": group_id, "Description": "EI endpoint (amazonei-setup)"}]},
        *ssh,
    ]


def _ssh_permission(cidr: str, *, described: bool = True) -> dict:
    net = ipaddress.ip_network(cidr, strict=False)
    key, field = ("Ipv6Ranges", "CidrIpv6") if net.version == 6 else ("IpRanges", "CidrIp")
    ssh_range = {field: str(net), **({"Description": SSH_RULE_DESCRIPTION} if described else {})}
    return {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, key: [ssh_range]}


def our_ssh_cidrs(group: dict) -> list[str]:
    """The SSH ranges this tool opened on `group` (a describe_security_groups item); hand-made rules excluded."""
    found = []
    for rule in group.get("IpPermissions", []):
        if rule.get("FromPort") != 22 or rule.get("ToPort") != 22:
            continue
        found += [r["CidrIp"] for r in rule.get("IpRanges", []) if r.get("Description") == SSH_RULE_DESCRIPTION]
        found += [r["CidrIpv6"] for r in rule.get("Ipv6Ranges", []) if r.get("Description") == SSH_RULE_DESCRIPTION]
    return found


def authorize_ingress(ec2, group_id: str, ssh_cidr: str | None, https_from_itself: bool = True) -> None:
    """One call per rule: AWS refuses a whole call when one of its rules exists (InvalidPermission.Duplicate),
    so a re-run whose 443 rule is there would otherwise drop a new SSH range with it."""
    for permission in ingress_permissions(group_id, ssh_cidr, https_from_itself):
        try:
            ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[permission])
        except ClientError as err:
            if error_code(err) != "InvalidPermission.Duplicate":
                raise


def revoke_ssh(ec2, group_id: str, cidrs: list[str]) -> None:
    """Close SSH ranges this tool opened; one already gone is fine."""
    for cidr in cidrs:
        try:
            ec2.revoke_security_group_ingress(GroupId=group_id,
                                              IpPermissions=[_ssh_permission(cidr, described=False)])
        except ClientError as err:
            if error_code(err) != "InvalidPermission.NotFound":
                raise


def delete_security_group(ec2, group_id: str, *, timeout: float = 300, sleep: Callable = time.sleep) -> bool:
    """Delete, retrying DependencyViolation while the instance's and endpoint's ENIs drain.

    False when it was already gone. Raises the last DependencyViolation after `timeout` seconds
    (wall-clock, or the seconds handed to `sleep` when that is more: an injected sleep that does
    not really wait must not turn this into a busy loop).
    """
    started = time.monotonic()
    slept = 0.0
    delay = 2.0
    while True:
        try:
            ec2.delete_security_group(GroupId=group_id)
            return True
        except ClientError as err:
            code = error_code(err)
            if code == "InvalidGroup.NotFound":
                return False
            if code != "DependencyViolation" or max(time.monotonic() - started, slept) + delay > timeout:
                raise
        sleep(delay)
        slept += delay
        delay = min(delay * 1.5, 15)


# ---- VPC DNS (private DNS for the endpoint needs both) -------------------------------------

DNS_ATTRIBUTES = ("enableDnsSupport", "enableDnsHostnames")


def vpc_dns_attributes_off(ec2, vpc_id: str) -> list[str]:
    off = []
    for attribute in DNS_ATTRIBUTES:
        key = attribute[0].upper() + attribute[1:]
        if not ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)[key]["Value"]:
            off.append(attribute)
    return off


def enable_vpc_dns(ec2, vpc_id: str, attributes: list[str]) -> None:
    # Support must be on before hostnames can be; one attribute per call (an EC2 rule).
    for attribute in sorted(attributes, key=DNS_ATTRIBUTES.index):
        key = attribute[0].upper() + attribute[1:]
        ec2.modify_vpc_attribute(VpcId=vpc_id, **{key: {"Value": True}})


# ---- EI runtime endpoint -------------------------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    id: str
    vpc_id: str
    state: str
    subnet_ids: tuple[str, ...]
    group_ids: tuple[str, ...]
    private_dns: bool
    tags: dict = field(default_factory=dict, hash=False, compare=False)
    service_name: str = ""  # com.amazonaws.<region>.<service>

    @property
    def service(self) -> str:
        """EI_SERVICE, or one of Session Manager's (ssm, ssmmessages, ec2messages)."""
        return EI_SERVICE if self.service_name.endswith(EI_SERVICE) else self.service_name.rsplit(".", 1)[-1]

    @property
    def label(self) -> str:
        return endpoint_label(self.service)

    @property
    def is_ei(self) -> bool:
        return self.service == EI_SERVICE

    @property
    def created_by_tool(self) -> bool:
        return self.tags.get(tags.CREATED_BY) == tags.TOOL

    def subnets_added_by(self, deployment: str) -> tuple[str, ...]:
        """The subnets `deployment` recorded putting on this endpoint (some may have left it since)."""
        return tuple(self.tags.get(tags.endpoint_subnets_key(deployment), "").split())

    @property
    def subnet_records(self) -> dict[str, tuple[str, ...]]:
        """Every deployment's record: deployment name -> the subnets it put on the endpoint."""
        return {key[len(tags.ENDPOINT_SUBNETS):]: tuple(value.split()) for key, value in self.tags.items()
                if key.startswith(tags.ENDPOINT_SUBNETS)}

    @classmethod
    def from_api(cls, raw: dict) -> Endpoint:
        return cls(raw["VpcEndpointId"], raw["VpcId"], raw.get("State", "").lower(), tuple(raw.get("SubnetIds", [])),
                   tuple(g["GroupId"] for g in raw.get("Groups", [])), bool(raw.get("PrivateDnsEnabled")),
                   tags.as_dict(raw.get("Tags")), raw.get("ServiceName", ""))


def endpoint_label(service: str) -> str:
    """What the user reads: "EI endpoint", "ssm endpoint"."""
    return "EI endpoint" if service == EI_SERVICE else f"{service} endpoint"


def service_name(region: str, service: str) -> str:
    """The endpoint service's full name: EI (EI_SERVICE) or one of Session Manager's (access.SSM_ENDPOINT_SERVICES)."""
    return EI_SERVICE_NAME.format(region=region) if service == EI_SERVICE else f"com.amazonaws.{region}.{service}"


def find_endpoints(ec2, region: str, services: tuple[str, ...], vpc_id: str | None = None) -> list[Endpoint]:
    """Live interface endpoints of `services` in the region (or one VPC); deleted ones linger in listings."""
    filters = [{"Name": "service-name", "Values": [service_name(region, s) for s in services]}]
    if vpc_id:
        filters.append({"Name": "vpc-id", "Values": [vpc_id]})
    pages = ec2.get_paginator("describe_vpc_endpoints").paginate(Filters=filters)
    found = [Endpoint.from_api(e) for page in pages for e in page["VpcEndpoints"]]
    return [e for e in found if e.state not in GONE_ENDPOINT_STATES]


def find_ei_endpoints(ec2, region: str, vpc_id: str | None = None) -> list[Endpoint]:
    return find_endpoints(ec2, region, (EI_SERVICE,), vpc_id)


def find_ssm_endpoints(ec2, region: str, vpc_id: str | None = None) -> list[Endpoint]:
    return find_endpoints(ec2, region, SSM_ENDPOINT_SERVICES, vpc_id)


def find_tool_endpoints(ec2, region: str) -> list[Endpoint]:
    """Every endpoint kind a deployment may use or own: EI's and Session Manager's."""
    return find_endpoints(ec2, region, (EI_SERVICE, *SSM_ENDPOINT_SERVICES))


def create_ei_endpoint(ec2, region: str, vpc_id: str, subnet_id: str, group_id: str, tag_list: list[dict],
                       client_token: str) -> str:
    """client_token: a retry after a lost reply gets the same endpoint back; without it EC2 refuses the second
    private-DNS endpoint of the service in the VPC ("conflicting DNS domain") and the first one is orphaned.
    The creator records its subnet like any other deployment (see the module docstring): when it leaves first, the
    zone leaves with it unless a sibling runs there."""
    deployment = tags.as_dict(tag_list).get(tags.DEPLOYMENT)
    record = [{"Key": tags.endpoint_subnets_key(deployment), "Value": subnet_id}] if deployment else []
    return create_endpoint(ec2, service_name(region, EI_SERVICE), vpc_id, subnet_id, group_id, [*tag_list, *record],
                           client_token)


def create_ssm_endpoint(ec2, region: str, service: str, vpc_id: str, subnet_id: str, group_id: str,
                        tag_list: list[dict], client_token: str) -> str:
    """One of Session Manager's endpoints, in one subnet. No subnet record, unlike EI's: an interface endpoint
    answers the whole VPC from any zone it is in, so a deployment elsewhere in the VPC needs no subnet of its own
    there (the one zone is the cheap choice; a zone outage cuts ssh, never the instance's work). client_token:
    one per service (EC2 refuses a token reused with other parameters)."""
    return create_endpoint(ec2, service_name(region, service), vpc_id, subnet_id, group_id, tag_list,
                           f"{client_token}-{service}")


def create_endpoint(ec2, full_service_name: str, vpc_id: str, subnet_id: str, group_id: str, tag_list: list[dict],
                    client_token: str) -> str:
    return ec2.create_vpc_endpoint(
        VpcEndpointType="Interface", VpcId=vpc_id, ServiceName=full_service_name,
        SubnetIds=[subnet_id], SecurityGroupIds=[group_id], PrivateDnsEnabled=True,
        TagSpecifications=tags.tag_specs(["vpc-endpoint"], tag_list), ClientToken=client_token[:64],
    )["VpcEndpoint"]["VpcEndpointId"]


def is_conflicting_dns(err: ClientError) -> bool:
    """EC2's refusal of a second private-DNS endpoint of a service in one VPC (or of a DNS name a private hosted
    zone already holds there): InvalidParameter "private-dns-enabled cannot be set because there is already a
    conflicting DNS domain for <service DNS name> in the VPC vpc-..."."""
    return error_code(err) == "InvalidParameter" and "conflicting dns domain" in error_message(err).lower()


def record_added_subnet(ec2, endpoint: Endpoint, deployment: str, subnet_id: str) -> None:
    """Write-ahead: list `subnet_id` in the deployment's record on the endpoint before it is added."""
    listed = list(endpoint.subnets_added_by(deployment))
    if subnet_id in listed:
        return
    ec2.create_tags(Resources=[endpoint.id], Tags=[{"Key": tags.endpoint_subnets_key(deployment),
                                                    "Value": " ".join([*listed, subnet_id])}])


def hand_over_subnets(ec2, endpoint_id: str, records: dict[str, tuple[str, ...]]) -> None:
    """Write deployments' records (name -> subnets) on the endpoint: the ones that inherit a zone they run in."""
    if records:
        ec2.create_tags(Resources=[endpoint_id], Tags=[
            {"Key": tags.endpoint_subnets_key(name), "Value": " ".join(subnets)} for name, subnets in records.items()])


def remove_subnets(ec2, endpoint_id: str, subnet_ids: list[str]) -> None:
    if subnet_ids:
        ec2.modify_vpc_endpoint(VpcEndpointId=endpoint_id, RemoveSubnetIds=list(subnet_ids))


def forget_added_subnets(ec2, endpoint_id: str, deployment: str, subnet_ids: list[str] | None = None) -> None:
    """Drop `subnet_ids` (None: all) from the deployment's record on the endpoint; the tag goes with the last."""
    key = tags.endpoint_subnets_key(deployment)
    remaining: list[str] = []
    if subnet_ids is not None:
        endpoint = describe_endpoint(ec2, endpoint_id)
        if endpoint is None:
            return
        remaining = [s for s in endpoint.subnets_added_by(deployment) if s not in subnet_ids]
    try:
        if remaining:
            ec2.create_tags(Resources=[endpoint_id], Tags=[{"Key": key, "Value": " ".join(remaining)}])
        else:
            ec2.delete_tags(Resources=[endpoint_id], Tags=[{"Key": key}])
    except ClientError as err:
        if error_code(err) not in {"InvalidVpcEndpointId.NotFound", "InvalidVpcEndpoint.NotFound"}:
            raise


def join_endpoint(ec2, endpoint_id: str, *, add_subnet: str | None, add_group: str | None,
                     enable_private_dns: bool) -> None:
    """Make an existing endpoint serve this deployment: its AZ, its group, private DNS."""
    changes: dict = {}
    if add_subnet:
        changes["AddSubnetIds"] = [add_subnet]
    if add_group:
        changes["AddSecurityGroupIds"] = [add_group]
    if enable_private_dns:
        changes["PrivateDnsEnabled"] = True
    if changes:
        ec2.modify_vpc_endpoint(VpcEndpointId=endpoint_id, **changes)


def leave_endpoint(ec2, endpoint: Endpoint, group_ids: set[str]) -> None:
    """Detach our groups from an endpoint that stays. An interface endpoint must keep at least one
    security group, so when ours are its last ones the VPC's default group takes their place."""
    leaving = sorted(set(endpoint.group_ids) & group_ids)
    if not leaving:
        return
    changes: dict = {"RemoveSecurityGroupIds": leaving}
    if not set(endpoint.group_ids) - group_ids:
        changes["AddSecurityGroupIds"] = [default_security_group(ec2, endpoint.vpc_id)]
    try:
        ec2.modify_vpc_endpoint(VpcEndpointId=endpoint.id, **changes)
    except ClientError as err:
        if error_code(err) not in {"InvalidVpcEndpointId.NotFound", "InvalidGroup.NotFound"}:
            raise


def undo_join(ec2, endpoint_id: str, deployment: str, *, group: str | None = None, subnet: str | None = None) -> None:
    """Take back what a run added to an endpoint (its group, a subnet and the record of it), whether or not the
    change went through: it was journaled before it was sent."""
    endpoint = describe_endpoint(ec2, endpoint_id)
    if endpoint is None:
        return
    if group:
        leave_endpoint(ec2, endpoint, {group})
    if subnet:
        if subnet in endpoint.subnet_ids:
            remove_subnets(ec2, endpoint.id, [subnet])
        forget_added_subnets(ec2, endpoint.id, deployment, [subnet])


def default_security_group(ec2, vpc_id: str) -> str:
    found = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                  {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    return found[0]["GroupId"]


def delete_endpoint(ec2, endpoint_id: str) -> bool:
    response = ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint_id])
    failed = response.get("Unsuccessful", [])
    if failed:
        error = failed[0].get("Error", {})
        if error.get("Code") == "InvalidVpcEndpoint.NotFound":
            return False
        raise ClientError({"Error": {"Code": error.get("Code", "Unknown"), "Message": error.get("Message", "")}},
                          "DeleteVpcEndpoints")
    return True


def describe_endpoint(ec2, endpoint_id: str) -> Endpoint | None:
    try:
        found = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"]
    except ClientError as err:
        if error_code(err) == "InvalidVpcEndpointId.NotFound":
            return None
        raise
    return Endpoint.from_api(found[0]) if found else None


def endpoint_state(ec2, endpoint_id: str) -> str:
    endpoint = describe_endpoint(ec2, endpoint_id)
    return endpoint.state if endpoint else "deleted"
