"""Where each command's output goes (issue 15): stdout is the result, stderr is the conversation.

In text mode the result (list table, cost table, the ready summary with the connect commands, what teardown
removed, export's file and next command) is on stdout; progress, prompts' panels, warnings and errors on
stderr. With `--output json` the one JSON document is all of stdout. A piped result is plain: one row per
line, no box, no colour, no padding. Sentences on stderr never break a path inside a word.
"""
from __future__ import annotations

import io
import json
import re
import shlex

import pytest
from rich.text import Text

from amazonei_setup.cli.environment import Environment
from amazonei_setup.cli.main import main
from amazonei_setup.cli.ui import Ui, word_wrap
from amazonei_setup.local import records
from tests.conftest import REGION, CliResult, inject, setup_args

BOX = set("│╭╮╰╯─")


class TerminalLike(io.StringIO):
    def isatty(self) -> bool:
        return True


def one_document(stdout: str) -> dict:
    document = json.loads(stdout)  # raises on anything before or after the one document
    assert document["version"] == 1
    return document


# ---- setup -------------------------------------------------------------------------------------

def test_setup_puts_the_ready_summary_on_stdout_and_the_plan_and_progress_on_stderr(cli, account):
    made = cli(*setup_args("demo"))
    assert made.code == 0, made.stderr
    saved = records.load(REGION, "demo")
    lines = made.stdout.splitlines()
    # The connect commands come first, as soon as the instance runs (issue 18); the ready summary repeats them.
    assert lines[:3] == [f"Instance {saved['instance_id']} is running: connect with", saved["ssh_command"],
                         saved["port_forward_command"]]
    summary = lines[lines.index("Ready: demo"):]
    assert saved["ssh_command"] in summary and saved["port_forward_command"] in summary
    assert f"python amazonei_setup.py teardown --region {REGION} --name demo" in lines
    assert "Setup plan" in made.stderr and "Launched instance" in made.stderr
    assert "Setup plan" not in made.stdout and saved["ssh_command"] not in made.stderr
    assert not BOX & set(made.stdout), "a pipe gets the summary without box borders"


def test_setup_in_json_mode_prints_one_document_and_no_summary(cli, account):
    made = cli(*setup_args("demo", "--output", "json"))
    assert made.code == 0, made.stderr
    result = one_document(made.stdout)["result"]
    assert "Launched instance" in made.stderr  # progress stays on stderr
    assert "Ready: demo" not in made.stderr and result["ssh_command"] not in made.stderr


def test_the_ready_summary_is_boxed_on_a_terminal(account, monkeypatch):
    """A terminal keeps the panel; only a pipe drops the borders."""
    monkeypatch.setenv("NO_COLOR", "1")
    out, err = TerminalLike(), io.StringIO()
    env = Environment(stdin_isatty=False, stdout=out, stderr=err, public_ip_lookup=lambda: "198.51.100.4",
                      sleep=lambda seconds: None, width=120, aws=account)
    assert main(setup_args("demo"), env) == 0, err.getvalue()
    screen = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())  # bold stays with NO_COLOR
    assert screen.splitlines()[0].startswith("Instance i-")  # the early connect commands (issue 18), unboxed
    assert "╭─ Ready: demo" in screen
    assert records.load(REGION, "demo")["ssh_command"] in screen.splitlines()  # outside the box, whole


# ---- dry run -------------------------------------------------------------------------------------

def test_dry_run_json_carries_the_problems_and_text_lists_them(cli, account):
    inject(account.ec2, "CreateSecurityGroup", "UnauthorizedOperation", "You are not authorized.")
    refused = cli(*setup_args("demo", "--dry-run", "--output", "json"))
    assert refused.code == 1
    assert one_document(refused.stdout)["result"]["permission_problems"] == [
        "You may not call ec2:CreateSecurityGroup: ask an administrator for that permission."]
    shown = cli(*setup_args("demo", "--dry-run"))
    assert shown.stdout.splitlines() == [
        "EC2 permission check (DryRun): 1 problem:",
        "- You may not call ec2:CreateSecurityGroup: ask an administrator for that permission.",
        "vCPU quota L-1216C47A: 512 vCPUs, 0 in use, 4 needed: enough",  # issue 17: the quota check's verdict
        "Dry run: nothing was created."]


