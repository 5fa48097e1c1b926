"""Spot hosts (`--spot`, `--spot auto`): a persistent Spot request that stops when interrupted, the Spot vCPU
quotas, the fallback to On-Demand, and every path that must find the request again (rollback, teardown, list,
status).

moto's run_instances honours InstanceMarketOptions only so far as to mark the instance `InstanceLifecycle: spot`:
it makes no Spot request (no SpotInstanceRequestId; describe_spot_instance_requests stays empty). The `spot_market`
fixture adds what AWS does: one request per Spot instance, tagged by the launch's 'spot-instances-request'
TagSpecifications, active, holding the instance.
"""
from __future__ import annotations

import dataclasses
import shlex
from unittest import mock

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from amazonei_setup.core import capacity
from tests.conftest import ACCOUNT, REGION, SSH_CIDR, record, snapshot

NAME = "lab-spot"


@pytest.fixture
def alt(account):
    from amazonei_setup.sandbox.account import seed_alternative_amis

    return seed_alternative_amis(ACCOUNT, REGION)


def spot_args(*extra: str, name: str = NAME) -> list[str]:
    return ["--region", REGION, "--accelerator", "gpu", "--instance-type", "g5.xlarge", "--yes", "--name", name,
            "--ssh-cidr", SSH_CIDR, *extra]


def words(text: str) -> str:
    return " ".join(text.split())


def backend():
    from moto.ec2.models import ec2_backends

    return ec2_backends[ACCOUNT][REGION]


@pytest.fixture
def spot_market(account):
    """RunInstances with InstanceMarketOptions makes a Spot request, as AWS does (moto makes none). Returns the
    RunInstances parameters seen."""
    from moto.ec2.models.spot_requests import SpotInstanceRequest

    seen = record(account.ec2, "RunInstances")

    def after(parsed, **_):
        params = seen[-1] if seen else {}
        if "InstanceMarketOptions" not in params or "Instances" not in parsed:
            return
        options = params["InstanceMarketOptions"].get("SpotOptions", {})
        tags = {spec["ResourceType"]: {t["Key"]: t["Value"] for t in spec["Tags"]}
                for spec in params.get("TagSpecifications", [])}
        ec2 = backend()
        for each in parsed["Instances"]:
            instance = ec2.get_instance(each["InstanceId"])
            with mock.patch.object(SpotInstanceRequest, "launch_instance", lambda self, i=instance: i):
                (request,) = ec2.request_spot_instances(
                    price="", image_id=params["ImageId"], count=1,
                    spot_instance_type=options.get("SpotInstanceType", "one-time"), valid_from=None,
                    valid_until=None, launch_group=None, availability_zone_group=None, key_name=params["KeyName"],
                    security_groups=[], user_data=None, instance_type=params["InstanceType"], placement=None,
                    kernel_id=None, ramdisk_id=None, monitoring_enabled=False, subnet_id="", tags=tags,
                    instance_interruption_behaviour=options.get("InstanceInterruptionBehavior"))
            each["SpotInstanceRequestId"] = request.id

    account.ec2.meta.events.register("after-call.ec2.RunInstances", after)
    return seen


def spot_requests(account, name: str = NAME) -> list[dict]:
    found = account.ec2.describe_spot_instance_requests(
        Filters=[{"Name": "tag:amazonei-setup:deployment", "Values": [name]}])["SpotInstanceRequests"]
    return [r for r in found if r["State"] in ("open", "active", "disabled")]


