"""`stop --name N` / `start --name N`: the meter off overnight, and back on in the morning.

stop: every instance of the deployment (a fleet too) is stopped and waited for; the result says what still costs money
while stopped. start: started, waited for until running with an address, then (real AWS) until SSH answers; the SSH
config block is rewritten with the new address (EC2 gives a stopped instance's public IPv4 address back to the pool).
Both are idempotent: stopping what is stopped (starting what runs) says so, exit 0.

What a stopped deployment costs (checked 2026-12-01):
- EBS: each volume's size x its type's GB-month price (gp3, what setup creates: $0.08 in us-east-1/us-west-2, from
  aws.amazon.com/ebs/pricing; other regions differ by a few cents).
- EC2 instance hours: none while stopped (aws.amazon.com/ec2/pricing/on-demand: "you pay for compute capacity ...
  while your instances are running").
- EI accelerator: none while stopped (aws.amazon.com/machine-learning/elastic-inference/pricing: billed per second
  while attached to a running instance). The PrivateLink endpoints a deployment made (EI's; Session Manager's for a
  private instance) are billed per hour per AZ whether or not any instance runs (catalog.INTERFACE_ENDPOINT_HOURLY_USD),
  so they are named too.
"""
from __future__ import annotations

from amazonei_setup.cli.commands import Result
from amazonei_setup.cli.commands.common import forget_ssh_entry
from amazonei_setup.cli.commands.printed import command_for
from amazonei_setup.cli.commands.status import access_of, connect_commands, inventory_of, locate
from amazonei_setup.cli.environment import Environment
from amazonei_setup.core import shell
from amazonei_setup.core.catalog import INTERFACE_ENDPOINT_HOURLY_USD

EBS_GB_MONTH_USD = {"gp3": 0.08, "gp2": 0.10}  # us-west-2 / us-east-1, 2026-12-01 (see the module docstring)
HOURS_PER_MONTH = 730  # AWS's own convention for monthly figures
STOP_TIMEOUT = 600.0
ASG_TAG = "aws:autoscaling:groupName"  # set by Auto Scaling on its instances (export --deploy of an inf2/gpu fleet)
START_TIMEOUT = 600.0


def run(args, env: Environment, ui, aws) -> Result:
    aws = locate(args, aws)
    with ui.status(f"Looking up deployment '{args.name}' in {aws.region}"):
        inventory = inventory_of(args, aws)
    if not inventory.instances:
        from amazonei_setup.core.errors import ToolError

        raise ToolError(f"Deployment {args.name} in {aws.region} has no instance to {args.command} (a run stopped "
                        f"part-way): remove what is left with {command_for(args, 'teardown', aws.region, args.name)}",
                        code="no-instance")
    if args.command == "stop":
        groups = sorted({i.tags[ASG_TAG] for i in inventory.instances if i.tags.get(ASG_TAG)})
        if groups:  # a stopped member fails the group's health check and is replaced: the meter keeps running
            from amazonei_setup.core.errors import UsageError

            raise UsageError(f"The instances of {args.name} belong to Auto Scaling group {groups[0]}, which would "
                             "replace stopped ones with new, billed instances: set its desired capacity to 0 instead "
                             "(aws autoscaling update-auto-scaling-group --auto-scaling-group-name "
                             f"{shell.word(groups[0])} --min-size 0 --desired-capacity 0 --region "
                             f"{shell.word(aws.region)}).")
        result = _stop(args, env, ui, aws, inventory)
    else:
        result = _start(args, env, ui, aws, inventory)
    from amazonei_setup.flows.deployments import unchecked_warnings

    result.warnings[:0] = unchecked_warnings(inventory)
    return result


def _sleep(env):
    import time

    return env.sleep or time.sleep


GONE = frozenset({"terminated", "shutting-down"})  # a wait for stopped or running that meets these has failed


