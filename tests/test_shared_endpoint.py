"""The VPC's one EI endpoint, shared by the deployments in it: what a deployment adds to an endpoint it shares is
recorded (a tag on the endpoint, written before the change) and taken back by its teardown, unless another
deployment still needs it; and concurrent first setups in one VPC end up sharing the endpoint the winner made.

moto lets a VPC hold two private-DNS endpoints of one service (AWS refuses the second: "conflicting DNS domain"),
so the race is made by a hook that plays the other run and answers as AWS does. Every test asserts on the mock
account and on what the user sees.
"""
from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from amazonei_setup.core import tags
from amazonei_setup.core.catalog import EI_SERVICE_NAME
from tests.conftest import REGION, setup_args, snapshot
from tests.test_capacity import refuse_in, subnet_of

EI_SERVICE = EI_SERVICE_NAME.format(region=REGION)


def real_ec2():
    return boto3.client("ec2", region_name=REGION)


def setup(cli, name: str, *extra: str) -> dict:
    created = cli(*setup_args(name, *extra), "--output", "json")
    assert created.code == 0, created.stderr
    return created.json["result"]


def teardown(cli, name: str, *extra: str):
    return cli("teardown", "--region", REGION, "--name", name, "--yes", *extra)


def resource(result: dict, kind: str) -> dict:
    return next(r for r in result["resources"] if r["kind"] == kind)


def endpoint(endpoint_id: str) -> dict:
    return real_ec2().describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]


def live(endpoint_id: str) -> bool:
    return endpoint(endpoint_id)["State"].lower() not in ("deleted", "deleting")


def groups_of(endpoint_id: str) -> set[str]:
    return {g["GroupId"] for g in endpoint(endpoint_id)["Groups"]}


def said(text: str) -> str:
    return " ".join(text.split())


# ---- a zone a deployment added to a shared endpoint leaves with it -------------------------------------------

def shared_with_a_failover(cli, account) -> tuple[dict, dict, str]:
    """a creates the endpoint in us-west-2a; b joins it, is refused in 2a and launches in 2b, adding 2b."""
    a = setup(cli, "a")
    endpoint_id = resource(a, "vpc-endpoint")["id"]
    assert set(endpoint(endpoint_id)["SubnetIds"]) == {subnet_of("us-west-2a")}
    refuse_in(account.ec2, {"us-west-2a"})
    b = setup(cli, "b", "--new-key")
    assert b["availability_zone"] == "us-west-2b"
    assert resource(b, "vpc-endpoint") == {"kind": "vpc-endpoint", "id": endpoint_id, "action": "reused"}
    assert set(endpoint(endpoint_id)["SubnetIds"]) == {subnet_of("us-west-2a"), subnet_of("us-west-2b")}
    return a, b, endpoint_id


def test_teardown_removes_the_zone_a_failover_added_to_a_shared_endpoint(cli, account):
    a, b, endpoint_id = shared_with_a_failover(cli, account)
    added = subnet_of("us-west-2b")
    # The record of what b added is on the endpoint, where any machine's teardown finds it.
    assert tags.as_dict(endpoint(endpoint_id)["Tags"])[tags.endpoint_subnets_key("b")] == added

    gone = teardown(cli, "b")

    assert gone.code == 0, gone.stderr
    assert live(endpoint_id)  # a still uses it
    assert set(endpoint(endpoint_id)["SubnetIds"]) == {subnet_of("us-west-2a")}  # exactly a's again
    assert groups_of(endpoint_id) == {resource(a, "security-group")["id"]}
    assert tags.endpoint_subnets_key("b") not in tags.as_dict(endpoint(endpoint_id)["Tags"])
    assert (f"Removed {added} (us-west-2b) from shared endpoint {endpoint_id}, which deployment a keeps"
            in said(gone.stderr))
    [line] = [line for line in gone.stdout.splitlines() if added in line]
    assert "removed" in line and endpoint_id in line and "which deployment a keeps" in said(line)


def test_the_creator_torn_down_first_leaves_the_endpoint_to_the_last_user(cli, account):
    before = snapshot(account)
    a, b, endpoint_id = shared_with_a_failover(cli, account)

    first = teardown(cli, "a")

    assert first.code == 0, first.stderr
    assert live(endpoint_id) and groups_of(endpoint_id) == {resource(b, "security-group")["id"]}
    assert subnet_of("us-west-2b") in endpoint(endpoint_id)["SubnetIds"]  # b's instance runs there

    last = teardown(cli, "b")

    assert last.code == 0, last.stderr
    assert not live(endpoint_id)
    assert snapshot(account) == before


