"""Teardown (issue 3): removes exactly what setup created, honours the per-VPC endpoint sharing rule,
never touches what the tool did not create, and can be re-run after any half-finished attempt.

Every test asserts on the mock account (`snapshot`, the endpoint's attached groups) and on what the
user sees (exit code, stderr sentence, JSON document).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from amazonei_setup.aws.resources import iam
from amazonei_setup.core import tags
from amazonei_setup.core.catalog import EI_SERVICE_NAME
from tests.conftest import ACCOUNT, REGION, inject, record, setup_args, snapshot

EI_SERVICE = EI_SERVICE_NAME.format(region=REGION)


# ---- helpers ----------------------------------------------------------------------------------

def teardown(cli, name: str, *extra: str, yes: bool = True, **kwargs):
    return cli("teardown", "--region", REGION, "--name", name, *(["--yes"] if yes else []), *extra, **kwargs)


def setup(cli, name: str, *extra: str) -> dict:
    created = cli(*setup_args(name, *extra), "--output", "json")
    assert created.code == 0, created.stderr
    return created.json["result"]


def resource_id(result: dict, kind: str) -> str:
    return next(r["id"] for r in result["resources"] if r["kind"] == kind)


def said(result) -> str:
    """stderr as one line: the console wraps at 100 columns, sentences must not depend on where."""
    return " ".join(result.stderr.split())


def endpoint(aws, endpoint_id: str) -> dict:
    return aws.ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"][0]


def endpoint_groups(aws, endpoint_id: str) -> set[str]:
    return {g["GroupId"] for g in endpoint(aws, endpoint_id).get("Groups", [])}


def endpoint_live(aws, endpoint_id: str) -> bool:
    return endpoint(aws, endpoint_id).get("State", "").lower() not in ("deleted", "deleting")


def default_vpc_and_subnet(aws) -> tuple[str, str]:
    vpc = aws.ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnet = aws.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                               {"Name": "availability-zone", "Values": [f"{REGION}a"]}])
    return vpc, subnet["Subnets"][0]["SubnetId"]


def our_tags(name: str) -> list[dict]:
    """The tags setup writes, with moto's caller as the owner (as discover.owner_of gives it)."""
    return tags.tag_list(name, f"arn:aws:sts::{ACCOUNT}:user/moto")


def backend_instance(instance_id: str):
    from moto.backends import get_backend

    return get_backend("ec2")[ACCOUNT][REGION].get_instance(instance_id)


def set_state(instance_id: str, name: str) -> None:
    codes = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
    state = backend_instance(instance_id)._state
    state.name, state.code = name, codes[name]


def trace(aws, ec2_ops: list[str], iam_ops: list[str]) -> list[str]:
    """One list of operation names in the order the requests were made (across both clients)."""
    calls: list[str] = []
    for client, ops in ((aws.ec2, ec2_ops), (aws.iam, iam_ops)):
        service = client.meta.service_model.service_name
        for op in ops:
            client.meta.events.register(f"before-call.{service}.{op}", lambda op=op, **_: calls.append(op))
    return calls


def slow_termination(aws, calls: list[str], polls: int = 2) -> None:
    """Make termination take a while, as in AWS: `shutting-down` until `polls` describe calls by id."""
    seen: list[str] = []

    def terminated(params, **_):
        for key, value in params["body"].items():
            if key.startswith("InstanceId."):
                set_state(value, "shutting-down")
                seen.append(value)

    def describe(params, **_):
        ids = [v for k, v in params["body"].items() if k.startswith("InstanceId.")]
        if not ids:
            return
        seen.append("poll")
        if seen.count("poll") > polls:
            for instance_id in ids:
                if backend_instance(instance_id).state == "shutting-down":
                    set_state(instance_id, "terminated")
                    calls.append(f"terminated {instance_id}")

    aws.ec2.meta.events.register("after-call.ec2.TerminateInstances",
                                 lambda **kw: terminated(kw["context"]["params"]))
    aws.ec2.meta.events.register("before-call.ec2.DescribeInstances", describe)
    # the after-call hook has no params: remember them in the request context
    aws.ec2.meta.events.register("before-call.ec2.TerminateInstances",
                                 lambda params, context, **_: context.__setitem__("params", params))