def live(account) -> list[dict]:
    reservations = account.ec2.describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]}])["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def refuse_spot(account, code: str, message: str) -> list[dict]:
    """RunInstances refused whenever it asks for Spot (the On-Demand launch goes through)."""
    refused: list[dict] = []

    def hook(params, **_):
        if "InstanceMarketOptions" in params:
            refused.append(params)
            raise ClientError({"Error": {"Code": code, "Message": message},
                               "ResponseMetadata": {"HTTPStatusCode": 400}}, "RunInstances")

    account.ec2.meta.events.register("before-parameter-build.ec2.RunInstances", hook)
    return refused


# ---- the quotas --------------------------------------------------------------------------------------------------

def test_spot_launches_read_the_spot_vcpu_quotas():
    # Service Quotas codes of EC2's Spot vCPU quotas ("All <family> Spot Instance Requests"); see capacity.py
    assert capacity.quota_code("m5.xlarge", spot=True) == "L-34B43A08"
    assert capacity.quota_code("g5.xlarge", spot=True) == "L-3819A6DF"
    assert capacity.quota_code("inf2.xlarge", spot=True) == "L-B5D1601B"
    assert capacity.quota_code("p3.2xlarge", spot=True) == "L-7212CCBC"
    assert capacity.quota_code("g5.xlarge") == "L-DB2E81BA"  # On-Demand unchanged
    assert capacity.QUOTA_NAMES["L-3819A6DF"] == "All G and VT Spot Instance Requests"


def test_the_spot_preflight_refuses_a_spot_quota_too_low(cli, account, alt, spot_market):
    from amazonei_setup.aws.resources import quota

    asked = []

    def read(client, code):
        asked.append(code)
        return capacity.QuotaReading(0.0 if code == "L-3819A6DF" else 64.0)

    before = snapshot(account)
    with mock.patch.object(quota, "read_quota", read):
        result = cli(*spot_args("--spot"))
    assert result.code == 1
    assert "L-3819A6DF" in asked and "L-DB2E81BA" not in asked
    assert "All G and VT Spot Instance Requests" in words(result.stderr)
    assert snapshot(account) == before


# ---- setup, teardown ---------------------------------------------------------------------------------------------

def test_spot_setup_is_a_persistent_request_that_stops_and_teardown_cancels_it(cli, account, alt, spot_market):
    before = snapshot(account)
    result = cli(*spot_args("--spot"), "--output", "json")
    assert result.code == 0, result.stderr
    (launch,) = spot_market
    assert launch["InstanceMarketOptions"] == {"MarketType": "spot", "SpotOptions": {
        "SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"}}
    kinds = {spec["ResourceType"] for spec in launch["TagSpecifications"]}
    assert "spot-instances-request" in kinds
    (instance,) = live(account)
    assert instance["InstanceLifecycle"] == "spot"
    (request,) = spot_requests(account)
    assert request["InstanceId"] == instance["InstanceId"]
    data = result.json["result"]
    assert data["market"] == "spot"
    assert data["spot"] == "required"
    assert (data["quota"]["code"], data["quota"]["status"]) == ("L-3819A6DF", "ok")  # the Spot quota was read

    listed = cli("list", "--region", REGION, "--output", "json")
    (row,) = listed.json["result"]["deployments"]
    assert row["market"] == "spot"
    assert row["spot_hourly_usd"] == 0.00001  # moto's Spot price, from DescribeSpotPriceHistory
    assert "0.000 spot" in cli("list", "--region", REGION).stdout

    gone = cli("teardown", "--region", REGION, "--name", NAME, "--yes")
    assert gone.code == 0, gone.stderr
    assert spot_requests(account) == []  # cancelled: else EC2 would launch the instance again
    assert "spot-request" in gone.stdout + gone.stderr
    assert snapshot(account) == before


def test_a_spot_request_left_without_its_instance_is_a_partial_deployment_teardown_cancels(
        cli, account, alt, spot_market):
    before = snapshot(account)
    assert cli(*spot_args("--spot")).code == 0
    (instance,) = live(account)
    account.ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])  # the request stays, and would relaunch
    listed = cli("list", "--region", REGION, "--output", "json")
    (row,) = [r for r in listed.json["result"]["deployments"] if r["name"] == NAME]
    assert row["state"] == "no instance (partial)" and "Spot request" in row["left"]
    gone = cli("teardown", "--region", REGION, "--name", NAME, "--yes")
    assert gone.code == 0, gone.stderr
    assert spot_requests(account) == []
    assert snapshot(account) == before