def test_a_zone_another_deployment_runs_in_stays_on_the_endpoint(cli, account):
    a, b, endpoint_id = shared_with_a_failover(cli, account)
    added = subnet_of("us-west-2b")
    c = setup(cli, "c", "--new-key", "--subnet-id", added)  # launches in 2b, which b's addition already serves
    assert c["availability_zone"] == "us-west-2b"

    gone = teardown(cli, "b")

    assert gone.code == 0, gone.stderr
    assert set(endpoint(endpoint_id)["SubnetIds"]) == {subnet_of("us-west-2a"), added}
    assert added not in gone.stdout and "Removed" not in gone.stderr
    # c inherits the record of it: the zone leaves with c.
    assert tags.as_dict(endpoint(endpoint_id)["Tags"])[tags.endpoint_subnets_key("c")] == added
    last = teardown(cli, "c")
    assert last.code == 0, last.stderr
    assert set(endpoint(endpoint_id)["SubnetIds"]) == {subnet_of("us-west-2a")}
    assert f"Removed {added} (us-west-2b) from shared endpoint {endpoint_id}, which deployment a keeps" in said(
        last.stderr)


def test_what_a_join_adds_is_recorded_before_it_is_added(cli, account):
    """Write-ahead: the tag goes on before ModifyVpcEndpoint, so a run killed between the two is still found."""
    setup(cli, "a")
    calls: list[str] = []

    def trace(model, params, **_):
        calls.append(model.name if model.name != "ModifyVpcEndpoint" or "AddSubnetIds" not in params
                     else "AddSubnet")

    account.ec2.meta.events.register("before-parameter-build.ec2.CreateTags", trace)
    account.ec2.meta.events.register("before-parameter-build.ec2.ModifyVpcEndpoint", trace)
    setup(cli, "b", "--new-key", "--subnet-id", subnet_of("us-west-2c"))  # a zone the endpoint lacks
    assert calls.index("CreateTags") < calls.index("AddSubnet")


# ---- concurrent first setups in one VPC share the winner's endpoint ------------------------------------------

def another_run_wins_the_endpoint(client) -> dict:
    """CreateVpcEndpoint: just before ours, another deployment's run creates the VPC's endpoint (with its own group),
    and EC2 refuses ours as it does a second private-DNS endpoint of a service in one VPC."""
    theirs: dict = {}

    def hook(params, **_):
        if theirs:
            return
        ec2 = real_ec2()
        other_tags = tags.tag_list("other", region=REGION)
        vpc = params["VpcId"]
        theirs["group"] = ec2.create_security_group(
            GroupName="amazonei-setup-other", Description="other", VpcId=vpc,
            TagSpecifications=tags.tag_specs(["security-group"], other_tags))["GroupId"]
        theirs["endpoint"] = ec2.create_vpc_endpoint(
            VpcEndpointType="Interface", VpcId=vpc, ServiceName=EI_SERVICE, SubnetIds=[subnet_of("us-west-2a")],
            SecurityGroupIds=[theirs["group"]], PrivateDnsEnabled=True,
            TagSpecifications=tags.tag_specs(["vpc-endpoint"], other_tags))["VpcEndpoint"]["VpcEndpointId"]
        raise ClientError({"Error": {"Code": "InvalidParameter", "Message": (
            f"private-dns-enabled cannot be set because there is already a conflicting DNS domain for "
            f"elastic-inference.runtime.{REGION}.amazonaws.com in the VPC {vpc}")}}, "CreateVpcEndpoint")

    client.meta.events.register("before-parameter-build.ec2.CreateVpcEndpoint", hook)
    return theirs


def live_endpoints() -> list[dict]:
    return [e for e in real_ec2().describe_vpc_endpoints()["VpcEndpoints"]
            if e["State"].lower() not in ("deleted", "deleting")]


def test_a_setup_that_loses_the_endpoint_race_joins_the_winners(cli, account):
    theirs = another_run_wins_the_endpoint(account.ec2)

    result = cli(*setup_args("mine"), "--output", "json")

    assert result.code == 0, result.stderr
    [shared] = live_endpoints()
    assert shared["VpcEndpointId"] == theirs["endpoint"]
    mine = result.json["result"]
    assert resource(mine, "vpc-endpoint") == {"kind": "vpc-endpoint", "id": theirs["endpoint"], "action": "reused"}
    assert groups_of(theirs["endpoint"]) == {theirs["group"], resource(mine, "security-group")["id"]}
    assert subnet_of("us-west-2a") in shared["SubnetIds"]
    assert "conflicting DNS domain" not in result.stderr
    assert f"joining {theirs['endpoint']}" in said(result.stderr)

    gone = teardown(cli, "mine")

    assert gone.code == 0, gone.stderr
    assert live(theirs["endpoint"]) and groups_of(theirs["endpoint"]) == {theirs["group"]}


