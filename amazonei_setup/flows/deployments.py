"""Find deployments by their tags: everything one deployment holds, or a summary of all of them.

Read-only. Teardown and `list` both start here, so they can never disagree about what a
deployment is. Works from any machine: no local state is consulted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from amazonei_setup.aws.client import Aws, denied, denied_action, explain
from amazonei_setup.aws.concurrency import LOOKUP_BUDGET, look_up_concurrently
from amazonei_setup.aws.discover import check_region, owner_of
from amazonei_setup.aws.resources import alarm, iam, keypair, network, stack
from amazonei_setup.aws.resources import instance as instances
from amazonei_setup.core import catalog, rules, tags
from amazonei_setup.core.errors import ToolError, UsageError


@dataclass(frozen=True)
class Unchecked:
    """A look-up of an optional piece that AWS refused: the piece was not seen, so nothing may say it is gone."""

    piece: str  # "idle-stop alarms", "a CloudFormation stack"
    action: str  # the permission that was denied, e.g. "cloudwatch:DescribeAlarms"
    evidence: str = ""  # the stack the deployment's resources name in CloudFormation's tag: it was there

    def to_dict(self) -> dict:
        return {"piece": self.piece, "action": self.action}


# The look-ups a command can do without: what each finds, and the service that answers it. The stack and the idle
# alarms came after the first IAM policies users were given; a user with such a policy must still be able to stop
# and remove a deployment.
OPTIONAL = {"stack": ("a CloudFormation stack", "cloudformation"), "idle_alarms": ("idle-stop alarms", "cloudwatch"),
            # A policy from before Spot (setup --spot) lacks ec2:DescribeSpotInstanceRequests: On-Demand deployments
            # must still be listed and torn down.
            "spot_requests": ("Spot requests", "ec2")}


@dataclass
class Inventory:
    """What deployment `name` has in a region, plus what its siblings use (for shared pieces)."""

    name: str
    region: str
    instances: list[instances.InstanceInfo]
    security_groups: list[dict]
    endpoints: list[network.Endpoint]
    sibling_group_ids: set[str]
    key_pair: dict | None
    role: dict | None
    profile: dict | None
    foreign: list[str] = field(default_factory=list)  # same names, not ours: never touched
    role_inline_policies: list[str] = field(default_factory=list)
    role_attached_policies: list[str] = field(default_factory=list)
    sibling_names: dict[str, str] = field(default_factory=dict)  # other deployments' group ids -> their names
    stack: stack.StackInfo | None = None  # the CloudFormation stack holding the deployment (export --deploy)
    stack_resources: set[tuple[str, str]] = field(default_factory=set)  # (kind, physical id) it holds
    elsewhere: dict[str, str] = field(default_factory=dict)  # global piece ("IAM role x") -> the region it serves
    idle_alarms: list[alarm.IdleAlarm] = field(default_factory=list)  # idle auto-stop, one per instance
    spot_requests: list[dict] = field(default_factory=list)  # live Spot requests (a persistent one relaunches)
    unchecked: list[Unchecked] = field(default_factory=list)  # optional look-ups AWS refused (see OPTIONAL)
    # Looked up for teardown when this deployment put subnets on a shared endpoint (find_deployment's `neighbours`):
    # the (VPC, AZ) of each subnet of those VPCs, and the other deployments' live instances (the zones they run in).
    subnet_zones: dict[str, tuple[str, str]] = field(default_factory=dict)
    neighbour_instances: list[instances.InstanceInfo] = field(default_factory=list)

    @property
    def group_ids(self) -> set[str]:
        return {g["GroupId"] for g in self.security_groups}

    @property
    def empty(self) -> bool:
        return not (self.instances or self.security_groups or self.key_pair or self.role or self.profile
                    or self.owned_endpoints or self.stack or self.idle_alarms or self.spot_requests)

    @property
    def owned_endpoints(self) -> list[network.Endpoint]:
        return [e for e in self.endpoints if e.tags.get(tags.DEPLOYMENT) == self.name and e.created_by_tool]


def find_deployment(aws: Aws, name: str, *, optional: tuple[str, ...] = tuple(OPTIONAL),
                    neighbours: bool = False) -> Inventory:
    """Raises UsageError for a region that has no EC2, or a deployment another caller owns. Any EC2 region:
    today's alternatives (inf2, gpu) run outside the EI regions, and their teardown must reach them.

    A look-up named in `optional` (keys of OPTIONAL) that AWS denies is left out and named in
    `Inventory.unchecked`; any other failure raises the one sentence, as every other look-up does.
    neighbours (teardown): when the deployment put subnets on a shared endpoint, also where the others run."""
    check_region(aws.region, ei=False)
    ec2, client_iam = aws.ec2, aws.iam
    aws.preload("ec2", "iam", "sts", "cloudformation", "cloudwatch")
    cfn, cloudwatch = aws.client("cloudformation"), aws.client("cloudwatch")
    results = look_up_concurrently({
        "stack": lambda: stack.find_stack(cfn, tags.resource_name(name)),
        "identity": lambda: aws.sts.get_caller_identity(),
        # shutting-down too: a re-run after an interrupted teardown must wait for it before phase 2
        "instances": lambda: instances.find_instances(ec2, name, [*instances.LIVE_STATES, "shutting-down"]),
        "all_groups": lambda: network.find_security_groups(ec2, None),
        "endpoints": lambda: network.find_tool_endpoints(ec2, aws.region),
        "key_pair": lambda: keypair.find_our_key_pair(ec2, name),
        "role": lambda: iam.get_role(client_iam, iam.role_name(name)),
        "profile": lambda: iam.get_instance_profile(client_iam, iam.profile_name(name)),
        # Fetched now, in the same round, so teardown can delete them without another look-up.
        "inline_policies": lambda: iam.inline_policies(client_iam, iam.role_name(name)),
        "attached_policies": lambda: iam.attached_policies(client_iam, iam.role_name(name)),
        "idle_alarms": lambda: alarm.find_alarms(cloudwatch, name),
        "spot_requests": lambda: instances.find_spot_requests(ec2, tags.filters_for(name)),
    }, budget=LOOKUP_BUDGET)
    unchecked = []
    for key, value in results.items():
        if isinstance(value, BaseException):
            if key in optional and denied(value):
                piece, service = OPTIONAL[key]
                unchecked.append(Unchecked(piece, denied_action(value, service)))
                results[key] = [] if key in ("idle_alarms", "spot_requests") else None
                continue
            raise explain(value, aws, doing=f"looking up {key.replace('_', ' ')}")
    ours = [g for g in results["all_groups"] if tags.as_dict(g.get("Tags")).get(tags.DEPLOYMENT) == name]
    siblings = {g["GroupId"] for g in results["all_groups"] if g not in ours}
    our_ids = {g["GroupId"] for g in ours}
    endpoints = [e for e in results["endpoints"]
                 if our_ids & set(e.group_ids) or e.tags.get(tags.DEPLOYMENT) == name or e.subnets_added_by(name)]
    owners = {tags.as_dict(g.get("Tags")).get(tags.OWNER) for g in ours} | {
        i.tags.get(tags.OWNER) for i in results["instances"]} | {a.tags.get(tags.OWNER) for a in results["idle_alarms"]}
    _refuse_if_not_yours(name, aws.region, owner_of(results["identity"]["Arn"]), owners)
    if results["stack"] is None:  # unchecked: CloudFormation tags what it creates, so its resources may say
        named = {i.tags.get(tags.CFN_STACK_NAME) for i in results["instances"]} | {
            tags.as_dict(g.get("Tags")).get(tags.CFN_STACK_NAME) for g in ours}
        stacks = sorted(n for n in named if n)
        unchecked = [Unchecked(u.piece, u.action, stacks[0]) if u.piece == OPTIONAL["stack"][0] and stacks else u
                     for u in unchecked]
    inventory = Inventory(name, aws.region, results["instances"], ours, endpoints, siblings,
                          results["key_pair"], None, None, idle_alarms=results["idle_alarms"], unchecked=unchecked,
                          spot_requests=[r for r in results["spot_requests"] if tags.is_ours(r.get("Tags"), name)])
    inventory.sibling_names = {g["GroupId"]: tags.as_dict(g.get("Tags")).get(tags.DEPLOYMENT, "?")
                               for g in results["all_groups"] if g["GroupId"] in siblings}
    if neighbours:
        _find_neighbours(aws, inventory)
    found_stack = results["stack"]
    if found_stack is not None:
        if tags.is_ours(found_stack.tags, name):
            inventory.stack = found_stack
            inventory.stack_resources = _stack_resources(aws, cfn, found_stack)
        else:
            inventory.foreign.append(f"cloudformation-stack {found_stack.name}")
    # IAM names are derived from the deployment name; the tags prove we made them.
    pieces = (("role", "IAM role", "iam-role"), ("profile", "instance profile", "instance-profile"))
    for attr, kind, held_kind in pieces:
        found = results[attr]
        if found is None:
            continue
        # CloudFormation cannot tag an instance profile: the stack holding it proves it is ours.
        held = (held_kind, found.get("RoleName") or found.get("InstanceProfileName"))
        home = tags.home_region(found.get("Tags"))
        if tags.is_ours(found.get("Tags"), name) and home and home != aws.region:
            # IAM is global: this role serves the deployment's region, and teardown here must not cut it off.
            inventory.elsewhere[f"{kind} {held[1]}"] = home
            continue
        if tags.is_ours(found.get("Tags"), name) or held in inventory.stack_resources:
            setattr(inventory, attr, found)
            if attr == "role":
                inventory.role_inline_policies = results["inline_policies"]
                inventory.role_attached_policies = results["attached_policies"]
        else:
            inventory.foreign.append(f"{kind} {found.get('RoleName') or found.get('InstanceProfileName')}")
    if inventory.empty and inventory.elsewhere:
        home = sorted(set(inventory.elsewhere.values()))[0]
        raise UsageError(f"Deployment '{name}' lives in {home}, not {aws.region}: nothing was deleted or changed; "
                         f"pass --region {home}.")
    return inventory


def unchecked_warnings(inventory: Inventory, *, deleting: bool = False) -> list[str]:
    """One sentence per optional look-up AWS refused: what was not checked, and how to check it by hand.
    deleting: teardown's (what to delete by hand if it is there)."""
    said = []
    for each in inventory.unchecked:
        if each.piece == OPTIONAL["spot_requests"][0]:
            then = (f"if the deployment ran on Spot, cancel its Spot requests (tag amazonei-setup:deployment = "
                    f"{inventory.name}) in the EC2 console ({inventory.region}), or EC2 launches its instance again"
                    if deleting else "whether a Spot request is left is not known")
        elif each.piece == OPTIONAL["idle_alarms"][0]:
            then = (f"if the deployment had one, delete alarms named {alarm.alarm_prefix(inventory.name)}* in the "
                    f"CloudWatch console ({inventory.region})" if deleting
                    else "whether idle auto-stop is on is not known")
        else:
            stack_name = tags.resource_name(inventory.name)
            then = (f"if the deployment was made with `export --deploy`, delete the stack {stack_name} in the "
                    f"CloudFormation console ({inventory.region})" if deleting
                    else f"a stack {stack_name} (made by `export --deploy`) would not be shown")
        said.append(f"Could not check for {each.piece} ({each.action} denied): {then}.")
    return said


