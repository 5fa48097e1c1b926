"""`--access ssm`: no inbound port, reached through AWS Systems Manager Session Manager.

The security group opens no port 22, the role carries AWS's AmazonSSMManagedInstanceCore, the `Host NAME` block
reaches the instance with `ProxyCommand aws ssm start-session ...`, and "ready" waits for the SSM agent to report
Online. moto has no DescribeInstanceInformation: `agents` answers it from a before-call hook, as AWS would once
each instance's agent has registered. The AWS CLI and the Session Manager plugin are fakes on PATH (`tools`):
the tool only checks that they are there; `ssh -G` shows what ssh would run.
"""
from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from amazonei_setup.core import tags
from amazonei_setup.local import sshconfig
from tests.conftest import REGION, SSH_CIDR, snapshot

SSM_CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


@pytest.fixture
def tools(tmp_path, monkeypatch):
    """`aws` and `session-manager-plugin` on PATH (never run by these tests), and nothing else of the caller's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("aws", "session-manager-plugin"):
        path = bin_dir / name
        path.write_text("#!/bin/sh\nexit 1\n")
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return bin_dir


class Agents:
    """DescribeInstanceInformation as AWS answers it: each running instance of the account is Online after
    `online_after` calls (before that: not registered yet, then ConnectionLost)."""

    def __init__(self, account, online_after: int = 0):
        self.account = account
        self.online_after = online_after
        self.calls: list[dict] = []

    def __call__(self, params, **_):
        from botocore.awsrequest import AWSResponse

        self.calls.append(params)
        if len(self.calls) <= self.online_after // 2:
            listed = []
        else:
            status = "Online" if len(self.calls) > self.online_after else "ConnectionLost"
            reservations = self.account.ec2.describe_instances(Filters=[
                {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"]
            listed = [{"InstanceId": i["InstanceId"], "PingStatus": status, "ResourceType": "EC2Instance"}
                      for r in reservations for i in r["Instances"]]
        return AWSResponse("https://ssm.invalid", 200, {}, None), {"InstanceInformationList": listed}


@pytest.fixture
def agents(account):
    """Also seeds AmazonSSMManagedInstanceCore: moto loads no AWS managed policy unless told to."""
    from amazonei_setup.sandbox.account import _seed_managed_policies
    from tests.conftest import ACCOUNT

    _seed_managed_policies(ACCOUNT)
    answer = Agents(account)
    account.client("ssm").meta.events.register("before-call.ssm.DescribeInstanceInformation", answer)
    return answer


def ssm_args(name: str = "demo", *extra: str) -> list[str]:
    return ["--region", REGION, "--instance-type", "m5.xlarge", "--yes", "--name", name, "--access", "ssm", *extra]


def group_of(account, name: str) -> dict:
    return account.ec2.describe_security_groups(
        Filters=[{"Name": "tag:" + tags.DEPLOYMENT, "Values": [name]}])["SecurityGroups"][0]


def instance_of(account, name: str) -> dict:
    reservations = account.ec2.describe_instances(Filters=[
        {"Name": "tag:" + tags.DEPLOYMENT, "Values": [name]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]
    return reservations[0]["Instances"][0]


def ports(group: dict) -> set:
    return {rule.get("FromPort") for rule in group["IpPermissions"]}


def test_ssm_setup_opens_no_port_22_and_gives_the_role_session_manager(cli, account, tools, agents):
    run = cli(*ssm_args())
    assert run.code == 0, run.stderr
    group = group_of(account, "demo")
    assert 22 not in ports(group) and ports(group) == {443}  # only what EI needs: 443 from the group itself
    assert tags.as_dict(group["Tags"])[tags.ACCESS] == "ssm"
    assert tags.as_dict(instance_of(account, "demo")["Tags"])[tags.ACCESS] == "ssm"
    attached = account.iam.list_attached_role_policies(RoleName="amazonei-setup-demo")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [SSM_CORE]
    assert "Session Manager" in run.stderr  # the plan says how the instance is reached
    data = cli("teardown", "--name", "demo", "--yes", "--region", REGION)
    assert data.code == 0, data.stderr


def test_the_host_block_reaches_the_instance_through_session_manager(cli, account, tools, agents):
    run = cli(*ssm_args("demo", "--profile", "my team%1", "--output", "json"))
    assert run.code == 0, run.stderr
    instance_id = instance_of(account, "demo")["InstanceId"]
    config = sshconfig.config_file()
    resolved = subprocess.run(["ssh", "-G", "-F", str(config), "demo"], capture_output=True, text=True, check=True)
    options = dict(line.split(" ", 1) for line in resolved.stdout.splitlines() if " " in line)
    assert options["hostname"] == instance_id
    # ssh -G prints the ProxyCommand before expanding its % tokens; expand them as ssh does when it runs it.
    expanded = (options["proxycommand"].replace("%%", "\0").replace("%h", options["hostname"])
                .replace("%p", options["port"]).replace("\0", "%"))
    proxy = shlex.split(expanded)
    assert proxy == ["aws", "ssm", "start-session", "--target", instance_id, "--document-name",
                     "AWS-StartSSHSession", "--parameters", "portNumber=22", "--region", REGION,
                     "--profile", "my team%1"]
    # The printed command runs as printed: the same proxy, the instance id as the host.
    command = run.json["result"]["ssh_command"]
    assert "ProxyCommand=" in command and command.endswith(f"@{instance_id}")


def test_ready_waits_until_the_ssm_agent_reports_online(cli, account, tools, agents):
    agents.online_after = 4
    run = cli(*ssm_args("demo", "--output", "json"))
    assert run.code == 0, run.stderr
    assert len(agents.calls) == 5  # none listed, none listed, ConnectionLost twice, then Online
    assert "ssm" in run.json["result"]["waited_for"]
    assert run.json["result"]["ssm_check"] == "online"


def test_without_the_aws_cli_or_the_plugin_nothing_is_created(cli, account, monkeypatch, agents):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert not shutil.which("aws") and not shutil.which("session-manager-plugin")
    before = snapshot(account)
    run = cli(*ssm_args())
    assert run.code == 2
    assert "session-manager-plugin" in run.stderr and "Traceback" not in run.stderr
    assert len([line for line in run.stderr.splitlines() if line.startswith("error:")]) == 1
    assert snapshot(account) == before


def test_a_rerun_keeps_the_access_mode_and_a_flag_changes_it(cli, account, tools, agents):
    assert cli(*ssm_args()).code == 0
    again = cli("--region", REGION, "--yes", "--name", "demo")  # no --access: stays ssm, no address asked
    assert again.code == 0, again.stderr
    assert 22 not in ports(group_of(account, "demo"))
    to_ssh = cli("--region", REGION, "--yes", "--name", "demo", "--access", "ssh", "--ssh-cidr", SSH_CIDR)
    assert to_ssh.code == 0, to_ssh.stderr
    group = group_of(account, "demo")
    assert 22 in ports(group) and tags.as_dict(group["Tags"])[tags.ACCESS] == "ssh"
    assert tags.as_dict(instance_of(account, "demo")["Tags"])[tags.ACCESS] == "ssh"
    back = cli("--region", REGION, "--yes", "--name", "demo", "--access", "ssm")
    assert back.code == 0, back.stderr
    assert 22 not in ports(group_of(account, "demo"))


def test_ssh_cidr_with_ssm_access_is_refused(cli, account, tools):
    run = cli(*ssm_args("demo", "--ssh-cidr", SSH_CIDR))
    assert run.code == 2 and "--ssh-cidr" in run.stderr and "--access ssm" in run.stderr


def test_the_sandbox_refuses_ssm_access_in_one_sentence(cli, account):
    before = snapshot(account)
    run = cli("--sandbox", *ssm_args())
    assert run.code == 2 and "--sandbox" in run.stderr and "Systems Manager" in run.stderr
    assert snapshot(account) == before


def test_the_equivalent_command_repeats_ssm_access():
    from amazonei_setup.core.plan import Plan

    plan = Plan(name="demo", region=REGION, account_id="1", owner="me", instance_type="m5.xlarge",
                accelerator_type="eia2.medium", os_key="amazon-linux", ami_id="ami-1", ami_name="x",
                ssh_user="ec2-user", root_device="/dev/xvda", volume_size=100, vpc_id="vpc-1", subnet_id="subnet-1",
                availability_zone="us-west-2a", key_name="k", create_key=False, key_path=None, ssh_cidr="",
                role_name="r", profile_name="p", security_group_name="g", security_group_id=None, endpoint_id=None,
                access="ssm")
    words = shlex.split(plan.equivalent_command())
    assert words[words.index("--access") + 1] == "ssm" and "--ssh-cidr" not in words


def test_connect_and_start_reach_an_ssm_deployment_through_session_manager(cli, account, tools, agents):
    assert cli(*ssm_args()).code == 0
    instance_id = instance_of(account, "demo")["InstanceId"]
    printed = cli("connect", "--name", "demo", "--region", REGION, "--print", "--output", "json")
    assert printed.code == 0, printed.stderr
    words = shlex.split(printed.json["result"]["command"])
    assert words[-1] == f"ec2-user@{instance_id}"
    assert any(w.startswith("ProxyCommand=aws ssm start-session --target %h") for w in words)
    assert cli("stop", "--name", "demo", "--region", REGION, "--yes").code == 0
    agents.calls.clear()
    started = cli("start", "--name", "demo", "--region", REGION, "--yes", "--output", "json")
    assert started.code == 0, started.stderr
    assert agents.calls and started.json["result"]["ssm_check"] == "online"  # waited for the agent, not port 22
    block = sshconfig.read_block("demo")
    assert f"HostName {instance_id}" in block and "ProxyCommand aws ssm start-session" in block


# ---- a private instance: no public IP; the SSM agent reaches AWS through the VPC's NAT ----------------------------

def nat_subnet(account) -> str:
    """A default-VPC subnet whose route table sends 0.0.0.0/0 to a NAT gateway (as a private subnet's does)."""
    ec2 = account.ec2
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    subnet = next(s for s in subnets if s["AvailabilityZone"] == f"{REGION}a")
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet["SubnetId"], AllocationId=allocation)["NatGateway"]["NatGatewayId"]
    table = ec2.create_route_table(VpcId=subnet["VpcId"])["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet["SubnetId"])
    return subnet["SubnetId"]


def test_a_private_instance_behind_a_nat_has_no_public_ip(cli, account, tools, agents):
    subnet = nat_subnet(account)
    run = cli(*ssm_args("demo", "--no-public-ip", "--subnet-id", subnet, "--output", "json"))
    assert run.code == 0, run.stderr
    instance = instance_of(account, "demo")
    assert not instance.get("PublicIpAddress") and 22 not in ports(group_of(account, "demo"))
    assert "NAT" in run.stderr  # the plan says which way the agent reaches AWS
    assert f"HostName {instance['InstanceId']}" in sshconfig.read_block("demo")
    assert run.json["result"]["ssh_command"].endswith(f"@{instance['InstanceId']}")


def ssm_endpoints_of(account, vpc_id: str | None = None) -> dict[str, dict]:
    """Service (ssm, ssmmessages, ec2messages) -> its live endpoint in the account (one VPC's)."""
    found = {}
    for endpoint in account.ec2.describe_vpc_endpoints()["VpcEndpoints"]:
        service = endpoint["ServiceName"].rsplit(".", 1)[-1]
        live = endpoint["State"].lower() not in ("deleted", "deleting")
        if service in ("ssm", "ssmmessages", "ec2messages") and live and vpc_id in (None, endpoint["VpcId"]):
            found[service] = endpoint
    return found


def test_a_private_instance_with_no_way_out_gets_session_managers_endpoints(cli, account, tools, agents):
    run = cli(*ssm_args("demo", "--no-public-ip", "--output", "json"))
    assert run.code == 0, run.stderr
    instance = instance_of(account, "demo")
    assert not instance.get("PublicIpAddress")
    group = group_of(account, "demo")
    endpoints = ssm_endpoints_of(account)
    assert sorted(endpoints) == ["ec2messages", "ssm", "ssmmessages"]
    for endpoint in endpoints.values():  # where the agent reaches them: private DNS, the instance's subnet, its group
        assert endpoint["PrivateDnsEnabled"] and endpoint["SubnetIds"] == [instance["SubnetId"]]
        assert [g["GroupId"] for g in endpoint["Groups"]] == [group["GroupId"]]
        assert tags.as_dict(endpoint["Tags"])[tags.DEPLOYMENT] == "demo"
    assert ports(group) == {443}  # 443 from the group itself reaches them; still no port 22
    plan = run.stderr.split("Proceed", 1)[0] if "Proceed" in run.stderr else run.stderr
    assert "+$0.03/h" in plan and "ssmmessages" in plan  # the plan says which way out, and what it costs
    down = cli("teardown", "--name", "demo", "--yes", "--region", REGION)
    assert down.code == 0, down.stderr
    assert ssm_endpoints_of(account) == {}


def test_a_rerun_of_a_private_deployment_makes_a_deleted_endpoint_again(cli, account, tools, agents):
    assert cli(*ssm_args("demo", "--no-public-ip")).code == 0
    steady = cli("--region", REGION, "--yes", "--name", "demo", "--output", "json")  # no flags: kept as it is
    assert steady.code == 0, steady.stderr
    assert "SSM endpoint" in steady.stderr and "+$" not in steady.stderr
    lost = ssm_endpoints_of(account)["ssmmessages"]["VpcEndpointId"]
    account.ec2.delete_vpc_endpoints(VpcEndpointIds=[lost])  # by hand, in the console: the agent loses its way
    again = cli("--region", REGION, "--yes", "--name", "demo")
    assert again.code == 0, again.stderr
    endpoints = ssm_endpoints_of(account)
    assert sorted(endpoints) == ["ec2messages", "ssm", "ssmmessages"]
    assert endpoints["ssmmessages"]["VpcEndpointId"] != lost
    assert "+$0.01/h" in " ".join(again.stderr.split())  # the plan prices the one it makes again
    assert not instance_of(account, "demo").get("PublicIpAddress")


def test_session_managers_endpoints_are_shared_and_leave_with_the_last_deployment(cli, account, tools, agents):
    assert cli(*ssm_args("first", "--no-public-ip")).code == 0
    made = {s: e["VpcEndpointId"] for s, e in ssm_endpoints_of(account).items()}
    second = cli(*ssm_args("second", "--no-public-ip"))
    assert second.code == 0, second.stderr
    assert {s: e["VpcEndpointId"] for s, e in ssm_endpoints_of(account).items()} == made  # shared, not made again
    assert "+$" not in second.stderr  # nothing new to pay for
    first_down = cli("teardown", "--name", "first", "--yes", "--region", REGION)
    assert first_down.code == 0, first_down.stderr
    left = ssm_endpoints_of(account)
    assert {s: e["VpcEndpointId"] for s, e in left.items()} == made  # the second still needs them
    assert all([g["GroupId"] for g in e["Groups"]] == [group_of(account, "second")["GroupId"]] for e in left.values())
    assert cli("teardown", "--name", "second", "--yes", "--region", REGION).code == 0
    assert ssm_endpoints_of(account) == {}


def test_the_vpcs_own_session_manager_endpoints_are_used_and_kept(cli, account, tools, agents):
    ec2 = account.ec2
    subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    theirs = {s: ec2.create_vpc_endpoint(VpcEndpointType="Interface", VpcId=subnet["VpcId"],
                                         ServiceName=f"com.amazonaws.{REGION}.{s}", SubnetIds=[subnet["SubnetId"]],
                                         PrivateDnsEnabled=True)["VpcEndpoint"]["VpcEndpointId"]
              for s in ("ssm", "ssmmessages")}
    run = cli(*ssm_args("demo", "--no-public-ip", "--subnet-id", subnet["SubnetId"]))
    assert run.code == 0, run.stderr
    endpoints = ssm_endpoints_of(account)
    assert {s: endpoints[s]["VpcEndpointId"] for s in theirs} == theirs  # the VPC's own, joined
    assert tags.as_dict(endpoints["ec2messages"].get("Tags"))[tags.DEPLOYMENT] == "demo"  # only the missing one made
    assert cli("teardown", "--name", "demo", "--yes", "--region", REGION).code == 0
    after = ssm_endpoints_of(account)
    assert {s: e["VpcEndpointId"] for s, e in after.items()} == theirs  # theirs stay; ours went
    group_ids = {g["GroupId"] for e in after.values() for g in e["Groups"]}
    assert not any(g.startswith("sg-") and g in {x["GroupId"] for x in ec2.describe_security_groups()["SecurityGroups"]
                                                  if x["GroupName"] != "default"} for g in group_ids)


def test_a_setup_that_loses_the_race_for_an_endpoint_joins_the_winners(cli, account, tools, agents):
    """Another setup in the VPC creates each endpoint between this one's look and its create: EC2 refuses a second
    private-DNS endpoint of a service in a VPC ("conflicting DNS domain"), and this setup joins the winner's."""
    from botocore.exceptions import ClientError

    from tests.test_permissions import plain_client

    plain = plain_client("ec2")
    subnet = plain.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    winners = {}

    def the_other_run_wins(params, **_):
        service = params["ServiceName"].rsplit(".", 1)[-1]
        if service not in ("ssm", "ssmmessages", "ec2messages"):
            return
        winners[service] = plain.create_vpc_endpoint(
            VpcEndpointType="Interface", VpcId=params["VpcId"], ServiceName=params["ServiceName"],
            SubnetIds=[subnet["SubnetId"]], PrivateDnsEnabled=True)["VpcEndpoint"]["VpcEndpointId"]
        raise ClientError({"Error": {"Code": "InvalidParameter", "Message": (
            "private-dns-enabled cannot be set because there is already a conflicting DNS domain for "
            f"{params['ServiceName']} in the VPC {params['VpcId']}")}}, "CreateVpcEndpoint")

    account.ec2.meta.events.register("before-parameter-build.ec2.CreateVpcEndpoint", the_other_run_wins)
    run = cli(*ssm_args("demo", "--no-public-ip", "--subnet-id", subnet["SubnetId"]))
    assert run.code == 0, run.stderr
    endpoints = ssm_endpoints_of(account)
    assert {s: e["VpcEndpointId"] for s, e in endpoints.items()} == winners  # joined, none made beside them
    group = group_of(account, "demo")["GroupId"]
    assert all(group in [g["GroupId"] for g in e["Groups"]] for e in endpoints.values())
    assert "Another run created the VPC's ssmmessages endpoint first" in run.stderr
    assert cli("teardown", "--name", "demo", "--yes", "--region", REGION).code == 0
    assert {s: e["VpcEndpointId"] for s, e in ssm_endpoints_of(account).items()} == winners  # not ours to delete


def test_a_failed_launch_takes_back_the_session_manager_endpoints_it_made(cli, account, tools, agents):
    import threading

    made = []
    all_made = threading.Event()

    def count(parsed, **_):
        if parsed["VpcEndpoint"]["ServiceName"].rsplit(".", 1)[-1] in ("ssm", "ssmmessages", "ec2messages"):
            made.append(parsed["VpcEndpoint"]["VpcEndpointId"])
        if len(made) == 3:
            all_made.set()

    def refuse(**_):  # once the three endpoints exist, so the rollback has them to take back
        from botocore.exceptions import ClientError

        assert all_made.wait(10)
        raise ClientError({"Error": {"Code": "InsufficientInstanceCapacity", "Message": "no capacity"}}, "RunInstances")

    before = snapshot(account)
    account.ec2.meta.events.register("after-call.ec2.CreateVpcEndpoint", count)
    account.ec2.meta.events.register("before-call.ec2.RunInstances", refuse)
    run = cli(*ssm_args("demo", "--no-public-ip"))
    assert run.code != 0 and "Traceback" not in run.stderr
    assert len(made) == 3
    assert snapshot(account) == before


def private_subnet(account) -> str:
    """A subnet of the default VPC that maps no public IP and whose route table (the VPC's main one, here) sends
    0.0.0.0/0 to no internet gateway: a private subnet."""
    ec2 = account.ec2
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    return ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.200.0/24",
                             AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]


