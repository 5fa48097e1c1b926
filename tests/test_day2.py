"""Day two (issue 16): status, connect, stop/start, `Host NAME` entries, and "ready" meaning SSH answers.

In-process against moto. What is asserted is what the user sees (stdout, stderr, exit code, JSON), the mock account,
and the files a user's ssh reads, checked with the real OpenSSH client (`ssh -F FILE -G NAME`) where it matters.

moto, measured (5.2): stop_instances and start_instances change state at once (stopping -> stopped, pending ->
running by the next describe); a start gives a new public IP and DNS name (as AWS does), but LaunchTime is not reset
(AWS resets it): the cost tests set LaunchTime and StateTransitionReason through an after-call hook.
"""
from __future__ import annotations

import io
import os
import shutil
import socket
import stat
import subprocess
import threading
from argparse import Namespace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from amazonei_setup.cli.environment import Environment
from amazonei_setup.cli.main import main
from amazonei_setup.core import catalog
from amazonei_setup.local import sshconfig
from tests.conftest import REGION, SSH_CIDR, CliResult, setup_args
from tests.test_alternatives import alt as _alt_fixture  # the fixture: the Neuron / GPU images seeded

alt = _alt_fixture

HAS_SSH = shutil.which("ssh") is not None


def ssh_g(config: Path, host: str) -> dict[str, str]:
    """What OpenSSH itself makes of `host` with only `config` (its own defaults filled in)."""
    done = subprocess.run(["ssh", "-F", str(config), "-G", host], capture_output=True, text=True, check=True,
                          timeout=30)
    return {k: v for k, _, v in (line.partition(" ") for line in done.stdout.splitlines())}


def real(account, *argv: str, sleep=lambda seconds: None) -> CliResult:
    """The CLI as against real AWS (moto still answers): SSH is checked unless --wait says otherwise."""
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin_isatty=False, stdout=out, stderr=err, public_ip_lookup=lambda: "198.51.100.4",
                      sleep=sleep, width=1000, aws=account, emulated=False)
    code = main(list(argv), env)
    return CliResult(code, out.getvalue(), err.getvalue())


def instances_at_this_machine(ec2) -> None:
    """Every instance's public address is 127.0.0.1, where the test's "sshd" listens (or not)."""
    def at_this_machine(parsed, **_):
        for reservation in parsed.get("Reservations", []):
            for each in reservation["Instances"]:
                if each.get("PublicIpAddress"):
                    each["PublicIpAddress"] = "127.0.0.1"
    ec2.meta.events.register("after-call.ec2.DescribeInstances", at_this_machine)


@pytest.fixture
def sshd(monkeypatch):
    """A listener on 127.0.0.1 standing in for port 22."""
    from amazonei_setup.flows import provision

    listener = socket.create_server(("127.0.0.1", 0))
    monkeypatch.setattr(provision, "SSH_PORT", listener.getsockname()[1])
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture
def nothing_listens(monkeypatch):
    from amazonei_setup.flows import provision

    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    monkeypatch.setattr(provision, "SSH_PORT", port)
    return port


def state_of(account, instance_id: str) -> str:
    import boto3

    ec2 = boto3.client("ec2", region_name=REGION)
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


def made(cli, name="demo", *extra) -> dict:
    result = cli(*setup_args(name, "--output", "json", *extra))
    assert result.code == 0, result.stderr
    return result.json["result"]


# ---- status ---------------------------------------------------------------------------------------------------

def test_status_shows_every_piece_the_connect_commands_and_the_price(cli, account):
    setup = made(cli)
    result = cli("status", "--name", "demo", "--output", "json")  # no --region: the role's region tag says where
    assert result.code == 0, result.stderr
    status = result.json["result"]
    assert (status["name"], status["region"], status["state"]) == ("demo", REGION, "running")
    assert (status["instance_type"], status["accelerator_type"]) == ("m5.xlarge", "eia2.medium")
    assert status["public_dns"] == setup["public_dns"]
    assert status["ssh_command"] == setup["ssh_command"]  # spelled as setup printed it
    assert status["port_forward_command"] == setup["port_forward_command"]
    kinds = {p["kind"]: p["state"] for p in status["pieces"]}
    assert kinds == {"instance": "running", "security-group": "exists", "vpc-endpoint": "available",
                     "key-pair": "exists", "iam-role": "exists", "instance-profile": "exists"}
    assert status["hourly_usd_now"] == catalog.hourly_usd("m5.xlarge", "eia2.medium") == setup["hourly_usd"]
    assert "idle_stop" in status and status["idle_stop"] is None  # the slot the idle auto-stop alarm fills
    assert status["cost_basis"].startswith("since the last start")
    assert status["start_command"] == f"python amazonei_setup.py start --region {REGION} --name demo"

    text = cli("status", "--name", "demo")
    assert text.code == 0, text.stderr
    assert setup["ssh_command"] in text.stdout.splitlines()
    assert "Idle stop" in text.stdout and "Cost so far" in text.stdout and "since the last start" in text.stdout
    assert f"python amazonei_setup.py stop --region {REGION} --name demo" in text.stdout.splitlines()


