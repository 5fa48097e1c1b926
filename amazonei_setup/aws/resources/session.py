"""Systems Manager's view of instances (`--access ssm`): whether each one's SSM agent is registered and Online,
which Session Manager (and so ssh's ProxyCommand) needs before a session can start."""
from __future__ import annotations


def ping_status(ssm, instance_ids: list[str]) -> dict[str, str]:
    """PingStatus (Online / ConnectionLost / Inactive) of each instance whose agent has registered; an instance
    whose agent has not registered yet is missing from the answer."""
    found: dict[str, str] = {}
    pages = ssm.get_paginator("describe_instance_information").paginate(
        Filters=[{"Key": "InstanceIds", "Values": list(instance_ids)}])
    for page in pages:
        for info in page.get("InstanceInformationList", []):
            found[info["InstanceId"]] = info.get("PingStatus", "")
    return found
