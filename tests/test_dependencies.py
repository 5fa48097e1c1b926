"""The tool keeps working when its libraries' insides move: each underscore name of botocore it uses for speed gives
way to botocore's public behaviour, the sandbox's moto patches switch themselves off, and no product module asks
whether it runs under a test."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import default_signal_handlers

ROOT = Path(__file__).resolve().parent.parent


# ---- "emulated" is said, never guessed from the test framework ---------------------------------------------------

def test_moto_in_the_process_does_not_make_the_account_emulated(account, monkeypatch):
    """A program embedding the tool with moto imported and mocking (its own tests) still checks SSH against real
    AWS: only the flags, the Environment or AMAZONEI_SETUP_EMULATED say "emulated"."""
    from amazonei_setup.cli.commands.common import emulated
    from amazonei_setup.cli.environment import Environment

    args = argparse.Namespace(sandbox=False, endpoint_url=None)
    monkeypatch.delenv("AMAZONEI_SETUP_EMULATED", raising=False)
    assert emulated(args, Environment()) is False  # mock_aws is on (the `account` fixture), and it does not matter
    monkeypatch.setenv("AMAZONEI_SETUP_EMULATED", "1")
    assert emulated(args, Environment()) is True
    assert emulated(args, Environment(emulated=False)) is False  # the Environment decides first
    monkeypatch.setenv("AMAZONEI_SETUP_EMULATED", "0")
    assert emulated(args, Environment()) is False
    assert emulated(argparse.Namespace(sandbox=True, endpoint_url=None), Environment()) is True


def test_no_product_module_looks_for_moto_in_sys_modules():
    """The sandbox package (which runs moto itself) aside, no module of the tool asks whether moto is loaded."""
    for path in (ROOT / "amazonei_setup").rglob("*.py"):
        if path.parent.name == "sandbox":
            continue
        text = path.read_text()
        assert "sys.modules" not in text or "moto" not in text.split("sys.modules", 1)[1][:80], path


# ---- botocore's insides, taken away ---------------------------------------------------------------------------

# Each underscore name of botocore the tool uses on the real-AWS path: (the class holding it, the name, the speed-up
# that must give way). A child process renames it throughout the class, as a botocore release that moved it would
# (its own methods use the new name), before the tool is imported, then runs setup, list and teardown in-process
# against moto.
BOTOCORE_INSIDES = [
    ("botocore.loaders.Loader", "_find_extras", "one-service-listing"),
    ("botocore.loaders.Loader", "_extras_processor", "one-service-listing"),
    ("botocore.loaders.Loader", "_search_paths", "unique-search-paths"),
    ("botocore.loaders.JSONFileLoader", "_load_file", None),  # the override is simply never called
    ("botocore.client.ClientCreator", "_create_client_class", "client-classes"),
    ("botocore.client.ClientCreator", "_load_service_model", "service-models"),
    ("botocore.session.Session", "_register_data_loader", "sessions-share-the-loader"),
]

CHILD = r'''
import importlib, inspect, io, json, re, sys, textwrap
where, old = sys.argv[1], sys.argv[2]
new = old + "_moved"
module = importlib.import_module(where.rpartition(".")[0])
cls = getattr(module, where.rpartition(".")[2])


def rewritten(function):
    """The function with `old` renamed in its source (a decorated one is unwrapped: botocore's instance_cache keeps
    the function in its closure, without functools.wraps before 1.35), or None when it does not use the name."""
    for candidate in (function, *(c.cell_contents for c in (getattr(function, "__closure__", None) or ()))):
        if not inspect.isfunction(candidate):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(candidate))
        except (OSError, TypeError):
            continue
        moved = re.sub(rf"(?<!\w){old}\b", new, source)  # the name itself, not extra_search_paths
        if moved != source:
            defined = {}
            exec(compile(moved, inspect.getsourcefile(candidate), "exec"), vars(module), defined)
            return defined[candidate.__name__]
    return None


for name, member in list(vars(cls).items()):
    if name == old:
        continue
    if isinstance(member, property):
        getter = rewritten(member.fget)  # its source carries the @property line
        if getter is not None:
            setattr(cls, name, getter if isinstance(getter, property) else property(getter, member.fset))
    elif callable(member) and (function := rewritten(member)) is not None:
        setattr(cls, name, function)
if old in vars(cls):
    setattr(cls, new, vars(cls)[old])
    delattr(cls, old)

from moto import mock_aws
from amazonei_setup.aws import botocore_data, client as aws
from amazonei_setup.cli.main import main
from amazonei_setup.cli.environment import Environment
from amazonei_setup.sandbox.account import seed_deep_learning_amis

aws.every_session_shares_the_loader()  # what the sandbox does (a Session made from now on)
codes, out = [], io.StringIO()
with mock_aws():
    seed_deep_learning_amis("123456789012", "us-west-2")
    for argv in (["--region", "us-west-2", "--instance-type", "m5.xlarge", "--yes", "--name", "moved",
                  "--ssh-cidr", "198.51.100.4/32", "--output", "json"],
                 ["list", "--region", "us-west-2", "--output", "json"],
                 ["teardown", "--region", "us-west-2", "--name", "moved", "--yes", "--output", "json"]):
        err = io.StringIO()
        codes.append(main(argv, Environment(stdin_isatty=False, stdout=out, stderr=err, emulated=True,
                                             public_ip_lookup=lambda: "198.51.100.4", width=1000)))
        if codes[-1]:
            print(err.getvalue(), file=sys.stderr)
log = aws.start_call_log()
print(json.dumps({"codes": codes, "gave_way": sorted(botocore_data.GAVE_WAY),
                  "log": log.read_text() if log else "", "out": out.getvalue()}))
'''


@pytest.mark.slow
@pytest.mark.parametrize(("where", "name", "speed_up"), BOTOCORE_INSIDES, ids=[n for _, n, _ in BOTOCORE_INSIDES])
def test_commands_work_when_a_botocore_inside_moves(where, name, speed_up, tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "AMAZONEI_SETUP_HOME": str(tmp_path / ".amazonei-setup"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}  # models read anew, through the path under test
    done = subprocess.run([sys.executable, "-c", CHILD, where, name], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, preexec_fn=default_signal_handlers)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["codes"] == [0, 0, 0], done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "speed-up" not in found["out"]  # silent in the output
    if speed_up is None:
        assert found["gave_way"] == []
    else:
        assert found["gave_way"] == [speed_up]
        assert f"speed-up {speed_up} off" in found["log"]  # said once, in the call log
        assert found["log"].count(f"speed-up {speed_up} off") == 1


# ---- the sandbox's moto patches switch themselves off ---------------------------------------------------------

def _unapplied(monkeypatch):
    """moto as it is before moto_speed (conftest applied it for the session): each patched function its own again."""
    from moto.core import responses, serialize
    from moto.ec2.models import vpcs
    from moto.ec2.models.instance_types import InstanceTypeOfferingBackend

    if hasattr(responses.method_names_from_class, "__wrapped__"):
        monkeypatch.setattr(responses, "method_names_from_class", responses.method_names_from_class.__wrapped__)
    monkeypatch.setattr(serialize.ResponseSerializer, "get_value",
                        serialize.ResponseSerializer.get_value.moto_original)
    monkeypatch.setattr(InstanceTypeOfferingBackend, "describe_instance_type_offerings",
                        InstanceTypeOfferingBackend.describe_instance_type_offerings.moto_original)
    monkeypatch.setattr(vpcs.VPCBackend, "describe_vpc_endpoint_services",
                        vpcs.VPCBackend.describe_vpc_endpoint_services.moto_original)
    monkeypatch.setattr(vpcs.VPCBackend, "_collect_default_endpoint_services",
                        staticmethod(vpcs.VPCBackend._collect_default_endpoint_services.moto_original))
    return responses, serialize, vpcs, InstanceTypeOfferingBackend


def test_moto_speed_gives_way_to_a_moto_whose_insides_moved(monkeypatch):
    from amazonei_setup.sandbox import moto_speed

    responses, serialize, vpcs, offerings = _unapplied(monkeypatch)
    before = (serialize.ResponseSerializer.get_value, offerings.describe_instance_type_offerings,
              vpcs.VPCBackend.describe_vpc_endpoint_services)
    monkeypatch.delattr(responses, "method_names_from_class")
    monkeypatch.delattr(serialize, "AttributePickerContext")
    monkeypatch.delattr(vpcs, "COVERED_ENDPOINT_SERVICES")
    moto_speed.apply()  # no error
    assert serialize.ResponseSerializer.get_value is before[0]
    assert vpcs.VPCBackend.describe_vpc_endpoint_services is before[2]  # not half-applied
    assert offerings.describe_instance_type_offerings is not before[1]  # the one whose insides are there: applied


def test_the_sandbox_shares_no_loader_with_a_moto_that_has_none(monkeypatch):
    """moto before 5.1.x read its models without moto.core.utils.create_loader: the sandbox opens all the same."""
    import moto.core.utils
    from moto.ec2.responses._base_response import EC2BaseResponse

    from amazonei_setup.sandbox import account as sandbox

    monkeypatch.delattr(moto.core.utils, "create_loader")
    monkeypatch.delattr(EC2BaseResponse, "RESPONSE_KEY_PATH_TO_TRANSFORMER")
    sandbox._share_motos_model_loader()
    sandbox.settle_moto_races()
    assert not hasattr(moto.core.utils, "create_loader")


def test_the_sandbox_makes_no_spot_requests_with_a_moto_whose_spot_insides_moved(monkeypatch):
    """The sandbox's Spot requests (account.make_spot_requests_as_ec2_does) need moto's request_spot_instances:
    without it the patch stays off and RunInstances is moto's own."""
    from moto.ec2.models.spot_requests import SpotRequestBackend
    from moto.ec2.responses.instances import InstanceResponse

    from amazonei_setup.sandbox import account as sandbox

    run = InstanceResponse.run_instances
    monkeypatch.setattr(InstanceResponse, "run_instances", getattr(run, "moto_original", run))
    monkeypatch.delattr(SpotRequestBackend, "request_spot_instances")
    sandbox.make_spot_requests_as_ec2_does()  # no error
    assert not getattr(InstanceResponse.run_instances, "makes_spot_requests", False)
