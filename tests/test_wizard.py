"""The wizard's decisions: what `--yes` picks, what is offered, what is asked, and what the Plan says.

Three layers of evidence:
  * `build_plan` over Facts gathered from the seeded moto account (the account a newcomer has) and over
    hand-built Facts for the edge cases a fresh account cannot show (no public IP, private subnets,
    AZs without EI, several key pairs, several VPCs);
  * `build_plan` with a scripted Asker (the documented seam) to see which questions are asked and what
    they offer;
  * the real CLI with the real QuestionaryAsker driven through a prompt_toolkit pipe (arrow keys,
    Enter), asserting on the moto account and on the screen.
"""
from __future__ import annotations

import io
import json
import re
import stat
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from amazonei_setup import discover
from amazonei_setup.discover import Facts, Image, InstanceType, Subnet, Vpc
from amazonei_setup.errors import UsageError
from amazonei_setup.plan import CREATE, REUSE, UPDATE
from amazonei_setup.wizard import DefaultsAsker, QuestionaryAsker, SetupRequest, build_plan
from tests.conftest import ACCOUNT, REGION, SSH_CIDR, isolate, record, setup_args, snapshot

AL44 = "Deep Learning AMI (Amazon Linux) Version 44.0"
UBUNTU40 = "Deep Learning AMI (Ubuntu 16.04) Version 40.0"
DOWN, ENTER = "\x1b[B", "\r"


# ---- facts ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """Facts of the seeded moto account in us-west-2 and in ap-northeast-1, gathered once (pure data)."""
    from moto import mock_aws

    from amazonei_setup.aws import Aws
    from amazonei_setup.sandbox import DLAMI_OWNER_ID, seed_deep_learning_amis

    home = tmp_path_factory.mktemp("wizard-facts")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, home)
        with mock_aws():
            seed_deep_learning_amis(ACCOUNT, REGION)
            seed_deep_learning_amis(ACCOUNT, "ap-northeast-1")
            aws = Aws(REGION)
            west = discover.gather(aws, instance_type="m5.xlarge", public_ip_lookup=lambda: "198.51.100.4")
            tokyo = discover.gather(aws.in_region("ap-northeast-1"), instance_type="m5.xlarge",
                                    public_ip_lookup=lambda: "198.51.100.4")
            image_ids = {i["Name"]: i["ImageId"] for i in aws.ec2.describe_images(Owners=[DLAMI_OWNER_ID])["Images"]}
            default_vpc = aws.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
            subnets = {s["AvailabilityZone"]: s["SubnetId"] for s in aws.ec2.describe_subnets(
                Filters=[{"Name": "vpc-id", "Values": [default_vpc["VpcId"]]}])["Subnets"]}
    return SimpleNamespace(west=west, tokyo=tokyo, image_ids=image_ids, vpc_id=default_vpc["VpcId"],
                           subnet_by_az=subnets)


def image(name: str, created: str, id_: str) -> Image:
    return Image(id_, name, created, "x86_64", "/dev/xvda", None, "amazon")


def subnet(id_: str, az: str, public: bool = True, vpc: str = "vpc-1") -> Subnet:
    return Subnet(id_, vpc, az, "10.0.0.0/24", public, 250, "")


def hand_facts(**overrides) -> Facts:
    """A small account built by hand; override any field."""
    values = dict(
        region=REGION, account_id=ACCOUNT, caller_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        ei_azs=("us-west-2a", "us-west-2b"),
        images={"amazon-linux": [image(AL44, "2021-06-01", "ami-al44")],
                "ubuntu-16.04": [image(UBUNTU40, "2021-01-10", "ami-u40")]},
        requested_image=None, vpcs=[Vpc("vpc-1", "10.0.0.0/16", True, "")],
        subnets=[subnet("subnet-a", "us-west-2a"), subnet("subnet-b", "us-west-2b")],
        key_pairs=[], instance_type=InstanceType("m5.xlarge", ("x86_64",), 4, 16384), endpoints=[],
        our_instances=[], our_security_groups=[], public_ip="198.51.100.4")
    values.update(overrides)
    return Facts(**values)