# ---- 1. a full deployment ------------------------------------------------------------------------

def test_teardown_of_a_full_deployment_leaves_the_account_as_before(cli, account):
    before = snapshot(account)
    result = setup(cli, "a")
    pem = Path(result["key_path"])
    assert pem.exists()

    gone = teardown(cli, "a", "--output", "json")

    assert gone.code == 0, gone.stderr
    assert "Traceback" not in said(gone)
    assert snapshot(account) == before
    assert not endpoint_live(account, resource_id(result, "vpc-endpoint"))
    doc = gone.json
    assert (doc["command"], doc["status"]) == ("teardown", "success")
    assert doc["result"]["found"] is True and doc["result"]["name"] == "a"
    deleted = {(d["kind"], d["id"]) for d in doc["result"]["deleted"]}
    assert deleted == {
        ("instance", result["instance_id"]),
        ("vpc-endpoint", resource_id(result, "vpc-endpoint")),
        ("key-pair", "amazonei-setup-a"),
        ("security-group", resource_id(result, "security-group")),
        ("instance-profile", "amazonei-setup-a"),
        ("iam-role", "amazonei-setup-a"),
        ("private-key-file", str(pem)),  # it opens nothing once its key pair is gone (tests/test_loop.py)
    }
    assert doc["result"]["kept"] == []
    assert not pem.exists()
    assert "Deployment a removed" not in gone.stdout, "JSON mode: the one document is all of stdout"


def test_text_output_then_teardown_again_and_unknown_name_find_nothing(cli, account):
    result = setup(cli, "a")
    gone = teardown(cli, "a")
    assert gone.code == 0, gone.stderr
    # The result on stdout: what was removed, one resource per line; the plan and the progress on stderr.
    removed = gone.stdout.splitlines()
    for kind, ident in (("instance", result["instance_id"]), ("security-group", resource_id(result, "security-group")),
                        ("vpc-endpoint", resource_id(result, "vpc-endpoint")), ("key-pair", "amazonei-setup-a"),
                        ("iam-role", "amazonei-setup-a")):
        assert any(line.split()[:3] == ["deleted", kind, ident] for line in removed), (kind, gone.stdout)
    assert removed[-1] == "Deployment a removed."
    for shown in ("Teardown of a in us-west-2", "private-key-file", "the private key of amazonei-setup-a"):
        assert shown in said(gone)
    assert f"Terminated instance {result['instance_id']}" in said(gone)

    again = teardown(cli, "a", "--output", "json")
    assert again.code == 0, again.stderr  # its terminated instances prove the name: a re-run is not a typo
    assert "No deployment named" not in again.stdout + again.stderr  # JSON mode: "found": false says it
    assert again.json["result"] == {"name": "a", "region": REGION, "found": False, "deleted": [], "kept": []}
    again_in_text = teardown(cli, "a")
    assert again_in_text.code == 0, again_in_text.stderr
    assert again_in_text.stdout == ("No deployment named a is left in us-west-2 (its instances are terminated); "
                                    "nothing to delete.\n")

    setup(cli, "other")
    before = snapshot(account)
    never = teardown(cli, "never-used")
    # Since issue 15 a name with no trace is an error (exit 1), not a teardown that "succeeded": see test_input_rules
    assert never.code == 1, never.stderr
    assert "No deployment named never-used in us-west-2, so nothing was deleted" in said(never)
    assert never.stdout == ""
    assert snapshot(account) == before  # the other deployment is untouched


# ---- 2. siblings share the VPC's endpoint --------------------------------------------------------

