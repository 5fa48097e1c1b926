"""Time to the way in (issue 18): the connect commands are shown the moment an instance runs with its address,
EI readiness follows on its own lines, and the run still ends only once the EI endpoint is available.

States are held by botocore after-call hooks on the fixture's EC2 client (docs/TESTING.md, "Making moto behave
like AWS"), never by timing: the endpoint stays `pending` until the instance has been seen running, and then for
a few more polls. What is asserted is what the user sees, in the order the user sees it (stdout and stderr on one
timeline)."""
from __future__ import annotations

import io
import json
import re
import threading

from amazonei_setup.cli.environment import Environment
from amazonei_setup.cli.main import main
from tests.conftest import REGION, setup_args

PENDING_AFTER_RUNNING = 3  # endpoint polls still `pending` once an instance runs: the run must sit through them
RUNNING = re.compile(r"Instance i-[0-9a-f]+ is running")


class Timeline:
    """stdout and stderr as two streams that also write, in order, to one shared log of (stream, line)."""

    def __init__(self):
        self.entries: list[tuple[str, str]] = []
        self._lock = threading.Condition()
        self.instances_shown = 0  # "Instance i-... is running" lines so far, on either stream
        self.out, self.err = self._stream("out"), self._stream("err")

    def wait_until_shown(self, count: int, timeout: float = 10.0) -> None:
        """Block (a worker's describe call) until the user has seen `count` instances running; the timeout only
        keeps a regression from hanging (it then fails on the order)."""
        with self._lock:
            self._lock.wait_for(lambda: self.instances_shown >= count, timeout)

    def _stream(self, name: str):
        timeline = self

        class Stream(io.StringIO):
            def write(self, text: str) -> int:
                with timeline._lock:
                    lines = [line for line in text.splitlines() if line.strip()]
                    timeline.entries += [(name, line) for line in lines]
                    timeline.instances_shown += sum(bool(RUNNING.search(line)) for line in lines)
                    timeline._lock.notify_all()
                return super().write(text)
        return Stream()

    def first(self, stream: str, starts: str) -> int:
        return next(i for i, (s, line) in enumerate(self.entries) if s == stream and line.startswith(starts))


class HeldStates:
    """Instances `pending` for their first polls (each its own number); the EI endpoint's first poll answers only
    once the user has seen every instance running (so the order does not depend on how threads are scheduled),
    and it stays `pending` for endpoint_polls_after more polls."""

    def __init__(self, ec2, timeline: Timeline, pending_polls: int | list[int] = 2,
                 endpoint_polls_after: int = PENDING_AFTER_RUNNING):
        self.pending_polls, self.timeline = pending_polls, timeline
        self.endpoint_polls_after = endpoint_polls_after
        self.count = len(pending_polls) if isinstance(pending_polls, list) else 1
        self.seen_running: set[str] = set()
        self.instance_polls = 0
        self.endpoint_pending_after_running = 0
        self.endpoint_polls = 0
        ec2.meta.events.register("after-call.ec2.DescribeInstances", self.instances)
        ec2.meta.events.register("after-call.ec2.DescribeVpcEndpoints", self.endpoints)

    def instances(self, parsed, **_):
        found = [i for r in parsed.get("Reservations", []) for i in r["Instances"]]
        if not found:
            return  # discovery's look-up by tag in a fresh account
        self.instance_polls += 1
        holds = self.pending_polls if isinstance(self.pending_polls, list) else [self.pending_polls]
        for position, each in enumerate(found):
            if self.instance_polls <= holds[min(position, len(holds) - 1)]:
                each["State"] = {"Code": 0, "Name": "pending"}
            elif each["InstanceId"] not in self.seen_running:  # on the timeline: what AWS said, when
                self.seen_running.add(each["InstanceId"])
                self.timeline.entries.append(("aws", f"{each['InstanceId']} running"))

    def endpoints(self, parsed, **_):
        if not parsed.get("VpcEndpoints"):
            return  # discovery's look-up in a fresh account
        self.endpoint_polls += 1
        if self.endpoint_polls == 1:
            self.timeline.wait_until_shown(self.count)
        self.endpoint_pending_after_running += 1
        if self.endpoint_pending_after_running <= self.endpoint_polls_after:
            for each in parsed.get("VpcEndpoints", []):
                each["State"] = "pending"


