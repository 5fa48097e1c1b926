"""The deployment lock is a lease: a live run keeps it, a dead run never blocks its deployment for long.

Unit level against moto's SSM (acquire/release/Lease), then the real CLI as processes against a moto server:
setup killed with SIGKILL at each phase, then teardown of that name must succeed at once and leave nothing."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from amazonei_setup.aws.resources import lock

NAME = "lk"


@pytest.fixture
def ssm(account):
    return account.client("ssm")


def put_holder(ssm, *, host="runner-7", pid=4242, since=None, lease=lock.LEASE_S, run="setup-other") -> None:
    ssm.put_parameter(Name=lock.parameter_name(NAME), Type="String", Overwrite=True, Value=json.dumps(
        {"run": run, "command": "setup", "who": "ci", "host": host, "pid": pid,
         "since": time.time() if since is None else since, "lease": lease}))


class Sleeps:
    def __init__(self):
        self.total = 0.0

    def __call__(self, seconds: float) -> None:
        self.total += seconds


def aws_clock_says_modified(ssm, seconds_ago: float) -> None:
    """AWS's own clock: the parameter was last written `seconds_ago` before the reply's Date."""
    def older(parsed, **_):
        if "Parameter" in parsed:
            parsed["Parameter"]["LastModifiedDate"] -= timedelta(seconds=seconds_ago)

    ssm.meta.events.register("after-call.ssm.GetParameter", older)


def dead_pid() -> int:
    """A pid no process can have (above the kernel's limit): a child that exited could be reused on a busy machine."""
    with open("/proc/sys/kernel/pid_max") as limit:
        return int(limit.read()) + 1


def test_a_lock_whose_process_is_gone_on_this_machine_is_taken_over_at_once(ssm):
    import socket

    put_holder(ssm, host=socket.gethostname(), pid=dead_pid())
    sleeps = Sleeps()

    taken, dead = lock.acquire(ssm, NAME, "teardown-me", "teardown", "me", sleep=sleeps)

    assert taken and dead is not None and dead.run == "setup-other"
    assert sleeps.total == 0
    assert lock.current(ssm, NAME).run == "teardown-me"


def test_a_live_process_on_this_machine_keeps_its_lock(ssm):
    import socket

    put_holder(ssm, host=socket.gethostname(), pid=os.getpid())

    with pytest.raises(lock.Held, match="still runs on this machine"):
        lock.acquire(ssm, NAME, "teardown-me", "teardown", "me", sleep=Sleeps())
    assert lock.current(ssm, NAME).run == "setup-other"


def test_a_lock_not_renewed_for_a_lease_by_awss_clock_is_taken_over_without_waiting(ssm):
    put_holder(ssm)
    aws_clock_says_modified(ssm, lock.LEASE_S + 5)
    sleeps = Sleeps()

    taken, dead = lock.acquire(ssm, NAME, "teardown-me", "teardown", "me", sleep=sleeps)

    assert taken and dead.run == "setup-other" and sleeps.total == 0


def test_a_clock_hours_ahead_does_not_keep_a_dead_runs_lock(ssm):
    """The holder's own clock said it started three hours from now: only the lease's renewal counts."""
    put_holder(ssm, since=time.time() + 3 * 3600)
    sleeps = Sleeps()

    taken, dead = lock.acquire(ssm, NAME, "teardown-me", "teardown", "me", sleep=sleeps)

    assert taken and dead.run == "setup-other"
    assert sleeps.total <= lock.LEASE_S + lock.POLL_S


def test_a_holder_that_renews_while_watched_is_alive(ssm):
    put_holder(ssm)
    looks = []

    def renewing_sleep(seconds):
        looks.append(seconds)
        put_holder(ssm)  # the holder's Lease writes a new version

    with pytest.raises(lock.Held, match="renewed its lease"):
        lock.acquire(ssm, NAME, "teardown-me", "teardown", "me", sleep=renewing_sleep)
    assert len(looks) == 1, "one renewal seen is proof enough"


def test_release_never_deletes_another_runs_lock(ssm):
    put_holder(ssm, run="setup-newer")

    lock.release(ssm, NAME, "setup-older")

    assert lock.current(ssm, NAME).run == "setup-newer"


def test_the_lease_renews_and_stops_when_another_run_has_taken_the_lock(ssm):
    taken, _ = lock.acquire(ssm, NAME, "setup-me", "setup", "me", since=time.time())
    assert taken
    first = lock.current(ssm, NAME).version
    lost = []
    lease = lock.Lease(ssm, NAME, "setup-me", "setup", "me", since=time.time(), lost=lost.append, every=0.02).start()
    try:
        deadline = time.monotonic() + 10
        while lock.current(ssm, NAME).version < first + 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert lock.current(ssm, NAME).version >= first + 2, "renewals make new versions"
        assert lock.current(ssm, NAME).run == "setup-me"
        put_holder(ssm, run="setup-thief")
        while not lost and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        lease.stop()
    assert [h.run for h in lost] == ["setup-thief"]
    assert lock.current(ssm, NAME).run == "setup-thief", "a lease that lost its lock never writes it back"


def test_a_signal_after_the_lock_landed_leaves_no_lock(account):
    """Ctrl-C while PutParameter is in flight: AWS made the lock, the run never heard. It must not stay behind."""
    from amazonei_setup.flows import locking

    ssm = account.client("ssm")

    def interrupted(**_):
        raise KeyboardInterrupt

    ssm.meta.events.register("after-call.ssm.PutParameter", interrupted)
    with pytest.raises(KeyboardInterrupt), locking.deployment_locked(account, NAME, "setup"):
        pass
    ssm.meta.events.unregister("after-call.ssm.PutParameter", interrupted)
    assert lock.current(ssm, NAME) is None


# ---- the real CLI as processes: kill -9 at each phase, then teardown ---------------------------------------------

from tests.test_e2e import REGION, ROOT, SSH_CIDR, server_client, user_env  # noqa: E402
from tests.test_e2e import moto_server as moto_server  # noqa: E402 - the fixture, used by name

PHASES = {
    "the lock is taken": lambda c: bool(c["ssm"].describe_parameters()["Parameters"]),
    "the role exists": lambda c: any(r["RoleName"] == f"amazonei-setup-{NAME}" for r in c["iam"].list_roles()["Roles"]),
    "the instance was launched": lambda c: bool(c["ec2"].describe_instances(Filters=[
        {"Name": "tag:amazonei-setup:deployment", "Values": [NAME]}])["Reservations"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("phase", list(PHASES))
def test_after_kill_9_at_any_phase_teardown_succeeds_at_once_and_leaves_nothing(moto_server, tmp_path,  # noqa: F811
                                                                                 phase):
    home = tmp_path / "user"
    home.mkdir()
    env = user_env(home, AWS_ENDPOINT_URL=moto_server, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_MAX_ATTEMPTS="2")
    clients = {s: server_client(moto_server, s) for s in ("ssm", "iam", "ec2")}
    setup = subprocess.Popen([sys.executable, "amazonei_setup.py", "--region", REGION, "--instance-type", "m5.xlarge",
                              "--yes", "--name", NAME, "--ssh-cidr", SSH_CIDR], cwd=ROOT, env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not PHASES[phase](clients):
            assert setup.poll() is None, "setup ended before the phase was reached"
            assert time.monotonic() < deadline, f"never saw: {phase}"
            time.sleep(0.02)
        setup.send_signal(signal.SIGKILL)
    finally:
        setup.wait(timeout=30)
    assert clients["ssm"].describe_parameters()["Parameters"], "the killed run left its lock"

    started = time.monotonic()
    gone = subprocess.run([sys.executable, "amazonei_setup.py", "teardown", "--region", REGION, "--name", NAME,
                           "--yes"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=180)

    assert gone.returncode == 0, gone.stderr
    said = " ".join(gone.stderr.split())
    assert "Took over the lock" in said and "its process no longer runs" in said
    assert time.monotonic() - started < lock.LEASE_S, "no wait for the lease: the process is known gone"
    ec2, iam = clients["ec2"], clients["iam"]
    live = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
            if i["State"]["Name"] != "terminated"]
    assert live == []
    assert not [r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("amazonei-setup-")]
    assert not [g for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] != "default"]
    assert not [e for e in ec2.describe_vpc_endpoints()["VpcEndpoints"] if e["State"].lower() != "deleted"]
    assert clients["ssm"].describe_parameters()["Parameters"] == []

