"""Issue 17: AWS saying no. The On-Demand vCPU quota is checked before anything is created, and a zone without
capacity (or without the type) makes setup launch in the next zone of the VPC, the EI endpoint following it.

moto answers EC2's vCPU quotas only as the sandbox teaches it (sandbox.SANDBOX_VCPU_QUOTAS, through
make_moto_behave, which conftest applies to every test): a test sets a quota there, or makes Service Quotas refuse
with `inject`. moto never runs out of capacity: a `before-parameter-build` hook refuses RunInstances in chosen
subnets (it sees the API parameters, so the subnet; raising there, the call never reaches moto). Every test
asserts on what the user sees and on the mock account.
"""
from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from amazonei_setup.core import capacity
from amazonei_setup.core.facts import Subnet
from tests.conftest import REGION, inject, setup_args, snapshot
from tests.test_alternatives import alt, family_args  # noqa: F401 - `alt` is a fixture
from tests.test_faults import assert_clean_failure

NO_CAPACITY = ("InsufficientInstanceCapacity", "We currently do not have sufficient {type} capacity in the "
               "Availability Zone you requested ({az}). Our system will be working on provisioning additional "
               "capacity.")
NOT_OFFERED = ("Unsupported", "Your requested instance type ({type}) is not supported in your requested Availability "
               "Zone ({az}). Please retry your request by not specifying an Availability Zone.")


def words(text: str) -> str:
    return " ".join(text.split())


def real_ec2():
    """An uninstrumented client on the same moto account: what AWS holds, not what our hooks make it say."""
    return boto3.client("ec2", region_name=REGION)


def subnet_of(az: str) -> str:
    (subnet,) = [s["SubnetId"] for s in real_ec2().describe_subnets(
        Filters=[{"Name": "availability-zone", "Values": [az]}, {"Name": "default-for-az", "Values": ["true"]}])
        ["Subnets"]]
    return subnet


def refuse_in(client, zones: set[str] | None, refusal=NO_CAPACITY) -> list[dict]:
    """RunInstances answers `refusal` in the subnets of `zones` (None: every zone), as EC2 does when a zone has no
    capacity for the type; returns every RunInstances request (API parameters) in order."""
    az_of = {s["SubnetId"]: s["AvailabilityZone"] for s in real_ec2().describe_subnets()["Subnets"]}
    seen: list[dict] = []

    def hook(params, **_):
        seen.append(dict(params))
        subnet = (params.get("NetworkInterfaces") or [{}])[0].get("SubnetId") or params.get("SubnetId")
        az = az_of.get(subnet, "?")
        if zones is None or az in zones:
            code, message = refusal
            raise ClientError({"Error": {"Code": code, "Message": message.format(type=params["InstanceType"], az=az)},
                               "ResponseMetadata": {"HTTPStatusCode": 500}}, "RunInstances")

    client.meta.events.register("before-parameter-build.ec2.RunInstances", hook)
    return seen


def live_instances() -> list[dict]:
    reservations = real_ec2().describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def launch_by_hand(instance_type: str, count: int = 1) -> None:
    """Someone else's instances in the account: they count against its quota."""
    image = real_ec2().describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    real_ec2().run_instances(ImageId=image, InstanceType=instance_type, MinCount=count, MaxCount=count)


# ---- the quota preflight -----------------------------------------------------------------------------

def test_a_quota_too_low_stops_setup_before_anything_is_created(cli, account, quota_of):
    launch_by_hand("m5.xlarge")  # 4 vCPUs of the Standard quota already in use
    quota_of(capacity.STANDARD, 6)
    before = snapshot(account)
    result = cli(*setup_args("short"), "--output", "json")
    message = words(assert_clean_failure(result))
    assert result.json["error"]["code"] == "quota"
    assert "L-1216C47A" in message and "Running On-Demand Standard" in message
    assert "is 6 vCPUs, 4 are in use and m5.xlarge needs 4 more" in message
    assert ("aws service-quotas request-service-quota-increase --service-code ec2 --quota-code L-1216C47A "
            f"--desired-value 8 --region {REGION}") in message
    assert "nothing was created" in message
    assert snapshot(account) == before


