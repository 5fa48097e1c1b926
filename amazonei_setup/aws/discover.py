"""Read-only AWS look-ups that feed the wizard, all fetched concurrently in one round.

Nothing here creates anything or prints. `gather` returns `Facts`: what the account and region
hold that a setup's decisions depend on. The wizard then decides without calling AWS.
"""
from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from fnmatch import fnmatchcase

from botocore.exceptions import BotoCoreError, ClientError

from amazonei_setup.aws import concurrency, regions
from amazonei_setup.aws.client import Aws, error_code, explain
from amazonei_setup.aws.concurrency import look_up_concurrently
from amazonei_setup.aws.resources import alarm, iam, keypair, network, quota
from amazonei_setup.aws.resources import instance as instances
from amazonei_setup.core import capacity, catalog, rules, tags
from amazonei_setup.core.access import SSM_ENDPOINT_SERVICES
from amazonei_setup.core.errors import UsageError
from amazonei_setup.core.facts import Facts, Image, InstanceType, Subnet, Vpc, owner_of  # noqa: F401 - re-exported

CHECKIP_URL = "https://checkip.amazonaws.com"
AMI_ID_RE = re.compile(r"ami-[0-9a-z]{1,32}")  # real ids are hex; emulators use letters too


def check_region(region: str, ei: bool = True) -> None:
    """Before any call: a region AWS has (botocore's partition data), and for EI one of the few it ran in.
    ei=False (today's alternatives run in any region): any real region."""
    try:
        regions.check(region)
    except rules.RuleError as err:
        raise UsageError(f"--region: {err}.") from None
    if ei and region not in catalog.EI_REGIONS:
        families = "|".join(catalog.FAMILIES)
        raise UsageError(f"Elastic Inference is not offered in {region}: pass --region with one of "
                         f"{', '.join(catalog.EI_REGIONS)}, or stay in {region} with --accelerator {families} "
                         "(Inferentia2 or GPU instances, today's alternatives to EI).")


def lookup_public_ip(timeout: float = 3.0) -> str | None:
    """The caller's public IPv4 address as AWS sees it, or None when it cannot be learned."""
    try:
        with urllib.request.urlopen(CHECKIP_URL, timeout=timeout) as reply:  # noqa: S310 (fixed https URL)
            return reply.read().decode().strip() or None
    except (OSError, ValueError):
        return None


LOOKUP_BUDGET = concurrency.LOOKUP_BUDGET  # seconds for every look-up a setup needs
OPTIONAL_BUDGET = 10.0  # seconds the look-ups a setup can do without may hold up the rest


