"""`export`: the setup plan as a CloudFormation template, and `export --deploy` through the CLI against moto.

Each test asserts on what the account holds (snapshot, stack, tags, the calls CloudFormation saw) and on what
the user sees (exit code, stdout, the JSON document, the lines on stderr).

What moto cannot do is simulated on the account's own CloudFormation client with after-call hooks that change
moto's real responses in place: a stack status other than the one moto reached at once (a stack still in
progress, or one CloudFormation deleted after a failure), and per-resource stack events (moto only emits the
stack's own). moto quirks the assertions depend on: create_stack completes synchronously; delete_stack leaves
the stack's VPC endpoint behind (teardown's sweep deletes it; a deploy's rollback has no sweep).
"""
from __future__ import annotations

import copy
import os
import stat
import uuid
from pathlib import Path

import pytest
import yaml

from amazonei_setup.core import tags
from amazonei_setup.flows import cloudformation
from amazonei_setup.local import records
from tests.conftest import ACCOUNT, REGION, SSH_CIDR, record, setup_args, snapshot

NAME = "cfn"
STACK = tags.resource_name(NAME)  # amazonei-setup-cfn: the stack has the name of the role, profile and group
LIVE = ["pending", "running", "stopping", "stopped", "shutting-down"]
CAPACITY_REASON = ("We currently do not have sufficient m5.xlarge capacity in the Availability Zone you requested "
                   "(Service: AmazonEC2; Status Code: 500; Error Code: InsufficientInstanceCapacity; "
                   "Request ID: 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0)")
EI_REASON = ("Elastic Inference accelerators are no longer available to new customers (Service: AmazonEC2; Status "
             "Code: 400; Error Code: InvalidParameterValue; Request ID: 1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809)")


# ---- helpers ---------------------------------------------------------------------------------------------

def export(cli, name: str = NAME, *extra: str, **kwargs):
    return cli("export", *setup_args(name, *extra), **kwargs)


def deploy(cli, name: str = NAME, *extra: str):
    """export --deploy with --output json; the progress and panels still go to stderr."""
    return export(cli, name, "--deploy", *extra, "--output", "json")


def teardown(cli, name: str = NAME, *extra: str):
    return cli("teardown", "--region", REGION, "--name", name, "--yes", *extra)


def family_args(name: str, family: str, *extra: str) -> list[str]:
    """setup_args without --instance-type (a family picks its own)."""
    return ["--region", REGION, "--accelerator", family, "--yes", "--name", name, "--ssh-cidr", SSH_CIDR, *extra]


