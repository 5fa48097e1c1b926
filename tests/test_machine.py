"""Work on the machine, for real: the sandbox's instances answer SSH (an asyncssh server per instance on 127.0.0.1,
in the sandbox server), and the real OpenSSH client reaches them through the tool's own Host block.

Every step is its own CLI process in a fresh HOME, as a user runs it; one sandbox server is shared by the steps of a
test and stopped at its end.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from amazonei_setup import sandbox_server
from tests.test_e2e import REGION, Cli, user_env

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("ssh") is None, reason="the OpenSSH client is not installed")]


@pytest.fixture
def home(tmp_path) -> Path:
    path = tmp_path / "user"
    path.mkdir()
    yield path
    sandbox_server.stop(path / ".amazonei-setup" / "sandbox")


def ssh_config(home: Path) -> Path:
    return home / ".amazonei-setup" / "sandbox" / "ssh" / "config"


def ssh(home: Path, host: str, *command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh", "-F", str(ssh_config(home)), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                           host, *command], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env=user_env(home), **kwargs)


def port_of(block: str) -> int:
    return int(re.search(r"^\s+Port (\d+)$", block, re.M).group(1))


def test_a_sandbox_instance_answers_ssh_through_the_tools_host_block_and_follows_stop_start_teardown(home):
    cli = Cli(user_env(home))
    made = cli.json("setup", "--sandbox", "--region", REGION, "--instance-type", "m5.xlarge", "--name", "box",
                    "--yes")
    assert made["ssh_check"] == "answers"  # checked for real: the port greets as an SSH server
    assert "ssh" in made["waited_for"]
    block = ssh_config(home).read_text()
    assert "HostName 127.0.0.1" in block and "UserKnownHostsFile" in block and "StrictHostKeyChecking yes" in block
    port = port_of(block)
    assert f"-p {port} " in made["ssh_command"] and "@127.0.0.1" in made["ssh_command"]

    first = ssh(home, "box", "echo", "hello from", '"$HOME"')
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("hello from ") and "/sandbox/homes/i-" in first.stdout
    assert not (home / ".ssh" / "known_hosts").exists(), "the user's known_hosts is never touched"

    sandbox = ("--sandbox", "--region", REGION)
    words = cli("exec", *sandbox, "--name", "box", "--", "sh", "-c", "printf '%s|' \"$@\"; echo; echo err >&2; exit 3",
                "sh", "two words", "$HOME", "*", expect=3)
    assert words.stdout == "two words|$HOME|*|\n", "the words after -- reach the remote command as the same words"
    assert "err" in words.stderr and "err" not in words.stdout
    cli("exec", *sandbox, "--name", "box", "--", "sh", "-c", "printf 'a,b\\n1,2\\n' > results.csv")
    assert cli("exec", *sandbox, "--name", "box", "--", "cat", "results.csv").stdout == "a,b\n1,2\n"
    assert (Path(first.stdout.split()[-1]) / "workdir" / "results.csv").is_file(), "commands run in ~/workdir"
    cli("exec", *sandbox, "--name", "box", "--", "false", expect=1)
    assert '"exit_code": 1' in cli("exec", *sandbox, "--name", "box", "--output", "json", "--", "false",
                                   expect=1).stdout

    printed = cli("connect", "--sandbox", "--region", REGION, "--name", "box", "--print").stdout
    assert f"-p {port} " in printed and "127.0.0.1" in printed and "amazonaws.com" not in printed
    status = cli.json("status", "--sandbox", "--region", REGION, "--name", "box")
    assert f"-p {port} " in status["instances"][0]["ssh_command"]

    cli("stop", "--sandbox", "--region", REGION, "--name", "box", "--yes")
    assert_closed(home, port)

    started = cli.json("start", "--sandbox", "--region", REGION, "--name", "box")
    assert started["ssh_check"] == "answers"
    assert port_of(ssh_config(home).read_text()) == port  # the same port again while it is free
    assert ssh(home, "box", "true").returncode == 0

    cli("teardown", "--sandbox", "--region", REGION, "--name", "box", "--yes")
    assert "Host box" not in ssh_config(home).read_text()
    assert_closed(home, port)


def assert_closed(home: Path, port: int) -> None:
    refused = subprocess.run(["ssh", "-p", str(port), "-o", "BatchMode=yes", "127.0.0.1", "true"],
                             capture_output=True, text=True, timeout=30, env=user_env(home))
    assert refused.returncode == 255 and "refused" in refused.stderr


def test_exec_on_a_fleet_runs_on_every_instance_and_prefixes_each_line(home):
    cli = Cli(user_env(home))
    sandbox = ("--sandbox", "--region", REGION)
    cli("setup", *sandbox, "--instance-type", "m5.xlarge", "--name", "pair", "--count", "2", "--yes")
    done = cli("exec", *sandbox, "--name", "pair", "--", "sh", "-c", 'basename "$HOME"')
    lines = sorted(done.stdout.splitlines())
    assert [line.split()[0] for line in lines] == ["[pair-0]", "[pair-1]"]
    assert len({line.split()[1] for line in lines}) == 2, "each instance answered from its own home"
    one = cli("exec", *sandbox, "--name", "pair", "--index", "1", "--", "sh", "-c", "exit 4", expect=4)
    assert one.stdout == ""
    cli("teardown", *sandbox, "--name", "pair", "--yes")
