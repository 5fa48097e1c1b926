"""The wizard in a real pseudo-terminal (pexpect), against the --sandbox account, as a person runs it.

Each test starts the CLI as its own process on a 24x100 pty with TERM=xterm, answers the prompts with
arrow keys and Enter, and reads what a terminal would show. HOME and AMAZONEI_SETUP_HOME point into
tmp, so keys and sandbox state never reach the real home.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import default_signal_handlers

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
    # A terminal answers prompt_toolkit's cursor-position request (ESC[6n) at once; pexpect never does, so every
    # prompt would wait prompt_toolkit's 1 s timeout and then draw as it does without the answer. PROMPT_TOOLKIT_NO_CPR
    # is that same drawing without the wait (~1 s per question: 6-7 s of each wizard test).
    env.update(HOME=str(home), AMAZONEI_SETUP_HOME=str(home / ".amazonei-setup"), TERM="xterm",
               AWS_EC2_METADATA_DISABLED="true", PROMPT_TOOLKIT_NO_CPR="1")
    return env


@pytest.fixture
def home(tmp_path) -> Path:
    path = tmp_path / "user"
    path.mkdir()
    return path


def spawn(home: Path, *argv: str):
    child = pexpect.spawn(sys.executable, [*SETUP, *argv], cwd=str(ROOT), env=user_env(home), dimensions=(24, 100),
                          timeout=TIMEOUT, encoding="utf-8", codec_errors="replace",
                          preexec_fn=default_signal_handlers)  # Ctrl-C must arrive, whatever pytest inherited
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
        child.expect("Accelerator:")            # Elastic Inference types, then the alternatives
        child.send(DOWN + "\r")                # eia2.medium -> eia2.large
        child.expect(r"Operating system")
        child.send("\r")                       # Amazon Linux
        child.expect(r"Subnet:.*in an AZ that offers Elastic Inference")
        child.send("\r")                       # the first public subnet
        child.expect(r"Idle auto-stop:.*an idle day costs \$\d+\.\d\d")  # asked last, with what idling costs
        child.send(DOWN + "\r")                # off -> the first number of minutes
        child.expect("Setup plan")
        child.expect(r"m5\.xlarge \+ eia2\.large")
        child.expect(r"Create these resources\?")
        child.send("\r")                       # Yes is the default
        child.expect(r"ssh -i ([^\s\x1b]+) -p \d+ ec2-user@([^\s\x1b]+)")  # the sandbox's SSH port
        key_path, host = child.match.group(1), child.match.group(2)
        status = finish(child)
    finally:
        child.close(force=True)
    assert status == 0, child.before
    # The command reached the terminal in one piece: a real key file and the sandbox instance's address.
    assert Path(key_path).is_file() and Path(key_path).is_relative_to(home)
    assert host == "127.0.0.1"
    [deployment] = sandbox_deployments(home)
    assert (deployment["state"], deployment["accelerator_type"]) == ("running", "eia2.large")
    status = subprocess.run([sys.executable, "amazonei_setup.py", "status", "--sandbox", "--name", deployment["name"],
                             "--output", "json"], cwd=ROOT, env=user_env(home), capture_output=True, text=True,
                            timeout=120)
    assert json.loads(status.stdout)["result"]["idle_stop"]["minutes"] == 30, status.stderr  # the answer took effect
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


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b[=>]")


def screen_lines(text: str) -> list[str]:
    return [ANSI.sub("", line) for line in text.replace("\r\n", "\n").split("\n")]


def test_at_80_columns_the_wizard_asks_the_host_fits_the_plan_and_prints_the_command_to_repeat_it(home):
    argv = ["amazonei_setup.py", "--sandbox", "--region", "us-west-2", "--ssh-cidr", "198.51.100.4/32"]
    child = pexpect.spawn(sys.executable, argv, cwd=str(ROOT), env=user_env(home), dimensions=(30, 80),
                          timeout=TIMEOUT, encoding="utf-8", codec_errors="replace", preexec_fn=default_signal_handlers)
    try:
        child.expect("Deployment name")
        child.send("\r")
        child.expect("Accelerator:")
        child.expect("FP32/FP16 1/8  TFLOPS")  # the figures are labelled in the row itself
        child.send("\r")                       # eia2.medium
        child.expect(r"Host instance type:")   # no --instance-type: asked, not an argparse error
        child.expect(r"m5\.xlarge\s+4 vCPU\s+16 GiB\s+\$0\.192/h\s+\$0\.312/h")
        child.send(DOWN + DOWN + "\r")         # m5.xlarge -> r5.xlarge -> c5.2xlarge
        child.expect(r"Operating system")
        child.send("\r")
        child.expect(r"Subnet:.*in an AZ that offers Elastic Inference")
        child.send("\r")
        child.expect("Idle auto-stop:")
        child.send("\r")                       # off
        child.expect("Setup plan")
        child.expect(r"Create these resources\?")
        plan = screen_lines(child.before)
        child.send("\r")
        child.expect("The same setup without questions:")
        child.expect(r"(python amazonei_setup\.py --sandbox [^\r\n]*--yes)")
        command = child.match.group(1)
        status = finish(child)
    finally:
        child.close(force=True)
    assert status == 0, child.before
    # The plan and its question fit a small terminal without scrolling the answers away, in 80 columns.
    assert len(plan) + 1 <= 20, "\n".join(plan)
    assert all(len(line) <= 80 for line in plan), "\n".join(plan)
    assert any("c5.2xlarge + eia2.medium" in line for line in plan)
    [deployment] = sandbox_deployments(home)
    assert (deployment["instance_type"], deployment["accelerator_type"]) == ("c5.2xlarge", "eia2.medium")
    assert f"--name {deployment['name']} --instance-type c5.2xlarge --accelerator-type eia2.medium" in command

    # The printed command runs as printed (with this test's interpreter) and converges: nothing to create,
    # so nothing is asked.
    program, *flags = shlex.split(command)
    assert program == "python"  # the interpreter the user ran the tool with; here, this test's own
    again = subprocess.run([sys.executable, *flags], cwd=ROOT, env=user_env(home), capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"Nothing to change: deployment {deployment['name']} is up to date." in again.stderr
    assert len(sandbox_deployments(home)) == 1

    # The same re-run in the terminal: no confirmation for a plan that changes nothing.
    child = pexpect.spawn(sys.executable, [*argv, "--instance-type", "c5.2xlarge", "--name", deployment["name"],
                                           "--accelerator-type", "eia2.medium", "--os", "amazon-linux"],
                          cwd=str(ROOT), env=user_env(home), dimensions=(30, 80), timeout=TIMEOUT, encoding="utf-8",
                          codec_errors="replace", preexec_fn=default_signal_handlers)
    try:
        child.expect("Nothing to change")
        child.expect(f"Ready: {deployment['name']}")
        status = finish(child)
        transcript = child.before
    finally:
        child.close(force=True)
    assert status == 0, transcript
    assert "Create these resources" not in transcript


# ---- a small terminal: where things land on the screen ------------------------------------------------------------

class Screen:
    """Enough of a VT100 to say on which row text ends up: printable characters (with autowrap), CR, LF (scrolling
    at the bottom), BS, and the CSI sequences prompt_toolkit and rich use (cursor moves and positions, erase, modes,
    colours). `cpr()` is what a terminal answers to ESC[6n."""

    CSI = re.compile(r"\x1b\[([?0-9;]*)([A-Za-z@])|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]|\x1b[=>78]")

    def __init__(self, rows: int, cols: int):
        self.rows, self.cols = rows, cols
        self.grid = [[" "] * cols for _ in range(rows)]
        self.row = self.col = 0
        self.autowrap = True
        self.cpr_requests = 0

    def feed(self, text: str) -> None:
        at = 0
        for found in self.CSI.finditer(text):
            self._chars(text[at:found.start()])
            self._csi(found)
            at = found.end()
        self._chars(text[at:])

    def _chars(self, text: str) -> None:
        for char in text:
            if char == "\r":
                self.col = 0
            elif char == "\n":
                self._down()
            elif char == "\b":
                self.col = max(self.col - 1, 0)
            elif char >= " ":
                if self.col >= self.cols:
                    if not self.autowrap:
                        continue
                    self.col = 0
                    self._down()
                self.grid[self.row][self.col] = char
                self.col += 1

    def _down(self) -> None:
        if self.row == self.rows - 1:
            self.grid = self.grid[1:] + [[" "] * self.cols]
        else:
            self.row += 1

    def _csi(self, found) -> None:
        if found.group(2) is None:
            return
        params, command = found.group(1), found.group(2)
        if params.startswith("?"):
            if params == "?7":
                self.autowrap = command == "h"
            return
        numbers = [int(n) if n else 0 for n in params.split(";")] if params else []
        n = max(numbers[0], 1) if numbers else 1
        if command == "A":
            self.row = max(self.row - n, 0)
        elif command == "B":
            self.row = min(self.row + n, self.rows - 1)
        elif command == "C":
            self.col = min(self.col + n, self.cols - 1)
        elif command == "D":
            self.col = max(self.col - n, 0)
        elif command == "H":
            self.row = min(max(numbers[0], 1) if numbers else 1, self.rows) - 1
            self.col = min(max(numbers[1], 1) if len(numbers) > 1 else 1, self.cols) - 1
        elif command == "K":
            spans = {0: (self.col, self.cols), 1: (0, self.col + 1), 2: (0, self.cols)}
            start, end = spans[numbers[0] if numbers else 0]
            self.grid[self.row][start:end] = [" "] * (end - start)
        elif command == "J":
            mode = numbers[0] if numbers else 0
            rows = range(self.row + 1, self.rows) if mode == 0 else range(self.rows) if mode == 2 else range(self.row)
            for row in rows:
                self.grid[row] = [" "] * self.cols
            if mode == 0:
                self.grid[self.row][self.col:] = [" "] * (self.cols - self.col)
        elif command == "n" and numbers == [6]:
            self.cpr_requests += 1

    def cpr(self) -> str:
        return f"\x1b[{self.row + 1};{self.col + 1}R"

    def lines(self) -> list[str]:
        return ["".join(row).rstrip() for row in self.grid]

    def row_of(self, text: str) -> int:
        return next(i for i, line in enumerate(self.lines()) if text in line)


def run_in(screen: Screen, child, until, *, within: float = TIMEOUT) -> None:
    """Feed the child's output to `screen`, answering its cursor-position requests as a terminal does, until
    until(screen) holds (or the deadline: the caller's assertions then say what is missing)."""
    import time

    deadline = time.monotonic() + within
    while not until(screen) and time.monotonic() < deadline:
        try:
            chunk = child.read_nonblocking(4096, timeout=0.2)
        except pexpect.TIMEOUT:
            continue
        asked = screen.cpr_requests
        screen.feed(chunk)
        for _ in range(screen.cpr_requests - asked):
            child.send(screen.cpr())


def test_a_bad_name_is_explained_right_under_the_question_on_a_terminal_that_answers_cpr(home):
    """A real terminal answers prompt_toolkit's cursor-position request; prompt_toolkit then fills the space below
    the cursor, and the reason for a refused answer landed on the screen's last row, ~23 lines below the question."""
    env = {k: v for k, v in user_env(home).items() if k != "PROMPT_TOOLKIT_NO_CPR"}
    child = pexpect.spawn(sys.executable, [*SETUP[:-2]], cwd=str(ROOT), env=env, dimensions=(30, 80), timeout=TIMEOUT,
                          encoding="utf-8", codec_errors="replace", preexec_fn=default_signal_handlers)
    screen = Screen(30, 80)
    try:
        run_in(screen, child, lambda s: any("Deployment name" in line for line in s.lines()))
        child.send("\x15My_Demo!\r")  # Ctrl-U empties the default
        run_in(screen, child, lambda s: any("use 1-32 of a-z" in line for line in s.lines()))
    finally:
        child.close(force=True)
    shown = "\n".join(screen.lines())
    question, reason = screen.row_of("Deployment name"), screen.row_of("use 1-32 of a-z")
    assert 0 < reason - question <= 2, shown
