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

from tests.conftest import REGION, setup_args, snapshot
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
    from amazonei_setup import discover

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
    from amazonei_setup import discover

    monkeypatch.setattr(discover, "LOOKUP_BUDGET", 0.3)
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


def _as_from_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start_against(url: str, home, *argv: str) -> subprocess.Popen:
    env = user_env(home, AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_MAX_ATTEMPTS="2")
    return subprocess.Popen([sys.executable, "amazonei_setup.py", *argv], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_as_from_a_terminal)


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
        released.set()
        if setup.poll() is None:
            setup.kill()
            setup.communicate()
    assert setup.returncode == 130, err
    assert "Traceback" not in err and "Interrupted" in err
    iam = server_client(moto_server, "iam")
    assert not [r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("amazonei-setup-")]
