"""Issue 9: the same wizard for today's inference accelerators (Inferentia2, GPU).

EI stays the default; `--accelerator inf2|gpu` launches the closest alternative with the same safety
(key pair, SSH from one range, IMDSv2, encrypted volume, tags, teardown) and none of the EI pieces
(endpoint, VPC DNS, elastic-inference policy, EI regions). Every test asserts on the moto account and
on what the user sees.
"""
from __future__ import annotations

import json
import shlex

import pytest

from amazonei_setup.cli.wizard import SetupRequest, build_plan
from amazonei_setup.core import catalog
from amazonei_setup.local import records
from tests.conftest import ACCOUNT, REGION, SSH_CIDR, inject, record, snapshot
from tests.test_faults import assert_clean_failure, respond
from tests.test_wizard import ScriptedAsker, hand_facts

MANAGED = set(catalog.FAMILY_MANAGED_POLICIES)
ROLE = "amazonei-setup-{}"


@pytest.fixture
def alt(account):
    """The seeded account plus the Neuron / GPU DLAMIs and AWS's public SSM parameters naming them."""
    from amazonei_setup.sandbox.account import seed_alternative_amis

    return seed_alternative_amis(ACCOUNT, REGION)


def family_args(name: str, family: str, *extra: str) -> list[str]:
    return ["--region", REGION, "--accelerator", family, "--yes", "--name", name, "--ssh-cidr", SSH_CIDR, *extra]


def live(account) -> list[dict]:
    reservations = account.ec2.describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def words(text: str) -> str:
    return " ".join(text.split())


# ---- setup + teardown ------------------------------------------------------------------------------

