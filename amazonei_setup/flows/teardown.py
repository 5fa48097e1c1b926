"""Remove one deployment: what setup created, in reverse dependency order, and nothing else.

Two phases, each overlapping what AWS allows:
  1. terminate the instances (and wait for `terminated`) | leave or delete the endpoints (EI's, Session Manager's) |
     delete the key pair;
  2. then the security group (retrying DependencyViolation while ENIs drain) | the instance
     profile and the role (the profile must outlive the instance that uses it).
Safe to re-run: every delete treats "already gone" as done.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from amazonei_setup.aws.client import Aws, error_code, explain
from amazonei_setup.aws.concurrency import cancellable_sleep, run_concurrently
from amazonei_setup.aws.resources import alarm, iam, keypair, network, stack
from amazonei_setup.aws.resources import instance as instances
from amazonei_setup.aws.waiting import wait_for
from amazonei_setup.core import interrupts, tags
from amazonei_setup.core.errors import AwsError, Interrupted, UsageError, stopped_by
from amazonei_setup.core.events import Event, Reporter, ignore
from amazonei_setup.flows.deployments import Inventory

TERMINATE_TIMEOUT = 600.0
GROUP_DELETE_TIMEOUT = 300.0
DELETE, KEEP, DETACH, REMOVE = "delete", "keep", "detach", "remove"  # remove: a subnet, from an endpoint that stays
WITH_STACK = "with the stack"  # CloudFormation deletes it (and reports it); the sweep after only makes sure


@dataclass(frozen=True)
class TeardownItem:
    kind: str
    id: str
    action: str  # delete / keep / detach (our group from a shared endpoint) / remove (our subnet from one)
    reason: str = ""


@dataclass(frozen=True)
class SubnetFate:
    """A subnet this deployment put on an endpoint that stays: removed with it, or kept for the deployments that
    need it (heirs: they take over the record of it, so it leaves with the last of them)."""

    subnet: str
    az: str
    keepers: tuple[str, ...] = ()  # other deployments that run in its zone, list it too, or may run there
    heirs: tuple[str, ...] = ()  # those of the keepers whose record does not list it yet


SUBNET = "vpc-endpoint-subnet"


def subnet_fates(inventory: Inventory, endpoint: network.Endpoint) -> list[SubnetFate]:
    """What becomes of the subnets this deployment recorded putting on `endpoint` (one that stays). A subnet is
    kept while another deployment runs an instance in its zone (any of ours in the VPC: the safe side), lists the
    subnet in its own record, or uses the endpoint without an instance to say which zone it needs. An endpoint
    keeps at least one subnet."""
    mine = [s for s in endpoint.subnets_added_by(inventory.name) if s in endpoint.subnet_ids]
    if not mine:
        return []
    az_of = {s: az for s, (vpc, az) in inventory.subnet_zones.items() if vpc == endpoint.vpc_id}
    runs_in: dict[str, set[str]] = {}
    for each in inventory.neighbour_instances:
        if each.subnet_id in az_of:
            runs_in.setdefault(az_of[each.subnet_id], set()).add(each.tags.get(tags.DEPLOYMENT, "?"))
    placed = {name for names in runs_in.values() for name in names}
    users = {inventory.sibling_names.get(g, g) for g in endpoint.group_ids if g in inventory.sibling_group_ids}
    records = {name: set(subnets) for name, subnets in endpoint.subnet_records.items() if name != inventory.name}
    fates = []
    for subnet in mine:
        az = az_of.get(subnet, "")
        if not az:  # not looked up (or gone from the VPC): nothing says it is free
            fates.append(SubnetFate(subnet, az, ("?",)))
            continue
        listing = {name for name, subnets in records.items() if subnet in subnets}
        keepers = runs_in.get(az, set()) | (users - placed) | listing
        # Only deployments that use the endpoint take the record over: one that merely runs in the zone (another
        # accelerator, or a stack reaching the endpoint through its group) keeps the subnet but must not come to
        # own a piece of the endpoint.
        heirs = (keepers & users) - listing - {"?"}
        fates.append(SubnetFate(subnet, az, tuple(sorted(keepers)), tuple(sorted(heirs))))
    leaving = [f for f in fates if not f.keepers]
    if leaving and not set(endpoint.subnet_ids) - {f.subnet for f in leaving}:
        fates[fates.index(leaving[0])] = SubnetFate(leaving[0].subnet, leaving[0].az, ("the endpoint",))
    return fates


def _who_keeps(users: set[str], reason: str) -> str:
    if users:
        return f"which deployment{'s' if len(users) > 1 else ''} {', '.join(sorted(users))} " \
               f"keep{'' if len(users) > 1 else 's'}"
    return f"which stays ({reason})"


SPOT_REQUEST = "spot-request"


def _endpoint_note(endpoint: network.Endpoint) -> str:
    """Session Manager's endpoints say which they are (the EI one is the deployment's usual endpoint)."""
    return "" if endpoint.is_ei else f"{endpoint.label} (Session Manager)"


def teardown_plan(inventory: Inventory, *, keep_shared: bool = False) -> list[TeardownItem]:
    """What to delete, keep or detach. A stack-backed deployment starts with the stack: CloudFormation deletes
    what it created, and the items after it sweep up whatever is left (each delete accepts "already gone")."""
    held = inventory.stack_resources
    items = []
    if inventory.stack:
        items.append(TeardownItem("cloudformation-stack", inventory.stack.name, DELETE,
                                  f"with the {len(held)} resources it created"))
    # Cancelled first: terminating the instance of a persistent Spot request makes EC2 launch another.
    items += [TeardownItem(SPOT_REQUEST, r["SpotInstanceRequestId"], DELETE,
                           r.get("State", "") + (f"; for {r['InstanceId']}" if r.get("InstanceId") else ""))
              for r in inventory.spot_requests]
    items += [TeardownItem("instance", i.id, DELETE, i.state) for i in inventory.instances]
    items += [TeardownItem(alarm.KIND, a.name, DELETE, f"idle auto-stop of {a.instance_id}")
              for a in inventory.idle_alarms]
    _refuse_to_cut_off_stacks(inventory)
    for endpoint in inventory.endpoints:
        users = set(endpoint.group_ids) - inventory.group_ids
        siblings = users & inventory.sibling_group_ids
        attached = bool(set(endpoint.group_ids) & inventory.group_ids)
        if ("vpc-endpoint", endpoint.id) in held and siblings:
            raise UsageError(f"The {endpoint.label} {endpoint.id} belongs to stack {inventory.stack.name}, and "
                             f"{len(siblings)} other deployment(s) use it: deleting the stack would cut them off. Tear "
                             "those down first (see `list`), then this one.")
        if ("vpc-endpoint", endpoint.id) in held:
            items.append(TeardownItem("vpc-endpoint", endpoint.id, DELETE, WITH_STACK))
            continue
        if not endpoint.created_by_tool:
            reason = "not created by amazonei-setup"
        elif not (attached or endpoint.tags.get(tags.DEPLOYMENT) == inventory.name):
            reason = "this deployment only added subnets to it"  # found by its record alone: never ours to delete
        elif siblings:
            reason = f"still used by {len(siblings)} other deployment(s)"
        elif users:
            reason = "other security groups still use it"
        elif keep_shared:
            reason = "--keep-shared"
        else:
            items.append(TeardownItem("vpc-endpoint", endpoint.id, DELETE, _endpoint_note(endpoint)))
            continue
        action = DETACH if attached else KEEP
        note = _endpoint_note(endpoint)
        items.append(TeardownItem("vpc-endpoint", endpoint.id, action, f"{note}: {reason}" if note else reason))
        who = _who_keeps({inventory.sibling_names.get(g, g) for g in siblings}, reason)
        items += [TeardownItem(SUBNET, f.subnet, REMOVE, f"({f.az}) from shared endpoint {endpoint.id}, {who}")
                  for f in subnet_fates(inventory, endpoint) if not f.keepers]
    if inventory.key_pair:
        items.append(TeardownItem("key-pair", inventory.key_pair["KeyName"], DELETE,
                                  "the local .pem file is left in place"))
    items += [TeardownItem("security-group", g["GroupId"], DELETE) for g in inventory.security_groups]
    if inventory.profile:
        items.append(TeardownItem("instance-profile", inventory.profile["InstanceProfileName"], DELETE))
    if inventory.role:
        items.append(TeardownItem("iam-role", inventory.role["RoleName"], DELETE, "with its inline policy"))
    foreign_kinds = {"IAM role": "iam-role", "instance profile": "instance-profile"}  # see find_deployment
    for described in inventory.foreign:  # e.g. "IAM role amazonei-setup-c"
        kind, _, name = described.rpartition(" ")
        items.append(TeardownItem(foreign_kinds.get(kind, kind), name, KEEP,
                                  "same name but not created by amazonei-setup"))
    for described, home in inventory.elsewhere.items():
        kind, _, name = described.rpartition(" ")
        items.append(TeardownItem(foreign_kinds.get(kind, kind), name, KEEP, f"serves the deployment in {home}"))
    return [TeardownItem(i.kind, i.id, i.action, WITH_STACK) if (i.kind, i.id) in held and i.action == DELETE else i
            for i in items]


def _refuse_to_cut_off_stacks(inventory: Inventory) -> None:
    """A stack cannot join an endpoint it does not own, so it opens 443 into the endpoint's group instead (see
    cloudformation.py). When that group is ours, deleting it would cut the stack's instances off from EI."""
    attached = {g for e in inventory.endpoints for g in e.group_ids}
    for group in inventory.security_groups:
        if group["GroupId"] not in attached:
            continue
        siblings = inventory.sibling_group_ids
        reaching = sorted({inventory.sibling_names.get(pair["GroupId"], pair["GroupId"])
                           for rule in group.get("IpPermissions", []) if rule.get("FromPort") == 443
                           for pair in rule.get("UserIdGroupPairs", []) if pair["GroupId"] in siblings})
        if reaching:
            raise UsageError(f"Deployment(s) {', '.join(reaching)} reach the EI endpoint through this deployment's "
                             f"security group {group['GroupId']}: deleting it would cut them off. Tear those down "
                             "first (see `list`), then this one.")


