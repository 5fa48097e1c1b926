"""Idle auto-stop (issue 16): `setup --idle-stop MINUTES` makes one tagged CloudWatch alarm per instance whose action
is EC2's own stop; it is part of the deployment everywhere (plan, re-run, rollback, teardown, list, export), and
`idle-stop --name N MINUTES|off` changes it later.

Asserted on what the user sees (exit code, stdout/stderr, JSON) and on the alarms in the moto account.
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from amazonei_setup.core import tags
from tests.conftest import ACCOUNT, REGION, cfn_lint, record, setup_args

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
    assert "create idle auto-stop amazonei-setup-same-idle-<instance>" in said(first)
    assert "stop after 60 idle minutes" in said(first)
    assert "Idle stop after 60 idle minutes" in " ".join(first.stdout.split())  # the ready summary says so
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


def test_the_request_is_valid_for_real_cloudwatch_by_botocores_model():
    """moto takes what it is given; the real PutMetricAlarm is held to botocore's model of the API."""
    from botocore.model import ServiceModel
    from botocore.validate import ParamValidator

    from amazonei_setup.aws.client import shared_loader
    from amazonei_setup.aws.resources import alarm

    model = ServiceModel(shared_loader().load_service_model("cloudwatch", "service-2"))
    params = {**alarm.definition("demo", "i-0123456789abcdef0", REGION, 60),
              "Tags": tags.tag_list("demo", "arn:aws:iam::123456789012:user/me", REGION)}
    report = ParamValidator().validate(params, model.operation_model("PutMetricAlarm").input_shape)
    assert not report.has_errors(), report.generate_report()
    assert len(params["Metrics"]) <= 20 and sum("MetricStat" in m for m in params["Metrics"]) <= 10
    assert params["EvaluationPeriods"] * 300 <= 86400  # at most a day of 5-minute periods
    assert [m["Id"] for m in params["Metrics"]] == ["cpu", "netin", "netout", "idle"]  # ids: lower-case first


# ---- the idle-stop command ------------------------------------------------------------------------------

def test_idle_stop_sets_changes_and_removes_the_alarms_of_a_deployment(cli, account):
    created = setup(cli, "later", "--count", "2")
    assert created.code == 0, created.stderr
    ids = instance_ids(created.json["result"])
    assert alarms(account) == {}

    on = cli("idle-stop", "--name", "later", "45", "--output", "json")  # no --region: the role says where
    assert on.code == 0, on.stderr
    result = on.json["result"]
    assert result["idle_stop_minutes"] == 45 and result["region"] == REGION
    assert sorted(a["action"] for a in result["alarms"]) == ["created", "created"]
    found = alarms(account)
    assert set(found) == {f"amazonei-setup-later-idle-{i}" for i in ids}
    assert {a["EvaluationPeriods"] for a in found.values()} == {9}
    assert all(alarm_tags(account, a)[tags.DEPLOYMENT] == "later" for a in found.values())

    same = cli("idle-stop", "--name", "later", "45", "--region", REGION)
    assert same.code == 0, same.stderr
    assert "already stops each of its 2 instances after 45 idle minutes" in " ".join(same.stdout.split())

    changed = cli("idle-stop", "--name", "later", "90")
    assert changed.code == 0, changed.stderr
    assert "now stops each of its 2 instances after 90 idle minutes" in " ".join(changed.stdout.split())
    assert {a["EvaluationPeriods"] for a in alarms(account).values()} == {18}

    off = cli("idle-stop", "--name", "later", "off")
    assert off.code == 0, off.stderr
    assert "Idle auto-stop is off for later" in " ".join(off.stdout.split())
    assert alarms(account) == {}
    again = cli("idle-stop", "--name", "later", "off")
    assert again.code == 0 and "already off" in again.stdout


def test_idle_stop_of_an_unknown_name_says_so_and_changes_nothing(cli, account):
    assert setup(cli, "known").code == 0
    run = cli("idle-stop", "--name", "unknown", "60", "--region", REGION)
    assert run.code == 1
    assert "No deployment named unknown in us-west-2" in said(run) and "Traceback" not in run.stderr
    assert alarms(account) == {}


def test_idle_stop_refuses_bad_minutes_before_any_call(cli, account):
    run = cli("idle-stop", "--name", "x", "7")
    assert run.code == 2
    assert "7 minutes is outside 10-1440" in said(run)


# ---- teardown, rollback, list -------------------------------------------------------------------------

