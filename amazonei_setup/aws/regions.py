"""Which AWS regions exist, from botocore's bundled partition data (endpoints.json): offline, no boto3.

Separate from rules.py because reading that data imports botocore (~0.2 s; parsing endpoints.json would be ~0.3 s
more, so it comes from botocore_data's cache): the CLI asks only after parsing (so `--help` and usage errors stay
instant) and before its first AWS call.
"""
from __future__ import annotations

import functools

from amazonei_setup.core.rules import RuleError, closest, did_you_mean


@functools.cache
def known() -> frozenset[str]:
    """Every region of every partition botocore knows (aws, aws-cn, aws-us-gov, ...); EC2 runs in each."""
    from amazonei_setup.aws import botocore_data

    data = botocore_data.shared().load_data("endpoints")  # ~0.3 s to parse, ~10 ms from the cache; read once
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