def test_a_fleet_counts_every_instance_against_the_quota(cli, account, quota_of):
    quota_of(capacity.STANDARD, 10)  # room for two m5.xlarge, not three
    before = snapshot(account)
    result = cli(*setup_args("trio", "--count", "3"))
    message = words(assert_clean_failure(result))
    assert "3 x m5.xlarge needs 12 more" in message and "--desired-value 12" in message
    assert snapshot(account) == before
    assert cli(*setup_args("trio", "--count", "3", "--min-count", "2")).code == 0  # two fit: EC2 may launch fewer


def test_a_new_accounts_zero_inf_quota_is_named_for_inferentia(cli, account, alt, quota_of):  # noqa: F811
    quota_of(capacity.INFERENTIA, 0)  # what new accounts get for Inf and G
    before = snapshot(account)
    result = cli(*family_args("neuron", "inf2"))
    message = words(assert_clean_failure(result))
    assert "Running On-Demand Inf instances" in message and "--quota-code L-1945791B --desired-value 4" in message
    assert snapshot(account) == before


def test_export_deploy_checks_the_quota_before_creating_the_stack(cli, account, quota_of):
    quota_of(capacity.STANDARD, 4)
    before = snapshot(account)
    result = cli("export", *setup_args("stacked", "--count", "2"), "--deploy", "--output", "json")
    assert result.code == 1, result.stderr
    assert result.json["error"]["code"] == "quota" and "--desired-value 8" in result.json["error"]["message"]
    assert boto3.client("cloudformation", region_name=REGION).list_stacks()["StackSummaries"] == []
    assert snapshot(account) == before


@pytest.mark.parametrize("code", ["AccessDeniedException", "NoSuchResourceException"])
def test_a_quota_nobody_can_read_is_a_warning_and_setup_goes_on(cli, account, code):
    calls = inject(account.client("service-quotas"), "GetServiceQuota", code, "no")
    result = cli(*setup_args("unread"), "--output", "json")
    assert result.code == 0, result.stderr
    assert calls, "the quota was never asked for: this test could not fail"
    assert result.stderr.count("Could not check your EC2 vCPU quota") == 1
    assert "L-1216C47A" in words(result.stderr)
    quota = result.json["result"]["quota"]
    assert (quota["status"], quota["code"], quota["needed"], quota["value"]) == ("unknown", "L-1216C47A", 4, None)
    assert len(live_instances()) == 1


def test_the_quota_check_is_in_the_result(cli, account):
    launch_by_hand("c5.large")  # 2 vCPUs in use
    quota = cli(*setup_args("known"), "--output", "json").json["result"]["quota"]
    assert quota == {"code": "L-1216C47A", "name": capacity.QUOTA_NAMES[capacity.STANDARD], "value": 512,
                     "in_use": 2, "needed": 4, "status": "ok"}


def test_dry_run_reports_the_quota(cli, account, quota_of):
    ok = cli(*setup_args("dry", "--dry-run"))
    assert ok.code == 0, ok.stderr
    assert "vCPU quota L-1216C47A: 512 vCPUs, 0 in use, 4 needed: enough" in ok.stdout
    quota_of(capacity.STANDARD, 2)
    short = cli(*setup_args("dry", "--dry-run", "--output", "json"))
    assert short.code == 1
    assert short.json["result"]["quota"]["status"] == "short"
    assert "--quota-code L-1216C47A --desired-value 4" in short.json["result"]["quota"]["request_command"]
    assert snapshot(account)["instances"] == set()


