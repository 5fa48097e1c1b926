"""--workdir's paths that the machine tests do not take: rsync sending only what changed (and a tar stream when this
machine has no rsync), the question before copying more than SIZE_LIMIT, and a Ctrl-C while the copy runs.

Processes against the sandbox's SSH servers with the real OpenSSH client (and rsync, which .ci/run installs), one
deployment for the module (a setup costs ~2 s). An instance's ~/workdir is a directory on this machine
(`<sandbox>/homes/<instance id>/workdir`), so the tests read what arrived there directly.

The copy is held deterministically: the sandbox server runs the instance's side of a copy (`rsync --server`, `tar -x`)
through stand-ins first on its PATH, which pass through to the real programs unless `hold` exists; then they say
they started (a file) and block on a FIFO the test releases.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from amazonei_setup.cli.commands import workdir
from amazonei_setup.sandbox import server as sandbox_server
from tests.conftest import default_signal_handlers
from tests.test_e2e import REGION, ROOT, Cli, user_env

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("ssh") is None, reason="the OpenSSH client is not installed")]
needs_rsync = pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed (.ci/run installs it)")
SANDBOX = ("--sandbox", "--region", REGION)


class Box:
    """One sandbox deployment `box` and the switches of its held copies."""

    def __init__(self, home: Path):
        self.home = home
        self.bin = home / "fake-bin"
        self.hold = home / "hold-the-copy"
        self.started = home / "copy-started"
        self.gate = home / "gate"
        self.env = user_env(home, PATH=f"{self.bin}:{os.environ['PATH']}")
        self.cli = Cli(self.env)

    def workdir(self) -> Path:
        homes = list((self.home / ".amazonei-setup" / "sandbox" / "homes").iterdir())
        assert len(homes) == 1
        return homes[0] / "workdir"

    def release(self) -> None:
        """Let a held instance side go on (it then finds its input closed and ends)."""
        self.hold.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            fd = os.open(self.gate, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO: nobody is waiting
            os.write(fd, b"go\n")
            os.close(fd)


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    home = tmp_path_factory.mktemp("workdir") / "user"
    home.mkdir()
    made = Box(home)
    made.bin.mkdir()
    os.mkfifo(made.gate)
    for name, when in (("rsync", '[ "$1" = --server ] && '), ("tar", "")):
        real = shutil.which(name)
        if real is None:
            continue
        stand_in = made.bin / name
        stand_in.write_text(f"#!/bin/sh\nif {when}[ -e {made.hold} ]; then echo {name} >> {made.started}; "
                            f"read _ < {made.gate}; exit 1; fi\nexec {real} \"$@\"\n")
        stand_in.chmod(0o755)
    made.cli("setup", *SANDBOX, "--instance-type", "m5.xlarge", "--name", "box", "--yes")
    yield made
    made.release()
    sandbox_server.stop(home / ".amazonei-setup" / "sandbox")


@pytest.fixture
def fresh(box):
    """The instance's ~/workdir empty and its setup script not run at the start of each test."""
    shutil.rmtree(box.workdir(), ignore_errors=True)
    (box.workdir().parent / workdir.MARKER).unlink(missing_ok=True)
    yield box
    box.release()


def project(where: Path) -> Path:
    work = where / "project"
    work.mkdir(parents=True)
    (work / "train.py").write_text("print(1)\n")
    (work / "weights.bin").write_bytes(os.urandom(1_000_000))
    return work


# ---- 1. rsync sends what changed; without rsync here, a tar stream --------------------------------------------

@needs_rsync
def test_a_second_copy_with_rsync_sends_only_the_changed_file(fresh, tmp_path):
    work = project(tmp_path)
    first = fresh.cli.json("setup", *SANDBOX, "--name", "box", "--workdir", str(work), "--yes")["workdir"]
    assert first["method"] == "rsync" and first["files"] == 2 and first["changed"] == 2
    assert first["sent"] > 1_000_000  # the whole of weights.bin travelled once
    there = fresh.workdir()
    assert (there / "weights.bin").read_bytes() == (work / "weights.bin").read_bytes()
    kept = (there / "weights.bin").stat().st_ino

    (work / "train.py").write_text("print('changed')\n")
    again = fresh.cli("setup", *SANDBOX, "--name", "box", "--workdir", str(work), "--yes", "--output", "json")
    copied = json.loads(again.stdout)["result"]["workdir"]
    assert copied["method"] == "rsync" and copied["changed"] == 1, copied
    assert copied["sent"] < 20_000, "only train.py and rsync's file list travel, not weights.bin again"
    assert re.search(r"Copied \S+ to box:~/workdir \(1 of 2 files changed, \d+ B sent in [\d.]+ s, rsync\)",
                     again.stderr), again.stderr
    assert (there / "train.py").read_text() == "print('changed')\n"
    assert (there / "weights.bin").stat().st_ino == kept, "the unchanged file was left as it was"


