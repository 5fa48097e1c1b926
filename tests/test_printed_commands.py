"""Every printed command runs as printed: the program as the user started it, and every value shell-quoted.

(C) A console script started by its path (`.venv/bin/amazonei-setup`, the README's install) is printed by that path
    unless the bare name on PATH is the same file; --help, usage errors and --version say the same name.
(B) A --key-dir with a space and `$(touch PWNED)` in it: each printed command, pasted into bash, is the intended argv
    and runs nothing; the tool's ssh config gives OpenSSH the same key file."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from amazonei_setup import __version__
from amazonei_setup.local import sshconfig
from tests.conftest import REGION, console_script, setup_args

ROOT = Path(__file__).resolve().parents[1]
HAS_SSH = shutil.which("ssh") is not None


# ---- (C) the program's name ------------------------------------------------------------------------------------


def user_env(home: Path, path: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in ("CI", "FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS")}
    env.update(HOME=str(home), AMAZONEI_SETUP_HOME=str(home / ".amazonei-setup"), NO_COLOR="1",
               AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=str(home / "aws-config"),
               AWS_SHARED_CREDENTIALS_FILE=str(home / "aws-credentials"), COLUMNS="2000")
    if path is not None:
        env["PATH"] = path
    return env


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_a_console_script_started_by_its_path_is_printed_by_that_path(tmp_path):
    home = tmp_path / "user"
    home.mkdir()
    script = console_script(tmp_path / "my venv" / "bin")  # not on PATH, and a space in it
    program = shlex.quote(str(script))
    env = user_env(home)

    helped = run([str(script), "--help"], env, tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith(f"usage: {program} "), helped.stdout[:200]
    assert "amazonei_setup.py" not in helped.stdout  # the examples too: one name throughout

    refused = run([str(script), "idle-stop"], env, tmp_path)  # argparse's own error: --name is required
    assert refused.returncode == 2
    assert f"See `{program} idle-stop --help`." in refused.stderr, refused.stderr
    contradicted = run([str(script), "setup", "--count", "2", "--min-count", "3"], env, tmp_path)
    assert f"See `{program} setup --help`." in contradicted.stderr, contradicted.stderr
    version = run([str(script), "--version"], env, tmp_path)
    assert version.stdout.strip() == f"{program} {__version__}"

    made = run([str(script), "--sandbox", "--region", REGION, "--instance-type", "m5.xlarge", "--yes",
                "--name", "scripted"], env, tmp_path)
    assert made.returncode == 0, made.stderr
    teardown = f"{program} teardown --sandbox --region {REGION} --name scripted"
    assert teardown in made.stdout.splitlines(), made.stdout
    pasted = subprocess.run(["bash", "-c", teardown + " --yes"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert pasted.returncode == 0, pasted.stderr  # the printed command, pasted into a shell, runs
    assert "command not found" not in pasted.stderr


@pytest.mark.slow
def test_the_bare_name_is_printed_when_path_finds_the_same_script(tmp_path):
    home = tmp_path / "user"
    home.mkdir()
    script = console_script(tmp_path / "bin")
    env = user_env(home, path=f"{script.parent}{os.pathsep}{os.environ.get('PATH', '')}")

    helped = run([str(script), "--help"], env, tmp_path)
    assert helped.stdout.startswith("usage: amazonei-setup "), helped.stdout[:200]
    refused = run([str(script), "idle-stop"], env, tmp_path)
    assert "See `amazonei-setup idle-stop --help`." in refused.stderr, refused.stderr


def test_program_name_asks_path_which_file_the_bare_name_is(tmp_path, monkeypatch):
    from amazonei_setup.cli.commands.printed import program_name

    script = console_script(tmp_path / "bin")
    other = console_script(tmp_path / "elsewhere")
    monkeypatch.setenv("PATH", str(other.parent))
    assert program_name(str(script)) == str(script)  # PATH's amazonei-setup is another file
    monkeypatch.setenv("PATH", str(script.parent))
    assert program_name(str(script)) == "amazonei-setup"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert program_name("bin/amazonei-setup") == "bin/amazonei-setup"  # relative, as started: it runs from here


# ---- (B) every interpolated value quoted -----------------------------------------------------------------------

HOSTILE = "my keys/$(touch PWNED)"


def argv_in_bash(line: str, cwd: Path) -> list[str]:
    """The words bash makes of a pasted command line (nothing is run but printf)."""
    done = subprocess.run(["bash", "-c", f"show() {{ printf '%s\\0' \"$@\"; }}; show {line}"], cwd=cwd,
                          capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.split("\0")[:-1]


def test_printed_commands_quote_a_key_dir_with_a_space_and_a_command_substitution(cli, account, isolated_env,
                                                                                   tmp_path, monkeypatch):
    key_dir = isolated_env / HOSTILE
    key_dir.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    made = cli(*setup_args("quoted", "--key-dir", str(key_dir)))
    assert made.code == 0, made.stderr
    key = str(key_dir / "amazonei-setup-quoted.pem")
    assert Path(key).exists()
    lines = made.stdout.splitlines()
    ssh = next(line for line in lines if line.startswith("ssh -i "))
    forward = next(line for line in lines if line.startswith("ssh -i ") and " -L " in line)
    host = ssh.split("@", 1)[1]
    assert argv_in_bash(ssh, tmp_path) == ["ssh", "-i", key, f"ec2-user@{host}"]
    assert argv_in_bash(forward, tmp_path) == ["ssh", "-i", key, "-L", "8888:localhost:8888", f"ec2-user@{host}"]

    connect = cli("connect", "--name", "quoted", "--print")
    assert argv_in_bash(connect.stdout.strip(), tmp_path) == ["ssh", "-i", key, f"ec2-user@{host}"]
    status = cli("status", "--name", "quoted")
    shown = [line for line in status.stdout.splitlines() if line.startswith("ssh -i ")]
    assert len(shown) == 2 and all(argv_in_bash(line, tmp_path)[:3] == ["ssh", "-i", key] for line in shown)
    assert not list(tmp_path.rglob("PWNED")) and not list(isolated_env.rglob("PWNED")), "a pasted line ran a command"
    if HAS_SSH:
        done = subprocess.run(["ssh", "-F", str(sshconfig.config_file()), "-G", "quoted"], capture_output=True,
                              text=True, check=True, timeout=30)
        seen = dict(line.partition(" ")[::2] for line in done.stdout.splitlines())
        assert seen["identityfile"] == key


def test_the_ssh_by_name_command_quotes_the_tools_config_path(cli, account, isolated_env, tmp_path, monkeypatch):
    """A tool home with a space (AMAZONEI_SETUP_HOME): `ssh -F <file> NAME` is printed while ~/.ssh/config does not
    include the file yet (sandbox: never)."""
    home = isolated_env / "tool home $(touch PWNED)"
    monkeypatch.setenv("AMAZONEI_SETUP_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    made = cli(*setup_args("byname", "--output", "json"))
    assert made.code == 0, made.stderr
    (isolated_env / ".ssh" / "config").write_text("")  # the user took our Include line out again
    status = cli("status", "--name", "byname")
    shown = [line for line in status.stdout.splitlines() if line.startswith("ssh -F ")]
    assert shown, status.stdout
    for line in shown:
        words = argv_in_bash(line, tmp_path)
        assert words[-1] == "byname" and (len(words) == 2 or words[2] == str(sshconfig.config_file()))
    assert not list(tmp_path.rglob("PWNED"))


def test_ssh_config_values_survive_quotes_backslashes_and_percent(isolated_env):
    """What OpenSSH itself reads back (ssh -G) from our file, for a key path with `"`, `\\`, `'` and a space;
    `%` is doubled since ssh expands IdentityFile's tokens when it uses the file."""
    weird = str(isolated_env / 'a "b" c\\d\'e' / "k.pem")
    entry = sshconfig.HostEntry(("odd",), "ec2-1-2-3-4.compute.amazonaws.com", "ec2-user", weird, "i-0123")
    block = sshconfig.render_block("odd", REGION, [entry])
    percent = sshconfig.render_block("odd", REGION, [sshconfig.HostEntry(("odd",), "h", "u", "/k%h/x.pem", "i-1")])
    assert "IdentityFile /k%%h/x.pem" in percent
    if HAS_SSH:
        config = isolated_env / "cfg"
        config.write_text(block)
        done = subprocess.run(["ssh", "-F", str(config), "-G", "odd"], capture_output=True, text=True, check=True,
                              timeout=30)
        seen = dict(line.partition(" ")[::2] for line in done.stdout.splitlines())
        assert seen["identityfile"] == weird


def test_a_user_name_with_a_newline_never_becomes_a_line_of_the_ssh_config(isolated_env):
    """The SSH user comes from an instance tag, which anyone allowed to tag can set: `ec2-user\\n ProxyCommand ...`
    must not become a directive of its own."""
    from argparse import Namespace

    from amazonei_setup.cli.commands.setup import write_ssh_entries
    from amazonei_setup.cli.commands.status import Access

    instance = Namespace(id="i-0123456789abcdef0", host="ec2-54-1-2-3.us-west-2.compute.amazonaws.com")
    warnings: list[str] = []
    written = write_ssh_entries(Namespace(sandbox=True, profile=None, endpoint_url=None), REGION, "tagged",
                                [instance], Access("ec2-user\n    ProxyCommand touch PWNED", "/k.pem", True, "tag"),
                                warnings, include=False)
    assert written is None and warnings
    config = sshconfig.config_file(sandbox=True)
    assert "ProxyCommand" not in (config.read_text() if config.exists() else "")
