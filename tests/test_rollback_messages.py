"""What a failed setup says after its rollback when AWS stops answering (the endpoint dies mid-run): the cause once,
what the rollback removed and what it could not, and the one command that finishes the job.

In-process against moto (`cli` fixture). "AWS stops answering" is a before-call hook on the fixture's clients that
raises botocore's EndpointConnectionError once RunInstances has answered, so the rollback meets it too.
"""
from __future__ import annotations

from botocore.exceptions import EndpointConnectionError

from amazonei_setup.aws.client import Aws
from tests.conftest import REGION, setup_args, snapshot

SERVICES = ("ec2", "iam", "sts", "ssm", "cloudwatch")


def endpoint_dies_after_launch(account, services=SERVICES) -> None:
    """Every call of `services` fails as an unreachable endpoint does once RunInstances and CreateVpcEndpoint have
    both answered (they run concurrently: which answers last depends on the machine's load, and every piece must
    exist for the message to name it)."""
    down: list[bool] = []
    answered: set[str] = set()

    def unreachable(**_):
        if down:
            raise EndpointConnectionError(endpoint_url=f"https://ec2.{REGION}.amazonaws.com/")

    def after(operation):
        def hook(**_):
            answered.add(operation)
            if answered >= {"RunInstances", "CreateVpcEndpoint"}:
                down.append(True)
        return hook

    for service in services:
        client = account.client(service)
        client.meta.events.register(f"before-call.{client.meta.service_model.service_name}", unreachable)
    for operation in ("RunInstances", "CreateVpcEndpoint"):
        account.ec2.meta.events.register(f"after-call.ec2.{operation}", after(operation))


def error_line(result) -> str:
    text = " ".join(result.stderr.split())
    return text[text.index("error: "):]


def test_an_endpoint_that_dies_is_said_once_with_what_is_left_and_the_command(cli, account):
    endpoint_dies_after_launch(account)
    failed = cli(*setup_args("demo"))
    assert failed.code == 1
    said = error_line(failed)
    assert said.count("Could not reach AWS") == 1, said
    assert said.count("Could not connect to the endpoint URL") == 1, said
    left = snapshot(Aws(REGION))  # the account as it is: nothing could be removed
    for kind, ids in (("instance", left["instances"]), ("security-group", left["security_groups"]),
                      ("vpc-endpoint", left["endpoints"]), ("key-pair", left["key_pairs"]),
                      ("instance-profile", left["instance_profiles"]), ("iam-role", left["roles"])):
        assert ids, kind
        for each in ids:
            assert f"{kind} {each}" in said
    assert "Rollback could not remove" in said and "AWS could not be reached" in said
    assert said.count("teardown --region us-west-2 --name demo") == 1
    assert "to finish once AWS answers again run: " in said
    assert len(said.split(" (AWS call log:")[0]) < 700, said


def test_a_rollback_that_reaches_part_of_aws_says_what_it_removed_and_what_not(cli, account):
    endpoint_dies_after_launch(account, services=("ec2",))
    failed = cli(*setup_args("demo"))
    assert failed.code == 1
    said = error_line(failed)
    assert said.count("Could not reach AWS") == 1, said
    left = snapshot(Aws(REGION))
    assert not left["roles"] and not left["instance_profiles"]  # IAM answered: the rollback removed them
    could_not, removed = said.split("Rollback could not remove ", 1)[1].split("; it removed ", 1)
    assert next(iter(left["instances"])) in could_not and "AWS could not be reached either" in could_not
    assert removed.startswith("instance-profile amazonei-setup-demo, iam-role amazonei-setup-demo; to finish"), said


def test_the_json_error_keeps_the_causes_code(cli, account):
    endpoint_dies_after_launch(account)
    failed = cli(*setup_args("demo"), "--output", "json")
    assert failed.code == 1
    error = failed.json["error"]
    assert error["code"] == "network"
    assert error["message"].count("Could not reach AWS") == 1