def _find_neighbours(aws: Aws, inventory: Inventory) -> None:
    """For the subnets the deployment put on shared endpoints: which zone each subnet of those VPCs is in, and the
    other deployments' live instances, so teardown never takes a zone from under one (teardown._subnet_fates)."""
    vpcs = sorted({e.vpc_id for e in inventory.endpoints if e.subnets_added_by(inventory.name)})
    if not vpcs:
        return
    ec2 = aws.ec2
    found = look_up_concurrently({
        "subnets": lambda: [s for page in ec2.get_paginator("describe_subnets").paginate(
            Filters=[{"Name": "vpc-id", "Values": vpcs}]) for s in page["Subnets"]],
        "other deployments' instances": lambda: instances.find_instances(ec2, None),
    }, budget=LOOKUP_BUDGET)
    for key, value in found.items():
        if isinstance(value, BaseException):
            raise explain(value, aws, doing=f"looking up {key}")
    inventory.subnet_zones = {s["SubnetId"]: (s["VpcId"], s["AvailabilityZone"]) for s in found["subnets"]}
    inventory.neighbour_instances = [i for i in found["other deployments' instances"]
                                     if i.tags.get(tags.DEPLOYMENT) != inventory.name]


def nothing_left(aws: Aws, inventory: Inventory, record: dict | None, *, deleting: bool = True) -> str:
    """For a teardown that found nothing of its deployment: the sentence to show when the name is known to have
    existed (its terminated instances, which EC2 lists for about an hour after a teardown, or `record`, this
    machine's note of its setup), so a re-run of a finished teardown still succeeds. Otherwise the name is most
    likely mistyped, and a teardown that "succeeds" would leave the real deployment running and billed: NotFound
    (exit 1), naming the closest deployments `list` finds here, and those our IAM roles place in other regions.
    deleting=False: the same for a command that deletes nothing (status, connect, stop, start)."""
    name, region = inventory.name, aws.region
    terminated = _looked_up(aws, "looking up the deployment's terminated instances",
                            lambda: instances.find_instances(aws.ec2, name, ["terminated"]))
    if terminated or record:
        why = "its instances are terminated" if terminated else "only this machine's record of its setup is left"
        return f"No deployment named {name} is left in {region} ({why})" + ("; nothing to delete." if deleting else ".")
    roles = our_roles(aws)
    here = {row.name for row in list_all(aws, [region], roles)}
    elsewhere = {tags.as_dict(r.get("Tags")).get(tags.DEPLOYMENT): tags.home_region(r.get("Tags")) for r in roles}
    candidates = here | {n for n, home in elsewhere.items() if n and home and home != region}
    matches = [m if m in here else f"{m} (--region {elsewhere[m]})" for m in rules.closest(name, candidates)]
    foreign = ", ".join(inventory.foreign)
    not_ours = f" (left alone, not created by amazonei-setup: {foreign})" if foreign else ""
    so = ", so nothing was deleted" if deleting else ""
    if matches:
        raise ToolError(f"No deployment named {name} in {region}{so}{not_ours}{rules.did_you_mean(matches)}",
                        code="not-found")
    raise ToolError(f"No deployment named {name} in {region}{so}{not_ours}; `list --all-regions` shows every "
                    "deployment.", code="not-found")


