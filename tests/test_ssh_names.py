"""A deployment's `Host` entry never shadows a name this machine already reaches, nor another deployment's entry.

The deployment name stays allowed (it names AWS resources); what is refused or left out is the Host alias. A name
another deployment's block already answers to is certain to collide, so setup refuses it before anything is created
(exit 2). A real host name (localhost, /etc/hosts, DNS, a name the user's ssh config sends elsewhere) gets no entry
and a warning naming `connect`. DNS is never asked here: conftest answers from this machine's own names."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from amazonei_setup.local import sshconfig
from tests.conftest import REGION, setup_args, snapshot
from tests.test_day2 import real

HAS_SSH = shutil.which("ssh") is not None


def ssh_g(config, host: str) -> dict[str, str]:
    done = subprocess.run(["ssh", "-F", str(config), "-G", host], capture_output=True, text=True, check=True,
                          timeout=30)
    return {k: v for k, _, v in (line.partition(" ") for line in done.stdout.splitlines())}


def made(cli, name: str, *extra: str) -> dict:
    result = cli(*setup_args(name, "--output", "json", *extra))
    assert result.code == 0, result.stderr
    return result.json["result"]


def hosts_in(config) -> list[str]:
    """Every alias of every Host line in our file."""
    text = config.read_text() if config.exists() else ""
    return [alias for line in text.splitlines() if line.startswith("Host ") for alias in line.split()[1:]]


def test_localhost_gets_no_host_entry_and_a_warning_naming_connect(cli, account, isolated_env):
    made(cli, "other")  # ~/.ssh/config now includes our file
    result = cli(*setup_args("localhost"))

    assert result.code == 0, result.stderr
    assert "localhost" not in hosts_in(sshconfig.config_file())
    said = " ".join(result.stderr.split())
    assert "No `Host localhost` entry was written" in said, said
    assert f"connect --region {REGION} --name localhost" in said
    assert "ssh localhost" not in result.stdout.splitlines()
    if HAS_SSH:  # the user's own config (which includes ours) still sends `ssh localhost` to this machine
        assert ssh_g(isolated_env / ".ssh" / "config", "localhost")["hostname"] == "localhost"


def test_a_name_in_etc_hosts_gets_no_host_entry(cli, account, monkeypatch):
    monkeypatch.setattr(sshconfig, "HOSTS_FILE", _hosts_file(monkeypatch, "10.1.2.3 buildbox buildbox.lan\n"))
    result = cli(*setup_args("buildbox", "--output", "json"))

    assert result.code == 0, result.stderr
    assert result.json["result"]["ssh_config"]["hosts"] == []
    assert "buildbox" not in hosts_in(sshconfig.config_file())
    assert "`buildbox` already reaches a machine" in " ".join(result.stderr.split()), result.stderr


def _hosts_file(monkeypatch, text: str):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "hosts"
    path.write_text("127.0.0.1 localhost\n" + text)
    return path


def test_a_name_dns_resolves_gets_no_host_entry_against_real_aws(account, monkeypatch):
    asked = []

    def dns(name: str) -> bool:
        asked.append(name)
        return name == "wiki"

    monkeypatch.setattr(sshconfig, "dns_resolves", dns)
    result = real(account, *setup_args("wiki", "--wait", "running", "--output", "json"))

    assert result.code == 0, result.stderr
    assert "wiki" in asked
    assert result.json["result"]["ssh_config"]["hosts"] == []
    assert "wiki" not in hosts_in(sshconfig.config_file())
    other = real(account, *setup_args("lab", "--wait", "running", "--output", "json"))
    assert other.json["result"]["ssh_config"]["hosts"] == ["lab"]  # a name DNS does not know gets its entry


def test_a_fleet_keeps_the_member_names_when_only_the_bare_name_is_taken(account, monkeypatch):
    monkeypatch.setattr(sshconfig, "dns_resolves", lambda name: name == "team")
    result = real(account, *setup_args("team", "--count", "2", "--wait", "running", "--output", "json"))

    assert result.code == 0, result.stderr
    assert result.json["result"]["ssh_config"]["hosts"] == ["team-0", "team-1"]
    assert "team" not in hosts_in(sshconfig.config_file())


@pytest.mark.skipif(not HAS_SSH, reason="the OpenSSH client is not installed")
def test_a_name_the_users_ssh_config_sends_elsewhere_gets_no_host_entry(cli, account, isolated_env):
    ssh_dir = isolated_env / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    (ssh_dir / "config").write_text("Host gate?\n    HostName 10.9.8.7\n")  # a pattern, not a `Host gate1` line
    result = cli(*setup_args("gate1", "--output", "json"))

    assert result.code == 0, result.stderr
    assert result.json["result"]["ssh_config"]["hosts"] == []
    assert ssh_g(ssh_dir / "config", "gate1")["hostname"] == "10.9.8.7"  # still where the user sends it
    # and a name that config leaves alone still gets its entry
    assert made(cli, "gateway")["ssh_config"]["hosts"] == ["gateway"]


def test_a_name_another_deployments_fleet_answers_to_is_refused_before_anything_is_created(cli, account):
    made(cli, "demo", "--count", "2")
    before = snapshot(account)

    result = cli(*setup_args("demo-1"))

    assert result.code == 2, result.stderr
    said = " ".join(result.stderr.split())
    assert "demo-1" in said and "deployment demo" in said and "--no-ssh-config" in said, said
    assert "Traceback" not in said
    assert snapshot(account) == before
    assert hosts_in(sshconfig.config_file()).count("demo-1") == 1


def test_a_fleet_whose_member_name_another_deployment_has_is_refused(cli, account):
    made(cli, "web-1")
    before = snapshot(account)

    result = cli(*setup_args("web", "--count", "2"))

    assert result.code == 2, result.stderr
    assert "web-1" in result.stderr and "deployment web-1" in " ".join(result.stderr.split())
    assert snapshot(account) == before


def test_no_ssh_config_lets_the_name_through_and_start_then_leaves_the_taken_alias_out(cli, account):
    """The refusal is about the Host entry: --no-ssh-config writes none, so the deployment is made. A later `start`
    (which writes the entry) leaves out the alias another deployment has, and says so."""
    first = made(cli, "demo-1")
    fleet = made(cli, "demo", "--count", "2", "--no-ssh-config")

    assert cli("stop", "--name", "demo").code == 0
    started = cli("start", "--name", "demo", "--output", "json")

    assert started.code == 0, started.stderr
    assert started.json["result"]["ssh_config"]["hosts"] == ["demo-0", "demo"]
    said = " ".join(started.stderr.split())
    assert "No `Host demo-1` entry was written for deployment demo: deployment demo-1's entry" in said, said
    assert hosts_in(sshconfig.config_file()).count("demo-1") == 1
    assert fleet["instances"][1]["instance_id"] not in sshconfig.config_file().read_text()
    if HAS_SSH:
        assert ssh_g(sshconfig.config_file(), "demo-1")["hostkeyalias"] == first["instance_id"]
    status = cli("status", "--name", "demo", "--output", "json").json["result"]
    assert [row["ssh_host"] for row in status["instances"]] == ["demo-0", None]


def test_a_rerun_of_the_same_deployment_is_not_refused_by_its_own_entry(cli, account):
    made(cli, "demo", "--count", "2")
    again = cli(*setup_args("demo", "--count", "2"))
    assert again.code == 0, again.stderr


def test_the_sandbox_file_refuses_a_collision_too(isolated_env):
    from argparse import Namespace

    from amazonei_setup.cli.commands.setup import write_ssh_entries
    from amazonei_setup.cli.commands.status import Access

    one = Namespace(id="i-0123456789abcdef0", host="ec2-54-1-2-3.us-west-2.compute.amazonaws.com")
    two = Namespace(id="i-0fedcba9876543210", host="ec2-54-1-2-4.us-west-2.compute.amazonaws.com")
    args = Namespace(sandbox=True, region=REGION, profile=None, endpoint_url=None)
    warnings: list[str] = []
    access = Access("ec2-user", "/k.pem", True, "plan")
    write_ssh_entries(args, REGION, "play", [one, two], access, warnings, include=False, emulated=True)
    written = write_ssh_entries(args, REGION, "play-1", [one], access, warnings, include=False, emulated=True)
    assert written["hosts"] == []
    assert any("deployment play" in w for w in warnings), warnings
    assert hosts_in(sshconfig.config_file(sandbox=True)).count("play-1") == 1


def test_taken_aliases_are_refused_at_plan_time_by_a_pure_check(isolated_env):
    from amazonei_setup.cli.commands.status import Access  # noqa: F401 - the module the check lives beside
    entries = sshconfig.entries_for("x", [type("I", (), {"id": "i-1", "host": "h1"})(),
                                          type("I", (), {"id": "i-2", "host": "h2"})()], "u", None)
    sshconfig.write_block("x", REGION, entries)
    assert sshconfig.taken_by_others("x-1", sshconfig.host_names("x-1", 1)) == {"x-1": "x"}
    assert sshconfig.taken_by_others("x", sshconfig.host_names("x", 2)) == {}
    assert sshconfig.taken_by_others("y", sshconfig.host_names("y", 1)) == {}


@pytest.mark.skipif(not HAS_SSH, reason="the OpenSSH client is not installed")
def test_our_own_entry_never_counts_as_the_users_however_the_include_is_spelled(cli, account, isolated_env):
    """`ssh -G` is asked without our Include, also when the user respelled it with `~`: a re-run and a start keep
    the deployment's own entry."""
    made(cli, "mine")
    user_config = isolated_env / ".ssh" / "config"
    home = sshconfig.config_file().relative_to(isolated_env)
    user_config.write_text(f"Include ~/{home}\n")
    assert ssh_g(user_config, "mine")["hostname"].startswith("ec2-")  # our block, through the respelled Include
    again = cli(*setup_args("mine", "--output", "json"))
    assert again.code == 0, again.stderr
    assert again.json["result"]["ssh_config"]["hosts"] == ["mine"]