class ScriptedAsker:
    """An Asker (the wizard's injection seam) that records every question and answers from a script.

    answers: flag (first word, e.g. "--subnet-id") -> a value, or a callable(options) -> value;
    unscripted questions take the default, like pressing Enter.
    """

    interactive = True

    def __init__(self, **answers):
        self.answers = {"--" + k.replace("_", "-"): v for k, v in answers.items()}
        self.asked: list[SimpleNamespace] = []

    def _answer(self, flag, options, default):
        key = flag.split()[0]
        self.asked[-1].flag = key
        if key not in self.answers:
            return default
        answer = self.answers[key]
        return answer(options) if callable(answer) else answer

    def select(self, message, options, default, *, flag, hint=""):
        self.asked.append(SimpleNamespace(message=message, options=options, default=default))
        return self._answer(flag, options, default)

    def text(self, message, default, *, flag, validate):
        self.asked.append(SimpleNamespace(message=message, options=None, default=default))
        answer = self._answer(flag, None, default)
        assert validate(answer) is None, f"scripted answer {answer!r} fails the prompt's own validation"
        return answer

    def confirm(self, message, default=False):
        return True

    @property
    def flags(self) -> list[str]:
        return [q.flag for q in self.asked]

    def question(self, flag: str) -> SimpleNamespace:
        return next(q for q in self.asked if q.flag == flag)


def yes(facts: Facts, **request) -> object:
    return build_plan(SetupRequest(instance_type=request.pop("instance_type", "m5.xlarge"), **request), facts,
                      DefaultsAsker())


# ---- --yes defaults in the seeded account -------------------------------------------------------

def test_yes_takes_the_safe_defaults_of_a_fresh_account(seeded, isolated_env):
    plan = yes(seeded.west, name="demo")

    assert plan.vpc_id == seeded.vpc_id
    assert plan.subnet_id == seeded.subnet_by_az["us-west-2a"]  # first EI AZ; every default subnet is public
    assert plan.availability_zone == "us-west-2a"
    assert (plan.ami_name, plan.ami_id) == (AL44, seeded.image_ids[AL44])
    assert plan.os_key == "amazon-linux" and plan.ssh_user == "ec2-user"
    assert plan.accelerator_type == "eia2.medium"
    assert (plan.key_name, plan.create_key) == ("amazonei-setup-demo", True)
    assert plan.key_path == str(isolated_env / ".ssh" / "amazonei-setup-demo.pem")
    assert plan.ssh_cidr == "198.51.100.4/32"
    assert (plan.instance_type, plan.volume_size, plan.hourly_usd) == ("m5.xlarge", 100, 0.312)
    assert plan.endpoint_id is None and plan.warnings == ()


def test_amazon_linux_is_the_newest_dlami_of_that_line_never_amazon_linux_2_or_ubuntu_18(seeded):
    # The seeded account holds newer "Amazon Linux 2" and "Ubuntu 18.04" DLAMIs (2022): neither has EI.
    newer = [n for n in seeded.image_ids if "Amazon Linux 2" in n or "18.04" in n]
    assert newer, "the seeded account should hold the look-alike images this test is about"
    asker = ScriptedAsker()
    plan = build_plan(SetupRequest(instance_type="m5.xlarge", name="demo", ssh_cidr=SSH_CIDR), seeded.west, asker)
    assert plan.ami_name == AL44 and plan.ami_id == seeded.image_ids[AL44]

    offered = asker.question("--os")
    assert [o.value for o in offered.options] == ["amazon-linux", "ubuntu-16.04"]
    assert offered.default == "amazon-linux"
    titles = " | ".join(o.title for o in offered.options)
    assert AL44 in titles and UBUNTU40 in titles
    assert "Amazon Linux 2" not in titles and "18.04" not in titles


def test_os_ubuntu_picks_the_ubuntu_16_04_dlami_and_its_user_without_asking(seeded):
    asker = ScriptedAsker()
    plan = build_plan(SetupRequest(instance_type="m5.xlarge", name="demo", os="ubuntu-16.04", ssh_cidr=SSH_CIDR),
                      seeded.west, asker)
    assert (plan.ami_name, plan.ami_id) == (UBUNTU40, seeded.image_ids[UBUNTU40])
    assert plan.ssh_user == "ubuntu"
    assert "--os" not in asker.flags