def gather(aws: Aws, *, instance_type: str | None, ami_id: str | None = None,
           public_ip_lookup: Callable[[], str | None] | None = None, families: tuple[str, ...] = (),
           ei: bool = True, name: str | None = None, spot: bool | None = False, ssm: bool = False) -> Facts:
    """Fetch everything the wizard needs in one concurrent round.

    ei=False (an --accelerator family): no EI region check, no EI endpoint-service or EI DLAMI look-ups.
    ssm (--access ssm): also Session Manager's interface endpoints, which a private instance's agent may need.
    spot (--spot): the Spot vCPU quotas instead of the On-Demand ones, and the types' latest Spot prices; None (the
    wizard will ask): both kinds of quota, and the prices.
    families: the alternatives the wizard may choose (their AMIs via SSM, and where their types are offered).
    """
    check_region(aws.region, ei)
    ec2, region = aws.ec2, aws.region
    aws.preload("ec2", "iam", "sts", *(("ssm",) if families else ()), *(("cloudwatch",) if name else ()))
    jobs: dict[str, Callable] = {
        "identity": lambda: aws.sts.get_caller_identity(),
        "ei_azs": lambda: ei_availability_zones(ec2, region) if ei else [],
        "images": lambda: deep_learning_images(ec2) if ei else {},
        "requested_image": lambda: image_by_id(ec2, ami_id) if ami_id else None,
        "vpcs": lambda: list_vpcs(ec2),
        "subnets": lambda: list_subnets(ec2),
        "key_pairs": lambda: keypair.find_key_pairs(ec2),
        "instance_type": lambda: describe_instance_type(ec2, instance_type) if instance_type else None,
        # EI's endpoints and (ssm) Session Manager's, in one call
        # (a named deployment's re-run may be a private Session Manager one: its endpoints converge)
        "endpoints": lambda: network.find_endpoints(
            ec2, region, ((network.EI_SERVICE,) if ei else ()) + (SSM_ENDPOINT_SERVICES if ssm or name else ()))
        if ei or ssm or name else [],
        "our_instances": lambda: instances.find_instances(ec2, None),
        "our_security_groups": lambda: network.find_security_groups(ec2, None),
        # A name is one deployment in the account: its role says which region it lives in.
        "named_role": lambda: iam.get_role(aws.iam, iam.role_name(name)) if name else None,
        # A re-run converges the idle auto-stop too: which alarms exist, with how many minutes.
        "idle_alarms": lambda: alarm.find_alarms(aws.client("cloudwatch"), name) if name else [],
    }
    # Whether the chosen subnet is public: an instance in a private one is reached only through Session Manager,
    # whose agent then needs a NAT or the VPC's endpoints. Refused or slow: unknown, and the subnet taken as public.
    jobs["route_tables"] = lambda: _unless_refused(network.route_tables, ec2, otherwise=None)
    if families:
        chosen = [catalog.FAMILIES[f] for f in families]
        types = sorted({t for f in chosen for t in f.instance_types} | ({instance_type} if instance_type else set()))
        jobs["family_ami_ids"] = lambda: family_ami_ids(aws.client("ssm"), chosen)
        jobs["family_images"] = lambda: family_images_by_name(ec2, chosen)
        jobs["offerings"] = lambda: type_offerings(ec2, types)
    # The quota preflight's and the zone failover's look-ups, in the same round (never failing it).
    capacity_types = _types_the_wizard_may_pick(instance_type, families, ei)
    if capacity_types and "offerings" not in jobs:
        jobs["offerings"] = lambda: _unless_refused(type_offerings, ec2, capacity_types, otherwise={})
    jobs.update(_quota_jobs(aws, capacity_types, described=instance_type, spot=spot))
    if spot is not False and capacity_types:
        jobs["spot_prices"] = lambda: _unless_refused(instances.spot_prices, ec2, capacity_types, otherwise={})
    if public_ip_lookup:
        jobs["public_ip"] = public_ip_lookup
    # What the setup can do without (the quota preflight, the failover's offerings, the caller's address) may not
    # hold up the rest: a hung Service Quotas endpoint costs OPTIONAL_BUDGET, not minutes of botocore's retries.
    stand_ins = {key: capacity.QuotaReading(None, "Service Quotas did not answer in time")
                 for key in jobs if key.startswith("quota ")}
    stand_ins.update(vcpus_in_use=None, type_vcpus={}, public_ip=None, spot_prices={}, route_tables=None)
    if capacity_types and not families:
        stand_ins["offerings"] = {}
    results = look_up_concurrently(jobs, budget=LOOKUP_BUDGET, optional_budget=OPTIONAL_BUDGET,
                                   optional={k: v for k, v in stand_ins.items() if k in jobs})
    # Report the most fundamental failure first: bad credentials explain every other error.
    for key in ("identity", *jobs):
        if isinstance(results.get(key), BaseException):
            raise explain(results[key], aws, doing=f"looking up {key.replace('_', ' ')}")
    if ei and not results["ei_azs"]:
        raise UsageError(f"The region {region} does not offer the Elastic Inference endpoint service: pass --region "
                         f"with one of {', '.join(catalog.EI_REGIONS)}.")
    identity = results["identity"]
    family_images, family_image_sources = {}, {}
    if families:
        try:
            family_images, family_image_sources = resolve_family_images(ec2, results["family_ami_ids"],
                                                                        results["family_images"])
        except ClientError as err:
            raise explain(err, aws, doing="looking up the Deep Learning AMIs") from None
    return Facts(
        region=region, account_id=identity["Account"], caller_arn=identity["Arn"], ei_azs=tuple(results["ei_azs"]),
        images=results["images"], requested_image=results["requested_image"], vpcs=results["vpcs"],
        subnets=results["subnets"], key_pairs=[k["KeyName"] for k in results["key_pairs"]],
        key_pair_deployments={k["KeyName"]: tags.as_dict(k.get("Tags")).get(tags.DEPLOYMENT, "")
                              for k in results["key_pairs"] if tags.is_ours(k.get("Tags"))},
        instance_type=results["instance_type"],
        endpoints=[e for e in results["endpoints"] if e.is_ei],
        ssm_endpoints=[e for e in results["endpoints"] if not e.is_ei],
        our_instances=results["our_instances"],
        our_security_groups=results["our_security_groups"], public_ip=results.get("public_ip"),
        family_images=family_images, family_image_sources=family_image_sources,
        offerings=results.get("offerings", {}), named_role=results["named_role"],
        idle_alarms=results["idle_alarms"],
        capacity=_capacity_facts(results, capacity_types),
        spot_prices=results.get("spot_prices") or {},
        subnet_ways_out=network.subnet_ways_out(results["route_tables"], [(s.id, s.vpc_id) for s in results["subnets"]])
        if results.get("route_tables") is not None else {},
    )