def test_the_plan_shows_spot_next_to_on_demand_and_its_command_keeps_spot_auto(cli, account, alt, spot_market):
    import dataclasses

    from amazonei_setup.core.plan import Plan

    def latest(parsed, **_):  # moto's Spot prices are $0.00001 from 2006: a price worth showing
        for entry in parsed.get("SpotPriceHistory", []):
            entry["SpotPrice"] = "0.3018"

    account.ec2.meta.events.register("after-call.ec2.DescribeSpotPriceHistory", latest)
    result = cli(*spot_args("--spot", "auto", "--dry-run"))
    assert result.code == 0, result.stderr
    shown = words(result.stderr)
    assert "Spot $0.3018/h now (On-Demand $1.0060/h)" in shown
    assert "On-Demand if EC2 refuses Spot" in shown
    planned = cli(*spot_args("--spot", "auto", "--dry-run"), "--output", "json").json["result"]["plan"]
    assert (planned["spot"], planned["spot_hourly_usd"]) == ("auto", 0.3018)
    plan = Plan(**{f.name: planned[f.name] for f in dataclasses.fields(Plan)})
    assert "--spot auto --yes" in plan.equivalent_command()
    assert "--spot" not in dataclasses.replace(plan, spot=None).equivalent_command()
    assert "--spot --yes" in dataclasses.replace(plan, spot="required").equivalent_command()


def launched_on_demand_after_a_refusal(cli, account, code: str, message: str):
    """setup --spot auto with Spot refused once by `code`: one On-Demand instance and no request; the result."""
    refused = refuse_spot(account, code, message)
    result = cli(*spot_args("--spot", "auto"), "--output", "json")
    assert result.code == 0, result.stderr
    assert len(refused) == 1
    (instance,) = live(account)
    assert instance.get("InstanceLifecycle") != "spot"
    assert result.json["result"]["market"] == "on-demand"
    return result


def test_spot_auto_falls_back_to_on_demand_when_spot_is_refused(cli, account, alt, spot_market):
    result = launched_on_demand_after_a_refusal(cli, account, "InsufficientInstanceCapacity",
                                                "There is no Spot capacity available that matches your request.")
    data = result.json["result"]
    assert "no Spot capacity" in data["spot_refused"]
    assert "On-Demand" in words(result.stderr)
    assert spot_requests(account) == []


def test_spot_only_refused_fails_naming_spot_auto_and_leaves_nothing(cli, account, alt, spot_market):
    before = snapshot(account)
    refuse_spot(account, "MaxSpotInstanceCountExceeded", "Max spot instance count exceeded")
    result = cli(*spot_args("--spot"))
    assert result.code == 1
    message = words(result.stderr)
    assert "--spot auto" in message and "Traceback" not in message
    assert snapshot(account) == before


def test_a_spot_request_whose_reply_was_lost_is_cancelled_by_the_rollback(cli, account, alt, spot_market):
    before = snapshot(account)

    def lose(**_):
        raise ReadTimeoutError(endpoint_url="https://ec2.us-west-2.amazonaws.com")

    account.ec2.meta.events.register("after-call.ec2.RunInstances", lose)  # after spot_market's hook
    result = cli(*spot_args("--spot"))
    assert result.code == 1
    assert spot_requests(account) == []
    assert snapshot(account) == before


def test_spot_is_refused_with_export_saying_why(cli, account, alt):
    result = cli("export", *spot_args("--spot"))
    assert result.code == 2
    assert "--spot" in result.stderr and "stack" in result.stderr


# ---- day two -------------------------------------------------------------------------------------------------------

def test_status_says_a_spot_interruption_stopped_the_instance(cli, account, alt, spot_market):
    assert cli(*spot_args("--spot")).code == 0
    (instance,) = live(account)
    from moto.ec2.models.instances import StateReason

    moto_instance = backend().get_instance(instance["InstanceId"])
    moto_instance.stop()  # then as a Spot interruption leaves it (EC2 API reference, StateReason)
    moto_instance.state_reason = StateReason("Server.SpotInstanceShutdown: Spot Instance shutdown",
                                             "Server.SpotInstanceShutdown")
    result = cli("status", "--region", REGION, "--name", NAME)
    assert result.code == 0, result.stderr
    shown = words(result.stdout)
    assert "Spot interruption" in shown
    assert "spot" in shown.lower()


def test_start_says_when_spot_capacity_is_not_there_yet(cli, account, alt, spot_market):
    assert cli(*spot_args("--spot")).code == 0
    assert cli("stop", "--region", REGION, "--name", NAME).code == 0
    from tests.conftest import inject

    inject(account.ec2, "StartInstances", "InsufficientInstanceCapacity", "Insufficient capacity.")
    result = cli("start", "--region", REGION, "--name", NAME)
    assert result.code == 1
    message = words(result.stderr)
    assert "Spot capacity for g5.xlarge is not there yet" in message and "run start again later" in message
    assert "Traceback" not in message
    (instance,) = live(account)
    assert instance["State"]["Name"] == "stopped"