def test_a_private_subnet_means_no_public_ip_without_the_flag(cli, account, tools, agents):
    subnet = private_subnet(account)
    run = cli(*ssm_args("demo", "--subnet-id", subnet))
    assert run.code == 0, run.stderr
    assert not instance_of(account, "demo").get("PublicIpAddress")
    assert "private subnet" in run.stderr
    assert sorted(ssm_endpoints_of(account)) == ["ec2messages", "ssm", "ssmmessages"]


def test_port_22_in_a_private_subnet_is_refused_before_anything_is_created(cli, account, tools):
    subnet = private_subnet(account)
    before = snapshot(account)
    run = cli("--region", REGION, "--instance-type", "m5.xlarge", "--yes", "--name", "demo", "--ssh-cidr", SSH_CIDR,
              "--subnet-id", subnet)
    assert run.code == 2 and "Traceback" not in run.stderr
    error = run.stderr.split("error: ", 1)[1]
    assert subnet in error and "private subnet" in error and "--access ssm" in error
    assert snapshot(account) == before


def test_no_public_ip_needs_ssm_access(cli, account, tools):
    run = cli("--region", REGION, "--instance-type", "m5.xlarge", "--yes", "--name", "demo", "--ssh-cidr", SSH_CIDR,
              "--no-public-ip")
    assert run.code == 2 and "--access ssm" in run.stderr