def teardown(aws: Aws, inventory: Inventory, items: list[TeardownItem], report: Reporter = ignore, *,
             sleep: Callable[[float], None] | None = None, finish: str = "the same teardown") -> list[TeardownItem]:
    """Carry out `items`; returns what was done. Raises AwsError naming what is left on failure.

    `sleep` (tests pass a no-op) is wrapped so Ctrl-C stops the waits at once. `finish`: the command that finishes a
    teardown stopped part-way, as the user would type it.
    """
    ec2, client_iam = aws.ec2, aws.iam
    cancel = threading.Event()
    sleep = cancellable_sleep(cancel, sleep)
    aws.preload("ec2", "iam", *(("cloudwatch",) if any(i.kind == alarm.KIND for i in items) else ()))
    by_kind: dict[str, list[TeardownItem]] = {}
    for item in items:
        by_kind.setdefault(item.kind, []).append(item)

    def deleting(kind: str) -> list[TeardownItem]:
        return [i for i in by_kind.get(kind, []) if i.action == DELETE]

    finished: set[int] = set()

    def done(item: TeardownItem, verb: str = "Deleted") -> None:
        finished.add(id(item))
        if item.reason == WITH_STACK:
            return  # the stack's own events reported it
        report(Event("deleted" if item.action == DELETE else "updated", item.kind, f"{verb} {item.kind} {item.id}",
                     item.id))

    def terminate_instances() -> None:
        requests = deleting(SPOT_REQUEST)
        if requests:  # before the instances (see teardown_plan)
            live = instances.cancel_spot_requests(ec2, [r.id for r in requests])
            if live:  # terminating now would make EC2 launch the instance again
                raise AwsError(f"EC2 still lists Spot request {', '.join(live)} as live after cancelling it, so its "
                               "instance was left running (terminated, it would be launched again): cancel it in the "
                               "EC2 console under Spot Requests, then run teardown again.")
            for item in requests:
                done(item, "Cancelled")
        ids = [i.id for i in deleting("instance")]
        if not ids:
            return
        instances.terminate(ec2, ids)
        report(Event("wait", "instance", f"Terminating {', '.join(ids)}; waiting for 'terminated'"))
        for item in deleting("instance"):
            wait_for(lambda i=item: instance_state_or_gone(ec2, i.id), done={"terminated"}, what=f"Instance {item.id}",
                     timeout=TERMINATE_TIMEOUT, sleep=sleep, how_to_check="check it in the EC2 console, then run "
                     "teardown again")
            done(item, "Terminated")

    def endpoints() -> None:
        for item in by_kind.get("vpc-endpoint", []):
            if item.action == DELETE:
                network.delete_endpoint(ec2, item.id)
                done(item)
                continue
            endpoint = next(e for e in inventory.endpoints if e.id == item.id)
            take_back_subnets(endpoint)
            if item.action == DETACH:
                network.leave_endpoint(ec2, endpoint, inventory.group_ids)
                done(item, "Detached this deployment's security group from")
            if endpoint.subnets_added_by(inventory.name):  # last: until here a re-run finds what is left to do
                network.forget_added_subnets(ec2, endpoint.id, inventory.name)

    def take_back_subnets(endpoint: network.Endpoint) -> None:
        """The subnets this deployment put on an endpoint that stays: the ones another deployment needs pass to its
        record first (a crash after that loses nothing), then the others are removed."""
        fates = subnet_fates(inventory, endpoint)
        heirs: dict[str, list[str]] = {}
        for fate in fates:
            for heir in fate.heirs:
                heirs.setdefault(heir, list(endpoint.subnets_added_by(heir))).append(fate.subnet)
        network.hand_over_subnets(ec2, endpoint.id, {name: tuple(subnets) for name, subnets in heirs.items()})
        leaving = {f.subnet for f in fates if not f.keepers}
        network.remove_subnets(ec2, endpoint.id, sorted(leaving))
        for item in by_kind.get(SUBNET, []):
            finished.add(id(item))
            if item.id in leaving:
                report(Event("updated", "vpc-endpoint", f"Removed {item.id} {item.reason}", endpoint.id))

    def key_pairs() -> None:
        for item in deleting("key-pair"):
            keypair.delete_key_pair(ec2, item.id)
            done(item)

    def idle_alarms() -> None:
        """DeleteAlarms accepts names that are gone, so "deleted" is said only once CloudWatch lists none of them."""
        items_ = deleting(alarm.KIND)
        if not items_:
            return
        cloudwatch = aws.client("cloudwatch")
        alarm.delete_alarms(cloudwatch, [i.id for i in items_])
        left = alarm.still_there(cloudwatch, [i.id for i in items_])
        if left:
            raise AwsError(f"CloudWatch still lists the idle alarm(s) {', '.join(left)} after deleting them.",
                           code="alarm-left")
        for item in items_:
            done(item)

    def groups() -> None:
        for item in deleting("security-group"):
            report(Event("wait", "security-group", f"Deleting security group {item.id}", item.id))
            network.delete_security_group(ec2, item.id, timeout=GROUP_DELETE_TIMEOUT, sleep=sleep)
            done(item)

    def iam_pieces() -> None:
        """Two concurrent rounds: release what holds what, then delete the profile and the role."""
        profiles, roles = deleting("instance-profile"), deleting("iam-role")
        release: dict[str, Callable] = {}
        for item in profiles:
            for role in inventory.profile.get("Roles", []):
                release[f"remove {role['RoleName']} from {item.id}"] = (
                    lambda p=item.id, r=role["RoleName"]: iam.remove_role_from_profile(client_iam, p, r))
        for item in roles:
            for policy in inventory.role_inline_policies:
                release[f"delete policy {policy}"] = (
                    lambda r=item.id, p=policy: iam.delete_role_policy(client_iam, r, p))
            for arn in inventory.role_attached_policies:
                release[f"detach {arn}"] = lambda r=item.id, a=arn: iam.detach_role_policy(client_iam, r, a)
        _raise_first(run_concurrently(release))
        remove = {f"profile {i.id}": (lambda i=i: iam.delete_empty_instance_profile(client_iam, i.id))
                  for i in profiles}
        remove.update({f"role {i.id}": (lambda i=i: iam.delete_empty_role(client_iam, i.id)) for i in roles})
        _raise_first(run_concurrently(remove))
        for item in profiles + roles:
            done(item)

    def stacks() -> None:
        """First and alone: CloudFormation deletes in its own order; the phases after it sweep what is left."""
        for item in deleting("cloudformation-stack"):
            cfn = aws.client("cloudformation")
            report(Event("wait", "cloudformation-stack", f"Deleting stack {item.id}; waiting for DELETE_COMPLETE"))
            stack.delete(cfn, inventory.stack.id, report=report, sleep=sleep)
            done(item)

    failures = []
    try:
        for phase in ({"CloudFormation stack": stacks},
                      {"instances": terminate_instances, "endpoint": endpoints, "key pair": key_pairs,
                       "idle alarms": idle_alarms},
                      {"security group": groups, "IAM role and profile": iam_pieces}):
            results = run_concurrently(phase, cancel)
            failures += [(what, err) for what, err in results.items() if isinstance(err, BaseException)]
            if failures:
                break  # the next phase depends on this one: stop, and say how to finish
    except KeyboardInterrupt as stop:
        interrupts.if_stopped_now(f"the teardown stopped part-way; to finish, run: {finish}")
        # A call in flight when the signal came may have landed: look (once, each) before saying what is left.
        left = [i for i in items if i.action in (DELETE, DETACH, REMOVE) and id(i) not in finished
                and i.kind in AWS_KINDS and _maybe_still_there(aws, i)]
        if not left:  # the signal came after the last deletion: the teardown is whole
            interrupts.complete_despite(stop)
            return items
        removed = len(items) - len(left) - sum(1 for i in items if i.action not in (DELETE, DETACH, REMOVE))
        raise Interrupted(f"{stopped_by(stop)}: the teardown stopped part-way ({removed} removed; left: "
                          f"{', '.join(f'{i.kind} {i.id}' for i in left)}); to finish, run: {finish}") from None
    if failures:
        what, err = failures[0]
        cause = explain(err, aws, doing=f"deleting the {what}")
        raise AwsError(f"{cause} The steps that depend on it were not attempted; run the same teardown again to "
                       "finish.",
                       code=cause.code)
    return items