# ---- zone failover ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("refusal", [NO_CAPACITY, NOT_OFFERED], ids=["no-capacity", "not-offered"])
def test_a_zone_without_capacity_moves_the_launch_and_the_endpoint_to_the_next(cli, account, refusal):
    requests = refuse_in(account.ec2, {"us-west-2a"}, refusal)
    result = cli(*setup_args("moved"), "--output", "json")
    assert result.code == 0, result.stderr
    (instance,) = live_instances()
    assert instance["Placement"]["AvailabilityZone"] == "us-west-2b"
    (endpoint,) = [e for e in real_ec2().describe_vpc_endpoints()["VpcEndpoints"] if e["State"].lower() == "available"]
    assert subnet_of("us-west-2b") in endpoint["SubnetIds"]  # the instance's zone reaches its accelerator
    data = result.json["result"]
    assert data["availability_zone"] == "us-west-2b"
    assert [(s["zone"], s["reason"]) for s in data["skipped_zones"]] == [
        ("us-west-2a", "no capacity" if refusal is NO_CAPACITY else "type not offered")]
    assert "us-west-2a refused m5.xlarge" in result.stderr and "trying us-west-2b" in result.stderr
    # Two requests, two tokens: EC2 refuses a seen token with other parameters; both are the run's own.
    first, second = requests
    assert first["ClientToken"] != second["ClientToken"]
    assert second["ClientToken"].startswith(first["ClientToken"])
    assert {t["Value"] for t in instance["Tags"] if t["Key"] == "amazonei-setup:run"} == {first["ClientToken"]}


def test_the_summary_says_where_it_launched_and_what_it_skipped(cli, account):
    refuse_in(account.ec2, {"us-west-2a", "us-west-2b"})
    result = cli(*setup_args("text"))
    assert result.code == 0, result.stderr
    assert "Launched in us-west-2c; skipped us-west-2a (no capacity), us-west-2b (no capacity)." in words(
        result.stdout)
    # The endpoint serves only the zone the instance runs in: the zones that refused left it again.
    (endpoint,) = [e for e in real_ec2().describe_vpc_endpoints()["VpcEndpoints"] if e["State"].lower() == "available"]
    assert set(endpoint["SubnetIds"]) == {subnet_of("us-west-2a"), subnet_of("us-west-2c")}


def test_every_zone_refusing_rolls_everything_back_and_names_the_regions(cli, account):
    before = snapshot(account)
    requests = refuse_in(account.ec2, None)
    result = cli(*setup_args("nowhere"), "--output", "json")
    message = words(assert_clean_failure(result))
    assert len(requests) == 4  # us-west-2a..d, each once
    for zone in ("us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"):
        assert f"{zone}: no capacity" in message
    assert "Regions that offer m5.xlarge: us-east-1, us-east-2, eu-west-1" in message
    assert "Everything this run created was removed" in message
    error = result.json["error"]
    assert error["code"] == "capacity"
    command = error["suggested_command"]
    assert command.startswith("python amazonei_setup.py --region us-east-1 --name nowhere --instance-type m5.xlarge")
    assert "--subnet-id" not in command and "--vpc-id" not in command  # those are us-west-2's
    assert snapshot(account) == before


def test_the_other_regions_command_keeps_every_choice_that_is_not_regional(cli, account):
    """plan.equivalent_command(region=...): the name, type, accelerator, SSH range, volume, idle auto-stop and key
    choice go along; the image, VPC, subnet and key pair of this region stay behind."""
    refuse_in(account.ec2, None)
    result = cli(*setup_args("elsewhere", "--idle-stop", "30", "--volume-size", "120"), "--output", "json")
    assert result.code == 1, result.stderr
    command = result.json["error"]["suggested_command"].split()
    assert command[command.index("--region") + 1] == "us-east-1"
    for flag, value in (("--idle-stop", "30"), ("--volume-size", "120"), ("--ssh-cidr", "198.51.100.4/32"),
                        ("--accelerator-type", "eia2.medium")):
        assert command[command.index(flag) + 1] == value, command
    assert "--new-key" in command and "--yes" in command
    assert not {"--subnet-id", "--vpc-id", "--ami-id", "--key-name"} & set(command)