# ---- the quota preflight -----------------------------------------------------------------------------

def _types_the_wizard_may_pick(instance_type: str | None, families: tuple[str, ...], ei: bool) -> list[str]:
    """The flagged type, else every type the wizard may choose: the families' and, for EI, its host list."""
    if instance_type:
        return [instance_type] if rules.INSTANCE_TYPE_RE.fullmatch(instance_type) else []
    types = {t for f in families for t in catalog.FAMILIES[f].instance_types}
    if ei:
        from amazonei_setup.core.catalog import EI_HOSTS

        types |= set(EI_HOSTS)
    return sorted(types)


def _unless_refused(call: Callable, *args, otherwise):
    """A look-up the setup can do without: its answer, or `otherwise` when AWS refuses or does not answer."""
    try:
        return call(*args)
    except (ClientError, BotoCoreError):
        return otherwise


def _quota_jobs(aws: Aws, types: list[str], described: str | None,
                spot: bool | None = False) -> dict[str, Callable]:
    """One get_service_quota per quota the types count against, the vCPUs in use, and the vCPUs of the types
    discovery does not describe already (the flagged one is). None of them fails the round."""
    if not types:
        return {}
    markets = (False, True) if spot is None else (spot,)
    codes = sorted({c for c in (capacity.quota_code(t, m) for t in types for m in markets) if c})
    jobs: dict[str, Callable] = {f"quota {code}": (lambda c=code: quota.read_quota(aws.client("service-quotas"), c))
                                 for code in codes}
    if codes:
        jobs["vcpus_in_use"] = lambda: _unless_refused(quota.vcpus_in_use, aws.ec2, otherwise=None)
    others = [t for t in types if t != described]
    if others:
        jobs["type_vcpus"] = lambda: _unless_refused(quota.vcpus_by_type, aws.ec2, others, otherwise={})
    return jobs


def _capacity_facts(results: dict, types: list[str]) -> capacity.CapacityFacts | None:
    if not types:
        return None
    described = results.get("instance_type")
    type_vcpus = dict(results.get("type_vcpus") or {})
    if described is not None and described.vcpus:
        type_vcpus[described.name] = described.vcpus
    in_use = results.get("vcpus_in_use")
    return capacity.CapacityFacts(
        quotas={key.split(" ", 1)[1]: value for key, value in results.items() if key.startswith("quota ")},
        in_use=in_use, in_use_problem="" if in_use is not None else "EC2 did not list the running instances",
        type_vcpus=type_vcpus)


# ---- today's alternatives: AMIs through AWS's public SSM parameters, and type offerings -----------