AWS_KINDS = {"cloudformation-stack", "instance", "vpc-endpoint", SUBNET, "key-pair", alarm.KIND,
             "security-group", "instance-profile", "iam-role", "spot-request"}  # what it deletes (not the .pem)


def _maybe_still_there(aws: Aws, item: TeardownItem) -> bool:
    """False only when AWS says `item` is gone; a detach, or any doubt (an error), counts as still there."""
    if item.action != DELETE:
        return True
    try:
        if item.kind == "instance":
            return instance_state_or_gone(aws.ec2, item.id) != "terminated"
        if item.kind == SPOT_REQUEST:
            return instances.spot_request_live(aws.ec2, item.id)
        if item.kind == "iam-role":
            return iam.get_role(aws.iam, item.id) is not None
        if item.kind == "instance-profile":
            return iam.get_instance_profile(aws.iam, item.id) is not None
        if item.kind == "key-pair":
            return keypair.find_key_pair(aws.ec2, item.id) is not None
        if item.kind == "vpc-endpoint":
            return network.endpoint_state(aws.ec2, item.id).lower() not in network.GONE_ENDPOINT_STATES
        if item.kind == alarm.KIND:
            return bool(alarm.still_there(aws.client("cloudwatch"), [item.id]))
        if item.kind == "security-group":
            return any(g["GroupId"] == item.id for g in network.find_security_groups(aws.ec2, None))
    except Exception:  # noqa: BLE001 - unknown is not gone
        return True
    return True


def _raise_first(results: dict) -> None:
    for value in results.values():
        if isinstance(value, BaseException):
            raise value


def instance_state_or_gone(ec2, instance_id: str) -> str:
    try:
        return instances.describe(ec2, instance_id).state
    except ClientError as err:
        if error_code(err) == "InvalidInstanceID.NotFound":
            return "terminated"
        raise
    except IndexError:  # terminated instances eventually drop out of describe_instances
        return "terminated"
