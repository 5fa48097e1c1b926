"""The wizard in a real pseudo-terminal (pexpect), against the --sandbox account, as a person runs it.

Each test starts the CLI as its own process on a 24x100 pty with TERM=xterm, answers the prompts with
arrow keys and Enter, and reads what a terminal would show. HOME and AMAZONEI_SETUP_HOME point into
tmp, so keys and sandbox state never reach the real home.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # separate processes: `-m "not slow"` skips them locally, never in CI
TIMEOUT = 30
DOWN = "\x1b[B"
SETUP = ["amazonei_setup.py", "--sandbox", "--region", "us-west-2", "--instance-type", "m5.xlarge",
         "--ssh-cidr", "198.51.100.4/32"]


def user_env(home: Path) -> dict[str, str]:
    """A user's environment, minus anything that could reach a real account or change the colours."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in ("CI", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS",
                                                       "LINES")}
    env.update(HOME=str(home), AMAZONEI_SETUP_HOME=str(home / ".amazonei-setup"), TERM="xterm",
               AWS_EC2_METADATA_DISABLED="true", PYTHONDONTWRITEBYTECODE="1")
    return env


@pytest.fixture
def home(tmp_path) -> Path:
    path = tmp_path / "user"
    path.mkdir()
    return path


def spawn(home: Path, *argv: str):
    child = pexpect.spawn(sys.executable, [*SETUP, *argv], cwd=str(ROOT), env=user_env(home), dimensions=(24, 100),
                          timeout=TIMEOUT, encoding="utf-8", codec_errors="replace")
    return child


def finish(child) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def sandbox_deployments(home: Path) -> list[dict]:
    listed = subprocess.run([sys.executable, "amazonei_setup.py", "list", "--sandbox", "--region", "us-west-2",
                             "--output", "json"], cwd=ROOT, env=user_env(home), capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)["result"]["deployments"]


def test_the_wizard_in_a_terminal_from_prompts_to_the_ssh_command(home):
    child = spawn(home)
    try:
        child.expect("Deployment name")
        child.send("\r")                       # the generated name
        child.expect("Elastic Inference accelerator")
        child.send(DOWN + "\r")                # eia2.medium -> eia2.large
        child.expect(r"Operating system")
        child.send("\r")                       # Amazon Linux
        child.expect(r"Subnet \(only AZs that offer Elastic Inference\)")
        child.send("\r")                       # the first public subnet
        child.expect("Setup plan")
        child.expect(r"m5\.xlarge \+ eia2\.large")
        child.expect(r"Create these resources\?")
        child.send("\r")                       # Yes is the default
        child.expect(r"ssh -i ([^\s\x1b]+) ec2-user@([^\s\x1b]+)")
        key_path, host = child.match.group(1), child.match.group(2)
        status = finish(child)
    finally:
        child.close(force=True)
    assert status == 0, child.before
    # The command reached the terminal in one piece: a real key file and a real host name.
    assert Path(key_path).is_file() and Path(key_path).is_relative_to(home)
    assert re.fullmatch(r"ec2-[\d-]+\.us-west-2\.compute\.amazonaws\.com", host)
    [deployment] = sandbox_deployments(home)
    assert (deployment["state"], deployment["accelerator_type"]) == ("running", "eia2.large")
    assert deployment["name"].startswith("amazonei-")  # the generated default
    assert Path(key_path).stem == deployment["name"]  # a default name is not prefixed twice


def test_ctrl_c_at_the_first_prompt_exits_130_and_creates_nothing(home):
    child = spawn(home)
    try:
        child.expect("Deployment name")
        child.sendcontrol("c")
        child.expect("Interrupted")
        status = finish(child)
    finally:
        child.close(force=True)
    assert status == 130
    assert sandbox_deployments(home) == []
