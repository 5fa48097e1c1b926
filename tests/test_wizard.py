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

from amazonei_setup.aws import discover
from amazonei_setup.aws.discover import Facts, Image, InstanceType, Subnet, Vpc
from amazonei_setup.cli.wizard import DefaultsAsker, QuestionaryAsker, SetupRequest, build_plan, name_problem
from amazonei_setup.core.errors import UsageError
from amazonei_setup.core.plan import CREATE, REUSE, UPDATE
from tests.conftest import ACCOUNT, REGION, SSH_CIDR, isolate, record, setup_args, snapshot

AL44 = "Deep Learning AMI (Amazon Linux) Version 44.0"
UBUNTU40 = "Deep Learning AMI (Ubuntu 16.04) Version 40.0"
DOWN, ENTER = "\x1b[B", "\r"


# ---- facts ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """Facts of the seeded moto account in us-west-2 and in ap-northeast-1, gathered once (pure data)."""
    from moto import mock_aws

    from amazonei_setup.aws.client import Aws
    from amazonei_setup.sandbox.account import DLAMI_OWNER_ID, seed_deep_learning_amis

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
        self.asked.append(SimpleNamespace(message=message, options=options, default=default, hint=hint))
        return self._answer(flag, options, default)

    def text(self, message, default, *, flag, validate):
        self.asked.append(SimpleNamespace(message=message, options=None, default=default, hint=""))
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
    assert [o.value for o in offered.options if not o.separator] == ["eia1.medium", "eia1.large", "eia1.xlarge"]
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
    plan = yes(hand_facts(), name="lab")  # no key pair of that name: the file is a leftover, kept beside
    assert (plan.create_key, plan.key_path, plan.key_set_aside) == (True, str(pem), f"{pem}.old")
    assert pem.read_text() == "someone's key", "the wizard only decides; setup moves it once the new key exists"


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
    assert plan.ssh_cidr == "198.51.100.0/24"
    assert plan.warnings == ("198.51.100.77/24 is the range 198.51.100.0/24 to EC2: SSH is allowed from all of its 256 "
                             "addresses; for that one machine use 198.51.100.77/32.",)
    world = yes(hand_facts(), name="lab", ssh_cidr="0.0.0.0/0")
    assert any("whole internet" in w for w in world.warnings)


# ---- what is asked ------------------------------------------------------------------------------------

def test_every_open_choice_is_asked_once_and_a_single_vpc_is_not_a_choice():
    asker = ScriptedAsker()
    build_plan(SetupRequest(instance_type="m5.xlarge"), hand_facts(key_pairs=["mykey"]), asker)
    assert asker.flags == ["--name", "--accelerator-type", "--os", "--subnet-id", "--key-name", "--ssh-cidr",
                           "--idle-stop"]
    assert asker.question("--ssh-cidr").default == "198.51.100.4/32"
    assert re.fullmatch(r"amazonei-[0-9a-f]{6}", asker.question("--name").default)