def _wait_states(aws, ids, *, done, timeout, env, ui, label, failed=GONE):
    """Until every instance in `ids` is in `done` (one describe per poll). Returns the instances as last seen."""
    from amazonei_setup.aws.resources import instance as instances
    from amazonei_setup.aws.waiting import wait_for
    from amazonei_setup.core import tags
    from amazonei_setup.core.events import Event

    what = f"Instance {ids[0]}" if len(ids) == 1 else f"One of {', '.join(ids)}"
    latest = []

    def fetch() -> str:
        latest[:] = instances.describe_many(aws.ec2, ids)
        states = {i.state for i in latest}
        bad = states & failed
        if bad:
            return sorted(bad)[0]
        # Through Session Manager the instance id is the way in: no address to wait for (a private one gets none).
        addressed = all(i.host or i.tags.get(tags.ACCESS) == "ssm" for i in latest)
        return done if states == {done} and (done != "running" or addressed) else "pending"

    def on_wait(state, waited):
        ui.progress(Event("wait", "instance", f"Waiting for {label} to be {done} ({waited:.0f} s)...", ids[0]))

    wait_for(fetch, done={done}, failed=failed, what=what, timeout=timeout, sleep=_sleep(env), on_wait=on_wait,
             how_to_check=f"check with `aws ec2 describe-instances --instance-ids {' '.join(ids)} --region "
                          f"{aws.region}` or the EC2 console")
    return latest


def _label(ids: list[str]) -> str:
    return ids[0] if len(ids) == 1 else f"{len(ids)} instances"


def _stop(args, env, ui, aws, inventory) -> Result:
    from amazonei_setup.aws.client import denied, denied_action, explain
    from amazonei_setup.aws.resources import instance as instances
    from amazonei_setup.core.events import Event

    ids = [i.id for i in inventory.instances]
    already = all(i.state == "stopped" for i in inventory.instances)
    if not already:
        to_stop = [i.id for i in inventory.instances if i.state in ("running", "pending")]
        # A stopped instance's public address goes back to EC2's pool, soon someone else's: `ssh NAME` must not
        # lead there. start writes the entry again with the new address.
        forget_ssh_entry(args)
        try:
            if to_stop:
                instances.stop(aws.ec2, to_stop)
                ui.progress(Event("start", "instance", f"Stopping {_label(to_stop)}", to_stop[0]))
        except KeyboardInterrupt as stop:
            raise _interrupted(args, aws, ids, stop, "stop") from None
        except Exception as err:  # noqa: BLE001 - one sentence naming the fix
            raise explain(err, aws, doing=f"stopping {', '.join(to_stop)}") from None
        try:
            found = _wait_states(aws, ids, done="stopped", timeout=STOP_TIMEOUT, env=env, ui=ui, label=_label(ids))
        except KeyboardInterrupt as stop:
            raise _interrupted(args, aws, ids, stop, "stop") from None
    else:
        found = inventory.instances
    warnings = []
    try:
        volumes = instances.volumes_of(aws.ec2, ids)
    except Exception as err:  # noqa: BLE001 - the instances are stopped: only the price of what stays is unknown
        if not denied(err):
            raise explain(err, aws, doing="looking up the stopped instances' volumes") from None
        volumes = None
        warnings.append(f"Could not check the instances' EBS volumes ({denied_action(err, 'ec2')} denied): they are "
                        f"still billed while stopped (gp3 ${EBS_GB_MONTH_USD['gp3']:.2f} per GB-month); see their "
                        "sizes in the EC2 console under Volumes.")
    still = _still_costs(volumes, inventory)
    accelerator = found[0].tags.get("amazonei-setup:accelerator", "")
    from amazonei_setup.core import catalog

    notes = ["no instance hours while stopped"]
    if accelerator in catalog.ACCELERATORS:
        notes.append(f"the {accelerator} accelerator is not billed while the instance is stopped")
    message = (f"Deployment {args.name} was already stopped." if already
               else f"Deployment {args.name} is stopped ({', '.join(ids)}).")
    data = {"name": args.name, "region": aws.region, "already": already,
            "instances": [{"instance_id": i.id, "state": i.state} for i in found],
            "still_costs": still, "not_billed": notes,
            "start_command": command_for(args, "start", aws.region, args.name)}
    return Result("stop", data, view="power", message=message, warnings=warnings)