@pytest.mark.parametrize("family, instance_type", [("inf2", "inf2.xlarge"), ("gpu", "g4dn.xlarge")])
def test_family_setup_and_teardown(cli, account, alt, family, instance_type):
    before = snapshot(account)
    launches = record(account.ec2, "RunInstances")
    result = cli(*family_args(f"lab-{family}", family))  # text: the ready summary on stdout
    assert result.code == 0, result.stderr

    (instance,) = live(account)
    assert instance["InstanceType"] == instance_type  # the family's first type
    assert instance["ImageId"] == alt[family]  # the image AWS's SSM parameter names
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["amazonei-setup:accelerator"] == family and tags["amazonei-setup:ssh-user"] == "ubuntu"
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    (launch,) = launches
    assert "ElasticInferenceAccelerators" not in launch
    assert launch["BlockDeviceMappings"][0]["DeviceName"] == "/dev/sda1"
    assert launch["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True

    # no EI pieces: no endpoint, no inline EI policy; the two managed policies and nothing else
    assert snapshot(account)["endpoints"] == before["endpoints"]
    role = ROLE.format(f"lab-{family}")
    assert account.iam.list_role_policies(RoleName=role)["PolicyNames"] == []
    attached = account.iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert {p["PolicyArn"] for p in attached} == MANAGED
    group = account.ec2.describe_security_groups(GroupNames=[role])["SecurityGroups"][0]
    assert [(p["FromPort"], [r["CidrIp"] for r in p["IpRanges"]]) for p in group["IpPermissions"]] == [
        (22, [SSH_CIDR])]  # the self-443 rule is EI-only

    out = records.load(REGION, f"lab-{family}")  # the JSON result, as the local record saved it
    assert (out["instance_type"], out["accelerator_type"], out["family"]) == (instance_type, None, family)
    assert out["ssh_command"].startswith("ssh -i ") and "ubuntu@" in out["ssh_command"]
    assert out["hourly_usd"] == catalog.INSTANCE_HOURLY_USD[instance_type]
    screen = words(result.stdout)
    assert f"{instance_type} ({catalog.FAMILIES[family].label}, family {family}" in screen
    assert catalog.FAMILIES[family].check_command in screen

    listed = cli("list", "--region", REGION, "--output", "json")
    (row,) = listed.json["result"]["deployments"]
    assert (row["instance_type"], row["accelerator_type"]) == (instance_type, family)
    assert row["hourly_usd"] == catalog.INSTANCE_HOURLY_USD[instance_type]

    gone = cli("teardown", "--region", REGION, "--name", f"lab-{family}", "--yes")
    assert gone.code == 0, gone.stderr
    assert snapshot(account) == before


def test_instance_type_of_the_family_is_used(cli, account, alt):
    result = cli(*family_args("big", "inf2", "--instance-type", "inf2.8xlarge"))
    assert result.code == 0, result.stderr
    assert [i["InstanceType"] for i in live(account)] == ["inf2.8xlarge"]


def test_the_ssm_parameter_wins_over_the_newest_name(cli, account, alt):
    """The parameter, not the name filter, decides: point it at the older Neuron image."""
    from moto.backends import get_backend

    older = account.ec2.describe_images(Filters=[{"Name": "name", "Values": [
        "Deep Learning AMI Neuron (Ubuntu 24.04) 20250820"]}])["Images"][0]["ImageId"]
    assert older != alt["inf2"]
    get_backend("ssm")[ACCOUNT][REGION]._parameters[catalog.NEURON_AMI_PARAMETER][-1].value = older
    assert cli(*family_args("pinned", "inf2")).code == 0
    assert [i["ImageId"] for i in live(account)] == [older]


def test_without_the_ssm_parameter_the_newest_image_by_name_is_used(cli, account, alt):
    from moto.backends import get_backend

    del get_backend("ssm")[ACCOUNT][REGION]._parameters[catalog.GPU_AMI_PARAMETER]
    assert cli(*family_args("byname", "gpu")).code == 0
    assert [i["ImageId"] for i in live(account)] == [alt["gpu"]]


def test_no_image_at_all_is_a_usage_error_naming_ami_id(cli, account):
    before = snapshot(account)
    result = cli(*family_args("noimage", "inf2"))
    message = assert_clean_failure(result, 2)
    assert "--ami-id" in message and "Neuron" in message
    assert snapshot(account) == before


def test_families_run_outside_the_ei_regions(cli, account):
    from amazonei_setup.sandbox.account import seed_alternative_amis

    seed_alternative_amis(ACCOUNT, "eu-central-1")
    result = cli(*[a if a != REGION else "eu-central-1" for a in family_args("frankfurt", "gpu")])
    assert result.code == 0, result.stderr
    frankfurt = account.in_region("eu-central-1")
    assert [i["InstanceType"] for r in frankfurt.ec2.describe_instances()["Reservations"]
            for i in r["Instances"]] == ["g4dn.xlarge"]
    assert frankfurt.ec2.describe_vpc_endpoints()["VpcEndpoints"] == []
    # list --all-regions finds it, outside the six EI regions
    listed = cli("list", "--all-regions", "--output", "json")
    assert listed.code == 0, listed.stderr
    assert [(d["name"], d["region"]) for d in listed.json["result"]["deployments"]] == [("frankfurt", "eu-central-1")]


# ---- the offering check --------------------------------------------------------------------------

def test_subnet_is_in_an_az_that_offers_the_type(cli, account, alt):
    """inf2.xlarge offered only in us-west-2c: the default subnet of that AZ is picked, not us-west-2a's."""
    seen = []
    respond(account.ec2, "DescribeInstanceTypeOfferings", lambda params: {"InstanceTypeOfferings": [
        {"InstanceType": "inf2.xlarge", "LocationType": "availability-zone", "Location": "us-west-2c"}]}, calls=seen)
    result = cli(*family_args("onlyc", "inf2"), "--output", "json")
    assert result.code == 0, result.stderr
    (instance,) = live(account)
    assert instance["Placement"]["AvailabilityZone"] == "us-west-2c"
    assert len(seen) == 1


def test_moto_offers_g4dn_in_three_azs_and_a_subnet_elsewhere_is_refused(cli, account, alt):
    """moto's own offerings data: g4dn.xlarge is not offered in us-west-2d."""
    before = snapshot(account)
    subnet_d = account.ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["us-west-2d"]}])[
        "Subnets"][0]["SubnetId"]
    result = cli(*family_args("inthed", "gpu", "--subnet-id", subnet_d))
    message = assert_clean_failure(result, 2)
    assert f"--subnet-id {subnet_d} is in us-west-2d, where g4dn.xlarge is not offered" in message
    assert "us-west-2a" in message
    assert snapshot(account) == before