def test_teardown_removes_the_alarms(cli, account):
    assert setup(cli, "gone", "--idle-stop", "60", "--count", "2").code == 0
    assert len(alarms(account)) == 2
    run = cli("teardown", "--name", "gone", "--yes", "--output", "json")
    assert run.code == 0, run.stderr
    deleted = [d for d in run.json["result"]["deleted"] if d["kind"] == "idle-alarm"]
    assert len(deleted) == 2
    assert alarms(account) == {}


def test_teardown_says_removed_only_after_cloudwatch_lists_none(cli, account):
    from tests.test_faults import respond

    assert setup(cli, "sticky", "--idle-stop", "60").code == 0
    respond(cloudwatch(account), "DeleteAlarms", lambda params: {})  # answered, but nothing deleted
    run = cli("teardown", "--name", "sticky", "--yes")
    assert run.code == 1
    text = said(run)
    assert "CloudWatch still lists the idle alarm(s) amazonei-setup-sticky-idle-" in text
    assert "run the same teardown again" in text
    assert "Deleted idle-alarm" not in run.stdout + run.stderr
    assert len(alarms(account)) == 1


def test_a_failure_after_the_alarm_step_rolls_the_alarm_back(cli, account):
    """The alarm is journaled before PutMetricAlarm is sent: a reply lost after CloudWatch made it still leaves the
    record the rollback deletes."""
    def lost_reply(**_):
        raise ClientError({"Error": {"Code": "InternalFailure", "Message": "connection reset"},
                           "ResponseMetadata": {"HTTPStatusCode": 500}}, "PutMetricAlarm")

    cloudwatch(account).meta.events.register("after-call.cloudwatch.PutMetricAlarm", lost_reply)
    run = cli(*setup_args("lost", "--idle-stop", "60"))
    assert run.code == 1
    text = said(run)
    assert "InternalFailure" in text and "Everything this run created was removed." in text
    assert alarms(account) == {}
    live = account.ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]}])
    assert live["Reservations"] == []


def test_list_shows_a_deployment_of_which_only_an_alarm_is_left(cli, account):
    from amazonei_setup.aws.resources import alarm

    # What a teardown cut off after terminating the instances could leave: an alarm watching a gone instance.
    me = account.sts.get_caller_identity()["Arn"]
    alarm.put_alarm(cloudwatch(account), "orphan", "i-0123456789abcdef0", REGION, 60,
                    tags.tag_list("orphan", me, REGION))
    run = cli("list", "--region", REGION, "--output", "json")
    assert run.code == 0, run.stderr
    (row,) = [r for r in run.json["result"]["deployments"] if r["name"] == "orphan"]
    assert row["left"] == ["idle alarm"] and row["state"] == "no instance (partial)"
    assert "teardown" in row["teardown_command"]
    gone = cli("teardown", "--name", "orphan", "--region", REGION, "--yes")
    assert gone.code == 0, gone.stderr
    assert alarms(account) == {}


def test_list_ignores_alarms_that_are_not_ours(cli, account):
    cloudwatch(account).put_metric_alarm(
        AlarmName="amazonei-setup-x-idle-i-0123456789abcdef0", MetricName="CPUUtilization", Namespace="AWS/EC2",
        Statistic="Average", Period=300, EvaluationPeriods=1, Threshold=1, ComparisonOperator="LessThanThreshold")
    run = cli("list", "--region", REGION, "--output", "json")
    assert run.code == 0, run.stderr
    assert run.json["result"]["deployments"] == []


# ---- export ---------------------------------------------------------------------------------------------

def idle_template(**build):
    from amazonei_setup.flows import cloudformation as cf
    from tests.test_cloudformation import make_plan

    plan = make_plan(idle_stop_minutes=60, **build.pop("plan", {}))
    return plan, cf.build_template(plan, **build)


@pytest.mark.parametrize(("plan", "build", "alarms_expected"), [
    ({}, {}, 1), ({}, {"fleet_size": 3}, 3), ({"family": "gpu"}, {}, 1)])
