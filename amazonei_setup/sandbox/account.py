"""`--sandbox`: run the whole tool against an in-process moto server instead of AWS.

A newcomer can try setup / list / teardown with no AWS account. Each command is its own
process, so the fake account is saved to disk when a sandbox closes and loaded again when
the next one opens:

* moto keeps every resource in plain Python objects, one `BackendDict` per service
  (`moto.backends.get_backend(name)[account_id][region]`). moto 5.2 has no export/import
  API; its "recorder" only replays the HTTP calls, which re-creates resources under new
  random ids and dates. So we pickle the accounts of the services the tool uses, all in one
  pickle (models of one service hold references into another: the autoscaling backend holds
  the EC2 one; one pickle keeps them one object), and put them back into the same
  module-level `BackendDict`s on load. Two kinds of object need help to pickle: see
  `_state_pickler`.
* A pickle is only readable by the moto version that wrote it, so the file records that
  version and a mismatch is reported, not half-loaded.
* moto's backends are process-wide: one sandbox can be open in a process at a time, and a
  lock file keeps two processes from using one state directory together.

moto is imported lazily: the CLI must start fast when `--sandbox` is not used.
"""
from __future__ import annotations

import contextlib
import copyreg
import fcntl
import functools
import hashlib
import io
import os
import pickle
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from amazonei_setup.local import paths
from amazonei_setup.sandbox import moto_speed

SANDBOX_ACCOUNT_ID = "123456789012"  # moto's default account: what the "testing" keys map to
DLAMI_OWNER_ID = "898082745236"  # the owner id awsim uses for amazon-owned DLAMIs

# (name, creation date, architecture)
DEEP_LEARNING_AMIS = (
    ("Deep Learning AMI (Amazon Linux) Version 26.0", "2020-01-10T00:00:00.000Z", "x86_64"),
    ("Deep Learning AMI (Amazon Linux) Version 44.0", "2021-06-01T00:00:00.000Z", "x86_64"),
    ("Deep Learning AMI (Amazon Linux 2) Version 61.3", "2022-04-01T00:00:00.000Z", "x86_64"),
    ("Deep Learning AMI (Ubuntu 16.04) Version 40.0", "2021-01-10T00:00:00.000Z", "x86_64"),
    ("Deep Learning AMI (Ubuntu 18.04) Version 61.3", "2022-04-01T00:00:00.000Z", "x86_64"),
    ("Deep Learning AMI Graviton (Amazon Linux 2) Version 1.0", "2022-05-01T00:00:00.000Z", "arm64"),
)

# Today's alternatives (inf2, gpu): (family, name, creation date), each family's listed oldest first; the last of
# each family is what AWS's public SSM parameter names, as in a real region. Since Neuron 2.30 (May 2026) AWS
# publishes Neuron DLAMIs for Ubuntu 24.04 only: the last Ubuntu 22.04 one stays listed, as in a real region,
# and no lookup may pick it.
ALTERNATIVE_AMIS = (
    ("inf2", "Deep Learning AMI Neuron (Ubuntu 22.04) 20260415", "2026-04-15T00:00:00.000Z"),
    ("inf2", "Deep Learning AMI Neuron (Ubuntu 24.04) 20250820", "2025-08-20T00:00:00.000Z"),
    ("inf2", "Deep Learning AMI Neuron (Ubuntu 24.04) 20260521", "2026-05-21T00:00:00.000Z"),
    ("gpu", "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20241115", "2024-11-15T00:00:00.000Z"),
    ("gpu", "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20250905", "2025-09-05T00:00:00.000Z"),
)

# Services the tool calls, plus those their backends reach into: every autoscaling backend
# holds the elb/elbv2 ones (saving one without the other restores two diverging copies), and
# an encrypted EBS volume makes EC2 create the account's `alias/aws/ebs` key in KMS.
SERVICES = ("ec2", "iam", "sts", "ssm", "cloudformation", "cloudwatch", "autoscaling", "elb", "elbv2", "kms")