def _still_costs(volumes: list[dict] | None, inventory) -> dict:
    """What a stopped deployment is still billed for: its volumes (GB-month) and an EI endpoint it owns.
    volumes None: they could not be read, so the total is unknown (never a total without them)."""
    items = []
    total = 0.0
    known = volumes is not None
    for volume in volumes or []:
        price = EBS_GB_MONTH_USD.get(volume["type"])
        monthly = round(volume["size_gib"] * price, 2) if price is not None else None
        if monthly is None:
            known = False
        else:
            total += monthly
        items.append({"kind": "ebs-volume", "id": volume["id"], "size_gib": volume["size_gib"],
                      "volume_type": volume["type"], "usd_per_month": monthly})
    for endpoint in inventory.owned_endpoints:
        monthly = round(INTERFACE_ENDPOINT_HOURLY_USD * len(endpoint.subnet_ids or (1,)) * HOURS_PER_MONTH, 2)
        total += monthly
        items.append({"kind": "vpc-endpoint", "id": endpoint.id, "usd_per_month": monthly,
                      "note": f"the {endpoint.label} (PrivateLink), billed per AZ-hour whether instances run or not"})
    return {"items": items, "usd_per_month": round(total, 2) if known else None,
            "prices": "EBS gp3 $0.08 and gp2 $0.10 per GB-month, endpoint $0.01 per AZ-hour (us-west-2, 2026-12-01); "
                      "other regions differ by a few cents"}


# StartInstances' refusals of a Spot instance while its zone has no Spot capacity for it; the second is what EC2
# answers while the persistent request is not in a state to start it (EC2 API reference, "Error codes").
SPOT_NOT_YET = ("InsufficientInstanceCapacity", "IncorrectSpotRequestState")


def _start(args, env, ui, aws, inventory) -> Result:
    from amazonei_setup.aws.client import explain
    from amazonei_setup.aws.resources import instance as instances
    from amazonei_setup.cli.commands.common import emulated
    from amazonei_setup.cli.commands.setup import (
        ssh_reachability,
        ssh_through_proxy,
        ssm_readiness,
        write_ssh_entries,
    )
    from amazonei_setup.core.errors import AwsError, error_code
    from amazonei_setup.core.events import Event

    ids = [i.id for i in inventory.instances]
    already = all(i.state == "running" for i in inventory.instances)
    left_to_ec2: list[str] = []
    if not already:
        if any(i.state == "stopping" for i in inventory.instances):  # EC2 refuses to start what is still stopping
            _wait_states(aws, [i.id for i in inventory.instances if i.state == "stopping"], done="stopped",
                         timeout=STOP_TIMEOUT, env=env, ui=ui, label="the stopping instances")
        current = instances.describe_many(aws.ec2, ids)
        # Only EC2 restarts a Spot instance an interruption stopped, when capacity returns in its zone (EC2 User
        # Guide, "Behavior of Spot Instance interruptions"): StartInstances is not ours to send for it.
        reclaimed = [i for i in current if i.state == "stopped" and i.interrupted]
        to_start = [i.id for i in current if i.state == "stopped" and not i.interrupted]
        if reclaimed and not to_start:
            raise AwsError(
                f"{', '.join(i.id for i in reclaimed)} was stopped by a Spot interruption (EC2 reclaimed the "
                f"capacity): only EC2 can start it, and it does so when Spot capacity for {reclaimed[0].instance_type} "
                "returns in its zone; the volume and your work are kept. Nothing changed; `status` shows when it runs "
                "again.", code="capacity")
        left_to_ec2 = [i.id for i in reclaimed]
        ids = [i for i in ids if i not in left_to_ec2]  # the rest start now; those wait for EC2
        try:
            if to_start:
                instances.start(aws.ec2, to_start)
                ui.progress(Event("start", "instance", f"Starting {_label(to_start)}", to_start[0]))
        except KeyboardInterrupt as stop:
            raise _interrupted(args, aws, ids, stop, "start", inventory) from None
        except Exception as err:  # noqa: BLE001
            spot = [i for i in inventory.instances if i.id in to_start and i.market == "spot"]
            if spot and error_code(err) in SPOT_NOT_YET:
                raise AwsError(
                    f"Spot capacity for {spot[0].instance_type} is not there yet in its Availability Zone: EC2 refused "
                    f"to start {', '.join(i.id for i in spot)} ({error_code(err)}). Nothing changed; run start again "
                    "later (a Spot instance starts only in its own zone). One stopped by a Spot interruption is "
                    "started by EC2 itself when capacity returns.", code="capacity") from None
            raise explain(err, aws, doing=f"starting {', '.join(to_start)}") from None
    # Not `stopped` as a failure: right after StartInstances, DescribeInstances may still say so for a moment (EC2's
    # reads are eventually consistent); a deployment stopped again meanwhile ends in the timeout's sentence.
    try:
        found = _wait_states(aws, ids, done="running", timeout=START_TIMEOUT, env=env, ui=ui, label=_label(ids))
    except KeyboardInterrupt as stop:
        raise _interrupted(args, aws, ids, stop, "start", inventory) from None
    access = access_of(args, aws, inventory)
    from amazonei_setup.core import interrupts

    # Running with addresses: a signal from here on only cuts the SSH wait short; the entry is still written.
    interrupts.finishing(f"deployment {args.name} is running ({', '.join(i.id for i in found)}); "
                         f"connect: {connect_commands(access, found[0].host, found[0].ssh_port, found[0].id)[0]}")
    warnings: list[str] = []
    if left_to_ec2:
        warnings.append(f"{', '.join(left_to_ec2)} stayed stopped: a Spot interruption stopped it, and only EC2 starts "
                        "it again, when Spot capacity returns in its zone.")
    ssm_check = None
    if access.via == "ssm":  # no port 22 to knock on: ready is the SSM agent Online again
        ssm_check = ssm_readiness(env, ui, aws, found, warnings=warnings)
        ssh_check = (ssh_through_proxy(env, found, access, emulated=emulated(args, env), warnings=warnings)
                     if ssm_check == "online" else "not-waited")
    else:
        ssh_check = ssh_reachability(args, env, ui, found, emulated=emulated(args, env), warnings=warnings)
    ssh_config = None
    if not getattr(args, "no_ssh_config", False):
        ssh_config = write_ssh_entries(args, aws.region, args.name, found, access, warnings, include=False,
                                       emulated=emulated(args, env))
    rows = []
    for each in found:
        ssh, forward = connect_commands(access, each.host, each.ssh_port, each.id)
        rows.append({"instance_id": each.id, "state": each.state, "public_dns": each.public_dns,
                     "public_ip": each.public_ip, "ssh_command": ssh, "port_forward_command": forward})
    message = (f"Deployment {args.name} was already running." if already
               else f"Deployment {args.name} is running again ({', '.join(ids)}).")
    data = {"name": args.name, "region": aws.region, "already": already, "instances": rows,
            "public_dns": rows[0]["public_dns"], "public_ip": rows[0]["public_ip"],
            "ssh_command": rows[0]["ssh_command"], "port_forward_command": rows[0]["port_forward_command"],
            "ssh_check": ssh_check, "ssh_config": ssh_config, **({"ssm_check": ssm_check} if ssm_check else {}),
            "stop_command": command_for(args, "stop", aws.region, args.name)}
    return Result("start", data, view="power", message=message, warnings=warnings)


