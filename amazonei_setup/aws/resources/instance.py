"""The EC2 instance with its Elastic Inference accelerator: launch, find, wait, start, stop, terminate."""
from __future__ import annotations

import datetime
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from amazonei_setup.core import tags
from amazonei_setup.core.errors import error_code, error_message

LIVE_STATES = ["pending", "running", "stopping", "stopped"]
# How long EC2 may take to see a brand-new instance profile (IAM is eventually consistent; users
# report up to ~2 minutes, most runs need a few seconds).
IAM_PROPAGATION_TIMEOUT = 90.0


# Spot. A persistent request whose instance stops when interrupted: the EBS volume and the work on it stay,
# and EC2 starts the same instance again when Spot capacity returns; a one-time request (or `terminate`) would lose
# the volume with the instance. RunInstances takes a persistent request only with InstanceInterruptionBehavior
# stop or hibernate (EC2 API reference, SpotMarketOptions), which is this choice; no MaxPrice: AWS advises against
# one (it only adds interruptions) and the price paid is the Spot price, at most the On-Demand price. SkyPilot's
# sky/provision/aws/instance.py launches Spot the same way, through RunInstances' InstanceMarketOptions.
SPOT_MARKET_OPTIONS = {"MarketType": "spot", "SpotOptions": {"SpotInstanceType": "persistent",
                                                             "InstanceInterruptionBehavior": "stop"}}
# StateReason codes of an instance that a Spot interruption stopped / terminated (EC2 API reference, StateReason).
SPOT_INTERRUPTION_CODES = ("Server.SpotInstanceShutdown", "Server.SpotInstanceTermination")
# RunInstances' refusals of a Spot launch that an On-Demand launch may not get (EC2 API reference, "Error codes"):
# no Spot capacity in the zone, the Spot vCPU quota (or request count) reached, a maximum price below the Spot price.
# Also: EC2 may not create its Spot service-linked role (below).
SPOT_REFUSALS = {
    "InsufficientInstanceCapacity": "no Spot capacity",
    "MaxSpotInstanceCountExceeded": "the account's Spot limit",
    "SpotMaxPriceTooLow": "the Spot price is above the maximum price",
    "InsufficientCapacity": "no Spot capacity",
}
# A Spot launch needs EC2's service-linked role AWSServiceRoleForEC2Spot. EC2 creates it at an account's first Spot
# request, but only if the caller may (iam:CreateServiceLinkedRole for spot.amazonaws.com); else RunInstances answers
# this code (EC2 User Guide, "Service-linked role for Spot Instance requests": with the CLI or an API "you must first
# ensure that this role exists"). An On-Demand launch needs no such role. Not a credentials problem, though its code
# starts with AuthFailure.
SPOT_ROLE_NOT_CREATABLE = "AuthFailure.ServiceLinkedRoleCreationNotPermitted"
SPOT_REFUSALS[SPOT_ROLE_NOT_CREATABLE] = "EC2 may not create its Spot service-linked role AWSServiceRoleForEC2Spot"

# Spot request states that still launch (or hold) an instance (EC2 User Guide, "Spot request states").
SPOT_REQUEST_LIVE_STATES = ["open", "active", "disabled"]


def create_spot_role_command(profile: str | None = None) -> str:
    """The one command that lets this account launch Spot from the API (IAM is global: no --region)."""
    return "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com" + (
        f" --profile {shlex.quote(profile)}" if profile else "")


SANDBOX_SSH_PORT_TAG = "amazonei-setup:sandbox-ssh-port"  # written by the sandbox server (sandbox/ssh.py)