# ---- list ----------------------------------------------------------------------------------------

def test_list_prints_a_table_that_greps_and_nothing_on_stderr(account):
    """Piped and no width given (as in a real pipe): one whole row per line, however long."""
    out, err = io.StringIO(), io.StringIO()

    def run(*argv: str) -> CliResult:
        out.seek(0), out.truncate(), err.seek(0), err.truncate()
        env = Environment(stdin_isatty=False, stdout=out, stderr=err, public_ip_lookup=lambda: "198.51.100.4",
                          sleep=lambda seconds: None, aws=account)
        return CliResult(main(list(argv), env), out.getvalue(), err.getvalue())

    for name in ("alpha", "a-rather-long-deployment-name"):
        assert run(*setup_args(name)).code == 0
    listed = run("list", "--region", REGION)
    assert listed.code == 0 and listed.stderr == ""
    running = [line for line in listed.stdout.splitlines() if "running" in line]  # `list | grep running`
    assert sorted(line.split()[0] for line in running) == ["a-rather-long-deployment-name", "alpha"]
    for line in running:
        assert line.split()[3:6] == ["m5.xlarge", "+", "eia2.medium"] and ".compute.amazonaws.com" in line
        assert line == line.rstrip() and len(line) > 80, "whole rows, not cut or folded at 80 columns"
    assert not BOX & set(listed.stdout) and "\x1b" not in listed.stdout


def test_list_json_is_the_only_output(cli, account):
    assert cli(*setup_args("demo")).code == 0
    listed = cli("list", "--region", REGION, "--output", "json")
    assert [d["name"] for d in one_document(listed.stdout)["result"]["deployments"]] == ["demo"]
    assert listed.stderr == ""


# ---- teardown ------------------------------------------------------------------------------------

def test_teardown_lists_what_it_removed_on_stdout(cli, account):
    assert cli(*setup_args("demo")).code == 0
    saved = records.load(REGION, "demo")
    gone = cli("teardown", "--region", REGION, "--name", "demo", "--yes")
    assert gone.code == 0, gone.stderr
    rows = [line.split()[:3] for line in gone.stdout.splitlines()[1:-1]]
    assert sorted(rows) == sorted([["deleted", r["kind"], r["id"]] for r in saved["resources"]]
                                  + [["deleted", "private-key-file", saved["key_path"]]])
    assert gone.stdout.splitlines()[-1] == "Deployment demo removed."
    assert "Teardown of demo" in gone.stderr and f"Terminated instance {saved['instance_id']}" in gone.stderr
    assert "Terminated" not in gone.stdout


# ---- export --------------------------------------------------------------------------------------

def test_export_with_out_prints_the_file_and_the_next_command(cli, account, tmp_path):
    out = tmp_path / "ei.yaml"
    written = cli("export", *setup_args("cfn"), "--out", str(out))
    assert written.code == 0, written.stderr
    lines = written.stdout.splitlines()
    assert lines[0].startswith(f"Wrote {out}: ") and lines[-1].startswith("aws cloudformation deploy ")
    assert "aws cloudformation deploy" not in written.stderr


