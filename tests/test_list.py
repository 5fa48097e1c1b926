"""`list` (issue 3): one row per deployment from tags alone, in one region or every EI region, as a
table or one JSON document on stdout; partial deployments show; pages are followed."""
from __future__ import annotations

from datetime import timedelta

import pytest

from amazonei_setup.core import catalog, tags
from tests.conftest import ACCOUNT, REGION, SSH_CIDR, inject, record, setup_args

KEYS = {"name", "region", "instance_id", "state", "instance_type", "accelerator_type", "public_dns", "launched",
        "age_hours", "hourly_usd", "cost_so_far_usd"}
OTHER_REGION = "eu-west-1"


def said(result) -> str:
    """stderr as one line: the console wraps at 100 columns, sentences must not depend on where."""
    return " ".join(result.stderr.split())


def shown(result) -> str:
    """The text result (stdout) as one line."""
    return " ".join(result.stdout.split())


def setup(cli, name: str, *extra: str) -> dict:
    created = cli(*setup_args(name, *extra), "--output", "json")
    assert created.code == 0, created.stderr
    return created.json["result"]


def listing(cli, *extra: str, region: str = REGION):
    return cli("list", "--region", region, *extra)


def our_tags(name: str) -> list[dict]:
    """The tags setup writes, with moto's caller as the owner (as discover.owner_of gives it)."""
    return tags.tag_list(name, f"arn:aws:sts::{ACCOUNT}:user/moto")


def launched_hours_ago(instance_id: str, hours: float) -> None:
    from moto.backends import get_backend
    from moto.core.utils import utcnow

    get_backend("ec2")[ACCOUNT][REGION].get_instance(instance_id).launch_time = utcnow() - timedelta(hours=hours)


def default_vpc(aws) -> str:
    return aws.ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]


@pytest.fixture
def two(cli, account) -> dict[str, dict]:
    a = setup(cli, "a")
    bee = setup(cli, "bee", "--accelerator-type", "eia1.large", "--new-key")
    return {"a": a, "bee": bee}


# ---- one region ------------------------------------------------------------------------------------

def test_json_lists_both_deployments_with_cost(cli, account, two):
    launched_hours_ago(two["a"]["instance_id"], 10)

    listed = listing(cli, "--output", "json")

    assert listed.code == 0, listed.stderr
    doc = listed.json
    assert (doc["command"], doc["status"]) == ("list", "success")
    assert doc["result"]["regions"] == [REGION]
    rows = {r["name"]: r for r in doc["result"]["deployments"]}
    assert list(rows) == ["a", "bee"]  # sorted by name
    for name, row in rows.items():
        assert set(row) == KEYS
        made = two[name]
        assert row["region"] == REGION
        assert row["instance_id"] == made["instance_id"]
        assert row["state"] == "running"
        assert row["instance_type"] == "m5.xlarge"
        assert row["accelerator_type"] == made["accelerator_type"]
        assert row["public_dns"] == made["public_dns"] and row["public_dns"]
        assert row["hourly_usd"] == catalog.hourly_usd("m5.xlarge", made["accelerator_type"])
    assert rows["a"]["accelerator_type"] == "eia2.medium" and rows["bee"]["accelerator_type"] == "eia1.large"
    assert rows["a"]["age_hours"] == pytest.approx(10, abs=0.01)
    assert rows["a"]["cost_so_far_usd"] == pytest.approx(round(10 * rows["a"]["hourly_usd"], 2), abs=0.01)
    assert 0 <= rows["bee"]["age_hours"] < 0.1
    assert rows["bee"]["cost_so_far_usd"] == pytest.approx(0, abs=0.01)


def test_table_shows_each_deployment(cli, account, two):
    listed = listing(cli)

    assert listed.code == 0, listed.stderr
    assert listed.stderr == ""  # the table is the result: stdout; nothing else is said
    for name, made in two.items():
        line = next((ln for ln in listed.stdout.splitlines() if made["instance_id"] in ln), None)
        assert line is not None, f"instance id {made['instance_id']} not shown whole:\n{listed.stdout}"
        assert line.split()[0] == name
    assert shown(listed).count("running") == 2

    assert cli("teardown", "--region", REGION, "--name", "a", "--yes").code == 0
    after = listing(cli, "--output", "json")
    assert [r["name"] for r in after.json["result"]["deployments"]] == ["bee"]


def test_partial_deployment_shows_as_no_instance(cli, account):
    setup(cli, "a")
    account.ec2.create_security_group(
        GroupName="amazonei-setup-p", Description="left by a killed setup", VpcId=default_vpc(account),
        TagSpecifications=[{"ResourceType": "security-group", "Tags": our_tags("p")}])

    listed = listing(cli, "--output", "json")
    table = listing(cli)

    assert listed.code == 0, listed.stderr
    rows = {r["name"]: r for r in listed.json["result"]["deployments"]}
    assert set(rows) == {"a", "p"}
    assert rows["p"] == {"name": "p", "region": REGION, "instance_id": "", "state": "no instance (partial)",
                         "instance_type": "", "accelerator_type": "", "public_dns": "", "launched": "",
                         "age_hours": None, "hourly_usd": None, "cost_so_far_usd": None, "left": ["security group"],
                         "teardown_command": f"python amazonei_setup.py teardown --region {REGION} --name p"}
    assert table.code == 0
    assert "no instance (partial)" in shown(table)