@dataclass(frozen=True)
class InstanceInfo:
    id: str
    state: str
    instance_type: str
    public_dns: str
    public_ip: str
    launch_time: str
    subnet_id: str
    key_name: str
    image_id: str
    tags: dict
    state_reason: str = ""  # StateTransitionReason: a stop says when, "User initiated (2026-12-01 20:40:29 GMT)"
    lifecycle: str = ""  # InstanceLifecycle: "spot" for a Spot instance, "" for On-Demand
    state_reason_code: str = ""  # StateReason.Code: Server.SpotInstanceShutdown when a Spot interruption stopped it
    spot_request_id: str = ""  # SpotInstanceRequestId: the request that launched it (and relaunches it if persistent)

    @classmethod
    def from_api(cls, raw: dict) -> InstanceInfo:
        launched = raw.get("LaunchTime")
        return cls(raw["InstanceId"], raw["State"]["Name"], raw.get("InstanceType", ""), raw.get("PublicDnsName") or "",
                   raw.get("PublicIpAddress") or "", launched.isoformat() if launched else "",
                   raw.get("SubnetId", ""), raw.get("KeyName", ""), raw.get("ImageId", ""),
                   tags.as_dict(raw.get("Tags")), raw.get("StateTransitionReason") or "",
                   raw.get("InstanceLifecycle") or "", (raw.get("StateReason") or {}).get("Code") or "",
                   raw.get("SpotInstanceRequestId") or "")

    @property
    def market(self) -> str:
        return "spot" if self.lifecycle == "spot" else "on-demand"

    @property
    def interrupted(self) -> bool:
        """Stopped (or terminated) by a Spot interruption, not by anyone's request (StateReason codes: EC2 API
        reference, StateReason)."""
        return self.state_reason_code in SPOT_INTERRUPTION_CODES

    @property
    def host(self) -> str:
        if self.tags.get(SANDBOX_SSH_PORT_TAG):  # a sandbox instance: its SSH server is on this machine
            return "127.0.0.1"
        return self.public_dns or self.public_ip

    @property
    def ssh_port(self) -> int:
        port = self.tags.get(SANDBOX_SSH_PORT_TAG, "")
        return int(port) if port.isdigit() else 22


def launch_request(*, ami_id: str, instance_type: str, accelerator_type: str | None, subnet_id: str,
                   group_id: str, key_name: str, profile_name: str, root_device: str, volume_size: int,
                   tag_list: list[dict], client_token: str, count: int = 1, min_count: int | None = None,
                   spot: bool = False, public_ip: bool = True) -> dict:
    """One request for `count` identical instances. EC2 launches all of them or none, unless min_count is
    lower: then as many as it has capacity (and quota) for, at least min_count."""
    request = dict(
        ImageId=ami_id, InstanceType=instance_type, MinCount=min_count or count, MaxCount=count, KeyName=key_name,
        ClientToken=client_token,  # botocore's own retries cannot launch a second instance
        IamInstanceProfile={"Name": profile_name},
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet_id, "Groups": [group_id],
                            "AssociatePublicIpAddress": public_ip, "DeleteOnTermination": True}],
        # IMDSv2 only; hop limit 2 so the EI examples' containers can still reach the metadata service.
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 2},
        BlockDeviceMappings=[{"DeviceName": root_device, "Ebs": {
            "VolumeSize": volume_size, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True}}],
        TagSpecifications=tags.tag_specs(["instance", "volume", "network-interface"], tag_list),
    )
    if accelerator_type:
        request["ElasticInferenceAccelerators"] = [{"Type": accelerator_type, "Count": 1}]
    if spot:
        request["InstanceMarketOptions"] = SPOT_MARKET_OPTIONS
        # The request carries the run's tags from the start (RunInstances tags a spot-instances-request too): a
        # request whose reply was lost is still found by them, and cancelled, or it would launch the instance again.
        request["TagSpecifications"] = tags.tag_specs(["instance", "volume", "network-interface",
                                                       "spot-instances-request"], tag_list)
    return request


def zone_client_token(run_token: str, attempt: int) -> str:
    """The ClientToken of a run's launch in its attempt-th zone (0: the planned one). EC2 answers a token it has
    seen with what that request did, so botocore's retries of one launch (a lost reply) keep its token and cannot
    launch twice; a launch moved to another zone is another request (another subnet) and needs its own token: a
    seen token with other parameters is refused (IdempotentParameterMismatch). At most 64 characters."""
    return run_token if attempt == 0 else f"{run_token}-{attempt}"


def is_iam_propagation_error(err: ClientError) -> bool:
    message = error_message(err)
    return error_code(err) == "InvalidParameterValue" and "iamInstanceProfile" in message


def run_instances(ec2, request: dict, *, sleep: Callable = time.sleep,
                 on_retry: Callable[[float], None] | None = None,
                 timeout: float = IAM_PROPAGATION_TIMEOUT) -> list[InstanceInfo]:
    """run_instances, retrying while EC2 cannot yet see the new instance profile; every instance launched.

    `timeout` bounds the time spent: wall-clock time, or the seconds handed to `sleep` when that
    is more (an injected sleep that does not really wait must not turn this into a busy loop).
    """
    started = time.monotonic()
    slept = 0.0
    delay = 1.0
    while True:
        try:
            return [InstanceInfo.from_api(i) for i in ec2.run_instances(**request)["Instances"]]
        except ClientError as err:
            elapsed = max(time.monotonic() - started, slept)
            if not is_iam_propagation_error(err) or elapsed + delay > timeout:
                raise
        if on_retry:
            on_retry(delay)
        sleep(delay)
        slept += delay
        delay = min(delay * 2, 10.0)


