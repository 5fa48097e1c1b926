"""Deployment state you can trust (issue 14): what the tool says matches what exists in AWS.

Re-runs converge onto what the flags declare; a name is one deployment in the account, whichever region;
teardown never removes what a deployment in another region uses. Every test asserts on the moto account
and on what the user sees.
"""
from __future__ import annotations

from amazonei_setup.core import tags
from tests.conftest import REGION, setup_args

NAME = "demo"
GROUP_NAME = tags.resource_name(NAME)


def group(ec2, name: str = NAME) -> dict:
    [found] = ec2.describe_security_groups(Filters=[{"Name": f"tag:{tags.DEPLOYMENT}", "Values": [name]}])[
        "SecurityGroups"]
    return found


def ssh_ranges(found: dict) -> list[str]:
    return sorted(r["CidrIp"] for rule in found["IpPermissions"] if rule.get("FromPort") == 22
                  for r in rule.get("IpRanges", []))


def https_sources(found: dict) -> list[str]:
    return [p["GroupId"] for rule in found["IpPermissions"] if rule.get("FromPort") == 443
            for p in rule.get("UserIdGroupPairs", [])]


def setup_with_cidr(cli, cidr: str, *extra: str):
    args = setup_args(NAME, *extra)
    args[args.index("--ssh-cidr") + 1] = cidr
    return cli(*args, "--output", "json")


def planned_group(cli, cidr: str) -> dict:
    """What --dry-run's plan says it would do to the deployment's group."""
    dry = setup_with_cidr(cli, cidr, "--dry-run")
    assert dry.code == 0, dry.stderr
    [item] = [i for i in dry.json["result"]["plan"]["items"] if i["kind"] == "security-group"]
    return item


# ---- 1. a re-run converges the SSH range ----------------------------------------------------------------

def test_rerun_with_a_new_ssh_cidr_replaces_the_old_range(cli, account):
    """The everyday case: my address changed, I run setup again. Port 22 must follow, and the old range close."""
    first = setup_with_cidr(cli, "0.0.0.0/0")
    assert first.code == 0, first.stderr
    assert ssh_ranges(group(account.ec2)) == ["0.0.0.0/0"]

    item = planned_group(cli, "203.0.113.7/32")
    assert item["action"] == "update" and "0.0.0.0/0 -> 203.0.113.7/32" in item["detail"]
    assert ssh_ranges(group(account.ec2)) == ["0.0.0.0/0"]  # a dry run changes nothing

    again = setup_with_cidr(cli, "203.0.113.7/32")

    assert again.code == 0, again.stderr
    found = group(account.ec2)
    assert ssh_ranges(found) == ["203.0.113.7/32"]  # the new range is open and 0.0.0.0/0 is closed
    assert https_sources(found) == [found["GroupId"]]  # the 443 rule survives the change
    assert "0.0.0.0/0 -> 203.0.113.7/32" in again.stderr  # the plan the user confirmed said so
    assert "now only from 203.0.113.7/32" in again.stderr and "closed 0.0.0.0/0" in again.stderr


def test_rerun_with_the_same_cidr_changes_nothing_and_says_reuse(cli, account):
    assert setup_with_cidr(cli, "203.0.113.7/32").code == 0
    before = group(account.ec2)["IpPermissions"]

    again = setup_with_cidr(cli, "203.0.113.7/32")

    assert again.code == 0, again.stderr
    assert group(account.ec2)["IpPermissions"] == before
    assert planned_group(cli, "203.0.113.7/32")["action"] == "reuse"


def test_a_hand_made_ssh_rule_is_left_alone(cli, account):
    """Only the ranges this tool opened are closed: a rule the user added themselves stays."""
    assert setup_with_cidr(cli, "198.51.100.4/32").code == 0
    group_id = group(account.ec2)["GroupId"]
    account.ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "192.0.2.0/24", "Description": "office VPN"}]}])

    again = setup_with_cidr(cli, "203.0.113.7/32")

    assert again.code == 0, again.stderr
    assert ssh_ranges(group(account.ec2)) == ["192.0.2.0/24", "203.0.113.7/32"]


