"""The sandbox's background server: one per state directory, reused by every command, never losing an answer.

Real processes and real moto: `connect` starts `python -m amazonei_setup.sandbox.server` as a command would, the
tests talk to it with boto3 over HTTP, and kill, reset or replace it the way a user's machine would.
"""
from __future__ import annotations

import os
import shutil
import signal
import threading
import time

import boto3
import pytest
from botocore.config import Config

from amazonei_setup.sandbox import server as sandbox_server
from amazonei_setup.sandbox.account import STATE_FILE

pytestmark = pytest.mark.slow  # separate processes: `-m "not slow"` skips them locally, never in CI
REGION = "us-west-2"


def ec2(connection):
    return boto3.client("ec2", region_name=REGION, endpoint_url=connection.endpoint_url,
                        config=Config(retries={"max_attempts": 1}), **connection.credentials)


def pid_of(state_dir) -> int:
    return sandbox_server._read_info(state_dir)["pid"]


def gone(pid: int, within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not sandbox_server._alive(pid):
            return True
        time.sleep(0.05)
    return False


def group_names(connection) -> list[str]:
    return sorted(g["GroupName"] for g in ec2(connection).describe_security_groups()["SecurityGroups"])


def test_commands_share_one_server_and_an_answer_survives_a_killed_server(tmp_path):
    first = sandbox_server.connect(tmp_path)
    assert first.started
    again = sandbox_server.connect(tmp_path)
    assert (again.endpoint_url, again.started) == (first.endpoint_url, False)
    assert sandbox_server.find(tmp_path).endpoint_url == first.endpoint_url
    ec2(first).create_security_group(GroupName="kept", Description="made before the kill")
    # The reply came after the save: even a kill -9 right now loses nothing.
    pid = pid_of(tmp_path)
    os.kill(pid, signal.SIGKILL)
    assert gone(pid)
    assert sandbox_server.find(tmp_path) is None
    after = sandbox_server.connect(tmp_path)
    assert after.started and pid_of(tmp_path) != pid
    assert group_names(after) == ["default", "kept"]
    # The Deep Learning AMIs are seeded in the region a request names (here, the first request's).
    assert ec2(after).describe_images(Owners=["amazon"])["Images"]


def test_a_reset_directory_stops_its_server_without_writing_the_old_account_back(tmp_path):
    state = tmp_path / "sandbox"
    old = sandbox_server.connect(state)
    ec2(old).create_security_group(GroupName="old", Description="before the reset")
    pid = pid_of(state)
    shutil.rmtree(state)
    state.mkdir()  # as the next command does at once: the old server must not write its account in there
    assert gone(pid)  # it notices within 0.25 s; the deadline only bounds a regression
    assert not (state / STATE_FILE).exists()
    fresh = sandbox_server.connect(state)
    assert group_names(fresh) == ["default"]


def test_a_server_of_another_version_is_stopped_and_replaced_keeping_the_account(tmp_path, monkeypatch):
    old = sandbox_server.connect(tmp_path)
    ec2(old).create_security_group(GroupName="kept", Description="made by the old version")
    old_pid = pid_of(tmp_path)
    monkeypatch.setattr(sandbox_server, "identity", lambda: "a newer checkout")
    assert sandbox_server.find(tmp_path) is None  # never talked to by the new version
    new = sandbox_server.connect(tmp_path)
    assert new.started and not sandbox_server._alive(old_pid)
    assert group_names(new) == ["default", "kept"]


def test_two_commands_starting_at_once_get_one_server(tmp_path):
    connections = []
    threads = [threading.Thread(target=lambda: connections.append(sandbox_server.connect(tmp_path)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert len(connections) == 3
    assert len({c.endpoint_url for c in connections}) == 1
    ec2(connections[0]).create_security_group(GroupName="one", Description="seen by all")
    assert group_names(connections[2]) == ["default", "one"]


def test_an_idle_server_saves_and_stops_by_itself(tmp_path, monkeypatch):
    monkeypatch.setenv("AMAZONEI_SETUP_SANDBOX_IDLE_S", "3")  # read by the server as it starts
    ec2(sandbox_server.Connection("http://127.0.0.1:9", "", started=False))  # EC2's model loaded before the clock runs
    connection = sandbox_server.connect(tmp_path)
    ec2(connection).create_security_group(GroupName="kept", Description="before going idle")
    pid = pid_of(tmp_path)
    assert gone(pid)
    assert not (tmp_path / sandbox_server.SERVER_FILE).exists()
    monkeypatch.setenv("AMAZONEI_SETUP_SANDBOX_IDLE_S", "300")
    assert group_names(sandbox_server.connect(tmp_path)) == ["default", "kept"]


def test_a_state_that_cannot_be_read_is_said_in_one_sentence_and_left_alone(tmp_path):
    (tmp_path / STATE_FILE).write_bytes(b"not a pickle")
    with pytest.raises(sandbox_server.SandboxUnavailable, match=r"cannot be read .*rm -rf"):
        sandbox_server.connect(tmp_path)
    assert (tmp_path / STATE_FILE).read_bytes() == b"not a pickle"


def test_a_server_still_starting_can_be_stopped(tmp_path):
    """A command stopped (Ctrl-C) right after it started the server: nothing answers yet, but stop() must still
    find and end it, or it would run, unseen, until its idle timeout."""
    server = sandbox_server._spawn(tmp_path)
    assert sandbox_server._read_info(tmp_path) is None  # not serving yet: it is still importing moto
    assert sandbox_server.stop(tmp_path) is True
    assert server.wait(timeout=30) is not None
    assert sandbox_server.stop(tmp_path) is False


def test_a_stale_starting_marker_never_signals_another_process(tmp_path):
    (tmp_path / sandbox_server.SERVER_STARTING).write_text(str(os.getpid()))  # this very test process
    assert sandbox_server.stop(tmp_path) is False


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="only Linux's /proc tells a zombie apart")
def test_a_server_that_exited_is_not_waited_for_until_someone_reaps_it(tmp_path):
    """A server started by an earlier command is an orphan: when it exits it stays a zombie until PID 1 reaps it,
    which some inits do every few seconds and a container's shell never does. `stop` must see it has exited."""
    import subprocess
    import sys

    # A parent that starts a child which exits at once, prints the child's pid and never reaps it: the child is
    # a zombie that is not ours, as an exited server is to the command that stops it.
    parent = subprocess.Popen(
        [sys.executable, "-c", "import os, sys, time\npid = os.fork()\nif pid == 0: os._exit(0)\n"
                               "print(pid, flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        deadline = time.monotonic() + 10
        while "Z" not in open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()[:1]:
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.01)
        assert not sandbox_server._alive(pid)
        (tmp_path / sandbox_server.SERVER_FILE).write_text(f'{{"pid": {pid}, "port": 1}}')
        started = time.monotonic()
        assert sandbox_server.stop(tmp_path, timeout=5) is False  # exited already: nothing to stop, no waiting
        assert time.monotonic() - started < 5
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