def test_tokyo_never_had_eia2_so_the_default_is_eia1_medium(seeded):
    plan = yes(seeded.tokyo, name="demo")
    assert plan.region == "ap-northeast-1"
    assert plan.accelerator_type == "eia1.medium"

    asker = ScriptedAsker()
    build_plan(SetupRequest(instance_type="m5.xlarge", name="demo", ssh_cidr=SSH_CIDR), seeded.tokyo, asker)
    offered = asker.question("--accelerator-type")
    assert [o.value for o in offered.options] == ["eia1.medium", "eia1.large", "eia1.xlarge"]
    assert offered.default == "eia1.medium"

    with pytest.raises(UsageError, match=r"eia2\.medium is not offered in ap-northeast-1.*eia1\.medium"):
        yes(seeded.tokyo, name="demo", accelerator_type="eia2.medium")


def test_unknown_accelerator_type_names_the_valid_ones(seeded):
    with pytest.raises(UsageError, match=r"Unknown --accelerator-type 'eia3.medium'.*eia2\.medium"):
        yes(seeded.west, name="demo", accelerator_type="eia3.medium")


# ---- key pairs ---------------------------------------------------------------------------------

def test_no_key_pair_means_a_new_one_named_after_the_deployment(isolated_env):
    plan = yes(hand_facts(key_pairs=[]), name="lab")
    assert (plan.key_name, plan.create_key) == ("amazonei-setup-lab", True)
    assert plan.key_path == str(isolated_env / ".ssh" / "amazonei-setup-lab.pem")


def test_the_only_key_pair_is_used(isolated_env):
    plan = yes(hand_facts(key_pairs=["mykey"]), name="lab")
    assert (plan.key_name, plan.create_key) == ("mykey", False)
    assert plan.key_path == str(isolated_env / ".ssh" / "mykey.pem")


def test_yes_never_defaults_to_a_key_another_deployment_created(isolated_env):
    """Its teardown deletes that key: a sibling launched with it would lose the key pair in AWS."""
    facts = hand_facts(key_pairs=["amazonei-setup-first"])
    facts.key_pair_deployments = {"amazonei-setup-first": "first"}
    plan = yes(facts, name="second")
    assert (plan.key_name, plan.create_key) == ("amazonei-setup-second", True)
    facts.key_pairs.append("mykey")  # one usable key besides the sibling's: that one is the default
    assert yes(facts, name="second").key_name == "mykey"
    # A re-run of the deployment that owns the key may still use it.
    assert yes(hand_facts(key_pairs=["amazonei-setup-first"]), name="first").key_name == "amazonei-setup-first"


def test_several_key_pairs_have_no_safe_default_so_yes_names_the_flag():
    with pytest.raises(UsageError, match=r"Key pair for SSH: there is no safe default, so pass --key-name"):
        yes(hand_facts(key_pairs=["alice", "bob"]), name="lab")


def test_several_key_pairs_with_a_flag_or_new_key(isolated_env):
    facts = hand_facts(key_pairs=["alice", "bob"])
    assert yes(facts, name="lab", key_name="bob").key_name == "bob"
    fresh = yes(facts, name="lab", new_key=True, key_dir=str(isolated_env / "keys"))
    assert (fresh.key_name, fresh.create_key) == ("amazonei-setup-lab", True)
    assert fresh.key_path == str(isolated_env / "keys" / "amazonei-setup-lab.pem")
    with pytest.raises(UsageError, match=r"--key-name carol is not a key pair in us-west-2: use one of alice, bob"):
        yes(facts, name="lab", key_name="carol")


def test_a_new_key_never_overwrites_a_pem_file(isolated_env):
    pem = isolated_env / ".ssh" / "amazonei-setup-lab.pem"
    pem.parent.mkdir()
    pem.write_text("someone's key")
    with pytest.raises(UsageError, match="already exists and would be overwritten"):
        yes(hand_facts(), name="lab")
    assert pem.read_text() == "someone's key"


def test_interactive_key_question_offers_each_key_and_a_new_one():
    asker = ScriptedAsker(key_name=lambda options: options[-1].value)
    plan = build_plan(SetupRequest(instance_type="m5.xlarge", name="lab", ssh_cidr=SSH_CIDR),
                      hand_facts(key_pairs=["alice", "bob"]), asker)
    offered = asker.question("--key-name")
    assert [o.title for o in offered.options] == ["alice", "bob", "create a new key pair (amazonei-setup-lab)"]
    assert offered.default is None  # no safe default: the cursor starts on the first entry
    assert (plan.key_name, plan.create_key) == ("amazonei-setup-lab", True)