# ---- cost --------------------------------------------------------------------------------------------------------

def test_cost_spot_shows_todays_spot_price_next_to_on_demand(cli, account):
    def latest(parsed, **_):
        prices = {"us-west-2a": "0.3518", "us-west-2b": "0.3018", "us-west-2c": "0.4100"}
        for entry in parsed.get("SpotPriceHistory", []):
            entry["SpotPrice"] = prices.get(entry["AvailabilityZone"], "0.5")

    account.ec2.meta.events.register("after-call.ec2.DescribeSpotPriceHistory", latest)
    result = cli("cost", "--instance-type", "g5.xlarge", "--region", REGION, "--spot", "--output", "json")
    assert result.code == 0, result.stderr
    spot = result.json["result"]["spot"]
    assert spot["g5.xlarge"] == {"hourly_usd": 0.3018, "zone": "us-west-2b", "on_demand_hourly_usd": 1.006}
    text = words(cli("cost", "--instance-type", "g5.xlarge", "--region", REGION, "--spot").stdout)
    assert "Spot now: g5.xlarge $0.3018/h in us-west-2b (On-Demand $1.0060/h, 70% less)" in text


def test_start_leaves_an_interrupted_spot_instance_to_ec2_and_says_so(cli, account, alt, spot_market):
    from moto.ec2.models.instances import StateReason

    assert cli(*spot_args("--spot")).code == 0
    (instance,) = live(account)
    moto_instance = backend().get_instance(instance["InstanceId"])
    moto_instance.stop()
    moto_instance.state_reason = StateReason("Server.SpotInstanceShutdown: Spot Instance shutdown",
                                             "Server.SpotInstanceShutdown")
    starts = record(account.ec2, "StartInstances")
    result = cli("start", "--region", REGION, "--name", NAME)
    assert result.code == 1
    assert starts == []  # only EC2 may restart an interrupted Spot instance
    message = words(result.stderr)
    assert "stopped by a Spot interruption" in message and "only EC2 can start it" in message
    assert "Traceback" not in message


# ---- the wizard ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("answer, expected", [(None, None), ("required", "required"), ("auto", "auto")])
def test_the_wizard_asks_on_demand_or_spot_for_an_alternative_and_its_command_repeats_it(isolated_env, answer,
                                                                                        expected):
    from amazonei_setup.cli.wizard import DefaultsAsker, SetupRequest, build_plan
    from tests.test_wizard import AL44, ScriptedAsker, hand_facts, image, request_from

    facts = hand_facts(
        instance_type=None, requested_image=image(AL44, "2021-06-01", "ami-custom"),
        family_images={"gpu": image("Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 1", "2025-01-01",
                                    "ami-gpu")},
        offerings={"g5.xlarge": ("us-west-2a", "us-west-2b")})
    asker = ScriptedAsker(**({"spot": answer} if answer else {}))
    plan = build_plan(SetupRequest(instance_type="g5.xlarge", name="spotty", family="gpu"), facts, asker)
    question = asker.question("--spot")
    assert question.default is None and "well under half" in question.hint
    assert [o.value for o in question.options] == [None, "required", "auto"]
    assert plan.spot == expected
    command = plan.equivalent_command("python -m amazonei_setup", " --sandbox")
    argv = shlex.split(command)[4:]  # the command's flags, as cli.parse reads them
    from amazonei_setup.cli.main import parse

    again = build_plan(dataclasses.replace(request_from(argv), spot=parse(argv).spot), facts, DefaultsAsker())
    assert again == plan, command


def test_the_wizard_does_not_ask_about_spot_when_the_flag_says_or_for_ei(isolated_env):
    from amazonei_setup.cli.wizard import SetupRequest, build_plan
    from tests.test_wizard import ScriptedAsker, hand_facts

    asker = ScriptedAsker()
    build_plan(SetupRequest(instance_type="m5.xlarge"), hand_facts(key_pairs=["mykey"]), asker)
    assert "--spot" not in asker.flags


