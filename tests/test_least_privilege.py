"""Commands under an IAM policy older than some features: a denied look-up of an optional piece (idle-stop alarms,
a CloudFormation stack, the volumes a stopped instance still pays for) becomes one warning naming what was not
checked and how to check it by hand, and the command does the rest (exit 0). A denied look-up never lets teardown
call something removed that it did not see.

In-process against moto (`cli` fixture); the denial is `conftest.inject` on the fixture's clients, which raises the
ClientError AWS answers with before the call reaches moto. Each test asserts the exit code, the warning on stderr,
and the account afterwards.
"""
from __future__ import annotations

import boto3
import pytest

from amazonei_setup.aws.resources import alarm
from tests.conftest import REGION, inject, setup_args, snapshot

DENIED_BY = {  # the code each API answers a denial with; the message as AWS writes it (the action named in it)
    "cloudwatch": "AccessDenied",
    "cloudformation": "AccessDenied",
    "ec2": "UnauthorizedOperation",
}


def deny(account, service: str, operation: str, code: str | None = None, *, named: bool = True) -> None:
    message = (f"User: arn:aws:iam::123456789012:user/old-policy is not authorized to perform: "
               f"{service}:{operation} on resource: *" if named else "You are not authorized to perform this "
                                                                      "operation.")
    inject(account.client(service), operation, code or DENIED_BY[service], message)


def said(result) -> str:
    return " ".join(result.stderr.split())


def setup(cli, name: str = "demo", *extra: str) -> None:
    made = cli(*setup_args(name, *extra))
    assert made.code == 0, made.stderr


def plain(service: str):
    return boto3.client(service, region_name=REGION)


def untouched():
    """The account through clients no test instruments (the fixture's carry the denials)."""
    from amazonei_setup.aws.client import Aws

    return Aws(REGION)


def instance_states(name: str) -> set[str]:
    found = plain("ec2").describe_instances(Filters=[{"Name": "tag:amazonei-setup:deployment", "Values": [name]}])
    return {i["State"]["Name"] for r in found["Reservations"] for i in r["Instances"]}


def alarms_named(prefix: str) -> list[str]:
    return [a["AlarmName"] for a in plain("cloudwatch").describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]]


# ---- teardown ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", ["AccessDenied", "AccessDeniedException"])
def test_teardown_without_describe_alarms_removes_the_rest_and_names_the_alarms_it_did_not_check(cli, account, code):
    before = snapshot(untouched())
    setup(cli)
    deny(account, "cloudwatch", "DescribeAlarms", code)
    done = cli("teardown", "--name", "demo", "--yes")
    assert done.code == 0, done.stderr
    assert snapshot(untouched()) == before  # instance, group, key pair, endpoint, role, profile: all gone
    assert instance_states("demo") <= {"terminated"}
    prefix = alarm.alarm_prefix("demo")
    assert (f"Could not check for idle-stop alarms (cloudwatch:DescribeAlarms denied): if the deployment had one, "
            f"delete alarms named {prefix}* in the CloudWatch console") in said(done)
    assert "Traceback" not in done.stderr


def test_teardown_does_not_call_unchecked_alarms_removed(cli, account):
    """The alarm exists: teardown cannot see it, so it must neither claim it removed nor remove the deployment's
    other pieces silently as if nothing were left."""
    setup(cli, "demo", "--idle-stop", "60")
    prefix = alarm.alarm_prefix("demo")
    assert alarms_named(prefix)
    deny(account, "cloudwatch", "DescribeAlarms")
    done = cli("teardown", "--name", "demo", "--yes", "--output", "json")
    assert done.code == 0, done.stderr
    result = done.json["result"]
    assert all(d["kind"] != alarm.KIND for d in result["deleted"])
    assert result["unchecked"] == [{"piece": "idle-stop alarms", "action": "cloudwatch:DescribeAlarms"}]
    assert alarms_named(prefix)  # still there, as the warning says
    assert instance_states("demo") <= {"terminated"}
    assert "Could not check for idle-stop alarms" in said(done)