# ---- network -------------------------------------------------------------------------------------

def test_only_subnets_in_availability_zones_with_ei_are_offered():
    facts = hand_facts(ei_azs=("us-west-2b", "us-west-2c"), subnets=[
        subnet("subnet-a", "us-west-2a"),  # public, but no EI in 2a: must never be offered
        subnet("subnet-b", "us-west-2b", public=False),
        subnet("subnet-c", "us-west-2c"),
        subnet("subnet-other-vpc", "us-west-2b", vpc="vpc-2"),
    ], vpcs=[Vpc("vpc-1", "10.0.0.0/16", True, ""), Vpc("vpc-2", "10.1.0.0/16", False, "lab")])
    asker = ScriptedAsker()
    plan = build_plan(SetupRequest(instance_type="m5.xlarge", name="lab", ssh_cidr=SSH_CIDR), facts, asker)

    offered = asker.question("--subnet-id")
    assert sorted(o.value for o in offered.options) == ["subnet-b", "subnet-c"]
    assert offered.default == "subnet-c"  # the one that gives the instance a public IP
    assert plan.subnet_id == "subnet-c" and plan.availability_zone == "us-west-2c"
    assert yes(facts, name="lab").subnet_id == "subnet-c"

    with pytest.raises(UsageError, match=r"subnet-a is in us-west-2a, where Elastic Inference is not offered: "
                                         r"pass a subnet in us-west-2b, us-west-2c"):
        yes(facts, name="lab", subnet_id="subnet-a")


def test_private_subnets_only_a_single_one_is_taken_several_need_the_flag():
    one = hand_facts(subnets=[subnet("subnet-p", "us-west-2a", public=False)])
    assert yes(one, name="lab").subnet_id == "subnet-p"
    several = hand_facts(subnets=[subnet("subnet-p", "us-west-2a", public=False),
                                  subnet("subnet-q", "us-west-2b", public=False)])
    with pytest.raises(UsageError, match="pass --subnet-id"):
        yes(several, name="lab")


def test_vpc_choice_default_vpc_wins_and_without_one_yes_names_the_flag():
    vpcs = [Vpc("vpc-2", "10.1.0.0/16", False, "lab"), Vpc("vpc-1", "10.0.0.0/16", True, "")]
    subnets = [subnet("subnet-a", "us-west-2a"), subnet("subnet-2", "us-west-2a", vpc="vpc-2")]
    assert yes(hand_facts(vpcs=vpcs, subnets=subnets), name="lab").vpc_id == "vpc-1"
    assert yes(hand_facts(vpcs=vpcs, subnets=subnets), name="lab", vpc_id="vpc-2").subnet_id == "subnet-2"
    no_default = [Vpc("vpc-1", "10.0.0.0/16", False, ""), Vpc("vpc-2", "10.1.0.0/16", False, "lab")]
    with pytest.raises(UsageError, match="pass --vpc-id"):
        yes(hand_facts(vpcs=no_default, subnets=subnets), name="lab")


# ---- SSH source -----------------------------------------------------------------------------------

def test_the_looked_up_public_ip_becomes_a_single_host_range(seeded):
    assert yes(seeded.west, name="demo").ssh_cidr == "198.51.100.4/32"
    assert yes(hand_facts(public_ip="2001:db8::7"), name="lab").ssh_cidr == "2001:db8::7/128"


def test_no_learnable_ip_and_yes_names_ssh_cidr():
    with pytest.raises(UsageError, match=r"Allow SSH from \(CIDR\): pass --ssh-cidr"):
        yes(hand_facts(public_ip=None), name="lab")


def test_a_lookup_that_answered_garbage_is_not_a_default():
    # A captive portal answers checkip with HTML: that must not become a security group rule.
    with pytest.raises(UsageError, match="pass --ssh-cidr"):
        yes(hand_facts(public_ip="<html>Sign in to the hotel wifi</html>"), name="lab")