def test_a_conflict_with_no_endpoint_to_join_is_one_sentence_and_rolled_back(cli, account):
    """Something else holds the endpoint's DNS name in the VPC (a private hosted zone of that name): nothing to join."""
    before = snapshot(account)

    def refuse(params, **_):
        raise ClientError({"Error": {"Code": "InvalidParameter", "Message": (
            f"private-dns-enabled cannot be set because there is already a conflicting DNS domain for "
            f"elastic-inference.runtime.{REGION}.amazonaws.com in the VPC {params['VpcId']}")}}, "CreateVpcEndpoint")

    account.ec2.meta.events.register("before-parameter-build.ec2.CreateVpcEndpoint", refuse)

    result = cli(*setup_args("mine"))

    assert result.code == 1
    text = said(result.stderr)
    assert "Traceback" not in text
    assert f"elastic-inference.runtime.{REGION}.amazonaws.com" in text and "private hosted zone" in text
    assert "Everything this run created was removed" in text
    assert snapshot(account) == before


@pytest.mark.parametrize("order", ["reuse", "failover"])
def test_a_subnet_a_join_added_and_then_lost_is_not_claimed(cli, account, order):
    """A rollback takes back the subnet and its record: no tag is left on the endpoint for a deployment that is
    gone."""
    a = setup(cli, "a")
    endpoint_id = resource(a, "vpc-endpoint")["id"]
    refuse_in(account.ec2, None)  # every zone refuses: b rolls back
    extra = ["--subnet-id", subnet_of("us-west-2c")] if order == "reuse" else []

    failed = cli(*setup_args("b", "--new-key", *extra))

    assert failed.code == 1
    assert set(endpoint(endpoint_id)["SubnetIds"]) == {subnet_of("us-west-2a")}
    assert tags.endpoint_subnets_key("b") not in tags.as_dict(endpoint(endpoint_id)["Tags"])


# ---- the rule, without an account ------------------------------------------------------------------------

def fates(*, runs: dict[str, str] = None, users: dict[str, str] = None, records: dict[str, str] = None,
          subnets=("s-a", "s-b")):
    """teardown.subnet_fates for deployment "me", which recorded s-b, on an endpoint with `subnets`; runs: other
    deployments' instances (name -> subnet); users: other deployments' groups attached (group -> name)."""
    from amazonei_setup.aws.resources.instance import InstanceInfo
    from amazonei_setup.aws.resources.network import Endpoint
    from amazonei_setup.flows.deployments import Inventory
    from amazonei_setup.flows.teardown import subnet_fates

    users = users or {}
    record_tags = {tags.endpoint_subnets_key(n): s for n, s in {"me": "s-b", **(records or {})}.items()}
    shared = Endpoint("vpce-1", "vpc-1", "available", tuple(subnets), ("sg-me", *users), True, record_tags)
    inventory = Inventory("me", REGION, [], [{"GroupId": "sg-me"}], [shared], set(users), None, None, None,
                          sibling_names=users,
                          subnet_zones={"s-a": ("vpc-1", "az-a"), "s-b": ("vpc-1", "az-b"), "s-x": ("vpc-2", "az-b")},
                          neighbour_instances=[InstanceInfo(f"i-{n}", "running", "m5.xlarge", "", "", "", subnet, "",
                                                            "", {tags.DEPLOYMENT: n}) for n, subnet in
                                               (runs or {}).items()])
    return [(f.subnet, f.keepers, f.heirs) for f in subnet_fates(inventory, shared)]


def test_a_subnet_leaves_unless_a_deployment_needs_it():
    assert fates(users={"sg-a": "a"}, runs={"a": "s-a"}) == [("s-b", (), ())]
    # a runs in az-b: kept, and a, which uses the endpoint, inherits the record.
    assert fates(users={"sg-a": "a"}, runs={"a": "s-b"}) == [("s-b", ("a",), ("a",))]
    # An instance in the zone that does not use the endpoint keeps the subnet but never comes to own it.
    assert fates(users={"sg-a": "a"}, runs={"a": "s-a", "inf": "s-b"}) == [("s-b", ("inf",), ())]
    # Another VPC's az-b is no reason.
    assert fates(users={"sg-a": "a"}, runs={"a": "s-a", "far": "s-x"}) == [("s-b", (), ())]
    # A user without an instance may need any zone; one that lists the subnet itself keeps it too.
    assert fates(users={"sg-a": "a"}) == [("s-b", ("a",), ("a",))]
    assert fates(users={"sg-a": "a"}, runs={"a": "s-a"}, records={"a": "s-b"}) == [("s-b", ("a",), ())]
    # An endpoint keeps one subnet.
    assert fates(subnets=("s-b",)) == [("s-b", ("the endpoint",), ())]
