"""Issue 15: a typo never ends a run silently, and the rules a value must follow live once (rules.py).

Each mistake gets exit 2 (1 for a teardown that found nothing), one `error:` sentence with the nearest real
spelling, no usage dump, and nothing created or deleted. Flag-level mistakes run with no AWS at all (`bare`): a
call to AWS would fail on the missing credentials instead.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from amazonei_setup.local import paths, records
from tests.conftest import REGION, setup_args, snapshot
from tests.test_bad_input import Bare, assert_usage_error, text_of

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def bare(monkeypatch):
    return Bare(monkeypatch)


def error_of(result) -> str:
    assert "Traceback" not in result.stderr and "usage:" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return text_of(result.stderr[result.stderr.index("error:"):])


# ---- commands and flags ----------------------------------------------------------------------------

@pytest.mark.parametrize(("word", "meant"), [("lst", "list"), ("tear", "teardown"), ("exprot", "export"),
                                             ("cots", "cost"), ("setpu", "setup"), ("stat", "status"),
                                             ("conect", "connect"), ("perm", "permissions"), ("idle", "idle-stop")])
def test_a_mistyped_command_is_named_with_the_nearest_command(bare, word, meant):
    """setup is the default command: `lst` used to become an argument of setup."""
    result = bare(word, "--region", REGION, "--yes")
    message = assert_usage_error(result)
    assert message == f"error: '{word}' is not a command; did you mean '{meant}'?"
    assert "usage:" not in result.stderr


def test_a_word_that_is_no_command_lists_the_commands(bare):
    message = assert_usage_error(bare("frobnicate", "--region", REGION))
    assert "'frobnicate' is not a command" in message
    assert ("setup, status, connect, stop, start, exec, idle-stop, teardown, list, cost, export, permissions, "
            "completion" in message)


@pytest.mark.parametrize(("argv", "typo", "meant"), [
    ([*setup_args("typo"), "--dryrun"], "--dryrun", "--dry-run"),
    (["--instnace-type", "c5.large", "--region", REGION, "--yes"], "--instnace-type", "--instance-type"),
    ([*setup_args("typo"), "--ssh-cdir=203.0.113.7/32"], "--ssh-cdir", "--ssh-cidr"),
    (["teardown", "--region", REGION, "--nmae", "demo", "--yes"], "--nmae", "--name"),
    (["list", "--all-regoins"], "--all-regoins", "--all-regions"),
    (["export", *setup_args("typo"), "--deplyo"], "--deplyo", "--deploy"),
])
def test_a_mistyped_flag_is_named_with_the_nearest_flag(bare, argv, typo, meant):
    result = bare(*argv)
    message = assert_usage_error(result, typo)
    assert message.endswith(f"has no flag {typo}; did you mean {meant}?"), message
    assert "required" not in message  # teardown's --name was misspelled, not missing


def test_a_flag_of_another_command_is_refused_naming_the_command(bare):
    message = assert_usage_error(bare("teardown", "--region", REGION, "--name", "x", "--zzz-unknown", "--yes"))
    assert "teardown has no flag --zzz-unknown" in message and "teardown --help" in message


def test_abbreviations_argparse_accepts_are_still_accepted(bare):
    """`--dry` is argparse's unique prefix of --dry-run: the typo check must not refuse it (this run stops
    later, on the missing credentials, not on the flag)."""
    result = bare(*setup_args("abbrev"), "--dry")
    assert "has no flag" not in result.stderr and "not a command" not in result.stderr


def test_the_typo_envelope_in_json(bare):
    result = bare("lst", "--region", REGION, "--output", "json")
    assert result.code == 2
    document = json.loads(result.stdout)
    assert (document["status"], document["error"]["code"]) == ("error", "usage")
    assert "did you mean 'list'?" in document["error"]["message"]


# ---- regions ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("sandbox", [True, False])
def test_a_mistyped_region_is_said_to_be_no_region(bare, sandbox):
    """It crashed the sandbox (KeyError), and without it was called a region without Elastic Inference."""
    argv = [*setup_args("region"), *(["--sandbox"] if sandbox else [])]
    result = bare(*[("eu-centrl-1" if a == REGION else a) for a in argv])
    message = error_of(result)
    assert result.code == 2
    assert "error: --region: 'eu-centrl-1' is not an AWS region; did you mean eu-central-1" in message
    assert "Unexpected" not in message and "Elastic Inference" not in message
    assert not paths.sandbox_dir().exists()  # the sandbox was never started


def test_a_region_without_ei_names_the_alternatives_that_run_there(bare):
    message = assert_usage_error(bare(*[("eu-central-1" if a == REGION else a) for a in setup_args("noei")]),
                                 "--region")
    assert "Elastic Inference is not offered in eu-central-1" in message
    assert "--accelerator inf2|gpu" in message


def test_a_region_that_is_no_region_name_at_all(bare):
    message = assert_usage_error(bare("list", "--region", "not a region"), "--region")
    assert "'not a region' is not an AWS region name like us-west-2" in message


# ---- instance types ------------------------------------------------------------------------------

def test_a_mistyped_instance_type_gets_the_nearest_types_the_region_offers(cli, account):
    before = snapshot(account)
    result = cli(*setup_args("itype"), "--instance-type", "c5.larg")
    message = assert_usage_error(result, "--instance-type")
    assert "'c5.larg' is not an instance type EC2 offers in us-west-2; did you mean c5.large" in message
    assert "such as m5.xlarge" not in message  # the fixed example is only for words close to nothing
    assert snapshot(account) == before


def test_a_word_that_cannot_be_a_type_gets_the_nearest_known_type_without_aws(bare):
    message = assert_usage_error(bare(*setup_args("itype"), "--instance-type", "c5large"), "--instance-type")
    assert "'c5large' is not an instance type (family.size, like m5.xlarge); did you mean c5.large" in message


def test_instance_types_are_case_insensitive(cli, account):
    result = cli(*setup_args("upper"), "--instance-type", "M5.XLARGE", "--output", "json")
    assert result.code == 0, result.stderr
    assert result.json["result"]["instance_type"] == "m5.xlarge"
    [reservation] = account.ec2.describe_instances(
        Filters=[{"Name": "tag:amazonei-setup:deployment", "Values": ["upper"]}])["Reservations"]
    assert reservation["Instances"][0]["InstanceType"] == "m5.xlarge"


def test_instance_types_are_case_insensitive_for_the_alternatives_too(bare):
    """The family check compares the lower-case type: G5.XLARGE belongs to the gpu family. (The run stops later
    on the missing credentials, never on the flags.)"""
    result = bare("--region", REGION, "--accelerator", "gpu", "--instance-type", "G5.XLARGE", "--yes")
    assert "not in the gpu family" not in result.stderr and "--instance-type" not in result.stderr


# ---- --ssh-cidr ------------------------------------------------------------------------------------

def ssh_ranges(account, name: str) -> list[str]:
    [group] = account.ec2.describe_security_groups(
        Filters=[{"Name": "tag:amazonei-setup:deployment", "Values": [name]}])["SecurityGroups"]
    return [r.get("CidrIp") or r.get("CidrIpv6") for p in group["IpPermissions"] if p.get("FromPort") == 22
            for r in [*p.get("IpRanges", []), *p.get("Ipv6Ranges", [])]]


@pytest.mark.parametrize(("given", "opened"), [("203.0.113.7", "203.0.113.7/32"),
                                               ("2001:db8::7", "2001:db8::7/128"),
                                               (" 203.0.113.9 ", "203.0.113.9/32")])
def test_a_bare_address_for_ssh_cidr_opens_that_one_host(cli, account, given, opened):
    args = [a for a in setup_args("bare-ip") if a != "198.51.100.4/32"]
    args = args[:args.index("--ssh-cidr")] + args[args.index("--ssh-cidr") + 1:]
    result = cli(*args, "--ssh-cidr", given, "--output", "json")
    assert result.code == 0, result.stderr
    assert ssh_ranges(account, "bare-ip") == [opened]


# ---- teardown of a name that is not there ------------------------------------------------------------

def said(result) -> str:
    return " ".join(result.stderr.split())


def test_teardown_of_a_mistyped_name_fails_and_names_the_real_deployment(cli, account):
    """One character short of a real deployment: it used to say 'nothing to delete' and exit 0, and the user
    believed the real one was gone."""
    assert cli(*setup_args("amazonei-2c0c9f")).code == 0
    before = snapshot(account)

    result = cli("teardown", "--region", REGION, "--name", "amazonei-2c0c9", "--yes", "--output", "json")

    assert result.code == 1, result.stderr
    message = said(result)
    assert ("No deployment named amazonei-2c0c9 in us-west-2, so nothing was deleted; did you mean "
            "amazonei-2c0c9f?") in message
    assert (result.json["status"], result.json["error"]["code"]) == ("error", "not-found")
    assert snapshot(account) == before


def test_teardown_without_region_of_a_mistyped_name_names_the_real_deployment_and_its_region(cli, account):
    """Without --region the name's IAM role says where it lives; a typo has no role, and used to get "pass
    --region" (exit 2) with no hint that the real deployment is one character away."""
    assert cli(*setup_args("amazonei-2c0c9f")).code == 0
    before = snapshot(account)

    result = cli("teardown", "--name", "amazonei-2c0c9", "--yes")

    assert result.code == 1, result.stderr
    assert ("No deployment named amazonei-2c0c9, so nothing was deleted; did you mean amazonei-2c0c9f "
            "(--region us-west-2)?") in said(result)
    assert snapshot(account) == before
    unknown = cli("teardown", "--name", "zzz", "--yes")  # close to nothing: looked for in the default region
    assert unknown.code == 1 and "No deployment named zzz in us-west-2, so nothing was deleted" in said(unknown)


