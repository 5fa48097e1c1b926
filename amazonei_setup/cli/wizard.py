"""Decide every open choice of a setup, asking only for what flags did not settle.

`build_plan(request, facts, asker)` is pure decision logic: no AWS calls, no printing. The same
code serves interactive and scripted runs; only the Asker differs:
  * QuestionaryAsker: arrow-key prompts, defaults highlighted;
  * DefaultsAsker: takes each default, and where there is no safe default raises a UsageError
    that names the flag to pass (used with --yes and whenever stdin is not a terminal).
"""
from __future__ import annotations

import ipaddress
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from amazonei_setup.aws.resources import iam, keypair, network
from amazonei_setup.core import access, catalog, rules, tags
from amazonei_setup.core.errors import UsageError
from amazonei_setup.core.facts import Facts, Image, Subnet
from amazonei_setup.core.plan import DEFAULT_VOLUME_GIB, Plan
from amazonei_setup.core.rules import MAX_VOLUME_GIB, MIN_VOLUME_GIB, NAME_RE, opens_to_world  # noqa: F401 - re-exported


@dataclass(frozen=True)
class SetupRequest:
    """What the command line settled; None means 'not given'."""

    instance_type: str | None  # None only with a family (the family's type is then chosen)
    name: str | None = None
    accelerator_type: str | None = None
    os: str | None = None
    ami_id: str | None = None
    vpc_id: str | None = None
    subnet_id: str | None = None
    key_name: str | None = None
    new_key: bool = False
    key_dir: str | None = None
    ssh_cidr: str | None = None
    volume_size: int | None = None
    default_ssh_cidr: str | None = None  # e.g. the sandbox's loopback, when no lookup is wanted
    family: str | None = None  # inf2 / gpu (--accelerator): today's alternative instead of EI
    count: int | None = None  # --count: instances to launch (None: 1, or whatever an existing deployment has)
    min_count: int | None = None  # --min-count: accept fewer when EC2 lacks capacity
    idle_stop: int | None = None  # --idle-stop MINUTES (None: ask, or keep what the deployment has; --yes: off)
    spot: str | None = None  # --spot: "required" (Spot only) or "auto" (Spot, else On-Demand); None: On-Demand
    access: str | None = None  # --access ssh|ssm (None: what the deployment has, else ssh)
    aws_profile: str | None = None  # --profile: the Session Manager ProxyCommand carries it
    public_ip: bool = True  # --no-public-ip: False (with --access ssm)


@dataclass(frozen=True)
class Option:
    title: str
    value: Any
    separator: bool = False  # a heading between options, not a choice


class Asker(Protocol):
    interactive: bool

    def select(self, message: str, options: list[Option], default: Any, *, flag: str, hint: str = "") -> Any: ...

    def text(self, message: str, default: str | None, *, flag: str, validate: Callable[[str], str | None]) -> str: ...

    def confirm(self, message: str, default: bool = False) -> bool: ...


class DefaultsAsker:
    """Never prompts: takes defaults, or names the flag that would settle the choice."""

    interactive = False

    def __init__(self, assume_yes: bool = True):
        self.assume_yes = assume_yes

    def select(self, message, options, default, *, flag, hint=""):
        if default is None:
            raise UsageError(f"{message.rstrip('?:')}: there is no safe default, so pass {flag}.")
        return default

    def text(self, message, default, *, flag, validate):
        if default is None:
            raise UsageError(f"{message.rstrip('?:')}: pass {flag}.")
        return default

    def confirm(self, message, default=False):
        return self.assume_yes


class QuestionaryAsker:
    """Arrow-key prompts. input/output go to prompt_toolkit (tests pass a pipe input)."""

    interactive = True

    def __init__(self, **prompt_kwargs):
        self.prompt_kwargs = prompt_kwargs

    def select(self, message, options, default, *, flag, hint=""):
        import questionary

        # The rows are made for 80 columns; prompt_toolkit breaks what is wider than the screen mid-word, in the list
        # and in the answer echoed after the question. So on a narrower screen a row is cut between words (its id
        # comes first and stays whole) and the hint is wrapped between words.
        columns = self._columns()
        room = columns - len(f"? {message} ")
        # Each choice's value is its position: questionary turns a value of None into the title.
        choices = [questionary.Separator(_fit(o.title, columns - 3)) if o.separator
                   else questionary.Choice(_fit(o.title, room), value=index) for index, o in enumerate(options)]
        default_choice = next((c for c, o in zip(choices, options, strict=True)
                               if not o.separator and o.value == default), None)
        instruction = _wrapped(hint, room, columns) if hint else None
        chosen = _answer(questionary.select(message, choices=choices, default=default_choice,
                                            instruction=instruction, **self.prompt_kwargs))
        return options[chosen].value

    def _columns(self) -> int:
        output = self.prompt_kwargs.get("output")
        try:
            return output.get_size().columns if output is not None else shutil.get_terminal_size().columns
        except (OSError, ValueError, AttributeError):
            return 80

    def text(self, message, default, *, flag, validate):
        import questionary

        # Validated as it is returned: stripped (a pasted address often carries a space).
        return _answer(questionary.text(message, default=default or "", validate=lambda v: validate(v.strip()) or True,
                                        **self.prompt_kwargs)).strip()

    def confirm(self, message, default=False):
        import questionary

        return _answer(questionary.confirm(message, default=default, **self.prompt_kwargs))


