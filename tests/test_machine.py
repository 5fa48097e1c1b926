"""Work on the machine, for real: the sandbox's instances answer SSH (an asyncssh server per instance on 127.0.0.1,
in the sandbox server), and the real OpenSSH client reaches them through the tool's own Host block.

Every step is its own CLI process in a fresh HOME, as a user runs it; one sandbox server is shared by the steps of a
test and stopped at its end.
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from amazonei_setup.sandbox import server as sandbox_server
from tests.test_e2e import REGION, ROOT, Cli, user_env

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
    work = project(home)
    script = home / "prepare.sh"
    script.write_text('echo "preparing $AMAZONEI_SETUP_NAME in $AMAZONEI_SETUP_REGION"\n'
                      'echo "$AMAZONEI_SETUP_ACCELERATOR $(cat train.py)" > made.txt\n'
                      'names=$(ls -A | sort | tr "\\n" " "); echo "$names" > listing.txt\n')
    made = cli.json("setup", "--sandbox", "--region", REGION, "--instance-type", "m5.xlarge", "--name", "box",
                    "--workdir", str(work), "--setup-script", str(script), "--yes")
    assert made["setup_script"]["ok"] is True and Path(made["setup_script"]["log"]).is_file()
    assert "[box] preparing box in us-west-2" in Path(made["setup_script"]["log"]).read_text()
    assert made["accelerator_check"]["status"] == "none"  # the sandbox says it has none, and runs no probe
    assert made["ssh_address"] == f"127.0.0.1:{made['ssh_command'].split(' -p ')[1].split()[0]}"
    assert made["workdir"]["files"] == 3  # train.py, .gitignore, data/ (data/x.log, .git skipped)
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
    assert cli("exec", *sandbox, "--name", "box", "--", "cat", "made.txt").stdout == "eia2.medium print(1)\n"
    assert cli("exec", *sandbox, "--name", "box", "--", "cat", "listing.txt").stdout == (
        ".gitignore data made.txt train.py \n")  # no .git, no *.log
    again = cli("setup", *sandbox, "--name", "box", "--setup-script", str(script), "--yes")
    assert "already ran on box: skipped" in again.stderr
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

    instance_home = Path(first.stdout.split()[-1])
    notebook(cli, home, instance_home)

    printed = cli("connect", "--sandbox", "--region", REGION, "--name", "box", "--print").stdout
    assert f"-p {port} " in printed and "127.0.0.1" in printed and "amazonaws.com" not in printed
    status = cli.json("status", "--sandbox", "--region", REGION, "--name", "box")
    assert f"-p {port} " in status["instances"][0]["ssh_command"]
    recorder = home / "fake-bin"
    recorder.mkdir()
    (recorder / "ssh").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {home / "ssh-argv"}\n')
    (recorder / "ssh").chmod(0o755)
    become = Cli(user_env(home, PATH=f"{recorder}:{user_env(home)['PATH']}"))
    become("connect", *sandbox, "--name", "box")  # the process becomes ssh, with the sandbox's Host block
    assert (home / "ssh-argv").read_text().splitlines() == ["-F", str(ssh_config(home)), "box"]

    cli("stop", "--sandbox", "--region", REGION, "--name", "box", "--yes")
    assert_closed(home, port)

    started = cli.json("start", "--sandbox", "--region", REGION, "--name", "box")
    assert started["ssh_check"] == "answers"
    assert port_of(ssh_config(home).read_text()) == port  # the same port again while it is free
    assert ssh(home, "box", "true").returncode == 0

    cli("teardown", "--sandbox", "--region", REGION, "--name", "box", "--yes")
    assert "Host box" not in ssh_config(home).read_text()
    assert_closed(home, port)


STAND_IN_JUPYTER = """#!{python}
# Stands in for `jupyter lab` on the sandbox instance: serves HTTP on --port, 200 only with the JUPYTER_TOKEN.
import http.server, os, sys, urllib.parse
port = int(next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--port=")))
token = os.environ["JUPYTER_TOKEN"]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        given = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query).get("token", [""])[0]
        self.send_response(200 if given == token else 403)
        self.end_headers()
        self.wfile.write(b"stand-in jupyter in " + os.getcwd().encode())
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


def notebook(cli: Cli, home: Path, instance_home: Path) -> None:
    """connect --jupyter: the server started on the instance (the stand-in), the URL on stdout through a real
    tunnel, Ctrl-C closes the tunnel with exit 0 and leaves the server running; --stop stops it."""
    import queue
    import signal
    import threading
    import urllib.error
    import urllib.request

    from tests.conftest import default_signal_handlers

    program = instance_home / ".local" / "bin" / "jupyter"
    program.parent.mkdir(parents=True)
    program.write_text(STAND_IN_JUPYTER.format(python=sys.executable))
    program.chmod(0o755)
    sandbox = ("--sandbox", "--region", REGION)
    held = subprocess.Popen([sys.executable, "amazonei_setup.py", "connect", *sandbox, "--name", "box", "--jupyter"],
                            cwd=ROOT, env=user_env(home), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_signal_handlers)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in held.stdout], daemon=True).start()
    try:
        url = lines.get(timeout=90).strip()
        assert re.fullmatch(r"http://localhost:\d+/lab\?token=\S+", url), url
        with urllib.request.urlopen(url, timeout=10) as reply:  # through the tunnel, to the instance's server
            assert reply.status == 200 and reply.read().endswith(b"/workdir")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url.split("?")[0], timeout=10)  # no token, no notebook
        held.send_signal(signal.SIGINT)
        assert held.wait(timeout=30) == 0, held.stderr.read()
    finally:
        if held.poll() is None:
            held.kill()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)  # the tunnel is closed
    again = cli("connect", *sandbox, "--name", "box", "--jupyter", "--print")
    assert again.stdout.splitlines()[0].split("token=")[1] == url.split("token=")[1], "the same server, still running"
    status = cli.json("status", *sandbox, "--name", "box")
    assert status["jupyter"]["running"] is True and status["accelerator_check"]["status"] == "none"
    assert "Jupyter      running on box" in cli("status", *sandbox, "--name", "box").stdout
    assert "Stopped Jupyter on box." in cli("connect", *sandbox, "--name", "box", "--jupyter", "--stop").stdout
    assert cli.json("status", *sandbox, "--name", "box")["jupyter"]["running"] is False


