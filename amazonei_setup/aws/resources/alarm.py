"""Idle auto-stop: one CloudWatch alarm per instance whose action is EC2's built-in stop
(`arn:aws:automate:<region>:ec2:stop`). Nothing runs on the instance: the alarm watches the metrics EC2 itself
publishes for it.

How "idle" is decided (the README says the same for users):
  * CPU alone is the wrong signal for an accelerator box. With Elastic Inference the model runs on the
    accelerator across the network (PrivateLink), and on inf2/GPU hosts the work is on the device; the host CPU can
    sit near 0% while requests stream in and out. Network bytes are what every busy box of this kind shows.
  * So a period counts as idle only when BOTH the CPU is low (max CPUUtilization < IDLE_CPU_PERCENT) AND the
    network is quiet (NetworkIn + NetworkOut < IDLE_NETWORK_BYTES per period). One metric-math expression says 1
    for an idle period, 0 for a busy one; the alarm fires when every period of the last MINUTES was idle.
  * Periods are 5 minutes: EC2's basic monitoring (free, on by default) publishes one datapoint per 5 minutes.
    The tool does not turn on detailed monitoring (1-minute data, billed per metric), so MINUTES is a multiple of 5.
  * TreatMissingData is notBreaching: a stopped instance publishes nothing, and missing data must not count as
    idle. After the alarm has stopped the instance it returns to OK; a later `start` then needs MINUTES of fresh
    idleness before the next stop (with `ignore` it would stay in ALARM, and an alarm acts only on a transition:
    a restarted, forgotten instance would never be stopped again).
Limits, said in the README: a quiet SSH session or an idle Jupyter tab counts as idle (no agent sees them), and a
job that runs for hours on the accelerator without network traffic would look idle.

Pure data and small calls; nothing here prints.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from amazonei_setup.core import tags

PERIOD_S = 300  # EC2 basic monitoring: one datapoint per 5 minutes
IDLE_CPU_PERCENT = 5
IDLE_NETWORK_BYTES = 2_000_000  # in + out per 5-minute period: ~6.7 kB/s, far below any inference traffic
NAMESPACE = "AWS/EC2"
IDLE_EXPRESSION = f"IF(cpu < {IDLE_CPU_PERCENT} AND (netin + netout) < {IDLE_NETWORK_BYTES}, 1, 0)"
KIND = "idle-alarm"
# CloudWatch bills standard-resolution alarms per alarm metric ($0.10/month); counted per metric this one reads (three),
# the most it costs (the README says what is and is not confirmed about that rule).
METRICS_BILLED = 3
USD_PER_ALARM_METRIC_MONTH = 0.10


def stop_action(region: str) -> str:
    """EC2's own stop action: no SNS topic, no Lambda, no role of ours."""
    return f"arn:aws:automate:{region}:ec2:stop"


def alarm_prefix(deployment: str) -> str:
    """Every idle alarm of a deployment starts with this (tags.resource_name: the one naming rule)."""
    return f"{tags.resource_name(deployment)}-idle-"


def alarm_name(deployment: str, instance_id: str) -> str:
    return f"{alarm_prefix(deployment)}{instance_id}"


_ALARM_NAME_RE = re.compile(r"^(?P<prefix>.+)-idle-(?P<instance>i-[0-9a-f]+)$")


def instance_of(name: str, deployment: str | None = None) -> str | None:
    """The instance id an idle alarm name carries (None when the name is no idle alarm of `deployment`): the
    exact shape, so deployment `demo`'s prefix never picks up deployment `demo-idle`'s alarms."""
    found = _ALARM_NAME_RE.match(name)
    if not found or (deployment is not None and found["prefix"] != tags.resource_name(deployment)):
        return None
    return found["instance"]


def description(minutes: int) -> str:
    return (f"amazonei-setup idle auto-stop: stops the instance after {minutes} minutes with CPU below "
            f"{IDLE_CPU_PERCENT}% and network below {IDLE_NETWORK_BYTES // 1_000_000} MB per 5 minutes")


def metrics(instance_id) -> list[dict]:
    """The metric-math definition (instance_id may be a CloudFormation Ref)."""
    dimensions = [{"Name": "InstanceId", "Value": instance_id}]

    def stat(query_id: str, metric: str, statistic: str) -> dict:
        return {"Id": query_id, "ReturnData": False,
                "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": dimensions},
                               "Period": PERIOD_S, "Stat": statistic}}

    return [stat("cpu", "CPUUtilization", "Maximum"), stat("netin", "NetworkIn", "Sum"),
            stat("netout", "NetworkOut", "Sum"),
            {"Id": "idle", "Expression": IDLE_EXPRESSION, "Label": "1 when the instance was idle", "ReturnData": True}]


def periods(minutes: int) -> int:
    return minutes * 60 // PERIOD_S