STATE_FILE = "state.pickle"
LOCK_FILE = "lock"
LOCK_TIMEOUT = 30.0

class SandboxLocked(RuntimeError):
    """Another process holds the state directory (its background server, or an in-process sandbox)."""


_open_in_process = threading.Lock()  # held while a Sandbox owns moto's in-process backends


def _ami_id(region: str, name: str) -> str:
    # Stable per region and name, so seeding twice (or after a restore) finds the same image.
    return "ami-0" + hashlib.sha256(f"{region}/{name}".encode()).hexdigest()[:16]


def seed_deep_learning_amis(account_id: str, region: str) -> list[str]:
    """Register realistic Deep Learning AMIs (owner alias 'amazon') in moto's in-process EC2
    backend for that account/region; idempotent (a second call adds nothing). Returns ids."""
    from datetime import datetime

    from moto.backends import get_backend
    from moto.ec2.models.amis import Ami

    backend = get_backend("ec2")[account_id][region]
    ids = []
    for name, created, arch in DEEP_LEARNING_AMIS:
        ami_id = _ami_id(region, name)
        ids.append(ami_id)
        if ami_id in backend.amis:
            continue
        # Built like moto builds its own bundled AMIs, but with a datetime for creation_date:
        # MOTO_AMIS_PATH strings are parsed in place in a shared list and crash the second
        # region's backend (awsim's parse_timestamp patch); a datetime object never is.
        backend.amis[ami_id] = Ami(
            backend, ami_id, name=name, description=name,
            owner_id=DLAMI_OWNER_ID, owner_alias="amazon", public=True,
            image_location=f"amazon/{name}", architecture=arch,
            virtualization_type="hvm", hypervisor="xen",
            root_device_type="ebs", root_device_name="/dev/xvda",
            creation_date=datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%fZ"),
            region_name=f"{region}a",  # zone of the auto-created snapshot's volume
        )
    return ids


def seed_alternative_amis(account_id: str, region: str) -> dict[str, str]:
    """Register the Neuron and GPU Deep Learning AMIs (owner alias 'amazon', Ubuntu root device) and set AWS's
    public SSM parameters for them on moto's in-process SSM backend (moto has no /aws/service/deeplearning or
    neuron parameters, and put_parameter refuses names under /aws/); make sure the account knows the AWS managed
    policies the alternatives attach. Idempotent. Returns family -> the image id its parameter names (the
    newest)."""
    from datetime import datetime

    from moto.backends import get_backend
    from moto.core.utils import utcnow
    from moto.ec2.models.amis import Ami
    from moto.ssm.models import Parameter

    from amazonei_setup.core.catalog import FAMILIES

    backend = get_backend("ec2")[account_id][region]
    newest: dict[str, str] = {}
    for family, name, created in ALTERNATIVE_AMIS:
        ami_id = _ami_id(region, name)
        newest[family] = ami_id  # listed oldest first
        if ami_id in backend.amis:
            continue
        backend.amis[ami_id] = Ami(
            backend, ami_id, name=name, description=name,
            owner_id=DLAMI_OWNER_ID, owner_alias="amazon", public=True,
            image_location=f"amazon/{name}", architecture="x86_64",
            virtualization_type="hvm", hypervisor="xen",
            root_device_type="ebs", root_device_name="/dev/sda1",
            creation_date=datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%fZ"),
            region_name=f"{region}a",
        )
    parameters = get_backend("ssm")[account_id][region]._parameters
    for family, ami_id in newest.items():
        name = FAMILIES[family].ami_parameter
        if parameters.get(name):
            continue
        parameters[name].append(Parameter(
            account_id=account_id, name=name, value=ami_id, parameter_type="String", description=None,
            allowed_pattern=None, keyid=None, last_modified_date=utcnow(), version=1, data_type="aws:ec2:image"))
    _seed_managed_policies(account_id)
    return newest