def project(home: Path) -> Path:
    work = home / "project"
    (work / ".git").mkdir(parents=True)
    (work / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (work / "data").mkdir()
    (work / "data" / "x.log").write_text("noise\n")
    (work / ".gitignore").write_text("# logs\n*.log\n")
    (work / "train.py").write_text("print(1)")
    return work


def test_a_failing_setup_script_is_one_error_and_keeps_the_deployment(home):
    cli = Cli(user_env(home))
    script = home / "broken.sh"
    script.write_text("echo about to fail >&2\nexit 7\n")
    result = cli("setup", "--sandbox", "--region", REGION, "--instance-type", "m5.xlarge", "--name", "oops",
                 "--setup-script", str(script), "--yes", "--output", "json", expect=1)
    document = json.loads(result.stdout)
    assert document["status"] == "partial" and document["result"]["kept"] is True
    assert document["result"]["setup_script"]["instances"][0]["exit_code"] == 7
    message = document["result"]["error"]["message"]
    log = document["result"]["setup_script"]["log"]
    assert "with exit 7" in message and log in message and "exec" in message and "teardown" in message
    assert "[oops] about to fail" in result.stderr and "[oops] about to fail" in Path(log).read_text()
    assert cli.json("status", "--sandbox", "--region", REGION, "--name", "oops")["instances"][0]["state"] == "running"
    rerun = re.search(r"`([^`]*exec[^`]*)`", message).group(1)
    fixed = home / "fixed.sh"
    fixed.write_text("echo fixed\n")
    assert rerun.startswith("python amazonei_setup.py exec ")  # as printed; run with this interpreter
    rerun = rerun.replace(str(script), str(fixed)).replace("python", shlex.quote(sys.executable), 1)
    done = subprocess.run(rerun, shell=True, cwd=ROOT, env=user_env(home),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == "fixed\n", done.stderr


def assert_closed(home: Path, port: int) -> None:
    refused = subprocess.run(["ssh", "-p", str(port), "-o", "BatchMode=yes", "127.0.0.1", "true"],
                             capture_output=True, text=True, timeout=30, env=user_env(home))
    assert refused.returncode == 255 and "refused" in refused.stderr


def test_exec_on_a_fleet_runs_on_every_instance_and_prefixes_each_line(home):
    cli = Cli(user_env(home))
    sandbox = ("--sandbox", "--region", REGION)
    made = cli.json("setup", *sandbox, "--instance-type", "m5.xlarge", "--name", "pair", "--count", "2", "--yes",
                    "--wait", "ssh")
    assert made["waited_for"][-1] == "ssh"  # --wait ssh: each instance's SSH server greeted
    done = cli("exec", *sandbox, "--name", "pair", "--", "sh", "-c", 'basename "$HOME"')
    lines = sorted(done.stdout.splitlines())
    assert [line.split()[0] for line in lines] == ["[pair-0]", "[pair-1]"]
    assert len({line.split()[1] for line in lines}) == 2, "each instance answered from its own home"
    synced = cli("exec", *sandbox, "--name", "pair", "--workdir", str(project(home)), "--", "cat", "train.py")
    assert sorted(synced.stdout.splitlines()) == ["[pair-0] print(1)", "[pair-1] print(1)"]
    assert "Copied" in synced.stderr and "pair-1:~/workdir" in synced.stderr
    one = cli("exec", *sandbox, "--name", "pair", "--index", "1", "--", "sh", "-c", "exit 4", expect=4)
    assert one.stdout == ""
    where = Path(cli("exec", *sandbox, "--name", "pair", "--index", "0", "--", "sh", "-c", 'echo "$HOME"').stdout
                 .strip())
    broken = where / ".local" / "bin" / "jupyter"
    broken.parent.mkdir(parents=True)
    broken.write_text("#!/bin/sh\necho 'cannot start: no kernel' >&2\nexit 1\n")
    broken.chmod(0o755)
    refused = cli("connect", *sandbox, "--name", "pair", "--jupyter", expect=1)
    assert "Jupyter would not start on pair-0 (exited: cannot start: no kernel" in refused.stderr
    assert "Traceback" not in refused.stderr and refused.stdout == ""
    cli("teardown", *sandbox, "--name", "pair", "--yes")


@pytest.mark.parametrize("flag, make, expected", [
    ("--workdir", lambda tmp: tmp / "missing", "no such directory: pass an existing path."),
    ("--workdir", lambda tmp: (tmp / "file.txt", (tmp / "file.txt").write_text("x"))[0], "not a directory"),
    ("--setup-script", lambda tmp: tmp / "missing.sh", "no such file: pass an existing path."),
    ("--setup-script", lambda tmp: tmp, "not a file: pass the script"),
])
def test_a_workdir_or_script_that_cannot_be_used_is_refused_before_anything_is_created(cli, account, tmp_path, flag,
                                                                                       make, expected):
    from tests.conftest import snapshot

    before = snapshot(account)
    result = cli("--region", REGION, "--instance-type", "m5.xlarge", "--name", "nope", "--yes", flag,
                 str(make(tmp_path)))
    assert result.code == 2 and expected in result.stderr and "Traceback" not in result.stderr
    assert snapshot(account) == before