def definition(deployment: str, instance_id, region: str, minutes: int) -> dict:
    """PutMetricAlarm's parameters (and, with the same keys, AWS::CloudWatch::Alarm's properties) but Tags."""
    return {
        "AlarmName": alarm_name(deployment, instance_id) if isinstance(instance_id, str) else None,
        "AlarmDescription": description(minutes),
        "ActionsEnabled": True,
        "AlarmActions": [stop_action(region)],
        "Metrics": metrics(instance_id),
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1,
        "EvaluationPeriods": periods(minutes),
        "DatapointsToAlarm": periods(minutes),  # every period idle, not most of them
        "TreatMissingData": "notBreaching",  # stopped = no data = not idle (see the module's docstring)
    }


def idle_day_usd(hourly_usd: float | None) -> float | None:
    """What a day of forgetting costs: the instance's $/hour x 24 (what the alarm saves)."""
    return round(hourly_usd * 24, 2) if hourly_usd else None


@dataclass(frozen=True)
class IdleAlarm:
    """One idle alarm of a deployment, as CloudWatch holds it."""

    name: str
    instance_id: str
    minutes: int | None  # None: not our definition (someone edited it)
    state: str = ""
    arn: str = ""
    deployment: str = ""
    tags: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        return {"name": self.name, "instance_id": self.instance_id, "minutes": self.minutes, "state": self.state}


def _minutes_of(alarm: dict) -> int | None:
    stats = [m["MetricStat"] for m in alarm.get("Metrics", []) if m.get("MetricStat")]
    period = stats[0].get("Period") if stats else alarm.get("Period")
    if not period or not alarm.get("EvaluationPeriods"):
        return None
    return alarm["EvaluationPeriods"] * period // 60


def _all_with_prefix(cloudwatch, prefix: str) -> list[dict]:
    pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm"])
    return [a for page in pages for a in page.get("MetricAlarms", [])]


def _tags_of(cloudwatch, arn: str) -> dict[str, str] | None:
    """None when the alarm is gone by now (deleted between the describe and this call)."""
    from amazonei_setup.core.errors import error_code

    try:
        return tags.as_dict(cloudwatch.list_tags_for_resource(ResourceARN=arn).get("Tags"))
    except Exception as err:  # ClientError; botocore is not imported at module load (see cloudformation.py)
        if error_code(err) == "ResourceNotFound":
            return None
        raise


def find_alarms(cloudwatch, deployment: str) -> list[IdleAlarm]:
    """The deployment's idle alarms: the name says which instance, the tags prove they are ours and its.
    (DescribeAlarms returns no tags: one ListTagsForResource per alarm, a handful per deployment.)"""
    found = []
    for alarm in _all_with_prefix(cloudwatch, alarm_prefix(deployment)):
        instance_id = instance_of(alarm["AlarmName"], deployment)
        if instance_id is None:
            continue
        alarm_tags = _tags_of(cloudwatch, alarm["AlarmArn"])
        if alarm_tags is None or not tags.is_ours([{"Key": k, "Value": v} for k, v in alarm_tags.items()],
                                                  deployment):
            continue
        found.append(IdleAlarm(alarm["AlarmName"], instance_id, _minutes_of(alarm), alarm.get("StateValue", ""),
                               alarm["AlarmArn"], deployment, alarm_tags))
    return found


def find_all_alarms(cloudwatch) -> list[IdleAlarm]:
    """Every idle alarm of every deployment in the region (for `list`): names of our shape, tags of ours."""
    found = []
    for alarm in _all_with_prefix(cloudwatch, "amazonei-"):
        instance_id = instance_of(alarm["AlarmName"])
        if instance_id is None:
            continue
        alarm_tags = _tags_of(cloudwatch, alarm["AlarmArn"])
        if alarm_tags is None or alarm_tags.get(tags.CREATED_BY) != tags.TOOL:
            continue
        deployment = alarm_tags.get(tags.DEPLOYMENT, "")
        if instance_of(alarm["AlarmName"], deployment) is None:
            continue
        found.append(IdleAlarm(alarm["AlarmName"], instance_id, _minutes_of(alarm), alarm.get("StateValue", ""),
                               alarm["AlarmArn"], deployment, alarm_tags))
    return found


def put_alarm(cloudwatch, deployment: str, instance_id: str, region: str, minutes: int,
              tag_list: list[dict]) -> str:
    """Create or overwrite (PutMetricAlarm replaces the whole definition; on an update CloudWatch ignores Tags,
    so an alarm keeps the tags it was created with)."""
    params = definition(deployment, instance_id, region, minutes)
    cloudwatch.put_metric_alarm(**params, Tags=tag_list)
    return params["AlarmName"]


def delete_alarms(cloudwatch, names: list[str]) -> None:
    """DeleteAlarms takes up to 100 names and accepts names that are gone: safe to re-run."""
    for start in range(0, len(names), 100):
        cloudwatch.delete_alarms(AlarmNames=names[start:start + 100])


def still_there(cloudwatch, names: list[str]) -> list[str]:
    """Which of `names` CloudWatch still lists: the check before anything is called removed."""
    left = []
    for start in range(0, len(names), 100):
        found = cloudwatch.describe_alarms(AlarmNames=names[start:start + 100], AlarmTypes=["MetricAlarm"])
        left += [a["AlarmName"] for a in found.get("MetricAlarms", [])]
    return left