def test_an_answer_with_host_bits_is_normalised_and_the_whole_internet_is_warned_about():
    plan = build_plan(SetupRequest(instance_type="m5.xlarge", name="lab"), hand_facts(),
                      ScriptedAsker(ssh_cidr="198.51.100.77/24"))
    assert plan.ssh_cidr == "198.51.100.0/24" and plan.warnings == ()
    world = yes(hand_facts(), name="lab", ssh_cidr="0.0.0.0/0")
    assert any("whole internet" in w for w in world.warnings)


# ---- what is asked ------------------------------------------------------------------------------------

def test_every_open_choice_is_asked_once_and_a_single_vpc_is_not_a_choice():
    asker = ScriptedAsker()
    build_plan(SetupRequest(instance_type="m5.xlarge"), hand_facts(key_pairs=["mykey"]), asker)
    assert asker.flags == ["--name", "--accelerator-type", "--os", "--subnet-id", "--key-name", "--ssh-cidr"]
    assert asker.question("--ssh-cidr").default == "198.51.100.4/32"
    assert re.fullmatch(r"amazonei-[0-9a-f]{6}", asker.question("--name").default)


def test_flags_settle_their_questions_and_only_the_rest_is_asked():
    asker = ScriptedAsker()
    plan = build_plan(SetupRequest(instance_type="m5.xlarge", name="lab", accelerator_type="eia2.large",
                                   ssh_cidr=SSH_CIDR), hand_facts(key_pairs=["mykey"]), asker)
    assert asker.flags == ["--os", "--subnet-id", "--key-name"]
    assert plan.accelerator_type == "eia2.large" and plan.name == "lab"

    everything = ScriptedAsker()
    build_plan(SetupRequest(instance_type="m5.xlarge", name="lab", accelerator_type="eia2.large", os="amazon-linux",
                            subnet_id="subnet-b", key_name="mykey", ssh_cidr=SSH_CIDR),
               hand_facts(key_pairs=["mykey"]), everything)
    assert everything.asked == []


# ---- the Plan as data --------------------------------------------------------------------------

def test_a_fresh_plan_is_json_and_creates_everything(seeded):
    plan = yes(seeded.west, name="demo")
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["name"] == "demo" and data["ami_id"] == seeded.image_ids[AL44]
    assert data["warnings"] == []
    assert [(i["kind"], i["action"]) for i in data["items"]] == [
        ("iam-role", CREATE), ("instance-profile", CREATE), ("security-group", CREATE), ("vpc-endpoint", CREATE),
        ("key-pair", CREATE), ("instance", CREATE)]
    assert data["items"][-1]["detail"] == f"eia2.medium, {AL44}"


def test_a_rerun_reuses_everything_and_a_sibling_shares_the_endpoint(cli, account):
    first = cli(*setup_args("demo"), "--output", "json")
    assert first.code == 0, first.stderr
    made = {r["kind"]: r["id"] for r in first.json["result"]["resources"]}
    facts = discover.gather(account, instance_type="m5.xlarge", public_ip_lookup=lambda: "198.51.100.4")

    again = build_plan(SetupRequest(instance_type="m5.xlarge", name="demo", ssh_cidr=SSH_CIDR), facts,
                       DefaultsAsker())
    assert again.instance_id == made["instance"] and again.security_group_id == made["security-group"]
    assert [(i.kind, i.name, i.action) for i in again.items()] == [
        ("iam-role", "amazonei-setup-demo", REUSE), ("instance-profile", "amazonei-setup-demo", REUSE),
        ("security-group", made["security-group"], REUSE), ("vpc-endpoint", made["vpc-endpoint"], REUSE),
        ("key-pair", "amazonei-setup-demo", REUSE), ("instance", made["instance"], REUSE)]
    json.dumps(again.to_dict())

    sibling = build_plan(SetupRequest(instance_type="m5.xlarge", name="other", ssh_cidr=SSH_CIDR,
                                      subnet_id=again.subnet_id), facts, DefaultsAsker())
    actions = {i.kind: (i.name, i.action) for i in sibling.items()}
    assert actions["iam-role"] == ("amazonei-setup-other", CREATE)
    assert actions["security-group"] == ("amazonei-setup-other", CREATE)
    assert actions["vpc-endpoint"][0] == made["vpc-endpoint"] and actions["vpc-endpoint"][1] in (REUSE, UPDATE)
    assert actions["instance"] == ("m5.xlarge", CREATE)

    elsewhere = build_plan(SetupRequest(instance_type="m5.xlarge", name="third", ssh_cidr=SSH_CIDR, new_key=True,
                                        subnet_id=account.ec2.describe_subnets(Filters=[
                                            {"Name": "availability-zone", "Values": ["us-west-2c"]}])
                                        ["Subnets"][0]["SubnetId"]), facts, DefaultsAsker())
    endpoint = next(i for i in elsewhere.items() if i.kind == "vpc-endpoint")
    assert (endpoint.name, endpoint.action) == (made["vpc-endpoint"], UPDATE)
    assert "add subnet" in endpoint.detail