def _fit(title: str, room: int) -> str:
    """`title` within `room` columns: as it is when it fits; else with its column padding closed up; else cut
    between words, with an ellipsis."""
    if len(title) <= room:
        return title
    words = title.split()
    title = " ".join(words)
    while len(title) > room and len(words) > 1:
        words.pop()
        title = " ".join(words) + "…"
    return title


def _wrapped(text: str, first: int, columns: int) -> str:
    """`text` broken between words: `first` columns on the question's line, `columns` on the next ones."""
    lines, line, room = [], "", first
    for word in text.split():
        if line and len(line) + 1 + len(word) > room:
            lines.append(line)
            line, room = word, columns
        else:
            line = f"{line} {word}" if line else word
    return "\n".join([*lines, line])


def _answer(question):
    """Ask; the end of input (Ctrl-D, a closed terminal) is the user stopping, like Ctrl-C."""
    try:
        return question.unsafe_ask()
    except EOFError:
        raise KeyboardInterrupt from None


# ---- validation shared by flags and prompts -------------------------------------------------

def name_problem(name: str) -> str | None:
    try:
        rules.name(name)
    except rules.RuleError:
        # Short: questionary shows it in a one-line toolbar that a terminal of 80 columns cuts, not wraps.
        return "use 1-32 of a-z, 0-9 and '-', starting with a letter or digit"
    return None


def cidr_problem(value: str) -> str | None:
    try:
        rules.cidr(value)
    except rules.RuleError as err:
        return str(err)
    return None


def generated_name() -> str:
    return f"amazonei-{secrets.token_hex(3)}"


# ---- the decisions ----------------------------------------------------------------------------

def build_plan(request: SetupRequest, facts: Facts, asker: Asker) -> Plan:
    warnings: list[str] = []
    # The name first, whether flagged or typed: a deployment that already has it is converged
    # onto (same instance, group, key), never duplicated.
    name = _choose_name(request, facts, asker)
    _refuse_another_regions_name(facts, name)
    existing = _existing_deployment(request, facts, name)
    instance = existing["instance"] if existing else None
    family: catalog.Family | None = None
    instance_type = facts.instance_type.name if facts.instance_type else request.instance_type
    if instance:  # the instance keeps its accelerator and image: nothing is launched
        accelerator = instance.tags.get(tags.ACCELERATOR) or None
        if accelerator in catalog.FAMILIES:
            family, accelerator = catalog.FAMILIES[accelerator], None
        instance_type = instance.instance_type
        image, os_key = None, request.os
    else:
        accelerator = request.family or _choose_accelerator(request, facts, asker)
        if accelerator in catalog.FAMILIES:
            family, accelerator = catalog.FAMILIES[accelerator], None
            instance_type = _choose_family_type(request, asker, family, warnings, facts.region)
            os_key, image = None, _choose_family_image(request, facts, family)
        else:
            instance_type = instance_type or _choose_ei_host(asker, accelerator)
            warnings += _below_the_offered_hosts(instance_type, facts)
            os_key, image = _choose_image(request, facts, asker, warnings)
    arch = image.architecture if image else "x86_64"
    described = facts.instance_type if facts.instance_type and facts.instance_type.name == instance_type else None
    if described and described.architectures and arch not in described.architectures:
        raise UsageError(f"The image {image.id} is built for {arch} but {facts.instance_type.name} runs "
                         f"{'/'.join(facts.instance_type.architectures)}: pick an x86_64 --instance-type "
                         "(e.g. m5.xlarge) or another --ami-id.")
    subnet = existing["subnet"] if existing else _choose_subnet(request, facts, asker, _zones(facts, family,
                                                                                             instance_type))
    key_name, create_key, key_path, replace_key, key_set_aside = _choose_key(request, facts, asker, name, existing,
                                                                             warnings)
    group = existing["group"] if existing else None
    ssh_before = tuple(network.our_ssh_cidrs(group)) if group else ()
    # On a deployment that exists, a flag given is the desired state and a choice not given keeps what it has: a
    # re-run from another address must not shut out the range chosen before (a teammate's), nor need an address.
    ssh_kept = bool(ssh_before) and not request.ssh_cidr
    access_before = (tags.as_dict(group.get("Tags")).get(tags.ACCESS) or "ssh") if group else None
    access_mode = request.access or access_before or "ssh"
    if access_mode == "ssm":
        if request.ssh_cidr:
            raise UsageError("--ssh-cidr opens port 22, and this deployment is reached with --access ssm (no inbound "
                             "port): drop --ssh-cidr, or pass --access ssh with it.")
        ssh_kept, ssh_cidr = False, ""
    elif ssh_kept:
        ssh_cidr = ssh_before[0]
    else:
        ssh_cidr = _choose_ssh_cidr(request, facts, asker, warnings)
    idle_before = tuple((a.instance_id, a.minutes) for a in facts.idle_alarms)
    hourly = catalog.hourly_usd(instance_type, accelerator, facts.region)
    spot = _choose_spot(request, asker, family, converging=instance is not None)
    idle_stop = _choose_idle_stop(request, asker, idle_before, hourly, converging=instance is not None)
    public_ip, outbound, ssm_endpoints = True, access.PUBLIC_IP, ()
    private_subnet = not instance and _private(facts, subnet)
    if (not request.public_ip or private_subnet) and not instance:
        if access_mode != "ssm":
            if private_subnet:
                raise UsageError(f"{subnet.id} is a private subnet (its route table sends 0.0.0.0/0 to no internet "
                                 "gateway): an instance there cannot be reached on port 22 from here. Add --access "
                                 "ssm (Session Manager), or pass a --subnet-id of a public subnet.")
            raise UsageError("An instance without a public IP cannot be reached on port 22 from here: add --access "
                             "ssm (Session Manager), or drop --no-public-ip.")
        public_ip = False
        outbound, ssm_endpoints = _way_out(facts, subnet)
    elif instance and not instance.public_ip and access_mode == "ssm":
        # A private deployment's re-run converges its way out too: an endpoint deleted since is made again.
        outbound, ssm_endpoints = _way_out(facts, subnet)
    if ssh_cidr and opens_to_world(ssh_cidr):
        warnings.append(f"SSH is open to the whole internet ({ssh_cidr}); prefer your own address/32.")
    volume = request.volume_size or DEFAULT_VOLUME_GIB
    if image and image.snapshot_gib and volume < image.snapshot_gib:
        raise UsageError(f"The image needs a root volume of at least {image.snapshot_gib} GiB: pass "
                         f"--volume-size {image.snapshot_gib} or more.")
    endpoint_id, add_subnet, enable_dns = _endpoint_decision(facts, subnet, accelerator)
    os_info = catalog.OPERATING_SYSTEMS.get(os_key or "")
    ssh_user = (instance.tags.get(tags.SSH_USER) if instance else None) or (
        family.ssh_user if family else os_info.ssh_user if os_info else _guess_user(image))
    return Plan(
        name=name, region=facts.region, account_id=facts.account_id, owner=facts.owner,
        instance_type=instance_type, accelerator_type=accelerator, os_key=os_key,
        ami_id=image.id if image else instance.image_id,
        ami_name=image.name if image else "", ssh_user=ssh_user,
        root_device=image.root_device if image else "/dev/xvda", volume_size=volume,
        vpc_id=subnet.vpc_id, subnet_id=subnet.id, availability_zone=subnet.az,
        key_name=key_name, create_key=create_key, key_path=key_path, ssh_cidr=ssh_cidr,
        role_name=iam.role_name(name), profile_name=iam.profile_name(name),
        security_group_name=network.security_group_name(name),
        security_group_id=group["GroupId"] if group else None,
        endpoint_id=endpoint_id, endpoint_add_subnet=add_subnet, endpoint_enable_private_dns=enable_dns,
        instance_id=instance.id if instance else None, instance_state=instance.state if instance else None,
        hourly_usd=hourly, warnings=tuple(warnings),
        family=family.key if family else None,
        count=len(existing["instances"]) if instance else request.count or 1,
        min_count=len(existing["instances"]) if instance else request.min_count or request.count or 1,
        instance_ids=tuple(i.id for i in existing["instances"]) if instance else (),
        ssh_cidrs_before=ssh_before, ssh_cidr_kept=ssh_kept,
        image_source=facts.family_image_sources.get(family.key, "") if family and image and not request.ami_id
        else "",
        replace_key=replace_key, key_set_aside=key_set_aside,
        instance_states=tuple(i.state for i in existing["instances"]) if instance else (),
        ami_from_flag=bool(request.ami_id),
        idle_stop_minutes=idle_stop, idle_alarms_before=idle_before,
        spot=spot,
        spot_hourly_usd=facts.spot_prices.get(instance_type, {}).get(subnet.az) if spot else None,
        access=access_mode, access_before=access_before, aws_profile=request.aws_profile,
        public_ip=public_ip if not instance else bool(instance.public_ip), outbound=outbound,
        ssm_endpoints=ssm_endpoints, private_subnet=private_subnet,
    )


