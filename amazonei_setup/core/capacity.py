"""Capacity and quota rules: which On-Demand vCPU quota an instance type counts against, whether this run fits in
it, which refusals of `run_instances` another Availability Zone may not repeat, and which zones to try next.

Pure (no AWS SDK, no I/O): discovery (resources/quota.py) fetches the numbers, `commands/setup.py` and
`provision` decide with these functions, so the rules are tested without an account.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# EC2's Running On-Demand vCPU quotas (Service Quotas, service code ec2), by the instance family's leading letters.
STANDARD, GPU_GRAPHICS, INFERENTIA, P_FAMILY = "L-1216C47A", "L-DB2E81BA", "L-1945791B", "L-417A185B"
QUOTA_NAMES = {
    STANDARD: "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
    GPU_GRAPHICS: "Running On-Demand G and VT instances",
    INFERENTIA: "Running On-Demand Inf instances",
    P_FAMILY: "Running On-Demand P instances",
}
# EC2's Spot vCPU quotas, one per family group as for On-Demand: the vCPUs of the account's running and requested
# Spot instances count against them, and an On-Demand quota says nothing about them (a new account often has 0 here
# while its On-Demand quota is fine). Codes and names as the Service Quotas console lists them (service code ec2;
# AWS EC2 User Guide, "Spot Instance quotas", which points there); the AWS page itself was not in the reviewed
# sources, so the codes were cross-checked 2026-12-06 against public code that reads them by name:
# aws-quota-checker (SpotInfRequestCountCheck, L-B5D1601B), the per-family (on-demand, spot) tables of several
# public quota scripts (g/vt L-3819A6DF, inf L-B5D1601B, p L-7212CCBC, standard L-34B43A08), all in agreement.
SPOT_STANDARD, SPOT_GPU_GRAPHICS = "L-34B43A08", "L-3819A6DF"
SPOT_INFERENTIA, SPOT_P_FAMILY = "L-B5D1601B", "L-7212CCBC"
SPOT_QUOTA_SOURCE = ("Service Quotas (service code ec2), the 'All ... Spot Instance Requests' quotas; codes "
                     "cross-checked 2026-12-06 against public quota-checking code")
QUOTA_NAMES.update({
    SPOT_STANDARD: "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests",
    SPOT_GPU_GRAPHICS: "All G and VT Spot Instance Requests",
    SPOT_INFERENTIA: "All Inf Spot Instance Requests",
    SPOT_P_FAMILY: "All P Spot Instance Requests",
})
SPOT_OF = {STANDARD: SPOT_STANDARD, GPU_GRAPHICS: SPOT_GPU_GRAPHICS, INFERENTIA: SPOT_INFERENTIA,
           P_FAMILY: SPOT_P_FAMILY}
_PREFIX_QUOTAS = (("inf", INFERENTIA), ("vt", GPU_GRAPHICS), ("g", GPU_GRAPHICS), ("p", P_FAMILY))
_STANDARD_LETTERS = set("acdhimrtz")
_FAMILY_RE = re.compile(r"([a-z]+)")

OK, SHORT, UNKNOWN = "ok", "short", "unknown"


def quota_code(instance_type: str, spot: bool = False) -> str | None:
    """The On-Demand (spot: the Spot) vCPU quota `instance_type` counts against; None for families with their own
    quotas (F, X, U-, mac, trn, dl...), which this check does not cover."""
    code = _on_demand_code(instance_type)
    return SPOT_OF.get(code) if spot and code else code


def _on_demand_code(instance_type: str) -> str | None:
    match = _FAMILY_RE.match(instance_type.lower())
    if not match:
        return None
    letters = match.group(1)
    for prefix, code in _PREFIX_QUOTAS:  # "inf" before the Standard letters: I (i3, i4i) is Standard
        if letters.startswith(prefix):
            return code
    if letters[0] in _STANDARD_LETTERS and not letters.startswith(("trn", "dl", "mac", "hpc")) and \
            not instance_type.lower().startswith("u-"):
        return STANDARD
    return None


def desired_value(in_use: int, needed: int) -> int:
    """What to ask for: all that is in use plus this run, up to the next multiple of 4 (instances come in
    multiples of 4 vCPUs from xlarge up, so a request of 9 would not fit the next xlarge either)."""
    return max(4, math.ceil((in_use + needed) / 4) * 4)


def request_command(code: str, desired: int, region: str) -> str:
    return (f"aws service-quotas request-service-quota-increase --service-code ec2 --quota-code {code} "
            f"--desired-value {desired} --region {region}")


@dataclass(frozen=True)
class QuotaReading:
    """A quota's value as Service Quotas gave it, or why it could not be read."""

    value: float | None
    problem: str = ""  # set when value is None: "no permission", "no answer"