def flat(text: str) -> str:
    """Text with the console's line wrapping undone."""
    return " ".join(text.split())


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def usage_failure(result) -> str:
    """Exit 2, exactly one `error:` line, no traceback; returns the error, unwrapped."""
    assert result.code == 2, (result.code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(error_lines(result.stderr)) == 1, result.stderr
    return flat(result.stderr[result.stderr.index("error:"):])


def without_log(message: str) -> str:
    """The error message without the call log the CLI appends to every exit-1 error."""
    return message.split(" (AWS call log:")[0]


def instances_of(ec2, name: str = NAME) -> list[dict]:
    pages = ec2.get_paginator("describe_instances").paginate(Filters=[
        {"Name": f"tag:{tags.DEPLOYMENT}", "Values": [name]}, {"Name": "instance-state-name", "Values": LIVE}])
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def stack_gone(cfn, name: str = STACK) -> bool:
    """describe_stacks by name answers "does not exist" once the stack is deleted."""
    try:
        cfn.describe_stacks(StackName=name)
    except cfn.exceptions.ClientError as err:
        assert "does not exist" in str(err), err
        return True
    return False


def endpoints_of(aws, name: str) -> set[str]:
    found = aws.ec2.describe_vpc_endpoints(Filters=[{"Name": f"tag:{tags.DEPLOYMENT}", "Values": [name]}])
    return {e["VpcEndpointId"] for e in found["VpcEndpoints"] if e["State"].lower() not in ("deleted", "deleting")}


def table_rows(stderr: str) -> list[list[str]]:
    """The rows of the action tables on stderr: [action, kind, id, ...]."""
    rows = []
    for line in stderr.splitlines():
        cells = line.strip("│ ").split()
        if cells and cells[0] in ("create", "reuse", "delete", "keep", "detach") and len(cells) >= 3:
            rows.append(cells)
    return rows


def stack_status_becomes(cfn, status: str, *, reason: str = "", times: int | None = None) -> list[str]:
    """DescribeStacks reports `status` instead of moto's CREATE_COMPLETE (times=None: every time). The stack's
    later statuses (DELETE_COMPLETE after the rollback deleted it) pass through. Returns the statuses moto
    really answered, one per call."""
    seen: list[str] = []
    changed: list[str] = []

    def hook(parsed, **_):
        for found in parsed.get("Stacks", []):
            seen.append(found["StackStatus"])
            if found["StackStatus"] == "CREATE_COMPLETE" and (times is None or len(changed) < times):
                changed.append(status)
                found["StackStatus"] = status
                if reason:
                    found["StackStatusReason"] = reason

    cfn.meta.events.register("after-call.cloudformation.DescribeStacks", hook)
    return seen


def resource_events(cfn, *batches: list[tuple[str, str, str, str, str]]) -> list[int]:
    """Per-resource events moto does not emit. Poll k (from 0) shows the events of batches[0..k] (the last batch
    from then on), newest first above moto's own stack events, as describe_stack_events pages them. Each event
    is (logical id, resource type, status, physical id, reason); an event keeps its EventId across polls.
    Returns a list that counts the polls."""
    polls: list[int] = []
    ids: dict[tuple, str] = {}

    def hook(parsed, **_):
        real = parsed.get("StackEvents", [])
        if not real:
            return
        shown = [e for batch in batches[:len(polls) + 1] for e in batch]
        polls.append(len(shown))
        fake = []
        for logical, type_, status, physical, reason in shown:
            event_id = ids.setdefault((logical, status), str(uuid.uuid4()))
            event = {**copy.deepcopy(real[-1]), "EventId": event_id, "LogicalResourceId": logical,
                     "ResourceType": type_, "ResourceStatus": status, "PhysicalResourceId": physical}
            event.pop("ResourceStatusReason", None)
            if reason:
                event["ResourceStatusReason"] = reason
            fake.insert(0, event)  # newest first
        real[:0] = fake

    cfn.meta.events.register("after-call.cloudformation.DescribeStackEvents", hook)
    return polls


def instance_fails(cfn, reason: str) -> None:
    """The stack's instance fails with `reason`, and CloudFormation (OnFailure=DELETE) deletes the stack."""
    resource_events(cfn, [("Instance", "AWS::EC2::Instance", "CREATE_FAILED", "", reason)])
    stack_status_becomes(cfn, "DELETE_COMPLETE", reason="The following resource(s) failed to create: [Instance].")


@pytest.fixture
def before(account):
    return snapshot(account)


@pytest.fixture
def cfn(account):
    return account.client("cloudformation")


@pytest.fixture
def ssh_dir(isolated_env) -> Path:
    return isolated_env / ".ssh"


# ---- 1. the template, written out ---------------------------------------------------------------------------

def test_export_to_a_file_writes_the_template_and_creates_nothing(cli, account, before, tmp_path):
    out = tmp_path / "ei.yaml"
    result = export(cli, NAME, "--out", str(out))
    assert result.code == 0, result.stderr
    assert "AWSTemplateFormatVersion" not in result.stdout, "with --out the template goes to the file only"
    assert result.stdout.startswith(f"Wrote {out}: "), "the result: where it went, and the next command"

    template = yaml.safe_load(out.read_text())
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert {"AWS::IAM::Role", "AWS::IAM::InstanceProfile", "AWS::EC2::SecurityGroup", "AWS::EC2::VPCEndpoint",
            "AWS::EC2::Instance"} <= kinds
    assert [k for k, r in template["Resources"].items() if r["Type"] == "AWS::EC2::Instance"] == ["Instance"]
    assert snapshot(account) == before, "export without --deploy must create nothing"
    assert account.client("cloudformation").describe_stacks()["Stacks"] == []

    command = next(line for line in result.stdout.splitlines() if line.startswith("aws cloudformation deploy"))
    assert f"--stack-name {STACK}" in command and f"--template-file {out}" in command
    assert "--capabilities CAPABILITY_NAMED_IAM" in command
    assert f"{tags.DEPLOYMENT}={NAME}" in command and f"{tags.CREATED_BY}={tags.TOOL}" in command


def test_export_to_stdout_is_exactly_the_template(cli, account, before, tmp_path):
    out = tmp_path / "same.yaml"
    assert export(cli, NAME, "--out", str(out)).code == 0

    result = export(cli)
    assert result.code == 0, result.stderr
    assert result.stdout == out.read_text()  # nothing but the YAML on stdout: it can be piped to a file
    assert yaml.safe_load(result.stdout)["Resources"]["Instance"]["Type"] == "AWS::EC2::Instance"
    # The template is the result on stdout, so the next command goes with the conversation.
    assert "aws cloudformation deploy" in result.stderr and "TEMPLATE.yaml" in result.stderr
    assert snapshot(account) == before


def test_export_json_envelope_carries_the_template_and_the_deploy_command(cli, account, before):
    result = export(cli, NAME, "--output", "json")
    assert result.code == 0, result.stderr
    document = result.json  # stdout is one JSON document, the template inside it
    assert (document["command"], document["status"]) == ("export", "success")
    found = document["result"]
    assert found["stack_name"] == STACK and found["path"] is None and found["plan"]["name"] == NAME
    assert "Instance" in yaml.safe_load(found["template"])["Resources"]
    assert found["deploy_command"].startswith(f"aws cloudformation deploy --region {REGION} --stack-name {STACK}")
    assert "--capabilities CAPABILITY_NAMED_IAM" in found["deploy_command"]
    assert snapshot(account) == before


# ---- 2. fleets --------------------------------------------------------------------------------------------

def test_ei_count_3_is_three_instance_resources(cli, account, tmp_path):
    out = tmp_path / "fleet.yaml"
    result = export(cli, NAME, "--count", "3", "--out", str(out))
    assert result.code == 0, result.stderr
    resources = yaml.safe_load(out.read_text())["Resources"]
    assert sorted(k for k, r in resources.items() if r["Type"] == "AWS::EC2::Instance") == [
        "Instance1", "Instance2", "Instance3"]
    assert not {"AWS::EC2::LaunchTemplate", "AWS::AutoScaling::AutoScalingGroup"} & {
        r["Type"] for r in resources.values()}, "CloudFormation's launch template schema has no EI property"


def test_inf2_count_3_is_a_launch_template_and_an_auto_scaling_group(cli, account, tmp_path):
    from amazonei_setup.sandbox.account import seed_alternative_amis

    seed_alternative_amis(ACCOUNT, REGION)
    out = tmp_path / "inf2.yaml"
    result = cli("export", *family_args(NAME, "inf2", "--count", "3", "--out", str(out)))
    assert result.code == 0, result.stderr
    template = yaml.safe_load(out.read_text())
    types = sorted(r["Type"] for r in template["Resources"].values())
    assert types.count("AWS::EC2::LaunchTemplate") == 1 and types.count("AWS::AutoScaling::AutoScalingGroup") == 1
    assert "AWS::EC2::Instance" not in types and "AWS::EC2::VPCEndpoint" not in types
    assert template["Parameters"]["FleetSize"]["Default"] in (3, "3")


def test_ei_count_above_the_fleet_limit_is_refused(cli, account, before, tmp_path):
    out = tmp_path / "big.yaml"
    result = export(cli, NAME, "--count", str(cloudformation.MAX_EI_FLEET + 1), "--out", str(out))
    message = usage_failure(result)
    assert f"--count {cloudformation.MAX_EI_FLEET}" in message
    assert not out.exists()
    assert snapshot(account) == before


# ---- 3, 4. deploy and teardown ----------------------------------------------------------------------------

def test_deploy_creates_the_stack_then_teardown_leaves_the_account_as_before(cli, account, cfn, before):
    result = export(cli, NAME, "--deploy")  # text: the ready summary on stdout; its JSON as the record saved it
    assert result.code == 0, result.stderr
    made = records.load(REGION, NAME)
    assert made["stack_name"] == STACK and made["instance_id"].startswith("i-")
    assert made["stack_outputs"]["InstanceId"] == made["instance_id"]

    (found,) = cfn.describe_stacks(StackName=STACK)["Stacks"]
    assert found["StackStatus"] == "CREATE_COMPLETE"
    assert tags.is_ours(found["Tags"], NAME)
    now = snapshot(account)
    assert now["roles"] - before["roles"] == {STACK} and now["instance_profiles"] - before["instance_profiles"] == {
        STACK}
    assert len(now["security_groups"] - before["security_groups"]) == 1
    assert len(now["endpoints"] - before["endpoints"]) == 1
    assert now["key_pairs"] - before["key_pairs"] == {STACK}, "--deploy creates the new key pair itself"
    (instance,) = instances_of(account.ec2)
    assert instance["InstanceId"] == made["instance_id"]
    instance_tags = tags.as_dict(instance["Tags"])
    assert instance_tags[tags.DEPLOYMENT] == NAME and instance_tags[tags.CFN_STACK_NAME] == STACK
    pem = Path(made["key_path"])
    assert pem.is_file() and stat.S_IMODE(pem.stat().st_mode) == 0o400
    assert f"Stack {STACK} (CloudFormation" in flat(result.stdout), "the ready panel has a Stack row"

    listed = cli("list", "--region", REGION, "--output", "json")
    assert [(d["name"], d["instance_id"]) for d in listed.json["result"]["deployments"]] == [
        (NAME, made["instance_id"])]

    gone = teardown(cli)
    assert gone.code == 0, gone.stderr
    assert table_rows(gone.stderr)[0][:3] == ["delete", "cloudformation-stack", STACK], "the stack goes first"
    assert stack_gone(cfn)
    # The endpoint (which moto's delete_stack leaves), the key pair (made outside the stack), role, profile,
    # group and instance: all gone.
    assert snapshot(account) == before
    assert cli("list", "--region", REGION, "--output", "json").json["result"]["deployments"] == []


def test_a_deployed_stack_gets_its_host_entry_as_setup_does(cli, account, cfn):
    """`ssh NAME` works after export --deploy as after setup; teardown takes the entry away again."""
    from amazonei_setup.local import sshconfig

    result = export(cli, NAME, "--deploy")
    assert result.code == 0, result.stderr
    made = records.load(REGION, NAME)
    block = sshconfig.read_block(NAME)
    assert block is not None and made["public_dns"] in block and made["key_path"] in block
    assert made["ssh_config"]["hosts"] == [NAME]
    assert f"ssh {NAME}" in result.stdout.splitlines()  # the ready summary offers it, as setup's does
    assert teardown(cli).code == 0
    assert sshconfig.read_block(NAME) is None


def test_export_deploy_with_no_ssh_config_writes_no_entry(cli, account, cfn):
    from amazonei_setup.local import sshconfig

    assert export(cli, NAME, "--deploy", "--no-ssh-config").code == 0
    assert sshconfig.read_block(NAME) is None and records.load(REGION, NAME)["ssh_config"] is None


def test_deploy_count_3_runs_three_tagged_instances_and_teardown_removes_them(cli, account, cfn, before):
    result = deploy(cli, NAME, "--count", "3")
    assert result.code == 0, result.stderr
    running = instances_of(account.ec2)
    assert len(running) == 3 and {i["State"]["Name"] for i in running} == {"running"}
    assert {tags.as_dict(i["Tags"]).get(tags.CFN_STACK_NAME) for i in running} == {STACK}
    assert {r["id"] for r in result.json["result"]["resources"] if r["kind"] == "instance"} == {
        i["InstanceId"] for i in running}

    gone = teardown(cli)
    assert gone.code == 0, gone.stderr
    assert stack_gone(cfn)
    assert instances_of(account.ec2) == []
    assert snapshot(account) == before


# ---- 5. a stack that fails ---------------------------------------------------------------------------------

def assert_rolled_back(account, before, ssh_dir) -> None:
    after = snapshot(account)
    # moto's delete_stack leaves the stack's VPC endpoint (real CloudFormation deletes it): exactly that one
    # endpoint, tagged for this deployment, is the only difference. Everything else is as before.
    leftover = after["endpoints"] - before["endpoints"]
    assert leftover == endpoints_of(account, NAME) and len(leftover) == 1
    assert {**after, "endpoints": before["endpoints"]} == before
    assert not list(ssh_dir.glob("*.pem")), "the rollback removes the .pem of the key pair it deleted"


def test_capacity_failure_is_setups_sentence_and_everything_is_removed(cli, account, cfn, before, ssh_dir):
    instance_fails(cfn, CAPACITY_REASON)
    deletes = record(cfn, "DeleteStack")
    result = deploy(cli)

    assert result.code == 1, result.stderr
    error = result.json["error"]
    assert error["code"] == "capacity"
    message = without_log(error["message"])
    assert message.startswith("AWS has no spare capacity for this instance type")
    assert message.endswith("Everything this run created was removed.")
    assert len(error_lines(result.stderr)) == 1 and "Traceback" not in result.stderr
    assert len(deletes) == 1 and f"stack/{STACK}/" in deletes[0]["StackName"]
    assert stack_gone(cfn)
    assert_rolled_back(account, before, ssh_dir)


def test_ei_refusal_names_the_inf2_command(cli, account, cfn, before, ssh_dir):
    instance_fails(cfn, EI_REASON)
    result = deploy(cli)

    assert result.code == 1, result.stderr
    error = result.json["error"]
    assert error["code"] == "ei-unavailable"
    assert without_log(error["message"]).endswith("Everything this run created was removed.")
    assert "--accelerator inf2" in error["suggested_command"] and f"--name {NAME}-inf2" in error["suggested_command"]
    assert error["suggested_command"] in result.stderr  # on a line of its own, whole
    assert_rolled_back(account, before, ssh_dir)


def test_a_role_failure_is_not_reported_as_an_instance_launch(cli, account, cfn, before, ssh_dir):
    reason = ("amazonei-setup-cfn already exists (Service: AmazonIdentityManagement; Status Code: 409; Error Code: "
              "EntityAlreadyExists; Request ID: 2b3c4d5e-6f70-8192-a3b4-c5d6e7f80912)")
    resource_events(cfn, [("InstanceRole", "AWS::IAM::Role", "CREATE_FAILED", "", reason)])
    stack_status_becomes(cfn, "DELETE_COMPLETE", reason="The following resource(s) failed to create: [InstanceRole].")
    result = deploy(cli)

    assert result.code == 1, result.stderr
    message = without_log(result.json["error"]["message"])
    assert "EntityAlreadyExists" in message and message.endswith("Everything this run created was removed.")
    assert "RunInstances" not in message, message


def test_a_failure_reason_without_an_error_code_names_the_resource(cli, account, cfn, before, ssh_dir):
    # CloudFormation's resource handlers word their reasons like this: no "Error Code:" to map to a sentence.
    reason = ('Resource handler returned message: "The security group \'amazonei-setup-cfn\' already exists for VPC '
              '\'vpc-0a1b2c3d4e5f60718\'" (RequestToken: 5c2e9f4a-1b7d-4e3a-9c8b-2d6f0a1e3b5c, HandlerErrorCode: '
              'AlreadyExists)')
    resource_events(cfn, [("SecurityGroup", "AWS::EC2::SecurityGroup", "CREATE_FAILED", "", reason)])
    stack_status_becomes(cfn, "DELETE_COMPLETE", reason="The following resource(s) failed to create: [SecurityGroup].")
    result = deploy(cli)

    assert result.code == 1, result.stderr
    error = result.json["error"]
    assert error["code"] == "stack-failed", error
    message = without_log(error["message"])
    assert "SecurityGroup" in message and "already exists for VPC" in message
    assert message.endswith("Everything this run created was removed.")
    assert_rolled_back(account, before, ssh_dir)


# ---- 6. progress, one line per resource ---------------------------------------------------------------------

def test_each_resource_is_reported_once_as_the_stack_progresses(cli, account, cfn):
    role = ("InstanceRole", "AWS::IAM::Role", "CREATE_COMPLETE", STACK, "")
    instance = ("Instance", "AWS::EC2::Instance", "CREATE_COMPLETE", "i-0123456789abcdef0", "")
    polls = resource_events(cfn, [role], [instance])
    stack_status_becomes(cfn, "CREATE_IN_PROGRESS", times=2)
    result = deploy(cli)

    assert result.code == 0, result.stderr
    assert len(polls) >= 3, "the events were polled while the stack was in progress, and again"
    text = flat(result.stderr)
    assert text.count(f"Created iam-role InstanceRole {STACK}") == 1
    assert text.count("Created instance Instance i-0123456789abcdef0") == 1
    assert text.index("Created iam-role") < text.index("Created instance Instance") < text.index("is complete")


def test_teardown_of_a_stack_reports_no_creations(cli, account, cfn):
    resource_events(cfn, [("InstanceRole", "AWS::IAM::Role", "CREATE_COMPLETE", STACK, "")])
    made = deploy(cli)
    assert made.code == 0, made.stderr
    assert flat(made.stderr).count(f"Created iam-role InstanceRole {STACK}") == 1

    gone = teardown(cli)
    assert gone.code == 0, gone.stderr
    assert stack_gone(cfn)
    assert "Created" not in gone.stderr, gone.stderr


# ---- 7. Ctrl-C -----------------------------------------------------------------------------------------------

def test_ctrl_c_during_the_stack_wait_deletes_the_stack_and_the_key_pair(cli, account, cfn, before, ssh_dir):
    # The first poll sees the stack in progress, the second is interrupted. (Interrupting the very first
    # DescribeStacks would trip a moto quirk instead: moto renders a stack's outputs lazily, and rendering them
    # for the first time after delete_stack re-creates the resources they name.)
    stack_status_becomes(cfn, "CREATE_IN_PROGRESS", times=1)
    polls: list[dict] = []

    def ctrl_c(params, **_):
        polls.append(params)
        if len(polls) == 2:
            raise KeyboardInterrupt

    cfn.meta.events.register("before-call.cloudformation.DescribeStacks", ctrl_c)
    deletes = record(cfn, "DeleteStack")
    result = deploy(cli)

    assert result.code == 130, result.stderr
    assert len(polls) >= 2, "the interrupt came during the wait"
    assert result.json["error"]["code"] == "interrupted"
    assert "Everything this run created was removed." in result.json["error"]["message"]
    assert len(deletes) == 1
    assert stack_gone(cfn)
    assert STACK not in snapshot(account)["key_pairs"]
    assert_rolled_back(account, before, ssh_dir)


# ---- 8. refusals ---------------------------------------------------------------------------------------------

def test_export_refuses_the_name_of_a_direct_deployment(cli, account, cfn, tmp_path):
    assert cli(*setup_args(NAME)).code == 0
    held = snapshot(account)
    out = tmp_path / "x.yaml"
    message = usage_failure(export(cli, NAME, "--deploy", "--out", str(out)))
    assert f"'{NAME}' already exists" in message and "--name" in message
    assert not out.exists() and cfn.describe_stacks()["Stacks"] == []
    assert snapshot(account) == held


def test_setup_refuses_to_converge_onto_a_stack_deployment(cli, account, cfn):
    assert deploy(cli).code == 0
    held = snapshot(account)
    message = usage_failure(cli(*setup_args(NAME)))
    assert f"CloudFormation stack {STACK}" in message
    assert snapshot(account) == held
    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def test_teardown_refuses_to_cut_off_a_deployment_using_the_stacks_endpoint(cli, account, cfn):
    assert deploy(cli).code == 0
    (endpoint,) = endpoints_of(account, NAME)
    assert cli(*setup_args("direct")).code == 0  # same default VPC: it joins the stack's endpoint
    joined = {g["GroupId"] for g in account.ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])[
        "VpcEndpoints"][0]["Groups"]}
    assert len(joined) == 2
    held = snapshot(account)
    deletes = record(cfn, "DeleteStack")

    message = usage_failure(teardown(cli))
    assert endpoint in message and "cut them off" in message
    assert deletes == [] and snapshot(account) == held
    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def test_teardown_does_not_cut_off_a_stack_that_reaches_the_endpoint_through_its_group(cli, account, cfn):
    assert cli(*setup_args("direct")).code == 0  # creates the VPC's EI endpoint, with its own group on it
    (endpoint,) = endpoints_of(account, "direct")
    assert deploy(cli).code == 0  # same VPC: the stack opens 443 into the endpoint's group instead
    group = account.ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]["Groups"][0]["GroupId"]
    rules = account.ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    stack_group = cfn.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
    stack_group = next(o["OutputValue"] for o in stack_group if o["OutputKey"] == "SecurityGroupId")
    assert stack_group in {p["GroupId"] for r in rules if r["FromPort"] == 443 for p in r["UserIdGroupPairs"]}

    teardown(cli, "direct")
    # Whether teardown refuses or keeps them: the stack's instance must still reach EI.
    assert endpoint in endpoints_of(account, "direct"), "the endpoint the stack's instance uses was deleted"
    assert account.ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroups"]