def _private(facts: Facts, subnet: Subnet) -> bool:
    """A subnet whose default route reaches no internet gateway and that maps no public IP: a public IP there would
    reach nothing. Unknown routes (the look-up refused): public, as before the check existed."""
    way = facts.subnet_ways_out.get(subnet.id)
    return way in (access.NAT, access.NO_WAY_OUT) and not subnet.public_ip_on_launch


def _way_out(facts: Facts, subnet: Subnet) -> tuple[str, tuple]:
    """How the SSM agent of an instance without a public IP reaches AWS: the subnet's NAT gateway, else Session
    Manager's interface endpoints in the VPC, each shared when the VPC has it (turning its private DNS on if off, as
    the agent uses the public names) and created otherwise. A public subnet's internet gateway is no way out for an
    instance without a public IP."""
    if facts.subnet_ways_out.get(subnet.id) == access.NAT:
        return access.NAT, ()
    in_vpc = [e for e in facts.ssm_endpoints if e.vpc_id == subnet.vpc_id]
    chosen = []
    for service in access.SSM_ENDPOINT_SERVICES:
        found = sorted((e for e in in_vpc if e.service == service), key=lambda e: (not e.private_dns, e.id))
        chosen.append((service, found[0].id, not found[0].private_dns) if found else (service, None, False))
    return access.ENDPOINTS, tuple(chosen)


IDLE_STOP_CHOICES = (30, 60, 120, 240)


def _choose_spot(request, asker, family, *, converging: bool = False) -> str | None:
    """--spot, else (today's alternatives, asked interactively) On-Demand or Spot; --yes without the flag:
    On-Demand. A deployment that exists keeps what its instances run on. EI is not asked: it ran, and the
    flag works for it, but it is retired; the question is for what people launch today."""
    if converging:
        return None
    if request.spot or family is None or not getattr(asker, "interactive", False):
        return request.spot
    options = [Option("On-Demand: runs until you stop it", None),
               Option("Spot: a persistent request, stopped (not lost) when EC2 reclaims it; fails if refused",
                      "required"),
               Option("Spot, else On-Demand when EC2 refuses Spot", "auto")]
    return asker.select("Capacity:", options, None, flag="--spot",
                        hint="(Spot usually costs well under half the On-Demand price)")