def family_ami_ids(ssm, families: list[catalog.Family]) -> dict[str, tuple[str, str]]:
    """family key -> (the SSM parameter that named it, the image id), every family's candidate parameters asked
    in ONE GetParameters call; the first candidate found wins, in catalog order (AWS's pages and public code
    spell the GPU DLAMI's parameter two ways). Families none of whose parameters exist (or all unreadable: no
    ssm:GetParameters) are left out, and the name-pattern fallback decides for them."""
    names = [name for f in families for name in f.ami_parameters]
    try:
        found = ssm.get_parameters(Names=list(dict.fromkeys(names)))["Parameters"]
    except ClientError as err:
        if error_code(err) in {"AccessDeniedException", "AccessDenied", "ParameterNotFound", "InvalidParameters"}:
            return {}
        raise
    values = {p["Name"]: p["Value"] for p in found if p.get("Name") and p.get("Value")}
    chosen: dict[str, tuple[str, str]] = {}
    for family in families:
        name = next((n for n in family.ami_parameters if n in values), None)
        if name:
            chosen[family.key] = (name, values[name])
    return chosen


def family_images_by_name(ec2, families: list[catalog.Family]) -> dict[str, list[Image]]:
    """family key -> Amazon-owned images matching its DLAMI name pattern, newest first (one paginated call)."""
    pages = ec2.get_paginator("describe_images").paginate(
        Owners=[catalog.DLAMI_OWNER],
        Filters=[{"Name": "name", "Values": [f.ami_name_pattern for f in families]},
                 {"Name": "state", "Values": ["available"]}])
    found: dict[str, list[Image]] = {f.key: [] for f in families}
    for page in pages:
        for raw in page["Images"]:
            image = Image.from_api(raw)
            for family in families:
                if fnmatchcase(image.name, family.ami_name_pattern):
                    found[family.key].append(image)
    for images in found.values():
        images.sort(key=lambda i: i.created, reverse=True)
    return found


def resolve_family_images(ec2, ids: dict[str, tuple[str, str]],
                          by_name: dict[str, list[Image]]) -> tuple[dict[str, Image | None], dict[str, str]]:
    """The SSM-named image when EC2 knows it, else the newest image matching the family's name pattern; and for
    each family found, where its image came from: the SSM parameter's name, or "name pattern: <pattern>"."""
    resolved: dict[str, Image | None] = {}
    sources: dict[str, str] = {}
    for key, images in by_name.items():
        parameter, wanted = ids.get(key, (None, None))
        image = next((i for i in images if i.id == wanted), None) if wanted else None
        if wanted and image is None:
            image = image_by_id(ec2, wanted)  # named by AWS but not matched by the pattern: ask for it
        if image is not None:
            sources[key] = parameter
        elif images:
            image = images[0]
            sources[key] = f"{catalog.NAME_PATTERN_SOURCE}: {catalog.FAMILIES[key].ami_name_pattern}"
        resolved[key] = image
    return resolved, sources