def test_typing_the_name_of_an_existing_deployment_converges_onto_it(cli, account):
    first = cli(*setup_args("demo"), "--output", "json")
    assert first.code == 0, first.stderr
    facts = discover.gather(account, instance_type="m5.xlarge", public_ip_lookup=lambda: "198.51.100.4")
    plan = build_plan(SetupRequest(instance_type="m5.xlarge", ssh_cidr=SSH_CIDR), facts, ScriptedAsker(name="demo"))
    assert plan.instance_id == first.json["result"]["instance_id"]
    assert {i.kind: i.action for i in plan.items()}["instance"] == REUSE


def test_a_rerun_cannot_silently_change_the_running_instance(cli, account):
    assert cli(*setup_args("demo")).code == 0
    bigger = discover.gather(account, instance_type="m5.2xlarge", public_ip_lookup=lambda: "198.51.100.4")
    with pytest.raises(UsageError, match=r"already runs i-\w+ with --instance-type m5.xlarge, not m5.2xlarge"):
        yes(bigger, instance_type="m5.2xlarge", name="demo")
    same = discover.gather(account, instance_type="m5.xlarge", public_ip_lookup=lambda: "198.51.100.4")
    with pytest.raises(UsageError, match=r"--accelerator-type eia2.medium, not eia2.large"):
        yes(same, name="demo", accelerator_type="eia2.large")
    assert yes(same, name="demo", accelerator_type="eia2.medium").instance_id


# ---- the real prompts, through prompt_toolkit ------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@contextmanager
def keyboard(keys: str):
    """A QuestionaryAsker reading `keys` from a pipe and drawing on a captured 120x40 vt100 screen.

    The pipe is closed after the keys: a question the test did not expect fails with EOFError instead of
    waiting forever for a key.
    """
    from prompt_toolkit.data_structures import Size
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output.vt100 import Vt100_Output

    screen = io.StringIO()
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        pipe.close()
        output = Vt100_Output(screen, lambda: Size(rows=40, columns=120), term="xterm")
        yield QuestionaryAsker(input=pipe, output=output), screen


def seen(screen: io.StringIO) -> str:
    return ANSI.sub("", screen.getvalue())


def interactive(*extra: str) -> list[str]:
    return ["--region", REGION, "--instance-type", "m5.xlarge", *extra]


