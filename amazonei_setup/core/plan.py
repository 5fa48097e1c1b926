"""Plan: every decision a setup needs, made before anything is created.

The wizard builds it (from flags, defaults and answers); the CLI shows it and asks to confirm;
provision executes it. It is plain data: frozen, JSON-able, no AWS clients.
"""
from __future__ import annotations

import ipaddress
import os
import shlex
from dataclasses import asdict, dataclass, field

from amazonei_setup.core.catalog import INTERFACE_ENDPOINT_HOURLY_USD
from amazonei_setup.core.tags import resource_name

CREATE, REUSE, UPDATE = "create", "reuse", "update"
LAUNCHER = "python amazonei_setup.py"  # the program a printed command names when the caller gives none
DEFAULT_VOLUME_GIB = 100


def teardown_command(region: str, name: str, account_flags: str = "") -> str:
    """The command that removes a deployment. account_flags (" --sandbox", " --profile p") must
    address the same account as the setup: without --sandbox a copied command would reach real AWS."""
    return f"{LAUNCHER} teardown{account_flags} --region {shlex.quote(region)} --name {shlex.quote(name)}"


@dataclass(frozen=True)
class PlanItem:
    """One resource the setup touches and what it will do to it."""

    kind: str
    name: str
    action: str  # create / reuse / update
    detail: str = ""


