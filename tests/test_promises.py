"""Promises the code keeps that moto alone cannot test (issue 13, "honesty").

moto never pages describe_security_groups or describe_images, assigns a public address at launch,
terminates at once and honours DryRun; and no other test hand-makes a resource with one of our
names. Each test below makes AWS behave as it really can (pages, a late address, a slow
termination, a same-named resource someone else made) through botocore's event hooks on the
fixture's client, and asserts on the moto account and on what the user sees.
"""
from __future__ import annotations

import json

import pytest

from amazonei_setup.aws.client import Aws
from amazonei_setup.aws.resources import iam as iam_names
from amazonei_setup.aws.resources import network
from amazonei_setup.core import tags
from amazonei_setup.core.catalog import DEFAULT_OS, OPERATING_SYSTEMS
from amazonei_setup.local import records
from tests.conftest import REGION, setup_args, snapshot

# The deployment most tests set up, and the name every resource of it carries (role, profile, group).
NAME = "demo"
RESOURCE = tags.resource_name(NAME)


# ---- helpers ---------------------------------------------------------------------------------

def flat(text: str) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(text.split())


def setup(cli, name: str, *extra: str):
    return cli(*setup_args(name, *extra), "--output", "json")


def teardown(cli, name: str, *extra: str):
    return cli("teardown", "--region", REGION, "--name", name, "--yes", *extra)


def resource_ids(result, kind: str) -> list[tuple[str, str]]:
    return [(r["id"], r["action"]) for r in result.json["result"]["resources"] if r["kind"] == kind]


@pytest.fixture
def plain(account) -> Aws:
    """Uninstrumented clients on the same moto account: the fixture's `account` clients carry our hooks
    (and `snapshot` reads single pages, which a paging hook would cut short)."""
    return Aws(REGION)


def page(client, operation: str, key: str, *, order=None, size: int = 1) -> list[int]:
    """Make moto page `operation` as AWS may: the reply's `key` list in pages of `size` (sorted by `order`
    first, so a test decides what lands on the last page), with a NextToken while more remain.

    before-parameter-build takes the caller's NextToken out of the request (moto would ignore it) and
    keeps it in the request context; after-call cuts the full reply to the page it names. Returns the
    offsets of the pages served."""
    served: list[int] = []
    slot = f"test-promises-{operation}"

    def take_token(params, context, **_):
        context[slot] = params.pop("NextToken", None)

    def cut(parsed, context, http_response, **_):
        if http_response.status_code >= 300 or key not in parsed:
            return
        items = sorted(parsed[key], key=order) if order else list(parsed[key])
        start = int(context.get(slot) or 0)
        parsed[key] = items[start:start + size]
        parsed.pop("NextToken", None)
        if start + size < len(items):
            parsed["NextToken"] = str(start + size)
        served.append(start)

    service = client.meta.service_model.service_name
    client.meta.events.register(f"before-parameter-build.{service}.{operation}", take_token)
    client.meta.events.register(f"after-call.{service}.{operation}", cut)
    return served


def group_deployment(group: dict) -> str | None:
    return tags.as_dict(group.get("Tags")).get(tags.DEPLOYMENT)


def groups_named(ec2, name: str) -> list[dict]:
    return ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"]


def default_vpc(ec2) -> str:
    return ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]


# ---- 1. a same-named resource without our tags is never adopted ------------------------------

def hand_made_role(aws) -> None:
    aws.iam.create_role(RoleName=iam_names.role_name(NAME), Path=tags.IAM_PATH,
                        AssumeRolePolicyDocument=json.dumps(iam_names.TRUST_POLICY))


def hand_made_profile(aws) -> None:
    aws.iam.create_instance_profile(InstanceProfileName=iam_names.profile_name(NAME), Path=tags.IAM_PATH)


def hand_made_group(aws) -> None:
    aws.ec2.create_security_group(GroupName=network.security_group_name(NAME), Description="someone else's",
                                  VpcId=default_vpc(aws.ec2))


def untouched_role(aws) -> None:
    """No inline policy put on it, no managed policy attached, in no instance profile."""
    name = iam_names.role_name(NAME)
    assert aws.iam.list_role_policies(RoleName=name)["PolicyNames"] == []
    assert aws.iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []
    assert aws.iam.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"] == []
    assert not aws.iam.get_role(RoleName=name)["Role"].get("Tags")


def untouched_profile(aws) -> None:
    """No role put in it."""
    profile = aws.iam.get_instance_profile(InstanceProfileName=iam_names.profile_name(NAME))["InstanceProfile"]
    assert profile["Roles"] == []
    assert not profile.get("Tags")


def untouched_group(aws) -> None:
    """No rule added to it, attached to no endpoint, no instance launched into it."""
    [group] = groups_named(aws.ec2, network.security_group_name(NAME))
    assert group["IpPermissions"] == []
    assert not group.get("Tags")
    attached = {g["GroupId"] for e in aws.ec2.describe_vpc_endpoints()["VpcEndpoints"] for g in e.get("Groups", [])}
    assert group["GroupId"] not in attached
    assert aws.ec2.describe_instances()["Reservations"] == []