# ---- 9. --out that cannot be written ----------------------------------------------------------------------

def test_out_into_a_missing_directory_is_one_usage_error(cli, account, before, tmp_path):
    out = tmp_path / "missing" / "ei.yaml"
    message = usage_failure(export(cli, NAME, "--out", str(out)))
    assert "--out" in message and str(out) in message
    assert not out.parent.exists()
    assert snapshot(account) == before


# ---- 10. the sandbox, in separate processes -----------------------------------------------------------------

@pytest.mark.slow
def test_sandbox_export_deploy_then_teardown_in_separate_processes(tmp_path):
    from tests.test_e2e import Cli, assert_sandbox_is_empty, user_env

    home = tmp_path / "user"
    home.mkdir()
    run = Cli(user_env(home))
    made = run.json("export", "--sandbox", "--region", REGION, "--instance-type", "m5.xlarge", "--name", "sbx",
                    "--yes", "--deploy")
    assert made["stack_name"] == "amazonei-setup-sbx" and made["state"] == "running"
    assert Path(made["key_path"]).is_relative_to(home) and os.path.exists(made["key_path"])

    gone = run.json("teardown", "--sandbox", "--region", REGION, "--name", "sbx", "--yes")
    assert gone["found"] is True
    assert [d["kind"] for d in gone["deleted"]][0] == "cloudformation-stack"
    assert_sandbox_is_empty(home / ".amazonei-setup" / "sandbox")


def test_ctrl_c_while_create_stack_is_in_flight_deletes_the_stack_aws_made(cli, account, cfn, before, ssh_dir):
    """Ctrl-C lands while CreateStack's reply is on its way (the call runs on the main thread): AWS made the
    stack, the run never learned its id. The rollback must find it by name and tags, not only delete the key."""
    from amazonei_setup.aws.client import Aws

    plain = Aws(REGION).client("cloudformation")

    def made_then_interrupted(params, **_):
        plain.create_stack(**params)
        raise KeyboardInterrupt

    cfn.meta.events.register("before-parameter-build.cloudformation.CreateStack", made_then_interrupted)
    result = deploy(cli)

    assert result.code == 130, result.stderr
    assert "Traceback" not in result.stderr
    assert stack_gone(cfn), "the stack lives on after the message said it was removed"
    assert "Everything this run created was removed." in result.json["error"]["message"]
    assert_rolled_back(account, before, ssh_dir)
