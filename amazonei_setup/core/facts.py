"""What discovery learned about the account and region, as plain data for the decision layer.

The wizard, the plan and the CloudFormation builder decide from these without calling AWS, so this module imports
no AWS SDK (discover.py fills them and re-exports them). Endpoint and instance records are typed by name only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from amazonei_setup.core import catalog

if TYPE_CHECKING:
    from amazonei_setup.aws.resources.instance import InstanceInfo
    from amazonei_setup.aws.resources.network import Endpoint
    from amazonei_setup.core.capacity import CapacityFacts


@dataclass(frozen=True)
class Image:
    id: str
    name: str
    created: str
    architecture: str
    root_device: str
    snapshot_gib: int | None
    owner_alias: str

    @property
    def os_key(self) -> str | None:
        """The EI-capable DLAMI line this image belongs to, if any."""
        for os_ in catalog.OPERATING_SYSTEMS.values():
            if fnmatchcase(self.name, os_.ami_name_pattern):
                return os_.key
        return None

    @classmethod
    def from_api(cls, raw: dict) -> Image:
        root = raw.get("RootDeviceName", "/dev/xvda")
        size = next((m["Ebs"].get("VolumeSize") for m in raw.get("BlockDeviceMappings", [])
                     if m.get("DeviceName") == root and "Ebs" in m), None)
        return cls(raw["ImageId"], raw.get("Name", ""), raw.get("CreationDate", ""), raw.get("Architecture", ""),
                   root, size, raw.get("ImageOwnerAlias", ""))


@dataclass(frozen=True)
class Vpc:
    id: str
    cidr: str
    is_default: bool
    name: str


@dataclass(frozen=True)
class Subnet:
    id: str
    vpc_id: str
    az: str
    cidr: str
    public_ip_on_launch: bool
    free_ips: int
    name: str


@dataclass(frozen=True)
class InstanceType:
    name: str
    architectures: tuple[str, ...]
    vcpus: int
    memory_mib: int


@dataclass
class Facts:
    region: str
    account_id: str
    caller_arn: str
    ei_azs: tuple[str, ...]
    images: dict[str, list[Image]]  # os key -> newest first
    requested_image: Image | None
    vpcs: list[Vpc]
    subnets: list[Subnet]
    key_pairs: list[str]
    instance_type: InstanceType | None  # None when no --instance-type was given (a family picks its own)
    endpoints: list[Endpoint]
    our_instances: list[InstanceInfo]
    our_security_groups: list[dict]
    public_ip: str | None = None
    warnings: list[str] = field(default_factory=list)
    key_pair_deployments: dict[str, str] = field(default_factory=dict)  # key made by this tool -> its deployment
    family_images: dict[str, Image | None] = field(default_factory=dict)  # family key -> its Deep Learning AMI
    # family key -> where that image came from: the SSM parameter that named it, or "name pattern: ..."
    family_image_sources: dict[str, str] = field(default_factory=dict)
    offerings: dict[str, tuple[str, ...]] = field(default_factory=dict)  # instance type -> AZs that offer it
    named_role: dict | None = None  # the IAM role of the --name given, if it exists (IAM is global: any region's)
    idle_alarms: list = field(default_factory=list)  # the --name's idle auto-stop alarms (resources/alarm.IdleAlarm)
    # subnet id -> where its default route goes: "internet", "nat" or "none" (network.subnet_ways_out); empty:
    # unknown (the look-up was refused), and every subnet is taken as public
    subnet_ways_out: dict[str, str] = field(default_factory=dict)
    ssm_endpoints: list[Endpoint] = field(default_factory=list)  # --access ssm: the ssm/ssmmessages/ec2messages ones
    capacity: CapacityFacts | None = None  # quotas, vCPUs in use and per type, for the quota preflight
    spot_prices: dict[str, dict[str, float]] = field(default_factory=dict)  # --spot: type -> AZ -> latest USD/hour

    @property
    def owner(self) -> str:
        return owner_of(self.caller_arn)


def owner_of(caller_arn: str) -> str:
    """A stable name for the caller: an assumed role's session name changes every login."""
    if ":assumed-role/" in caller_arn:
        return caller_arn.rsplit("/", 1)[0]
    return caller_arn