@pytest.mark.parametrize("first, second", [("a", "b"), ("b", "a")], ids=["creator-first", "creator-last"])
def test_siblings_share_one_endpoint_until_the_last_teardown(cli, account, first, second):
    before = snapshot(account)
    a = setup(cli, "a")
    b = setup(cli, "b", "--new-key")
    endpoint_id = resource_id(a, "vpc-endpoint")
    assert resource_id(b, "vpc-endpoint") == endpoint_id
    assert next(r["action"] for r in b["resources"] if r["kind"] == "vpc-endpoint") == "reused"
    groups = {"a": resource_id(a, "security-group"), "b": resource_id(b, "security-group")}
    assert endpoint_groups(account, endpoint_id) == set(groups.values())
    results = {"a": a, "b": b}

    gone = teardown(cli, first, "--output", "json")

    assert gone.code == 0, gone.stderr
    kept = gone.json["result"]["kept"]
    assert kept == [{"kind": "vpc-endpoint", "id": endpoint_id, "action": "detach",
                     "reason": "still used by 1 other deployment(s)"}]
    assert "vpc-endpoint" not in {d["kind"] for d in gone.json["result"]["deleted"]}
    now = snapshot(account)
    survivor = results[second]
    assert now["instances"] == {survivor["instance_id"]}
    assert now["security_groups"] == {groups[second]}
    assert now["roles"] == {f"amazonei-setup-{second}"}
    assert now["instance_profiles"] == {f"amazonei-setup-{second}"}
    assert now["key_pairs"] == {f"amazonei-setup-{second}"}
    assert now["endpoints"] == {endpoint_id}
    assert endpoint_groups(account, endpoint_id) == {groups[second]}

    last = teardown(cli, second, "--output", "json")

    assert last.code == 0, last.stderr
    assert ("vpc-endpoint", endpoint_id) in {(d["kind"], d["id"]) for d in last.json["result"]["deleted"]}
    assert last.json["result"]["kept"] == []
    assert snapshot(account) == before


def test_keep_shared_keeps_the_endpoint_of_the_last_deployment(cli, account):
    before = snapshot(account)
    a = setup(cli, "a")
    endpoint_id = resource_id(a, "vpc-endpoint")

    gone = teardown(cli, "a", "--keep-shared", "--output", "json")

    assert gone.code == 0, gone.stderr
    assert gone.json["result"]["kept"] == [{"kind": "vpc-endpoint", "id": endpoint_id, "action": "detach",
                                            "reason": "--keep-shared"}]
    assert snapshot(account) == {**before, "endpoints": {endpoint_id}}
    # Our group no longer hangs on it; AWS requires one group, so the VPC's default group took its place.
    assert endpoint_groups(account, endpoint_id) == {default_group(account)}


def default_group(account) -> str:
    vpc, _ = default_vpc_and_subnet(account)
    return account.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                         {"Name": "group-name", "Values": ["default"]}])[
        "SecurityGroups"][0]["GroupId"]


# ---- 3. never delete what the tool did not create -------------------------------------------------

def test_hand_made_endpoint_and_group_are_kept_only_our_group_is_detached(cli, account):
    vpc, subnet = default_vpc_and_subnet(account)
    hand_group = account.ec2.create_security_group(GroupName="hand-made", Description="mine", VpcId=vpc)["GroupId"]
    hand_endpoint = account.ec2.create_vpc_endpoint(
        VpcEndpointType="Interface", VpcId=vpc, ServiceName=EI_SERVICE, SubnetIds=[subnet],
        SecurityGroupIds=[hand_group], PrivateDnsEnabled=True)["VpcEndpoint"]["VpcEndpointId"]
    before = snapshot(account)
    a = setup(cli, "a")
    assert resource_id(a, "vpc-endpoint") == hand_endpoint
    assert endpoint_groups(account, hand_endpoint) == {hand_group, resource_id(a, "security-group")}

    gone = teardown(cli, "a", "--output", "json")

    assert gone.code == 0, gone.stderr
    assert gone.json["result"]["kept"] == [{"kind": "vpc-endpoint", "id": hand_endpoint, "action": "detach",
                                            "reason": "not created by amazonei-setup"}]
    assert snapshot(account) == before
    assert endpoint_live(account, hand_endpoint)
    assert endpoint_groups(account, hand_endpoint) == {hand_group}
    assert account.ec2.describe_security_groups(GroupIds=[hand_group])["SecurityGroups"][0]["GroupName"] == "hand-made"