def _choose_idle_stop(request, asker, before: tuple, hourly_usd: float | None, *,
                      converging: bool = False) -> int | None:
    """--idle-stop, else a question (with what an idle day costs beside it); --yes without the flag: off. A
    deployment that exists keeps its idle alarms (or none) as they are, unasked: a re-run with everything as
    wanted asks nothing, and `idle-stop --name N MINUTES|off` is how to change it."""
    if request.idle_stop:
        return request.idle_stop
    if before or converging or not getattr(asker, "interactive", False):
        return None
    from amazonei_setup.aws.resources import alarm

    day = alarm.idle_day_usd(hourly_usd)
    monthly = alarm.METRICS_BILLED * alarm.USD_PER_ALARM_METRIC_MONTH
    cost = f"an idle day costs ${day:.2f}" if day else "an idle day costs 24 x the $/hour"
    options = [Option("off: it runs until you stop or tear it down", 0)]
    options += [Option(f"after {m} idle minutes (low CPU and network)", m) for m in IDLE_STOP_CHOICES]
    answer = asker.select("Idle auto-stop:", options, 0, flag="--idle-stop",
                          hint=f"({cost}; the alarm: <= ${monthly:.2f}/month)")
    return answer or None


def _refuse_another_regions_name(facts: Facts, name: str) -> None:
    """A name is one deployment in the account: IAM is global, so converging here would take over the role of
    the deployment that lives in another region (and rewrite its EI policy for this one)."""
    role = facts.named_role
    if role is None or role.get("RoleName") != iam.role_name(name) or not tags.is_ours(role.get("Tags"), name):
        return
    home = tags.home_region(role.get("Tags"))
    if home and home != facts.region:
        raise UsageError(f"Deployment '{name}' lives in {home}, and a name is one deployment in the account: pass "
                         f"--region {home} to converge it, or choose another --name.")


def _existing_deployment(request: SetupRequest, facts: Facts, name: str) -> dict | None:
    """A re-run with the name of a live deployment converges onto it instead of duplicating it."""
    groups = [g for g in facts.our_security_groups if tags.as_dict(g.get("Tags")).get(tags.DEPLOYMENT) == name]
    found = [i for i in facts.our_instances if i.tags.get(tags.DEPLOYMENT) == name]
    if not groups and not found:
        return None
    owner = tags.as_dict(groups[0].get("Tags")).get(tags.OWNER) if groups else found[0].tags.get(tags.OWNER)
    if owner and owner != facts.owner:
        raise UsageError(f"A deployment named '{name}' already exists in {facts.region} and belongs to "
                         f"{owner}: choose another --name.")
    stack = next((t[tags.CFN_STACK_NAME] for t in [tags.as_dict(g.get("Tags")) for g in groups] + [
        i.tags for i in found] if tags.CFN_STACK_NAME in t), None)
    if stack:
        raise UsageError(f"Deployment '{name}' is held by the CloudFormation stack {stack}: change it through "
                         "CloudFormation (or tear it down and run again), or choose another --name.")
    instance = found[0] if found else None
    if instance is not None:
        _check_same_instance(request, facts, name, instance)
        if request.count and not (request.min_count or request.count) <= len(found) <= request.count:
            raise UsageError(f"Deployment '{name}' already runs {len(found)} instance(s), not {request.count}: pass "
                             f"--count {len(found)} (or leave it out) to converge it, or tear it down first, or "
                             "choose another --name.")
    group = groups[0] if groups else None
    subnet_id = instance.subnet_id if instance else None
    subnet = next((s for s in facts.subnets if s.id == subnet_id), None)
    if subnet is None:  # only the group survived a half-finished run: decide the subnet afresh
        vpc = group["VpcId"] if group else None
        family = catalog.FAMILIES.get(request.family or "")
        instance_type = facts.instance_type.name if facts.instance_type else (
            request.instance_type or (family.default_type if family else None))
        subnet = _choose_subnet(SetupRequest(instance_type=request.instance_type, vpc_id=vpc,
                                             subnet_id=request.subnet_id), facts, DefaultsAsker(),
                                _zones(facts, family, instance_type))
    for flag, wanted, actual in (("--subnet-id", request.subnet_id, subnet.id),
                                 ("--vpc-id", request.vpc_id, subnet.vpc_id)):
        if wanted and wanted != actual:
            raise UsageError(f"Deployment '{name}' already runs in {actual}, not {wanted}: drop {flag}, or "
                             "tear it down first, or choose another --name.")
    return {"name": name, "group": group, "instance": instance, "instances": found, "subnet": subnet}


def _check_same_instance(request: SetupRequest, facts: Facts, name: str, instance) -> None:
    """A re-run converges onto the running instance; it cannot change what that instance is."""
    accelerator = instance.tags.get(tags.ACCELERATOR) or None
    family = accelerator if accelerator in catalog.FAMILIES else None
    if request.family and request.family != family:
        raise UsageError(f"Deployment '{name}' already runs {instance.id} with {accelerator or 'no accelerator'}, not "
                         f"{request.family}: tear it down first, or choose another --name.")
    if family:
        accelerator = None
    for flag, wanted, actual in (("--instance-type", facts.instance_type.name if facts.instance_type else None,
                                  instance.instance_type),
                                 ("--accelerator-type", request.accelerator_type, accelerator),
                                 ("--ami-id", request.ami_id, instance.image_id)):
        if wanted and actual and wanted != actual:
            raise UsageError(f"Deployment '{name}' already runs {instance.id} with {flag} {actual}, not {wanted}: pass "
                             f"{flag} {actual} to converge it, or tear it down first, or choose another --name.")