def refuse_close_names(aws: Aws, name: str, *, deleting: bool = True) -> None:
    """Teardown without --region of a name no role of ours carries: when our roles name deployments close to it
    (in any region), it is a typo, and NotFound (exit 1) names them with their regions. Otherwise returns."""
    homes = {tags.as_dict(r.get("Tags")).get(tags.DEPLOYMENT): tags.home_region(r.get("Tags")) for r in our_roles(aws)}
    matches = [f"{m} (--region {homes[m]})" if homes[m] else m
               for m in rules.closest(name, [n for n in homes if n])]
    if matches:
        so = ", so nothing was deleted" if deleting else ""
        raise ToolError(f"No deployment named {name}{so}{rules.did_you_mean(matches)}", code="not-found")


def _looked_up(aws: Aws, doing: str, look_up):
    """look_up(), with any failure as one sentence, like every other look-up."""
    try:
        return look_up()
    except Exception as err:  # noqa: BLE001
        raise explain(err, aws, doing=doing) from None


def lives_in(aws: Aws, name: str) -> str | None:
    """The region deployment `name` lives in, from its IAM role's region tag (IAM is global); None when no role of
    ours says so."""
    role = _looked_up(aws, "looking up the deployment's region", lambda: iam.get_role(aws.iam, iam.role_name(name)))
    if role is None or not tags.is_ours(role.get("Tags"), name):
        return None
    return tags.home_region(role.get("Tags"))


