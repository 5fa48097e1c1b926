"""Service Quotas and EC2 look-ups for the quota preflight and the regions hint: read-only, nothing printed.

Each reader turns what AWS cannot or will not say into a reason (capacity.QuotaReading.problem, or None), never
an exception: a quota nobody can read must not stop a setup, only be reported as unchecked.
"""
from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from amazonei_setup.aws.concurrency import LOOKUP_BUDGET, look_up_concurrently
from amazonei_setup.core import capacity
from amazonei_setup.core.errors import error_code

_DENIED = {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"}
_TYPES_PER_CALL = 100  # describe_instance_types takes at most 100 names


def read_quota(service_quotas, code: str) -> capacity.QuotaReading:
    """One EC2 quota's applied value (get_service_quota), or why it is unknown."""
    try:
        quota = service_quotas.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]
    except ClientError as err:
        found = error_code(err)
        if found in _DENIED:
            return capacity.QuotaReading(None, "no permission for servicequotas:GetServiceQuota")
        return capacity.QuotaReading(None, f"Service Quotas answered {found or 'an error'}")
    except (BotoCoreError, NotImplementedError):  # no network path to the endpoint; an emulator without it
        return capacity.QuotaReading(None, "Service Quotas did not answer")
    value = quota.get("Value")
    if value is None:
        return capacity.QuotaReading(None, "Service Quotas gave no value")
    return capacity.QuotaReading(float(value))


def vcpus_by_type(ec2, instance_types: list[str]) -> dict[str, int]:
    """Default vCPUs per instance type; types EC2 does not know are left out (one bad name fails a whole call,
    so a refused batch is asked again one by one)."""
    found: dict[str, int] = {}
    names = sorted(set(instance_types))
    for start in range(0, len(names), _TYPES_PER_CALL):
        batch = names[start:start + _TYPES_PER_CALL]
        try:
            described = ec2.describe_instance_types(InstanceTypes=batch)["InstanceTypes"]
        except ClientError as err:
            if error_code(err) not in {"InvalidInstanceType", "InvalidParameterValue"}:
                raise
            if len(batch) > 1:
                for name in batch:
                    found.update(vcpus_by_type(ec2, [name]))
            continue
        found.update({t["InstanceType"]: int(t.get("VCpuInfo", {}).get("DefaultVCpus", 0)) for t in described})
    return found


def vcpus_in_use(ec2) -> dict[str, int]:
    """vCPUs of this account's pending and running instances in the region, per quota code: On-Demand ones under
    the On-Demand quotas, Spot ones (InstanceLifecycle "spot") under the Spot quotas, whose codes differ, so one
    dict holds both. An instance's CpuOptions say its vCPUs (cores can be turned off); without them, the type's
    default."""
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])
    counted: list[tuple[str, int | None, bool]] = []
    for page in pages:
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                cpu = instance.get("CpuOptions") or {}
                vcpus = cpu["CoreCount"] * cpu.get("ThreadsPerCore", 1) if cpu.get("CoreCount") else None
                counted.append((instance.get("InstanceType", ""), vcpus, instance.get("InstanceLifecycle") == "spot"))
    missing = [t for t, v, _ in counted if v is None and t]
    defaults = vcpus_by_type(ec2, missing) if missing else {}
    in_use: dict[str, int] = {}
    for instance_type, vcpus, spot in counted:
        code = capacity.quota_code(instance_type, spot)
        if code:
            in_use[code] = in_use.get(code, 0) + (vcpus if vcpus is not None else defaults.get(instance_type, 0))
    return in_use


def regions_offering(aws, instance_type: str, regions: list[str]) -> list[str]:
    """Which of `regions` offer the type (describe_instance_type_offerings by region, one concurrent call each);
    a region that cannot be asked (not enabled, no permission, no answer) is left out."""

    def offered(region: str) -> bool:
        ec2 = aws.in_region(region).ec2
        found = ec2.describe_instance_type_offerings(
            LocationType="region", Filters=[{"Name": "instance-type", "Values": [instance_type]}])
        return bool(found.get("InstanceTypeOfferings"))

    answers = look_up_concurrently({region: (lambda r=region: offered(r)) for region in regions}, budget=LOOKUP_BUDGET)
    return [region for region in regions if answers.get(region) is True]