def test_spot_chosen_at_the_prompt_is_priced_and_checked_against_the_spot_quota(cli, account, alt, spot_market):
    from tests.test_wizard import ScriptedAsker

    def latest(parsed, **_):
        for entry in parsed.get("SpotPriceHistory", []):
            entry["SpotPrice"] = "0.3018"

    account.ec2.meta.events.register("after-call.ec2.DescribeSpotPriceHistory", latest)
    asker = ScriptedAsker(spot="auto")
    result = cli("--region", REGION, "--accelerator", "gpu", "--instance-type", "g5.xlarge", "--name", NAME,
                 "--ssh-cidr", SSH_CIDR, "--new-key", "--output", "json", tty=True, asker=asker)
    assert result.code == 0, result.stderr
    data = result.json["result"]
    assert (data["spot"], data["market"], data["spot_hourly_usd"]) == ("auto", "spot", 0.3018)
    assert (data["quota"]["code"], data["quota"]["status"]) == ("L-3819A6DF", "ok")


def test_a_policy_without_the_spot_reads_still_lists_and_tears_down_an_on_demand_deployment(cli, account, alt):
    from tests.conftest import inject

    before = snapshot(account)
    assert cli(*spot_args()).code == 0  # On-Demand
    inject(account.ec2, "DescribeSpotInstanceRequests", "UnauthorizedOperation",
           "You are not authorized to perform this operation. User: x is not authorized to perform: "
           "ec2:DescribeSpotInstanceRequests")
    listed = cli("list", "--region", REGION)
    assert listed.code == 0, listed.stderr
    assert "ec2:DescribeSpotInstanceRequests" in words(listed.stderr)
    gone = cli("teardown", "--region", REGION, "--name", NAME, "--yes")
    assert gone.code == 0, gone.stderr
    assert "Spot requests" in words(gone.stderr)
    assert snapshot(account) == before


def test_stop_and_idle_stop_work_on_a_spot_deployment(cli, account, alt, spot_market):
    assert cli(*spot_args("--spot")).code == 0
    assert cli("idle-stop", "--region", REGION, "--name", NAME, "60").code == 0
    stopped = cli("stop", "--region", REGION, "--name", NAME)
    assert stopped.code == 0, stopped.stderr
    (instance,) = live(account)
    assert instance["State"]["Name"] == "stopped"
    assert len(spot_requests(account)) == 1  # a persistent request holds a stopped instance (state "disabled" in AWS)
    assert cli("start", "--region", REGION, "--name", NAME).code == 0


def test_the_ready_result_says_what_the_deployment_runs_on(cli, account, alt, spot_market):
    refuse_spot(account, "SpotMaxPriceTooLow", "Your Spot request price of 0.1 is lower than the minimum required")
    result = cli(*spot_args("--spot", "auto"))
    assert result.code == 0, result.stderr
    shown = words(result.stdout)
    assert "Market On-Demand: EC2 refused Spot (the Spot price is above the maximum price" in shown


def test_cost_compare_spot_shows_spot_and_on_demand_side_by_side_and_a_regions_table_refuses_spot(cli, account):
    def latest(parsed, **_):
        for entry in parsed.get("SpotPriceHistory", []):
            entry["SpotPrice"] = {"g4dn.xlarge": "0.2000", "g5.xlarge": "0.3000"}.get(entry["InstanceType"], "0.5")

    account.ec2.meta.events.register("after-call.ec2.DescribeSpotPriceHistory", latest)
    compared = cli("cost", "--compare", "--spot", "--instance-type", "g4dn.xlarge", "--instance-type", "g5.xlarge",
                   "--region", REGION, "--output", "json")
    assert compared.code == 0, compared.stderr
    spot = compared.json["result"]["spot"]
    assert {t: (p["hourly_usd"], p["on_demand_hourly_usd"]) for t, p in spot.items()} == {
        "g4dn.xlarge": (0.2, 0.526), "g5.xlarge": (0.3, 1.006)}

    by_region = cli("cost", "--compare", "--accelerator", "gpu", "--spot")  # before: --spot silently ignored
    assert by_region.code == 2 and "--spot prices types in one region" in words(by_region.stderr)