def _choose_name(request, facts, asker) -> str:
    if request.name:
        problem = name_problem(request.name)
        if problem:
            raise UsageError(f"--name '{request.name}' is not valid: {problem}.")
        return request.name
    return asker.text("Deployment name (used in tags and for teardown):", generated_name(), flag="--name",
                      validate=name_problem)


EI_HEADING = "-- Elastic Inference (retired by AWS in 2024) --"


def _choose_accelerator(request, facts, asker) -> str:
    offered = catalog.accelerators_for_region(facts.region)
    if request.accelerator_type:
        if request.accelerator_type not in catalog.ACCELERATORS:
            raise UsageError(f"Unknown --accelerator-type '{request.accelerator_type}': use one of "
                             f"{', '.join(catalog.ACCELERATORS)}.")
        if request.accelerator_type not in {a.type for a in offered}:
            raise UsageError(f"{request.accelerator_type} is not offered in {facts.region}: use one of "
                             f"{', '.join(a.type for a in offered)}.")
        return request.accelerator_type
    offered_types = [a.type for a in offered]
    default = catalog.DEFAULT_ACCELERATOR if catalog.DEFAULT_ACCELERATOR in offered_types else offered_types[0]
    # Priced with the host the user gave, else with the host the next question defaults to: an accelerator's
    # own price alone would not compare with the alternatives, whose price is the whole instance.
    host = facts.instance_type.name if facts.instance_type else catalog.DEFAULT_EI_HOST
    instance_price = catalog.INSTANCE_HOURLY_USD.get(host)
    # The EI rows stay (the sandbox and the tests run that flow), under a heading that says AWS refuses them today.
    options = [Option(EI_HEADING, None, separator=True),
               *(Option(accelerator_title(a, instance_price), a.type) for a in offered)]
    # Today's alternatives on the same screen, so a user can compare (EI is retired); only
    # those discovery looked up (the CLI asks for them when this question will really be asked).
    families = [f for f in catalog.FAMILIES.values() if f.key in facts.family_images]
    if families:
        options.append(Option("-- current alternatives (no EI) --", None, separator=True))
        options += [Option(family_row(f, facts.instance_type.name if facts.instance_type else None, facts.region),
                           f.key) for f in families]
    with_host = f"$/h with {host}" if instance_price is not None else "$/h of the accelerator alone"
    # A short question leaves room for labelled rows: the answer is echoed after it, on one line of 80 columns.
    return asker.select("Accelerator:", options, default, flag="--accelerator-type (or --accelerator)",
                        hint=f"(Elastic Inference{', then alternatives' if families else ''}; {with_host})")


def accelerator_title(a: catalog.Accelerator, instance_price: float | None) -> str:
    """One line that says what each figure is: memory, FP32/FP16 TFLOPS (labelled in every row: the echo after
    the question is all that stays on screen), and $/hour with the instance when its price is known."""
    price = f"${instance_price + a.hourly_usd:.3f}/h" if instance_price is not None else f"+${a.hourly_usd:.2f}/h"
    return f"{a.type:<11}  {a.memory_gib} GiB  FP32/FP16 {a.fp32_tflops}/{a.fp16_tflops:<2} TFLOPS  {price}"


def family_title(family: catalog.Family, instance_type: str | None = None, region: str | None = None) -> str:
    """One short line for an alternative (fits 80 columns after the question, like accelerator_title):
    the family, its (default) instance type, accelerator memory, throughput class, $/hour or 'price unknown'."""
    spec = family.spec(instance_type or family.default_type)
    price = catalog.instance_hourly_usd(spec.type, region)  # the region's, as the plan after it says
    cost = f"${price:.3f}/h" if price is not None else "price unknown"
    return f"{family.key:<5} {spec.type:<12} {spec.memory_gib} GiB  {spec.throughput:<5} {cost}"


def family_row(family: catalog.Family, instance_type: str | None = None, region: str | None = None) -> str:
    """The family's row in the accelerator question. Its answer stays on the screen, so when the type is asked next
    the row names every type the family has ('gpu   g4dn/g5/g6.xlarge  16-24 GiB  entry-mid  from $0.526/h'),
    never one the next answer may contradict; a type given with --instance-type (or the only one) is named alone."""
    if instance_type in family.instance_types or len(family.types) == 1:
        return family_title(family, instance_type, region)
    names = [t.type for t in family.types]
    heads, tails = zip(*(n.split(".", 1) for n in names), strict=True)
    if len(set(tails)) == 1:
        types = "/".join(heads) + "." + tails[0]
    elif len(set(heads)) == 1:
        types = heads[0] + "." + "/".join(tails)
    else:
        types = "/".join(names)
    memory = sorted({t.memory_gib for t in family.types})
    throughput = list(dict.fromkeys(t.throughput for t in family.types))
    prices = [catalog.instance_hourly_usd(n, region) for n in names]
    known = [p for p in prices if p is not None]
    cost = f"from ${min(known):.3f}/h" if known else "price unknown"
    return f"{family.key:<5} {types}  {_span(memory)} GiB  {_span(throughput)}  {cost}"


