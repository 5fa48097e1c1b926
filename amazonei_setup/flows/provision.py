"""Execute a Plan: create or reuse every resource, launch, wait; roll back on any failure.

The steps form a small dependency graph, run on a thread pool so independent branches overlap:

    role ─────────┬─> put policy ──────────────┐
    profile ──────┴─> add role to profile ─────┤
    key pair ──────────────────────────────────┼─> run_instances ─> wait running ─┐
    security group ─┬─> authorize ingress ─────┘                                  ├─> done
    VPC DNS check ──┴─> EI endpoint (create/join) ─> wait available ──────────────┘

Every AWS call runs in a worker; the main thread only waits. A failure or Ctrl-C sets the
cancel flag, lets in-flight calls finish (so whatever they created is journaled), then deletes
what this run created, newest first. Resources are tagged at creation, so even a killed process
leaves nothing that `teardown` cannot find. Nothing here prints: progress goes to `report`.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from pathlib import Path

from botocore.exceptions import ClientError

from amazonei_setup.aws.client import Aws, error_code, error_message, explain, explain_safely
from amazonei_setup.aws.concurrency import Cancelled, cancellable_sleep, run_concurrently, run_graph
from amazonei_setup.aws.resources import alarm, iam, keypair, network, quota
from amazonei_setup.aws.resources import instance as instances
from amazonei_setup.aws.waiting import WaitTimeout, wait_for
from amazonei_setup.core import access, capacity, catalog, interrupts, shell, tags
from amazonei_setup.core.errors import AwsError, Interrupted, ToolError, UsageError, stopped_by
from amazonei_setup.core.events import Event, Reporter, ignore
from amazonei_setup.core.plan import Plan, teardown_command
from amazonei_setup.flows.teardown import instance_state_or_gone

INSTANCE_TIMEOUT = 600.0
ENDPOINT_TIMEOUT = 600.0


@dataclass
class Record:
    kind: str
    id: str
    action: str  # created / reused / updated
    detail: dict = field(default_factory=dict)


class Journal:
    """What this run created, reused or changed; thread-safe. Rollback reads it backwards."""

    def __init__(self):
        self.records: list[Record] = []
        self._lock = threading.Lock()

    def add(self, kind: str, id_: str, action: str, **detail) -> Record:
        record = Record(kind, id_, action, detail)
        with self._lock:
            self.records.append(record)
        return record

    def forget(self, record: Record) -> None:
        """A change undone during the run itself (a zone's subnet added to the endpoint, removed when the zone
        refused the launch): the rollback must not undo it again."""
        with self._lock:
            self.records.remove(record)

    def created(self) -> list[Record]:
        with self._lock:
            return [r for r in self.records if r.action == "created" or r.kind == "vpc-endpoint-membership"]


def _identity(key_path: str | None) -> str:
    """`-i KEY ` (shell-quoted: a key directory with a space or a `$(...)` in it stays one word), or nothing when the
    key is not known (ssh then offers the agent's and the default keys)."""
    return f"-i {shell.path(key_path)} " if key_path else ""


def _proxy(proxy: str | None) -> str:
    """`-o ProxyCommand=...` (Session Manager), one shell word, or nothing."""
    return f"-o {shell.word(f'ProxyCommand={proxy}')} " if proxy else ""


def _port(port: int) -> str:
    """`-p PORT ` for a port other than 22 (a sandbox instance's own), or nothing."""
    return f"-p {int(port)} " if port and port != SSH_PORT else ""


def ssh_command(key_path: str | None, user: str, host: str, proxy: str | None = None, port: int = 22) -> str:
    """proxy: the Session Manager ProxyCommand; host is then the instance id."""
    return f"ssh {_identity(key_path)}{_proxy(proxy)}{_port(port)}{shell.word(f'{user}@{host}')}"


def port_forward_command(key_path: str | None, user: str, host: str, proxy: str | None = None,
                         port: int = 22) -> str:
    """Jupyter on the instance's port 8888, reached at localhost:8888."""
    return (f"ssh {_identity(key_path)}{_proxy(proxy)}{_port(port)}-L 8888:localhost:8888 "
            f"{shell.word(f'{user}@{host}')}")


def _addressed(plan: Plan, instance) -> bool:
    """Reachable as planned: a public address, or (--no-public-ip) none is coming and Session Manager needs none."""
    return bool(instance.host) or not plan.public_ip


def _host(plan: Plan, instance) -> str:
    """Where ssh connects: the instance id through Session Manager, else its address."""
    return instance.id if plan.via_ssm else instance.host


@dataclass(frozen=True)
class SetupResult:
    plan: Plan
    instances: list[instances.InstanceInfo]  # every instance of the deployment, in launch order
    resources: list[dict]
    key_path: str | None
    stack_name: str | None = None  # set when CloudFormation holds the deployment (export --deploy)
    stack_outputs: dict = field(default_factory=dict)
    waited_for: list[str] = field(default_factory=lambda: [WAIT_RUNNING, WAIT_EI])  # what is known true (--wait)
    availability_zone: str = ""  # where the instances run (another than the plan's after a zone refused)
    skipped_zones: list[dict] = field(default_factory=list)  # {zone, subnet_id, reason} of each zone that refused
    spot_refused: str = ""  # --spot auto fell back to On-Demand: why EC2 refused Spot

    @property
    def market(self) -> str:
        """What the deployment runs on: "spot" or "on-demand" (mixed only if instances were found, not launched)."""
        markets = {i.market for i in self.instances}
        return markets.pop() if len(markets) == 1 else "mixed"

    @property
    def instance(self) -> instances.InstanceInfo:
        return self.instances[0]

    @property
    def shortfall(self) -> int:
        """How many fewer instances than --count EC2 launched (only possible with --min-count)."""
        return max(self.plan.count - len(self.instances), 0)

    def ssh_command_for(self, instance: instances.InstanceInfo) -> str:
        return ssh_command(self.key_path, self.plan.ssh_user, _host(self.plan, instance), self.plan.proxy_command,
                           instance.ssh_port)

    @property
    def ssh_command(self) -> str:
        return self.ssh_command_for(self.instance)

    @property
    def port_forward_command(self) -> str:
        return port_forward_command(self.key_path, self.plan.ssh_user, _host(self.plan, self.instance),
                                    self.plan.proxy_command, self.instance.ssh_port)

    def complete_sentence(self, teardown: str) -> str:
        """What a run stopped after this result says: the deployment exists, whole, and the next commands."""
        ids = ", ".join(i.id for i in self.instances)
        return (f"deployment {self.plan.name} is complete and running in {self.plan.region} ({ids}). Connect: "
                f"{self.ssh_command}  Remove it: {teardown}")

    def to_dict(self) -> dict:
        # "family" only for today's alternatives, and the fleet keys only with --count: a single EI result
        # keeps exactly the keys it always had.
        fleet = {}
        if self.plan.count > 1 or len(self.instances) > 1:
            fleet = {"requested_count": self.plan.count, "launched_count": len(self.instances),
                     "instances": [{"instance_id": i.id, "state": i.state, "public_dns": i.public_dns,
                                    "public_ip": i.public_ip, "ssh_command": self.ssh_command_for(i),
                                    **_sandbox_address(i)}
                                   for i in self.instances]}
        return {
            "name": self.plan.name, "region": self.plan.region, "instance_id": self.instance.id,
            "state": self.instance.state, "instance_type": self.plan.instance_type,
            "accelerator_type": self.plan.accelerator_type,
            **({"family": self.plan.family} if self.plan.family else {}),
            "public_dns": self.instance.public_dns,
            "public_ip": self.instance.public_ip, **_sandbox_address(self.instance),
            "ssh_user": self.plan.ssh_user, "key_path": self.key_path,
            "ssh_command": self.ssh_command, "port_forward_command": self.port_forward_command,
            "hourly_usd": self.plan.hourly_usd, **fleet,
            **({"idle_stop_minutes": self.plan.idle_stop_minutes} if self.plan.idle_stop_minutes else {}),
            # Spot keys only when Spot was asked for or runs: an On-Demand result keeps the keys it always had.
            **({"spot": self.plan.spot, "market": self.market, "spot_hourly_usd": self.plan.spot_hourly_usd,
                **({"spot_refused": self.spot_refused} if self.spot_refused else {})}
               if self.plan.spot or self.market != "on-demand" else {}),
            **({"stack_name": self.stack_name, "stack_outputs": self.stack_outputs} if self.stack_name else {}),
            "resources": self.resources, "waited_for": self.waited_for,
            "availability_zone": self.availability_zone or self.plan.availability_zone,
            "skipped_zones": self.skipped_zones,
        }


SPOT_REQUEST = "spot-request"  # the journal's and teardown's name for a Spot Instance request


def _sandbox_address(instance) -> dict:
    """A sandbox instance's SSH server is on this machine: its address is 127.0.0.1 and its own port."""
    return {"ssh_address": f"127.0.0.1:{instance.ssh_port}"} if is_sandboxed(instance) else {}


class Run:
    """One provisioning run: clients, plan, journal, cancel flag."""

    def __init__(self, aws: Aws, plan: Plan, report: Reporter, sleep: Callable[[float], None] | None,
                 account_flags: str = ""):
        self.aws, self.plan, self.report = aws, plan, report
        self.account_flags = account_flags
        self.teardown: str | None = None  # the teardown command to print, when the CLI gave it
        self.wait = default_wait(plan)  # what the run waits for (--wait)
        self.ec2, self.iam = aws.ec2, aws.iam
        self.journal = Journal()
        self.cancel = threading.Event()
        self._sleep = sleep
        self.sleep = cancellable_sleep(self.cancel, sleep)  # wakes up (and stops the worker) on cancel
        self.client_token = f"amazonei-setup-{uuid.uuid4()}"
        # Zone failover: where a refused launch may go next, whether --subnet-id pinned the zone, the EI
        # endpoint (the step that makes it sets it: a launch in another zone must first add that zone's subnet).
        self.failover: capacity.Failover | None = None
        self.subnet_pinned = False
        self.endpoint_id: str | None = None
        self.endpoint_known = threading.Event()
        self.zone = capacity.Zone(plan.subnet_id, plan.availability_zone)
        self.skipped_zones: list[dict] = []
        self.endpoint_changed = False  # a zone's subnet was added to the endpoint: it is pending again for a while
        self.market = "on-demand"  # what the launched instances run on (--spot auto may end On-Demand)
        self.spot_refused = ""  # why EC2 refused Spot, when --spot auto fell back to On-Demand
        # Recorded on every create before it is sent (see tags.RUN): the intent survives a lost reply.
        self.tags = tags.tag_list(plan.name, plan.owner, plan.region) + [{"Key": tags.RUN, "Value": self.client_token}]

    def made_by_this_run(self, found: dict | None) -> bool:
        return found is not None and tags.as_dict(found.get("Tags")).get(tags.RUN) == self.client_token

    def plain_sleep(self, seconds: float) -> None:
        """For rollback, which must keep waiting after the cancel flag is set."""
        (self._sleep or time.sleep)(seconds)

    def checkpoint(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()


WAIT_RUNNING, WAIT_EI, WAIT_SSH = "running", "ei", "ssh"
WAITS = (WAIT_RUNNING, WAIT_EI, WAIT_SSH)  # --wait: each includes the ones before it
SSH_PORT = 22
SSH_TIMEOUT = 600.0  # a DLAMI's sshd usually answers within a minute or two of `running`


def default_wait(plan: Plan) -> str:
    """What a run waits for unless told: everything the deployment needs (the EI endpoint, when it has one)."""
    return WAIT_EI if plan.accelerator_type else WAIT_RUNNING


def provision(aws: Aws, plan: Plan, report: Reporter = ignore, *,
              sleep: Callable[[float], None] | None = None, account_flags: str = "",
              teardown: str | None = None, wait: str | None = None, failover: capacity.Failover | None = None,
              subnet_pinned: bool = False) -> SetupResult:
    """account_flags: how the CLI addresses this account (" --sandbox", " --profile p"), for the
    teardown command a failed rollback prints; teardown: that whole command as the CLI would print it
    (the program name as the user invoked it), when the caller knows it. wait: what the run waits for (WAITS;
    default_wait(plan) when None): `running` ends once the instances run (an EI endpoint may still be pending),
    `ei` waits for the endpoint too, `ssh` also until each instance's SSH port accepts a connection.
    failover: the other zones' subnets a launch may move to when its zone refuses (capacity.failover_zones); None or
    empty: none. subnet_pinned: --subnet-id named the subnet, so a refusal says so instead of moving."""
    aws.preload("ec2", "iam", *(("cloudwatch",) if plan.idle_stop_minutes else ()))
    run = Run(aws, plan, report, sleep, account_flags)
    run.teardown = teardown
    run.wait = wait or default_wait(plan)
    run.failover, run.subnet_pinned = failover, subnet_pinned
    pool = _TrackedPool(max_workers=8, thread_name_prefix="provision")
    try:
        result = _execute(run, pool)
        # From here on a signal must not roll back or hide a complete deployment (interrupts.py).
        interrupts.finishing(result.complete_sentence(teardown or teardown_command(plan.region, plan.name,
                                                                                    account_flags)))
    except BaseException as failure:
        run.cancel.set()
        hurried = _finish_inflight(pool)
        raise _rolled_back(run, failure, hurried=hurried) from (
            failure if not isinstance(failure, KeyboardInterrupt) else None)
    pool.shutdown(wait=True)
    return result


class _TrackedPool(ThreadPoolExecutor):
    """A pool that remembers its futures: waiting for them is what "the calls in flight have finished" means.
    (Thread.join, which shutdown uses, can return early once a signal has interrupted it: Python 3.11 then marks
    the thread stopped while it still runs, and an in-flight run_instances would launch after the rollback.)"""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.futures: list[Future] = []

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future = super().submit(fn, *args, **kwargs)
        self.futures.append(future)
        return future


def _finish_inflight(pool: _TrackedPool) -> bool:
    """Wait for the calls in flight (waits stop at their next pause), so whatever they create is journaled:
    a run_instances in flight may be launching an instance. A further signal does not cut this short (the
    instance would be abandoned unnamed); it returns True, and the rollback is then skipped and what is left
    named instead."""
    hurried = False
    for future in list(pool.futures):
        if not future.running():
            future.cancel()  # not started: it never will be
    while True:
        try:
            pending = [f for f in pool.futures if not f.done()]
            if not pending:
                pool.shutdown(wait=False)
                return hurried
            wait_futures(pending, timeout=0.1)
        except KeyboardInterrupt:
            hurried = True


def _execute(run: Run, pool: ThreadPoolExecutor) -> SetupResult:
    """The setup graph (docs/ARCHITECTURE.md draws it): each step starts once what it needs is done."""
    plan = run.plan
    steps = {
        "role": ((), lambda _: _ensure_role(run)),
        "profile": ((), lambda _: _ensure_profile(run)),
        "key": ((), lambda _: _ensure_key(run)),
        "group": ((), lambda _: _ensure_group(run)),
        "policy": (("role",), lambda _: _put_policy(run)),
        "link": (("role", "profile"), lambda _: _link_profile(run)),
        "ingress": (("group",), lambda done: _converge_ingress(run, done["group"])),
        "launch": (("policy", "link", "key", "group"), lambda done: _launch(run, done["group"])),
        "running": (("launch",), lambda done: _running_and_served(run, done["launch"])),
    }
    if plan.accelerator_type or plan.ssm_endpoints:  # private DNS (EI's, Session Manager's endpoints) needs it
        steps["vpc-dns"] = ((), lambda _: _ensure_vpc_dns(run))
    if plan.ssm_endpoints:
        steps["ssm-endpoints"] = (("group", "vpc-dns"), lambda done: _ensure_ssm_endpoints(run, done["group"]))
        if run.wait != WAIT_RUNNING:  # the agent registers only once they answer: "ready" waits for them
            steps["ssm-endpoints-available"] = (("ssm-endpoints",),
                                                lambda done: _wait_ssm_endpoints(run, done["ssm-endpoints"]))
    if plan.accelerator_type:
        steps["endpoint"] = (("group", "vpc-dns"), lambda done: _ensure_endpoint(run, done["group"]))
        if run.wait != WAIT_RUNNING:
            steps["endpoint-available"] = (("endpoint",), lambda done: _wait_endpoint(run, done["endpoint"]))
    if run.wait == WAIT_SSH:
        steps["ssh"] = (("running", "ingress"), lambda done: _wait_ssh(run, done["running"]))
    if plan.idle_stop_minutes:
        steps["idle-alarm"] = (("running",), lambda done: _ensure_idle_alarms(run, done["running"]))
    done = run_graph(steps, pool, before_each=run.checkpoint)
    resources = [{"kind": r.kind, "id": r.id, "action": r.action,
                  **({"service": r.detail["service"]} if "service" in r.detail else {})}  # Session Manager's
                 for r in run.journal.records if r.kind != "vpc-endpoint-membership"]
    waited = [WAIT_RUNNING] + ([WAIT_EI] if "endpoint-available" in done else []) + \
        ([WAIT_SSH] if "ssh" in done else [])
    return SetupResult(plan, done["running"], resources, plan.key_path, waited_for=waited,
                       availability_zone=run.zone.az, skipped_zones=list(run.skipped_zones),
                       spot_refused=run.spot_refused)


def _ensure_idle_alarms(run: Run, running: list[instances.InstanceInfo]) -> None:
    """One idle auto-stop alarm per instance (resources/alarm.py says how "idle" is decided), after the instance
    runs: its metrics exist only from then on. Journaled before PutMetricAlarm is sent, so a reply lost to a
    failure or a signal still leaves a record the rollback deletes (deleting an alarm that never came is a no-op)."""
    plan = run.plan
    minutes = plan.idle_stop_minutes
    before = dict(plan.idle_alarms_before)
    cloudwatch = run.aws.client("cloudwatch")
    for each in running:
        run.checkpoint()
        name = alarm.alarm_name(plan.name, each.id)
        if before.get(each.id) == minutes:
            run.journal.add(alarm.KIND, name, "reused")
            continue
        action = "updated" if each.id in before else "created"
        run.journal.add(alarm.KIND, name, action, was=before.get(each.id))
        alarm.put_alarm(cloudwatch, plan.name, each.id, plan.region, minutes, run.tags)
        verb = "Set" if action == "updated" else "Created"
        run.report(Event(action, alarm.KIND, f"{verb} idle auto-stop for {each.id}: stopped after {minutes} idle "
                                             f"minutes ({name})", name))


# ---- steps ---------------------------------------------------------------------------------

def _adopt_or_refuse(run: Run, kind: str, name: str, found: dict | None) -> None:
    """A resource with our deterministic name exists: reuse it only if it is this deployment's, in this region."""
    plan = run.plan
    if found is None or not tags.is_ours(found.get("Tags"), plan.name):
        raise UsageError(f"An {kind} named {name} already exists and was not created by amazonei-setup for "
                         f"deployment '{plan.name}': choose another --name.")
    home = tags.home_region(found.get("Tags"))
    if home and home != plan.region:
        # IAM is global: adopting would rewrite the policy of a live deployment elsewhere.
        raise UsageError(f"Deployment '{plan.name}' lives in {home} (its {kind} {name} says so), and a name is one "
                         f"deployment in the account: pass --region {home} to converge it, or choose another --name.")
    if home is None and kind in ("iam-role", "instance-profile") and not plan.exists:
        # Made before pieces carried their region, and nothing of the deployment is in this region.
        raise UsageError(f"The {kind} {name} of deployment '{plan.name}' exists but nothing else of it is in "
                         f"{plan.region}: if it lives in another region pass that --region; otherwise remove it with "
                         f"`teardown --name {plan.name}` in its region, or choose another --name.")
    run.journal.add(kind, name, "reused")
    run.report(Event("reused", kind, f"Reusing {kind} {name}", name))


def _create_or_adopt(run: Run, kind: str, label: str, name: str, create: Callable, get: Callable) -> None:
    """Create optimistically (no look-up round trip on a fresh setup); on "already exists", adopt
    it only if its tags say it is this deployment's."""
    try:
        create(run.iam, name, run.tags)
    except ClientError as err:
        if error_code(err) != "EntityAlreadyExists":
            raise
        found = get(run.iam, name)
        if not run.made_by_this_run(found):
            _adopt_or_refuse(run, kind, name, found)
            return
    run.journal.add(kind, name, "created")
    run.report(Event("created", kind, f"Created {label} {name}", name))


def _ensure_role(run: Run) -> None:
    _create_or_adopt(run, "iam-role", "IAM role", run.plan.role_name, iam.create_role, iam.get_role)


def _ensure_profile(run: Run) -> None:
    _create_or_adopt(run, "instance-profile", "instance profile", run.plan.profile_name,
                     iam.create_instance_profile, iam.get_instance_profile)


def _put_policy(run: Run) -> None:
    # Put on every run: idempotent, and it converges a policy someone edited by hand.
    if run.plan.family:  # today's alternatives: AWS's managed SSM and CloudWatch agent policies, nothing else
        iam.attach_managed_policies(run.iam, run.plan.role_name, catalog.FAMILY_MANAGED_POLICIES)
        return
    if run.plan.via_ssm:  # the SSM agent registers with the instance's role: Session Manager's managed policy
        iam.attach_managed_policies(run.iam, run.plan.role_name, (access.SSM_CORE_POLICY,))
    elif run.plan.access_before == access.SSM:  # back to port 22: the role no longer needs it
        iam.detach_role_policy(run.iam, run.plan.role_name, access.SSM_CORE_POLICY)
    policy = iam.ei_policy(run.plan.region, run.plan.account_id) if run.plan.accelerator_type else None
    if policy:
        iam.put_policy(run.iam, run.plan.role_name, policy)


def _link_profile(run: Run) -> None:
    iam.add_role_to_profile(run.iam, run.plan.profile_name, run.plan.role_name)


def _ensure_key(run: Run) -> None:
    plan = run.plan
    if not plan.create_key:
        run.journal.add("key-pair", plan.key_name, "reused")
        return
    if plan.replace_key:  # ours, for this deployment, unused, and useless without its private key
        keypair.delete_key_pair(run.ec2, plan.key_name)
        run.report(Event("deleted", "key-pair", f"Deleted key pair {plan.key_name}: its private key was not at "
                                                f"{plan.key_path}", plan.key_name))
    aside = Path(plan.key_set_aside) if plan.key_set_aside else None
    try:
        keypair.create_key_pair(run.ec2, plan.key_name, Path(plan.key_path), run.tags, set_aside=aside)
    except ClientError as err:
        found = keypair.find_key_pair(run.ec2, plan.key_name) if error_code(err) == "InvalidKeyPair.Duplicate" else None
        if not run.made_by_this_run(found):
            raise
        # This run's create went through but its reply (the only copy of the private key) was lost: the key pair
        # is useless, so make it again.
        keypair.delete_key_pair(run.ec2, plan.key_name)
        keypair.create_key_pair(run.ec2, plan.key_name, Path(plan.key_path), run.tags, set_aside=aside)
    run.journal.add("key-pair", plan.key_name, "created", pem=plan.key_path)
    run.report(Event("created", "key-pair", f"Created key pair {plan.key_name}; private key saved to {plan.key_path}",
                     plan.key_name))


def _ensure_group(run: Run) -> str:
    plan = run.plan
    if plan.security_group_id:
        run.journal.add("security-group", plan.security_group_id, "reused")
        run.report(Event("reused", "security-group", f"Reusing security group {plan.security_group_id}",
                         plan.security_group_id))
        return plan.security_group_id
    try:
        group_id = network.create_security_group(run.ec2, plan.vpc_id, plan.name, run.tags + _access_tag(plan))
    except ClientError as err:
        if error_code(err) != "InvalidGroup.Duplicate":
            raise
        found = run.ec2.describe_security_groups(Filters=[
            {"Name": "vpc-id", "Values": [plan.vpc_id]},
            {"Name": "group-name", "Values": [plan.security_group_name]}])["SecurityGroups"]
        if not run.made_by_this_run(found[0] if found else None):
            _adopt_or_refuse(run, "security-group", plan.security_group_name, found[0] if found else None)
            return found[0]["GroupId"]
        group_id = found[0]["GroupId"]  # this run's own create, whose reply was lost: roll it back like any other
    run.journal.add("security-group", group_id, "created")
    run.report(Event("created", "security-group", f"Created security group {group_id} ("
                     + ("no inbound SSH: Session Manager" if plan.via_ssm else f"SSH from {plan.ssh_cidr}") + ")",
                     group_id))
    return group_id


def _converge_ingress(run: Run, group_id: str) -> None:
    """The group's rules as the flags say: open what is missing, then close the SSH ranges this tool opened
    before that --ssh-cidr no longer names (a re-run after the user's address changed)."""
    plan = run.plan
    network.authorize_ingress(run.ec2, group_id, plan.ssh_cidr or None,
                              https_from_itself=not plan.family or bool(plan.ssm_endpoints))
    stale = plan.stale_ssh_cidrs
    if stale:
        network.revoke_ssh(run.ec2, group_id, stale)
        run.journal.add("security-group-rule", group_id, "updated", revoked=stale)
        now = "no inbound SSH (Session Manager)" if plan.via_ssm else f"SSH to {group_id} now only from {plan.ssh_cidr}"
        run.report(Event("updated", "security-group", f"{now} (closed {', '.join(stale)})", group_id))
    if plan.access_before and plan.access_before != plan.access:  # the record a re-run without --access keeps
        run.ec2.create_tags(Resources=[group_id, *plan.instance_ids], Tags=_access_tag(plan))


def _access_tag(plan: Plan) -> list[dict]:
    return [{"Key": tags.ACCESS, "Value": plan.access}]


def _ensure_vpc_dns(run: Run) -> None:
    off = network.vpc_dns_attributes_off(run.ec2, run.plan.vpc_id)
    if off:
        network.enable_vpc_dns(run.ec2, run.plan.vpc_id, off)
        run.journal.add("vpc", run.plan.vpc_id, "updated", enabled=off)
        run.report(Event("updated", "vpc", f"Enabled {' and '.join(off)} on {run.plan.vpc_id} (private DNS needs them)",
                         run.plan.vpc_id))


def _ensure_endpoint(run: Run, group_id: str) -> str:
    run.endpoint_id = _ensure_endpoint_of(run, group_id)
    run.endpoint_known.set()
    return run.endpoint_id


def _ensure_endpoint_of(run: Run, group_id: str) -> str:
    plan = run.plan
    if plan.endpoint_id is None:
        try:
            endpoint_id = network.create_ei_endpoint(run.ec2, plan.region, plan.vpc_id, plan.subnet_id, group_id,
                                                     run.tags, run.client_token)
        except ClientError as err:
            if not network.is_conflicting_dns(err):
                raise
            return _join_the_winner(run, group_id, network.EI_SERVICE)
        run.journal.add("vpc-endpoint", endpoint_id, "created")
        run.report(Event("created", "vpc-endpoint", f"Created EI endpoint {endpoint_id}", endpoint_id))
        return endpoint_id
    current = network.describe_endpoint(run.ec2, plan.endpoint_id)
    if current is None:
        raise AwsError(f"The EI endpoint {plan.endpoint_id} disappeared while setting up: run setup again.")
    _join(run, current, group_id, add_subnet=plan.subnet_id if plan.endpoint_add_subnet else None,
          enable_private_dns=plan.endpoint_enable_private_dns)
    run.report(Event("reused", "vpc-endpoint", f"Reusing EI endpoint {plan.endpoint_id}", plan.endpoint_id))
    return plan.endpoint_id


def _join(run: Run, current: network.Endpoint, group_id: str, *, add_subnet: str | None,
          enable_private_dns: bool, service: str = network.EI_SERVICE) -> None:
    """Make a shared endpoint serve this deployment. A subnet is listed in the deployment's record on the endpoint,
    and the change journaled, before it is made: a run stopped in between is still rolled back, and its teardown
    still finds what it added (resources/network.py)."""
    add_group = group_id not in current.group_ids
    if add_subnet:
        network.record_added_subnet(run.ec2, current, run.plan.name, add_subnet)
    if add_group or add_subnet:
        run.journal.add("vpc-endpoint-membership", current.id, "updated",
                        group=group_id if add_group else None, subnet=add_subnet)
    network.join_endpoint(run.ec2, current.id, add_subnet=add_subnet, add_group=group_id if add_group else None,
                          enable_private_dns=enable_private_dns)
    run.journal.add("vpc-endpoint", current.id, "reused", **_service_detail(service))


JOIN_TIMEOUT = 30.0  # how long the winner's endpoint may take to be listed after EC2 refused ours


def _join_the_winner(run: Run, group_id: str, service: str) -> str:
    """EC2 refused our endpoint because the VPC already has one for the service: another setup in this VPC (another
    deployment name, so another lock) created it since discovery looked. Join it as a reuse would. Listed at once
    on AWS as a rule; a short bounded wait covers a listing that lags."""
    plan = run.plan
    found: list[network.Endpoint] = []
    ei = service == network.EI_SERVICE
    label = network.endpoint_label(service)

    def look() -> str:
        found[:] = [e for e in network.find_endpoints(run.ec2, plan.region, (service,), plan.vpc_id) if e.private_dns]
        return "found" if found else "not listed"

    try:
        wait_for(look, done={"found"}, what=f"The {label} of {plan.vpc_id}", timeout=JOIN_TIMEOUT,
                 sleep=run.sleep, how_to_check="check the VPC console under Endpoints")
    except WaitTimeout:
        dns_name = f"{service}.{plan.region}.amazonaws.com"
        raise AwsError(f"EC2 refused to create the {label} in {plan.vpc_id}: the VPC already has a DNS name for "
                       f"{dns_name}, but no {label} with private DNS appeared there to share within "
                       f"{JOIN_TIMEOUT:.0f} s; if a Route 53 private hosted zone of that name is associated with "
                       "the VPC, remove that association, or pass another --vpc-id.",
                       code="endpoint-conflict") from None
    winner = found[0]
    if winner.tags.get(tags.RUN) == run.client_token:  # our own create after all, its reply lost
        run.journal.add("vpc-endpoint", winner.id, "created", **_service_detail(service))
        run.report(Event("created", "vpc-endpoint", f"Created {label} {winner.id}", winner.id))
        return winner.id
    run.report(Event("reused", "vpc-endpoint", f"Another run created the VPC's {label} first: joining {winner.id}",
                     winner.id))
    add_subnet = None
    if ei:  # EI's endpoint must serve the instance's zone (Session Manager's answer the whole VPC)
        az_of = {s["SubnetId"]: s["AvailabilityZone"] for s in run.ec2.describe_subnets(
            SubnetIds=sorted({*winner.subnet_ids, plan.subnet_id}))["Subnets"]}
        covered = {az_of.get(s) for s in winner.subnet_ids}
        add_subnet = None if az_of.get(plan.subnet_id) in covered else plan.subnet_id
    _join(run, winner, group_id, add_subnet=add_subnet, enable_private_dns=False, service=service)
    return winner.id


def _wait_ssm_endpoints(run: Run, endpoint_ids: list[str]) -> None:
    """Each of Session Manager's endpoints available (they come up together: the waits overlap in time anyway)."""
    for endpoint_id, (service, _, _) in zip(endpoint_ids, run.plan.ssm_endpoints, strict=True):
        _wait_endpoint(run, endpoint_id, network.endpoint_label(service), "Session Manager")


def _service_detail(service: str) -> dict:
    """A Session Manager endpoint's records (and the result's resources) say which service it is; EI's say nothing."""
    return {} if service == network.EI_SERVICE else {"service": service}


def _ensure_ssm_endpoints(run: Run, group_id: str) -> list[str]:
    """Session Manager's interface endpoints for an instance with no way out but the VPC: each one the VPC has is
    shared as EI's is (our group attached, so a sibling's teardown keeps it; private DNS turned on if off), each
    one missing is created in the instance's subnet. The ids, in plan.ssm_endpoints' order."""
    plan = run.plan
    ids = []
    for service, endpoint_id, enable_dns in plan.ssm_endpoints:
        run.checkpoint()
        label = network.endpoint_label(service)
        if endpoint_id is None:
            try:
                endpoint_id = network.create_ssm_endpoint(run.ec2, plan.region, service, plan.vpc_id, plan.subnet_id,
                                                          group_id, run.tags, run.client_token)
            except ClientError as err:
                if not network.is_conflicting_dns(err):
                    raise
                ids.append(_join_the_winner(run, group_id, service))
                continue
            run.journal.add("vpc-endpoint", endpoint_id, "created", service=service)
            run.report(Event("created", "vpc-endpoint", f"Created {label} {endpoint_id} (Session Manager)",
                             endpoint_id))
        else:
            current = network.describe_endpoint(run.ec2, endpoint_id)
            if current is None:
                raise AwsError(f"The {label} {endpoint_id} disappeared while setting up: run setup again.")
            _join(run, current, group_id, add_subnet=None, enable_private_dns=enable_dns, service=service)
            run.report(Event("reused", "vpc-endpoint", f"Sharing the VPC's {label} {endpoint_id}", endpoint_id))
        ids.append(endpoint_id)
    return ids


def _launch(run: Run, group_id: str) -> list[instances.InstanceInfo]:
    plan = run.plan
    if plan.instance_id:
        ids = list(plan.instance_ids or (plan.instance_id,))
        current = instances.describe_many(run.ec2, ids)
        for found in current:
            run.journal.add("instance", found.id, "reused")
        stopped = [i.id for i in current if i.state == "stopped"]
        if stopped:
            instances.start(run.ec2, stopped)
            run.report(Event("updated", "instance", f"Starting stopped instance(s) {', '.join(stopped)}",
                             stopped[0]))
        else:
            run.report(Event("reused", "instance", f"Instance(s) {', '.join(ids)} already exist", ids[0]))
        return instances.describe_many(run.ec2, ids) if stopped else current
    instance_tags = run.tags + [{"Key": "Name", "Value": plan.name}]
    extra = {tags.ACCELERATOR: plan.accelerator_type or plan.family, tags.SSH_USER: plan.ssh_user}
    instance_tags += [{"Key": k, "Value": v} for k, v in extra.items() if v] + _access_tag(plan)
    several = f"{plan.count} x " if plan.count > 1 else ""
    run.report(Event("start", "instance", f"Launching {several}{plan.instance_type} with {plan.accelerator_label}"))

    def on_retry(delay: float) -> None:
        run.report(Event("retry", "instance",
                         f"EC2 does not see the new instance profile yet; retrying in {delay:.0f} s"))

    zones = [run.zone, *(run.failover.zones if run.failover else ())]
    launched: list[instances.InstanceInfo] = []
    spot = bool(plan.spot)
    for attempt, zone in enumerate(zones):
        added = None  # a subnet this attempt added to the EI endpoint
        if attempt:
            run.checkpoint()
            added = _endpoint_serves(run, zone) if plan.accelerator_type else None
            run.report(Event("start", "instance", f"Launching {several}{plan.instance_type} in {zone.az} "
                                                  f"({zone.subnet_id})"))
        refusal = None
        while True:  # --spot auto: a zone that refuses Spot is asked again for On-Demand, at once
            token = instances.zone_client_token(run.client_token, attempt) + ("-od" if plan.spot and not spot else "")
            request = instances.launch_request(
                ami_id=plan.ami_id, instance_type=plan.instance_type, accelerator_type=plan.accelerator_type,
                subnet_id=zone.subnet_id, group_id=group_id, key_name=plan.key_name, profile_name=plan.profile_name,
                root_device=plan.root_device, volume_size=plan.volume_size, tag_list=instance_tags,
                client_token=token, count=plan.count, min_count=plan.min_count, spot=spot,
                public_ip=plan.public_ip)
            try:
                launched = instances.run_instances(run.ec2, request, sleep=run.sleep, on_retry=on_retry)
                refusal = None
            except ClientError as err:
                refusal = err
                if spot and plan.spot == "auto" and error_code(err) in instances.SPOT_REFUSALS:
                    spot = False
                    run.spot_refused = f"{instances.SPOT_REFUSALS[error_code(err)]} ({error_code(err)}: " \
                                       f"{error_message(err).rstrip('.')})"
                    if error_code(err) == instances.SPOT_ROLE_NOT_CREATABLE:  # the account's, until someone fixes it
                        command = instances.create_spot_role_command(getattr(run.aws, "profile", None))
                        run.spot_refused += f"; run `{command}` once to allow Spot"
                    run.report(Event("warning", "instance", f"EC2 refused Spot for {plan.instance_type} in {zone.az}: "
                                     f"{run.spot_refused}; launching On-Demand instead (--spot auto)", zone.subnet_id))
                    continue
            break
        if refusal is not None:
            err = refusal
            if spot and error_code(err) == instances.SPOT_ROLE_NOT_CREATABLE:
                raise err  # explain() names the fix: the role, not --spot auto
            # Only a zone's lack of Spot capacity may be another zone's plenty; a limit or a price is the account's.
            if spot and error_code(err) in instances.SPOT_REFUSALS and \
                    error_code(err) != "InsufficientInstanceCapacity":
                raise _spot_refused(run, err) from None
            reason = capacity.zone_refusal(error_code(err), error_message(err))
            if reason is None:
                raise err
            run.skipped_zones.append({"zone": zone.az, "subnet_id": zone.subnet_id, "reason": reason,
                                      "aws_message": error_message(err)})
            if run.subnet_pinned:
                raise _pinned_zone_refused(run, zone, reason, err) from None
            if run.failover is None:  # a caller that gave no zones to move to: AWS's refusal, explained
                raise err
            following = zones[attempt + 1] if attempt + 1 < len(zones) else None
            then = f"; trying {following.az} ({following.subnet_id})" if following else ""
            run.report(Event("warning", "instance", f"{zone.az} refused {plan.instance_type}: {reason}{then}",
                             zone.subnet_id))
            if added:
                _endpoint_leaves(run, added)
            continue
        run.zone = zone
        run.endpoint_changed = added is not None
        break
    if not launched:
        raise _every_zone_refused(run)
    run.market = "spot" if spot else "on-demand"
    for each in launched:
        run.journal.add("instance", each.id, "created")
        if each.spot_request_id:  # its tags already say this run made it (write-ahead); the journal knows it too
            run.journal.add(SPOT_REQUEST, each.spot_request_id, "created")
    ids = ", ".join(i.id for i in launched)
    run.report(Event("created", "instance", f"Launched instance{'s' if len(launched) > 1 else ''} {ids}",
                     launched[0].id))
    if len(launched) < plan.count:
        run.report(Event("warning", "instance",
                         f"EC2 launched {len(launched)} of {plan.count} instances (--min-count {plan.min_count}): it "
                         "lacked capacity or quota for the rest", launched[0].id))
    return launched


def _endpoint_serves(run: Run, zone: capacity.Zone) -> Record | None:
    """Before a launch moves to another zone: the EI endpoint must have a subnet in that zone, or the instance
    there cannot reach it. Waits for the endpoint step (it runs beside the launch), then adds the zone's subnet
    unless the endpoint already has one there (AWS allows one per zone); journaled, so a rollback removes it.
    Returns that journal record (None: nothing added)."""
    while not run.endpoint_known.wait(0.05):
        run.checkpoint()
    endpoint = network.describe_endpoint(run.ec2, run.endpoint_id)
    if endpoint is None:
        raise AwsError(f"The EI endpoint {run.endpoint_id} disappeared while setting up: run setup again.")
    az_of = run.failover.az_of if run.failover else {}
    if zone.az in {az_of.get(s) for s in endpoint.subnet_ids}:
        return None
    network.record_added_subnet(run.ec2, endpoint, run.plan.name, zone.subnet_id)  # first: see _join
    record = run.journal.add("vpc-endpoint-membership", endpoint.id, "updated", group=None, subnet=zone.subnet_id)
    network.join_endpoint(run.ec2, endpoint.id, add_subnet=zone.subnet_id, add_group=None, enable_private_dns=False)
    run.report(Event("updated", "vpc-endpoint", f"Added {zone.subnet_id} ({zone.az}) to EI endpoint {endpoint.id}",
                     endpoint.id))
    return record


def _endpoint_leaves(run: Run, added: Record) -> None:
    """The zone refused the launch: its subnet leaves the endpoint again (an interface endpoint is billed per
    zone it serves, and no instance of ours is there)."""
    network.undo_join(run.ec2, added.id, run.plan.name, subnet=added.detail["subnet"])
    run.journal.forget(added)
    run.report(Event("updated", "vpc-endpoint", f"Removed {added.detail['subnet']} from EI endpoint {added.id} again",
                     added.id))


def _skipped_text(skipped: list[dict]) -> str:
    return "; ".join(f"{s['zone']}: {s['reason']}" for s in skipped)


def _pinned_zone_refused(run: Run, zone: capacity.Zone, reason: str, err: ClientError) -> AwsError:
    plan = run.plan
    return AwsError(f"EC2 refused {plan.instance_type} in {zone.az}, the Availability Zone of --subnet-id "
                    f"{zone.subnet_id} ({reason}: {error_message(err).rstrip('.')}); a pinned --subnet-id is never "
                    f"moved: pass a --subnet-id in another zone, or drop --subnet-id to let setup try each zone that "
                    f"offers {plan.instance_type}, or pick another --instance-type.", code="capacity")


def _spot_refused(run: Run, err: ClientError) -> AwsError:
    plan = run.plan
    code = error_code(err)
    return AwsError(f"EC2 refused a Spot launch of {plan.instance_type} ({instances.SPOT_REFUSALS[code]}; {code}: "
                    f"{error_message(err).rstrip('.')}): pass --spot auto to launch On-Demand when Spot is refused, "
                    "or drop --spot.", code="capacity")


def _every_zone_refused(run: Run) -> AwsError:
    """Every zone this VPC could launch in refused: which regions offer the type (this one: EC2 says by region;
    others: a bounded concurrent look-up), for the error and the command setup.py prints."""
    plan = run.plan
    tried = _skipped_text(run.skipped_zones)
    passed = "; ".join(f"{az}: {why}" for az, why in (run.failover.passed_over if run.failover else ()))
    where = tried + (f"; not tried: {passed}" if passed else "")
    candidates = capacity.regions_to_ask(plan.region, bool(plan.accelerator_type), catalog.EI_REGIONS)
    try:
        others = quota.regions_offering(run.aws, plan.instance_type, candidates)
    except Exception:  # noqa: BLE001 - a hint must never replace the error it decorates
        others = []
    if others:
        hint = (f" Regions that offer {plan.instance_type}: {', '.join(others)}: try one with the command below, or "
                "pick another --instance-type.")
    else:
        hint = f" Pick another --instance-type, or another --region that offers {plan.instance_type}."
    if plan.spot == "required":
        hint += " Or pass --spot auto to launch On-Demand where Spot has no capacity."
    error = AwsError(f"EC2 refused {plan.instance_type} in every Availability Zone of {plan.region} it could launch "
                     f"in from {plan.vpc_id} ({where}).{hint}", code="capacity")
    error.other_regions = others
    return error


def _wait_running(run: Run, launched: list[instances.InstanceInfo]) -> list[instances.InstanceInfo]:
    """All instances at once: one describe call per poll, whatever the count. Each instance is reported
    `reachable` (with its connect commands) the moment it is running with an address: the user can connect while
    the rest of the run (other instances, the EI endpoint) is still coming up."""
    latest = list(launched)
    ids = [i.id for i in launched]
    label = ids[0] if len(ids) == 1 else f"{len(ids)} instances"
    shown: set[str] = set()

    def announce(found: list[instances.InstanceInfo]) -> None:
        for each in found:
            if each.state == "running" and _addressed(run.plan, each) and each.id not in shown:
                shown.add(each.id)
                run.report(_reachable(run.plan, each))

    def fetch() -> str:
        latest[:] = instances.describe_many(run.ec2, ids)
        states = {i.state for i in latest}
        if len(latest) < len(ids):
            return "terminated"  # one vanished from describe_instances: it is not coming up
        bad = states & {"shutting-down", "terminated", "stopping", "stopped"}
        if bad:
            return sorted(bad)[0]
        announce(latest)
        return "running" if states == {"running"} and all(_addressed(run.plan, i) for i in latest) else "pending"

    if any(i.state != "running" or not _addressed(run.plan, i) for i in launched):
        run.report(Event("wait", "instance", f"Waiting for {label} to be running", ids[0]))
        wait_for(fetch, done={"running"}, failed={"shutting-down", "terminated", "stopping", "stopped"},
                 what=f"Instance {ids[0]}" if len(ids) == 1 else f"One of {', '.join(ids)}",
                 timeout=INSTANCE_TIMEOUT, sleep=run.sleep,
                 how_to_check=f"check it with `aws ec2 describe-instances --instance-ids {' '.join(ids)} --region "
                              f"{run.plan.region}` or the EC2 console")
    else:
        announce(latest)
    if len(ids) > 1:  # one instance said so in its `reachable` event
        run.report(Event("done", "instance", f"{label} are running", ids[0]))
    return latest


def _running_and_served(run: Run, launched: list[instances.InstanceInfo]) -> list[instances.InstanceInfo]:
    """The instances running; after a launch moved zones (EI), also the endpoint again: the subnet added for the
    new zone makes it pending for a while, and `ei` means the instance can reach its accelerator."""
    latest = _wait_running(run, launched)
    if run.endpoint_changed and run.wait != WAIT_RUNNING:
        _wait_endpoint(run, run.endpoint_id)
    return latest


def _reachable(plan: Plan, instance: instances.InstanceInfo) -> Event:
    return Event("reachable", "instance", f"Instance {instance.id} is running: connect with", instance.id,
                 {"host": instance.host,
                  "ssh_command": ssh_command(plan.key_path, plan.ssh_user, _host(plan, instance), plan.proxy_command,
                                             instance.ssh_port),
                  "port_forward_command": port_forward_command(plan.key_path, plan.ssh_user, _host(plan, instance),
                                                               plan.proxy_command, instance.ssh_port)})


def _wait_ssh(run: Run, running: list[instances.InstanceInfo]) -> None:
    """Until each instance's SSH port accepts a TCP connection (sshd is up, the security group lets this machine
    in): `running` says the machine booted, not that it answers."""
    for each in running:
        address, port = ssh_address(each)
        wait_for(lambda e=each: "answers" if ssh_reachable(e) else "closed", done={"answers"},
                 what=f"SSH on {address}:{port}", timeout=SSH_TIMEOUT, sleep=run.sleep,
                 how_to_check=f"try `nc -zv {address} {port}`; check that --ssh-cidr includes this machine's "
                              "address")
        run.report(Event("done", "instance", f"SSH answers on {address}:{port} ({each.id})", each.id))


def is_sandboxed(instance) -> bool:
    """A sandbox instance: its SSH server runs on this machine, on the port its tag names (sandbox/ssh.py)."""
    return bool(instance.tags.get(instances.SANDBOX_SSH_PORT_TAG))


def ssh_address(instance) -> tuple[str, int]:
    if is_sandboxed(instance):
        return "127.0.0.1", instance.ssh_port
    return instance.public_ip or instance.host, SSH_PORT


def ssh_reachable(instance) -> bool:
    """The sandbox's port must greet as an SSH server (its identification line), not only accept; a real instance's
    port 22 is probed with TCP (a security group that drops us, or sshd not up yet, both fail that)."""
    address, port = ssh_address(instance)
    return ssh_answers(address, port) if is_sandboxed(instance) else port_answers(address, port)


def ssh_answers(address: str, port: int, timeout: float = 3.0) -> bool:
    import socket

    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            greeting = b""
            while b"\n" not in greeting and len(greeting) < 512:
                chunk = conn.recv(256)
                if not chunk:
                    break
                greeting += chunk
            return greeting.startswith(b"SSH-")
    except OSError:
        return False


def port_answers(address: str, port: int, timeout: float = 3.0) -> bool:
    import socket

    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


ENDPOINT_PROGRESS_EVERY = 10.0  # seconds between "EI endpoint ... pending (35 s)" lines


def _wait_endpoint(run: Run, endpoint_id: str, label: str = "EI endpoint", serves: str = "EI") -> None:
    """An endpoint's readiness on its own lines: "pending (35 s)..." while it comes up, then "EI ready"."""
    said = [-ENDPOINT_PROGRESS_EVERY]

    def on_wait(state: str, waited: float) -> None:
        if waited - said[0] >= ENDPOINT_PROGRESS_EVERY or said[0] < 0:
            said[0] = waited
            run.report(Event("wait", "vpc-endpoint", f"{label} {endpoint_id} {state or 'pending'} "
                                                     f"({waited:.0f} s)...", endpoint_id))

    wait_for(lambda: network.endpoint_state(run.ec2, endpoint_id), done={"available"},
             failed={"failed", "rejected", "deleted", "deleting"}, what=f"{label} {endpoint_id}",
             timeout=ENDPOINT_TIMEOUT, sleep=run.sleep, on_wait=on_wait,
             how_to_check="check it in the VPC console under Endpoints")
    named = "endpoint" if serves == "EI" else label
    run.report(Event("done", "vpc-endpoint", f"{serves} ready: {named} {endpoint_id} is available", endpoint_id))


# ---- rollback ------------------------------------------------------------------------------



def _rolled_back(run: Run, failure: BaseException, *, hurried: bool = False) -> ToolError:
    """Delete what this run created, newest first; return the error to show the user.

    The rollback comes first and the explanation of the failure after it: explaining may call AWS (EC2's
    encoded refusal is decoded through STS), and nothing that call does may keep the rollback from running.
    hurried: a second signal came while in-flight calls finished; the user wants out, so nothing is undone and
    the message names everything left. A signal during the rollback stops it the same way."""
    interrupted = isinstance(failure, KeyboardInterrupt | Cancelled)

    def cause() -> ToolError:
        return Interrupted(f"{stopped_by(failure)}.") if interrupted else explain_safely(failure, run.aws)

    created = run.journal.created()
    if hurried:
        return _rollback_interrupted(run, cause(), [f"{r.kind} {r.id}" for r in created])
    try:
        # What the run's tag finds that the journal does not know: a create whose reply never came back, or the
        # instances of a run_instances a Ctrl-C cut off (instances carry the run's tag from launch on).
        known = {(r.kind, r.id) for r in created}
        created += [r for r in _tagged_by_this_run(run) if (r.kind, r.id) not in known]
    except KeyboardInterrupt:
        left = [f"{r.kind} {r.id}" for r in created] + ["any instance this run was launching"]
        return _rollback_interrupted(run, cause(), left)
    except Exception:  # noqa: BLE001, S110 - the journal alone then; the check after the undo says what is left
        pass
    if not created:
        return cause()
    run.report(Event("rollback", "", f"Rolling back {len(created)} change(s) this run made"))
    leftovers: list[str] = []
    # Newest first, except that the role goes last: it was created concurrently with the profile,
    # and while the profile holds it IAM refuses to delete it (DeleteConflict).
    ordered = sorted(reversed(created), key=lambda r: r.kind == "iam-role")
    # The instances of one launch go together: one terminate call, and their waits overlap.
    launched = [r for r in ordered if r.kind == "instance"]
    if launched:
        ordered = [Record("instance", ", ".join(r.id for r in launched), "created")] + [
            r for r in ordered if r.kind != "instance"]
    # A persistent Spot request is cancelled before its instance is terminated, or EC2 launches the instance again.
    ordered = sorted(ordered, key=lambda r: r.kind != SPOT_REQUEST)
    removed: list[str] = []
    stopped_at = None
    try:
        for position, record in enumerate(ordered):
            stopped_at = position
            try:
                _undo(run, record)
                run.report(Event("rollback", record.kind, f"Removed {record.kind} {record.id}", record.id))
                removed.append(f"{record.kind} {record.id}")
            except Exception as err:  # noqa: BLE001 - keep undoing the rest, report all leftovers
                leftovers.append((f"{record.kind} {record.id}", explain_safely(err)))
        stopped_at = None
    except KeyboardInterrupt:
        pass
    if stopped_at is not None:
        return _rollback_interrupted(run, cause(), leftovers + [f"{r.kind} {r.id}" for r in ordered[stopped_at:]])
    if not leftovers:  # "removed" only once AWS, asked by the run's tag, shows nothing of it
        try:
            leftovers = [f"{r.kind} {r.id} (still there)" for r in _tagged_by_this_run(run)]
        except KeyboardInterrupt:
            return _rollback_interrupted(run, cause(), ["whatever the check did not get to see"])
        except Exception as err:  # noqa: BLE001 - unchecked is not "removed"
            leftovers = [("possibly some of it (the check by tags failed)", explain_safely(err))]
    return rollback_outcome(cause(), leftovers, run.plan, run.account_flags, finish=run.teardown,
                            removed=removed if leftovers else ())


def _tagged_by_this_run(run: Run) -> list[Record]:
    """Everything in AWS that carries this run's tag (tags.RUN) and is not on its way out."""
    ec2, plan = run.ec2, run.plan
    cloudwatch = run.aws.client("cloudwatch") if plan.idle_stop_minutes else None  # built here, not in a worker
    mark = [{"Name": f"tag:{tags.RUN}", "Values": [run.client_token]}]
    found = run_concurrently({
        "instance": lambda: [i["InstanceId"] for r in ec2.describe_instances(Filters=mark)["Reservations"]
                             for i in r["Instances"] if i["State"]["Name"] not in ("terminated", "shutting-down")],
        "vpc-endpoint": lambda: [e["VpcEndpointId"] for e in ec2.describe_vpc_endpoints(Filters=mark)["VpcEndpoints"]
                                 if e.get("State", "").lower() not in network.GONE_ENDPOINT_STATES],
        "security-group": lambda: [g["GroupId"] for g in ec2.describe_security_groups(Filters=mark)["SecurityGroups"]],
        "key-pair": lambda: [k["KeyName"] for k in ec2.describe_key_pairs(Filters=mark)["KeyPairs"]],
        "instance-profile": lambda: [plan.profile_name] if run.made_by_this_run(
            iam.get_instance_profile(run.iam, plan.profile_name)) else [],
        "iam-role": lambda: [plan.role_name] if run.made_by_this_run(iam.get_role(run.iam, plan.role_name)) else [],
        # Only when the run makes alarms: the look-up costs a call per alarm (their tags).
        alarm.KIND: lambda: [a.name for a in alarm.find_alarms(cloudwatch, plan.name)
                             if a.tags.get(tags.RUN) == run.client_token]
        if cloudwatch else [],
        # Only when the run asked for Spot: the request of a launch whose reply was lost is found by its tags.
        SPOT_REQUEST: lambda: [r["SpotInstanceRequestId"] for r in instances.find_spot_requests(ec2, mark)]
        if plan.spot else [],
    })
    for value in found.values():
        if isinstance(value, BaseException):
            raise value
    return [Record(kind, id_, "created", {"pem": plan.key_path} if kind == "key-pair" else {})
            for kind, ids in found.items() for id_ in ids]


def _rollback_interrupted(run: Run, cause: ToolError, left: list[str]) -> ToolError:
    return rollback_outcome(cause, left, run.plan, run.account_flags, interrupted=True, finish=run.teardown)


Leftover = str | tuple[str, ToolError]  # what is left, alone or with why it could not be removed


def rollback_outcome(cause: ToolError, leftovers: list[Leftover], plan: Plan, account_flags: str, *,
                     interrupted: bool = False, finish: str | None = None, removed=()) -> ToolError:
    """The error to show after a rollback (setup's or a stack's): the cause, then either that everything is
    gone or what it removed, what is left and the teardown command that finishes (`finish`, else built from
    account_flags). Each reason is said once: when AWS cannot be reached, every undo fails the same way as the
    run did, and the cause already says so."""
    finish = finish or teardown_command(plan.region, plan.name, account_flags)
    left = _left_with_reasons(cause, leftovers)
    if interrupted:  # a second signal: say what is still there, never just that something is
        what = f" before it removed {left}" if leftovers else ""
        return Interrupted(f"{cause} Rollback was interrupted{what}; to remove what is left run: {finish}")
    if leftovers:
        done = f"; it removed {', '.join(removed)}" if removed else ""
        when = " once AWS answers again" if cause.code == "network" else ""
        message = f"{cause} Rollback could not remove {left}{done}; to finish{when} run: {finish}"
        return Interrupted(message) if isinstance(cause, Interrupted) else _like(cause, message)
    return _like(cause, f"{cause} Everything this run created was removed.")


def _left_with_reasons(cause: ToolError, leftovers: list[Leftover]) -> str:
    """"a, b (why), c (why else)": pieces that failed for one reason share it; a reason that is the cause's (the
    same sentence, or AWS unreachable again) is not repeated in full."""
    groups: dict[str, list[str]] = {}
    for each in leftovers:
        what, reason = each if isinstance(each, tuple) else (each, None)
        if reason is None:
            why = ""
        elif reason.code == "network":
            why = "AWS could not be reached either" if cause.code == "network" else reason.args[0]
        else:
            why = "the same error" if str(reason) == str(cause) else reason.args[0]
        groups.setdefault(why, []).append(what)
    return ", ".join(", ".join(whats) + (f" ({why.rstrip('.')})" if why else "") for why, whats in groups.items())


def _like(cause: ToolError, message: str) -> ToolError:
    """The cause with the rollback's outcome added, keeping what it carries (its code, a command to suggest, the
    regions that offer a refused type)."""
    extended = type(cause)(message, code=cause.code)
    extended.__dict__.update({k: v for k, v in vars(cause).items() if k != "code"})
    return extended


def _undo(run: Run, record: Record) -> None:
    ec2 = run.ec2
    if record.kind == "instance":
        ids = record.id.split(", ")
        instances.terminate(ec2, ids)
        for instance_id in ids:
            wait_for(lambda i=instance_id: instance_state_or_gone(ec2, i), done={"terminated"},
                     what=f"Instance {instance_id}", timeout=INSTANCE_TIMEOUT, sleep=run.plain_sleep,
                     how_to_check="check the EC2 console")
    elif record.kind == "vpc-endpoint":
        network.delete_endpoint(ec2, record.id)
    elif record.kind == "vpc-endpoint-membership":
        network.undo_join(ec2, record.id, run.plan.name, group=record.detail.get("group"),
                          subnet=record.detail.get("subnet"))
    elif record.kind == "security-group":
        network.delete_security_group(ec2, record.id, sleep=run.plain_sleep)
    elif record.kind == "key-pair":
        keypair.delete_key_pair(ec2, record.id)
        pem = record.detail.get("pem")
        if pem:
            Path(pem).unlink(missing_ok=True)  # useless without its key pair, and it was ours
    elif record.kind == "instance-profile":
        iam.delete_instance_profile(run.iam, record.id)
    elif record.kind == "iam-role":
        iam.delete_role(run.iam, record.id)
    elif record.kind == alarm.KIND:
        alarm.delete_alarms(run.aws.client("cloudwatch"), [record.id])
    elif record.kind == SPOT_REQUEST:
        instances.cancel_spot_requests(ec2, [record.id])
    else:
        raise AwsError(f"no undo for {record.kind}")




# ---- dry run -------------------------------------------------------------------------------

def check_permissions(aws: Aws, plan: Plan) -> list[str]:
    """Ask EC2 (DryRun) whether the caller may create the group and launch; IAM has no dry run.

    Returns one sentence per refused permission; empty when EC2 would allow everything.
    """
    ec2 = aws.ec2
    checks = {
        "ec2:CreateSecurityGroup": lambda: ec2.create_security_group(
            GroupName=plan.security_group_name, Description="dry run", VpcId=plan.vpc_id, DryRun=True),
        "ec2:RunInstances": lambda: ec2.run_instances(
            ImageId=plan.ami_id, InstanceType=plan.instance_type, MinCount=plan.min_count, MaxCount=plan.count,
            SubnetId=plan.subnet_id, DryRun=True),
    }
    if plan.accelerator_type and not plan.endpoint_id:
        checks["ec2:CreateVpcEndpoint"] = lambda: ec2.create_vpc_endpoint(
            VpcEndpointType="Interface", VpcId=plan.vpc_id, ServiceName=network.EI_SERVICE_NAME.format(
                region=plan.region), SubnetIds=[plan.subnet_id], DryRun=True)
    problems = []
    for permission, call in checks.items():
        try:
            response = call()
        except ClientError as err:
            code = error_code(err)
            if code == "DryRunOperation":
                continue
            if code == "UnauthorizedOperation":
                problems.append(f"You may not call {permission}: ask an administrator for that permission.")
            else:
                problems.append(f"{permission} would fail: {explain(err, aws)}")
        else:
            # Real EC2 answers every DryRun call with an error, and moto refuses CreateSecurityGroup's and
            # RunInstances' (DryRunOperation). Only its CreateVpcEndpoint ignores DryRun and really creates the
            # endpoint: remove it again, so a dry run creates nothing.
            if permission == "ec2:CreateVpcEndpoint":
                network.delete_endpoint(ec2, response["VpcEndpoint"]["VpcEndpointId"])
    return problems
