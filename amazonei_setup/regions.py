"""Which AWS regions exist, from botocore's bundled partition data (endpoints.json): offline, no boto3.

Separate from rules.py because reading that data costs ~0.2 s: the CLI asks only after parsing (so `--help` and
usage errors stay instant) and before its first AWS call.
"""
from __future__ import annotations

import functools

from amazonei_setup.rules import RuleError, closest, did_you_mean


@functools.cache
def known() -> frozenset[str]:
    """Every region of every partition botocore knows (aws, aws-cn, aws-us-gov, ...); EC2 runs in each."""
    import botocore
    import botocore.loaders

    data = botocore.loaders.create_loader().load_data("endpoints")
    return frozenset(r for partition in data["partitions"] for r in partition.get("regions", {}))


def check(region: str) -> str:
    """`region` when AWS has it; RuleError naming the nearest real regions otherwise."""
    regions = known()
    if region in regions:
        return region
    matches = closest(region, regions)
    if matches:
        raise RuleError(f"'{region}' is not an AWS region{did_you_mean(matches)}")
    import botocore

    raise RuleError(f"'{region}' is not an AWS region (pass one such as us-west-2 or eu-central-1; a region newer "
                    f"than this botocore {botocore.__version__} needs a newer boto3)")