def test_cost_so_far_counts_from_the_last_start_to_now_or_to_the_stop(cli, account):
    setup = made(cli)
    started = datetime.now(UTC) - timedelta(hours=3)
    stopped = started + timedelta(hours=2)

    def clock(parsed, **_):  # AWS resets LaunchTime at each start and dates a stop in StateTransitionReason
        for reservation in parsed.get("Reservations", []):
            for each in reservation["Instances"]:
                each["LaunchTime"] = started
                if each["State"]["Name"] == "stopped":
                    each["StateTransitionReason"] = f"User initiated ({stopped:%Y-%m-%d %H:%M:%S} GMT)"
    account.ec2.meta.events.register("after-call.ec2.DescribeInstances", clock)
    price = setup["hourly_usd"]

    running = cli("status", "--name", "demo", "--output", "json").json["result"]
    assert running["cost_so_far_usd"] == pytest.approx(3 * price, abs=0.01)
    account.ec2.stop_instances(InstanceIds=[setup["instance_id"]])
    idle = cli("status", "--name", "demo", "--output", "json").json["result"]
    assert idle["state"] == "stopped" and idle["hourly_usd_now"] == 0
    assert idle["cost_so_far_usd"] == pytest.approx(2 * price, abs=0.01)  # the stop ended the meter
    assert idle["ssh_command"] is None
    text = cli("status", "--name", "demo")
    assert f"python amazonei_setup.py start --region {REGION} --name demo" in text.stdout.splitlines()


def test_status_of_a_mistyped_name_is_not_found_and_names_the_deployment(cli, account):
    made(cli, "demo")
    result = cli("status", "--region", REGION, "--name", "dmeo", "--output", "json")
    assert result.code == 1
    assert result.json["error"]["code"] == "not-found"
    assert result.json["error"]["message"].startswith(f"No deployment named dmeo in {REGION}; did you mean demo? ")
    assert "Traceback" not in result.stderr
    # without --region too (found through the roles' region tags); neither says "deleted": status deletes nothing
    result = cli("status", "--name", "dmeo", "--output", "json", own_clients=True)
    assert result.code == 1
    said = result.json["error"]["message"]
    assert said.startswith(f"No deployment named dmeo; did you mean demo (--region {REGION})?")


# ---- connect --------------------------------------------------------------------------------------------------

def test_connect_becomes_ssh_with_the_key_user_and_host(cli, account, monkeypatch):
    setup = made(cli)
    execs: list[list[str]] = []
    monkeypatch.setattr(os, "execvp", lambda program, argv: execs.append([program, *argv]))  # the OS boundary

    assert cli("connect", "--name", "demo").code == 0
    assert cli("connect", "--name", "demo", "--jupyter").code == 0
    host = setup["public_dns"]
    assert execs[0] == ["ssh", "ssh", "-i", setup["key_path"], f"ec2-user@{host}"]
    assert execs[1] == ["ssh", "ssh", "-i", setup["key_path"], "-L", "8888:localhost:8888", f"ec2-user@{host}"]
    assert Path(setup["key_path"]).exists()


def test_connect_print_prints_the_command_instead(cli, account, monkeypatch):
    setup = made(cli)
    monkeypatch.setattr(os, "execvp", lambda *a: pytest.fail("--print must not run ssh"))
    printed = cli("connect", "--name", "demo", "--print")
    assert printed.code == 0, printed.stderr
    assert printed.stdout == setup["ssh_command"] + "\n"
    jupyter = cli("connect", "--name", "demo", "--print", "--jupyter")
    assert jupyter.stdout == setup["port_forward_command"] + "\n"


