"""Idle auto-stop (issue 16): `setup --idle-stop MINUTES` makes one tagged CloudWatch alarm per instance whose action
is EC2's own stop; it is part of the deployment everywhere (plan, re-run, rollback, teardown, list, export), and
`idle-stop --name N MINUTES|off` changes it later.

Asserted on what the user sees (exit code, stdout/stderr, JSON) and on the alarms in the moto account.
"""
from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from amazonei_setup import tags
from tests.conftest import ACCOUNT, REGION, record, setup_args

STOP = f"arn:aws:automate:{REGION}:ec2:stop"


def cloudwatch(account):
    return account.client("cloudwatch")


def alarms(account) -> dict[str, dict]:
    found = cloudwatch(account).describe_alarms()["MetricAlarms"]
    return {a["AlarmName"]: a for a in found}


def alarm_tags(account, alarm: dict) -> dict[str, str]:
    return tags.as_dict(cloudwatch(account).list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"])


def setup(cli, name: str, *extra: str):
    return cli(*setup_args(name, *extra), "--output", "json")


def instance_ids(result: dict) -> list[str]:
    return [i["instance_id"] for i in result.get("instances", [])] or [result["instance_id"]]


def said(run) -> str:
    return " ".join(run.stderr.split())


# ---- setup --idle-stop --------------------------------------------------------------------------------

def test_setup_idle_stop_creates_one_tagged_stop_alarm_per_instance(cli, account):
    run = setup(cli, "idle", "--idle-stop", "60", "--count", "2")
    assert run.code == 0, run.stderr
    result = run.json["result"]
    ids = instance_ids(result)
    assert len(ids) == 2
    found = alarms(account)
    assert set(found) == {f"amazonei-setup-idle-idle-{i}" for i in ids}
    for instance_id in ids:
        alarm = found[f"amazonei-setup-idle-idle-{instance_id}"]
        assert alarm["AlarmActions"] == [STOP]
        assert alarm["EvaluationPeriods"] == 12 and alarm["DatapointsToAlarm"] == 12  # 60 min of 5-min periods
        assert alarm["TreatMissingData"] == "notBreaching"  # a stopped instance has no data: not "idle"
        metrics = {m["Id"]: m for m in alarm["Metrics"]}
        watched = {m["MetricStat"]["Metric"]["MetricName"]: m["MetricStat"] for m in metrics.values()
                   if "MetricStat" in m}
        assert set(watched) == {"CPUUtilization", "NetworkIn", "NetworkOut"}
        for stat in watched.values():
            assert stat["Period"] == 300
            assert stat["Metric"]["Dimensions"] == [{"Name": "InstanceId", "Value": instance_id}]
        expression = metrics["idle"]["Expression"]
        assert "cpu <" in expression and "netin + netout" in expression and metrics["idle"]["ReturnData"]
        owned = alarm_tags(account, alarm)
        assert owned[tags.DEPLOYMENT] == "idle" and owned[tags.CREATED_BY] == tags.TOOL
        assert owned[tags.REGION] == REGION and owned[tags.OWNER]
    assert result["idle_stop_minutes"] == 60
    assert [r["action"] for r in result["resources"] if r["kind"] == "idle-alarm"] == ["created", "created"]


def test_the_plan_shows_the_alarm_and_a_rerun_with_the_same_minutes_changes_nothing(cli, account):
    first = cli(*setup_args("same", "--idle-stop", "60"))
    assert first.code == 0, first.stderr
    assert "idle-alarm" in first.stderr and "stop after 60 idle minutes" in said(first)
    before = alarms(account)
    puts = record(cloudwatch(account), "PutMetricAlarm")
    again = cli(*setup_args("same", "--idle-stop", "60"), "--output", "json")
    assert again.code == 0, again.stderr
    assert "Nothing to change" in said(again)
    assert puts == []
    assert alarms(account).keys() == before.keys()


def test_a_rerun_with_other_minutes_updates_the_alarm(cli, account):
    assert setup(cli, "upd", "--idle-stop", "60").code == 0
    run = cli(*setup_args("upd", "--idle-stop", "120"), "--output", "json")
    assert run.code == 0, run.stderr
    assert "60 -> 120 idle minutes" in said(run)
    (alarm,) = alarms(account).values()
    assert alarm["EvaluationPeriods"] == 24
    assert [r["action"] for r in run.json["result"]["resources"] if r["kind"] == "idle-alarm"] == ["updated"]
    assert alarm_tags(account, alarm)[tags.DEPLOYMENT] == "upd"  # an update keeps the tags it was made with


def test_a_rerun_without_the_flag_keeps_the_alarm(cli, account):
    assert setup(cli, "keep", "--idle-stop", "30").code == 0
    run = cli(*setup_args("keep"), "--output", "json")
    assert run.code == 0, run.stderr
    assert "Nothing to change" in said(run)
    (alarm,) = alarms(account).values()
    assert alarm["EvaluationPeriods"] == 6


def test_yes_without_the_flag_makes_no_alarm(cli, account):
    run = setup(cli, "plain")
    assert run.code == 0, run.stderr
    assert alarms(account) == {}
    assert "idle_stop_minutes" not in run.json["result"]


@pytest.mark.parametrize(("minutes", "why"), [
    ("62", "62 minutes is not a multiple of 5 (CloudWatch sees an instance's basic metrics every 5 minutes): use 65"),
    ("5", "5 minutes is outside 10-1440"),
    ("2000", "2000 minutes is outside 10-1440"),
    ("an hour", "'an hour' is not a whole number of minutes"),
])
def test_bad_minutes_are_one_sentence_and_exit_2(cli, account, minutes, why):
    run = cli(*setup_args("bad", "--idle-stop", minutes))
    assert run.code == 2
    assert why in said(run)
    assert "Traceback" not in run.stderr
    assert alarms(account) == {}
    assert account.ec2.describe_instances()["Reservations"] == []