def _span(values: list) -> str:
    """'16-24' for [16, 24], '32' for [32]: the first and the last of an ordered list."""
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"


def _choose_family_type(request, asker, family: catalog.Family, warnings, region: str | None = None) -> str:
    """The family's type: --instance-type when it belongs to the family (the CLI refused it otherwise), else
    asked among the family's types (default: the first)."""
    if request.instance_type in family.instance_types:
        return request.instance_type
    if request.instance_type:  # the family was picked at the prompt, after an --instance-type for EI
        warnings.append(f"--instance-type {request.instance_type} is not used: {family.label} instance types "
                        f"({', '.join(family.instance_types)}) carry the accelerator themselves.")
    if len(family.types) == 1:
        return family.default_type
    options = [Option(family_title(family, t.type, region), t.type) for t in family.types]
    return asker.select(f"{family.label} instance type:", options, family.default_type, flag="--instance-type")


# Hosts offered for Elastic Inference: (vCPUs, GiB of memory), from AWS's instance type pages. The accelerator
# runs the model; the host still loads the framework (the DLAMI's conda environments) and does the pre- and
# post-processing, so at least 4 vCPUs and 16 GiB, and no burstable t3 (its CPU credits run out under a steady
# load). Priced from the catalog; the cheapest (m5.xlarge) is the default, for --yes too.


def host_title(instance_type: str, accelerator: str | None) -> str:
    """'m5.xlarge    4 vCPU  16 GiB  $0.192/h  $0.312/h': the host's price, then with the accelerator (the
    question's hint says so); short enough to be echoed after the question at 80 columns."""
    vcpus, memory = catalog.EI_HOSTS[instance_type]
    price = f"${catalog.INSTANCE_HOURLY_USD[instance_type]:.3f}/h"
    price += "" if catalog.INSTANCE_PRICES[instance_type].verified else "*"
    total = catalog.hourly_usd(instance_type, accelerator) if accelerator else None
    return f"{instance_type:<11} {vcpus:>2} vCPU {memory:>3} GiB  {price:<9}" + (
        f"  ${total:.3f}/h" if total is not None else "")


def _choose_ei_host(asker: Asker, accelerator: str | None) -> str:
    """The host instance for Elastic Inference when --instance-type did not name one: a choice among catalog.EI_HOSTS,
    cheapest first (the default; what --yes takes)."""
    hosts = sorted(catalog.EI_HOSTS, key=lambda t: catalog.INSTANCE_HOURLY_USD[t])
    options = [Option(host_title(t, accelerator), t) for t in hosts]
    prices = f"$/h, with {accelerator}" if accelerator else "$/h"
    unconfirmed = "; *unconfirmed" if any(not catalog.INSTANCE_PRICES[t].verified for t in hosts) else ""
    return asker.select("Host instance type:", options, catalog.DEFAULT_EI_HOST, flag="--instance-type",
                        hint=f"(vCPUs, memory, {prices}{unconfirmed})")


def _requested_image(request, facts, otherwise: str) -> Image:
    """The --ami-id image; `otherwise` names what dropping the flag would use."""
    if facts.requested_image is None:
        raise UsageError(f"--ami-id {request.ami_id} does not exist in {facts.region} (or is not shared with "
                         f"you): check the id, or drop --ami-id to use {otherwise}.")
    return facts.requested_image


def _choose_family_image(request, facts, family: catalog.Family) -> Image:
    if request.ami_id:
        return _requested_image(request, facts, f"the {family.label} Deep Learning AMI")
    image = facts.family_images.get(family.key)
    if image is None:
        raise UsageError(f"No {family.label} Deep Learning AMI ({family.ami_name_pattern.rstrip(' *')}) is available "
                         f"in {facts.region}: pass --ami-id with an image you can use, or another --region.")
    return image


def _zones(facts: Facts, family: catalog.Family | None, instance_type: str | None) -> tuple[tuple[str, ...], str]:
    """The AZs a subnet may be in, and what they offer (for the question and the errors)."""
    if family is None:
        return facts.ei_azs, "Elastic Inference"
    zones = facts.offerings.get(instance_type or "", ())
    if not zones:
        raise UsageError(f"EC2 does not offer {instance_type} in {facts.region}: pass another --region (or another "
                         f"--instance-type of the {family.key} family).")
    return tuple(zones), instance_type


def _choose_image(request, facts, asker, warnings) -> tuple[str | None, Image]:
    if request.ami_id:
        image = _requested_image(request, facts, "the newest Deep Learning AMI")
        if image.os_key is None:
            warnings.append(f"{image.id} ({image.name or 'unnamed'}) is not an Amazon Linux or Ubuntu 16.04 Deep "
                            "Learning AMI, the only images that ship the amazonei_* environments.")
        return image.os_key or request.os, image
    if request.os and request.os not in catalog.OPERATING_SYSTEMS:
        raise UsageError(f"Unknown --os '{request.os}': use one of {', '.join(catalog.OPERATING_SYSTEMS)}.")
    options = []
    for os_ in catalog.OPERATING_SYSTEMS.values():
        newest = facts.images.get(os_.key) or []
        options.append(Option(f"{os_.label:<13} {newest[0].name if newest else '(no image in this region)'}", os_.key))
    os_key = request.os or asker.select("Operating system:", options, catalog.DEFAULT_OS, flag="--os",
                                        hint="(the newest Deep Learning AMI of each)")
    images = facts.images.get(os_key) or []
    if not images:
        label = catalog.OPERATING_SYSTEMS[os_key].label
        raise UsageError(f"No Deep Learning AMI ({label}) owned by Amazon is available in {facts.region}: pass "
                         "--ami-id with an image you can use, or another --os.")
    return os_key, images[0]