def test_a_type_offered_nowhere_in_the_region_is_a_usage_error(cli, account, alt):
    respond(account.ec2, "DescribeInstanceTypeOfferings", lambda params: {"InstanceTypeOfferings": []})
    message = assert_clean_failure(cli(*family_args("nowhere", "inf2")), 2)
    assert "inf2.xlarge" in message and "--region" in message


# ---- usage errors --------------------------------------------------------------------------------

def test_an_instance_type_outside_the_family_names_both_flags(cli, account, alt):
    calls = record(account.sts, "GetCallerIdentity")
    message = assert_clean_failure(cli(*family_args("wrong", "inf2", "--instance-type", "m5.xlarge")), 2)
    assert "--instance-type m5.xlarge" in message and "--accelerator inf2" in message
    assert "inf2.xlarge" in message
    assert calls == []  # refused before any AWS call


def test_ei_without_instance_type_takes_the_cheapest_sensible_host_with_yes(cli, account):
    # Was a usage error naming --instance-type; now --yes takes the host question's default, as it takes every
    # other default (the family types already did): m5.xlarge, the cheapest EI host with 4 vCPUs and 16 GiB.
    result = cli("--region", REGION, "--yes", "--name", "x", "--accelerator", "eia2.large", "--ssh-cidr", SSH_CIDR,
                 "--output", "json")
    assert result.code == 0, result.stderr
    assert (result.json["result"]["instance_type"], result.json["result"]["accelerator_type"]) == (
        "m5.xlarge", "eia2.large")
    (instance,) = live(account)
    assert instance["InstanceType"] == "m5.xlarge"


def test_unknown_accelerator_and_contradicting_flags(cli, account):
    message = assert_clean_failure(cli("--region", REGION, "--accelerator", "tpu", "--yes"), 2)
    assert "'tpu'" in message and "inf2" in message and "eia2.medium" in message
    message = assert_clean_failure(cli(*family_args("both", "gpu", "--accelerator-type", "eia2.large")), 2)
    assert "--accelerator gpu" in message and "--accelerator-type eia2.large" in message
    message = assert_clean_failure(cli(*family_args("os", "gpu", "--os", "ubuntu-16.04")), 2)
    assert "--os" in message


def test_accelerator_with_an_ei_type_is_the_ei_flow(cli, account):
    launches = record(account.ec2, "RunInstances")
    result = cli("--region", REGION, "--instance-type", "m5.xlarge", "--accelerator", "eia2.large", "--yes",
                 "--name", "eiflag", "--ssh-cidr", SSH_CIDR)
    assert result.code == 0, result.stderr
    assert [launch["ElasticInferenceAccelerators"] for launch in launches] == [[{"Type": "eia2.large", "Count": 1}]]


# ---- the EI refusal suggests the alternative -----------------------------------------------------

def test_ei_refusal_rolls_back_and_prints_the_command_that_works(cli, account, alt):
    account.ec2.create_key_pair(KeyName="mykey")
    before = snapshot(account)
    injected = inject(account.ec2, "RunInstances", "Unsupported", "Amazon Elastic Inference is no longer available.",
                      times=1)
    result = cli("--region", REGION, "--instance-type", "m5.xlarge", "--yes", "--name", "refused",
                 "--key-name", "mykey", "--ssh-cidr", SSH_CIDR, "--volume-size", "120", "--output", "json")
    message = assert_clean_failure(result)
    assert len(injected) == 1
    assert "retired Elastic Inference in April 2024" in message and "previous 30 days" not in message
    assert "Everything this run created was removed" in message
    assert snapshot(account) == before

    error = result.json["error"]
    assert error["code"] == "ei-unavailable"
    command = error["suggested_command"]
    assert command == (f"python amazonei_setup.py --region {REGION} --accelerator inf2 --name refused-inf2 "
                       f"--key-name mykey --ssh-cidr {SSH_CIDR} --volume-size 120 --yes")
    lines = result.stderr.splitlines()
    assert command in lines  # on a line of its own, whole, outside any box
    assert lines.index(command) > next(i for i, line in enumerate(lines) if line.startswith("error:"))

    argv = shlex.split(command)
    assert argv[:2] == ["python", "amazonei_setup.py"]
    again = cli(*argv[2:])
    assert again.code == 0, again.stderr
    (instance,) = live(account)
    assert (instance["InstanceType"], instance["KeyName"], instance["ImageId"]) == ("inf2.xlarge", "mykey", alt["inf2"])
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["amazonei-setup:deployment"] == "refused-inf2"