def _stack_resources(aws: Aws, cfn, found: stack.StackInfo) -> set[tuple[str, str]]:
    return _looked_up(aws, "listing the stack's resources", lambda: stack.held_resources(cfn, found.id))


def _refuse_if_not_yours(name: str, region: str, me: str, owners: set[str | None]) -> None:
    """The owner tag keeps a second user from tearing down a deployment by name (see tags.OWNER)."""
    others = sorted(o for o in owners if o and o != me)
    if others:
        raise UsageError(f"Deployment '{name}' in {region} belongs to {others[0]}, not to you ({me}): "
                         "nothing was deleted; check --name against `list`, or ask its owner to tear it down.")


@dataclass(frozen=True)
class DeploymentSummary:
    name: str
    region: str
    instance_id: str
    state: str
    instance_type: str
    accelerator_type: str
    public_dns: str
    launched: str
    hourly_usd: float | None
    left: tuple[str, ...] = ()  # a partial deployment (no instance): the kinds of piece still there
    market: str = "on-demand"  # "spot" for a Spot instance
    spot_hourly_usd: float | None = None  # a Spot instance's latest Spot price in its zone (None: unknown)

    @property
    def age_hours(self) -> float | None:
        if not self.launched:
            return None
        return (datetime.now(UTC) - datetime.fromisoformat(self.launched)).total_seconds() / 3600

    def to_dict(self) -> dict:
        age = self.age_hours
        return {
            "name": self.name, "region": self.region, "instance_id": self.instance_id, "state": self.state,
            "instance_type": self.instance_type, "accelerator_type": self.accelerator_type,
            "public_dns": self.public_dns, "launched": self.launched,
            "age_hours": round(age, 2) if age is not None else None, "hourly_usd": self.hourly_usd,
            "cost_so_far_usd": round(age * self.hourly_usd, 2) if age is not None and self.hourly_usd else None,
            **({"left": list(self.left)} if self.left else {}),
            # Spot keys on Spot rows only: an On-Demand row keeps the keys it always had.
            **({"market": self.market, "spot_hourly_usd": self.spot_hourly_usd} if self.market == "spot" else {}),
        }