def test_teardown_text_result_says_what_was_not_checked(cli, account):
    setup(cli)
    deny(account, "cloudwatch", "DescribeAlarms")
    done = cli("teardown", "--name", "demo", "--yes")
    assert done.code == 0, done.stderr
    assert "Deployment demo removed" in done.stdout
    assert "not checked: idle-stop alarms" in " ".join(done.stdout.split())


def test_teardown_without_describe_stacks_removes_the_rest_and_names_the_stack_it_did_not_check(cli, account):
    before = snapshot(untouched())
    setup(cli)
    deny(account, "cloudformation", "DescribeStacks")
    done = cli("teardown", "--name", "demo", "--yes")
    assert done.code == 0, done.stderr
    assert snapshot(untouched()) == before
    assert ("Could not check for a CloudFormation stack (cloudformation:DescribeStacks denied): if the deployment was "
            "made with `export --deploy`, delete the stack amazonei-setup-demo in the CloudFormation console") \
        in said(done)


def test_teardown_names_the_action_even_when_the_denial_does_not(cli, account):
    setup(cli)
    deny(account, "cloudwatch", "DescribeAlarms", named=False)
    done = cli("teardown", "--name", "demo", "--yes")
    assert done.code == 0, done.stderr
    assert "(cloudwatch:DescribeAlarms denied)" in said(done)


def test_teardown_without_the_alarms_tags_says_which_action_was_denied(cli, account):
    setup(cli, "demo", "--idle-stop", "60")
    deny(account, "cloudwatch", "ListTagsForResource")
    done = cli("teardown", "--name", "demo", "--yes")
    assert done.code == 0, done.stderr
    assert "Could not check for idle-stop alarms (cloudwatch:ListTagsForResource denied)" in said(done)
    assert instance_states("demo") <= {"terminated"}


def test_a_required_look_up_denied_still_stops_teardown_before_anything_is_deleted(cli, account):
    setup(cli)
    held = snapshot(untouched())
    deny(account, "ec2", "DescribeInstances")
    done = cli("teardown", "--name", "demo", "--yes")
    assert done.code == 1
    assert "ec2:DescribeInstances" in said(done)
    assert snapshot(untouched()) == held


# ---- stop / start -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("service", "operation", "piece"), [
    ("cloudwatch", "DescribeAlarms", "idle-stop alarms"),
    ("cloudformation", "DescribeStacks", "a CloudFormation stack"),
])
def test_stop_and_start_without_an_optional_look_up_warn_and_go_ahead(cli, account, service, operation, piece):
    setup(cli)
    deny(account, service, operation)
    stopped = cli("stop", "--name", "demo")
    assert stopped.code == 0, stopped.stderr
    assert instance_states("demo") == {"stopped"}
    assert f"Could not check for {piece} ({service}:{operation} denied)" in said(stopped)
    started = cli("start", "--name", "demo")
    assert started.code == 0, started.stderr
    assert instance_states("demo") == {"running"}
    assert f"Could not check for {piece} ({service}:{operation} denied)" in said(started)


def test_stop_without_describe_volumes_stops_and_says_the_storage_price_is_unknown(cli, account):
    setup(cli)
    deny(account, "ec2", "DescribeVolumes")
    stopped = cli("stop", "--name", "demo", "--output", "json")
    assert stopped.code == 0, stopped.stderr
    assert instance_states("demo") == {"stopped"}
    assert "Could not check the instances' EBS volumes (ec2:DescribeVolumes denied)" in said(stopped)
    assert stopped.json["result"]["still_costs"]["usd_per_month"] is None  # unknown, never $0
    text = cli("stop", "--name", "demo")
    assert text.code == 0, text.stderr
    assert "Still billed while stopped: unknown per month" in text.stdout


# ---- status, list, idle-stop ------------------------------------------------------------------------------------

