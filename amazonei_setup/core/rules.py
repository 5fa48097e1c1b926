"""The rules a value must follow before anything uses it: deployment name, SSH range, volume size, instance type
and region syntax, and the closest known spelling of a mistyped word.

One place, at the bottom of the import graph: pure functions, no AWS SDK, no I/O. Each rule returns the value in
its canonical form or raises `RuleError` whose text is the one sentence to show; the command line (argparse
types), the wizard's prompts, discovery and the CloudFormation builder all call these, so a flag and a prompt can
never disagree about what is valid.
"""
from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
NAME_RULE = "1-32 lowercase letters, digits and '-', starting with a letter or digit"
MIN_VOLUME_GIB, MAX_VOLUME_GIB = 8, 16384
# family[generation][attributes].size, e.g. m5.xlarge, c7gn.16xlarge, u-6tb1.metal, mac2-m2pro.metal
INSTANCE_TYPE_RE = re.compile(r"[a-z0-9][a-z0-9-]*\.[a-z0-9][a-z0-9-]*")
# us-west-2, eu-central-1, us-gov-west-1, cn-north-1, us-isob-east-1, eusc-de-east-1
REGION_RE = re.compile(r"[a-z]{2,4}(-[a-z]+)+-\d{1,2}")


class RuleError(ValueError):
    """A value breaks a rule; str() is the sentence to show (the caller adds which flag or prompt)."""


def closest(word: str, known: Iterable[str], n: int = 3, cutoff: float = 0.75) -> list[str]:
    """The known words `word` is most likely a typo of, best first (difflib's ratio; empty when none is close).
    Case-insensitive: the known spelling is returned."""
    by_lower = {k.lower(): k for k in known}
    return [by_lower[m] for m in difflib.get_close_matches(word.lower(), list(by_lower), n=n, cutoff=cutoff)]


def did_you_mean(matches: list[str], quote: str = "") -> str:
    """'; did you mean X?' / '; did you mean X or Y?' / '' for no match: the tail of a sentence."""
    if not matches:
        return ""
    shown = [f"{quote}{m}{quote}" for m in matches]
    listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
    return f"; did you mean {listed}?"


def name(value: str) -> str:
    """A deployment name: it becomes part of IAM, EC2 and CloudFormation names and tags."""
    if not NAME_RE.fullmatch(value):  # not match(): `$` would let a trailing newline through
        raise RuleError(f"'{value}' is not a valid deployment name: {NAME_RULE}")
    return value


def cidr(value: str) -> str:
    """Who may SSH in, as a canonical range: a bare address is that one host (/32, or /128 for IPv6)."""
    text = value.strip()
    try:
        if "/" not in text:
            address = ipaddress.ip_address(text)
            return f"{address}/{address.max_prefixlen}"
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise RuleError(f"'{value}' is not an IP address or range like 203.0.113.7 or 203.0.113.0/24") from None


def opens_to_world(value: str) -> bool:
    return ipaddress.ip_network(value, strict=False).prefixlen == 0


def volume_size(value: str | int) -> int:
    """Root volume GiB: EBS gp3 takes 1-16384; below 8 no Deep Learning AMI boots."""
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise RuleError(f"'{value}' is not a whole number of GiB") from None
    if not MIN_VOLUME_GIB <= size <= MAX_VOLUME_GIB:
        raise RuleError(f"{size} GiB is outside {MIN_VOLUME_GIB}-{MAX_VOLUME_GIB}")
    return size


def instance_type(value: str, known: Iterable[str] = ()) -> str:
    """An EC2 instance type, lower case (EC2's spelling; `M5.XLARGE` is m5.xlarge). Whether EC2 offers it is
    for EC2 to say; this only refuses what cannot be a type, suggesting the nearest of `known`."""
    text = value.strip().lower()
    if not INSTANCE_TYPE_RE.fullmatch(text):
        raise RuleError(f"'{value}' is not an instance type (family.size, like m5.xlarge)"
                        f"{did_you_mean(closest(text, known))}")
    return text


def region(value: str) -> str:
    """The shape of a region name (us-west-2); whether AWS has it is regions.py's question (botocore's data)."""
    text = value.strip().lower()
    if not REGION_RE.fullmatch(text):
        raise RuleError(f"'{value}' is not an AWS region name like us-west-2")
    return text


# Idle auto-stop: EC2's basic monitoring gives one datapoint per 5 minutes (see resources/alarm.py), so the idle
# time is whole 5-minute periods; at least two (one quiet datapoint is not "idle"), at most a day.
IDLE_STEP_MINUTES, MIN_IDLE_MINUTES, MAX_IDLE_MINUTES = 5, 10, 1440


def idle_minutes(value: str | int) -> int:
    """Minutes of idleness before the instance is stopped: a whole multiple of 5, 10-1440."""
    try:
        minutes = int(str(value).strip())
    except ValueError:
        raise RuleError(f"'{value}' is not a whole number of minutes (e.g. 60)") from None
    if not MIN_IDLE_MINUTES <= minutes <= MAX_IDLE_MINUTES:
        raise RuleError(f"{minutes} minutes is outside {MIN_IDLE_MINUTES}-{MAX_IDLE_MINUTES} (10 minutes to a day)")
    if minutes % IDLE_STEP_MINUTES:
        up = minutes + IDLE_STEP_MINUTES - minutes % IDLE_STEP_MINUTES
        raise RuleError(f"{minutes} minutes is not a multiple of 5 (CloudWatch sees an instance's basic metrics every "
                        f"5 minutes): use {up}")
    return minutes