def test_teardown_of_an_unknown_name_close_to_nothing_points_to_list(cli, account):
    before = snapshot(account)
    result = cli("teardown", "--region", REGION, "--name", "zzz", "--yes")
    assert result.code == 1, result.stderr
    assert "No deployment named zzz in us-west-2, so nothing was deleted; `list --all-regions` shows every " \
           "deployment." in said(result)
    assert "did you mean" not in said(result)
    assert snapshot(account) == before


def test_teardown_suggests_a_close_name_that_lives_in_another_region(cli, account):
    """IAM is global: our roles say where their deployments live, so a close name elsewhere is named with its
    --region."""
    from amazonei_setup.aws.resources import iam
    from amazonei_setup.core import tags

    account.iam.create_role(RoleName=iam.role_name("demo-east"), Path=tags.IAM_PATH, AssumeRolePolicyDocument="{}",
                            Tags=tags.tag_list("demo-east", None, "us-east-1"))
    result = cli("teardown", "--region", REGION, "--name", "demo-eats", "--yes")
    assert result.code == 1, result.stderr
    assert "did you mean demo-east (--region us-east-1)?" in said(result)
    assert iam.role_name("demo-east") in snapshot(account)["roles"]


def test_teardown_of_a_name_this_machine_set_up_but_is_gone_succeeds(cli, account):
    """The local record of a setup proves the name was real (its resources were deleted some other way): the
    user's intent, nothing billed, holds, so exit 0."""
    records.save(REGION, "hand-deleted", {"name": "hand-deleted"})
    result = cli("teardown", "--region", REGION, "--name", "hand-deleted", "--yes")
    assert result.code == 0, result.stderr
    assert result.stdout == ("No deployment named hand-deleted is left in us-west-2 (only this machine's record of "
                             "its setup is left); nothing to delete.\n")