def run_setup(account, *argv: str, timeline: Timeline | None = None) -> tuple[int, Timeline]:
    timeline = timeline or Timeline()
    env = Environment(stdin_isatty=False, stdout=timeline.out, stderr=timeline.err,
                      public_ip_lookup=lambda: "198.51.100.4", sleep=lambda seconds: None, width=200, aws=account)
    return main(list(argv), env), timeline


def test_ssh_is_shown_on_stdout_before_ei_is_ready_and_the_run_waits_for_the_endpoint(account):
    timeline = Timeline()
    held = HeldStates(account.ec2, timeline)
    code, timeline = run_setup(account, *setup_args("early"), timeline=timeline)
    assert code == 0, timeline.err.getvalue()
    out = timeline.out.getvalue().splitlines()
    instance_id = out[0].split()[1]
    assert out[0] == f"Instance {instance_id} is running: connect with"
    assert out[1].startswith("ssh -i ") and out[2].startswith("ssh -i ") and "-L 8888:localhost:8888" in out[2]
    shown = timeline.first("out", f"Instance {instance_id} is running")
    pending = timeline.first("err", "… EI endpoint vpce-")
    ready = timeline.first("err", "✓ EI ready: endpoint vpce-")
    summary = timeline.first("out", "Ready: early")
    assert shown < ready < summary, timeline.entries
    assert pending < ready and "pending (" in timeline.entries[pending][1]
    # The run sat through the endpoint's pending polls after SSH was shown: it ends when EI is ready, not before.
    assert held.endpoint_pending_after_running == PENDING_AFTER_RUNNING + 1
    # issue 16: against an emulator (moto here) SSH is not checked, and the Ready row says so
    assert (f"Ready       instance running, EI endpoint {timeline.entries[ready][1].split()[4]} available, SSH not "
            "checked (an emulated account: nothing listens)") in out
    assert out.count(out[1]) == 2, "the summary repeats the ssh command once, as the reference"


def test_json_mode_keeps_stdout_one_document_and_says_the_instance_runs_on_stderr(account):
    timeline = Timeline()
    HeldStates(account.ec2, timeline)
    code, timeline = run_setup(account, *setup_args("early", "--output", "json"), timeline=timeline)
    assert code == 0, timeline.err.getvalue()
    result = json.loads(timeline.out.getvalue())["result"]  # the one document, nothing before it
    host = result["public_dns"]
    running = timeline.first("err", f"✓ Instance {result['instance_id']} is running at {host}")
    assert running < timeline.first("err", "✓ EI ready: endpoint vpce-")
    assert result["ssh_command"] not in timeline.err.getvalue()


def test_each_instance_of_a_fleet_is_shown_as_it_comes_up(account):
    timeline = Timeline()
    HeldStates(account.ec2, timeline, pending_polls=[1, 3])  # the second instance runs two polls after the first
    code, timeline = run_setup(account, *setup_args("pair", "--count", "2"), timeline=timeline)
    assert code == 0, timeline.err.getvalue()
    shown = [(i, line.split()[1]) for i, (s, line) in enumerate(timeline.entries)
             if s == "out" and line.endswith("is running: connect with")]
    assert len(shown) == 2 and shown[0][1] != shown[1][1]
    second_runs = timeline.entries.index(("aws", f"{shown[1][1]} running"))
    assert shown[0][0] < second_runs < shown[1][0], "the first instance is shown while the second is still pending"
    ready = timeline.first("err", "✓ EI ready")
    assert shown[0][0] < shown[1][0] < ready < timeline.first("out", "Ready: pair")


def test_an_instance_already_running_is_shown_at_once_and_only_once(cli, account):
    first = cli(*setup_args("again"))
    assert first.code == 0, first.stderr
    again = cli(*setup_args("again"))  # converges: the instance is reused, already running
    assert again.code == 0, again.stderr
    lines = again.stdout.splitlines()
    assert [line for line in lines if line.endswith("is running: connect with")] == [lines[0]]
    assert lines.index("Ready: again") > 2 and REGION in again.stdout