def _interrupted(args, aws, ids: list[str], stop: BaseException, verb: str, inventory=None):
    """A signal after StartInstances or StopInstances may have been sent: EC2 goes on without us, so say what the
    instances are now (one look), and leave `ssh NAME` pointing at a current address or nowhere."""
    from amazonei_setup.aws.resources import instance as instances
    from amazonei_setup.core import interrupts
    from amazonei_setup.core.errors import Interrupted, stopped_by

    again = command_for(args, verb, aws.region, args.name)
    status = command_for(args, "status", aws.region, args.name)
    interrupts.if_stopped_now(f"the {verb} of {args.name} may have been sent; see `{status}`.")
    try:
        found = instances.describe_many(aws.ec2, ids)
    except Exception:  # noqa: BLE001 - the state is unknown; say so
        forget_ssh_entry(args)
        return Interrupted(f"{stopped_by(stop)}: the {verb} of {args.name} may have been sent, and its state could "
                           f"not be read; `ssh {args.name}` is off until `{again}` finishes; see `{status}`.")
    states = ", ".join(f"{i.id} {i.state}" for i in found)
    addressed = [i for i in found if i.state == "running" and i.host]
    ssh = f"`ssh {args.name}` is off until `{again}` finishes"
    if verb == "start" and addressed and len(addressed) == len(found) and not getattr(args, "no_ssh_config", False):
        from amazonei_setup.cli.commands.setup import write_ssh_entries

        warnings: list[str] = []
        written = write_ssh_entries(args, aws.region, args.name, found, access_of(args, aws, inventory), warnings,
                                    include=False)
        if written and written.get("file"):
            ssh = f"`ssh {args.name}` now leads to {addressed[0].host}"
    else:
        forget_ssh_entry(args)
    goes_on = "EC2 goes on without this command" if any(i.state in ("pending", "stopping") for i in found) else \
        "nothing is in progress"
    then = "wait for it and print how to connect" if verb == "start" else "wait until it is stopped"
    return Interrupted(f"{stopped_by(stop)}: {args.name} is now {states} ({goes_on}); {ssh}. To {then}, run: "
                       f"{again}")

