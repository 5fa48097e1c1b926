"""The README stays true: its sandbox commands run as written on a fresh machine, every command of the tool it
shows is one the parser accepts, its test command is the one CI runs, and it stays short enough to read.

The sandbox blocks are the fenced ```bash blocks right after a `<!-- readme-test: sandbox -->` line (an HTML
comment: invisible on GitHub). They run one line at a time through bash, in a fresh HOME with no AWS credentials,
from a directory holding `.venv/bin/amazonei-setup` as pip would write it for this checkout. The install steps
(`python3 -m venv .venv`, `.venv/bin/pip install ...`) are checked, not run: tests never reach the network.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

import amazonei_setup.cli.main as cli
from tests.conftest import console_script

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKER = "<!-- readme-test: sandbox -->"
INSTALL_STEPS = ("python3 -m venv .venv", ".venv/bin/pip install -q '.[sandbox]'")
PROGRAMS = (".venv/bin/amazonei-setup", "amazonei-setup", "python amazonei_setup.py")


def fenced_blocks(text: str) -> list[tuple[str, str, list[str]]]:
    """(the line before the fence, the fence's language, the block's lines) for every fenced block."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        found = re.match(r"^```(\w*)\s*$", lines[i])
        if not found:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        blocks.append((lines[i - 1].strip() if i else "", found.group(1), lines[i + 1:end]))
        i = end + 1
    return blocks


def commands(block: list[str]) -> list[str]:
    """A block's shell commands: continuation lines joined, comments and blank lines dropped."""
    out, pending = [], ""
    for line in block:
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        command = pending.split("  #", 1)[0].strip()
        pending = ""
        if command and not command.startswith("#"):
            out.append(command)
    return out


def sandbox_commands(text: str) -> list[str]:
    """The marked blocks' commands to run, the install steps taken off (and checked)."""
    runnable = []
    for before, _lang, block in fenced_blocks(text):
        if before != MARKER:
            continue
        for command in commands(block):
            steps = [step.strip() for step in command.split(" && ")]
            if len(steps) > 1:
                assert tuple(steps[:2]) == INSTALL_STEPS, f"an unexpected install in the README: {command}"
                steps = steps[2:]
            runnable.extend(steps)
    return runnable


def tool_argv(command: str) -> list[str] | None:
    """The arguments of a command that runs this tool, else None."""
    for program in PROGRAMS:
        if command == program or command.startswith(program + " "):
            argv = shlex.split(command[len(program):].split(" | ")[0].split(" > ")[0])
            return argv
    return None


def test_the_readme_is_short_and_its_sandbox_walk_through_is_marked():
    text = README.read_text()
    assert len(text.splitlines()) <= 300, "the README is for users; reference material belongs in docs/"
    runnable = sandbox_commands(text)
    assert runnable, f"no block marked {MARKER}"
    assert all(tool_argv(c) is not None for c in runnable), "a marked block runs something other than the tool"
    assert all("--sandbox" in tool_argv(c) for c in runnable), "a marked command would reach a real account"
    # The first command installs and runs the main job; what the walk-through creates, it removes.
    assert "teardown" in tool_argv(runnable[-1])
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "sandbox" in extras["optional-dependencies"] and "amazonei-setup" in extras["scripts"]


def test_the_readme_test_command_is_the_one_ci_runs():
    # .ci/run's first run is the README's command (the newest versions); its floor run comes after it.
    ci = next(line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
              if line.startswith("python3 -m venv .venv &&"))
    blocks = [commands(block) for _before, lang, block in fenced_blocks(README.read_text()) if lang == "bash"]
    assert [ci] in blocks, f"the README's test command is not .ci/run's: {ci}"


def test_every_command_of_the_tool_in_the_docs_is_accepted_by_the_parser(tmp_path, monkeypatch):
    # The examples name the user's own files (--workdir ./project, --setup-script prepare.sh), which the parser
    # checks exist: a directory where they do is where the user would run them.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "project").mkdir()
    (tmp_path / "prepare.sh").write_text("true\n")
    seen = 0
    for doc in (README, *sorted((ROOT / "docs").glob("*.md"))):
        for _before, lang, block in fenced_blocks(doc.read_text()):
            if lang != "bash":
                continue
            for command in commands(block):
                for step in command.split(" && "):
                    argv = tool_argv(step.strip())
                    if argv is None:
                        continue
                    seen += 1
                    try:
                        cli.parse(argv)
                    except SystemExit as exit_:  # --help / --version only
                        assert exit_.code in (0, None), f"{doc.name}: {step}"
                    except Exception as err:  # noqa: BLE001 - the message names the bad flag
                        pytest.fail(f"{doc.name}: `{step}` is refused: {err}")
    assert seen >= 10


@pytest.mark.slow
def test_the_readme_sandbox_commands_run_as_written_in_a_fresh_home(tmp_path):
    home = tmp_path / "home"  # under tmp_path: conftest stops the sandbox server this test starts
    home.mkdir(exist_ok=True)
    checkout = tmp_path / "checkout"
    console_script(checkout / ".venv" / "bin")
    bare = console_script(tmp_path / "pipx-bin")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "AMAZONEI_SETUP_")) and k not in ("CI", "FORCE_COLOR", "TTY_COMPATIBLE")}
    env.update(HOME=str(home), NO_COLOR="1", AWS_EC2_METADATA_DISABLED="true",
               PATH=f"{bare.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env["AMAZONEI_SETUP_SANDBOX_IDLE_S"] = "300"  # a backstop; the fixture stops the server at the end

    def run(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", command], cwd=checkout, env=env, capture_output=True, text=True,
                              timeout=180, stdin=subprocess.DEVNULL)

    for command in sandbox_commands(README.read_text()):
        done = run(command)
        assert done.returncode == 0, f"`{command}` exited {done.returncode}:\n{done.stderr}"
        assert "Traceback" not in done.stderr, f"`{command}`:\n{done.stderr}"

    assert (home / ".amazonei-setup" / "sandbox").is_dir(), "the README's paths are under ~/.amazonei-setup"
    left = json.loads(run(".venv/bin/amazonei-setup list --sandbox --region us-west-2 --output json").stdout)
    assert left["result"]["deployments"] == [], "the walk-through leaves something behind"


def test_the_code_says_what_and_why_not_which_issue_asked():
    """History belongs in git: a comment or docstring that cites an issue number tells a reader nothing."""
    cited = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path in sorted((ROOT / "amazonei_setup").rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"\bissues? #?\d", line, re.IGNORECASE)]
    assert cited == []
