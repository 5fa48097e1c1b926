"""Static facts the tool needs and AWS no longer serves: accelerator specs and prices, the
Deep Learning AMIs that carry EI environments, and the regions EI ran in.

One place, dated. Prices are us-west-2 on-demand Linux, USD per hour, as of CATALOG_DATE.
"""
from __future__ import annotations

from dataclasses import dataclass

CATALOG_DATE = "2026-11-24"

# botocore no longer ships an `elastic-inference` client; the PrivateLink service name is the
# only EI-specific handle left, and describe_vpc_endpoint_services tells which AZs offer it.
EI_SERVICE_NAME = "com.amazonaws.{region}.elastic-inference.runtime"

# Regions where EI ran (AWS EC2 User Guide, "Amazon Elastic Inference", 2019-2023).
EI_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-northeast-2")
# eia2 was never offered in Tokyo (same source).
EIA2_UNAVAILABLE_REGIONS = frozenset({"ap-northeast-1"})


@dataclass(frozen=True)
class Accelerator:
    type: str
    memory_gib: int
    fp32_tflops: int
    fp16_tflops: int
    hourly_usd: float
    price_verified: bool = True

    @property
    def generation(self) -> str:
        return self.type.split(".")[0]


# Specs: EC2 User Guide / SageMaker "How EI works" tables (eia2 doubles memory at equal TFLOPS).
# Prices: eia1 from AWS's 2019 EI pricing page as used in its published comparisons; eia2 are the
# figures the team believed (issue 7 verifies them against a source).
ACCELERATORS: dict[str, Accelerator] = {
    a.type: a
    for a in (
        Accelerator("eia2.medium", 2, 1, 8, 0.12, price_verified=False),
        Accelerator("eia2.large", 4, 2, 16, 0.24, price_verified=False),
        Accelerator("eia2.xlarge", 8, 4, 32, 0.34, price_verified=False),
        Accelerator("eia1.medium", 1, 1, 8, 0.13),
        Accelerator("eia1.large", 2, 2, 16, 0.26),
        Accelerator("eia1.xlarge", 4, 4, 32, 0.52),
    )
}
DEFAULT_ACCELERATOR = "eia2.medium"


def accelerators_for_region(region: str) -> list[Accelerator]:
    if region in EIA2_UNAVAILABLE_REGIONS:
        return [a for a in ACCELERATORS.values() if a.generation != "eia2"]
    return list(ACCELERATORS.values())


@dataclass(frozen=True)
class OperatingSystem:
    key: str
    label: str
    # Exact DLAMI name pattern. "(Amazon Linux) Version *" cannot match "(Amazon Linux 2)", and
    # "(Ubuntu 16.04)" cannot match 18.04: only these two DLAMI lines carry the amazonei_* conda
    # environments (AWS DLAMI docs); the original script's "(Ubuntu*" drifted onto 18.04.
    ami_name_pattern: str
    ssh_user: str


OPERATING_SYSTEMS: dict[str, OperatingSystem] = {
    o.key: o
    for o in (
        OperatingSystem("amazon-linux", "Amazon Linux", "Deep Learning AMI (Amazon Linux) Version *", "ec2-user"),
        OperatingSystem("ubuntu-16.04", "Ubuntu 16.04", "Deep Learning AMI (Ubuntu 16.04) Version *", "ubuntu"),
    )
}
DEFAULT_OS = "amazon-linux"
DLAMI_OWNER = "amazon"

# On-demand Linux, us-west-2, USD/hour (AWS EC2 on-demand pricing page; the m5/c5/p2/p3 figures
# reproduce AWS's 2019 EI cost comparisons). Used for the summary's cost line.
INSTANCE_HOURLY_USD: dict[str, float] = {
    "t3.medium": 0.0416, "t3.large": 0.0832, "t3.xlarge": 0.1664, "t3.2xlarge": 0.3328,
    "m5.large": 0.096, "m5.xlarge": 0.192, "m5.2xlarge": 0.384, "m5.4xlarge": 0.768,
    "c5.large": 0.085, "c5.xlarge": 0.17, "c5.2xlarge": 0.34, "c5.4xlarge": 0.68,
    "r5.large": 0.126, "r5.xlarge": 0.252, "r5.2xlarge": 0.504,
    "p2.xlarge": 0.90, "p3.2xlarge": 3.06,
}


def hourly_usd(instance_type: str, accelerator_type: str | None) -> float | None:
    """Instance plus accelerator price per hour, or None when the instance price is unknown."""
    instance = INSTANCE_HOURLY_USD.get(instance_type)
    if instance is None:
        return None
    accelerator = ACCELERATORS[accelerator_type].hourly_usd if accelerator_type else 0.0
    return round(instance + accelerator, 4)