def spot_prices_of(aws: Aws, found: list[instances.InstanceInfo]) -> dict[str, float]:
    """instance id -> the latest Spot price of its type in its zone; {} when EC2 does not say (a price is a
    nicety: it never fails a listing)."""
    try:
        prices = instances.spot_prices(aws.ec2, [i.instance_type for i in found])
        zones = {s["SubnetId"]: s["AvailabilityZone"] for s in aws.ec2.describe_subnets(
            SubnetIds=sorted({i.subnet_id for i in found if i.subnet_id}))["Subnets"]}
    except Exception:  # noqa: BLE001 - see the docstring
        return {}
    return {i.id: prices[i.instance_type][zones[i.subnet_id]] for i in found
            if zones.get(i.subnet_id) in prices.get(i.instance_type, {})}


def our_roles(aws: Aws) -> list[dict]:
    """Every role of ours, with its tags (IAM is global: read once for any number of regions)."""
    return _looked_up(aws, "listing deployments", lambda: iam.our_roles(aws.iam))


def regions_to_search(aws: Aws, roles: list[dict]) -> list[str]:
    """Every region the account has enabled (today's alternatives run in any of them), and any region one of our
    IAM roles says its deployment lives in; the EI regions first."""
    enabled = _looked_up(aws, "listing the account's regions",
                         lambda: {r["RegionName"] for r in aws.ec2.describe_regions()["Regions"]})
    found = (enabled | {tags.home_region(r.get("Tags")) for r in roles}) - {None}
    return [r for r in catalog.EI_REGIONS if r in found] + sorted(found - set(catalog.EI_REGIONS))