def test_hand_made_resources_are_not_deployments(cli, account):
    vpc = default_vpc(account)
    account.ec2.create_security_group(GroupName="amazonei-setup-x", Description="mine", VpcId=vpc)
    image = account.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    account.ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="m5.xlarge",
                              TagSpecifications=[{"ResourceType": "instance",
                                                  "Tags": [{"Key": tags.DEPLOYMENT, "Value": "x"}]}])

    listed = listing(cli, "--output", "json")

    assert listed.code == 0, listed.stderr
    assert listed.json["result"]["deployments"] == []
    assert "No deployments in us-west-2" in shown(listing(cli))


# ---- regions ---------------------------------------------------------------------------------------

def test_all_regions_queries_every_enabled_region_and_finds_each_deployment(cli, account):
    from amazonei_setup.sandbox.account import seed_deep_learning_amis

    seed_deep_learning_amis(ACCOUNT, OTHER_REGION)
    a = setup(cli, "a")
    made = cli("--region", OTHER_REGION, "--instance-type", "m5.xlarge", "--yes", "--name", "eu", "--ssh-cidr",
               SSH_CIDR, "--output", "json")
    assert made.code == 0, made.stderr
    queried: set[str] = set()

    def seen(params, context, **_):
        queried.add(context["client_region"])

    # Clients for the other regions are built during the command: hook the session they come from too.
    for emitter in (account.session.get_component("event_emitter"), account.ec2.meta.events):
        emitter.register("before-call.ec2.DescribeInstances", seen)

    listed = cli("list", "--all-regions", "--output", "json")

    assert listed.code == 0, listed.stderr
    enabled = {r["RegionName"] for r in account.ec2.describe_regions()["Regions"]}
    regions = listed.json["result"]["regions"]
    assert set(regions) == enabled and regions[:len(catalog.EI_REGIONS)] == list(catalog.EI_REGIONS)
    assert queried == enabled
    rows = [(r["name"], r["region"], r["instance_id"]) for r in listed.json["result"]["deployments"]]
    assert sorted(rows) == sorted([("a", REGION, a["instance_id"]),
                                   ("eu", OTHER_REGION, made.json["result"]["instance_id"])])

    table = cli("list", "--all-regions")
    assert table.code == 0, table.stderr
    assert OTHER_REGION in table.stdout and REGION in table.stdout

    # without --all-regions, only the region asked for
    here = listing(cli, "--output", "json")
    assert [(r["name"], r["region"]) for r in here.json["result"]["deployments"]] == [("a", REGION)]
    there = listing(cli, "--output", "json", region=OTHER_REGION)
    assert [(r["name"], r["region"]) for r in there.json["result"]["deployments"]] == [("eu", OTHER_REGION)]


def test_unknown_region_is_a_usage_error_before_any_call(cli, account):
    calls = record(account.ec2, "DescribeInstances")

    refused = listing(cli, "--output", "json", region="us-west-9")

    assert refused.code == 2
    assert "Traceback" not in refused.stderr
    assert "us-west-9" in said(refused)
    assert refused.json["status"] == "error" and refused.json["error"]["code"] == "usage"
    assert calls == []


def test_a_region_without_ei_can_be_listed(cli, account):
    """inf2 and gpu deployments may live outside the EI regions: list must reach them."""
    listed = listing(cli, "--output", "json", region="eu-central-1")

    assert listed.code == 0, listed.stderr
    assert listed.json["result"] == {"regions": ["eu-central-1"], "deployments": []}


def test_denied_listing_is_one_sentence_naming_the_permission(cli, account):
    inject(account.ec2, "DescribeInstances", "UnauthorizedOperation", "You are not authorized.")

    denied = listing(cli, "--output", "json")

    assert denied.code == 1
    assert "Traceback" not in denied.stderr
    assert "ec2:DescribeInstances" in said(denied)
    assert denied.json["status"] == "error" and denied.json["error"]["code"] == "access-denied"


# ---- pagination ------------------------------------------------------------------------------------

def test_more_than_a_page_of_instances_and_groups_are_all_listed(cli, account):
    """moto pages describe_instances at 100 reservations (as AWS pages large answers); it never pages
    describe_security_groups, so only the instance paginator is really exercised here."""
    ec2 = account.ec2
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    vpc = default_vpc(account)
    count = 105
    for n in range(count):
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="m5.xlarge", TagSpecifications=[
            {"ResourceType": "instance", "Tags": our_tags(f"bulk-{n:03}")}])
        ec2.create_security_group(GroupName=f"amazonei-setup-grp-{n:03}", Description="ours", VpcId=vpc,
                                  TagSpecifications=[{"ResourceType": "security-group",
                                                      "Tags": our_tags(f"grp-{n:03}")}])
    pages = record(ec2, "DescribeInstances")

    listed = listing(cli, "--output", "json")

    assert listed.code == 0, listed.stderr
    rows = listed.json["result"]["deployments"]
    assert len(pages) >= 2  # the paginator followed NextToken
    assert {r["name"] for r in rows if r["instance_id"]} == {f"bulk-{n:03}" for n in range(count)}
    assert {r["name"] for r in rows if not r["instance_id"]} == {f"grp-{n:03}" for n in range(count)}
    assert len(rows) == 2 * count