def test_hand_made_endpoint_without_groups_is_kept(cli, account):
    vpc, subnet = default_vpc_and_subnet(account)
    hand_endpoint = account.ec2.create_vpc_endpoint(
        VpcEndpointType="Interface", VpcId=vpc, ServiceName=EI_SERVICE, SubnetIds=[subnet],
        PrivateDnsEnabled=True)["VpcEndpoint"]["VpcEndpointId"]
    before = snapshot(account)
    setup(cli, "a")

    gone = teardown(cli, "a", "--output", "json")

    assert gone.code == 0, gone.stderr
    assert [k["id"] for k in gone.json["result"]["kept"]] == [hand_endpoint]
    assert snapshot(account) == before
    assert endpoint_groups(account, hand_endpoint) == {default_group(account)}


def test_key_pair_given_with_key_name_survives(cli, account):
    account.ec2.create_key_pair(KeyName="mykey")
    before = snapshot(account)
    setup(cli, "a", "--key-name", "mykey")

    gone = teardown(cli, "a", "--output", "json")

    assert gone.code == 0, gone.stderr
    assert "key-pair" not in {d["kind"] for d in gone.json["result"]["deleted"]}
    assert snapshot(account) == before
    assert "mykey" in snapshot(account)["key_pairs"]
    assert ".pem" not in said(gone)  # no key of ours, so nothing to say about a private key file


def test_hand_made_role_with_our_name_is_left_alone(cli, account):
    vpc, _ = default_vpc_and_subnet(account)
    account.iam.create_role(RoleName="amazonei-setup-c", Path="/amazonei-setup/", AssumeRolePolicyDocument="{}")
    account.ec2.create_security_group(GroupName="amazonei-setup-c", Description="mine, no tags", VpcId=vpc)
    # ours in every tag but the deployment's name: not deployment d's either
    account.iam.create_role(RoleName="amazonei-setup-d", Path="/amazonei-setup/", AssumeRolePolicyDocument="{}",
                            Tags=our_tags("someone-else"))
    before = snapshot(account)

    gone = teardown(cli, "c", "--output", "json")
    other = teardown(cli, "d")

    # Nothing of ours by that name: an error since issue 15 (exit 1), which names what it left alone
    assert gone.code == 1, gone.stderr
    assert "No deployment named c in us-west-2, so nothing was deleted" in said(gone)
    assert "left alone, not created by amazonei-setup: IAM role amazonei-setup-c" in said(gone)
    assert gone.json["error"]["code"] == "not-found"
    assert other.code == 1, other.stderr
    assert "left alone, not created by amazonei-setup: IAM role amazonei-setup-d" in said(other)
    assert other.stdout == ""  # no result: the error is the whole answer
    assert snapshot(account) == before
    assert account.iam.get_role(RoleName="amazonei-setup-c")["Role"]["RoleName"] == "amazonei-setup-c"