def test_a_sandbox_export_points_to_export_deploy_in_the_sandbox(tmp_path, monkeypatch):
    """The template's defaults are the sandbox's own ids: the printed next step deploys it there, and works."""
    monkeypatch.setenv("AMAZONEI_SETUP_HOME", str(tmp_path / "app"))

    def run(argv: list[str]) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        env = Environment(stdin_isatty=False, stdout=out, stderr=err, sleep=lambda seconds: None, width=1000)
        return CliResult(main(argv, env), out.getvalue(), err.getvalue())

    template = tmp_path / "sbx.yaml"
    written = run(["export", "--sandbox", "--region", REGION, "--instance-type", "m5.xlarge", "--name", "sbx",
                   "--yes", "--out", str(template)])
    assert written.code == 0, written.stderr
    command = written.stdout.splitlines()[-1]
    assert command == (f"python amazonei_setup.py export --sandbox --region {REGION} --instance-type m5.xlarge "
                       f"--name sbx --out {template} --yes --deploy")
    assert "aws cloudformation" not in written.stdout + written.stderr
    deployed = run(shlex.split(command)[2:])  # as copied, without the launcher
    assert deployed.code == 0, deployed.stderr
    assert records.load(REGION, "sbx", sandbox=True)["stack_name"] == "amazonei-setup-sbx"
    assert run(["teardown", "--sandbox", "--region", REGION, "--name", "sbx", "--yes"]).code == 0


# ---- sentences never break a path ----------------------------------------------------------------

def test_an_error_prints_a_long_path_whole(account, tmp_path):
    missing = tmp_path / ("a-directory-with-a-long-name-" * 3) / "measured.csv"
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin_isatty=False, stdout=out, stderr=err, width=40, aws=account)
    assert main(["cost", "--latencies", str(missing)], env) == 2
    assert f"{missing}:" in err.getvalue().splitlines(), err.getvalue()  # whole, on a line of its own
    assert all(len(line) <= 40 for line in err.getvalue().splitlines() if str(missing) not in line)
    assert out.getvalue() == ""


@pytest.mark.parametrize("width", [20, 40, 80])
def test_word_wrap_breaks_at_spaces_only(width):
    words = ["error:", "cannot", "read", "/tmp/some/really/long/path/that/is/longer/than/the/line/measured.csv",
             "(No", "such", "file):", "check", "the", "path."]
    lines = [line.plain for line in word_wrap(Text(" ".join(words)), width)]
    assert " ".join(lines).split() == words  # nothing lost, no word split
    assert all(len(line) <= width for line in lines if " " in line), lines


def test_warnings_wrap_without_folding(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    err = io.StringIO()
    ui = Ui(stderr=err, stdout=io.StringIO(), width=30)
    path = "/home/someone/.amazonei-setup/deployments/us-west-2--demo.json"
    ui.warn(f"Could not write {path}: check the directory.")
    assert err.getvalue().splitlines() == ["! Could not write", f"{path}:", "check the directory."]


def test_progress_prints_a_long_key_path_whole(account, isolated_env):
    key_dir = isolated_env / ("keys-in-a-directory-with-a-long-name-" * 2)
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdin_isatty=False, stdout=out, stderr=err, public_ip_lookup=lambda: "198.51.100.4",
                      sleep=lambda seconds: None, width=60, aws=account)
    assert main([*setup_args("demo"), "--key-dir", str(key_dir)], env) == 0, err.getvalue()
    pem = str(key_dir / "amazonei-setup-demo.pem")
    assert len(pem) > 60 and pem in err.getvalue().splitlines(), err.getvalue()


def test_teardown_says_what_it_left_for_a_sibling(cli, account):
    assert cli(*setup_args("a")).code == 0
    assert cli(*setup_args("b", "--new-key")).code == 0
    endpoint = next(r["id"] for r in records.load(REGION, "a")["resources"] if r["kind"] == "vpc-endpoint")
    gone = cli("teardown", "--region", REGION, "--name", "a", "--yes")
    assert gone.code == 0, gone.stderr
    [line] = [line for line in gone.stdout.splitlines() if endpoint in line]
    assert line.split()[:3] == ["detached", "vpc-endpoint", endpoint] and "still used by 1 other" in line



# ---- what a redirected stderr, a narrow terminal and a terminal teardown look like -------------------------