@dataclass(frozen=True)
class Plan:
    name: str
    region: str
    account_id: str
    owner: str
    instance_type: str
    accelerator_type: str | None
    os_key: str | None
    ami_id: str
    ami_name: str
    ssh_user: str
    root_device: str
    volume_size: int
    vpc_id: str
    subnet_id: str
    availability_zone: str
    key_name: str
    create_key: bool
    key_path: str | None  # where the private key is (created) or is expected to be (reused)
    ssh_cidr: str
    role_name: str
    profile_name: str
    security_group_name: str
    security_group_id: str | None  # set when the deployment's group already exists
    endpoint_id: str | None  # set when an EI endpoint already exists in the VPC
    endpoint_add_subnet: bool = False
    endpoint_enable_private_dns: bool = False
    instance_id: str | None = None  # set when the deployment already has an instance
    instance_state: str | None = None
    hourly_usd: float | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    family: str | None = None  # inf2 / gpu: today's alternative (accelerator_type is then None)
    count: int = 1  # instances launched in one run_instances call (--count)
    min_count: int = 1  # fewer are accepted down to this (--min-count); EC2 launches all or nothing otherwise
    instance_ids: tuple[str, ...] = ()  # every live instance of an existing deployment (instance_id is the first)
    ssh_cidrs_before: tuple[str, ...] = ()  # SSH ranges this tool opened on the existing group (a re-run converges)
    ssh_cidr_kept: bool = False  # no --ssh-cidr on an existing group: its ranges stay as they are (ssh_cidr: the first)
    replace_key: bool = False  # the deployment's own key pair exists but its private key is gone: make a new one
    key_set_aside: str | None = None  # a leftover file at key_path (its key pair is gone) is moved here first
    instance_states: tuple[str, ...] = ()  # the state of each of instance_ids (a stopped one is started)
    ami_from_flag: bool = False  # the image was named with --ami-id (else: the newest image of its line)
    image_source: str = ""  # an alternative's image: the SSM parameter that named it, or "name pattern: ..."
    idle_stop_minutes: int | None = None  # --idle-stop: stop each instance after this many idle minutes (None: as is)
    idle_alarms_before: tuple[tuple[str, int | None], ...] = ()  # (instance id, minutes) of the alarms that exist
    spot: str | None = None  # --spot: "required" (Spot only) / "auto" (Spot, else On-Demand); None: On-Demand
    spot_hourly_usd: float | None = None  # the latest Spot price of instance_type in availability_zone (None: unknown)

    @property
    def market_label(self) -> str:
        """How the instances are bought, for the plan and the result: Spot's terms in a few words."""
        if not self.spot:
            return "On-Demand"
        price = f" ${self.spot_hourly_usd:.4f}/h now" if self.spot_hourly_usd is not None else ""
        on_demand = f" ${self.hourly_usd:.4f}/h" if self.hourly_usd is not None else ""
        terms = f"Spot{price} (On-Demand{on_demand}), persistent request: stopped when EC2 reclaims it"
        return terms + ("; On-Demand if EC2 refuses Spot" if self.spot == "auto" else "; fails if EC2 refuses Spot")
    access: str = "ssh"  # how ssh gets in: ssh (port 22 from ssh_cidr) or ssm (Session Manager, no inbound port)
    access_before: str | None = None  # the existing deployment's (its group's tag; None: a new deployment)
    aws_profile: str | None = None  # --profile, which the Session Manager ProxyCommand carries
    public_ip: bool = True  # False: --no-public-ip (Session Manager only)
    outbound: str = "public-ip"  # how the SSM agent reaches AWS: public-ip, nat, endpoints (access.PUBLIC_IP, ...)
    # outbound "endpoints": (service, the VPC's endpoint shared or None to create one, turn its private DNS on) for
    # each of Session Manager's interface endpoints (access.SSM_ENDPOINT_SERVICES)
    ssm_endpoints: tuple[tuple[str, str | None, bool], ...] = ()
    private_subnet: bool = False  # the subnet's default route reaches no internet gateway: no public IP, unasked

    @property
    def endpoints_hourly_usd(self) -> float:
        """What the Session Manager endpoints this setup creates add per hour, whether instances run or not."""
        return INTERFACE_ENDPOINT_HOURLY_USD * sum(1 for _, endpoint_id, _ in self.ssm_endpoints if not endpoint_id)

    @property
    def via_ssm(self) -> bool:
        return self.access == "ssm"

    @property
    def proxy_command(self) -> str | None:
        """ssh's ProxyCommand with --access ssm (access.proxy_command), else None."""
        from amazonei_setup.core.access import proxy_command

        return proxy_command(self.region, self.aws_profile) if self.via_ssm else None

    @property
    def stale_ssh_cidrs(self) -> list[str]:
        """SSH ranges on the existing group that the re-run closes: every one this tool opened but --ssh-cidr (none
        when --ssh-cidr was not given: the ranges are kept)."""
        if self.via_ssm:  # no inbound port: every range this tool opened closes
            return list(self.ssh_cidrs_before)
        if self.ssh_cidr_kept:
            return []
        wanted = ipaddress.ip_network(self.ssh_cidr, strict=False)
        return [c for c in self.ssh_cidrs_before if ipaddress.ip_network(c, strict=False) != wanted]

    @property
    def exists(self) -> bool:
        return self.security_group_id is not None or self.instance_id is not None

    def items(self) -> list[PlanItem]:
        """What will be created, reused or changed, in the order setup walks them."""
        deployment_action = REUSE if self.exists else CREATE
        role_detail = ("EC2 may assume it; SSM + CloudWatch agent managed policies" if self.family
                       else "EC2 may assume it; EI connect policy"
                       + ("; AmazonSSMManagedInstanceCore (Session Manager)" if self.via_ssm else ""))
        role_action = deployment_action
        if self.exists and not self.family and self.access_before and self.access_before != self.access:
            role_action = UPDATE  # Session Manager's managed policy is attached or detached
        items = [
            PlanItem("iam-role", self.role_name, role_action, role_detail),
            PlanItem("instance-profile", self.profile_name, deployment_action),
            self._group_item(),
        ]
        if self.accelerator_type:
            if self.endpoint_id:
                changes = [c for c, on in (("add subnet", self.endpoint_add_subnet),
                                           ("enable private DNS", self.endpoint_enable_private_dns)) if on]
                items.append(PlanItem("vpc-endpoint", self.endpoint_id, UPDATE if changes else REUSE,
                                      ", ".join(changes) or "shared EI runtime endpoint"))
            else:
                items.append(PlanItem("vpc-endpoint", "elastic-inference.runtime", CREATE, "private DNS on"))
        for service, endpoint_id, enable_dns in self.ssm_endpoints:
            if endpoint_id:
                items.append(PlanItem("ssm-endpoint", endpoint_id, UPDATE if enable_dns else REUSE,
                                      f"the VPC's {service} endpoint (Session Manager)"
                                      + ("; enable private DNS" if enable_dns else "")))
            else:
                items.append(PlanItem("ssm-endpoint", service, CREATE,
                                      f"Session Manager, private DNS on; ${INTERFACE_ENDPOINT_HOURLY_USD:.2f}/h until "
                                      "teardown (shared with later deployments in the VPC)"))
        key_note = ("" if not self.create_key else f"private key saved to {self.key_path}" if self.key_path
                    else "by the stack; its private key goes to SSM Parameter Store")
        if self.key_set_aside:
            key_note += f" (the leftover file there is moved to {self.key_set_aside})"
        if self.replace_key:
            items.append(PlanItem("key-pair", self.key_name, UPDATE,
                                  f"no private key at {self.key_path}: replaced by a new key pair saved there"))
        else:
            items.append(PlanItem("key-pair", self.key_name, CREATE if self.create_key else REUSE, key_note))
        if self.instance_id:
            others = len(self.instance_ids) - 1
            stopped = self.instance_states.count("stopped") or int(self.instance_state == "stopped")
            ident = self.instance_id + (f" (+{others} more)" if others > 0 else "")
            if stopped:  # starting an instance is a change (and a cost): the user confirms it
                items.append(PlanItem("instance", ident, UPDATE, "stopped: will be started" if not others else
                                      f"{stopped} stopped: will be started"))
            else:
                items.append(PlanItem("instance", ident, REUSE, self.instance_state or ""))
        else:
            items.append(PlanItem("instance", self.instance_type if self.count == 1 else
                                  f"{self.count} x {self.instance_type}", CREATE,
                                  f"{self.accelerator_label}, {self.ami_name}" + self.count_detail +
                                  (f"; {self.market_label}" if self.spot else "")))
        idle = self._idle_alarm_item()
        if idle:
            items.append(idle)
        return items

    def _idle_alarm_item(self) -> PlanItem | None:
        """One item for the instances' idle auto-stop alarms (one alarm per instance)."""
        before = dict(self.idle_alarms_before)
        wanted = self.idle_stop_minutes
        alarm = f"{resource_name(self.name)}-idle-<instance>"  # resources/alarm.alarm_name, one per instance
        label = alarm if self.count == 1 else f"{self.count} x {alarm}"
        if wanted is None:
            if not before:
                return None
            minutes = sorted({m for m in before.values() if m})
            shown = "/".join(str(m) for m in minutes) or "?"
            return PlanItem("idle-alarm", label, REUSE, f"stops an instance after {shown} idle minutes")
        detail = f"CloudWatch alarm: stop after {wanted} idle minutes (low CPU and network)"
        instances = self.instance_ids or ((self.instance_id,) if self.instance_id else ())
        if instances and all(before.get(i) == wanted for i in instances):
            return PlanItem("idle-alarm", label, REUSE, detail)
        if before:
            was = "/".join(str(m) for m in sorted({m for m in before.values() if m})) or "?"
            return PlanItem("idle-alarm", label, UPDATE, f"{was} -> {wanted} idle minutes")
        return PlanItem("idle-alarm", label, CREATE, detail)

    @property
    def changes_anything(self) -> bool:
        """False for a re-run that finds everything as the flags want it: nothing to confirm."""
        return any(item.action != REUSE for item in self.items())

    def equivalent_command(self, program: str = LAUNCHER, account_flags: str = "", *,
                           default_key_dir: str = "~/.ssh", region: str | None = None) -> str:
        """The setup command that makes every choice of this plan with flags and --yes, so that an interactive
        run can be scripted. program: how the user started the tool; account_flags (" --sandbox",
        " --profile p"): the same account. Flags at their built-in default (volume, count) are left out;
        the key directory too when it is default_key_dir. region: the same setup in another region (a refused
        launch's suggestion): what is regional (image, VPC, subnet, key pair) is left for that region to decide,
        and a key pair this plan would have made is made there."""
        here = region in (None, self.region)
        parts = [*shlex.split(program), *shlex.split(account_flags), "--region", region or self.region,
                 "--name", self.name, "--instance-type", self.instance_type]
        if self.family:
            parts += ["--accelerator", self.family]
        else:
            parts += ["--accelerator-type", self.accelerator_type] if self.accelerator_type else []
            if self.os_key and not (self.ami_from_flag and here):
                parts += ["--os", self.os_key]
        if here:
            if self.ami_from_flag:
                parts += ["--ami-id", self.ami_id]
            parts += ["--vpc-id", self.vpc_id, "--subnet-id", self.subnet_id]
        if self.create_key and (not self.replace_key or not here):
            parts.append("--new-key")  # the key is named after the deployment: amazonei-setup-<name>
        elif here:  # a key pair of the user's own exists in this region only
            parts += ["--key-name", self.key_name]
        key_dir = os.path.dirname(self.key_path) if self.key_path else None
        if key_dir and os.path.normpath(key_dir) != os.path.normpath(os.path.expanduser(default_key_dir)):
            parts += ["--key-dir", key_dir]
        parts += ["--access", "ssm"] if self.via_ssm else ["--ssh-cidr", self.ssh_cidr]
        if not self.public_ip:
            parts.append("--no-public-ip")
        if self.volume_size != DEFAULT_VOLUME_GIB:
            parts += ["--volume-size", str(self.volume_size)]
        if self.count > 1:
            parts += ["--count", str(self.count)]
        if self.min_count < self.count:
            parts += ["--min-count", str(self.min_count)]
        if self.idle_stop_minutes:
            parts += ["--idle-stop", str(self.idle_stop_minutes)]
        if self.spot:
            parts += ["--spot", "auto"] if self.spot == "auto" else ["--spot"]
        parts.append("--yes")
        return " ".join(shlex.quote(p) for p in parts)

    def _group_item(self) -> PlanItem:
        https = "" if self.family else "; 443 from itself"
        if self.via_ssm:
            detail = "no inbound SSH: ssh through Session Manager" + https
            if not self.security_group_id:
                return PlanItem("security-group", self.security_group_name, CREATE, detail)
            if self.ssh_cidrs_before or self.access_before != "ssm":
                closed = ", ".join(self.ssh_cidrs_before)
                return PlanItem("security-group", self.security_group_id, UPDATE,
                                detail + (f" (closes 22 from {closed})" if closed else ""))
            return PlanItem("security-group", self.security_group_id, REUSE, detail)
        if self.security_group_id and self.access_before == "ssm":
            return PlanItem("security-group", self.security_group_id, UPDATE,
                            f"Session Manager -> 22 from {self.ssh_cidr}{https}")
        if not self.security_group_id:
            return PlanItem("security-group", self.security_group_name, CREATE, f"22 from {self.ssh_cidr}{https}")
        if self.ssh_cidr_kept:
            return PlanItem("security-group", self.security_group_id, REUSE,
                            f"keep 22 from {', '.join(self.ssh_cidrs_before)}{https} (--ssh-cidr changes it)")
        stale = self.stale_ssh_cidrs
        if stale or len(stale) == len(self.ssh_cidrs_before):  # a range to close, or --ssh-cidr not open yet
            before = ", ".join(self.ssh_cidrs_before) or "nowhere"
            return PlanItem("security-group", self.security_group_id, UPDATE, f"22 from {before} -> {self.ssh_cidr}")
        return PlanItem("security-group", self.security_group_id, REUSE, f"22 from {self.ssh_cidr}{https}")

    @property
    def count_detail(self) -> str:
        if self.min_count < self.count:
            return f"; at least {self.min_count} if EC2 lacks capacity for all"
        return "; all or none" if self.count > 1 else ""

    @property
    def accelerator_label(self) -> str:
        if self.family:
            return f"{self.family} (the instance's own accelerator)"
        return self.accelerator_type or "no accelerator"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["warnings"] = list(self.warnings)
        out["items"] = [asdict(i) for i in self.items()]
        return out