def test_flags_settle_their_questions_and_only_the_rest_is_asked():
    asker = ScriptedAsker()
    plan = build_plan(SetupRequest(instance_type="m5.xlarge", name="lab", accelerator_type="eia2.large",
                                   ssh_cidr=SSH_CIDR), hand_facts(key_pairs=["mykey"]), asker)
    assert asker.flags == ["--os", "--subnet-id", "--key-name", "--idle-stop"]
    assert plan.accelerator_type == "eia2.large" and plan.name == "lab"

    everything = ScriptedAsker()
    build_plan(SetupRequest(instance_type="m5.xlarge", name="lab", accelerator_type="eia2.large", os="amazon-linux",
                            subnet_id="subnet-b", key_name="mykey", ssh_cidr=SSH_CIDR, idle_stop=60),
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


def type_then_close(pipe, screen: io.StringIO, keys: str, *, until: str, within: float = 60.0):
    """Type `keys` into the pipe, then end the input once `until` is on the screen (or at the deadline, and the
    test's assertions say what is missing). The prompt reads the pipe in the test's thread; this types in another."""
    import threading
    import time

    def typing():
        pipe.send_text(keys)
        deadline = time.monotonic() + within
        while until not in " ".join(seen(screen).split()) and time.monotonic() < deadline:
            time.sleep(0.01)
        pipe.close()

    typist = threading.Thread(target=typing, daemon=True)
    typist.start()
    return typist


def interactive(*extra: str) -> list[str]:
    return ["--region", REGION, "--instance-type", "m5.xlarge", *extra]


def launched_instance(account) -> dict:
    reservations = account.ec2.describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["running"]}])["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    assert len(instances) == 1
    return instances[0]


def test_prompts_ask_only_what_flags_left_open(cli, account):
    # Open: OS, subnet, idle auto-stop, then the confirmation. Enter takes each default.
    with keyboard(ENTER * 4) as (asker, screen):
        run = cli(*interactive("--name", "demo", "--accelerator-type", "eia2.large", "--ssh-cidr", SSH_CIDR),
                  asker=asker, tty=True)
    assert run.code == 0, run.stderr
    text = seen(screen)
    for question in ("Operating system:", "Subnet:", "Idle auto-stop:",
                     "Create these resources?"):
        assert question in text
    for settled in ("Deployment name", "Accelerator:", "Host instance type", "Allow SSH from", "Key pair", "VPC:"):
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
            + ENTER           # idle auto-stop: off
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
    with keyboard(ENTER * 6 + "n") as (asker, screen):
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

    with keyboard(ENTER * 5 + "y") as (plain_asker, _):
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


# ---- the EI host: asked when --instance-type is not given -------------------------------------------

def test_without_instance_type_the_wizard_asks_for_the_host_cheapest_first_with_prices():
    asker = ScriptedAsker(instance_type="c5.2xlarge")
    plan = build_plan(SetupRequest(instance_type=None, name="lab", ssh_cidr=SSH_CIDR, accelerator_type="eia2.large"),
                      hand_facts(instance_type=None), asker)
    assert asker.flags == ["--instance-type", "--os", "--subnet-id", "--idle-stop"]
    question = asker.question("--instance-type")
    assert question.message == "Host instance type:"
    values = [o.value for o in question.options]
    assert values[0] == question.default == "m5.xlarge"  # the cheapest sensible host is the default
    assert "m5.large" not in values and "c5.large" not in values and not any(v.startswith("t3") for v in values)
    titles = {o.value: o.title for o in question.options}
    # The host's own price, then with the accelerator already chosen (m5.xlarge 0.192 + eia2.large 0.24).
    assert "4 vCPU" in titles["m5.xlarge"] and "16 GiB" in titles["m5.xlarge"]
    assert "$0.192/h" in titles["m5.xlarge"] and "$0.432/h" in titles["m5.xlarge"]
    assert "with eia2.large" in question.hint
    for option in question.options:
        assert len(f"? {question.message} {option.title}") <= 80, option.title  # echoed after the answer
    assert (plan.instance_type, plan.hourly_usd) == ("c5.2xlarge", 0.58)


def test_yes_without_instance_type_takes_m5_xlarge():
    plan = yes(hand_facts(instance_type=None), instance_type=None, name="lab")
    assert (plan.instance_type, plan.accelerator_type, plan.hourly_usd) == ("m5.xlarge", "eia2.medium", 0.312)


def test_the_accelerator_rows_label_their_tflops_and_fit_80_columns_when_echoed():
    asker = ScriptedAsker()
    build_plan(SetupRequest(instance_type=None, name="lab", ssh_cidr=SSH_CIDR), hand_facts(instance_type=None), asker)
    question = asker.question("--accelerator-type")
    titles = {o.value: o.title for o in question.options}
    assert re.search(r"eia2\.large\s+4 GiB\s+FP32/FP16 2/16 TFLOPS\s+\$0\.432/h", titles["eia2.large"])
    assert "with m5.xlarge" in question.hint  # the price includes the host the next question defaults to
    for option in question.options:
        assert len(f"? {question.message} {option.title}") <= 80, option.title
        assert len(f"? {question.message} {question.hint}") <= 80


def test_a_bad_name_at_the_prompt_says_why_within_80_columns(cli, account):
    from prompt_toolkit.data_structures import Size
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output.vt100 import Vt100_Output

    screen = io.StringIO()
    with create_pipe_input() as pipe:
        # Ctrl-U empties the default, then a name with _ and capitals; the input ends once the reason is drawn
        # (prompt_toolkit draws it a moment after the key, and an input that ended first left it unseen).
        typist = type_then_close(pipe, screen, "\x15Bad_Name" + ENTER, until=name_problem("Bad_Name"))
        asker = QuestionaryAsker(input=pipe, output=Vt100_Output(screen, lambda: Size(rows=30, columns=80),
                                                                 term="xterm"))
        run = cli(*interactive("--ssh-cidr", SSH_CIDR), asker=asker, tty=True)
        typist.join()
    assert run.code == 130  # the input ended at the question asked again
    # prompt_toolkit draws the reason in a one-line toolbar and cuts what does not fit the 80 columns.
    assert "Bad_Name" in seen(screen)
    assert name_problem("Bad_Name") in seen(screen)  # whole


# ---- a re-run that changes nothing -------------------------------------------------------------------

class ConfirmCountingAsker(ScriptedAsker):
    def __init__(self, **answers):
        super().__init__(**answers)
        self.confirms: list[str] = []

    def confirm(self, message, default=False):
        self.confirms.append(message)
        return True


def test_a_converging_rerun_changes_nothing_so_nothing_is_confirmed(cli, account):
    first = cli(*setup_args("demo"), "--output", "json")
    assert first.code == 0, first.stderr
    facts = discover.gather(account, instance_type="m5.xlarge", public_ip_lookup=lambda: "198.51.100.4")
    assert not yes(facts, name="demo", ssh_cidr=SSH_CIDR).changes_anything
    assert yes(facts, name="other", ssh_cidr=SSH_CIDR).changes_anything  # a new deployment creates
    assert yes(facts, name="demo", ssh_cidr="203.0.113.9/32").changes_anything  # an SSH range to change

    asker = ConfirmCountingAsker()
    again = cli("--region", REGION, "--instance-type", "m5.xlarge", "--name", "demo", "--ssh-cidr", SSH_CIDR,
                asker=asker, tty=True)
    assert again.code == 0, again.stderr
    assert asker.confirms == []
    assert "Nothing to change: deployment demo is up to date." in again.stderr
    assert "Ready: demo" in again.stdout and first.json["result"]["instance_id"] in again.stdout


def test_a_stopped_instance_is_a_change_to_confirm(cli, account):
    first = cli(*setup_args("demo"), "--output", "json")
    assert first.code == 0, first.stderr
    account.ec2.stop_instances(InstanceIds=[first.json["result"]["instance_id"]])
    facts = discover.gather(account, instance_type="m5.xlarge", public_ip_lookup=lambda: "198.51.100.4")
    plan = yes(facts, name="demo", ssh_cidr=SSH_CIDR)
    assert plan.changes_anything
    assert {i.kind: (i.action, i.detail) for i in plan.items()}["instance"] == (UPDATE, "stopped: will be started")

    asker = ConfirmCountingAsker()
    again = cli("--region", REGION, "--instance-type", "m5.xlarge", "--name", "demo", "--ssh-cidr", SSH_CIDR,
                asker=asker, tty=True)
    assert again.code == 0, again.stderr
    assert asker.confirms == ["Create these resources?"] and "Nothing to change" not in again.stderr


# ---- the equivalent non-interactive command ---------------------------------------------------------------

def request_from(argv: list[str]) -> SetupRequest:
    """What cli.parse makes of a command line, as the CLI hands it to the wizard."""
    from amazonei_setup.cli.main import parse

    args = parse(argv)
    assert args.yes and args.command == "setup"
    return SetupRequest(instance_type=args.instance_type, name=args.name, accelerator_type=args.accelerator_type,
                        os=args.os, ami_id=args.ami_id, vpc_id=args.vpc_id, subnet_id=args.subnet_id,
                        key_name=args.key_name, new_key=args.new_key, key_dir=args.key_dir, ssh_cidr=args.ssh_cidr,
                        volume_size=args.volume_size, family=args.family, count=args.count, min_count=args.min_count)


def round_trip(plan, facts, program="python amazonei_setup.py", account_flags=""):
    """The plan's command, parsed by cli.parse and planned again with --yes on the same facts."""
    import shlex

    command = plan.equivalent_command(program, account_flags)
    argv = shlex.split(command)
    prefix = shlex.split(program) + shlex.split(account_flags)
    assert argv[:len(prefix)] == prefix and argv[-1] == "--yes"
    return command, build_plan(request_from(argv[len(prefix):]), facts, DefaultsAsker())


def test_the_equivalent_command_spells_every_choice(isolated_env):
    facts = hand_facts(key_pairs=["alice", "bob"], instance_type=None)
    plan = build_plan(SetupRequest(instance_type=None), facts, ScriptedAsker(
        name="lab", accelerator_type="eia2.large", instance_type="c5.2xlarge", os="ubuntu-16.04",
        subnet_id="subnet-b", key_name="bob", ssh_cidr="203.0.113.0/24"))
    command = plan.equivalent_command("amazonei-setup", " --profile work")
    assert command == ("amazonei-setup --profile work --region us-west-2 --name lab --instance-type c5.2xlarge "
                       "--accelerator-type eia2.large --os ubuntu-16.04 --vpc-id vpc-1 --subnet-id subnet-b "
                       "--key-name bob --ssh-cidr 203.0.113.0/24 --yes")
    _, again = round_trip(plan, facts, "amazonei-setup", " --profile work")
    assert again == plan


@pytest.mark.parametrize("request_, answers", [
    (dict(), dict(name="fresh")),  # every default: a new key, the looked-up address
    (dict(name="vol", volume_size=250, key_dir="keys here"), dict(accelerator_type="eia1.large",
                                                                  instance_type="r5.2xlarge")),
    (dict(name="fleet", count=4, min_count=2, ami_id="ami-custom"), dict()),
    (dict(name="gpu"), dict(accelerator_type="gpu", instance_type="g5.xlarge")),
    (dict(name="inf", family="inf2", instance_type="inf2.8xlarge"), dict()),
])
def test_the_equivalent_command_parses_back_to_the_same_plan(isolated_env, request_, answers):
    if "key_dir" in request_:
        request_["key_dir"] = str(isolated_env / request_["key_dir"])
    facts = hand_facts(
        instance_type=None, requested_image=image(AL44, "2021-06-01", "ami-custom"),
        family_images={"inf2": image("Deep Learning AMI Neuron (Ubuntu 24.04) 1", "2025-01-01", "ami-neuron"),
                       "gpu": image("Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 1", "2025-01-01",
                                    "ami-gpu")},
        offerings={"inf2.8xlarge": ("us-west-2a",), "inf2.xlarge": ("us-west-2a",), "g5.xlarge": ("us-west-2b",)})
    request = SetupRequest(**{"instance_type": None, **request_})
    plan = build_plan(request, facts, ScriptedAsker(**answers))
    command, again = round_trip(plan, facts, "python -m amazonei_setup", " --sandbox")
    assert again == plan, command
    assert command.startswith("python -m amazonei_setup --sandbox --region us-west-2 ")


def test_an_interactive_setup_ends_with_the_command_that_repeats_it(cli, account, isolated_env):
    import shlex

    asker = ScriptedAsker(accelerator_type="eia2.large", instance_type="m5.2xlarge")
    run = cli("--region", REGION, "--name", "demo", "--profile", "default", asker=asker, tty=True)
    assert run.code == 0, run.stderr
    screen = run.stdout.splitlines()  # a result: on stdout, after the ready summary
    at = screen.index("The same setup without questions:")
    command = screen[at + 1]  # a line of its own, after the ready panel and its commands
    assert at > next(i for i, line in enumerate(screen) if "Ready: demo" in line)
    subnet_id = launched_instance(account)["SubnetId"]
    assert command == ("python amazonei_setup.py --profile default --region us-west-2 --name demo --instance-type "
                       f"m5.2xlarge --accelerator-type eia2.large --os amazon-linux --vpc-id "
                       f"{account.ec2.describe_subnets(SubnetIds=[subnet_id])['Subnets'][0]['VpcId']} --subnet-id "
                       f"{subnet_id} --new-key --ssh-cidr 198.51.100.4/32 --yes")
    request_from(shlex.split(command)[2:])  # cli.parse takes it as it is

    # Run as printed (a re-run of the same name): it converges, asks nothing and changes nothing.
    again = cli(*shlex.split(command)[2:])
    assert again.code == 0, again.stderr
    assert "Nothing to change: deployment demo is up to date." in again.stderr
    assert "The same setup without questions:" not in again.stderr  # --yes: nothing was asked


def test_every_question_and_every_answer_fits_80_columns_when_echoed():
    """questionary echoes the chosen row after its question: at 80 columns a longer line wraps into the next."""
    long_name = "the production inference subnet that the platform team manages for everyone"
    facts = hand_facts(
        instance_type=None, key_pairs=["alice", "bob"],
        vpcs=[Vpc("vpc-0123456789abcdef0", "10.0.0.0/16", True, ""),
              Vpc("vpc-0fedcba9876543210", "10.100.0.0/16", False, "a very long VPC name " * 4)],
        subnets=[Subnet("subnet-0123456789abcdef0", "vpc-0123456789abcdef0", "us-west-2a", "10.0.128.0/20", True, 250,
                        long_name),
                 Subnet("subnet-0123456789abcdef1", "vpc-0123456789abcdef0", "us-west-2b", "10.0.144.0/20", False,
                        250, "")],
        family_images={"inf2": None, "gpu": None})
    asker = ScriptedAsker(vpc_id="vpc-0123456789abcdef0")
    build_plan(SetupRequest(instance_type=None), facts, asker)
    assert asker.flags == ["--name", "--accelerator-type", "--instance-type", "--os", "--vpc-id", "--subnet-id",
                           "--key-name", "--ssh-cidr", "--idle-stop"]
    for question in asker.asked:
        assert len(f"? {question.message} {getattr(question, 'hint', '')}") <= 80, question.message
        for option in question.options or []:
            assert len(f"? {question.message} {option.title}") <= 80, (question.message, option.title)
    subnets = {o.value: o.title for o in asker.question("--subnet-id").options}
    assert subnets["subnet-0123456789abcdef0"].startswith("subnet-0123456789abcdef0  us-west-2a  10.0.128.0/20")
    assert subnets["subnet-0123456789abcdef0"].endswith("public IPs the …")  # the name, cut at the end only
    assert asker.question("--subnet-id").hint == "(in an AZ that offers Elastic Inference)"


# ---- what the wizard says about an answer it changes or doubts ----------------------------------------------------

def test_a_range_with_host_bits_is_said_not_silently_widened(cli, account):
    result = cli(*setup_args("wide"), "--ssh-cidr", "10.1.2.3/24")
    assert result.code == 0, result.stderr
    said = " ".join(result.stderr.split())
    assert "10.1.2.3/24 is the range 10.1.2.0/24" in said and "10.1.2.3/32" in said, said

    asker = ScriptedAsker(ssh_cidr="10.1.2.3/24")  # typed at the prompt: the same sentence
    plan = build_plan(SetupRequest(instance_type="m5.xlarge", name="lab"), hand_facts(), asker)
    assert plan.ssh_cidr == "10.1.2.0/24"
    assert any("10.1.2.3/24 is the range 10.1.2.0/24" in w for w in plan.warnings), plan.warnings
    assert not yes(hand_facts(), name="lab", ssh_cidr="10.1.2.0/24").warnings  # a range as written: nothing to say


def test_an_ei_host_below_the_offered_ones_is_said_before_it_is_launched(cli, account):
    result = cli(*setup_args("tiny"), "--instance-type", "t3.micro", "--dry-run")
    said = " ".join(result.stderr.split())
    assert "t3.micro (2 vCPU, 1 GiB) is smaller than the hosts setup offers for Elastic Inference" in said, said
    assert "m5.xlarge" in said
    plan = yes(hand_facts(instance_type=InstanceType("t3.micro", ("x86_64",), 2, 1024)), name="lab",
               instance_type="t3.micro", ssh_cidr=SSH_CIDR)
    assert any("t3.micro (2 vCPU, 1 GiB) is smaller" in w and "price" in w for w in plan.warnings), plan.warnings
    assert not yes(hand_facts(), name="lab", ssh_cidr=SSH_CIDR).warnings  # m5.xlarge: one of the offered hosts


def test_an_alternatives_row_names_its_types_when_the_type_is_asked_next():
    """The answered question stays on the screen: a gpu row naming g4dn.xlarge alone, then g6.xlarge chosen at the
    next question, left `Accelerator: gpu  g4dn.xlarge` above a plan for g6.xlarge."""
    from amazonei_setup.core import catalog

    asker = ScriptedAsker(accelerator_type="gpu", instance_type="g6.xlarge")
    facts = hand_facts(family_images={"inf2": None, "gpu": None}, instance_type=None)
    with pytest.raises(UsageError):  # no GPU image in these hand-made facts; the questions were asked
        build_plan(SetupRequest(instance_type=None, name="q", ssh_cidr=SSH_CIDR), facts, asker)
    question = asker.question("--accelerator-type")
    titles = {o.value: o.title for o in question.options}
    for key in ("gpu", "inf2"):
        for each in catalog.FAMILIES[key].instance_types:
            assert each.split(".")[0] in titles[key] or each.split(".")[1] in titles[key], (each, titles[key])
    assert titles["gpu"].split()[1] == "g4dn/g5/g6.xlarge" and "from $0.526/h" in titles["gpu"]
    for option in question.options:
        assert len(f"? {question.message} " + option.title) <= 80, option.title


def test_at_60_columns_every_answer_is_echoed_whole_on_its_line(cli, account):
    """prompt_toolkit breaks a line at the screen's edge, mid-word (`172.31.0.0/2` / `0`): a row wider than the
    screen is cut between words instead (ids first, so they stay whole), and a long hint wraps between words."""
    from prompt_toolkit.data_structures import Size
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output.vt100 import Vt100_Output

    from tests.test_terminal import Screen

    output = io.StringIO()
    with create_pipe_input() as pipe:
        pipe.send_text(ENTER * 4)  # accelerator, OS, subnet, idle auto-stop; the input ends at the confirm
        pipe.close()
        asker = QuestionaryAsker(input=pipe, output=Vt100_Output(output, lambda: Size(rows=40, columns=60),
                                                                 term="xterm"))
        run = cli(*interactive("--name", "narrow", "--ssh-cidr", SSH_CIDR), asker=asker, tty=True)
    assert run.code == 130, run.stderr
    screen = Screen(40, 60)
    screen.feed(output.getvalue())
    echoed = [line for line in screen.lines() if line]
    assert [line.split(":")[0] for line in echoed[:4]] == ["? Accelerator", "? Operating system", "? Subnet",
                                                           "? Idle auto-stop"], "\n".join(echoed)
    assert all(line.startswith("? ") for line in echoed), "\n".join(echoed)  # no answer ran on to a second line
    subnet = next(line for line in echoed if line.startswith("? Subnet"))
    assert re.search(r"subnet-[0-9a-f]{17} us-west-2a 172\.31\.\d+\.\d+/\d+", subnet), subnet
    hint = re.search(r"\(Elastic Inference[^)]*\)", " ".join(seen(output).split()))
    assert hint and "$/h with m5.xlarge" in hint.group(0)  # the hint is all there, wrapped between words


def test_an_option_whose_value_is_none_answers_none_not_its_title():
    """questionary gives a Choice with value None its title as the value: the On-Demand answer (None) came back as
    a title, which Plan.spot took for Spot."""
    from amazonei_setup.cli.wizard import Option

    options = [Option("On-Demand: runs until you stop it", None), Option("Spot", "required")]
    with keyboard("\r") as (asker, _):
        assert asker.select("Capacity:", options, None, flag="--spot") is None
    with keyboard("\x1b[B\r") as (asker, _):
        assert asker.select("Capacity:", options, None, flag="--spot") == "required"