@dataclass(frozen=True)
class CapacityFacts:
    """What discovery learned for the quota check: each quota read, the vCPUs this account runs per quota
    (None: unknown), and the vCPUs of the instance types the wizard may pick."""

    quotas: dict[str, QuotaReading] = field(default_factory=dict)
    in_use: dict[str, int] | None = None
    in_use_problem: str = ""
    type_vcpus: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class QuotaCheck:
    code: str | None
    name: str
    value: int | None
    in_use: int | None
    needed: int
    status: str  # ok | short | unknown
    region: str
    reason: str = ""  # why unknown
    needed_launches: int = 0  # instances launched or started (0: nothing new counts against the quota)

    @property
    def desired(self) -> int:
        return desired_value(self.in_use or 0, self.needed)

    @property
    def command(self) -> str | None:
        return request_command(self.code, self.desired, self.region) if self.code else None

    def to_dict(self) -> dict:
        return {"code": self.code, "name": self.name, "value": self.value, "in_use": self.in_use,
                "needed": self.needed, "status": self.status,
                **({"reason": self.reason} if self.reason else {}),
                **({"request_command": self.command} if self.status == SHORT else {})}

    def short_sentence(self, instance_type: str, count: int) -> str:
        what = f"{count} x {instance_type}" if count > 1 else instance_type
        return (f"Your account's EC2 quota \"{self.name}\" ({self.code}) in {self.region} is {self.value} vCPUs, "
                f"{self.in_use} are in use and {what} needs {self.needed} more, so EC2 would refuse the launch; "
                f"nothing was created. Ask for {self.desired} with: {self.command}")

    def unknown_sentence(self) -> str:
        named = f" \"{self.name}\" ({self.code})" if self.code else ""
        return (f"Could not check your EC2 vCPU quota{named} in {self.region} ({self.reason}): setup goes on, "
                "and EC2 itself refuses the launch if the quota is too low.")

    def summary(self) -> str:
        """One line for the dry run."""
        if self.status == OK:
            return (f"vCPU quota {self.code}: {self.value} vCPUs, {self.in_use} in use, {self.needed} needed: "
                    "enough")
        if self.status == SHORT:
            return (f"vCPU quota {self.code}: {self.value} vCPUs, {self.in_use} in use, {self.needed} needed: too "
                    f"low; ask for more with: {self.command}")
        return f"vCPU quota: not checked ({self.reason})"


def check_quota(*, instance_type: str, vcpus: int | None, launches: int, region: str,
                facts: CapacityFacts | None, min_launches: int | None = None, spot: bool = False) -> QuotaCheck:
    """Does launching `launches` instances of `instance_type` (each `vcpus`) fit in the quota's room
    (value - in use)? `launches`: instances this run launches or starts (0 when converging onto running ones);
    min_launches (--min-count): short only when not even that many fit (EC2 then launches fewer)."""
    code = quota_code(instance_type, spot)
    name = QUOTA_NAMES.get(code or "", "")
    needed = (vcpus or 0) * launches

    def unknown(reason: str, value=None, in_use=None) -> QuotaCheck:
        return QuotaCheck(code, name, value, in_use, needed, UNKNOWN, region, reason)

    if code is None:
        return unknown(f"{instance_type} counts against no quota this tool knows")
    if facts is None:
        return unknown("not looked up")
    reading = facts.quotas.get(code)
    value = None if reading is None or reading.value is None else int(reading.value)
    if vcpus is None:
        return unknown(f"the vCPUs of {instance_type} are unknown", value,
                       facts.in_use.get(code, 0) if facts.in_use is not None else None)
    if value is None:
        return unknown(reading.problem if reading else "not looked up", None,
                       facts.in_use.get(code, 0) if facts.in_use is not None else None)
    if facts.in_use is None:
        return unknown(facts.in_use_problem or "the vCPUs in use are unknown", value)
    in_use = facts.in_use.get(code, 0)
    least = (vcpus or 0) * (launches if min_launches is None else min_launches)
    status = OK if least == 0 or in_use + least <= value else SHORT
    return QuotaCheck(code, name, value, in_use, needed, status, region)