# ---- the bottom of the import graph ------------------------------------------------------------------

@pytest.mark.parametrize("module", ["core.rules", "core.facts", "aws.regions", "cli.wizard", "flows.cloudformation",
                                    "core.plan"])
def test_the_decision_layer_imports_no_boto3(module):
    code = f"import amazonei_setup.{module}, sys; assert 'boto3' not in sys.modules, '{module} loaded boto3'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.mark.parametrize("module", ["core.capacity", "core.permissions", "local.sshconfig"])
def test_the_pure_rules_of_quotas_permissions_and_ssh_entries_load_no_aws_sdk_at_all(module):
    code = (f"import amazonei_setup.{module}, sys; loaded = [m for m in sys.modules if m.startswith(('boto3', "
            f"'botocore'))]; assert not loaded, ('{module}', loaded)")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_facts_are_re_exported_by_discover():
    from amazonei_setup.aws import discover
    from amazonei_setup.core import facts

    assert (discover.Facts, discover.Image, discover.Subnet) == (facts.Facts, facts.Image, facts.Subnet)


def test_help_and_usage_errors_load_neither_boto3_nor_shtab():
    code = ("import sys, io; from amazonei_setup.cli.main import main, Environment\n"
            "env = Environment(stdin_isatty=False, stdout=io.StringIO(), stderr=io.StringIO())\n"
            "assert main(['--help'], env) == 0\n"
            "assert main(['lst'], env) == 2 and main(['--dryrun'], env) == 2\n"
            "loaded = {'boto3', 'shtab'} & set(sys.modules)\n"
            "assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# ---- shell completion ----------------------------------------------------------------------------

@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_name_the_commands_and_their_flags(bare, shell):
    result = bare("completion", shell)
    assert result.code == 0, result.stderr
    assert result.stderr == ""
    script = result.stdout
    for word in ("setup", "export", "teardown", "list", "cost", "--instance-type", "--dry-run", "--keep-shared",
                 "--all-regions", "--ssh-cidr", "--sandbox", "amazonei-setup"):
        assert word in script, word


def test_completion_of_an_unknown_shell_is_a_usage_error(bare):
    message = assert_usage_error(bare("completion", "fish"))
    assert "'fish'" in message and "bash" in message and "zsh" in message


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_commands_and_flags(bare, tmp_path):
    """The script works in bash: a command prefix, a command's flag, and setup's flags with no command (setup
    is the default)."""
    script = tmp_path / "amazonei-setup.bash"
    script.write_text(bare("completion", "bash").stdout)

    def complete(*words: str) -> str:
        line = " ".join(["amazonei-setup", *words])
        program = (f"source {script}; COMP_WORDS=(amazonei-setup {' '.join(words)}); "
                   f"COMP_CWORD={len(words)}; COMP_LINE='{line}'; COMP_POINT={len(line)}; "
                   "_shtab_amazonei_setup; echo \"${COMPREPLY[@]}\"")
        return subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True).stdout.split()

    assert complete("tea") == ["teardown"]
    assert complete("teardown", "--ke") == ["--keep-shared"]
    assert complete("--dry") == ["--dry-run"]
    assert complete("--region", "us-west-2", "li") == ["list"]  # account flags before the command, as parse takes
    assert complete("--sandbox", "teardown", "--ke") == ["--keep-shared"]