def test_connect_to_a_stopped_instance_says_so_and_names_start(cli, account, monkeypatch):
    setup = made(cli)
    monkeypatch.setattr(os, "execvp", lambda *a: pytest.fail("a stopped instance has no address to ssh to"))
    account.ec2.stop_instances(InstanceIds=[setup["instance_id"]])
    result = cli("connect", "--name", "demo")
    assert result.code == 1
    assert f"is stopped: start it with python amazonei_setup.py start --region {REGION} --name demo" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_connect_uses_the_ssh_user_tag_set_at_launch(cli, account, alt):
    result = cli("--region", REGION, "--accelerator", "gpu", "--yes", "--name", "demo", "--ssh-cidr", SSH_CIDR,
                 "--output", "json")
    assert result.code == 0, result.stderr
    setup = result.json["result"]
    tags = {t["Key"]: t["Value"] for r in account.ec2.describe_instances(InstanceIds=[setup["instance_id"]])[
        "Reservations"] for i in r["Instances"] for t in i["Tags"]}
    assert tags["amazonei-setup:ssh-user"] == "ubuntu"
    printed = cli("connect", "--name", "demo", "--print")
    assert printed.stdout.strip().endswith(f"ubuntu@{setup['public_dns']}")


# ---- stop / start ---------------------------------------------------------------------------------------------

def test_stop_waits_until_stopped_and_says_what_still_costs(cli, account):
    setup = made(cli)
    polls = {"n": 0}

    def still_stopping(parsed, **_):  # AWS takes a while to stop; moto does it at once
        for reservation in parsed.get("Reservations", []):
            for each in reservation["Instances"]:
                if each["State"]["Name"] == "stopped" and polls["n"] < 3:
                    polls["n"] += 1
                    each["State"] = {"Code": 64, "Name": "stopping"}
    account.ec2.meta.events.register("after-call.ec2.DescribeInstances", still_stopping)

    result = cli("stop", "--name", "demo", "--output", "json")
    assert result.code == 0, result.stderr
    assert polls["n"] == 3, "the stop must sit through the `stopping` polls"
    stopped = result.json["result"]
    assert stopped["already"] is False and [i["state"] for i in stopped["instances"]] == ["stopped"]
    assert state_of(account, setup["instance_id"]) == "stopped"
    volumes = [i for i in stopped["still_costs"]["items"] if i["kind"] == "ebs-volume"]
    assert [(v["size_gib"], v["volume_type"], v["usd_per_month"]) for v in volumes] == [(100, "gp3", 8.0)]
    endpoint = [i for i in stopped["still_costs"]["items"] if i["kind"] == "vpc-endpoint"]
    assert len(endpoint) == 1 and stopped["still_costs"]["usd_per_month"] == 8.0 + endpoint[0]["usd_per_month"]
    assert any("eia2.medium accelerator is not billed" in n for n in stopped["not_billed"])

    again = cli("stop", "--name", "demo")
    assert again.code == 0, again.stderr
    assert "Deployment demo was already stopped." in again.stdout
    assert "100 GiB gp3: $8.00/month" in again.stdout


def test_start_waits_for_running_and_rewrites_the_ssh_entry_with_the_new_address(cli, account):
    setup = made(cli)
    config = sshconfig.config_file()
    before = config.read_text()
    assert f"HostName {setup['public_dns']}" in before
    assert cli("stop", "--name", "demo").code == 0
    started = cli("start", "--name", "demo", "--output", "json")
    assert started.code == 0, started.stderr
    now = started.json["result"]
    assert now["already"] is False and state_of(account, setup["instance_id"]) == "running"
    assert now["public_dns"] and now["public_dns"] != setup["public_dns"]  # EC2 gave the old address back
    assert now["ssh_check"] == "emulated"
    after = config.read_text()
    assert f"HostName {now['public_dns']}" in after and setup["public_dns"] not in after
    if HAS_SSH:
        assert ssh_g(config, "demo")["hostname"] == now["public_dns"]

    again = cli("start", "--name", "demo")
    assert again.code == 0 and "Deployment demo was already running." in again.stdout