def list_deployments(aws: Aws, roles: list[dict] | None = None,
                     warnings: list[str] | None = None) -> list[DeploymentSummary]:
    """One row per deployment: its instances, or — when a killed setup or teardown left no instance — one
    `partial` row naming the pieces that are left, found by tag: group, key pair, endpoints, and the IAM role
    whose region tag names this region (IAM is global). The idle alarms are optional: denied, they are left out
    and `warnings` gets the sentence saying so."""
    aws.preload("ec2", "iam", "cloudwatch")
    ours = tags.filters_for(None)
    results = look_up_concurrently({
        "instances": lambda: instances.find_instances(aws.ec2, None),
        "groups": lambda: network.find_security_groups(aws.ec2, None),
        "key_pairs": lambda: aws.ec2.describe_key_pairs(Filters=ours)["KeyPairs"],
        "endpoints": lambda: [e for page in aws.ec2.get_paginator("describe_vpc_endpoints").paginate(Filters=ours)
                              for e in page["VpcEndpoints"]
                              if e.get("State", "").lower() not in network.GONE_ENDPOINT_STATES],
        "roles": lambda: iam.our_roles(aws.iam) if roles is None else roles,
        "idle_alarms": lambda: alarm.find_all_alarms(aws.client("cloudwatch")),
        # A Spot request left without its instance still launches one: a partial deployment to tear down.
        "spot_requests": lambda: instances.find_spot_requests(aws.ec2, ours),
    }, budget=LOOKUP_BUDGET)
    # Optional look-ups an older IAM policy may deny: the list goes on without them, saying what it could not see.
    for key, service, what in (("spot_requests", "ec2", "Spot requests"), ("idle_alarms", "cloudwatch",
                                                                             "idle-stop alarms")):
        failed = results[key]
        if isinstance(failed, BaseException) and denied(failed):
            results[key] = []
            said = (f"Could not check for {what} ({denied_action(failed, service)} denied): a deployment of which "
                    f"only its {what} are left is not listed.")
            if warnings is not None and said not in warnings:
                warnings.append(said)
    for value in results.values():
        if isinstance(value, BaseException):
            raise explain(value, aws, doing="listing deployments")
    rows = []
    seen = set()
    spot = [i for i in results["instances"] if i.market == "spot"]
    prices = spot_prices_of(aws, spot) if spot else {}
    for i in results["instances"]:
        name = i.tags.get(tags.DEPLOYMENT, "?")
        accelerator = i.tags.get(tags.ACCELERATOR, "")
        seen.add(name)
        rows.append(DeploymentSummary(name, aws.region, i.id, i.state, i.instance_type, accelerator, i.public_dns,
                                      i.launch_time, catalog.hourly_usd(i.instance_type, accelerator or None,
                                                                                   aws.region),
                                      market=i.market, spot_hourly_usd=prices.get(i.id)))
    left: dict[str, list[str]] = {}
    group_owner = {g["GroupId"]: tags.as_dict(g.get("Tags")).get(tags.DEPLOYMENT) for g in results["groups"]}

    def serves_another(endpoint: dict) -> bool:
        # The endpoint a torn-down deployment created stays while a sibling's group uses it (see network.py).
        creator = tags.as_dict(endpoint.get("Tags")).get(tags.DEPLOYMENT)
        return any(group_owner.get(g["GroupId"]) not in (None, creator) for g in endpoint.get("Groups", []))

    pieces = ([("security group", g.get("Tags")) for g in results["groups"]]
              + [("key pair", k.get("Tags")) for k in results["key_pairs"]]
              + [(network.Endpoint.from_api(e).label, e.get("Tags")) for e in results["endpoints"]
                 if not serves_another(e)]
              + [("IAM role", r.get("Tags")) for r in results["roles"]
                 if tags.home_region(r.get("Tags")) == aws.region]
              + [("idle alarm", [{"Key": k, "Value": v} for k, v in a.tags.items()]) for a in results["idle_alarms"]]
              + [("Spot request", r.get("Tags")) for r in results["spot_requests"]])
    for kind, piece_tags in pieces:
        name = tags.as_dict(piece_tags).get(tags.DEPLOYMENT)
        if name and tags.is_ours(piece_tags) and name not in seen:
            left.setdefault(name, []).append(kind)
    for name, kinds in left.items():
        rows.append(DeploymentSummary(name, aws.region, "", "no instance (partial)", "", "", "", "", None,
                                      tuple(kinds)))
    return sorted(rows, key=lambda r: (r.name, r.instance_id))


def list_all(aws: Aws, regions: list[str], roles: list[dict] | None = None,
             warnings: list[str] | None = None) -> list[DeploymentSummary]:
    """list_deployments over several regions at once (clients built first: Sessions are not thread-safe)."""
    per_region = {region: aws if region == aws.region else aws.in_region(region) for region in regions}
    for regional in per_region.values():
        regional.preload("ec2", "iam", "cloudwatch")
    if roles is None and len(regions) > 1:
        roles = our_roles(aws)
    said: dict[str, list[str]] = {region: [] for region in regions}  # one list per thread, merged in order
    results = look_up_concurrently({region: (lambda a=a, r=region: list_deployments(a, roles, said[r]))
                                for region, a in per_region.items()}, budget=LOOKUP_BUDGET)
    for region in regions:
        if warnings is not None:
            warnings += [w for w in said[region] if w not in warnings]
    rows: list[DeploymentSummary] = []
    for region in regions:
        value = results[region]
        if isinstance(value, BaseException):
            raise explain(value, per_region[region], doing=f"listing deployments in {region}")
        rows += value
    return rows


def describe_idle_stop(aws: Aws, inventory: Inventory) -> dict | None:
    """The deployment's idle auto-stop as `status` shows it (None: off). From the inventory alone: no call."""
    if not inventory.idle_alarms:
        return None
    minutes = sorted({a.minutes for a in inventory.idle_alarms if a.minutes})
    return {"minutes": minutes[0] if len(minutes) == 1 else None,
            "rule": f"CPU below {alarm.IDLE_CPU_PERCENT}% and network below "
                    f"{alarm.IDLE_NETWORK_BYTES // 1_000_000} MB per 5 minutes",
            "alarms": [a.to_dict() for a in inventory.idle_alarms],
            "region": aws.region}