def find_instances(ec2, name: str | None, states: list[str] = LIVE_STATES) -> list[InstanceInfo]:
    filters = tags.filters_for(name) + [{"Name": "instance-state-name", "Values": states}]
    pages = ec2.get_paginator("describe_instances").paginate(Filters=filters)
    return [InstanceInfo.from_api(i) for page in pages for r in page["Reservations"] for i in r["Instances"]]


def describe(ec2, instance_id: str) -> InstanceInfo:
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return InstanceInfo.from_api(reservations[0]["Instances"][0])


def describe_many(ec2, instance_ids: list[str]) -> list[InstanceInfo]:
    """Several instances in one call, in the order asked."""
    reservations = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
    found = {i["InstanceId"]: InstanceInfo.from_api(i) for r in reservations for i in r["Instances"]}
    return [found[i] for i in instance_ids if i in found]


def start(ec2, instance_ids: list[str]) -> None:
    ec2.start_instances(InstanceIds=instance_ids)


def stop(ec2, instance_ids: list[str]) -> None:
    """Stop (not hibernate): the EBS volumes stay, the public address goes."""
    ec2.stop_instances(InstanceIds=instance_ids)


def volumes_of(ec2, instance_ids: list[str]) -> list[dict]:
    """The EBS volumes attached to these instances (what a stopped instance still pays for): id, size GiB, type."""
    pages = ec2.get_paginator("describe_volumes").paginate(
        Filters=[{"Name": "attachment.instance-id", "Values": instance_ids}])
    return [{"id": v["VolumeId"], "size_gib": v["Size"], "type": v.get("VolumeType", "")}
            for page in pages for v in page["Volumes"]]


def terminate(ec2, instance_ids: list[str]) -> None:
    try:
        ec2.terminate_instances(InstanceIds=instance_ids)
    except ClientError as err:
        if error_code(err) != "InvalidInstanceID.NotFound":
            raise


def find_spot_requests(ec2, filters: list[dict]) -> list[dict]:
    """The Spot requests (open, active or disabled: those that still launch an instance) matching `filters`."""
    found = ec2.describe_spot_instance_requests(
        Filters=[*filters, {"Name": "state", "Values": SPOT_REQUEST_LIVE_STATES}])["SpotInstanceRequests"]
    return [r for r in found if r.get("State") in SPOT_REQUEST_LIVE_STATES]


def spot_request_live(ec2, request_id: str) -> bool:
    try:
        found = ec2.describe_spot_instance_requests(SpotInstanceRequestIds=[request_id])["SpotInstanceRequests"]
    except ClientError as err:
        if error_code(err) == "InvalidSpotInstanceRequestID.NotFound":
            return False
        raise
    return any(r.get("State") in SPOT_REQUEST_LIVE_STATES for r in found)


def cancel_spot_requests(ec2, request_ids: list[str]) -> list[str]:
    """Cancel before terminating: terminating the instance of a persistent request that is still open makes EC2
    launch another (EC2 User Guide, "Cancel a Spot Instance request"); cancelling leaves the instance running.
    Returns the requests still live when read back: the reply is not taken for it."""
    try:
        ec2.cancel_spot_instance_requests(SpotInstanceRequestIds=request_ids)
    except ClientError as err:
        if error_code(err) != "InvalidSpotInstanceRequestID.NotFound":
            raise
    return [r for r in request_ids if spot_request_live(ec2, r)]


def spot_prices(ec2, instance_types: list[str]) -> dict[str, dict[str, float]]:
    """instance type -> AZ -> the latest Linux Spot price (USD/hour) there. A StartTime and EndTime of now: AWS
    then returns "the last price change before the start time, which is the effective price as of the start time"
    (EC2 API reference, DescribeSpotPriceHistory), one per zone; the newest per zone wins whatever order comes."""
    found: dict[str, dict[str, float]] = {}
    now = datetime.datetime.now(datetime.UTC)
    pages = ec2.get_paginator("describe_spot_price_history").paginate(
        InstanceTypes=sorted(set(instance_types)), ProductDescriptions=["Linux/UNIX", "Linux/UNIX (Amazon VPC)"],
        StartTime=now, EndTime=now)
    latest: dict[tuple[str, str], tuple] = {}
    for page in pages:
        for entry in page.get("SpotPriceHistory", []):
            key = (entry["InstanceType"], entry["AvailabilityZone"])
            stamp = entry.get("Timestamp")
            if key not in latest or (stamp and latest[key][0] and stamp > latest[key][0]):
                latest[key] = (stamp, float(entry["SpotPrice"]))
    for (instance_type, az), (_, price) in latest.items():
        found.setdefault(instance_type, {})[az] = price
    return found