def type_offerings(ec2, types: list[str]) -> dict[str, tuple[str, ...]]:
    """instance type -> the region's AZs that offer it (absent: offered nowhere in the region)."""
    pages = ec2.get_paginator("describe_instance_type_offerings").paginate(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": types}])
    zones: dict[str, set[str]] = {}
    for page in pages:
        for offer in page["InstanceTypeOfferings"]:
            zones.setdefault(offer["InstanceType"], set()).add(offer["Location"])
    return {t: tuple(sorted(z)) for t, z in zones.items()}


def ei_availability_zones(ec2, region: str) -> list[str]:
    """AZs offering the EI runtime endpoint service; empty when the region has none.

    ServiceNames, not a service-name filter: moto 5.2 crashes on the filter form.
    """
    try:
        details = ec2.describe_vpc_endpoint_services(
            ServiceNames=[catalog.EI_SERVICE_NAME.format(region=region)])["ServiceDetails"]
    except ClientError as err:
        if error_code(err) in {"InvalidServiceName", "InvalidParameterValue"}:
            return []
        raise
    return sorted({az for d in details for az in d.get("AvailabilityZones", [])})


def deep_learning_images(ec2) -> dict[str, list[Image]]:
    """Newest-first DLAMIs of each EI-capable OS line, in one paginated call."""
    patterns = [o.ami_name_pattern for o in catalog.OPERATING_SYSTEMS.values()]
    pages = ec2.get_paginator("describe_images").paginate(
        Owners=[catalog.DLAMI_OWNER],
        Filters=[{"Name": "name", "Values": patterns}, {"Name": "state", "Values": ["available"]}])
    found: dict[str, list[Image]] = {key: [] for key in catalog.OPERATING_SYSTEMS}
    for page in pages:
        for raw in page["Images"]:
            image = Image.from_api(raw)
            if image.os_key:  # re-check: EC2's name filter is a glob, ours is exact
                found[image.os_key].append(image)
    for images in found.values():
        images.sort(key=lambda i: i.created, reverse=True)
    return found


def image_by_id(ec2, ami_id: str) -> Image | None:
    if not AMI_ID_RE.fullmatch(ami_id):  # not an id at all: no need to ask EC2 (and no garbage sent to it)
        return None
    try:
        images = ec2.describe_images(ImageIds=[ami_id])["Images"]
    except ClientError as err:
        if error_code(err) in {"InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable"}:
            return None
        raise
    return Image.from_api(images[0]) if images else None


def list_vpcs(ec2) -> list[Vpc]:
    pages = ec2.get_paginator("describe_vpcs").paginate(Filters=[{"Name": "state", "Values": ["available"]}])
    vpcs = [Vpc(v["VpcId"], v.get("CidrBlock", ""), bool(v.get("IsDefault")),
                tags.as_dict(v.get("Tags")).get("Name", "")) for page in pages for v in page["Vpcs"]]
    return sorted(vpcs, key=lambda v: (not v.is_default, v.name or "~", v.id))


def list_subnets(ec2) -> list[Subnet]:
    pages = ec2.get_paginator("describe_subnets").paginate()
    subnets = [Subnet(s["SubnetId"], s["VpcId"], s["AvailabilityZone"], s.get("CidrBlock", ""),
                      bool(s.get("MapPublicIpOnLaunch")), int(s.get("AvailableIpAddressCount", 0)),
                      tags.as_dict(s.get("Tags")).get("Name", ""))
               for page in pages for s in page["Subnets"]]
    return sorted(subnets, key=lambda s: (not s.public_ip_on_launch, s.az, s.id))


def describe_instance_type(ec2, name: str) -> InstanceType:
    info = []
    if rules.INSTANCE_TYPE_RE.fullmatch(name):  # e.g. m5.xlarge, u-6tb1.metal; anything else is not a type
        try:
            info = ec2.describe_instance_types(InstanceTypes=[name])["InstanceTypes"]
        except ClientError as err:
            if error_code(err) not in {"InvalidInstanceType", "InvalidParameterValue"}:
                raise
    if not info:
        region = ec2.meta.region_name
        nearest = rules.closest(name, offered_instance_types(ec2))
        if nearest:
            raise UsageError(f"--instance-type '{name}' is not an instance type EC2 offers in {region}"
                             f"{rules.did_you_mean(nearest)}")
        raise UsageError(f"EC2 does not offer the instance type '{name}' in {region}: pass a valid --instance-type "
                         "such as m5.xlarge or c5.large.")
    raw = info[0]
    return InstanceType(name, tuple(raw.get("ProcessorInfo", {}).get("SupportedArchitectures", [])),
                        raw.get("VCpuInfo", {}).get("DefaultVCpus", 0), raw.get("MemoryInfo", {}).get("SizeInMiB", 0))


def offered_instance_types(ec2) -> list[str]:
    """Every instance type the region offers (for suggesting the nearest to a mistyped one); the catalog's types
    when EC2 cannot say (no ec2:DescribeInstanceTypeOfferings): a suggestion must not turn into a failure."""
    try:
        pages = ec2.get_paginator("describe_instance_type_offerings").paginate(LocationType="region")
        return sorted({o["InstanceType"] for page in pages for o in page["InstanceTypeOfferings"]})
    except ClientError:
        return list(catalog.known_instance_types())
