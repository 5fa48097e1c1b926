"""The everyday loop: setup, re-run, teardown, setup again of one name, from a person or a CI job. Each pass must
work the same as the first: nothing a teardown leaves behind (a private key file), no flag left out and no missing
--region may make the next run refuse or change what it did not ask for."""
from __future__ import annotations

import stat
from pathlib import Path

from tests.conftest import REGION, setup_args, snapshot


def pem_of(home: Path, name: str = "demo") -> Path:
    return home / ".ssh" / f"amazonei-setup-{name}.pem"


def another_private_key() -> str:
    """Not from moto: the test suite gives moto one RSA key for every key pair (conftest.quick_moto)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


# ---- the private key file of a key pair the tool made ---------------------------------------------------------

def test_setup_teardown_setup_of_one_name_works_and_teardown_removes_its_private_key(cli, account, isolated_env):
    before = snapshot(account)
    first = cli(*setup_args("demo"), "--new-key", "--output", "json")
    assert first.code == 0, first.stderr
    pem = pem_of(isolated_env)
    assert pem.is_file()

    gone = cli("teardown", "--region", REGION, "--name", "demo", "--yes", "--output", "json")
    assert gone.code == 0, gone.stderr
    assert not pem.exists(), "the private key of a deleted key pair opens nothing: teardown removes it"
    assert {"kind": "private-key-file", "id": str(pem)} in [{k: d[k] for k in ("kind", "id")}
                                                            for d in gone.json["result"]["deleted"]]
    assert "left in place" not in gone.stderr
    assert snapshot(account) == before

    again = cli(*setup_args("demo"), "--new-key", "--output", "json")
    assert again.code == 0, again.stderr
    assert pem.is_file() and stat.S_IMODE(pem.stat().st_mode) == 0o400
    assert cli("teardown", "--region", REGION, "--name", "demo", "--yes").code == 0
    assert not pem.exists() and snapshot(account) == before


def test_a_leftover_private_key_of_a_key_pair_that_is_gone_is_set_aside_not_refused(cli, account, isolated_env):
    """An older teardown left the file: the key pair it opened no longer exists, so setup moves it aside (said in
    the plan and the progress) and saves the new key there, instead of stopping every later setup of the name."""
    pem = pem_of(isolated_env)
    pem.parent.mkdir()
    pem.write_text("an old private key")
    made = cli(*setup_args("demo"), "--new-key", "--output", "json")
    assert made.code == 0, made.stderr
    aside = pem.with_name(pem.name + ".old")
    assert aside.read_text() == "an old private key", "nothing the user had is lost"
    assert pem.read_text().startswith("-----BEGIN") and pem.read_text() != "an old private key"
    said = " ".join(made.stderr.split())
    assert str(pem) in said and str(aside) in said and "no longer exists" in said


def test_a_private_key_whose_key_pair_exists_stays_protected(cli, account, isolated_env):
    account.ec2.create_key_pair(KeyName="amazonei-setup-demo")  # not ours: someone made it by hand
    pem = pem_of(isolated_env)
    pem.parent.mkdir()
    pem.write_text("its private key")
    before = snapshot(account)
    refused = cli(*setup_args("demo"), "--new-key")
    assert refused.code == 2 and "amazonei-setup-demo" in refused.stderr
    assert pem.read_text() == "its private key" and snapshot(account) == before


def test_teardown_leaves_a_private_key_file_that_is_not_the_key_pairs(cli, account, isolated_env):
    """The file at the key's path holds another key (replaced by hand, or another account's deployment of the same
    name): teardown deletes only the file whose public key is the key pair's."""
    assert cli(*setup_args("demo"), "--new-key").code == 0
    pem = pem_of(isolated_env)
    pem.chmod(0o600)
    pem.write_text(another_private_key())
    gone = cli("teardown", "--region", REGION, "--name", "demo", "--yes")
    assert gone.code == 0, gone.stderr
    assert pem.exists() and "left in place" in gone.stderr


# ---- "not found" is the same answer with and without --region --------------------------------------------------

DAY_TWO_AND_TEARDOWN = (["status"], ["stop", "--yes"], ["start", "--yes"], ["connect", "--print"],
                        ["teardown", "--yes"])


def test_a_name_that_does_not_exist_is_not_found_with_and_without_region(cli, account):
    assert cli(*setup_args("demo")).code == 0  # a real deployment beside it, so the account is not empty
    before = snapshot(account)
    for command in DAY_TWO_AND_TEARDOWN:
        with_region = cli(*command, "--name", "nosuch", "--region", REGION, "--output", "json")
        without = cli(*command, "--name", "nosuch", "--output", "json")
        for result in (with_region, without):
            assert result.code == 1, (command, result.stdout, result.stderr)
            assert result.json["error"]["code"] == "not-found", (command, result.stdout)
            assert "Traceback" not in result.stderr
        assert without.json["error"]["message"] == with_region.json["error"]["message"], command
    assert snapshot(account) == before


def test_without_any_region_a_name_that_does_not_exist_is_not_found(cli, account):
    """No --region and no default region: the name's IAM role would say where it lives; without one, the name is no
    deployment of this account (exit 1, not-found), not a usage error about --region."""
    for command in DAY_TWO_AND_TEARDOWN:
        result = cli(*command, "--name", "nosuch", "--output", "json", own_clients=True)
        assert result.code == 1, (command, result.stdout, result.stderr)
        error = result.json["error"]
        assert error["code"] == "not-found", (command, error)
        assert error["message"].startswith("No deployment named nosuch in this account"), error["message"]
        assert "`list --all-regions`" in error["message"]


