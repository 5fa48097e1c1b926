"""The EC2 instance with its Elastic Inference accelerator: launch, find, wait, start, stop, terminate."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from amazonei_setup import tags
from amazonei_setup.errors import error_code, error_message

LIVE_STATES = ["pending", "running", "stopping", "stopped"]
# How long EC2 may take to see a brand-new instance profile (IAM is eventually consistent; users
# report up to ~2 minutes, most runs need a few seconds).
IAM_PROPAGATION_TIMEOUT = 90.0


SANDBOX_SSH_PORT_TAG = "amazonei-setup:sandbox-ssh-port"  # written by the sandbox server (sandbox_ssh.py)

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

    @classmethod
    def from_api(cls, raw: dict) -> InstanceInfo:
        launched = raw.get("LaunchTime")
        return cls(raw["InstanceId"], raw["State"]["Name"], raw.get("InstanceType", ""), raw.get("PublicDnsName") or "",
                   raw.get("PublicIpAddress") or "", launched.isoformat() if launched else "",
                   raw.get("SubnetId", ""), raw.get("KeyName", ""), raw.get("ImageId", ""),
                   tags.as_dict(raw.get("Tags")), raw.get("StateTransitionReason") or "")

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
                   tag_list: list[dict], client_token: str, count: int = 1, min_count: int | None = None) -> dict:
    """One request for `count` identical instances. EC2 launches all of them or none, unless min_count is
    lower: then as many as it has capacity (and quota) for, at least min_count."""
    request = dict(
        ImageId=ami_id, InstanceType=instance_type, MinCount=min_count or count, MaxCount=count, KeyName=key_name,
        ClientToken=client_token,  # botocore's own retries cannot launch a second instance
        IamInstanceProfile={"Name": profile_name},
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet_id, "Groups": [group_id],
                            "AssociatePublicIpAddress": True, "DeleteOnTermination": True}],
        # IMDSv2 only; hop limit 2 so the EI examples' containers can still reach the metadata service.
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 2},
        BlockDeviceMappings=[{"DeviceName": root_device, "Ebs": {
            "VolumeSize": volume_size, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True}}],
        TagSpecifications=tags.tag_specs(["instance", "volume", "network-interface"], tag_list),
    )
    if accelerator_type:
        request["ElasticInferenceAccelerators"] = [{"Type": accelerator_type, "Count": 1}]
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