def test_a_new_ssh_range_is_opened_although_the_https_rule_exists(cli, account):
    """AWS refuses a whole AuthorizeSecurityGroupIngress when one rule in it exists: the SSH rule must not be
    sent in the same call as the 443 rule a first run already made."""
    assert setup_with_cidr(cli, "198.51.100.4/32").code == 0
    group_id = group(account.ec2)["GroupId"]
    account.ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "198.51.100.4/32"}]}])

    item = planned_group(cli, "198.51.100.4/32")
    assert item["action"] == "update" and "nowhere -> 198.51.100.4/32" in item["detail"]

    again = setup_with_cidr(cli, "198.51.100.4/32")

    assert again.code == 0, again.stderr
    assert ssh_ranges(group(account.ec2)) == ["198.51.100.4/32"]


def test_teardown_after_a_cidr_change_leaves_nothing(cli, account):
    assert setup_with_cidr(cli, "0.0.0.0/0").code == 0
    assert setup_with_cidr(cli, "203.0.113.7/32").code == 0
    gone = cli("teardown", "--region", REGION, "--name", NAME, "--yes")
    assert gone.code == 0, gone.stderr
    assert account.ec2.describe_security_groups(Filters=tags.filters_for(NAME))["SecurityGroups"] == []


# ---- 2, 3. one name, one deployment, whichever region ---------------------------------------------------

OTHER_REGION = "us-east-1"


def in_region(args: list[str], region: str) -> list[str]:
    return [region if a == REGION else a for a in args]


def role_policy(iam, name: str = NAME) -> dict:
    return iam.get_role_policy(RoleName=tags.resource_name(name), PolicyName="amazonei-setup-elastic-inference")[
        "PolicyDocument"]


def test_every_piece_says_which_region_the_deployment_lives_in(cli, account):
    assert cli(*setup_args(NAME)).code == 0
    role = account.iam.get_role(RoleName=GROUP_NAME)["Role"]
    profile = account.iam.get_instance_profile(InstanceProfileName=GROUP_NAME)["InstanceProfile"]
    assert tags.home_region(role.get("Tags")) == REGION
    assert tags.home_region(profile.get("Tags")) == REGION
    assert tags.home_region(group(account.ec2).get("Tags")) == REGION


def test_the_same_name_in_another_region_is_refused_and_the_first_keeps_its_policy(cli, account):
    from amazonei_setup.sandbox.account import seed_deep_learning_amis
    from tests.conftest import ACCOUNT

    seed_deep_learning_amis(ACCOUNT, OTHER_REGION)
    assert cli(*setup_args(NAME)).code == 0
    before = role_policy(account.iam)
    east = account.in_region(OTHER_REGION)

    second = cli(*in_region(setup_args(NAME), OTHER_REGION), own_clients=True)

    assert second.code == 2, second.stderr
    said = " ".join(second.stderr.split())
    assert f"lives in {REGION}" in said and f"--region {REGION}" in said
    assert "Traceback" not in second.stderr
    assert role_policy(account.iam) == before  # the us-west-2 instance can still connect to EI
    assert f":{REGION}:" in str(before)
    # nothing of the refused run is left in us-east-1
    assert east.ec2.describe_security_groups(Filters=tags.filters_for(NAME))["SecurityGroups"] == []
    assert east.ec2.describe_key_pairs(Filters=tags.filters_for(NAME))["KeyPairs"] == []