FOREIGN = {
    "iam-role": (hand_made_role, untouched_role, "roles"),
    "instance-profile": (hand_made_profile, untouched_profile, "instance_profiles"),
    "security-group": (hand_made_group, untouched_group, "security_groups"),
}


@pytest.mark.parametrize("kind", FOREIGN)
def test_a_same_named_resource_without_our_tags_is_refused_and_left_as_it_was(cli, account, plain, kind,
                                                                            isolated_env):
    make, untouched, listing = FOREIGN[kind]
    before = snapshot(plain)
    make(plain)
    with_it = snapshot(plain)
    assert len(with_it[listing] - before[listing]) == 1  # the hand-made resource, and nothing else is new

    result = setup(cli, NAME)

    assert result.code == 2, (result.code, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    said = flat(result.stderr[result.stderr.index("error:"):])
    assert f"An {kind} named {RESOURCE} already exists and was not created by amazonei-setup" in said
    assert "choose another --name" in said
    assert result.json["status"] == "error"
    untouched(plain)
    assert snapshot(plain) == with_it  # the hand-made one is still there; nothing of ours is left behind
    assert list(isolated_env.rglob("*.pem")) == []  # the rolled-back key pair's private key file went too


# ---- 2. every page of describe_security_groups is read ---------------------------------------

def test_the_deployments_own_group_is_found_on_a_later_page_on_a_rerun(cli, account, plain):
    assert setup(cli, "a").code == 0
    first = setup(cli, "b")
    assert first.code == 0, first.stderr
    [(group_id, _)] = resource_ids(first, "security-group")
    pages = page(account.ec2, "DescribeSecurityGroups", "SecurityGroups",
                 order=lambda g: (group_deployment(g) == "b", g["GroupId"]))  # b's group comes last
    before = snapshot(plain)

    again = setup(cli, "b")

    assert again.code == 0, again.stderr
    assert resource_ids(again, "security-group") == [(group_id, "reused")]
    assert f"Reusing security group {group_id}" in flat(again.stderr)
    assert snapshot(plain) == before
    assert max(pages) >= 1  # the group list really came in several pages


def test_teardown_finds_the_deployments_group_on_a_later_page(cli, account, plain):
    assert setup(cli, "a").code == 0
    only_a = snapshot(plain)
    created = setup(cli, "b")
    assert created.code == 0, created.stderr
    [(group_id, _)] = resource_ids(created, "security-group")
    pages = page(account.ec2, "DescribeSecurityGroups", "SecurityGroups",
                 order=lambda g: (group_deployment(g) == "b", g["GroupId"]))

    result = teardown(cli, "b")

    assert result.code == 0, result.stderr
    assert f"Deleted security-group {group_id}" in flat(result.stderr)
    assert groups_named(plain.ec2, network.security_group_name("b")) == []
    assert snapshot(plain) == only_a  # b is gone entirely, a is untouched
    assert max(pages) >= 1  # the group list really came in several pages


# ---- 3. every page of describe_images is read ------------------------------------------------

def test_the_newest_deep_learning_ami_is_chosen_when_it_is_on_the_last_page(cli, account, plain):
    pattern = OPERATING_SYSTEMS[DEFAULT_OS].ami_name_pattern
    candidates = plain.ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": [pattern]}])["Images"]
    assert len(candidates) >= 2
    newest = max(candidates, key=lambda i: i["CreationDate"])
    pages = page(account.ec2, "DescribeImages", "Images", order=lambda i: (i.get("CreationDate", ""), i["ImageId"]))

    planned = setup(cli, NAME, "--dry-run")
    result = setup(cli, NAME)

    assert planned.code == 0, planned.stderr
    plan = planned.json["result"]["plan"]
    assert (plan["ami_id"], plan["ami_name"]) == (newest["ImageId"], newest["Name"])
    assert result.code == 0, result.stderr
    [reservation] = plain.ec2.describe_instances(InstanceIds=[result.json["result"]["instance_id"]])["Reservations"]
    assert reservation["Instances"][0]["ImageId"] == newest["ImageId"]
    assert newest["Name"] in flat(result.stderr)
    assert max(pages) >= 2  # the newest image came on the third page or later


# ---- 4. a dry run creates nothing ------------------------------------------------------------

def test_dry_run_leaves_the_account_as_it_was(cli, account, plain):
    """EC2 refuses every DryRun call; moto refuses CreateSecurityGroup's and RunInstances' but really creates
    the endpoint, which check_permissions removes again. Both halves of that are checked here."""
    answers: dict[str, list[str]] = {}
    for operation in ("CreateSecurityGroup", "RunInstances", "CreateVpcEndpoint"):
        account.ec2.meta.events.register(
            f"after-call.ec2.{operation}",
            lambda parsed, model, **_: answers.setdefault(model.name, []).append(
                parsed.get("Error", {}).get("Code", "created")))
    before = snapshot(plain)

    result = setup(cli, NAME, "--dry-run")

    assert result.code == 0, result.stderr
    assert result.json["result"]["dry_run"] is True and result.json["result"]["permission_problems"] == []
    assert "Dry run" not in result.stdout.replace('"dry_run"', ""), "JSON mode: the JSON is the whole result"
    assert answers == {"CreateSecurityGroup": ["DryRunOperation"], "RunInstances": ["DryRunOperation"],
                       "CreateVpcEndpoint": ["created"]}
    assert snapshot(plain) == before
    live = [e for e in plain.ec2.describe_vpc_endpoints()["VpcEndpoints"] if e["State"].lower() != "deleted"]
    assert live == []


# ---- 5. the SSH command waits for a public address -------------------------------------------

def test_the_ssh_command_names_the_address_ec2_assigns_after_running(cli, account, plain):
    """Real EC2 can report an instance `running` before its public DNS name and IP exist."""
    launched: list[str] = []
    bare_polls: list[str] = []

    def without_address(instance: dict) -> None:
        instance.pop("PublicDnsName", None)
        instance.pop("PublicIpAddress", None)
        for interface in instance.get("NetworkInterfaces", []):
            interface.pop("Association", None)
            for address in interface.get("PrivateIpAddresses", []):
                address.pop("Association", None)

    def at_launch(parsed, **_):
        for instance in parsed.get("Instances", []):
            launched.append(instance["InstanceId"])
            without_address(instance)

    def first_polls(parsed, **_):
        for reservation in parsed.get("Reservations", []):
            for instance in reservation["Instances"]:
                if instance["InstanceId"] in launched and len(bare_polls) < 2:
                    assert instance["State"]["Name"] == "running"  # moto's truth: running, with an address
                    without_address(instance)
                    bare_polls.append(instance["InstanceId"])

    account.ec2.meta.events.register("after-call.ec2.RunInstances", at_launch)
    account.ec2.meta.events.register("after-call.ec2.DescribeInstances", first_polls)

    result = cli(*setup_args(NAME))  # text: the ready summary on stdout

    assert result.code == 0, result.stderr
    [reservation] = plain.ec2.describe_instances(InstanceIds=launched)["Reservations"]
    host = reservation["Instances"][0]["PublicDnsName"]
    assert host
    document = records.load(REGION, NAME)  # the JSON result, as the local record saved it
    assert (document["public_dns"], document["public_ip"]) == (host, reservation["Instances"][0]["PublicIpAddress"])
    assert document["ssh_command"].endswith(f"ec2-user@{host}")
    assert document["port_forward_command"].endswith(f"ec2-user@{host}")
    assert f"ec2-user@{host}" in flat(result.stdout)
    assert "@None" not in result.stdout and "ec2-user@ " not in flat(result.stdout) + " "
    assert bare_polls == launched * 2  # it polled through two replies without an address


# ---- 6. teardown waits for every instance of a fleet -----------------------------------------

HELD_POLLS = 2


def test_teardown_waits_for_every_instance_of_a_fleet_before_deleting_the_group(cli, account, plain):
    before = snapshot(plain)
    created = setup(cli, "fleet", "--count", "2")
    assert created.code == 0, created.stderr
    ids = [i["instance_id"] for i in created.json["result"]["instances"]]
    [(group_id, _)] = resource_ids(created, "security-group")
    assert len(ids) == 2
    log: list[tuple[str, str]] = []  # ("poll", "<id> <state>") and ("delete-group", id), in call order
    held: dict[str, int] = {}

    def slow_termination(parsed, **_):
        for reservation in parsed.get("Reservations", []):
            for instance in reservation["Instances"]:
                if instance["State"]["Name"] != "terminated":
                    continue
                if held.get(instance["InstanceId"], 0) < HELD_POLLS:  # capped: a regression fails, not hangs
                    held[instance["InstanceId"]] = held.get(instance["InstanceId"], 0) + 1
                    instance["State"] = {"Code": 32, "Name": "shutting-down"}
                log.append(("poll", f"{instance['InstanceId']} {instance['State']['Name']}"))

    account.ec2.meta.events.register("after-call.ec2.DescribeInstances", slow_termination)
    account.ec2.meta.events.register("before-parameter-build.ec2.DeleteSecurityGroup",
                                     lambda params, **_: log.append(("delete-group", params["GroupId"])))

    result = teardown(cli, "fleet")

    assert result.code == 0, result.stderr
    for instance_id in ids:
        polls = [what for kind, what in log if kind == "poll" and what.startswith(instance_id)]
        assert polls == [f"{instance_id} shutting-down"] * HELD_POLLS + [f"{instance_id} terminated"], log
        assert f"Terminated instance {instance_id}" in flat(result.stderr)
    last_poll = max(n for n, (kind, what) in enumerate(log) if kind == "poll" and what.endswith(" terminated"))
    first_delete = min(n for n, (kind, what) in enumerate(log) if kind == "delete-group")
    assert log[first_delete] == ("delete-group", group_id)
    assert first_delete > last_poll, log  # the group went only after both instances were gone
    assert snapshot(plain) == before
