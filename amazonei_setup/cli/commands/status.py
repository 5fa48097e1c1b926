"""`status --name N`: one deployment, every piece and its state, how to connect, and what it costs.

Also what the other day-two commands (connect, stop, start) share: finding a deployment by name without --region,
and how to reach its instances (SSH user, key file, host names) from its tags, this machine's record, and defaults.

Cost so far is an approximation, and says so: EC2 reports only an instance's latest start (`LaunchTime`, reset by
each start) and, for a stopped instance, when it stopped (`StateTransitionReason`). So the figure is the current
run's (or, stopped, the last run's) hours x today's catalog price; earlier runs are only in CloudTrail / Cost
Explorer, and storage (EBS) is not in it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from amazonei_setup.cli.commands import Result
from amazonei_setup.cli.commands.common import home_of, key_dir_of
from amazonei_setup.cli.commands.printed import command_for
from amazonei_setup.cli.environment import Environment

COST_BASIS = ("since the last start: EC2 reports an instance's latest start (LaunchTime) and its last stop, not "
              "earlier runs; catalog price x those hours, storage not included")
_STOPPED_AT = re.compile(r"\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (?:GMT|UTC)\)")


# ---- shared by status, connect, stop, start -------------------------------------------------------------------

def locate(args, aws):
    """The Aws of the region deployment args.name lives in: --region, else its IAM role's region tag."""
    if args.region:
        return aws

    return home_of(args.name, aws, deleting=False, sandbox=args.sandbox)


def inventory_of(args, aws):
    """Everything deployment args.name has in aws.region; not-found (exit 1, the closest names) when nothing."""
    from amazonei_setup.core.errors import ToolError
    from amazonei_setup.flows import deployments
    from amazonei_setup.local import records

    inventory = deployments.find_deployment(aws, args.name)
    if inventory.empty:
        said = deployments.nothing_left(aws, inventory, records.load(aws.region, args.name, sandbox=args.sandbox),
                                        deleting=False)
        raise ToolError(said, code="not-found")
    return inventory


@dataclass(frozen=True)
class Access:
    """How ssh reaches a deployment's instances."""

    user: str
    key_path: str | None
    key_found: bool
    user_from: str  # tag / record / image / default: where the user name came from
    via: str = "ssh"  # ssh (to port 22) or ssm (Session Manager), from the instance's access tag
    proxy: str | None = None  # with ssm: ssh's ProxyCommand (access.proxy_command); the host is the instance id


def access_of(args, aws, inventory) -> Access:
    """The SSH user from the instance's tag (setup writes it at launch), else this machine's record, else the image's
    name (ubuntu / ec2-user), else ec2-user. The key from the record (where setup saved the .pem), else
    <default key dir>/<key pair>.pem."""
    from pathlib import Path

    from amazonei_setup.core import tags
    from amazonei_setup.local import records

    first = inventory.instances[0] if inventory.instances else None
    record = records.load(aws.region, args.name, sandbox=args.sandbox) or {}
    user, user_from = (first.tags.get(tags.SSH_USER) if first else None), "tag"
    if not user and record.get("ssh_user"):
        user, user_from = record["ssh_user"], "record"
    if not user and first and first.image_id:
        user, user_from = _user_from_image(aws, first.image_id), "image"
    if not user:
        user, user_from = "ec2-user", "default"
    key_name = first.key_name if first else ""
    key_path = record.get("key_path") if record.get("key_path") and (
        not key_name or Path(record["key_path"]).stem == key_name) else None
    if not key_path and key_name:
        key_path = str(key_dir_of(args) / f"{key_name}.pem")
    from amazonei_setup.core import access

    via = (first.tags.get(tags.ACCESS) if first else None) or access.SSH
    proxy = access.proxy_command(aws.region, getattr(args, "profile", None)) if via == access.SSM else None
    return Access(user, key_path, bool(key_path) and Path(key_path).expanduser().exists(), user_from, via, proxy)


def _user_from_image(aws, image_id: str) -> str | None:
    try:
        images = aws.ec2.describe_images(ImageIds=[image_id])["Images"]
    except Exception:  # noqa: BLE001 - a deregistered image: fall back to the default user
        return None
    if not images:
        return None
    return "ubuntu" if "ubuntu" in (images[0].get("Name") or "").lower() else "ec2-user"


