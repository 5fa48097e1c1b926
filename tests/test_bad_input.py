"""Bad input (issue 4): every mistake gets exit 2, one `error:` sentence naming the flag to fix,
no traceback, and nothing created: validation happens before the first create call.

Flag-level mistakes run with no credentials and no AWS at all (`bare`): if the tool made any AWS
call first, it would fail on credentials (exit 1) instead. Mistakes only AWS can reveal run
against the moto account and compare `snapshot` before and after.
"""
from __future__ import annotations

import io
import json
import re

import pytest

from tests.conftest import ACCOUNT, REGION, WIDE, inject, record, setup_args, snapshot

OTHER_OWNER = f"arn:aws:iam::{ACCOUNT}:user/someone-else"
EI_SERVICE = f"com.amazonaws.{REGION}.elastic-inference.runtime"


# ---- helpers ---------------------------------------------------------------------------------

def text_of(stderr: str) -> str:
    """stderr as one line of words: rich wraps long lines and draws panel borders."""
    return " ".join(stderr.replace("│", " ").split())


def assert_usage_error(result, *flags: str) -> str:
    assert result.code == 2, (result.code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    message = text_of(result.stderr[result.stderr.index("error:"):])
    for flag in flags:
        assert flag in message, message
    return message


class Bare:
    """main() with no AWS: no `aws` injected, no credentials, no IMDS, no public-IP lookup."""

    def __init__(self, monkeypatch):
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def __call__(self, *argv: str, tty: bool = False):
        from amazonei_setup.cli.environment import Environment
        from amazonei_setup.cli.main import main
        from tests.conftest import CliResult

        out, err = io.StringIO(), io.StringIO()
        env = Environment(stdin_isatty=tty, stdout=out, stderr=err, public_ip_lookup=lambda: None,
                          sleep=lambda seconds: None, width=WIDE)
        code = main(list(argv), env)
        return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def bare(monkeypatch):
    return Bare(monkeypatch)


@pytest.fixture
def before(account):
    return snapshot(account)


def with_region(args: list[str], region: str) -> list[str]:
    return [region if a == REGION else a for a in args]


def image_id(account, name: str) -> str:
    images = account.ec2.describe_images(Filters=[{"Name": "name", "Values": [name]}])["Images"]
    assert len(images) == 1, images
    return images[0]["ImageId"]


# ---- flags argparse (or the first line of _run) rejects: no AWS needed ---------------------------

@pytest.mark.parametrize(("extra", "flag"), [
    (["--ssh-cidr", "1.2.3.4/33"], "--ssh-cidr"),  # a bare address is taken as /32 since issue 15
    (["--ssh-cidr", "999.1.1.1/32"], "--ssh-cidr"),
    (["--ssh-cidr", "abc"], "--ssh-cidr"),
    (["--ssh-cidr", ""], "--ssh-cidr"),
    (["--name", "Bad_Name"], "--name"),
    (["--name", "a" * 40], "--name"),
    (["--name", ""], "--name"),
    (["--name", "-leading-dash"], "--name"),
    (["--volume-size", "5"], "--volume-size"),
    (["--volume-size", "99999"], "--volume-size"),
    (["--volume-size", "ten"], "--volume-size"),
    (["--os", "windows"], "--os"),
    (["--output", "yaml"], "--output"),
    (["--frobnicate"], "--frobnicate"),
])
def test_bad_flag_values_fail_before_any_aws_call(bare, extra, flag):
    result = bare(*setup_args("flags"), *extra)
    assert_usage_error(result, flag)


def test_missing_instance_type_is_asked_so_without_a_terminal_it_names_yes(bare):
    # --instance-type is no longer required: the wizard asks for it, so without a terminal (and no --yes, which
    # takes m5.xlarge) the one sentence names --yes, before any AWS call.
    result = bare("--region", REGION)
    assert "--instance-type" not in assert_usage_error(result, "--yes")


@pytest.mark.parametrize("name", ["Bad_Name", "a" * 40, ""])
def test_teardown_rejects_an_invalid_name(bare, name):
    assert_usage_error(bare("teardown", "--region", REGION, "--name", name, "--yes"), "--name")


@pytest.mark.parametrize("argv", [
    ["--region", REGION, "--instance-type", "m5.xlarge"],
    ["setup", "--region", REGION, "--instance-type", "m5.xlarge", "--name", "x", "--ssh-cidr", "1.2.3.4/32"],
    ["teardown", "--region", REGION, "--name", "x"],
])
def test_no_terminal_and_no_yes_names_yes_at_once(bare, argv):
    result = bare(*argv, tty=False)
    message = assert_usage_error(result, "--yes")
    assert "terminal" in message
    assert "Looking" not in result.stderr  # not a single look-up was started


def test_usage_error_json_envelope(bare):
    result = bare(*setup_args("json"), "--volume-size", "5", "--output", "json")
    assert_usage_error(result, "--volume-size")
    document = json.loads(result.stdout)
    assert document == {"version": 1, "command": "setup", "status": "error",
                        "error": {"code": "usage", "message": document["error"]["message"]}}
    assert "--volume-size" in document["error"]["message"]


def test_usage_error_json_envelope_with_equals_form(bare):
    """`--output=json` is the same flag as `--output json` to argparse: the envelope must come too."""
    result = bare(*setup_args("json"), "--volume-size", "5", "--output=json")
    assert_usage_error(result, "--volume-size")
    assert result.stdout.strip(), "no JSON document on stdout for --output=json"
    document = json.loads(result.stdout)
    assert (document["status"], document["error"]["code"]) == ("error", "usage")


def test_no_json_envelope_when_json_is_only_a_value_of_another_flag(bare):
    result = bare(*setup_args("json"), "--key-name", "json", "--output", "text", "--volume-size", "5")
    assert_usage_error(result, "--volume-size")
    assert result.stdout == ""


# ---- regions -------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["setup", "list", "teardown"])
def test_unknown_region_is_a_usage_error_before_any_call(bare, command):
    argv = {"setup": [*with_region(setup_args("region"), "us-west-9")],
            "list": ["list", "--region", "us-west-9"],
            "teardown": ["teardown", "--region", "us-west-9", "--name", "region", "--yes"]}[command]
    message = assert_usage_error(bare(*argv), "--region")
    assert "us-west-9" in message and "us-west-2" in message


def test_missing_region_is_a_usage_error(bare):
    message = assert_usage_error(bare("--instance-type", "m5.xlarge", "--yes"), "--region")
    assert "us-west-2" in message  # an example of what to pass


@pytest.mark.parametrize("url", ["not-a-url", "", "localhost:9", "http://"])
def test_malformed_endpoint_url_is_a_usage_error(bare, url):
    """botocore raises a bare ValueError when it builds the first client: it must not surface as an
    'Unexpected error' with exit 1."""
    message = assert_usage_error(bare(*setup_args("url"), "--endpoint-url", url), "--endpoint-url")
    assert "Unexpected" not in message


# ---- what only AWS can tell: looked up first, refused before anything is created -------------------

def test_unknown_instance_type(cli, account, before):
    result = cli(*setup_args("itype"), "--instance-type", "m5.nope")
    message = assert_usage_error(result, "--instance-type")
    assert "m5.nope" in message
    assert snapshot(account) == before


@pytest.mark.parametrize(("flag", "value"), [("--instance-type", "m5.\u00e9\x01"), ("--instance-type", "M5 XLARGE"),
                                           ("--ami-id", "ami-\u00e9\x01"), ("--ami-id", "not-an-ami")])
def test_garbage_ids_are_usage_errors_not_sdk_errors(cli, account, before, flag, value):
    """Ids that cannot be ids are refused without asking EC2 (moto even echoes control characters
    into unparseable XML: that surfaced as an 'Unexpected error ... ResponseParserError')."""
    message = assert_usage_error(cli(*setup_args("garbage"), flag, value), flag)
    assert "Unexpected" not in message
    assert snapshot(account) == before


def test_unknown_accelerator_type(cli, account, before):
    result = cli(*setup_args("accel"), "--accelerator-type", "eia3.huge")
    message = assert_usage_error(result, "--accelerator-type")
    assert "eia3.huge" in message and "eia2.medium" in message
    assert snapshot(account) == before


def test_eia2_is_not_offered_in_tokyo(cli, account):
    tokyo = account.in_region("ap-northeast-1")
    before = snapshot(tokyo)
    result = cli(*with_region(setup_args("tokyo"), "ap-northeast-1"), "--accelerator-type", "eia2.large")
    message = assert_usage_error(result)
    assert "eia2.large" in message and "ap-northeast-1" in message
    assert "eia1.medium" in message  # what is offered instead
    assert snapshot(tokyo) == before


def test_unknown_vpc(cli, account, before):
    message = assert_usage_error(cli(*setup_args("vpc"), "--vpc-id", "vpc-nope"), "--vpc-id")
    assert "vpc-nope" in message
    assert snapshot(account) == before


def test_unknown_subnet(cli, account, before):
    message = assert_usage_error(cli(*setup_args("subnet"), "--subnet-id", "subnet-nope"), "--subnet-id")
    assert "subnet-nope" in message
    assert snapshot(account) == before


def test_subnet_outside_the_given_vpc(cli, account):
    other_vpc = account.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    other_subnet = account.ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.9.1.0/24",
                                             AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    default_vpc = account.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    before = snapshot(account)
    result = cli(*setup_args("mixed"), "--vpc-id", default_vpc, "--subnet-id", other_subnet)
    message = assert_usage_error(result, "--subnet-id", "--vpc-id")
    assert other_subnet in message and default_vpc in message
    assert snapshot(account) == before


def test_subnet_in_an_az_without_ei(cli, account, before):
    def only_2b(params, **_):
        from botocore.awsrequest import AWSResponse

        return AWSResponse("https://injected.invalid", 200, {}, None), {
            "ServiceDetails": [{"ServiceName": EI_SERVICE, "AvailabilityZones": [f"{REGION}b"]}],
            "ServiceNames": [EI_SERVICE], "ResponseMetadata": {"HTTPStatusCode": 200}}

    account.ec2.meta.events.register("before-call.ec2.DescribeVpcEndpointServices", only_2b)
    subnet_2a = account.ec2.describe_subnets(
        Filters=[{"Name": "availability-zone", "Values": [f"{REGION}a"]},
                 {"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]["SubnetId"]
    result = cli(*setup_args("az"), "--subnet-id", subnet_2a)
    message = assert_usage_error(result, "--subnet-id")
    assert f"{REGION}a" in message and f"{REGION}b" in message
    assert snapshot(account) == before


def test_unknown_key_name(cli, account, before):
    message = assert_usage_error(cli(*setup_args("key"), "--key-name", "nope"), "--key-name")
    assert "nope" in message
    assert snapshot(account) == before


@pytest.mark.parametrize("ami", ["ami-nope", "ami-0123456789abcdef0"])
def test_unknown_ami(cli, account, before, ami):
    message = assert_usage_error(cli(*setup_args("ami"), "--ami-id", ami), "--ami-id")
    assert ami in message
    assert snapshot(account) == before


def test_ami_of_another_architecture(cli, account, before):
    graviton = image_id(account, "Deep Learning AMI Graviton (Amazon Linux 2) Version 1.0")
    result = cli(*setup_args("arm"), "--ami-id", graviton)
    message = assert_usage_error(result, "--instance-type", "--ami-id")
    assert "arm64" in message and graviton in message
    assert snapshot(account) == before


def test_non_dlami_image_warns_but_proceeds(cli, account):
    plain = image_id(account, "amzn-ami-hvm-2017.09.1.20171103-x86_64-gp2")
    launched = record(account.ec2, "RunInstances")
    result = cli(*setup_args("plain"), "--ami-id", plain)
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "is not an Amazon Linux or Ubuntu 16.04 Deep Learning AMI" in text_of(result.stderr)
    assert [call["ImageId"] for call in launched] == [plain]


def test_ssh_open_to_the_world_works_but_warns(cli, account):
    args = [a if a != "198.51.100.4/32" else "0.0.0.0/0" for a in setup_args("world")]
    result = cli(*args)
    assert result.code == 0, result.stderr
    assert "SSH is open to the whole internet (0.0.0.0/0)" in text_of(result.stderr)
    group = account.ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["amazonei-setup-world"]}])["SecurityGroups"][0]
    ssh = [p for p in group["IpPermissions"] if p.get("FromPort") == 22]
    assert [r["CidrIp"] for r in ssh[0]["IpRanges"]] == ["0.0.0.0/0"]


# ---- names, keys and files -----------------------------------------------------------------------

def _hand_over(account, name: str, owner: str) -> dict[str, str]:
    """Re-tag deployment `name`'s security group and instance as another caller's."""
    group = account.ec2.describe_security_groups(
        Filters=[{"Name": "tag:amazonei-setup:deployment", "Values": [name]}])["SecurityGroups"][0]["GroupId"]
    instance = [i["InstanceId"] for r in account.ec2.describe_instances(
        Filters=[{"Name": "tag:amazonei-setup:deployment", "Values": [name]},
                 {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]
        for i in r["Instances"]][0]
    account.ec2.create_tags(Resources=[group, instance], Tags=[{"Key": "amazonei-setup:owner", "Value": owner}])
    return {"group": group, "instance": instance}


def test_name_of_another_users_deployment_is_refused(cli, account):
    assert cli(*setup_args("shared")).code == 0
    _hand_over(account, "shared", OTHER_OWNER)
    before = snapshot(account)
    result = cli(*setup_args("shared"))
    message = assert_usage_error(result, "--name")
    assert OTHER_OWNER in message
    assert snapshot(account) == before


def test_teardown_leaves_another_users_deployment_alone(cli, account):
    assert cli(*setup_args("shared")).code == 0
    theirs = _hand_over(account, "shared", OTHER_OWNER)
    result = cli("teardown", "--region", REGION, "--name", "shared", "--yes")
    assert "Traceback" not in result.stderr
    after = snapshot(account)
    assert theirs["instance"] in after["instances"], "teardown terminated another owner's instance"
    assert theirs["group"] in after["security_groups"], "teardown deleted another owner's security group"
    if result.code != 0:
        assert_usage_error(result, "--name")


def test_several_key_pairs_and_no_key_name_with_yes(cli, account):
    for name in ("alice", "bob"):
        account.ec2.create_key_pair(KeyName=name)
    before = snapshot(account)
    message = assert_usage_error(cli(*setup_args("keys")), "--key-name")
    assert "--new-key" in message
    assert snapshot(account) == before


def test_existing_pem_file_is_never_overwritten(cli, account, isolated_env):
    """A file at the new key's path while no key pair of that name exists (an older teardown left it): it is moved
    aside, never overwritten (tests/test_loop.py has the whole loop)."""
    pem = isolated_env / ".ssh" / "amazonei-setup-pem.pem"
    pem.parent.mkdir()
    pem.write_text("someone's private key")
    result = cli(*setup_args("pem"))
    assert result.code == 0, result.stderr
    assert pem.with_name(pem.name + ".old").read_text() == "someone's private key"
    assert pem.read_text().startswith("-----BEGIN")


def test_existing_pem_file_in_key_dir(cli, account, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "amazonei-setup-pem.pem").write_text("kept")
    (keys / "amazonei-setup-pem.pem.old").write_text("kept before")
    result = cli(*setup_args("pem"), "--key-dir", str(keys))
    assert result.code == 0, result.stderr
    assert str(keys / "amazonei-setup-pem.pem.old.1") in " ".join(result.stderr.split())
    assert (keys / "amazonei-setup-pem.pem.old.1").read_text() == "kept"
    assert (keys / "amazonei-setup-pem.pem.old").read_text() == "kept before"


def test_key_pair_name_taken_but_not_chosen(cli, account):
    """--new-key creates amazonei-setup-<name>: when a key pair of that name exists already, say which
    flag uses it instead of failing in CreateKeyPair."""
    account.ec2.create_key_pair(KeyName="amazonei-setup-taken")
    before = snapshot(account)
    result = cli(*setup_args("taken"), "--new-key")
    message = assert_usage_error(result, "--key-name")
    assert "amazonei-setup-taken" in message
    assert snapshot(account) == before


def test_failed_validation_makes_no_create_call(cli, account):
    """The strongest form of 'nothing created': not a single Create*/Run* request was sent."""
    creates = [record(account.ec2, op) for op in ("CreateSecurityGroup", "CreateKeyPair", "CreateVpcEndpoint",
                                                   "RunInstances")]
    creates += [record(account.iam, op) for op in ("CreateRole", "CreateInstanceProfile")]
    for extra in (["--key-name", "nope"], ["--subnet-id", "subnet-nope"], ["--ami-id", "ami-nope"],
                  ["--accelerator-type", "eia3.huge"]):
        assert cli(*setup_args("nothing"), *extra).code == 2
    assert not any(creates)


def test_a_usage_error_from_aws_validation_is_not_retried_or_rolled_back(cli, account, before):
    """An AWS-side refusal during look-ups that means bad input (InvalidInstanceType) is exit 2."""
    calls = inject(account.ec2, "DescribeInstanceTypes", "InvalidInstanceType", "The instance type is invalid.")
    message = assert_usage_error(cli(*setup_args("itype")), "--instance-type")
    assert len(calls) == 1
    assert re.search(r"m5\.xlarge", message)
    assert snapshot(account) == before