@functools.cache
def _aws_managed_policies() -> dict:
    """moto's copy of AWS's managed policies: one JSON text of them all (~0.05 s to parse), so parsed once per
    process, not per seeded account. Read only."""
    import json

    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return json.loads(aws_managed_policies_data)


def _seed_managed_policies(account_id: str) -> None:
    """moto loads AWS's managed policies only when configured to (off by default): add the two the
    alternatives attach, from moto's own copy of AWS's policy data, so attach_role_policy finds them."""
    from moto.backends import get_backend
    from moto.iam.models import AWSManagedPolicy

    from amazonei_setup.core.catalog import FAMILY_MANAGED_POLICIES

    iam = get_backend("iam")[account_id]["global"]
    for arn in FAMILY_MANAGED_POLICIES:
        if arn in iam.managed_policies:
            continue
        name = arn.rsplit("/", 1)[1]
        policy = AWSManagedPolicy.from_data(name, account_id, "us-east-1", _aws_managed_policies()[name])
        iam.aws_managed_policies.append(policy)
        iam.managed_policies[policy.arn] = policy


class Sandbox:
    """Context manager. `with Sandbox(regions=["us-west-2"], state_dir=None) as sb:`

    Serves a fake AWS account (`sb.account_id`) on `sb.endpoint_url`; build clients with
    `boto3.client(service, endpoint_url=sb.endpoint_url, region_name=..., **sb.credentials)`
    and do not use them after the block. Waits up to `lock_timeout` seconds for another run
    on the same `state_dir` to finish, then raises RuntimeError.
    """

    def __init__(self, regions, state_dir=None, lock_timeout: float = LOCK_TIMEOUT, wrap_app=None):
        self.regions = list(regions)
        self.wrap_app = wrap_app  # WSGI middleware around moto's app (the background server's `_Gate`)
        self._discard = False
        self.state_dir = Path(state_dir) if state_dir is not None else paths.sandbox_dir()
        self.lock_timeout = lock_timeout
        self.account_id = SANDBOX_ACCOUNT_ID
        self.endpoint_url = ""
        self.credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self._server = None
        self._lock_fd = None

    def __enter__(self) -> Sandbox:
        self._lock_fd = acquire_lock(self.state_dir, self.lock_timeout)
        if not _open_in_process.acquire(blocking=False):
            release_lock(self._lock_fd)
            raise RuntimeError("Another sandbox is already open in this process; "
                               "close it before opening a second one.")
        # moto would load ~1,300 bundled images into every EC2 region it builds (~0.2 s each) and the state file
        # would carry them (1.9 MB written and read by every command); the sandbox seeds the Deep Learning AMIs a
        # user needs itself. Set only while the sandbox is open (moto reads it as it builds a region).
        self._saved_ami_setting = os.environ.get("MOTO_EC2_LOAD_DEFAULT_AMIS")
        os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
        try:
            _share_motos_model_loader()
            make_moto_behave()
            make_spot_requests_as_ec2_does()
            _load_state(self.state_dir / STATE_FILE)
            for region in self.regions:
                seed_deep_learning_amis(self.account_id, region)
                seed_alternative_amis(self.account_id, region)
            self._start_server()
        except BaseException:
            _forget_accounts()
            self._restore_ami_setting()
            _open_in_process.release()
            release_lock(self._lock_fd)
            raise
        return self

    def __exit__(self, *exc) -> None:
        # Save even when the body raised: resources it created must survive for teardown.
        try:
            if self._server is not None:
                self._server.stop()  # first, so no request changes the state while we save
                self._server = None
            if not self._discard:
                _save_state(self.state_dir / STATE_FILE)
        finally:
            _forget_accounts()  # the next sandbox in this process must start from its file
            self._restore_ami_setting()
            _open_in_process.release()
            release_lock(self._lock_fd)
            self._lock_fd = None

    def discard(self) -> None:
        """Close without saving: the state directory was reset under an open sandbox."""
        self._discard = True

    def _restore_ami_setting(self) -> None:
        if self._saved_ami_setting is None:
            os.environ.pop("MOTO_EC2_LOAD_DEFAULT_AMIS", None)
        else:
            os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = self._saved_ami_setting

    def _start_server(self) -> None:
        import logging

        # moto's verbose=False only silences moto; werkzeug would still print one line per
        # request to stderr, over the wizard's own output. Leave any level the caller set.
        werkzeug_log = logging.getLogger("werkzeug")
        if werkzeug_log.level == logging.NOTSET:
            werkzeug_log.setLevel(logging.WARNING)
        # Port 0: the OS picks a free port as the server binds, so no other process can take
        # it between a probe and the bind.
        self._server = _server_class(self.wrap_app)(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"


def make_moto_behave() -> None:
    """What the sandbox's account changes in moto, once per process (idempotent):
    * EC2 answers a RunInstances whose ClientToken it has seen with the reservation that token made; moto would
      launch again, so a retried launch (the tool sends a token for exactly that) would leave a second instance
      no real account would have;
    * moto parses botocore's model of each service it answers with a loader of its own (~0.25 s for EC2, the
      first request of each service in a process): it gets the tool's shared loader, whose models are pickled;
    * see settle_moto_races, give_ec2_vcpu_quotas and moto_speed (moto's answers, the same, faster)."""
    from moto.core import utils as moto_utils
    from moto.ec2.models.instances import InstanceBackend

    from amazonei_setup.aws.client import shared_loader

    settle_moto_races()
    give_ec2_vcpu_quotas()
    moto_speed.apply()
    if getattr(InstanceBackend.run_instances, "honours_client_token", False):
        return
    if hasattr(moto_utils, "create_loader"):  # a moto without it reads the models its own way (slower, the same)
        moto_utils.create_loader = shared_loader
    launch = InstanceBackend.run_instances

    def run_instances(self, image_id, count, user_data, security_group_names, **kwargs):
        token = kwargs.get("client_token")
        if token and token != "ABCDE":  # moto's stand-in when the request has none
            for reservation in list(self.reservations.values()):
                if any(i.client_token == token for i in reservation.instances):
                    return reservation
        return launch(self, image_id, count, user_data, security_group_names, **kwargs)

    run_instances.honours_client_token = True
    InstanceBackend.run_instances = run_instances


def make_spot_requests_as_ec2_does() -> None:
    """RunInstances with InstanceMarketOptions MarketType spot makes a Spot Instance request on AWS: the instance's
    SpotInstanceRequestId names it (EC2 API reference, Instance), and it is tagged with the launch's
    `spot-instances-request` TagSpecifications. moto only marks the instance `InstanceLifecycle: spot`, so a sandbox
    `setup --spot` had no request for status to show or teardown to cancel. In a sandbox, each Spot instance
    launched gets its request (SpotOptions' type and interruption behaviour, active and fulfilled, holding that
    instance), and a cancelled request stays listed as `cancelled`, as on AWS (moto drops it).

    Only while a Sandbox is open in this process (the sandbox server; a test that opens one): the in-process tests
    of the Spot path make the request themselves (tests/test_spot.py) and must not get a second one. Idempotent;
    skipped for a moto whose names it needs moved (the sandbox then has no Spot requests, as before)."""
    try:
        from moto.ec2.exceptions import EC2ClientError
        from moto.ec2.models.spot_requests import SpotInstanceRequest, SpotRequestBackend
        from moto.ec2.responses.instances import InstanceResponse

        run = InstanceResponse.run_instances
        launch = SpotInstanceRequest.launch_instance
        cancel = SpotRequestBackend.cancel_spot_instance_requests
        SpotRequestBackend.request_spot_instances, InstanceResponse._parse_tag_specification  # noqa: B018
    except (ImportError, AttributeError):
        return
    if getattr(run, "makes_spot_requests", False):
        return
    launched = threading.local()  # the instance RunInstances launched, which the request being made holds

    def launch_instance(self):
        instance = getattr(launched, "instance", None)
        return instance if instance is not None else launch(self)

    def run_instances(self):
        result = run(self)
        market = self._get_param("InstanceMarketOptions", {}) or {}
        if not _open_in_process.locked() or market.get("MarketType") != "spot":
            return result
        options = market.get("SpotOptions", {}) or {}
        tag_specs = self._parse_tag_specification()
        for instance in result.result.instances:
            if getattr(instance, "spot_instance_request_id", None):  # a retried launch (ClientToken): its request
                continue
            groups = {g.id for g in instance.security_groups}
            groups |= {g.id for nic in instance.nics.values() for g in nic.group_set}
            launched.instance = instance
            try:
                (request,) = self.ec2_backend.request_spot_instances(
                    price=options.get("MaxPrice", ""), image_id=instance.image_id, count=1,
                    spot_instance_type=options.get("SpotInstanceType", "one-time"), valid_from=None,
                    valid_until=options.get("ValidUntil"), launch_group=None, availability_zone_group=None,
                    key_name=instance.key_name, security_groups=sorted(groups), user_data=None,
                    instance_type=instance.instance_type, placement=instance.placement.zone, kernel_id=None,
                    ramdisk_id=None, monitoring_enabled=instance.monitored, subnet_id=instance.subnet_id,
                    tags=tag_specs, instance_interruption_behaviour=options.get("InstanceInterruptionBehavior"))
            except (TypeError, KeyError, AttributeError):  # moto's Spot model changed: the launch stands, as moto's
                return result
            finally:
                launched.instance = None
            instance.spot_instance_request_id = request.id  # RunInstances' and DescribeInstances' SpotInstanceRequestId
        return result

    def cancel_spot_instance_requests(self, request_ids):
        if not _open_in_process.locked():
            return cancel(self, request_ids)
        missing = [i for i in request_ids if i not in self.spot_instance_requests]
        if missing:
            raise EC2ClientError("InvalidSpotInstanceRequestID.NotFound",
                                 f"The spot instance request ID '{missing[0]}' does not exist")
        requests = [self.spot_instance_requests[i] for i in request_ids]
        for request in requests:
            # EC2 User Guide, "Spot request status codes": cancelling leaves the instance running (teardown
            # terminates it next); AWS keeps listing the request for a while, moto would drop it at once
            request.state = "cancelled"
            request._status_code = "request-canceled-and-instance-running"
            request.status_message = "You canceled the Spot Instance request while the Spot Instance is still running."
        return requests

    run_instances.makes_spot_requests = True
    run_instances.moto_original = run
    launch_instance.moto_original = launch
    cancel_spot_instance_requests.moto_original = cancel
    InstanceResponse.run_instances = run_instances
    SpotInstanceRequest.launch_instance = launch_instance
    SpotRequestBackend.cancel_spot_instance_requests = cancel_spot_instance_requests


# The emulated account's On-Demand vCPU quotas (moto's Service Quotas knows only VPC's and answers NoSuchResource
# for EC2's, which setup's quota check would report as unchecked on every sandbox run): an established account's.
SANDBOX_VCPU_QUOTAS = {"L-1216C47A": ("Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", 512.0),
                       "L-DB2E81BA": ("Running On-Demand G and VT instances", 256.0),
                       "L-1945791B": ("Running On-Demand Inf instances", 256.0),
                       "L-417A185B": ("Running On-Demand P instances", 256.0),
                       # the Spot vCPU quotas (capacity.SPOT_OF), for setup --spot
                       "L-34B43A08": ("All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests", 512.0),
                       "L-3819A6DF": ("All G and VT Spot Instance Requests", 256.0),
                       "L-B5D1601B": ("All Inf Spot Instance Requests", 256.0),
                       "L-7212CCBC": ("All P Spot Instance Requests", 256.0)}


def give_ec2_vcpu_quotas() -> None:
    """moto's get_service_quota answers EC2's vCPU quotas (SANDBOX_VCPU_QUOTAS), as a real account's would."""
    from moto.servicequotas.models import ServiceQuotasBackend

    if getattr(ServiceQuotasBackend.get_service_quota, "knows_ec2", False):
        return
    original = ServiceQuotasBackend.get_service_quota

    def get_service_quota(self, service_code: str, quota_code: str) -> dict:
        if service_code == "ec2" and quota_code in SANDBOX_VCPU_QUOTAS:
            name, value = SANDBOX_VCPU_QUOTAS[quota_code]
            return {"ServiceCode": "ec2", "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
                    "QuotaArn": f"arn:aws:servicequotas:{self.region_name}:{self.account_id}:ec2/{quota_code}",
                    "QuotaCode": quota_code, "QuotaName": name, "Value": value, "Unit": "None", "Adjustable": True,
                    "GlobalQuota": False}
        return original(self, service_code, quota_code)

    get_service_quota.knows_ec2 = True
    ServiceQuotasBackend.get_service_quota = get_service_quota


def settle_moto_races() -> None:
    """moto's DescribeKeyPairs adds a key to a dict shared by every EC2 response the first time it runs; an EC2
    reply being serialized on another thread at that moment fails ("dictionary changed size during iteration",
    an HTTP 500 the tool reports as an unreadable reply). The tool's look-ups run concurrently, so add the key
    up front (moto's own default for it: the public key is left out)."""
    try:
        from moto.core.serialize import never_return
        from moto.ec2.responses._base_response import EC2BaseResponse

        transformers = EC2BaseResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER
    except (ImportError, AttributeError):  # a moto without that shared dict has no such race
        return
    transformers.setdefault("DescribeKeyPairsResult.KeyPairs.KeyPairInfo.PublicKey", never_return)


def _share_motos_model_loader() -> None:
    """moto makes a new botocore loader for every model it reads (each service's API and paginators), and a new
    loader first lists every service on disk: ~1 s of every sandbox command. One loader serves them all, and
    moto's botocore Sessions (regions and zones) share the tool's."""
    import moto.core.utils

    from amazonei_setup.aws.client import every_session_shares_the_loader

    create = getattr(moto.core.utils, "create_loader", None)  # moto before 5.1.x: none, nothing to share
    if create is not None and not hasattr(create, "cache_info"):
        moto.core.utils.create_loader = functools.cache(create)
    every_session_shares_the_loader()


def _server_class(wrap_app=None):
    from moto.server import ThreadedMotoServer

    class _QuickStopServer(ThreadedMotoServer):
        """ThreadedMotoServer whose stop() returns in ~50 ms instead of ~500 ms.

        moto's `_server_entry` calls `serve_forever()` with the default 0.5 s poll interval,
        and `shutdown()` waits for the next poll: every sandbox command paid half a second
        on exit. Same body as moto 5.2's, with a shorter poll interval. stop() also closes
        the listening socket, which moto leaves open.
        """

        def _server_entry(self) -> None:
            from moto.moto_server.werkzeug_app import (
                DomainDispatcherApplication,
                create_backend_app,
            )
            from werkzeug.serving import make_server

            app = DomainDispatcherApplication(create_backend_app)
            if wrap_app is not None:
                app = wrap_app(app)
            self._server = make_server(self._ip_address, self._port, app, True)
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=0.05)

        def stop(self) -> None:
            super().stop()
            if self._server is not None:
                self._server.server_close()

    return _QuickStopServer