def test_teardown_again_without_region_is_nothing_to_do_as_with_it(cli, account):
    assert cli(*setup_args("demo")).code == 0
    assert cli("teardown", "--name", "demo", "--yes").code == 0
    with_region = cli("teardown", "--region", REGION, "--name", "demo", "--yes", "--output", "json")
    without = cli("teardown", "--name", "demo", "--yes", "--output", "json")
    assert with_region.code == without.code == 0, (with_region.stderr, without.stderr)
    assert without.json == with_region.json


# ---- account flags before the command, as the AWS CLI takes them ---------------------------------------------

def test_account_flags_before_the_command_are_taken(cli, account):
    assert cli(*setup_args("demo")).code == 0
    listed = cli("--region", REGION, "--output", "json", "list")
    assert listed.code == 0, listed.stderr
    assert [d["name"] for d in listed.json["result"]["deployments"]] == ["demo"]
    status = cli("--output=json", "--region", REGION, "status", "--name", "demo")
    assert status.code == 0 and status.json["result"]["name"] == "demo", status.stderr
    missing = cli("--region", REGION, "--debug", "--output", "json", "teardown", "--name", "nosuch", "--yes")
    assert (missing.code, missing.json["error"]["code"]) == (1, "not-found")
    gone = cli("--yes", "--region", REGION, "teardown", "--name", "demo")
    assert gone.code == 0, gone.stderr


def test_a_mistyped_command_after_account_flags_is_named(cli):
    typo = cli("--region", REGION, "lst")
    assert typo.code == 2 and "'lst' is not a command; did you mean 'list'?" in typo.stderr, typo.stderr
    flag = cli("--region", REGION, "permissions")
    assert flag.code == 2 and "permissions has no flag --region" in flag.stderr, flag.stderr


def test_a_usage_error_after_account_flags_names_its_command_in_json(cli):
    result = cli("--output", "json", "--region", REGION, "teardown")
    assert result.code == 2 and result.json["command"] == "teardown", result.stdout


# ---- a re-run keeps every choice it is not given ---------------------------------------------------------------

def ssh_ranges(account, name: str) -> set[str]:
    (group,) = account.ec2.describe_security_groups(
        Filters=[{"Name": "tag:amazonei-setup:deployment", "Values": [name]}])["SecurityGroups"]
    return {r["CidrIp"] for rule in group["IpPermissions"] if rule.get("FromPort") == 22 for r in rule["IpRanges"]}


def test_a_rerun_without_ssh_cidr_keeps_the_range_the_deployment_has(cli, account):
    made = cli("--region", REGION, "--instance-type", "m5.xlarge", "--yes", "--name", "demo",
               "--ssh-cidr", "10.1.2.0/24")
    assert made.code == 0, made.stderr
    for public_ip in ("198.51.100.4", None):  # the caller's address, or none to be found
        again = cli("setup", "--region", REGION, "--name", "demo", "--yes", public_ip=public_ip)
        assert again.code == 0, again.stderr
        said = " ".join(again.stderr.split())
        assert "now only from" not in said and "closed 10.1.2.0/24" not in said
        assert "from 10.1.2.0/24 (keep; --ssh-cidr changes it)" in said, said
        assert ssh_ranges(account, "demo") == {"10.1.2.0/24"}
    changed = cli("setup", "--region", REGION, "--name", "demo", "--yes", "--ssh-cidr", "10.9.0.0/16")
    assert changed.code == 0, changed.stderr
    assert ssh_ranges(account, "demo") == {"10.9.0.0/16"}, "a flag given is the desired state"


# ---- one price per type and region ------------------------------------------------------------------------------

def test_cost_of_a_type_in_a_region_is_that_regions_price(cli):
    priced = cli("cost", "--instance-type", "g5.xlarge", "--region", "eu-central-1", "--output", "json")
    assert priced.code == 0, priced.stderr
    (row,) = priced.json["result"]["rows"]
    assert row["hourly_usd"] == 1.258, row
    assert "may differ" not in priced.stderr  # the catalog has eu-central-1's own figure
    compared = cli("cost", "--compare", "--accelerator", "gpu", "--output", "json")
    (frankfurt,) = [r for r in compared.json["result"]["prices"]
                    if r["instance_type"] == "g5.xlarge" and r["region"] == "eu-central-1"]
    assert frankfurt["hourly_usd"] == row["hourly_usd"], "one price per type and region"
    home = cli("cost", "--instance-type", "m5.xlarge", "--region", "eu-central-1", "--output", "json")
    assert "may differ" in home.stderr, "a type the catalog prices only in us-west-2 still says so"


def test_list_and_status_price_an_instance_at_its_regions_figure(cli, account):
    from amazonei_setup.core import tags

    frankfurt = account.in_region("eu-central-1")
    image = frankfurt.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    labels = tags.tag_list("gpu-de", None, "eu-central-1", **{tags.ACCELERATOR: "gpu"})
    frankfurt.ec2.run_instances(ImageId=image, InstanceType="g5.xlarge", MinCount=1, MaxCount=1,
                                TagSpecifications=[{"ResourceType": "instance", "Tags": labels}])
    listed = cli("list", "--region", "eu-central-1", "--output", "json", own_clients=True)
    assert listed.code == 0, listed.stderr
    assert [d["hourly_usd"] for d in listed.json["result"]["deployments"]] == [1.258]
    status = cli("status", "--name", "gpu-de", "--region", "eu-central-1", "--output", "json", own_clients=True)
    assert status.code == 0, status.stderr
    assert status.json["result"]["hourly_usd_per_instance"] == 1.258, status.json["result"]