def only_ssh(where: Path) -> Path:
    """A PATH for this machine with ssh and without rsync (both live in /usr/bin)."""
    directory = where / "only-ssh"
    directory.mkdir()
    (directory / "ssh").symlink_to(shutil.which("ssh"))
    return directory


def test_without_rsync_here_the_copy_is_a_tar_stream_and_says_so(fresh, tmp_path):
    work = project(tmp_path)
    plain = Cli({**fresh.env, "PATH": str(only_ssh(tmp_path))})
    done = plain("exec", *SANDBOX, "--name", "box", "--workdir", str(work), "--", "cat", "train.py")
    assert done.stdout == "print(1)\n"
    assert re.search(r"Copied \S+ to box:~/workdir \(2 files, 1\.0 MB sent in [\d.]+ s, tar\)", done.stderr), \
        done.stderr
    assert (fresh.workdir() / "weights.bin").read_bytes() == (work / "weights.bin").read_bytes()


# ---- 2. over SIZE_LIMIT: asked first ---------------------------------------------------------------------------

def big_project(where: Path) -> Path:
    """A work directory just over the limit, in a sparse file: no disk, no time (and never answered yes)."""
    work = where / "big"
    work.mkdir()
    (work / "train.py").write_text("print(1)\n")
    with open(work / "data.bin", "wb") as f:
        os.truncate(f.fileno(), workdir.SIZE_LIMIT + 1_000_000)
    return work