def real_account_cli(account):
    """The CLI in-process against moto, taken for a real account (the `cli` fixture's runs count as emulated)."""
    import io

    from amazonei_setup.cli.environment import Environment
    from amazonei_setup.cli.main import main
    from tests.conftest import WIDE, CliResult

    def run(*argv: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        env = Environment(stdin_isatty=False, stdout=out, stderr=err, public_ip_lookup=lambda: "198.51.100.4",
                          sleep=lambda seconds: None, width=WIDE, aws=account, emulated=False)
        return CliResult(main(list(argv), env), out.getvalue(), err.getvalue())

    return run


def test_a_real_account_ei_plan_says_aws_will_refuse_it_before_anything_is_created(account, alt):
    """EI is retired: the plan says AWS will refuse it and shows the command that works, before the first create;
    --yes still does what was asked, and the refusal rolls back."""
    before = snapshot(account)
    inject(account.ec2, "RunInstances", "Unsupported", "Amazon Elastic Inference is no longer available.")
    result = real_account_cli(account)("--region", REGION, "--instance-type", "m5.xlarge", "--yes", "--name", "old",
                                       "--ssh-cidr", SSH_CIDR)
    assert result.code == 1, result.stderr
    lines = result.stderr.splitlines()
    command = (f"python amazonei_setup.py --region {REGION} --accelerator inf2 --name old-inf2 --ssh-cidr {SSH_CIDR} "
               "--yes")
    warned = next(i for i, line in enumerate(lines) if "AWS retired Elastic Inference in April 2024" in line)
    assert "will refuse" in words(lines[warned])
    first_create = next(i for i, line in enumerate(lines) if line.startswith("+ Created"))
    assert warned < lines.index(command) < first_create  # said, and the way out shown, before anything exists
    assert snapshot(account) == before  # --yes went ahead; AWS's refusal rolled it back


def test_the_retirement_warning_is_for_real_accounts_and_ei_launches_only(cli, account, alt):
    emulated = cli("--region", REGION, "--instance-type", "m5.xlarge", "--yes", "--name", "emu",
                   "--ssh-cidr", SSH_CIDR, "--dry-run")
    assert emulated.code == 0, emulated.stderr
    assert "AWS retired Elastic Inference" not in emulated.stderr  # the sandbox and tests run the EI flow
    inf2 = real_account_cli(account)(*family_args("new", "inf2", "--dry-run"))
    assert inf2.code == 0, inf2.stderr
    assert "AWS retired Elastic Inference" not in inf2.stderr
    dry = real_account_cli(account)("--region", REGION, "--instance-type", "m5.xlarge", "--yes", "--name", "dry",
                                    "--ssh-cidr", SSH_CIDR, "--dry-run")
    assert "AWS retired Elastic Inference in April 2024" in dry.stderr  # a dry run is where a user looks first


def test_the_suggested_command_keeps_network_sandbox_and_profile_flags():
    from types import SimpleNamespace

    from amazonei_setup.cli.commands.common import alternative_command

    plan = SimpleNamespace(name="a" * 32, region="us-east-1")
    args = SimpleNamespace(sandbox=False, profile="work", endpoint_url=None, key_name=None, key_dir="my keys",
                           ssh_cidr=None, volume_size=None, vpc_id="vpc-1", subnet_id="subnet-1", new_key=True,
                           yes=False)
    command = alternative_command(args, plan)
    assert command == ("python amazonei_setup.py --profile work --region us-east-1 --accelerator inf2 --name "
                       f"{'a' * 27}-inf2 --key-dir 'my keys' --vpc-id vpc-1 --subnet-id subnet-1 --new-key")
    sandboxed = alternative_command(SimpleNamespace(**{**vars(args), "sandbox": True, "yes": True}), plan)
    assert sandboxed.startswith("python amazonei_setup.py --sandbox --region") and sandboxed.endswith("--yes")
    assert "--profile" not in sandboxed


def test_other_failures_suggest_nothing(cli, account, alt):
    inject(account.ec2, "RunInstances", "InsufficientInstanceCapacity", "no capacity")
    result = cli("--region", REGION, "--instance-type", "m5.xlarge", "--yes", "--name", "cap", "--ssh-cidr", SSH_CIDR,
                 "--output", "json")
    assert result.code == 1
    # Issue 17: no capacity in any zone suggests the same setup in a region that offers the type, never inf2.
    assert set(result.json["error"]) == {"code", "message", "suggested_command"}
    assert "--region us-east-1" in result.json["error"]["suggested_command"]
    assert "--accelerator inf2" not in result.stderr


# ---- the wizard's question -----------------------------------------------------------------------

def test_the_accelerator_question_lists_ei_first_then_the_alternatives():
    asker = ScriptedAsker()
    facts = hand_facts(family_images={"inf2": None, "gpu": None})  # looked up (an image is needed only if chosen)
    build_plan(SetupRequest(instance_type="m5.xlarge", name="q", ssh_cidr=SSH_CIDR), facts, asker)
    question = asker.question("--accelerator-type")
    values = [o.value for o in question.options if not o.separator]
    assert values == [*catalog.ACCELERATORS, "inf2", "gpu"]
    first, heading = (i for i, o in enumerate(question.options) if o.separator)
    assert first == 0 and "Elastic Inference (retired by AWS in 2024)" in question.options[0].title
    assert heading == len(catalog.ACCELERATORS) + 1  # the alternatives come after every EI type
    assert "alternatives" in question.options[heading].title
    assert question.default == "eia2.medium"
    titles = {o.value: o.title for o in question.options}
    assert "32 GiB" in titles["inf2"] and "high" in titles["inf2"] and "$0.758/h" in titles["inf2"]
    assert "16-24 GiB" in titles["gpu"] and "entry-mid" in titles["gpu"] and "from $0.526/h" in titles["gpu"]
    for option in question.options:
        assert len(f"? {question.message} " + option.title) <= 80, option.title  # the echo after the answer


def test_alternatives_are_offered_only_when_discovery_looked_them_up():
    asker = ScriptedAsker()
    build_plan(SetupRequest(instance_type="m5.xlarge", name="q", ssh_cidr=SSH_CIDR), hand_facts(), asker)
    options = asker.question("--accelerator-type").options
    assert [o.value for o in options if not o.separator] == list(catalog.ACCELERATORS)
    assert [o.title for o in options if o.separator] == ["-- Elastic Inference (retired by AWS in 2024) --"]


def test_g6_is_priced_from_the_dated_source_so_no_alternative_is_price_unknown():
    """Issue 17: g6.xlarge's us-west-2 price from the data set g4dn and inf2 come from (2026-08-26); it was the
    one alternative shown as "price unknown"."""
    from amazonei_setup.cli.wizard import family_title

    entry = catalog.INSTANCE_PRICES["g6.xlarge"]
    assert (entry.hourly_usd, entry.as_of, entry.verified) == (0.8048, "2026-08-26", True)
    assert "g6_instances.js" in entry.source
    assert family_title(catalog.FAMILIES["gpu"], "g6.xlarge").endswith("$0.805/h")
    for family in catalog.FAMILIES.values():
        for instance_type in family.instance_types:
            assert "price unknown" not in family_title(family, instance_type), instance_type


def test_choosing_an_alternative_at_the_prompt_asks_its_instance_type(cli, account, alt):
    asker = ScriptedAsker(accelerator_type="gpu", instance_type="g5.xlarge")
    result = cli("--region", REGION, "--instance-type", "m5.xlarge", "--name", "picked", "--ssh-cidr", SSH_CIDR,
                 asker=asker, tty=True)
    assert result.code == 0, result.stderr
    assert asker.flags[:2] == ["--accelerator-type", "--instance-type"]
    assert "Operating system:" not in [q.message for q in asker.asked]
    assert [o.value for o in asker.question("--instance-type").options] == ["g4dn.xlarge", "g5.xlarge", "g6.xlarge"]
    (instance,) = live(account)
    assert (instance["InstanceType"], instance["ImageId"]) == ("g5.xlarge", alt["gpu"])
    assert "--instance-type m5.xlarge is not used: GPU instance types" in words(result.stderr)


def test_the_prompt_shows_the_alternatives_on_the_same_screen(cli, account, alt):
    from tests.test_wizard import ENTER, interactive, keyboard, seen

    with keyboard(ENTER * 4 + "n") as (asker, screen):  # accelerator, OS, subnet, idle auto-stop; no
        run = cli(*interactive("--name", "screen", "--ssh-cidr", SSH_CIDR), asker=asker, tty=True)
    assert run.code == 0, run.stderr
    text = seen(screen)
    ei, alternatives = text.index("eia1.xlarge"), text.index("current alternatives")
    assert ei < alternatives < text.index("inf2.xlarge") < text.index("g4dn/g5/g6.xlarge")


def test_plan_json_names_the_family(cli, account, alt):
    result = cli(*family_args("dry", "gpu", "--dry-run"), "--output", "json")
    assert result.code == 0, result.stderr
    plan = result.json["result"]["plan"]
    assert (plan["family"], plan["instance_type"], plan["accelerator_type"], plan["ssh_user"]) == (
        "gpu", "g4dn.xlarge", None, "ubuntu")
    kinds = [i["kind"] for i in plan["items"]]
    assert "vpc-endpoint" not in kinds
    assert json.dumps(plan)


def test_teardown_reaches_a_family_deployment_outside_the_ei_regions(cli, account):
    from amazonei_setup.sandbox.account import seed_alternative_amis

    seed_alternative_amis(ACCOUNT, "eu-central-1")
    frankfurt = account.in_region("eu-central-1")
    before = snapshot(frankfurt)
    argv = [a if a != REGION else "eu-central-1" for a in family_args("fra", "inf2")]
    assert cli(*argv).code == 0
    gone = cli("teardown", "--region", "eu-central-1", "--name", "fra", "--yes")
    assert gone.code == 0, gone.stderr
    assert snapshot(frankfurt) == before
    message = assert_clean_failure(cli("teardown", "--region", "us-west-9", "--name", "fra", "--yes"), 2)
    assert "us-west-9" in message and "--region" in message


# ---- where the image came from (issue 17) ------------------------------------------------------------

GPU_PARAMETERS = (catalog.GPU_AMI_PARAMETER, catalog.GPU_AMI_PARAMETER_DOCUMENTED)


def set_parameters(region: str = REGION, **values: str | None) -> None:
    """Point AWS's public SSM parameters (by catalog constant name) at images, or remove them (None)."""
    from moto.backends import get_backend
    from moto.core.utils import utcnow
    from moto.ssm.models import Parameter

    parameters = get_backend("ssm")[ACCOUNT][region]._parameters
    for constant, value in values.items():
        name = getattr(catalog, constant)
        parameters.pop(name, None)
        if value is not None:
            parameters[name].append(Parameter(
                account_id=ACCOUNT, name=name, value=value, parameter_type="String", description=None,
                allowed_pattern=None, keyid=None, last_modified_date=utcnow(), version=1, data_type="aws:ec2:image"))


def image_named(account, name: str) -> str:
    return account.ec2.describe_images(Filters=[{"Name": "name", "Values": [name]}])["Images"][0]["ImageId"]


OLDER_GPU = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20241115"


def planned(cli, family: str) -> dict:
    result = cli(*family_args(f"src-{family}", family, "--dry-run"), "--output", "json")
    assert result.code == 0, result.stderr
    return result.json["result"]["plan"]


def test_gpu_image_from_the_widely_used_parameter_when_only_it_exists(cli, account, alt):
    asked = record(account.client("ssm"), "GetParameters")
    plan = planned(cli, "gpu")
    assert (plan["ami_id"], plan["image_source"]) == (alt["gpu"], catalog.GPU_AMI_PARAMETER)
    # both spellings asked in ONE call, next to the other family's (the wizard may offer either)
    assert len(asked) == 1 and set(GPU_PARAMETERS) <= set(asked[0]["Names"])


def test_gpu_image_from_the_documented_parameter_when_only_it_exists(cli, account, alt):
    older = image_named(account, OLDER_GPU)
    set_parameters(GPU_AMI_PARAMETER=None, GPU_AMI_PARAMETER_DOCUMENTED=older)
    plan = planned(cli, "gpu")
    assert (plan["ami_id"], plan["image_source"]) == (older, catalog.GPU_AMI_PARAMETER_DOCUMENTED)


def test_gpu_image_from_the_catalogs_first_parameter_when_both_exist(cli, account, alt):
    older = image_named(account, OLDER_GPU)
    set_parameters(GPU_AMI_PARAMETER_DOCUMENTED=older)  # the widely used one still names the newest
    plan = planned(cli, "gpu")
    assert catalog.FAMILIES["gpu"].ami_parameters == GPU_PARAMETERS
    assert (plan["ami_id"], plan["image_source"]) == (alt["gpu"], GPU_PARAMETERS[0])
    set_parameters(GPU_AMI_PARAMETER=older, GPU_AMI_PARAMETER_DOCUMENTED=alt["gpu"])  # and the other way round
    plan = planned(cli, "gpu")
    assert (plan["ami_id"], plan["image_source"]) == (older, GPU_PARAMETERS[0])


def test_no_gpu_parameter_falls_back_to_the_name_pattern_and_says_so(cli, account, alt):
    set_parameters(GPU_AMI_PARAMETER=None, GPU_AMI_PARAMETER_DOCUMENTED=None)
    plan = planned(cli, "gpu")
    assert plan["ami_id"] == alt["gpu"]  # the newest image of that name
    assert plan["image_source"] == f"name pattern: {catalog.FAMILIES['gpu'].ami_name_pattern}"
    shown = cli(*family_args("src-text", "gpu", "--dry-run"))  # the plan panel says it briefly
    assert shown.code == 0 and "newest by name, no SSM parameter found" in words(shown.stderr + shown.stdout)
    named = cli(*family_args("src-named", "inf2", "--dry-run"))
    assert "no SSM parameter" not in named.stderr + named.stdout


def test_neuron_image_is_ubuntu_24_04_from_its_parameter_or_its_name(cli, account, alt):
    """AWS publishes no Ubuntu 22.04 Neuron DLAMI since Neuron 2.30: the 24.04 parameter names the image, and
    without it the name pattern finds only 24.04 images (the account's newer 22.04 one is never picked)."""
    plan = planned(cli, "inf2")
    assert plan["image_source"] == catalog.NEURON_AMI_PARAMETER and "ubuntu-24.04" in plan["image_source"]
    assert "(Ubuntu 24.04)" in plan["ami_name"] and plan["ami_id"] == alt["inf2"]
    newer_22_04 = image_named(account, "Deep Learning AMI Neuron (Ubuntu 22.04) 20260415")
    older_24_04 = image_named(account, "Deep Learning AMI Neuron (Ubuntu 24.04) 20250820")
    set_parameters(NEURON_AMI_PARAMETER=None)
    account.ec2.deregister_image(ImageId=alt["inf2"])  # the newest image is now a 22.04 one
    plan = planned(cli, "inf2")
    assert plan["ami_id"] == older_24_04 != newer_22_04
    assert plan["image_source"] == "name pattern: Deep Learning AMI Neuron (Ubuntu 24.04) *"


def test_an_exported_template_resolves_the_parameter_that_named_the_image(cli, account, alt):
    """A template resolves its AMI through SSM when the stack is created: it must name the parameter that exists
    in the region, not the catalog's first spelling."""
    import yaml

    set_parameters(GPU_AMI_PARAMETER=None, GPU_AMI_PARAMETER_DOCUMENTED=alt["gpu"])
    result = cli("export", *family_args("tmpl", "gpu"))
    assert result.code == 0, result.stderr
    image = yaml.safe_load(result.stdout)["Parameters"]["ImageId"]
    assert image["Default"] == catalog.GPU_AMI_PARAMETER_DOCUMENTED