def acquire_lock(state_dir: Path, timeout: float) -> int:
    # flock, not a lock file's mere existence: the kernel drops it when its process dies, so
    # a crashed run never leaves the sandbox locked.
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # we unpickle what is in there
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise SandboxLocked(
                    f"Another sandbox run is using {state_dir} and did not finish within "
                    f"{timeout:g} seconds; wait for it to end and try again.") from None
            time.sleep(0.05)


def release_lock(fd) -> None:
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _imported_services() -> list[str]:
    # A service moto has not imported holds no state; importing it only to learn that costs
    # time on every command (cloudformation alone pulls in ~0.3 s of other services).
    return [name for name in SERVICES if f"moto.{name}" in sys.modules]


def _backend_dicts(names) -> dict:
    from moto.backends import get_backend

    return {name: get_backend(name) for name in names}


def _moto_version() -> str:
    import moto

    return moto.__version__


def _forget_accounts() -> None:
    # Drop every account of our services from moto's in-process backends; the next access
    # builds a fresh account (default VPC and all), as in a new process.
    for backend_dict in _backend_dicts(_imported_services()).values():
        backend_dict.clear()


def _any_stack(backend_dict) -> bool:
    """A cloudformation state without stacks is left out of the file: loading it imports moto's CloudFormation
    (and through it API Gateway and an OpenAPI validator), ~1.2 s of every later command. No other service's
    objects refer to it."""
    return any(getattr(regional, "stacks", None) for account in backend_dict.values() for regional in account.values())