# ---- the service-linked role EC2 needs for Spot --------------------------------------------------------------------

SLR_REFUSAL = ("AuthFailure.ServiceLinkedRoleCreationNotPermitted",
               "The provided credentials do not have permission to create the service-linked role for EC2 Spot "
               "Instances.")  # what EC2 answers the first Spot launch of an account whose caller may not create it


def test_a_spot_launch_ec2_cannot_make_its_service_linked_role_for_says_how_to_fix_it_and_leaves_nothing(
        cli, account, alt, spot_market):
    before = snapshot(account)
    refused = refuse_spot(account, *SLR_REFUSAL)
    result = cli(*spot_args("--spot"), "--output", "json")
    assert result.code == 1
    assert refused  # the Spot launch was asked, and refused
    message = words(result.stderr)
    assert ("EC2 needs the service-linked role AWSServiceRoleForEC2Spot to launch Spot instances and may not create "
            "it for your AWS identity: run `aws iam create-service-linked-role --aws-service-name spot.amazonaws.com` "
            "once, or grant iam:CreateServiceLinkedRole for spot.amazonaws.com (the `permissions` command prints it), "
            "then run setup again") in message
    assert "Traceback" not in message
    assert result.json["error"]["code"] == "spot-service-linked-role"
    assert snapshot(account) == before  # rolled back: role, profile, key pair, group
    assert spot_requests(account) == []
    assert cli("list", "--region", REGION, "--output", "json").json["result"]["deployments"] == []


def test_spot_auto_launches_on_demand_when_ec2_cannot_make_its_spot_role_and_says_how_to_allow_spot(
        cli, account, alt, spot_market):
    result = launched_on_demand_after_a_refusal(cli, account, *SLR_REFUSAL)
    data = result.json["result"]
    fix = "run `aws iam create-service-linked-role --aws-service-name spot.amazonaws.com` once to allow Spot"
    assert "AWSServiceRoleForEC2Spot" in data["spot_refused"] and fix in data["spot_refused"]
    assert fix in words(result.stderr) and "launching On-Demand instead (--spot auto)" in words(result.stderr)
    assert spot_requests(account) == []


def test_the_service_linked_role_command_names_the_profile_the_tool_was_given():
    from types import SimpleNamespace

    from amazonei_setup.aws.client import explain

    refusal = ClientError({"Error": {"Code": SLR_REFUSAL[0], "Message": SLR_REFUSAL[1]},
                           "ResponseMetadata": {"HTTPStatusCode": 403}}, "RunInstances")
    said = str(explain(refusal, SimpleNamespace(profile="my work")))
    assert "`aws iam create-service-linked-role --aws-service-name spot.amazonaws.com --profile 'my work'`" in said
    assert "--profile" not in str(explain(refusal))


def test_a_spot_request_ec2_does_not_cancel_keeps_its_instance_and_teardown_says_so(cli, account, alt, spot_market):
    """Cancelled is read back, not taken from the reply: terminating the instance of a request still live would make
    EC2 launch it again."""
    assert cli(*spot_args("--spot")).code == 0
    (instance,) = live(account)
    (request,) = spot_requests(account)

    def ignored(**_):  # EC2 answers that it cancelled, but the request stays active
        from botocore.awsrequest import AWSResponse

        return AWSResponse("https://ec2.invalid", 200, {}, None), {"CancelledSpotInstanceRequests": [
            {"SpotInstanceRequestId": request["SpotInstanceRequestId"], "State": "cancelled"}]}

    account.ec2.meta.events.register("before-call.ec2.CancelSpotInstanceRequests", ignored)
    gone = cli("teardown", "--region", REGION, "--name", NAME, "--yes")
    assert gone.code != 0 and "Traceback" not in gone.stderr
    assert spot_requests(account) == [request]
    assert request["SpotInstanceRequestId"] in gone.stderr and "Spot Requests" in gone.stderr
    assert [i["InstanceId"] for i in live(account)] == [instance["InstanceId"]]  # not terminated
    account.ec2.meta.events.unregister("before-call.ec2.CancelSpotInstanceRequests", ignored)
    again = cli("teardown", "--region", REGION, "--name", NAME, "--yes")
    assert again.code == 0, again.stderr
    assert spot_requests(account) == [] and live(account) == []