def test_a_redirected_stderr_keeps_each_sentence_on_one_line(account, tmp_path, monkeypatch):
    """`2> log` or a CI log is no screen: a sentence cut at 80 columns there splits an address or a path mid-line
    for whoever greps the log. Only a terminal (or a width the caller sets) wraps."""
    monkeypatch.delenv("COLUMNS", raising=False)
    not_a_dir = tmp_path / ("a-directory-that-is-really-a-file-" * 2)
    not_a_dir.write_text("")
    out, err = io.StringIO(), io.StringIO()  # no width: what a real run with stderr in a file gets
    env = Environment(stdin_isatty=False, stdout=out, stderr=err, public_ip_lookup=lambda: "198.51.100.4",
                      sleep=lambda seconds: None, aws=account)
    assert main([*setup_args("demo"), "--key-dir", str(not_a_dir)], env) == 2
    [error] = [line for line in err.getvalue().splitlines() if line.startswith("error:")]
    assert len(error) > 80 and str(not_a_dir) in error and "--key-dir" in error, err.getvalue()
    assert err.getvalue().splitlines()[-1] == error, "the sentence goes on past the line it started on"


def test_an_unknown_command_in_json_mode_names_no_command(cli):
    refused = cli("lst", "--output", "json")
    assert refused.code == 2
    document = one_document(refused.stdout)
    assert (document["command"], document["status"], document["error"]["code"]) == (None, "error", "usage")
    assert "list" in document["error"]["message"]  # did you mean
    assert one_document(cli("list", "--region", "us-west-9", "--output", "json").stdout)["command"] == "list"


@pytest.mark.parametrize("width", [60, 50])
def test_list_on_a_narrow_terminal_keeps_every_name_and_id_whole(cli, account, width):
    names = ["a-rather-long-deployment-name", "alpha"]
    for name in names:
        assert cli(*setup_args(name)).code == 0
    listed = cli("list", "--region", REGION, width=width)
    assert listed.code == 0, listed.stderr
    words = listed.stdout.split()
    for name in names:
        saved = records.load(REGION, name)
        assert name in words and saved["instance_id"] in words, listed.stdout  # whole, never folded
    assert all(len(line) <= width for line in listed.stdout.splitlines()), listed.stdout


def test_teardown_on_a_terminal_says_each_deletion_once_after_the_plan(account, monkeypatch):
    """On a terminal the progress lines already said what went: the result (stdout, the same screen) sums it up
    instead of a third list. Piped, the result keeps the list (test_teardown_lists_what_it_removed_on_stdout)."""
    monkeypatch.setenv("NO_COLOR", "1")

    def run(*argv: str, out=None, err=None) -> CliResult:
        out, err = out or TerminalLike(), err or TerminalLike()
        env = Environment(stdin_isatty=False, stdout=out, stderr=err, public_ip_lookup=lambda: "198.51.100.4",
                          sleep=lambda seconds: None, width=120, aws=account)
        return CliResult(main(list(argv), env), out.getvalue(), err.getvalue())

    assert run(*setup_args("demo")).code == 0
    saved = records.load(REGION, "demo")
    gone = run("teardown", "--region", REGION, "--name", "demo", "--yes")
    assert gone.code == 0, gone.stderr
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", gone.stderr + gone.stdout)
    # What stays on the screen: not a spinner's frames, which overwrite each other and are erased when it stops.
    last = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    screen = "\n".join(line for line in last if not re.match("[\u2800-\u28ff]", line))
    unique = [r["id"] for r in saved["resources"] if r["kind"] in ("instance", "vpc-endpoint", "security-group")]
    assert len(unique) == 3
    for ident in unique:
        assert screen.count(ident) == 2, (ident, screen)  # the plan, then its progress line
    assert not [r for r in saved["resources"] if r["id"] in gone.stdout], gone.stdout
    assert "Deployment demo removed" in gone.stdout
    assert f"Terminated instance {saved['instance_id']}" in gone.stderr