def stopped_at(instance) -> datetime | None:
    """When a stopped instance stopped, from StateTransitionReason ("User initiated (2026-12-01 20:40:29 GMT)")."""
    found = _STOPPED_AT.search(instance.state_reason or "")
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) if found else None


def hours_of_last_run(instance, now: datetime) -> float | None:
    """Hours from the latest start to now (running) or to the stop (stopped); None when EC2 does not say."""
    if not instance.launch_time:
        return None
    started = datetime.fromisoformat(instance.launch_time)
    if instance.state in ("running", "pending", "stopping", "shutting-down"):
        end = now
    else:
        end = stopped_at(instance)
        if end is None or end < started:
            return None
    return max((end - started).total_seconds() / 3600, 0.0)


def connect_commands(access: Access, host: str, port: int = 22, instance_id: str | None = None) -> tuple[str, str]:
    """ssh and the Jupyter tunnel to `host` on `port` (a sandbox instance has its own); through Session Manager to the
    instance id instead."""
    from amazonei_setup.flows.provision import port_forward_command, ssh_command

    if access.proxy and instance_id:
        host = instance_id
    return (ssh_command(access.key_path, access.user, host, access.proxy, port),
            port_forward_command(access.key_path, access.user, host, access.proxy, port))


# ---- status --------------------------------------------------------------------------------------------------

def run(args, env: Environment, ui, aws) -> Result:
    from amazonei_setup.core import catalog, tags
    from amazonei_setup.flows import deployments
    from amazonei_setup.local import sshconfig

    aws = locate(args, aws)
    with ui.status(f"Looking up deployment '{args.name}' in {aws.region}"):
        inventory = inventory_of(args, aws)
        access = access_of(args, aws, inventory)
    now = datetime.now(UTC)
    found = inventory.instances
    first = found[0] if found else None
    accelerator = first.tags.get(tags.ACCELERATOR, "") if first else ""
    family = accelerator if accelerator in catalog.FAMILIES else None
    hourly = catalog.hourly_usd(first.instance_type, accelerator or None, aws.region) if first else None
    hosts = sshconfig.hosts_of(args.name, sandbox=args.sandbox)  # what the block says: a name may have been left out
    rows = []
    total_so_far = 0.0
    costed = bool(found) and hourly is not None
    for each in found:
        aliases = hosts.get(each.id, ())
        hours = hours_of_last_run(each, now)
        cost = round(hours * hourly, 2) if hours is not None and hourly is not None else None
        if cost is None:
            costed = False
        else:
            total_so_far += cost
        running = each.state == "running" and (each.host or access.proxy)
        ssh, forward = connect_commands(access, each.host, each.ssh_port, each.id) if running else (None, None)
        rows.append({"instance_id": each.id, "state": each.state, "public_dns": each.public_dns,
                     "public_ip": each.public_ip, "launch_time": each.launch_time,
                     "stopped_at": (stopped_at(each).isoformat() if each.state == "stopped" and stopped_at(each)
                                    else None),
                     "ssh_host": aliases[0] if aliases else None, "ssh_command": ssh, "port_forward_command": forward,
                     "hours_since_last_start": round(hours, 2) if hours is not None else None,
                     "cost_so_far_usd": cost,
                     # Spot keys on Spot instances only: an On-Demand row keeps the keys it always had.
                     **({"market": "spot", "spot_interrupted": each.interrupted} if each.market == "spot" else {})})
    running = sum(1 for each in found if each.state in ("running", "pending"))
    spot = [each for each in found if each.market == "spot"]
    if spot:
        prices = deployments.spot_prices_of(aws, spot)
        spot_data = {"market": "spot" if len(spot) == len(found) else "mixed",
                     "spot_hourly_usd": next((prices[i.id] for i in spot if i.id in prices), None),
                     "spot_requests": [{"id": r["SpotInstanceRequestId"], "state": r.get("State"),
                                        "status": (r.get("Status") or {}).get("Code")}
                                       for r in inventory.spot_requests]}
    else:
        spot_data = {}
    states = sorted({each.state for each in found})
    data = {
        "name": args.name, "region": aws.region,
        "state": states[0] if len(states) == 1 else ("mixed: " + ", ".join(states) if states else "no instance"),
        "instance_type": first.instance_type if first else None,
        "accelerator_type": accelerator if accelerator and not family else None,
        **({"family": family} if family else {}),
        "instance_id": first.id if first else None,
        "public_dns": first.public_dns if first else "", "public_ip": first.public_ip if first else "",
        "instances": rows,
        "ssh_user": access.user, "key_path": access.key_path, "key_found": access.key_found,
        "ssh_command": rows[0]["ssh_command"] if rows else None,
        "port_forward_command": rows[0]["port_forward_command"] if rows else None,
        "ssh_config": {"file": str(sshconfig.config_file(args.sandbox)),
                       "host": hosts[found[0].id][-1] if found and found[0].id in hosts else None,
                       "included": not args.sandbox and sshconfig.has_include()},
        "hourly_usd_per_instance": hourly,
        "hourly_usd_now": round(hourly * running, 4) if hourly is not None else None,
        "cost_so_far_usd": round(total_so_far, 2) if costed else None,
        "cost_basis": COST_BASIS,
        "idle_stop": deployments.describe_idle_stop(aws, inventory),  # None: off
        "idle_stop_command": command_for(args, "idle-stop", aws.region, args.name) + " MINUTES|off",
        **spot_data,
        "pieces": _pieces(inventory),
        **({"unchecked": [u.to_dict() for u in inventory.unchecked]} if inventory.unchecked else {}),
        "start_command": command_for(args, "start", aws.region, args.name),
        "stop_command": command_for(args, "stop", aws.region, args.name),
        "connect_command": command_for(args, "connect", aws.region, args.name),
    }
    data.update(_on_the_machine(args, env, aws, found, access))
    warnings = deployments.unchecked_warnings(inventory)
    if found and access.key_path and not access.key_found:
        warnings.append(f"No private key at {access.key_path}: the instances accept only key pair {first.key_name}; "
                        "use the copy you saved when it was created.")
    return Result("status", data, view="status", warnings=warnings)