def _load_state(path: Path) -> None:
    _forget_accounts()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    advice = f"start a fresh sandbox with `rm -rf {path.parent}`"
    try:
        state = pickle.loads(data)
        version, services = state["moto"], state["services"]
    except Exception as e:  # truncated or foreign file: say what to do, not a pickle trace
        raise RuntimeError(f"The saved sandbox state cannot be read ({e}); {advice}.") from e
    if version != _moto_version():
        raise RuntimeError(f"The saved sandbox state was written by moto {version} and this "
                           f"is moto {_moto_version()}; {advice}.")
    for name, backend_dict in _backend_dicts(services).items():
        for account_id, account_backend in services[name].items():
            backend_dict[account_id] = account_backend
        # Registered like a BackendDict moto filled itself, so mock_aws's reset sees it.
        type(backend_dict)._instances.append(backend_dict)


def _state_pickler(buf) -> pickle.Pickler:
    """A pickler for moto's backends, with the two reductions they need and lack.

    * defaultdicts: moto's SSM backend keeps `_resource_tags = defaultdict(lambda:
      defaultdict(dict))` (a lambda cannot be pickled) and `ParameterDict`, a defaultdict
      subclass whose `__init__` takes other arguments than the factory that defaultdict's own
      reduce passes it (and that reduce drops its attributes).
    * private keys: every KMS key (the `alias/aws/ebs` key an encrypted volume creates, too)
      holds a `cryptography` key object, which cannot be pickled; it is saved as DER.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    private_key_types = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)

    class StatePickler(pickle.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, defaultdict):
                return _reduce_defaultdict(obj)
            if isinstance(obj, private_key_types):
                der = obj.private_bytes(serialization.Encoding.DER,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
                return _load_private_key, (der,)
            return NotImplemented

    return StatePickler(buf, protocol=pickle.HIGHEST_PROTOCOL)


def _load_private_key(der: bytes):
    # A Python-level function to name in the pickle: cryptography's loader is a Rust builtin
    # whose module pickle cannot import by name.
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    return load_der_private_key(der, password=None)


def _reduce_defaultdict(d: defaultdict):
    factory = d.default_factory
    if getattr(factory, "__name__", None) == "<lambda>":
        # Replace a `lambda: defaultdict(X)` with an equal, picklable partial.
        sample = factory()
        if type(sample) is not defaultdict:
            raise pickle.PicklingError(f"cannot save a defaultdict whose factory is {factory}")
        factory = functools.partial(defaultdict, sample.default_factory)
    # Rebuilt with cls.__new__ (no __init__), then its attributes and the factory set, then
    # its items added: the route pickle takes for any plain dict subclass.
    state = (getattr(d, "__dict__", None), {"default_factory": factory})
    return copyreg.__newobj__, (type(d),), state, None, iter(d.items())


def _save_state(path: Path) -> None:
    services = {name: dict(backend_dict)
                for name, backend_dict in _backend_dicts(_imported_services()).items()
                if backend_dict and not (name == "cloudformation" and not _any_stack(backend_dict))}
    buf = io.BytesIO()
    _state_pickler(buf).dump({"moto": _moto_version(), "services": services})
    data = buf.getvalue()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