def test_foreign_role_and_profile_next_to_a_real_partial_deployment_are_kept(cli, account):
    """The deployment's own (tagged) group goes; same-named IAM pieces made by hand stay, reported by kind."""
    vpc, _ = default_vpc_and_subnet(account)
    before = snapshot(account)
    group = account.ec2.create_security_group(
        GroupName="amazonei-setup-c", Description="ours", VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": our_tags("c")}])["GroupId"]
    account.iam.create_role(RoleName="amazonei-setup-c", Path="/amazonei-setup/", AssumeRolePolicyDocument="{}")
    account.iam.create_instance_profile(InstanceProfileName="amazonei-setup-c", Path="/amazonei-setup/")

    gone = teardown(cli, "c", "--output", "json")

    assert gone.code == 0, gone.stderr
    result = gone.json["result"]
    assert [(d["kind"], d["id"]) for d in result["deleted"]] == [("security-group", group)]
    assert sorted((k["kind"], k["id"], k["action"]) for k in result["kept"]) == [
        ("iam-role", "amazonei-setup-c", "keep"), ("instance-profile", "amazonei-setup-c", "keep")]
    assert all(k["reason"] == "same name but not created by amazonei-setup" for k in result["kept"])
    assert snapshot(account) == {**before, "roles": {"amazonei-setup-c"}, "instance_profiles": {"amazonei-setup-c"}}


def test_another_callers_deployment_is_refused_by_name(cli, account):
    setup(cli, "a")
    other = f"arn:aws:iam::{ACCOUNT}:user/someone-else"
    group = account.ec2.describe_security_groups(Filters=tags.filters_for("a"))["SecurityGroups"][0]["GroupId"]
    account.ec2.create_tags(Resources=[group], Tags=[{"Key": tags.OWNER, "Value": other}])
    before = snapshot(account)

    refused = teardown(cli, "a")

    assert refused.code == 2
    assert "Traceback" not in said(refused)
    assert other in said(refused) and "--name" in said(refused) and "nothing was deleted" in said(refused)
    assert snapshot(account) == before


# ---- 4. idempotent, and after partial runs ---------------------------------------------------------

def test_teardown_after_pieces_were_removed_by_hand(cli, account):
    before = snapshot(account)
    a = setup(cli, "a")
    account.ec2.terminate_instances(InstanceIds=[a["instance_id"]])
    account.ec2.delete_vpc_endpoints(VpcEndpointIds=[resource_id(a, "vpc-endpoint")])
    account.ec2.delete_security_group(GroupId=resource_id(a, "security-group"))

    gone = teardown(cli, "a", "--output", "json")

    assert gone.code == 0, gone.stderr
    assert {d["kind"] for d in gone.json["result"]["deleted"]} == {"key-pair", "private-key-file",
                                                                     "instance-profile", "iam-role"}
    assert snapshot(account) == before


def test_failed_teardown_says_run_again_and_the_second_run_finishes(cli, account):
    before = snapshot(account)
    setup(cli, "a")
    failed = inject(account.iam, "DeleteInstanceProfile", "ServiceFailure", "IAM is having a bad day", times=1)

    first = teardown(cli, "a", "--output", "json")

    assert first.code == 1
    assert len(failed) == 1
    assert "Traceback" not in said(first)
    assert "DeleteInstanceProfile" in said(first)
    assert "run the same teardown again" in said(first)
    assert first.json["status"] == "error"
    assert "amazonei-setup-a" in snapshot(account)["instance_profiles"]  # really left, as the message says

    second = teardown(cli, "a")

    assert second.code == 0, second.stderr
    assert snapshot(account) == before


def test_failure_in_the_first_phase_stops_before_the_group_and_iam(cli, account):
    before = snapshot(account)
    a = setup(cli, "a")
    inject(account.ec2, "TerminateInstances", "UnauthorizedOperation", "You are not authorized", times=1)

    first = teardown(cli, "a")

    assert first.code == 1
    assert "Traceback" not in said(first)
    assert "ec2:TerminateInstances" in said(first) and "run the same teardown again" in said(first)
    left = snapshot(account)
    assert a["instance_id"] in left["instances"]
    assert resource_id(a, "security-group") in left["security_groups"]
    assert "amazonei-setup-a" in left["roles"] and "amazonei-setup-a" in left["instance_profiles"]

    assert teardown(cli, "a").code == 0
    assert snapshot(account) == before


def test_ctrl_c_during_teardown_says_how_to_finish(cli, account):
    before = snapshot(account)
    setup(cli, "a")
    pressed: list[bool] = []

    def ctrl_c(**_):
        if not pressed:
            pressed.append(True)
            raise KeyboardInterrupt

    account.iam.meta.events.register("before-call.iam.DeleteRole", ctrl_c)

    stopped = teardown(cli, "a")

    assert stopped.code == 130
    assert "Traceback" not in said(stopped)
    assert "iam-role amazonei-setup-a" in said(stopped).split("left:")[1], "what is left is named"
    command = said(stopped).split("to finish, run: ")[1].strip()
    assert command == "python amazonei_setup.py teardown --region us-west-2 --name a"
    assert "amazonei-setup-a" in snapshot(account)["roles"]
    assert cli(*command.split()[2:], "--yes").code == 0  # the printed command finishes the job
    assert snapshot(account) == before


def test_ctrl_c_after_the_last_deletion_reports_the_whole_teardown(cli, account):
    before = snapshot(account)
    setup(cli, "a")
    deleting = iam.delete_empty_role

    def then_ctrl_c(client, name):  # the last deletion lands, and the signal arrives before its worker reports
        deleting(client, name)
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(iam, "delete_empty_role", then_ctrl_c)
        stopped = cli("teardown", "--region", REGION, "--name", "a", "--yes", "--output", "json")

    assert snapshot(account) == before
    assert stopped.code == 130, stopped.stderr
    assert stopped.json["status"] == "success"
    assert "stopped part-way" not in said(stopped) and "after the work was complete" in said(stopped)
    assert {d["kind"] for d in stopped.json["result"]["deleted"]} >= {"iam-role", "instance"}


def test_teardown_after_a_setup_whose_rollback_failed(cli, account):
    before = snapshot(account)
    inject(account.ec2, "RunInstances", "InsufficientInstanceCapacity", "no capacity")
    for client, op in ((account.ec2, "DeleteSecurityGroup"), (account.ec2, "DeleteKeyPair"),
                       (account.ec2, "DeleteVpcEndpoints"), (account.iam, "DeleteRole"),
                       (account.iam, "DeleteInstanceProfile")):
        inject(client, op, "ServiceUnavailable", "try later", times=1)

    failed = cli(*setup_args("a"))
    assert failed.code == 1
    assert "Rollback could not remove" in said(failed) and "teardown --region us-west-2 --name a" in said(failed)
    left = snapshot(account)
    assert left != before and not left["instances"]

    gone = teardown(cli, "a")

    assert gone.code == 0, gone.stderr
    assert snapshot(account) == before


def test_teardown_of_leftovers_made_by_hand_with_our_tags(cli, account):
    """What a killed setup leaves: a tagged group and a tagged role with its policy, nothing else."""
    vpc, _ = default_vpc_and_subnet(account)
    before = snapshot(account)
    account.ec2.create_security_group(GroupName="amazonei-setup-p", Description="ours", VpcId=vpc,
                                      TagSpecifications=[{"ResourceType": "security-group", "Tags": our_tags("p")}])
    account.iam.create_role(RoleName="amazonei-setup-p", Path="/amazonei-setup/", AssumeRolePolicyDocument="{}",
                            Tags=our_tags("p"))
    account.iam.put_role_policy(RoleName="amazonei-setup-p", PolicyName="amazonei-setup-elastic-inference",
                                PolicyDocument=json.dumps(iam.ei_policy(REGION, ACCOUNT)))

    gone = teardown(cli, "p", "--output", "json")

    assert gone.code == 0, gone.stderr
    assert {d["kind"] for d in gone.json["result"]["deleted"]} == {"security-group", "iam-role"}
    assert snapshot(account) == before


def test_rerun_while_the_instance_is_still_shutting_down_waits_for_it(cli, account):
    """A Ctrl-C during the first teardown's wait leaves the instance `shutting-down`: the re-run must
    still wait for `terminated` before deleting the group and the instance profile."""
    before = snapshot(account)
    a = setup(cli, "a")
    set_state(a["instance_id"], "shutting-down")
    calls = trace(account, ["DeleteSecurityGroup"], ["DeleteInstanceProfile"])
    slow_termination(account, calls)

    gone = teardown(cli, "a")

    assert gone.code == 0, gone.stderr
    assert f"terminated {a['instance_id']}" in calls, "teardown never waited for the shutting-down instance"
    marker = calls.index(f"terminated {a['instance_id']}")
    assert calls.index("DeleteSecurityGroup") > marker
    assert calls.index("DeleteInstanceProfile") > marker
    assert snapshot(account) == before


# ---- 5. order and waiting --------------------------------------------------------------------------

def test_dependency_violation_on_the_group_is_retried(cli, account):
    before = snapshot(account)
    setup(cli, "a")
    violations = inject(account.ec2, "DeleteSecurityGroup", "DependencyViolation",
                        "resource sg has a dependent object", times=2)
    attempts = record(account.ec2, "DeleteSecurityGroup")

    gone = teardown(cli, "a")

    assert gone.code == 0, gone.stderr
    assert len(violations) == 2 and len(attempts) == 3  # two refused, the third deleted it (snapshot below)
    assert snapshot(account) == before


def test_deletes_happen_in_dependency_order(cli, account):
    before = snapshot(account)
    a = setup(cli, "a")
    calls = trace(account, ["TerminateInstances", "DeleteVpcEndpoints", "ModifyVpcEndpoint", "DeleteSecurityGroup",
                            "DeleteKeyPair"],
                  ["RemoveRoleFromInstanceProfile", "DeleteInstanceProfile", "DeleteRolePolicy", "DeleteRole"])
    slow_termination(account, calls)

    gone = teardown(cli, "a")

    assert gone.code == 0, gone.stderr
    terminated = f"terminated {a['instance_id']}"
    for op in ("TerminateInstances", "DeleteVpcEndpoints", "DeleteSecurityGroup", "DeleteKeyPair", terminated,
               "RemoveRoleFromInstanceProfile", "DeleteInstanceProfile", "DeleteRolePolicy", "DeleteRole"):
        assert calls.count(op) == 1, (op, calls)
    at = calls.index
    assert at("TerminateInstances") < at(terminated) < at("DeleteSecurityGroup")
    assert at("DeleteVpcEndpoints") < at("DeleteSecurityGroup")
    assert at("RemoveRoleFromInstanceProfile") < at("DeleteInstanceProfile")
    assert at(terminated) < at("DeleteInstanceProfile")
    assert at("DeleteRolePolicy") < at("DeleteRole")
    assert at(terminated) < at("DeleteRole")
    assert snapshot(account) == before


def test_detaching_from_a_shared_endpoint_comes_before_deleting_the_group(cli, account):
    a = setup(cli, "a")
    setup(cli, "b", "--new-key")
    calls = trace(account, ["ModifyVpcEndpoint", "DeleteVpcEndpoints", "DeleteSecurityGroup"], [])
    detach = record(account.ec2, "ModifyVpcEndpoint")

    gone = teardown(cli, "a")

    assert gone.code == 0, gone.stderr
    assert calls == ["ModifyVpcEndpoint", "DeleteSecurityGroup"]
    assert detach == [{"VpcEndpointId": resource_id(a, "vpc-endpoint"),
                       "RemoveSecurityGroupIds": [resource_id(a, "security-group")]}]


# ---- 6. confirmation -----------------------------------------------------------------------------

class ScriptedAsker:
    interactive = True

    def __init__(self, answer: bool):
        self.answer = answer
        self.asked: list[tuple[str, bool]] = []

    def select(self, message, options, default, *, flag, hint=""):  # pragma: no cover - teardown never selects
        raise AssertionError(f"unexpected question: {message}")

    def text(self, message, default, *, flag, validate):  # pragma: no cover
        raise AssertionError(f"unexpected question: {message}")

    def confirm(self, message, default=False):
        self.asked.append((message, default))
        return self.answer


def test_without_yes_and_without_a_terminal_nothing_is_deleted(cli, account):
    setup(cli, "a")
    before = snapshot(account)

    refused = teardown(cli, "a", "--output", "json", yes=False)

    assert refused.code == 2
    assert "--yes" in said(refused) and "Traceback" not in said(refused)
    assert refused.json["status"] == "error" and refused.json["error"]["code"] == "usage"
    assert snapshot(account) == before


def test_declining_the_confirmation_deletes_nothing(cli, account):
    setup(cli, "a")
    before = snapshot(account)
    asker = ScriptedAsker(False)

    declined = teardown(cli, "a", "--output", "json", yes=False, asker=asker)

    assert declined.code == 0, declined.stderr
    assert asker.asked == [("Delete deployment a?", False)]  # deleting defaults to no
    assert declined.json["status"] == "cancelled"
    in_text = teardown(cli, "a", yes=False, asker=ScriptedAsker(False))
    assert in_text.code == 0 and in_text.stdout == "Nothing was deleted.\n"
    assert snapshot(account) == before


def test_accepting_the_confirmation_deletes(cli, account):
    before = snapshot(account)
    setup(cli, "a")
    asker = ScriptedAsker(True)

    accepted = teardown(cli, "a", yes=False, asker=asker, tty=True)

    assert accepted.code == 0, accepted.stderr
    assert len(asker.asked) == 1
    assert snapshot(account) == before


# ---- Ctrl-C --------------------------------------------------------------------------------------

def test_ctrl_c_during_the_termination_wait_stops_at_once(cli, account, default_signals):
    """A real SIGINT (what a terminal's Ctrl-C sends) while teardown waits for 'terminated':
    the wait stops at its current pause, not after TERMINATE_TIMEOUT, and says how to finish.
    (default_signals: pytest may have inherited SIGINT as ignored, and then the signal would never arrive.)"""
    import io
    import threading

    import boto3

    from amazonei_setup.cli.environment import Environment
    from amazonei_setup.cli.main import main
    from tests.test_faults import describe_kwargs, respond

    setup(cli, "a")
    real = boto3.client("ec2", region_name=REGION)  # uninstrumented, same moto account
    polls: list[str] = []

    def never_terminated(params):
        response = real.describe_instances(**describe_kwargs(params))
        for reservation in response["Reservations"]:
            for instance in reservation["Instances"]:
                if instance["State"]["Name"] == "terminated" and len(polls) < 5:  # cap: a regression fails, not hangs
                    instance["State"] = {"Code": 32, "Name": "shutting-down"}
                    if threading.current_thread() is threading.main_thread():
                        continue  # the look after the signal at what is left, not the waiting worker's poll
                    polls.append(instance["InstanceId"])
                    if len(polls) == 1:
                        # In the pause, whenever it comes: a timer would have to guess when that is (and a busy
                        # machine made it miss the 1 s pause, so the worker polled again).
                        threading.Thread(target=ctrl_c_once_a_worker_pauses, daemon=True).start()
        return response

    respond(account.ec2, "DescribeInstances", never_terminated)
    out, err = io.StringIO(), io.StringIO()
    code = main(["teardown", "--region", REGION, "--name", "a", "--yes"],
                Environment(stdin_isatty=False, stdout=out, stderr=err, aws=account))  # real, cancellable sleep

    assert code == 130, err.getvalue()
    assert "to finish, run: " in err.getvalue() and "left: instance" in " ".join(err.getvalue().split())
    assert len(polls) == 1  # interrupted during the first pause; the worker did not poll again


def ctrl_c_once_a_worker_pauses(within: float = 60.0) -> None:
    """SIGINT to this process once a worker thread sleeps in concurrency.cancellable_sleep (a wait's pause), seen in
    the threads' current frames; at the deadline it is sent anyway, and the test's assertions say what went wrong."""
    import os
    import signal
    import sys
    import threading
    import time

    from amazonei_setup.aws import concurrency

    def pausing() -> bool:
        for ident, frame in sys._current_frames().items():
            if ident == threading.main_thread().ident:
                continue
            while frame is not None:
                if frame.f_code.co_name == "_sleep" and frame.f_code.co_filename == concurrency.__file__:
                    return True
                frame = frame.f_back
        return False

    deadline = time.monotonic() + within
    while not pausing() and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(os.getpid(), signal.SIGINT)