def test_a_private_instance_is_started_and_connected_to_by_its_id(cli, account, tools, agents):
    subnet = nat_subnet(account)
    assert cli(*ssm_args("demo", "--no-public-ip", "--subnet-id", subnet)).code == 0
    instance_id = instance_of(account, "demo")["InstanceId"]
    assert cli("stop", "--name", "demo", "--region", REGION, "--yes").code == 0
    started = cli("start", "--name", "demo", "--region", REGION, "--yes", "--output", "json")
    assert started.code == 0, started.stderr
    assert not instance_of(account, "demo").get("PublicIpAddress")
    printed = cli("connect", "--name", "demo", "--region", REGION, "--print", "--output", "json")
    assert printed.code == 0, printed.stderr
    assert printed.json["result"]["command"].endswith(f"@{instance_id}")


def test_against_aws_ready_also_means_ssh_answers_through_the_proxy(account, tools, agents):
    """As against real AWS (Environment(emulated=False)): once the agent is Online, setup runs ssh through the
    Session Manager ProxyCommand (here a fake `ssh` on PATH that says no twice, then yes) before saying ready."""
    from tests.test_day2 import real

    calls = tools / "ssh-calls"
    fake = tools / "ssh"
    fake.write_text(f"""#!/bin/sh
case " $* " in *" -G "*) exec /usr/bin/ssh "$@";; esac
echo "$@" >> {calls}
[ "$(wc -l < {calls})" -ge 3 ]
""")
    fake.chmod(0o755)
    run = real(account, *ssm_args("demo", "--output", "json"))
    assert run.code == 0, run.stderr
    # The readiness checks (`... true`); the accelerator probe that follows once SSH answers is another call.
    tried = [line for line in calls.read_text().splitlines() if line.endswith(" true")]
    instance_id = instance_of(account, "demo")["InstanceId"]
    assert len(tried) == 3 and all(line.endswith(f"ec2-user@{instance_id} true") for line in tried)
    assert "ProxyCommand=aws ssm start-session --target %h" in tried[0]
    assert run.json["result"]["ssh_check"] == "answers" and "ssh" in run.json["result"]["waited_for"]


def test_export_deploy_with_ssm_waits_for_the_agent_and_writes_the_proxy_host_block(cli, account, tools, agents):
    agents.online_after = 2
    run = cli("export", *ssm_args("stacked"), "--deploy", "--output", "json")
    assert run.code == 0, run.stderr
    assert run.json["result"]["ssm_check"] == "online" and len(agents.calls) == 3
    assert 22 not in ports(group_of(account, "stacked"))
    assert "ProxyCommand aws ssm start-session" in sshconfig.read_block("stacked")