def test_teardown_in_the_wrong_region_deletes_nothing_and_names_the_right_one(cli, account):
    assert cli(*setup_args(NAME)).code == 0

    wrong = cli("teardown", "--region", OTHER_REGION, "--name", NAME, "--yes", own_clients=True)

    assert wrong.code == 2, wrong.stderr
    said = " ".join(wrong.stderr.split())
    assert f"lives in {REGION}" in said and "nothing was deleted" in said
    assert "removed" not in said
    # the live deployment still has its role and profile
    assert account.iam.get_role(RoleName=GROUP_NAME)["Role"]
    profile = account.iam.get_instance_profile(InstanceProfileName=GROUP_NAME)["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [GROUP_NAME]

    right = cli("teardown", "--region", REGION, "--name", NAME, "--yes")
    assert right.code == 0, right.stderr
    assert account.iam.list_roles(PathPrefix=tags.IAM_PATH)["Roles"] == []


# ---- 9. a key pair whose private key is gone is never reused silently ----------------------------------

def test_a_killed_runs_key_pair_without_its_pem_is_replaced_not_reused(cli, account, isolated_env):
    """A run killed (or whose reply was lost) after CreateKeyPair leaves the deployment's tagged key pair and no
    .pem. Reusing it would launch an instance nobody can log in to."""
    left = account.ec2.create_key_pair(KeyName=GROUP_NAME, TagSpecifications=tags.tag_specs(
        ["key-pair"], tags.tag_list(NAME, "arn:aws:iam::123456789012:user/moto", REGION)))
    pem = isolated_env / ".ssh" / f"{GROUP_NAME}.pem"
    assert not pem.exists()

    result = cli(*setup_args(NAME), "--output", "json")

    assert result.code == 0, result.stderr
    assert pem.exists()  # the user can log in
    [now] = account.ec2.describe_key_pairs(KeyNames=[GROUP_NAME])["KeyPairs"]
    assert now["KeyPairId"] != left["KeyPairId"]  # a new key pair, whose private key is the saved .pem
    assert result.json["result"]["key_path"] == str(pem)
    assert "replaced by a new key pair" in " ".join(result.stderr.split())


def test_a_rerun_onto_an_instance_whose_pem_is_missing_says_so(cli, account, isolated_env):
    assert cli(*setup_args(NAME)).code == 0
    pem = isolated_env / ".ssh" / f"{GROUP_NAME}.pem"
    pem.unlink()

    again = cli(*setup_args(NAME))

    assert again.code == 0, again.stderr
    assert f"No private key at {pem}" in " ".join(again.stderr.split())


# ---- 8. list shows what a killed run left -----------------------------------------------------------------

def test_list_shows_a_deployment_that_only_left_a_role_and_a_key_pair(cli, account):
    """A setup killed after its first wave (role, profile, key pair) but before the group: no group, no instance."""
    from amazonei_setup.aws.resources import iam

    ours = tags.tag_list("left", "arn:aws:iam::123456789012:user/moto", REGION)
    iam.create_role(account.iam, tags.resource_name("left"), ours)
    account.ec2.create_key_pair(KeyName=tags.resource_name("left"),
                                TagSpecifications=tags.tag_specs(["key-pair"], ours))
    elsewhere = tags.tag_list("east", "arn:aws:iam::123456789012:user/moto", "us-east-1")
    iam.create_role(account.iam, tags.resource_name("east"), elsewhere)  # lives in another region

    listed = cli("list", "--region", REGION, "--output", "json")

    assert listed.code == 0, listed.stderr
    [row] = listed.json["result"]["deployments"]
    assert (row["name"], row["state"]) == ("left", "no instance (partial)")
    assert sorted(row["left"]) == ["IAM role", "key pair"]
    assert row["teardown_command"].endswith(f"teardown --region {REGION} --name left")
    table = " ".join(cli("list", "--region", REGION).stdout.split())
    assert f"Remove it with: {row['teardown_command']}" in table


# ---- 4. lost replies: a create AWS performed but whose answer never arrived ------------------------------

def lose_the_first_reply(client, plain_client, operation: str) -> list[dict]:
    """AWS performs the first `operation` but its reply is lost (a 500 after the fact, a dropped connection);
    botocore's retry then reaches AWS again, which answers "already exists". Emulated by performing the call
    through an uninstrumented client before the real one goes out."""
    from botocore import xform_name

    lost: list[dict] = []

    def hook(params, **_):
        if not lost:
            lost.append(dict(params))
            getattr(plain_client, xform_name(operation))(**params)

    client.meta.events.register(f"before-parameter-build.{client.meta.service_model.service_name}.{operation}", hook)
    return lost


LOST = [("iam", "CreateRole"), ("iam", "CreateInstanceProfile"), ("ec2", "CreateSecurityGroup"),
        ("ec2", "CreateKeyPair")]


def test_a_create_whose_reply_was_lost_is_rolled_back_like_any_other(cli, account, isolated_env):
    from amazonei_setup.aws.client import Aws
    from tests.conftest import inject, snapshot

    plain = Aws(REGION)
    before = snapshot(plain)
    lost = {op: lose_the_first_reply(account.client(service), plain.client(service), op) for service, op in LOST}
    inject(account.ec2, "RunInstances", "InsufficientInstanceCapacity", "no capacity", status=400)

    result = cli(*setup_args(NAME))

    assert all(lost.values()), lost  # every create really went out twice
    assert result.code == 1, result.stderr
    said = " ".join(result.stderr.split())
    assert "Everything this run created was removed" in said
    assert snapshot(plain) == before  # nothing of it is left: no group, role, profile or key pair
    assert not (isolated_env / ".ssh" / f"{GROUP_NAME}.pem").exists()


def test_a_key_pair_whose_reply_was_lost_is_made_again_so_its_private_key_is_saved(cli, account, isolated_env):
    from amazonei_setup.aws.client import Aws

    plain = Aws(REGION)
    lose_the_first_reply(account.ec2, plain.ec2, "CreateKeyPair")

    result = cli(*setup_args(NAME), "--output", "json")

    assert result.code == 0, result.stderr
    pem = isolated_env / ".ssh" / f"{GROUP_NAME}.pem"
    assert pem.exists() and result.json["result"]["key_path"] == str(pem)
    [key] = plain.ec2.describe_key_pairs(KeyNames=[GROUP_NAME])["KeyPairs"]
    assert tags.as_dict(key["Tags"])[tags.DEPLOYMENT] == NAME


class RealEc2Endpoints:
    """What EC2 does with CreateVpcEndpoint and moto does not: a repeated ClientToken returns the endpoint the
    first call made, and a second private-DNS endpoint of one service in a VPC is refused."""

    def __init__(self, client, plain_client):
        from botocore.awsrequest import AWSResponse
        from botocore.exceptions import ClientError

        self.by_token: dict[str, dict] = {}
        self.lost = 0
        self.created = False  # the run has its endpoint (the retry was answered)

        def build(params, context, **_):
            token = params.get("ClientToken")
            context["client_token"] = token
            if not self.lost:  # the first create goes through, its reply is lost: botocore sends it again
                self.lost += 1
                made = plain_client.create_vpc_endpoint(**params)
                if token:
                    self.by_token[token] = made
                return
            if token in self.by_token:
                return
            taken = [e for e in plain_client.describe_vpc_endpoints(Filters=[
                {"Name": "vpc-id", "Values": [params["VpcId"]]},
                {"Name": "service-name", "Values": [params["ServiceName"]]}])["VpcEndpoints"]
                if e.get("PrivateDnsEnabled") and e["State"].lower() not in ("deleted", "deleting")]
            if taken and params.get("PrivateDnsEnabled", True):
                raise ClientError({"Error": {"Code": "InvalidParameter", "Message": (
                    "private-dns-enabled cannot be set because there is already a conflicting DNS domain for "
                    f"{params['ServiceName']} in the VPC {params['VpcId']}")}}, "CreateVpcEndpoint")

        def answer(context, **_):
            made = self.by_token.get(context.get("client_token"))
            if made is not None:
                self.created = True
                return AWSResponse("https://ec2.invalid", 200, {}, None), made

        client.meta.events.register("before-parameter-build.ec2.CreateVpcEndpoint", build)
        client.meta.events.register("before-call.ec2.CreateVpcEndpoint", answer)


def live_endpoints(ec2) -> list[str]:
    return [e["VpcEndpointId"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]
            if e["State"].lower() not in ("deleted", "deleting")]


def test_an_endpoint_whose_reply_was_lost_is_the_runs_own_and_rolled_back(cli, account):
    import time

    from botocore.exceptions import ClientError

    from amazonei_setup.aws.client import Aws

    plain = Aws(REGION)
    ec2 = RealEc2Endpoints(account.ec2, plain.ec2)

    def refuse_once_the_endpoint_exists(**_):
        # The launch and the endpoint are concurrent branches: fail the launch only after the endpoint was made.
        deadline = time.monotonic() + 60  # bounded, not a guess at how long it takes: ends when the endpoint exists
        while not ec2.created and time.monotonic() < deadline:
            time.sleep(0.01)
        raise ClientError({"Error": {"Code": "InsufficientInstanceCapacity", "Message": "no capacity"}},
                          "RunInstances")

    account.ec2.meta.events.register("before-call.ec2.RunInstances", refuse_once_the_endpoint_exists)

    result = cli(*setup_args(NAME))

    assert ec2.lost == 1
    assert result.code == 1, result.stderr
    assert "conflicting DNS domain" not in result.stderr
    assert "Everything this run created was removed" in " ".join(result.stderr.split())
    assert live_endpoints(plain.ec2) == []  # not billed on, invisible to list


def test_an_endpoint_whose_reply_was_lost_serves_the_deployment(cli, account):
    from amazonei_setup.aws.client import Aws

    plain = Aws(REGION)
    RealEc2Endpoints(account.ec2, plain.ec2)

    result = cli(*setup_args(NAME), "--output", "json")

    assert result.code == 0, result.stderr
    [endpoint] = live_endpoints(plain.ec2)
    assert ("vpc-endpoint", endpoint, "created") in {(r["kind"], r["id"], r["action"])
                                                     for r in result.json["result"]["resources"]}


# ---- 6, 7. one writer per deployment: a lock AWS makes atomic --------------------------------------------

def hold_the_lock(ssm, name: str = NAME, since: float | None = None, command: str = "setup", *,
                  renewing: bool = True) -> None:
    """What another run (another laptop, CI) holding deployment `name` leaves in the account. renewing: that run is
    alive, so every look at its lock finds a newer version (its lease renewed); otherwise it died."""
    import json
    import time

    from amazonei_setup.aws.resources import lock

    def value(renewals: int) -> str:
        return json.dumps({"run": "setup-otherrun", "command": command, "who": "ci", "host": "runner-7", "pid": 4242,
                           "since": time.time() if since is None else since, "lease": lock.LEASE_S,
                           "renewals": renewals})

    ssm.put_parameter(Name=lock.parameter_name(name), Type="String", Overwrite=False, Value=value(0))
    if renewing:  # as lock.Lease does: renew only while the lock is still this run's
        renewals, inside = [0], []

        def renew(params, **_):
            if inside or params.get("Name") != lock.parameter_name(name) or renewals[0] >= 1000:
                return
            inside.append(True)
            try:
                held = lock.current(ssm, name)
            finally:
                inside.clear()
            if held is not None and held.run == "setup-otherrun":
                renewals[0] += 1
                ssm.put_parameter(Name=lock.parameter_name(name), Type="String", Overwrite=True,
                                  Value=value(renewals[0]))

        ssm.meta.events.register("before-parameter-build.ssm.GetParameter", renew)


def test_setup_while_another_run_holds_the_name_changes_nothing(cli, account):
    from tests.conftest import snapshot

    before = snapshot(account)
    hold_the_lock(account.client("ssm"))

    result = cli(*setup_args(NAME))

    assert result.code == 1, result.stderr
    said = " ".join(result.stderr.split())
    assert "being changed by another run" in said and "runner-7" in said and "Traceback" not in said
    assert "renewed its lease" in said
    assert snapshot(account) == before


def test_teardown_while_another_run_holds_the_name_deletes_nothing_and_names_the_override(cli, account):
    from tests.conftest import snapshot

    assert cli(*setup_args(NAME)).code == 0
    before = snapshot(account)
    hold_the_lock(account.client("ssm"))

    result = cli("teardown", "--region", REGION, "--name", NAME, "--yes")

    assert result.code == 1, result.stderr
    said = " ".join(result.stderr.split())
    assert "being changed by another run" in said and "--force-unlock" in said
    assert snapshot(account) == before


def test_force_unlock_tears_down_under_a_live_looking_lock(cli, account):
    assert cli(*setup_args(NAME)).code == 0
    hold_the_lock(account.client("ssm"))

    result = cli("teardown", "--region", REGION, "--name", NAME, "--yes", "--force-unlock")

    assert result.code == 0, result.stderr
    assert "Took over the lock" in " ".join(result.stderr.split())
    assert account.iam.list_roles(PathPrefix="/amazonei-setup/")["Roles"] == []
    assert account.client("ssm").describe_parameters()["Parameters"] == []


def test_a_lock_nobody_renews_is_taken_over_once_its_lease_lapses(cli, account):
    hold_the_lock(account.client("ssm"), renewing=False)

    result = cli(*setup_args(NAME))

    assert result.code == 0, result.stderr
    said = " ".join(result.stderr.split())
    assert "waiting to see whether that run is alive" in said and "its lease lapsed" in said
    assert account.client("ssm").describe_parameters()["Parameters"] == []  # released at the end


def test_teardown_during_setup_is_refused_and_setup_reports_what_exists(cli, account):
    """Teardown started while setup launches: it must not delete pieces setup is using, and setup must not
    then report an instance teardown terminated."""
    seen: list = []

    def teardown_now(**_):
        if not seen:
            seen.append(cli("teardown", "--region", REGION, "--name", NAME, "--yes"))

    account.ec2.meta.events.register("before-call.ec2.RunInstances", teardown_now)

    result = cli(*setup_args(NAME), "--output", "json")

    [refused] = seen
    assert refused.code == 1 and "being changed by another run" in " ".join(refused.stderr.split())
    assert result.code == 0, result.stderr
    [instance] = [i for r in account.ec2.describe_instances(InstanceIds=[result.json["result"]["instance_id"]])[
        "Reservations"] for i in r["Instances"]]
    assert instance["State"]["Name"] == "running"
    assert account.iam.get_role(RoleName=GROUP_NAME)["Role"]


# ---- rollback removes exactly what exists, and says "removed" only after checking ---------------------------

def test_a_create_the_run_never_heard_back_from_is_found_by_its_tag_and_rolled_back(cli, account):
    """CreateSecurityGroup is performed but its reply lost, and the retry is throttled: the run fails without
    ever learning the group's id. Its run tag still finds it."""
    from amazonei_setup.aws.client import Aws
    from tests.conftest import inject, snapshot

    plain = Aws(REGION)
    before = snapshot(plain)
    lose_the_first_reply(account.ec2, plain.ec2, "CreateSecurityGroup")
    inject(account.ec2, "CreateSecurityGroup", "RequestLimitExceeded", "Request limit exceeded.", times=1)

    result = cli(*setup_args(NAME))

    assert result.code == 1, result.stderr
    assert "Everything this run created was removed" in " ".join(result.stderr.split())
    assert snapshot(plain) == before


def test_rollback_says_removed_only_after_checking(cli, account):
    """A delete that AWS acknowledged but did not carry out (eventual consistency, an emulator, a proxy) must not
    end in "everything was removed": the check by the run's tag names what is still there."""
    from tests.conftest import inject
    from tests.test_faults import respond

    respond(account.ec2, "DeleteSecurityGroup", lambda params: {})  # "done", and nothing was deleted
    inject(account.ec2, "RunInstances", "InsufficientInstanceCapacity", "no capacity", status=400)

    result = cli(*setup_args(NAME))

    assert result.code == 1, result.stderr
    said = " ".join(result.stderr.split())
    assert "Everything this run created was removed" not in said
    assert f"security-group {group(account.ec2)['GroupId']} (still there)" in said
    assert f"teardown --region {REGION} --name {NAME}" in said


def test_teardown_without_region_finds_where_the_deployment_lives(cli, account):
    from amazonei_setup.sandbox.account import seed_deep_learning_amis
    from tests.conftest import ACCOUNT

    seed_deep_learning_amis(ACCOUNT, OTHER_REGION)
    made = cli(*in_region(setup_args(NAME), OTHER_REGION), own_clients=True)
    assert made.code == 0, made.stderr
    east = account.in_region(OTHER_REGION)

    gone = cli("teardown", "--name", NAME, "--yes", "--output", "json")  # the fixture's clients are us-west-2's

    assert gone.code == 0, gone.stderr
    assert gone.json["result"]["region"] == OTHER_REGION and gone.json["result"]["found"] is True
    assert east.ec2.describe_security_groups(Filters=tags.filters_for(NAME))["SecurityGroups"] == []
    assert account.iam.list_roles(PathPrefix=tags.IAM_PATH)["Roles"] == []


def test_teardown_without_region_of_an_unknown_name_is_not_found_as_with_it(cli, account):
    result = cli("teardown", "--name", "nothing-here", "--yes")  # looked for in the default region (tests/test_loop.py)
    assert result.code == 1, result.stderr
    assert "No deployment named nothing-here in us-west-2, so nothing was deleted" in " ".join(result.stderr.split())