def _on_the_machine(args, env, aws, found, access) -> dict:
    """What the machine itself said: the accelerator at the last setup (the local record), and whether our Jupyter
    server runs on the first running instance (asked over ssh, where ssh reaches: real AWS and the sandbox)."""
    from amazonei_setup.cli.commands import jupyter, remote
    from amazonei_setup.cli.commands.common import answers_ssh
    from amazonei_setup.local import records

    note = records.load(aws.region, args.name, sandbox=args.sandbox) or {}
    said = {"accelerator_check": note.get("accelerator_check"), "jupyter": None}
    running = [i for i in found if i.state == "running" and i.host]
    if running and answers_ssh(args, env, running[0]):
        target = remote.targets(args, found, access)[found.index(running[0])]
        port = jupyter.running(target)
        said["jupyter"] = {"running": port is not None, "host": target.label, "remote_port": port}
    return said


def _pieces(inventory) -> list[dict]:
    """Every piece of the deployment and its state, as AWS reports it (tags found it)."""
    pieces = []
    if inventory.stack:
        pieces.append({"kind": "cloudformation-stack", "id": inventory.stack.name, "state": inventory.stack.status})
    pieces += [{"kind": "instance", "id": i.id, "state": i.state} for i in inventory.instances]
    pieces += [{"kind": "security-group", "id": g["GroupId"], "state": "exists"} for g in inventory.security_groups]
    for endpoint in inventory.endpoints:
        shared = "" if endpoint.tags.get("amazonei-setup:deployment") == inventory.name else " (shared)"
        piece = {"kind": "vpc-endpoint", "id": endpoint.id, "state": f"{endpoint.state}{shared}"}
        if not endpoint.is_ei:  # Session Manager's way out for a private instance
            piece.update(service=endpoint.service,
                         state=f"{endpoint.state}{shared}, {endpoint.label} (Session Manager)")
        pieces.append(piece)
    if inventory.key_pair:
        pieces.append({"kind": "key-pair", "id": inventory.key_pair["KeyName"], "state": "exists"})
    if inventory.role:
        pieces.append({"kind": "iam-role", "id": inventory.role["RoleName"], "state": "exists"})
    if inventory.profile:
        pieces.append({"kind": "instance-profile", "id": inventory.profile["InstanceProfileName"], "state": "exists"})
    pieces += [{"kind": "idle-alarm", "id": a.name, "state": a.state or "exists"} for a in inventory.idle_alarms]
    pieces += [{"kind": "spot-request", "id": r["SpotInstanceRequestId"], "state": r.get("State", "")}
               for r in inventory.spot_requests]
    return pieces