def test_over_the_size_limit_a_terminal_is_asked_and_no_copies_nothing(fresh, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    work = big_project(tmp_path)
    env = {**fresh.env, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"}
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(sys.executable, ["amazonei_setup.py", "exec", *SANDBOX, "--name", "box", "--workdir",
                                           str(work), "--", "true"], cwd=str(ROOT), env=env, dimensions=(24, 200),
                          timeout=60, encoding="utf-8", preexec_fn=default_signal_handlers)
    try:
        child.expect(r"holds 201\.0 MB \(over 200\.0 MB\)")
        child.expect(r"Copy it\?")
        child.send("n")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 2, child.before
    said = " ".join(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", child.before).split())
    assert "was not copied (you answered no): list what to skip in its .gitignore" in said, said
    assert not (fresh.workdir() / "data.bin").exists() and not (fresh.workdir() / "train.py").exists()


def test_over_the_size_limit_without_a_terminal_or_yes_is_one_sentence_and_copies_nothing(fresh, tmp_path):
    work = big_project(tmp_path)
    refused = fresh.cli("exec", *SANDBOX, "--name", "box", "--workdir", str(work), "--", "true", expect=2)
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: --workdir {work} holds 201.0 MB, over the 200.0 MB a copy takes without asking: pass --yes to "
        "copy it anyway, or list what to skip in its .gitignore.")
    assert "Traceback" not in refused.stderr and "Copying" not in refused.stderr
    assert not fresh.workdir().exists()


def test_setup_asks_about_a_big_workdir_before_it_creates_anything(cli, account, tmp_path):
    from tests.conftest import snapshot
    from tests.test_wizard import ENTER, SSH_CIDR, interactive, keyboard, seen

    work = big_project(tmp_path)
    before = snapshot(account)
    with keyboard(ENTER * 3 + "n") as (asker, screen):  # OS, subnet, idle auto-stop; then no to the copy
        run = cli(*interactive("--name", "big", "--accelerator-type", "eia2.large", "--ssh-cidr", SSH_CIDR,
                               "--workdir", str(work)), asker=asker, tty=True)
    assert "Copy it?" in seen(screen) and "Create these resources?" not in seen(screen)
    assert run.code == 2 and "was not copied (you answered no)" in run.stderr
    assert snapshot(account) == before


# ---- 3. Ctrl-C during the copy -------------------------------------------------------------------------------

def held(box: Box, *argv: str, env: dict | None = None) -> subprocess.Popen:
    """The CLI with the instance's side of its copy held: returns once that side has started."""
    box.started.unlink(missing_ok=True)
    box.hold.touch()
    child = subprocess.Popen([sys.executable, "amazonei_setup.py", *argv], cwd=ROOT, env=env or box.env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=default_signal_handlers)
    deadline = time.monotonic() + 60
    while not box.started.exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the copy never started"
        time.sleep(0.02)
    return child


def stopped(child: subprocess.Popen) -> tuple[int, str, str]:
    child.send_signal(signal.SIGINT)
    try:
        out, err = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        pytest.fail(f"still running 30 s after Ctrl-C:\n{err}")
    return child.returncode, out, err


def test_ctrl_c_during_setups_copy_stops_it_and_the_script_and_says_how_to_copy_again(fresh, tmp_path):
    work = project(tmp_path)
    script = tmp_path / "prepare.sh"
    script.write_text("touch ran-the-script\n")
    child = held(fresh, "setup", *SANDBOX, "--name", "box", "--workdir", str(work), "--setup-script", str(script),
                 "--yes")
    code, out, err = stopped(child)
    assert fresh.started.read_text().split() == ["rsync" if shutil.which("rsync") else "tar"]
    fresh.release()
    assert code == 130, err
    said = " ".join(err.split())
    assert "Traceback" not in err and "Copied" not in err
    assert "Interrupted while copying" in said and "the setup script did not run" in said, said
    assert not (fresh.workdir() / "ran-the-script").exists()
    assert "ssh -F" in out or "ssh -i" in out, "the result (the way in) is still printed: the deployment runs"
    again = re.search(r"copy it again with `([^`]+)`", said).group(1)
    assert f"exec --sandbox --region {REGION} --name box --workdir {work} -- true" in again
    resumed = subprocess.run(again.replace("python", shlex.quote(sys.executable), 1), shell=True, cwd=ROOT,
                             env=fresh.env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert (fresh.workdir() / "weights.bin").read_bytes() == (work / "weights.bin").read_bytes()


@pytest.mark.parametrize("method", ["rsync", "tar"])
def test_ctrl_c_during_execs_copy_stops_it_runs_nothing_and_says_so(fresh, tmp_path, method):
    if method == "rsync" and shutil.which("rsync") is None:
        pytest.skip("rsync is not installed (.ci/run installs it)")
    work = project(tmp_path)
    child = held(fresh, "exec", *SANDBOX, "--name", "box", "--workdir", str(work), "--", "touch", "ran",
                 env=fresh.env if method == "rsync" else {**fresh.env, "PATH": str(only_ssh(tmp_path))})
    code, out, err = stopped(child)
    assert fresh.started.read_text().split() == [method]
    fresh.release()
    assert code == 130, err
    said = " ".join(err.split())
    assert "Traceback" not in err and out == ""
    assert "Interrupted: the copy of" in said and "the command did not run" in said, said
    assert not (fresh.workdir() / "ran").exists()


def test_ctrl_c_during_setups_script_stops_waiting_for_it_and_says_how_to_run_it_again(fresh, tmp_path):
    script = tmp_path / "prepare.sh"
    script.write_text(f"echo script >> {fresh.started}\nread _ < {fresh.gate}\n")
    child = held(fresh, "setup", *SANDBOX, "--name", "box", "--setup-script", str(script), "--yes")
    code, out, err = stopped(child)
    assert not (fresh.workdir().parent / workdir.MARKER).exists()  # still held there: the CLI did not wait for it
    fresh.release()
    assert code == 130, err
    said = " ".join(err.split())
    assert "Traceback" not in err and "Interrupted while the setup script ran on box" in said, said
    assert f"run it again with `python amazonei_setup.py exec --sandbox --region {REGION} --name box -- bash -s < " \
           f"{script}`" in said
    assert "ssh -F" in out or "ssh -i" in out, "the result (the way in) is still printed"