def test_stop_and_start_take_every_instance_of_a_fleet(cli, account):
    setup = made(cli, "pair", "--count", "2")
    ids = [i["instance_id"] for i in setup["instances"]]
    assert cli("stop", "--name", "pair").code == 0
    assert [state_of(account, i) for i in ids] == ["stopped", "stopped"]
    assert cli("start", "--name", "pair").code == 0
    assert [state_of(account, i) for i in ids] == ["running", "running"]


def test_start_against_real_aws_waits_until_ssh_answers(cli, account, sshd):
    made(cli)
    assert cli("stop", "--name", "demo").code == 0
    instances_at_this_machine(account.ec2)
    result = real(account, "start", "--name", "demo", "--output", "json")
    assert result.code == 0, result.stderr
    assert result.json["result"]["ssh_check"] == "answers"
    assert f"SSH answers on 127.0.0.1:{sshd}" in result.stderr


# ---- ready means reachable -----------------------------------------------------------------------------------

def test_setup_against_real_aws_waits_for_ssh_by_default(account, sshd):
    instances_at_this_machine(account.ec2)
    result = real(account, *setup_args("demo"), "--output", "json")
    assert result.code == 0, result.stderr
    assert result.json["result"]["waited_for"] == ["running", "ei", "ssh"]
    assert result.json["result"]["ssh_check"] == "answers"
    assert f"SSH answers on 127.0.0.1:{sshd}" in result.stderr


def test_setup_whose_ssh_never_answers_prints_the_commands_warns_and_keeps_the_machine(account, nothing_listens):
    instances_at_this_machine(account.ec2)
    result = real(account, *setup_args("demo"))
    assert result.code == 0, result.stderr
    assert f"SSH on 127.0.0.1:{nothing_listens}" in result.stderr and "did not answer within 5 minutes" in result.stderr
    assert f"nc -zv 127.0.0.1 {nothing_listens}" in result.stderr
    assert "Waiting for SSH on 127.0.0.1" in result.stderr and "(0 s)" in result.stderr  # elapsed time shown
    lines = result.stdout.splitlines()
    assert any(line.startswith("ssh -i ") for line in lines)  # the commands anyway
    assert "SSH did not answer in time (see the warning)" in result.stdout
    instance_id = next(line.split()[1] for line in lines if line.startswith("Instance i-"))
    assert state_of(account, instance_id) == "running"  # not rolled back


def test_wait_running_skips_the_ssh_check(account, nothing_listens):
    instances_at_this_machine(account.ec2)
    result = real(account, *setup_args("demo"), "--wait", "running", "--output", "json")
    assert result.code == 0, result.stderr
    assert result.json["result"]["ssh_check"] == "not-waited"
    assert "Waiting for SSH" not in result.stderr


def test_an_emulated_account_says_ssh_was_not_checked(cli, account):
    result = cli(*setup_args("demo"))
    assert result.code == 0, result.stderr
    assert "SSH not checked (an emulated account: nothing listens)" in result.stdout
    assert "Waiting for SSH" not in result.stderr


# ---- SSH config entries ---------------------------------------------------------------------------------------

@pytest.mark.skipif(not HAS_SSH, reason="the OpenSSH client is not installed")
def test_setup_writes_a_host_block_that_openssh_resolves(cli, account, isolated_env):
    setup = made(cli)
    config = sshconfig.config_file()
    assert setup["ssh_config"]["hosts"] == ["demo"] and setup["ssh_config"]["file"] == str(config)
    resolved = ssh_g(config, "demo")
    assert resolved["hostname"] == setup["public_dns"]
    assert resolved["user"] == "ec2-user"
    assert resolved["identityfile"] == setup["key_path"]
    assert resolved["identitiesonly"] == "yes"
    assert resolved["stricthostkeychecking"] == "accept-new"
    assert resolved["hostkeyalias"] == setup["instance_id"]
    assert ssh_g(config, "elsewhere")["stricthostkeychecking"] != "accept-new"  # scoped to our host
    # ~/.ssh/config includes our file, so plain `ssh demo` resolves the same through the user's own config
    user_config = isolated_env / ".ssh" / "config"
    assert ssh_g(user_config, "demo")["hostname"] == setup["public_dns"]
    assert "ssh demo" in cli(*setup_args("demo")).stdout.splitlines()


