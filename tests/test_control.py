"""The user stays in control of a deployment whatever happens: a hung look-up gives way to one Ctrl-C, and a signal
at any moment leaves a true message (what exists, whether it is complete, the exact next command).

In-process against moto where a hook can hold a call; as real processes against a moto server where the exit
itself (its code, how soon it comes) is the point."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest

from tests.conftest import REGION, default_signal_handlers, setup_args, snapshot
from tests.test_e2e import ROOT, SSH_CIDR, server_client, user_env
from tests.test_e2e import moto_server as moto_server  # noqa: F401 - the fixture, used by name


def hang(client, operation: str, released: threading.Event, entered: threading.Event | None = None):
    """`operation` on `client` waits until `released` (a call whose reply never comes, as far as the run can tell)."""
    def hook(**_):
        if entered is not None:
            entered.set()
        released.wait(60)

    client.meta.events.register(f"before-call.{client.meta.service_model.service_name}.{operation}", hook)


def test_a_hung_service_quotas_costs_the_optional_budget_and_the_setup_goes_on(cli, account, monkeypatch):
    from amazonei_setup.aws import discover

    monkeypatch.setattr(discover, "OPTIONAL_BUDGET", 0.2)
    released = threading.Event()
    hang(account.client("service-quotas"), "GetServiceQuota", released)
    try:
        result = cli(*setup_args("hq"), "--output", "json")
    finally:
        released.set()

    assert result.code == 0, result.stderr
    quota = result.json["result"]["quota"]
    assert quota["status"] == "unknown", quota
    assert "did not answer in time" in " ".join(result.stderr.split()) + str(quota)


def test_a_required_look_up_that_never_answers_is_one_sentence_and_nothing_is_created(cli, account, monkeypatch):
    from amazonei_setup.aws import discover

    monkeypatch.setattr(discover, "LOOKUP_BUDGET", 3.0)  # the others answer well within it, even on a busy machine
    monkeypatch.setattr(discover, "OPTIONAL_BUDGET", 0.1)
    before = snapshot(account)
    released = threading.Event()
    hang(account.ec2, "DescribeSubnets", released)
    try:
        result = cli(*setup_args("hs"))
    finally:
        released.set()

    assert result.code == 1
    said = " ".join(result.stderr.split())
    assert "AWS did not answer while looking up subnets in time" in said and "Traceback" not in said
    assert snapshot(account) == before


def release_and_reap(released: threading.Event, process: subprocess.Popen) -> None:
    """Let the held call answer, and never leave the CLI process running after its test."""
    released.set()
    if process.poll() is None:
        process.kill()
        process.communicate()


def start_against(url: str, home, *argv: str) -> subprocess.Popen:
    env = user_env(home, AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_MAX_ATTEMPTS="2")
    return subprocess.Popen([sys.executable, "amazonei_setup.py", *argv], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=default_signal_handlers)


@pytest.mark.slow
def test_one_ctrl_c_stops_a_setup_whose_quota_look_up_hangs(moto_server, tmp_path, monkeypatch):  # noqa: F811
    from moto.servicequotas.models import ServiceQuotasBackend

    entered, released = threading.Event(), threading.Event()
    answer = ServiceQuotasBackend.get_service_quota

    def hung(self, *args, **kwargs):
        entered.set()
        released.wait(120)
        return answer(self, *args, **kwargs)

    monkeypatch.setattr(ServiceQuotasBackend, "get_service_quota", hung)
    home = tmp_path / "user"
    home.mkdir()
    setup = start_against(moto_server, home, "--region", REGION, "--instance-type", "m5.xlarge", "--yes", "--name",
                          "hq", "--ssh-cidr", SSH_CIDR)
    try:
        assert entered.wait(60), "setup never asked Service Quotas"
        setup.send_signal(signal.SIGINT)
        try:
            out, err = setup.communicate(timeout=15)  # before: 120 s for one Ctrl-C to show
        except subprocess.TimeoutExpired:
            pytest.fail("one Ctrl-C did not stop a setup whose look-up hangs")
    finally:
        release_and_reap(released, setup)
    assert setup.returncode == 130, err
    assert "Traceback" not in err and "Interrupted" in err
    iam = server_client(moto_server, "iam")
    assert not [r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("amazonei-setup-")]


# ---- a signal once the work is complete: the result stays, and says what exists ------------------------------------

def ctrl_c_on(client, operation: str, times: int = 1, *, after: bool = False) -> list[int]:
    """SIGINT to this process when `client` sends `operation` (after=True: once AWS has answered it)."""
    import os

    sent: list[int] = []

    def hook(**_):
        while len(sent) < times:
            sent.append(signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    event = "after-call" if after else "before-call"
    client.meta.events.register(f"{event}.{client.meta.service_model.service_name}.{operation}", hook)
    return sent


def running(account, name: str) -> list[str]:
    return [i["InstanceId"] for r in account.ec2.describe_instances(Filters=[
        {"Name": "tag:amazonei-setup:deployment", "Values": [name]},
        {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"] for i in r["Instances"]]


def test_ctrl_c_while_a_finished_setup_releases_its_lock_still_prints_the_result(cli, account, default_signals):
    sent = ctrl_c_on(account.client("ssm"), "DeleteParameter")

    result = cli(*setup_args("late"), "--output", "json")

    assert sent, "the release was reached"
    assert result.code == 130, result.stderr
    assert result.json["status"] == "success" and result.json["result"]["name"] == "late"
    assert result.json["result"]["ssh_command"].startswith("ssh ")
    said = " ".join(result.stderr.split())
    assert "after the work was complete" in said and "nothing more was done" not in said
    assert len(running(account, "late")) == 1
    assert account.client("ssm").describe_parameters()["Parameters"] == [], "the release went on: no lock left"


def test_a_second_ctrl_c_while_finishing_says_the_deployment_is_complete_and_how_to_remove_it(cli, account,
                                                                                               default_signals):
    ctrl_c_on(account.client("ssm"), "DeleteParameter", times=2)

    result = cli(*setup_args("late2"))

    assert result.code == 130, result.stderr
    said = " ".join(result.stderr.split())
    [instance] = running(account, "late2")
    assert f"deployment late2 is complete and running in us-west-2 ({instance})" in said
    assert "Remove it: python amazonei_setup.py teardown --region us-west-2 --name late2" in said
    assert "nothing more was done" not in said and "Traceback" not in said
    # The release was cut short, so the lock is this (still running) test process's: --force-unlock stands in for
    # the process having exited, which a separate run sees at once (test_lock.py).
    assert cli("teardown", "--region", "us-west-2", "--name", "late2", "--yes", "--force-unlock").code == 0


def test_stop_takes_ssh_name_away_from_the_address_ec2_gives_back(cli, account):
    from amazonei_setup.local import sshconfig

    assert cli(*setup_args("nap")).code == 0
    assert "Host nap" in sshconfig.config_file().read_text()

    assert cli("stop", "--name", "nap").code == 0

    assert "Host nap" not in sshconfig.config_file().read_text()


def test_ctrl_c_while_start_waits_for_its_reply_says_the_state_and_points_ssh_at_the_new_address(cli, account,
                                                                                                 default_signals):
    from amazonei_setup.local import sshconfig

    assert cli(*setup_args("wake")).code == 0
    assert cli("stop", "--name", "wake").code == 0
    ctrl_c_on(account.ec2, "StartInstances", after=True)  # EC2 started it; the reply never reached the run

    result = cli("start", "--name", "wake")

    assert result.code == 130, result.stderr
    said = " ".join(result.stderr.split())
    [instance] = running(account, "wake")
    host = account.ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["PublicDnsName"]
    assert f"wake is now {instance} running" in said and f"`ssh wake` now leads to {host}" in said
    assert "nothing more was done" not in said
    assert f"HostName {host}" in sshconfig.read_block("wake")


def test_ctrl_c_while_stop_is_sent_says_what_the_instance_is_doing(cli, account, default_signals):
    assert cli(*setup_args("sleepy")).code == 0
    ctrl_c_on(account.ec2, "StopInstances", after=True)

    result = cli("stop", "--name", "sleepy")

    assert result.code == 130, result.stderr
    said = " ".join(result.stderr.split())
    assert "sleepy is now i-" in said and "stopped" in said and "run: python amazonei_setup.py stop" in said
    assert "nothing more was done" not in said


@pytest.mark.slow
def test_after_the_result_is_printed_a_signal_changes_nothing(tmp_path):
    """cli.entry: once main has returned, the interpreter's shutdown ignores signals (before: exit -2, no code)."""
    code = ("import signal, sys; sys.argv = ['amazonei-setup', 'permissions']\n"
            "from amazonei_setup.cli.main import entry\n"
            "try:\n    entry()\nexcept SystemExit as done:\n"
            "    print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN, done.code, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          preexec_fn=default_signal_handlers)
    assert done.returncode == 0 and done.stderr.split()[-2:] == ["True", "0"], done.stderr


def test_one_ctrl_c_stops_a_teardown_whose_look_up_hangs(cli, account, default_signals):
    """The look-up round of teardown (and list, status, stop, start) gives way to Ctrl-C while a call hangs."""
    import os

    assert cli(*setup_args("stuck")).code == 0
    released, answered = threading.Event(), threading.Event()

    def hung_then_ctrl_c(**_):
        os.kill(os.getpid(), signal.SIGINT)  # arrives in the main thread, which waits for this look-up
        released.wait(30)
        answered.set()

    account.client("cloudwatch").meta.events.register("before-call.cloudwatch.DescribeAlarms", hung_then_ctrl_c)
    try:
        result = cli("teardown", "--region", REGION, "--name", "stuck", "--yes")
        still_hung = not answered.is_set()
    finally:
        released.set()

    assert still_hung, "the teardown waited for the hung look-up to answer before it stopped"
    assert result.code == 130, result.stderr
    assert "Interrupted" in result.stderr and "Traceback" not in result.stderr
    assert len(running(account, "stuck")) == 1, "nothing was deleted"


# ---- the same as real processes against a moto server: the release interrupted, an optional read denied ----------

def setup_against(url: str, home, name: str) -> subprocess.Popen:
    return start_against(url, home, "--region", REGION, "--instance-type", "m5.xlarge", "--yes", "--name", name,
                         "--ssh-cidr", SSH_CIDR, "--output", "json")


@pytest.mark.slow
def test_ctrl_c_during_the_lock_release_of_a_finished_setup_process(moto_server, tmp_path, monkeypatch):  # noqa: F811
    import json

    from moto.ssm.models import SimpleSystemManagerBackend

    entered, released = threading.Event(), threading.Event()
    delete = SimpleSystemManagerBackend.delete_parameter

    def slow_delete(self, name):
        entered.set()
        released.wait(60)
        return delete(self, name)

    monkeypatch.setattr(SimpleSystemManagerBackend, "delete_parameter", slow_delete)
    home = tmp_path / "user"
    home.mkdir()
    setup = setup_against(moto_server, home, "rel")
    try:
        assert entered.wait(120), "setup never released its lock"
        setup.send_signal(signal.SIGINT)
        time_to_deliver = threading.Timer(0.5, released.set)  # the reply comes after the signal, as in the issue
        time_to_deliver.start()
        out, err = setup.communicate(timeout=60)
    finally:
        release_and_reap(released, setup)
    assert setup.returncode == 130, err
    document = json.loads(out)
    assert document["status"] == "success" and document["result"]["name"] == "rel", out
    assert "after the work was complete" in " ".join(err.split()) and "Traceback" not in err
    assert server_client(moto_server, "ssm").describe_parameters()["Parameters"] == [], "the lock was released"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Exception\\(AccessDenied\\):UserWarning")  # moto: not in CloudWatch's model
def test_teardown_without_describe_alarms_permission_removes_the_deployment(moto_server, tmp_path,  # noqa: F811
                                                                             monkeypatch):
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.core.exceptions import ServiceException

    class AccessDenied(ServiceException):  # moto's serializer answers this the way AWS does (Code AccessDenied)
        code = "AccessDenied"

    home = tmp_path / "user"
    home.mkdir()
    setup = setup_against(moto_server, home, "old-policy")
    out, err = setup.communicate(timeout=180)
    assert setup.returncode == 0, err

    def denied(self, *args, **kwargs):
        raise AccessDenied("User: arn:aws:iam::123456789012:user/old is not authorized to perform: "
                           "cloudwatch:DescribeAlarms")

    for method in ("describe_alarms", "get_alarms_by_alarm_name_prefix", "get_alarms_by_alarm_names"):
        monkeypatch.setattr(CloudWatchBackend, method, denied)
    env = user_env(home, AWS_ENDPOINT_URL=moto_server, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_MAX_ATTEMPTS="2")
    gone = subprocess.run([sys.executable, "amazonei_setup.py", "teardown", "--region", REGION, "--name", "old-policy",
                           "--yes"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL)

    assert gone.returncode == 0, gone.stderr
    assert "cloudwatch:DescribeAlarms denied" in " ".join(gone.stderr.split())
    ec2 = server_client(moto_server, "ec2")
    assert not [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
                if i["State"]["Name"] != "terminated"]