def test_a_pinned_subnet_is_never_moved(cli, account):
    before = snapshot(account)
    requests = refuse_in(account.ec2, {"us-west-2a"})
    pinned = subnet_of("us-west-2a")
    result = cli(*setup_args("pinned", "--subnet-id", pinned), "--output", "json")
    message = words(assert_clean_failure(result))
    assert len(requests) == 1
    assert f"the Availability Zone of --subnet-id {pinned}" in message
    assert "drop --subnet-id to let setup try each zone" in message
    assert result.json["error"]["code"] == "capacity"
    assert snapshot(account) == before


def test_a_fleet_fails_over_as_one(cli, account):
    refuse_in(account.ec2, {"us-west-2a"})
    result = cli(*setup_args("fleet", "--count", "3"), "--output", "json")
    assert result.code == 0, result.stderr
    zones = [i["Placement"]["AvailabilityZone"] for i in live_instances()]
    assert zones == ["us-west-2b"] * 3
    assert result.json["result"]["launched_count"] == 3


def test_an_alternative_skips_zones_that_do_not_offer_its_type(cli, account, alt):  # noqa: F811
    # moto offers g4dn.xlarge in us-west-2a-c only: with a and b refusing, c is the last zone to try.
    requests = refuse_in(account.ec2, {"us-west-2a", "us-west-2b", "us-west-2c"})
    result = cli(*family_args("gpu-nowhere", "gpu"), "--output", "json")
    message = words(assert_clean_failure(result))
    assert len(requests) == 3
    assert "us-west-2d: g4dn.xlarge not offered" in message


@pytest.mark.parametrize("retired", [
    ("Unsupported", "Amazon Elastic Inference is no longer available."),
    ("Unsupported", "The accelerator type eia2.medium is not supported in your requested Availability Zone ({az})."),
])
def test_an_ei_refusal_is_not_taken_for_a_zone_without_capacity(cli, account, retired):
    requests = refuse_in(account.ec2, {"us-west-2a"}, retired)
    result = cli(*setup_args("retired"), "--output", "json")
    assert_clean_failure(result)
    assert result.json["error"]["code"] == "ei-unavailable"
    assert len(requests) == 1  # the account is refused, whatever the zone


def test_a_converging_rerun_checks_nothing_it_does_not_launch(cli, account, quota_of):
    assert cli(*setup_args("again")).code == 0
    quota_of(capacity.STANDARD, 0)  # the running instance needs no more
    again = cli(*setup_args("again"), "--output", "json")
    assert again.code == 0, again.stderr
    assert again.json["result"]["quota"]["needed"] == 0
    assert "Could not check" not in again.stderr


# ---- the rules, without an account ---------------------------------------------------------------------

@pytest.mark.parametrize("instance_type, code", [
    ("m5.xlarge", capacity.STANDARD), ("c7gn.16xlarge", capacity.STANDARD), ("i4i.large", capacity.STANDARD),
    ("inf2.xlarge", capacity.INFERENTIA), ("inf1.6xlarge", capacity.INFERENTIA), ("g4dn.xlarge", capacity.GPU_GRAPHICS),
    ("g6.xlarge", capacity.GPU_GRAPHICS), ("vt1.3xlarge", capacity.GPU_GRAPHICS), ("p3.2xlarge", capacity.P_FAMILY),
    ("trn1.2xlarge", None), ("dl1.24xlarge", None), ("u-6tb1.metal", None), ("mac2.metal", None), ("f1.2xlarge", None),
])
def test_each_family_counts_against_its_quota(instance_type, code):
    assert capacity.quota_code(instance_type) == code


@pytest.mark.parametrize("in_use, needed, desired", [(0, 4, 4), (4, 4, 8), (5, 4, 12), (0, 0, 4), (30, 32, 64)])
def test_the_asked_for_value_covers_all_in_multiples_of_four(in_use, needed, desired):
    assert capacity.desired_value(in_use, needed) == desired