def _guess_user(image: Image | None) -> str:
    return "ubuntu" if image and "ubuntu" in image.name.lower() else "ec2-user"


def _choose_subnet(request, facts, asker, zones: tuple[tuple[str, ...], str]) -> Subnet:
    """zones: the AZs a subnet may be in and what they offer, from _zones()."""
    azs, offer = zones
    by_id = {s.id: s for s in facts.subnets}
    vpc_ids = {v.id for v in facts.vpcs}
    if request.subnet_id:
        subnet = by_id.get(request.subnet_id)
        if subnet is None:
            raise UsageError(f"--subnet-id {request.subnet_id} does not exist in {facts.region}: pick one from "
                             "`aws ec2 describe-subnets`, or drop the flag to choose interactively.")
        if request.vpc_id and subnet.vpc_id != request.vpc_id:
            raise UsageError(f"--subnet-id {subnet.id} is in {subnet.vpc_id}, not in --vpc-id {request.vpc_id}: "
                             "pass a subnet of that VPC.")
        if subnet.az not in azs:
            raise UsageError(f"--subnet-id {subnet.id} is in {subnet.az}, where {offer} is not offered: "
                             f"pass a subnet in {', '.join(azs)}.")
        return subnet
    if request.vpc_id:
        if request.vpc_id not in vpc_ids:
            raise UsageError(f"--vpc-id {request.vpc_id} does not exist in {facts.region}: check the id, or drop the "
                             "flag to use the default VPC.")
        vpc_id = request.vpc_id
    else:
        if not facts.vpcs:
            raise UsageError(f"There is no VPC in {facts.region}: create one (VPC console, 'Create default VPC') or "
                             "pass --vpc-id.")
        if len(facts.vpcs) == 1:
            vpc_id = facts.vpcs[0].id  # a list of one is no choice: the plan shows it
        else:
            default_vpc = next((v.id for v in facts.vpcs if v.is_default), None)
            options = [Option(_with_name(f"{v.id}  {v.cidr:<16} {'(default) ' if v.is_default else ''}", v.name,
                                         len("? VPC: ")), v.id) for v in facts.vpcs]
            vpc_id = asker.select("VPC:", options, default_vpc, flag="--vpc-id")
    candidates = [s for s in facts.subnets if s.vpc_id == vpc_id and s.az in azs]
    if not candidates:
        raise UsageError(f"{vpc_id} has no subnet in an Availability Zone that offers {offer} "
                         f"({', '.join(azs)}): add one, or pass another --vpc-id.")
    default = next((s.id for s in candidates if s.public_ip_on_launch), None)
    if default is None and len(candidates) == 1:
        default = candidates[0].id
    options = [Option(_with_name(f"{s.id}  {s.az:<11} {s.cidr:<15} "
                                 f"{'public IPs' if s.public_ip_on_launch else 'private'} ", s.name, len("? Subnet: ")),
                      s.id) for s in candidates]
    chosen = asker.select("Subnet:", options, default, flag="--subnet-id", hint=f"(in an AZ that offers {offer})")
    return by_id[chosen]


def _with_name(row: str, name: str, question_width: int, width: int = 80) -> str:
    """A row with the resource's Name tag, cut to fit `width` when echoed after the question; only the name is
    cut (it is a label), never the id before it."""
    room = width - question_width - len(row)
    if len(name) > room:
        name = name[:max(room - 1, 0)] + "…" if room > 1 else ""
    return (row + name).rstrip()


NEW_KEY = object()


def _choose_key(request, facts, asker, name, existing,
                warnings) -> tuple[str, bool, str | None, bool, str | None]:
    """(key name, create it?, where its private key is or goes, replace the deployment's own key?, where a leftover
    file at that path is moved first)"""
    key_dir = Path(request.key_dir).expanduser() if request.key_dir else keypair.default_key_dir()
    if existing and existing["instance"]:
        key = existing["instance"].key_name  # a running instance keeps the key it was launched with
        pem = key_dir / f"{key}.pem"
        if not pem.exists():
            warnings.append(f"No private key at {pem}: the instance accepts only key pair {key}; use the copy you "
                            "have (pass --key-dir), or tear this deployment down and set it up again.")
        return key, False, str(pem), False, None
    if request.key_name:
        if request.key_name not in facts.key_pairs:
            raise UsageError(f"--key-name {request.key_name} is not a key pair in {facts.region}: use one of "
                             f"{', '.join(facts.key_pairs) or '(none yet)'}, or drop --key-name to create one.")
        pem = key_dir / f"{request.key_name}.pem"
        if facts.key_pair_deployments.get(request.key_name) == name and not pem.exists():
            return request.key_name, True, str(pem), True, None
        return request.key_name, False, str(pem), False, None
    new_name = keypair.key_name(name)
    choice = NEW_KEY
    # Never default to a key another deployment created: its teardown would delete it from under us.
    usable = [k for k in facts.key_pairs if facts.key_pair_deployments.get(k, name) == name]
    if not request.new_key and facts.key_pairs:
        default = usable[0] if len(usable) == 1 else (NEW_KEY if not usable else None)
        options = [Option(k, k) for k in facts.key_pairs] + [Option(f"create a new key pair ({new_name})", NEW_KEY)]
        choice = asker.select("Key pair for SSH:", options, default, flag="--key-name (or --new-key)")
    if choice is not NEW_KEY:
        pem = key_dir / f"{choice}.pem"
        if facts.key_pair_deployments.get(choice) == name and not pem.exists():
            # This deployment's own key, made by a run that was killed or lost the reply, and no instance uses
            # it yet: its private key is gone, so an instance launched with it could never be logged in to.
            return choice, True, str(pem), True, None
        return choice, False, str(pem), False, None
    if new_name in facts.key_pairs:
        raise UsageError(f"A key pair named {new_name} already exists: pass --key-name {new_name} to use it.")
    pem = key_dir / f"{new_name}.pem"
    if pem.exists() or pem.is_symlink():
        # No key pair of this name exists here (checked above), so the file is the private half of one that is gone
        # (an older teardown left it) and opens nothing here. Refusing would stop every later setup of the name (a
        # CI loop's second pass); overwriting could lose a key of the same name elsewhere: it is kept beside.
        aside = keypair.aside_path(pem)
        warnings.append(f"{pem} is left from a key pair {new_name} that no longer exists in {facts.region}: it is "
                        f"moved to {aside} and the new key is saved in its place.")
        return new_name, True, str(pem), False, str(aside)
    return new_name, True, str(pem), False, None