def test_the_include_line_goes_on_top_once_and_the_users_entries_stay(cli, account, isolated_env):
    ssh_dir = isolated_env / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    user_config = ssh_dir / "config"
    mine = "Host work\n    HostName work.example.com\n    User me\n"
    user_config.write_text(mine)
    user_config.chmod(0o644)
    made(cli, "one")
    made(cli, "two")
    text = user_config.read_text()
    include = f"Include {sshconfig.config_file()}"
    assert text.count(include) == 1
    assert text.index(include) < text.index("Host work")  # at the top: outside any Host block
    assert text.endswith(mine)  # the user's entries byte for byte
    assert stat.S_IMODE(user_config.stat().st_mode) == 0o644  # their mode too
    assert not [p.name for p in ssh_dir.iterdir() if p.suffix in (".lock", ".tmp")]  # nothing of ours left around
    if HAS_SSH:
        assert ssh_g(user_config, "two")["hostname"].startswith("ec2-")
        assert ssh_g(user_config, "work")["hostname"] == "work.example.com"


def test_a_missing_ssh_dir_is_created_private(cli, account, isolated_env):
    made(cli, "demo", "--key-dir", str(isolated_env / "keys"))
    assert stat.S_IMODE((isolated_env / ".ssh").stat().st_mode) == 0o700
    assert stat.S_IMODE((isolated_env / ".ssh" / "config").stat().st_mode) == 0o600
    assert stat.S_IMODE(sshconfig.config_file().stat().st_mode) == 0o600


def test_no_ssh_config_writes_nothing(cli, account, isolated_env):
    setup = made(cli, "demo", "--no-ssh-config")
    assert setup["ssh_config"] is None
    assert not sshconfig.config_file().exists() and not (isolated_env / ".ssh" / "config").exists()


def test_a_host_of_the_same_name_in_the_users_config_is_left_alone(cli, account, isolated_env):
    (isolated_env / ".ssh").mkdir(mode=0o700)
    (isolated_env / ".ssh" / "config").write_text("Host demo\n    HostName mine.example.com\n")
    result = cli(*setup_args("demo"))
    assert result.code == 0, result.stderr
    assert "already has `Host demo`: left alone" in result.stderr
    assert sshconfig.read_block("demo") is None
    assert (isolated_env / ".ssh" / "config").read_text() == "Host demo\n    HostName mine.example.com\n"


def test_teardown_removes_the_block_but_not_the_include_line(cli, account, isolated_env):
    made(cli, "keep")
    made(cli, "gone")
    assert cli("teardown", "--region", REGION, "--name", "gone", "--yes").code == 0
    assert sshconfig.read_block("gone") is None and sshconfig.read_block("keep") is not None
    assert "Host gone" not in sshconfig.config_file().read_text()
    assert f"Include {sshconfig.config_file()}" in (isolated_env / ".ssh" / "config").read_text()


@pytest.mark.skipif(not HAS_SSH, reason="the OpenSSH client is not installed")
def test_a_fleet_gets_one_block_per_instance_and_the_bare_name_is_the_first(cli, account):
    setup = made(cli, "pair", "--count", "2")
    config = sshconfig.config_file()
    first, second = setup["instances"]
    assert ssh_g(config, "pair-0")["hostname"] == first["public_dns"]
    assert ssh_g(config, "pair")["hostname"] == first["public_dns"]
    assert ssh_g(config, "pair-1")["hostname"] == second["public_dns"]
    assert ssh_g(config, "pair-1")["hostkeyalias"] == second["instance_id"]


def test_sandbox_entries_go_to_their_own_file_never_included(isolated_env):
    instance = Namespace(id="i-0123456789abcdef0", host="ec2-54-1-2-3.us-west-2.compute.amazonaws.com")
    from amazonei_setup.cli.commands.setup import write_ssh_entries
    from amazonei_setup.cli.commands.status import Access

    warnings: list[str] = []
    written = write_ssh_entries(Namespace(sandbox=True), REGION, "play", [instance],
                                Access("ec2-user", "/k.pem", True, "plan"), warnings, include=True)
    assert warnings == [] and written["included"] is False
    assert written["include_line"] is None  # so the result never suggests including the sandbox's file
    assert Path(written["file"]) == sshconfig.config_file(sandbox=True) != sshconfig.config_file()
    assert "Host play" in Path(written["file"]).read_text()
    assert not (isolated_env / ".ssh").exists()  # a made-up address must never be reachable as `ssh play`