def test_ei_readiness_is_reported_every_ten_seconds_or_so_not_every_poll(account):
    timeline = Timeline()
    held = HeldStates(account.ec2, timeline, endpoint_polls_after=20)
    code, timeline = run_setup(account, *setup_args("slow-ei"), timeline=timeline)
    assert code == 0, timeline.err.getvalue()
    said = [line for stream, line in timeline.entries if stream == "err" and " pending (" in line]
    seconds = [int(line.rsplit("(", 1)[1].split()[0]) for line in said]
    assert held.endpoint_polls == 21 and 3 <= len(said) <= 5, said
    assert seconds[0] == 0 and all(9 <= b - a <= 13 for a, b in zip(seconds, seconds[1:], strict=False)), said


# ---- --wait: what the run waits for ------------------------------------------------------------------

def hold_endpoint_pending(ec2) -> None:
    """The EI endpoint never becomes available (as a slow one would look for as long as a test runs)."""
    def pending(parsed, **_):
        for endpoint in parsed.get("VpcEndpoints", []):
            endpoint["State"] = "pending"
    ec2.meta.events.register("after-call.ec2.DescribeVpcEndpoints", pending)


def instances_at_this_machine(ec2) -> None:
    """Every instance's public address is 127.0.0.1: this machine, where the test's "sshd" listens (or not)."""
    def at_this_machine(parsed, **_):
        for reservation in parsed.get("Reservations", []):
            for each in reservation["Instances"]:
                each["PublicIpAddress"] = "127.0.0.1"
    ec2.meta.events.register("after-call.ec2.DescribeInstances", at_this_machine)


def test_wait_running_ends_once_the_instance_runs_and_says_ei_was_not_waited_for(cli, account):
    hold_endpoint_pending(account.ec2)
    result = cli(*setup_args("quick"), "--wait", "running")
    assert result.code == 0, result.stderr
    assert "EI ready" not in result.stderr
    assert re.search(r"Ready\s+instance running, EI endpoint vpce-\w+ not waited for \(--wait running\)", result.stdout)
    listed = cli("list", "--region", REGION, "--output", "json")
    assert [d["name"] for d in listed.json["result"]["deployments"]] == ["quick"]


def test_the_default_waits_for_the_ei_endpoint(cli, account):
    hold_endpoint_pending(account.ec2)  # never available: the default wait times out and rolls back
    result = cli(*setup_args("patient"), "--output", "json")
    assert result.code == 1
    assert "EI endpoint vpce-" in result.json["error"]["message"]
    made = cli(*setup_args("patient2"), "--output", "json", "--wait", "ei")
    assert made.code == 1  # `ei` is the default with EI, said explicitly


def test_wait_ssh_waits_until_the_ssh_port_answers(cli, account, monkeypatch):
    import socket

    from amazonei_setup.flows import provision

    listener = socket.create_server(("127.0.0.1", 0))
    monkeypatch.setattr(provision, "SSH_PORT", listener.getsockname()[1])

    instances_at_this_machine(account.ec2)
    try:
        result = cli(*setup_args("reachable"), "--wait", "ssh", "--output", "json")
    finally:
        listener.close()
    assert result.code == 0, result.stderr
    assert result.json["result"]["waited_for"] == ["running", "ei", "ssh"]
    assert f"SSH answers on 127.0.0.1:{provision.SSH_PORT}" in result.stderr


def test_wait_ssh_that_never_answers_fails_naming_how_to_check_and_rolls_back(cli, account, monkeypatch):
    import socket

    from amazonei_setup.flows import provision
    from tests.conftest import snapshot

    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: every probe is refused
    monkeypatch.setattr(provision, "SSH_PORT", port)

    instances_at_this_machine(account.ec2)
    before = snapshot(account)
    result = cli(*setup_args("unreachable"), "--wait", "ssh", "--output", "json")
    assert result.code == 1
    message = result.json["error"]["message"]
    assert f"SSH on 127.0.0.1:{port}" in message and f"nc -zv 127.0.0.1 {port}" in message
    assert snapshot(account) == before  # rolled back