def test_failover_zones_follow_the_planned_subnets_kind_and_the_offer():
    def subnet(id_, az, public=True, free=100, vpc="vpc-1"):
        return Subnet(id_, vpc, az, "", public, free, "")

    subnets = [subnet("a", "z-a"), subnet("b-private", "z-b", public=False, free=999), subnet("b", "z-b"),
               subnet("c", "z-c"), subnet("d", "z-d"), subnet("other-vpc", "z-e", vpc="vpc-2")]
    failover = capacity.failover_zones(subnets=subnets, vpc_id="vpc-1", planned_subnet_id="a", instance_type="t",
                                       offered_azs={"z-a", "z-b", "z-d"}, allowed_azs=None)
    assert [(z.subnet_id, z.az) for z in failover.zones] == [("b", "z-b"), ("d", "z-d")]
    assert failover.passed_over == (("z-c", "t not offered"),)
    ei = capacity.failover_zones(subnets=subnets, vpc_id="vpc-1", planned_subnet_id="a", instance_type="t",
                                 offered_azs=None, allowed_azs={"z-a", "z-c"})
    assert [z.az for z in ei.zones] == ["z-c"]



def answer_500_in(client, zones: set[str], refusal=NO_CAPACITY, status: int = 500,
                  times: int | None = None) -> dict[str, int]:
    """RunInstances in the subnets of `zones` gets EC2's real answer to a zone without capacity: HTTP 500 with an
    InsufficientInstanceCapacity error document. Sent from a `before-send` hook registered first, so the reply goes
    through botocore's parsing and retry logic as AWS's would. botocore still calls every before-send handler (it
    takes the first answer), moto's stub among them, which would perform the launch: the refused request's URL is
    pointed at a host moto does not serve first, so moto passes. Returns how many RunInstances requests each subnet
    received (a retry in place counts again)."""
    from urllib.parse import parse_qs

    from botocore.awsrequest import AWSResponse

    az_of = {s["SubnetId"]: s["AvailabilityZone"] for s in real_ec2().describe_subnets()["Subnets"]}
    sent: dict[str, int] = {}

    class Raw:
        def __init__(self, body: bytes):
            self.body = body

        def stream(self, **_):
            yield self.body

    def hook(request, **_):
        body = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
        subnet = parse_qs(body).get("NetworkInterface.1.SubnetId", ["?"])[0]
        sent[subnet] = sent.get(subnet, 0) + 1
        if az_of.get(subnet) not in zones or (times is not None and sent[subnet] > times):
            return None  # moto answers
        code, message = refusal
        document = (f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{code}</Code><Message>'
                    f'{message.format(type="m5.xlarge", az=az_of[subnet])}</Message></Error></Errors>'
                    '<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>').encode()
        url, request.url = request.url, "https://refused.invalid/"  # moto's stub answers None: nothing launched
        return AWSResponse(url, status, {"Content-Type": "text/xml"}, Raw(document))

    client.meta.events.register_first("before-send.ec2.RunInstances", hook)
    return sent


def test_a_zone_answering_500_no_capacity_is_asked_once_then_the_next_zone_at_once(cli, account):
    """EC2 answers InsufficientInstanceCapacity with HTTP 500, which botocore retries in place (the same zone, up to
    four more times, with backoff): the launch goes to the next zone after the first refusal."""
    sent = answer_500_in(account.ec2, {"us-west-2a"})
    result = cli(*setup_args("moved"), "--output", "json")
    assert result.code == 0, result.stderr
    assert result.json["result"]["availability_zone"] == "us-west-2b"
    assert sent == {subnet_of("us-west-2a"): 1, subnet_of("us-west-2b"): 1}
    assert [i["Placement"]["AvailabilityZone"] for i in live_instances()] == ["us-west-2b"]


def test_a_throttled_launch_is_still_retried_in_place(cli, account):
    sent = answer_500_in(account.ec2, {"us-west-2a"}, ("RequestLimitExceeded", "Request limit exceeded."), 503, times=1)
    result = cli(*setup_args("throttled"), "--output", "json")
    assert result.code == 0, result.stderr
    assert result.json["result"]["availability_zone"] == "us-west-2a" and result.json["result"]["skipped_zones"] == []
    assert sent == {subnet_of("us-west-2a"): 2}
    assert [i["Placement"]["AvailabilityZone"] for i in live_instances()] == ["us-west-2a"]