def launched_instance(account) -> dict:
    reservations = account.ec2.describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["running"]}])["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    assert len(instances) == 1
    return instances[0]


def test_prompts_ask_only_what_flags_left_open(cli, account):
    # Open: OS, subnet, then the confirmation. Enter takes each default.
    with keyboard(ENTER * 3) as (asker, screen):
        run = cli(*interactive("--name", "demo", "--accelerator-type", "eia2.large", "--ssh-cidr", SSH_CIDR),
                  asker=asker, tty=True)
    assert run.code == 0, run.stderr
    text = seen(screen)
    for question in ("Operating system (Deep Learning AMI):", "Subnet (only AZs that offer Elastic Inference):",
                     "Create these resources?"):
        assert question in text
    for settled in ("Deployment name", "Elastic Inference accelerator", "Allow SSH from", "Key pair", "VPC:"):
        assert settled not in text
    instance = launched_instance(account)
    assert instance["InstanceType"] == "m5.xlarge"
    assert instance["ImageId"] == account.ec2.describe_images(
        Filters=[{"Name": "name", "Values": [AL44]}])["Images"][0]["ImageId"]
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["amazonei-setup:accelerator"] == "eia2.large"
    assert "ssh -i " in run.stdout  # the ready summary is the result: stdout


def test_arrow_key_choices_land_in_the_created_instance(cli, account, isolated_env):
    account.ec2.create_key_pair(KeyName="mykey")
    launches = record(account.ec2, "RunInstances")
    subnets = sorted(account.ec2.describe_subnets()["Subnets"], key=lambda s: s["AvailabilityZone"])
    keys = (DOWN + ENTER      # accelerator: eia2.medium -> eia2.large
            + DOWN + ENTER    # OS: Amazon Linux -> Ubuntu 16.04
            + DOWN + ENTER    # subnet: the second one offered
            + DOWN + ENTER    # key pair: mykey -> create a new key pair
            + ENTER           # SSH from: the looked-up address
            + "y")            # confirm
    with keyboard(keys) as (asker, screen):
        run = cli(*interactive("--name", "demo"), asker=asker, tty=True)
    assert run.code == 0, run.stderr

    instance = launched_instance(account)
    ubuntu = account.ec2.describe_images(Filters=[{"Name": "name", "Values": [UBUNTU40]}])["Images"][0]
    assert instance["ImageId"] == ubuntu["ImageId"]
    assert instance["SubnetId"] == subnets[1]["SubnetId"]
    assert instance["KeyName"] == "amazonei-setup-demo"
    # The request as the tool sent it (moto drops the accelerator from the instance it stores).
    assert [launch["ElasticInferenceAccelerators"] for launch in launches] == [[{"Type": "eia2.large", "Count": 1}]]
    pem = isolated_env / ".ssh" / "amazonei-setup-demo.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o400
    group = account.ec2.describe_security_groups(GroupNames=["amazonei-setup-demo"])["SecurityGroups"][0]
    assert {r["CidrIp"] for p in group["IpPermissions"] for r in p["IpRanges"]} == {SSH_CIDR}

    text = seen(screen)
    assert "Ubuntu 16.04" in text and "eia2.large" in text and "create a new key pair (amazonei-setup-demo)" in text
    assert f"ssh -i {pem} ubuntu@" in run.stdout


def test_declining_the_confirmation_creates_nothing(cli, account):
    before = snapshot(account)
    with keyboard(ENTER * 5 + "n") as (asker, screen):
        run = cli(*interactive(), asker=asker, tty=True)
    assert run.code == 0, run.stderr
    assert "Create these resources?" in seen(screen)
    assert run.stdout == "Nothing was created.\n"
    assert snapshot(account) == before
    assert not list((Path.home() / ".ssh").glob("*.pem"))


def test_nothing_is_created_before_the_confirmation(cli, account):
    calls: list[str] = []

    def note(model, **_):
        if not model.name.startswith(("Describe", "Get", "List")):
            calls.append(f"{model.service_model.service_name}:{model.name}")

    for client in (account.ec2, account.iam, account.sts):
        client.meta.events.register(f"before-call.{client.meta.service_model.service_name}", note)

    class NotingAsker(QuestionaryAsker):
        def confirm(self, message, default=False):
            calls.append("confirmation")
            return super().confirm(message, default)

    with keyboard(ENTER * 4 + "y") as (plain_asker, _):
        asker = NotingAsker(**plain_asker.prompt_kwargs)
        run = cli(*interactive("--ssh-cidr", SSH_CIDR), asker=asker, tty=True)
    assert run.code == 0, run.stderr
    assert calls[0] == "confirmation", f"created before the user confirmed: {calls[:calls.index('confirmation')]}"
    assert "ec2:RunInstances" in calls


def test_end_of_input_at_a_prompt_is_an_interruption_not_an_unexpected_error(cli, account):
    # Ctrl-D on an emptied text prompt, or a terminal that closes, ends the input: prompt_toolkit raises
    # EOFError. The user must get what Ctrl-C gives (exit 130, "Interrupted"), not an internal error.
    before = snapshot(account)
    with keyboard("\x15") as (asker, _):  # Ctrl-U empties the name, then the input ends
        run = cli(*interactive(), asker=asker, tty=True)
    assert "Unexpected error" not in run.stderr
    assert run.code == 130 and "Interrupted" in run.stderr
    assert snapshot(account) == before