def test_two_writers_at_once_keep_each_others_blocks(isolated_env):
    def write(name: str) -> None:
        for n in range(15):
            entry = sshconfig.HostEntry((name,), f"10.0.0.{n}", "ec2-user", "/k.pem", f"i-{name}")
            sshconfig.write_block(name, REGION, [entry])

    threads = [threading.Thread(target=write, args=(name,)) for name in ("alpha", "beta", "gamma")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    text = sshconfig.config_file().read_text()
    assert all(text.count(f"Host {name}\n") == 1 for name in ("alpha", "beta", "gamma")), text
    assert "HostName 10.0.0.14" in sshconfig.read_block("beta")


def test_a_writer_waits_while_another_run_holds_the_file(isolated_env):
    """Another run (setup, start, teardown) holding the lock: a second writer does not read the file until it is done,
    so neither loses the other's block."""
    entry = sshconfig.HostEntry(("late",), "10.0.0.9", "ec2-user", "/k.pem", "i-late")
    writer = threading.Thread(target=sshconfig.write_block, args=("late", REGION, [entry]))
    with sshconfig._locked(sshconfig.config_file()):
        writer.start()
        writer.join(timeout=1.0)
        assert writer.is_alive(), "wrote while another run held the file"
        assert sshconfig.read_block("late") is None
    writer.join()
    assert "HostName 10.0.0.9" in sshconfig.read_block("late")


class DecliningAsker:
    """An interactive user who answers the wizard's questions with their defaults and says no to the confirm."""

    interactive = True

    def __init__(self):
        self.confirms: list[str] = []

    def select(self, message, options, default, *, flag, hint=""):
        return default

    def text(self, message, default, *, flag, validate):
        return default

    def confirm(self, message, default=False):
        self.confirms.append(message)
        return False


def test_the_wizard_says_what_it_adds_to_ssh_config_before_its_confirm(cli, account, isolated_env):
    asker = DecliningAsker()
    declined = cli("--region", REGION, "--instance-type", "m5.xlarge", "--name", "demo", "--ssh-cidr", SSH_CIDR,
                   asker=asker, tty=True)
    assert declined.code == 0 and asker.confirms == ["Create these resources?"]
    said = declined.stderr
    assert "SSH by name: setup also adds `Host demo`" in said
    assert f"`Include {sshconfig.config_file()}`" in said and "--no-ssh-config skips both" in said
    assert not (isolated_env / ".ssh" / "config").exists()  # a no touches nothing


def test_connect_to_an_instance_a_fleet_does_not_have_is_a_usage_error(cli, account):
    made(cli)
    result = cli("connect", "--name", "demo", "--index", "3", "--print")
    assert result.code == 2
    assert "--index 3 is outside the deployment's 1 instance: pass --index 0." in result.stderr


def test_without_the_user_tag_or_a_record_the_user_comes_from_the_image_name(cli, account, isolated_env):
    """A deployment made before the ssh-user tag, seen from another machine (no record): the image's name says."""
    from amazonei_setup.local import records

    setup = made(cli, "demo", "--os", "ubuntu-16.04")
    assert setup["ssh_user"] == "ubuntu"
    account.ec2.delete_tags(Resources=[setup["instance_id"]], Tags=[{"Key": "amazonei-setup:ssh-user"}])
    records.remove(REGION, "demo")
    printed = cli("connect", "--name", "demo", "--print")
    assert printed.code == 0, printed.stderr
    # the key from the default key directory and the key pair's name, where setup saved it
    pem = isolated_env / ".ssh" / "amazonei-setup-demo.pem"
    assert printed.stdout == f"ssh -i {pem} ubuntu@{setup['public_dns']}\n"


def test_stop_refuses_instances_an_auto_scaling_group_would_replace(cli, account):
    setup = made(cli)

    def in_a_group(parsed, **_):  # what Auto Scaling tags its instances with (export --deploy of an inf2/gpu fleet)
        for reservation in parsed.get("Reservations", []):
            for each in reservation["Instances"]:
                each.setdefault("Tags", []).append({"Key": "aws:autoscaling:groupName", "Value": "demo-fleet"})
    account.ec2.meta.events.register("after-call.ec2.DescribeInstances", in_a_group)
    result = cli("stop", "--name", "demo")
    assert result.code == 2
    assert "belong to Auto Scaling group demo-fleet" in result.stderr and "--desired-capacity 0" in result.stderr
    assert state_of(account, setup["instance_id"]) == "running"