# ---- capacity: which refusals another zone may not repeat, and which zones to try ------------------

def _is_ei_refusal(message: str) -> bool:
    text = message.lower()
    return any(marker in text for marker in ("elastic inference", "elasticinference", "elastic-inference",
                                              "eia1.", "eia2."))


def zone_refusal(code: str, message: str) -> str | None:
    """Why a zone refused `run_instances`, when another zone may not: "no capacity" or "type not offered";
    None for every other refusal (an EI refusal is the account's, whatever the zone)."""
    if _is_ei_refusal(message):
        return None
    if code == "InsufficientInstanceCapacity":
        return "no capacity"
    if code == "Unsupported" and re.search(r"availability zone|instance type", message, re.IGNORECASE):
        return "type not offered"
    return None


@dataclass(frozen=True)
class Zone:
    """A subnet to launch in, and its Availability Zone."""

    subnet_id: str
    az: str


@dataclass(frozen=True)
class Failover:
    """Where a launch may go when the planned zone refuses: other zones' subnets in the plan's VPC, in order,
    and the AZ of every subnet of that VPC (an EI endpoint's coverage is read as AZs)."""

    zones: tuple[Zone, ...] = ()
    az_of: dict[str, str] = field(default_factory=dict)
    passed_over: tuple[tuple[str, str], ...] = ()  # (AZ, why it is not tried), for the final message


def failover_zones(*, subnets: Iterable, vpc_id: str, planned_subnet_id: str, instance_type: str,
                   offered_azs: Iterable[str] | None, allowed_azs: Iterable[str] | None) -> Failover:
    """One subnet in each other zone of the VPC where the type is offered (offered_azs; None: unknown, every zone)
    and, for EI, where the EI endpoint service is (allowed_azs). Like the planned subnet: one that maps public IPs
    when it does; most free addresses first. `subnets`: facts.Subnet records."""
    in_vpc = [s for s in subnets if s.vpc_id == vpc_id]
    planned = next((s for s in in_vpc if s.id == planned_subnet_id), None)
    az_of = {s.id: s.az for s in in_vpc}
    if planned is None:
        return Failover((), az_of)
    offered = None if offered_azs is None else set(offered_azs)
    allowed = None if allowed_azs is None else set(allowed_azs)
    zones, passed = [], []
    for az in sorted({s.az for s in in_vpc} - {planned.az}):
        if offered is not None and az not in offered:
            passed.append((az, f"{instance_type} not offered"))
            continue
        if allowed is not None and az not in allowed:
            passed.append((az, "no Elastic Inference endpoint service"))
            continue
        here = [s for s in in_vpc if s.az == az]
        alike = [s for s in here if s.public_ip_on_launch == planned.public_ip_on_launch] or here
        best = max(alike, key=lambda s: (s.free_ips, s.id))
        zones.append(Zone(best.id, az))
    return Failover(tuple(zones), az_of, tuple(passed))


# Where to look for another region when every zone here refused: EI ran in a few; today's alternatives are in
# most, so the look-up is bounded to the large ones (one concurrent call each).
ALTERNATIVE_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1",
                       "ap-southeast-2", "ap-south-1")


def regions_to_ask(region: str, ei: bool, ei_regions: Iterable[str]) -> list[str]:
    candidates = list(ei_regions) if ei else list(ALTERNATIVE_REGIONS)
    return [r for r in candidates if r != region]