def _choose_ssh_cidr(request, facts, asker, warnings: list[str] | None = None) -> str:
    if request.ssh_cidr:
        problem = cidr_problem(request.ssh_cidr)
        if problem:
            raise UsageError(f"--ssh-cidr: {problem}.")
        return _canonical_range(request.ssh_cidr, warnings)
    default = request.default_ssh_cidr or _single_address(facts.public_ip)
    answer = asker.text("Allow SSH from (CIDR):", default, flag="--ssh-cidr (your address, e.g. 203.0.113.7/32)",
                        validate=cidr_problem)
    problem = cidr_problem(answer)
    if problem:  # an Asker that does not validate (or a default that was never checked)
        raise UsageError(f"--ssh-cidr: {problem}.")
    return _canonical_range(answer, warnings)


def _canonical_range(value: str, warnings: list[str] | None) -> str:
    """The range as EC2 stores it. An address with a prefix (10.1.2.3/24) means its whole network (10.1.2.0/24):
    said, since the user may have meant the one machine."""
    canonical = rules.cidr(value)
    written = value.strip()
    if warnings is not None and "/" in written and canonical != written:
        try:
            address = ipaddress.ip_address(written.split("/", 1)[0])
        except ValueError:
            address = None
        if address is not None and str(ipaddress.ip_network(canonical).network_address) != str(address):
            host = f"{address}/{address.max_prefixlen}"
            warnings.append(f"{written} is the range {canonical} to EC2: SSH is allowed from all of its "
                            f"{ipaddress.ip_network(canonical).num_addresses:,} addresses; for that one machine use "
                            f"{host}.")
    return canonical


def _below_the_offered_hosts(instance_type: str, facts: Facts) -> list[str]:
    """A host given with --instance-type that the host question would not offer (too small, or a burstable t
    type): said, with what the wizard offers, since a cost of "unknown" alone says nothing about it."""
    if instance_type in catalog.EI_HOSTS:
        return []
    described = facts.instance_type if facts.instance_type and facts.instance_type.name == instance_type else None
    vcpus = described.vcpus if described else None
    memory_gib = described.memory_mib / 1024 if described and described.memory_mib else None
    least_vcpus, least_gib = catalog.MIN_EI_HOST
    small = (vcpus is not None and vcpus < least_vcpus) or (memory_gib is not None and memory_gib < least_gib)
    if not (small or instance_type.startswith(("t2.", "t3.", "t3a.", "t4g."))):
        return []
    size = f" ({vcpus} vCPU, {memory_gib:g} GiB)" if vcpus is not None and memory_gib is not None else ""
    price = "" if catalog.INSTANCE_HOURLY_USD.get(instance_type) is not None else \
        "; its price is not in the catalog, so the cost is unknown"
    return [f"{instance_type}{size} is smaller than the hosts setup offers for Elastic Inference: the host still "
            "runs the framework and the pre- and post-processing, so setup offers "
            f"{catalog.DEFAULT_EI_HOST} and up (at least {least_vcpus} vCPU and {least_gib} GiB, no burstable t "
            f"type){price}."]


def _single_address(public_ip: str | None) -> str | None:
    """The looked-up address as a one-host range (/32, or /128 for IPv6); None when it is not an address
    (a captive portal or proxy can answer the lookup with a page of HTML)."""
    try:
        address = ipaddress.ip_address((public_ip or "").strip())
    except ValueError:
        return None
    return f"{address}/{address.max_prefixlen}"


def _endpoint_decision(facts: Facts, subnet: Subnet, accelerator: str | None) -> tuple[str | None, bool, bool]:
    """Reuse the VPC's EI endpoint when there is one, adding this AZ and private DNS if missing."""
    if not accelerator:
        return None, False, False
    endpoint = next((e for e in facts.endpoints if e.vpc_id == subnet.vpc_id), None)
    if endpoint is None:
        return None, False, False
    az_of = {s.id: s.az for s in facts.subnets}
    covered = {az_of.get(s) for s in endpoint.subnet_ids}
    return endpoint.id, subnet.az not in covered, not endpoint.private_dns