def test_status_without_describe_alarms_says_idle_stop_is_unknown_not_off(cli, account):
    setup(cli, "demo", "--idle-stop", "60")
    deny(account, "cloudwatch", "DescribeAlarms")
    shown = cli("status", "--name", "demo")
    assert shown.code == 0, shown.stderr
    assert "Could not check for idle-stop alarms (cloudwatch:DescribeAlarms denied)" in said(shown)
    assert "off (set it with" not in shown.stdout
    assert "unknown" in shown.stdout.split("Idle stop", 1)[1].splitlines()[0]
    as_json = cli("status", "--name", "demo", "--output", "json")
    assert as_json.json["result"]["unchecked"] == [{"piece": "idle-stop alarms",
                                                    "action": "cloudwatch:DescribeAlarms"}]


def test_list_without_describe_alarms_lists_the_rest_and_warns(cli, account):
    setup(cli)
    deny(account, "cloudwatch", "DescribeAlarms")
    listed = cli("list", "--region", REGION, "--output", "json")
    assert listed.code == 0, listed.stderr
    assert [d["name"] for d in listed.json["result"]["deployments"]] == ["demo"]
    assert "Could not check for idle-stop alarms (cloudwatch:DescribeAlarms denied)" in said(listed)


def test_idle_stop_without_describe_stacks_sets_the_alarm_and_warns(cli, account):
    setup(cli)
    deny(account, "cloudformation", "DescribeStacks")
    done = cli("idle-stop", "--name", "demo", "30")
    assert done.code == 0, done.stderr
    assert alarms_named(alarm.alarm_prefix("demo"))
    assert "Could not check for a CloudFormation stack (cloudformation:DescribeStacks denied)" in said(done)


def test_idle_stop_needs_describe_alarms_itself(cli, account):
    """The alarms are what idle-stop changes: not an optional look-up there, so the one sentence naming it."""
    setup(cli)
    deny(account, "cloudwatch", "DescribeAlarms")
    done = cli("idle-stop", "--name", "demo", "30")
    assert done.code == 1
    assert "cloudwatch:DescribeAlarms permission" in said(done)
    assert not alarms_named(alarm.alarm_prefix("demo"))


# ---- the sentence of a denial ------------------------------------------------------------------------------------

def test_a_denial_that_does_not_name_its_action_is_said_with_the_services_prefix(cli, account):
    """A moto server behind --endpoint-url (or any service whose message does not say "perform: x:Y") answers a bare
    AccessDenied: the permission is still named as IAM spells it, once."""
    setup(cli)
    deny(account, "iam", "DeleteRole", "AccessDenied", named=False)
    done = cli("teardown", "--name", "demo", "--yes")
    assert done.code == 1
    assert "ask an administrator for the iam:DeleteRole permission." in said(done)
    assert "the the" not in said(done) and "service's" not in said(done)


def test_a_denial_of_an_operation_no_client_of_ours_has_says_the_operation():
    from botocore.exceptions import ClientError

    from amazonei_setup.aws.client import explain

    err = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "DeleteRole")
    said_ = str(explain(err))
    assert said_ == ("Your AWS identity is not allowed to call DeleteRole: ask an administrator for permission to "
                     "call DeleteRole.")


def test_teardown_of_a_stack_made_deployment_without_describe_stacks_deletes_nothing(cli, account):
    """Its resources carry CloudFormation's stack tag: the stack is not an optional piece then, and deleting what it
    holds behind its back would leave a stack that cannot be deleted cleanly."""
    from tests.conftest import SSH_CIDR

    made = cli("export", "--region", REGION, "--yes", "--ssh-cidr", SSH_CIDR, "--instance-type", "m5.xlarge",
               "--name", "stk", "--deploy")
    assert made.code == 0, made.stderr
    held = snapshot(untouched())
    deny(account, "cloudformation", "DescribeStacks")
    done = cli("teardown", "--name", "stk", "--yes")
    assert done.code == 1
    assert ("Deployment stk was made by the CloudFormation stack amazonei-setup-stk (its resources carry its tag), "
            "and reading it was denied (cloudformation:DescribeStacks): nothing was deleted") in said(done)
    assert snapshot(untouched()) == held