def test_the_template_holds_the_same_alarm_and_passes_cfn_lint(plan, build, alarms_expected):
    from amazonei_setup.flows import cloudformation as cf
    from tests.test_cloudformation import allowed

    plan_, template = idle_template(plan=plan, **build)
    found = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert len(found) == alarms_expected
    props = next(iter(found.values()))["Properties"]
    assert props["AlarmActions"] == [{"Fn::Sub": "arn:aws:automate:${AWS::Region}:ec2:stop"}]
    assert props["EvaluationPeriods"] == 12 and props["TreatMissingData"] == "notBreaching"
    assert {t["Key"] for t in props["Tags"]} >= {tags.DEPLOYMENT, tags.CREATED_BY}
    instance = props["Metrics"][0]["MetricStat"]["Metric"]["Dimensions"][0]["Value"]
    assert instance["Ref"] in template["Resources"]
    matches = cfn_lint(cf.to_yaml(template))
    assert [f"{m.rule.id} {m.message} at {m.path_string}" for m in matches if not allowed(m)] == []


def test_export_with_idle_stop_writes_the_alarm(cli, account, tmp_path):
    import yaml

    out = tmp_path / "t.yaml"
    run = cli("export", *setup_args("tpl", "--idle-stop", "30"), "--out", str(out))
    assert run.code == 0, run.stderr
    template = yaml.safe_load(out.read_text())
    (alarm,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarm["Properties"]["EvaluationPeriods"] == 6


def test_export_refuses_idle_stop_for_an_auto_scaling_group(cli, account):
    from amazonei_setup.sandbox.account import seed_alternative_amis

    seed_alternative_amis(ACCOUNT, REGION)
    run = cli("export", "--region", REGION, "--accelerator", "gpu", "--yes", "--name", "asg", "--fleet",
              "--idle-stop", "60", "--ssh-cidr", "198.51.100.4/32")
    assert run.code == 2
    assert "--idle-stop cannot go into an Auto Scaling group's template" in said(run)
    assert "Traceback" not in run.stderr


# ---- wizard ---------------------------------------------------------------------------------------------

def test_the_wizard_offers_idle_stop_with_the_price_of_an_idle_day(cli, account):
    from tests.test_wizard import ScriptedAsker

    asker = ScriptedAsker(idle_stop=60)
    run = cli("--region", REGION, "--instance-type", "m5.xlarge", "--name", "asked", "--ssh-cidr", "198.51.100.4/32",
              "--accelerator-type", "eia2.medium", asker=asker, tty=True)
    assert run.code == 0, run.stderr
    question = asker.question("--idle-stop")
    from amazonei_setup.core import catalog

    day = catalog.hourly_usd("m5.xlarge", "eia2.medium") * 24
    assert f"an idle day costs ${day:.2f}" in question.hint
    assert question.default == 0  # off unless chosen
    assert len(alarms(account)) == 1
    assert "--idle-stop 60" in run.stdout  # the equivalent command repeats the choice


def test_an_interactive_rerun_of_a_deployment_without_alarms_asks_nothing_about_idle_stop(cli, account):
    """A re-run with everything as wanted asks nothing (the wizard's promise); the deployment's idle setting, off
    here, is kept, and `idle-stop` is the way to change it."""
    from tests.test_wizard import ScriptedAsker

    assert cli(*setup_args("kept")).code == 0  # --yes: no alarm
    asker = ScriptedAsker()
    run = cli("--region", REGION, "--instance-type", "m5.xlarge", "--name", "kept", "--ssh-cidr", "198.51.100.4/32",
              asker=asker, tty=True)
    assert run.code == 0, run.stderr
    assert "--idle-stop" not in asker.flags
    assert "Nothing to change" in run.stderr, run.stderr
    assert not alarms(account)


@pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")  # AWS::CloudWatch::Alarm
def test_export_deploy_with_idle_stop_deploys_and_tears_down(cli, account):
    """moto's CloudFormation has no AWS::CloudWatch::Alarm (it skips the resource with a warning): the stack still
    deploys and tears down; the alarm's definition is held to CloudFormation's schema by cfn-lint above."""
    run = cli("export", *setup_args("stacked", "--idle-stop", "60"), "--deploy", "--output", "json")
    assert run.code == 0, run.stderr
    assert run.json["result"]["stack_name"] == "amazonei-setup-stacked"
    gone = cli("teardown", "--name", "stacked", "--yes")
    assert gone.code == 0, gone.stderr
    assert alarms(account) == {}


def test_idle_stop_refuses_a_stack_held_deployment(cli, account):
    assert cli("export", *setup_args("held"), "--deploy").code == 0
    run = cli("idle-stop", "--name", "held", "60", "--region", REGION)
    assert run.code == 2
    assert "held by the CloudFormation stack amazonei-setup-held" in said(run)
    assert "export --idle-stop MINUTES" in said(run)
