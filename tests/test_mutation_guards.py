"""Behaviour that a one-line bug used to break without any test noticing (bench/mutants.py applies those bugs and
runs these tests; docs/TESTING.md lists them). Each test asserts what a user meets or what the (mock) account
holds: a quota check's verdict, the alarm CloudWatch would evaluate, who holds the lock, the figures and commands
printed, never the text of our own code.
"""
from __future__ import annotations

import ast
import json
import statistics
import time
from datetime import timedelta

import boto3
import pytest

from amazonei_setup.aws.resources import lock
from amazonei_setup.core import capacity, tags
from tests.conftest import REGION, setup_args


def words(text: str) -> str:
    return " ".join(text.split())


def real_ec2():
    """An uninstrumented client on the same moto account."""
    return boto3.client("ec2", region_name=REGION)


def live(ec2, name: str) -> list[dict]:
    pages = ec2.get_paginator("describe_instances").paginate(Filters=[
        {"Name": f"tag:{tags.DEPLOYMENT}", "Values": [name]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def image_id() -> str:
    return real_ec2().describe_images(Owners=["amazon"])["Images"][0]["ImageId"]


# ---- quotas ------------------------------------------------------------------------------------------------------

# AWS's codes for EC2's Running On-Demand vCPU quotas, as the Service Quotas console and
# `aws service-quotas list-service-quotas --service-code ec2` list them (documented in "Amazon EC2 service quotas",
# https://docs.aws.amazon.com/ec2/latest/instancetypes/ec2-instance-quotas.html). Written out here, not read from
# capacity.py: a typo there must fail this table.
AWS_QUOTA_CODES = {
    "m5.xlarge": ("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"),
    "t3.large": ("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"),
    "g4dn.xlarge": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "g5.xlarge": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "g6.xlarge": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "vt1.3xlarge": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "inf2.xlarge": ("L-1945791B", "Running On-Demand Inf instances"),
    "inf1.xlarge": ("L-1945791B", "Running On-Demand Inf instances"),
    "p3.2xlarge": ("L-417A185B", "Running On-Demand P instances"),
}


class TestQuota:
    @pytest.mark.parametrize("instance_type", sorted(AWS_QUOTA_CODES))
    def test_each_type_is_checked_against_awss_own_quota_code(self, instance_type):
        code, name = AWS_QUOTA_CODES[instance_type]
        assert capacity.quota_code(instance_type) == code
        assert capacity.QUOTA_NAMES[code] == name

    def test_the_preflight_asks_service_quotas_for_the_g_and_vt_code(self, cli, account, quota_of):
        asked = []
        account.client("service-quotas").meta.events.register(
            "before-parameter-build.service-quotas.GetServiceQuota",
            lambda params, **_: asked.append(params.get("QuotaCode")))
        run = cli(*setup_args("gpu", "--dry-run"), "--instance-type", "g4dn.xlarge", "--output", "json")
        assert "L-DB2E81BA" in asked, (asked, run.stderr)

    def test_spot_instances_do_not_count_against_the_on_demand_quota(self, cli, account, quota_of):
        real_ec2().run_instances(ImageId=image_id(), InstanceType="m5.xlarge", MinCount=1, MaxCount=1,
                                 InstanceMarketOptions={"MarketType": "spot"})
        quota_of(capacity.STANDARD, 4)  # room for our m5.xlarge only if the Spot one is not counted
        run = cli(*setup_args("beside-spot"), "--output", "json")
        assert run.code == 0, run.stderr
        assert run.json["result"]["quota"]["in_use"] == 0

    def test_in_use_vcpus_are_cores_times_threads(self, cli, account, quota_of):
        real_ec2().run_instances(ImageId=image_id(), InstanceType="m5.xlarge", MinCount=1, MaxCount=1)

        def with_cpu_options(parsed, **_):  # AWS's instances carry them; moto's do not
            for reservation in parsed.get("Reservations", []):
                for instance in reservation["Instances"]:
                    instance["CpuOptions"] = {"CoreCount": 2, "ThreadsPerCore": 2}

        account.ec2.meta.events.register("after-call.ec2.DescribeInstances", with_cpu_options)
        quota_of(capacity.STANDARD, 7)  # 4 in use + 4 for ours = 8: short
        before = len(real_ec2().describe_instances()["Reservations"])
        run = cli(*setup_args("threads"), "--output", "json")
        assert run.code == 1, run.stderr
        assert run.json["error"]["code"] == "quota"
        assert "4 are in use" in words(run.stderr)
        assert len(real_ec2().describe_instances()["Reservations"]) == before  # nothing launched

    def test_a_rerun_that_starts_a_stopped_instance_is_checked_against_the_quota(self, cli, account, quota_of):
        assert cli(*setup_args("nap")).code == 0
        (instance,) = live(real_ec2(), "nap")
        real_ec2().stop_instances(InstanceIds=[instance["InstanceId"]])
        quota_of(capacity.STANDARD, 2)  # a stopped m5.xlarge needs 4 to start
        run = cli(*setup_args("nap"), "--output", "json")
        assert run.code == 1, run.stdout
        assert run.json["error"]["code"] == "quota"
        assert [i["State"]["Name"] for i in live(real_ec2(), "nap")] == ["stopped"]


# ---- the lock (a lease) ------------------------------------------------------------------------------------------

LOCKED = "leased"


def aws_clock_says_modified(ssm, seconds_ago: float) -> None:
    """AWS's clock: the parameter was last written `seconds_ago` before each reply."""
    def older(parsed, **_):
        if "Parameter" in parsed:
            parsed["Parameter"]["LastModifiedDate"] -= timedelta(seconds=seconds_ago)

    ssm.meta.events.register("after-call.ssm.GetParameter", older)


class TestLock:
    def test_a_live_run_on_this_machine_between_renewals_keeps_its_lock(self, account):
        ssm = account.client("ssm")
        assert lock.acquire(ssm, LOCKED, "setup-live", "setup", "me")[0]  # this process: alive
        aws_clock_says_modified(ssm, 45)  # three renewals of 15 s missed (a slow network): still inside the lease
        with pytest.raises(lock.Held):
            lock.acquire(ssm, LOCKED, "teardown-other", "teardown", "me", wait=False)
        assert lock.current(ssm, LOCKED).run == "setup-live"

    def test_a_live_run_elsewhere_that_renews_is_never_taken_over(self, account):
        ssm = account.client("ssm")
        value = json.loads(lock.value_for("setup-remote", "setup", "ci", since=time.time()))
        value["host"] = "runner-7"  # another machine: only its renewals say it is alive

        def renew(**_):
            ssm.put_parameter(Name=lock.parameter_name(LOCKED), Type="String", Overwrite=True,
                              Value=json.dumps({**value, "renewals": value.get("renewals", 0) + 1}))

        renew()
        aws_clock_says_modified(ssm, 45)
        looks = []
        with pytest.raises(lock.Held):
            lock.acquire(ssm, LOCKED, "teardown-me", "teardown", "me", sleep=lambda s: (looks.append(s), renew()))
        assert lock.current(ssm, LOCKED).run == "setup-remote"

    def test_a_release_never_removes_the_lock_another_run_took_over(self, account):
        ssm = account.client("ssm")
        assert lock.acquire(ssm, LOCKED, "setup-old", "setup", "me")[0]
        taken, _ = lock.acquire(ssm, LOCKED, "setup-new", "setup", "me", force=True)
        assert taken
        lock.release(ssm, LOCKED, "setup-old")  # the old run, finishing late
        assert lock.current(ssm, LOCKED).run == "setup-new"


# ---- the idle alarm, evaluated as CloudWatch would --------------------------------------------------------------

STATS = {"Maximum": max, "Minimum": min, "Average": statistics.fmean, "Sum": sum, "SampleCount": len}
COMPARE = {"GreaterThanOrEqualToThreshold": lambda v, t: v >= t, "GreaterThanThreshold": lambda v, t: v > t,
           "LessThanThreshold": lambda v, t: v < t, "LessThanOrEqualToThreshold": lambda v, t: v <= t}
_ALLOWED = (ast.Expression, ast.Call, ast.Compare, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Name, ast.Constant,
            ast.Load, ast.And, ast.Or, ast.Not, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Lt, ast.LtE, ast.Gt,
            ast.GtE, ast.Eq, ast.NotEq, ast.USub)


def metric_math(expression: str, values: dict[str, float]) -> float:
    """CloudWatch metric math for one period, as far as scalar IF/AND/OR/NOT, comparisons and arithmetic go."""
    python = (expression.replace(" AND ", " and ").replace(" OR ", " or ").replace("&&", " and ")
              .replace("||", " or ").replace("NOT ", "not "))
    tree = ast.parse(python, mode="eval")
    for node in ast.walk(tree):
        assert isinstance(node, _ALLOWED), f"metric math this evaluator does not know: {ast.dump(node)}"
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name) and node.func.id == "IF", ast.dump(node)
    names = {"IF": lambda cond, yes, no: yes if cond else no, **values}
    return float(eval(compile(tree, "<metric math>", "eval"), {"__builtins__": {}}, names))  # noqa: S307


def verdict(alarm: dict, samples: list[dict[str, list[float]] | None]) -> str:
    """ALARM or OK for an alarm as DescribeAlarms returns it, over periods of raw samples (one dict per period:
    metric name -> the samples in that period; None: no data, as from a stopped instance)."""
    stats = [m for m in alarm["Metrics"] if "MetricStat" in m]
    (expression,) = [m for m in alarm["Metrics"] if m.get("ReturnData", True) and "Expression" in m]
    points: list[float | None] = []
    for period in samples:
        if period is None:
            points.append(None)
            continue
        values = {m["Id"]: STATS[m["MetricStat"]["Stat"]](period[m["MetricStat"]["Metric"]["MetricName"]])
                  for m in stats}
        points.append(metric_math(expression["Expression"], values))
    window = points[-alarm["EvaluationPeriods"]:]
    missing = alarm.get("TreatMissingData", "missing")
    compare = COMPARE[alarm["ComparisonOperator"]]
    breaching = sum(1 for p in window if (p is None and missing == "breaching") or
                    (p is not None and compare(p, alarm["Threshold"])))
    return "ALARM" if breaching >= alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"]) else "OK"


def period(cpu: list[float], network_bytes_per_minute: float) -> dict[str, list[float]]:
    """Five one-minute samples of one 5-minute period."""
    return {"CPUUtilization": cpu, "NetworkIn": [network_bytes_per_minute] * 5,
            "NetworkOut": [network_bytes_per_minute] * 5}


IDLE = period([1, 0, 2, 1, 0], 20_000)
BUSY_CPU = period([80, 75, 90, 85, 70], 20_000)
BUSY_NETWORK = period([1, 0, 2, 1, 0], 10_000_000)  # an EI host: the model runs on the accelerator, over the network
BURSTY = period([0, 0, 0, 0, 20], 20_000)  # a short job every period: average 4 %, maximum 20 %


class TestIdleAlarm:
    def alarms_of(self, account, name: str) -> list[dict]:
        cloudwatch = account.client("cloudwatch")
        found = [a for a in cloudwatch.describe_alarms()["MetricAlarms"] if a["AlarmName"].startswith(
            f"amazonei-setup-{name}-idle-")]
        for each in found:
            each["Tags"] = tags.as_dict(cloudwatch.list_tags_for_resource(ResourceARN=each["AlarmArn"])["Tags"])
        return found

    def test_only_a_box_idle_on_cpu_and_network_for_the_whole_time_is_stopped(self, cli, account):
        made = cli(*setup_args("idle"), "--output", "json")
        assert made.code == 0, made.stderr
        instance_id = made.json["result"]["instance_id"]
        on = cli("idle-stop", "--name", "idle", "30")  # no --region: the deployment's tags say where
        assert on.code == 0, on.stderr
        (alarm,) = self.alarms_of(account, "idle")
        n = alarm["EvaluationPeriods"]
        assert n * 5 == 30
        for m in alarm["Metrics"]:
            if "MetricStat" in m:
                assert m["MetricStat"]["Metric"]["Namespace"] == "AWS/EC2"
                assert m["MetricStat"]["Metric"]["Dimensions"] == [{"Name": "InstanceId", "Value": instance_id}]
                assert m["MetricStat"]["Period"] == 300
        series = {
            "idle throughout": [IDLE] * n,
            "busy CPU, quiet network": [BUSY_CPU] * n,
            "idle CPU, busy network": [BUSY_NETWORK] * n,
            "bursty CPU": [BURSTY] * n,
            "idle but the last period busy": [IDLE] * (n - 1) + [BUSY_CPU],
            "idle but one period busy on the network": [IDLE] * (n - 2) + [BUSY_NETWORK, IDLE],
            "no data (stopped)": [None] * n,
            "idle, then stopped": [IDLE] * (n // 2) + [None] * (n - n // 2),
        }
        verdicts = {what: verdict(alarm, periods) for what, periods in series.items()}
        assert verdicts == {what: ("ALARM" if what == "idle throughout" else "OK") for what in series}

    def test_the_alarm_stops_the_instance_in_its_own_region_and_says_where_it_lives(self, cli, account):
        made = cli(*setup_args("where", "--count", "2"), "--idle-stop", "30", "--output", "json")
        assert made.code == 0, made.stderr
        assert cli("setup", "--name", "later", "--instance-type", "m5.xlarge", "--yes", "--region", REGION,
                   "--ssh-cidr", "198.51.100.4/32").code == 0
        on = cli("idle-stop", "--name", "later", "45")  # no --region
        assert on.code == 0, on.stderr
        found = self.alarms_of(account, "where") + self.alarms_of(account, "later")
        assert len(found) == 3
        for alarm in found:
            assert alarm["AlarmActions"] == [f"arn:aws:automate:{REGION}:ec2:stop"], alarm["AlarmName"]
            assert alarm["ActionsEnabled"] is True
            assert alarm["Tags"][tags.REGION] == REGION, alarm["AlarmName"]
            assert alarm["Tags"][tags.CREATED_BY] == tags.TOOL
            assert alarm["Tags"][tags.DEPLOYMENT] in ("where", "later")


# ---- zone failover -----------------------------------------------------------------------------------------------

NO_CAPACITY = ("InsufficientInstanceCapacity", "We currently do not have sufficient capacity in the Availability "
               "Zone you requested.")


def refuse_in(ec2, zones: set[str]) -> None:
    """RunInstances answers InsufficientInstanceCapacity in the subnets of `zones` (raised before moto sees it)."""
    from botocore.exceptions import ClientError

    def hook(params, **_):
        subnet = (params.get("NetworkInterfaces") or [{}])[0].get("SubnetId") or params.get("SubnetId")
        az_of = {s["SubnetId"]: s["AvailabilityZone"] for s in real_ec2().describe_subnets()["Subnets"]}
        if az_of.get(subnet) in zones:
            code, message = NO_CAPACITY
            raise ClientError({"Error": {"Code": code, "Message": message},
                               "ResponseMetadata": {"HTTPStatusCode": 500}}, "RunInstances")

    ec2.meta.events.register("before-parameter-build.ec2.RunInstances", hook)


def default_subnet(az: str) -> str:
    (subnet,) = real_ec2().describe_subnets(Filters=[{"Name": "availability-zone", "Values": [az]},
                                                     {"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    return subnet["SubnetId"]


def second_subnet(az: str, cidr: str) -> str:
    """Another public subnet of the default VPC in `az` (fewer addresses than the default one's /20)."""
    ec2 = real_ec2()
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
    ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
    return subnet


def endpoints() -> list[dict]:
    return [e for e in real_ec2().describe_vpc_endpoints()["VpcEndpoints"] if e["State"].lower() == "available"]


def zones_of(subnet_ids) -> list[str]:
    found = real_ec2().describe_subnets(SubnetIds=list(subnet_ids))["Subnets"]
    return sorted(s["AvailabilityZone"] for s in found)


class TestFailover:
    def test_a_zone_the_endpoint_serves_through_another_subnet_gets_no_second_subnet(self, cli, account):
        other = second_subnet("us-west-2b", "172.31.64.0/24")
        first = cli(*setup_args("first"), "--subnet-id", other, "--output", "json")  # the endpoint: 2b via `other`
        assert first.code == 0, first.stderr
        refuse_in(account.ec2, {"us-west-2a"})
        moved = cli(*setup_args("moved"), "--new-key", "--output", "json")
        assert moved.code == 0, moved.stderr
        assert moved.json["result"]["availability_zone"] == "us-west-2b"
        (endpoint,) = endpoints()
        served = zones_of(endpoint["SubnetIds"])
        assert served == sorted(set(served)), f"AWS allows one subnet per zone: {endpoint['SubnetIds']}"
        assert "us-west-2b" in served

    def test_failover_launches_in_the_zones_subnet_with_the_most_free_addresses(self, cli, account):
        small = second_subnet("us-west-2b", "172.31.64.0/28")  # 11 free addresses against the default's 4,091
        refuse_in(account.ec2, {"us-west-2a"})
        moved = cli(*setup_args("roomy"), "--output", "json")
        assert moved.code == 0, moved.stderr
        (instance,) = live(real_ec2(), "roomy")
        assert instance["SubnetId"] == default_subnet("us-west-2b") != small

    def test_ei_is_ready_only_once_the_endpoint_serves_the_new_zone(self, cli, account):
        """Adding a zone's subnet makes the endpoint pending again for a while (AWS; moto is never pending)."""
        seen: list[str] = []
        modified = []

        def after_modify(parsed, **_):
            modified.append(len(seen))

        def pending_for_a_while(parsed, **_):
            for each in parsed.get("VpcEndpoints", []):
                if modified and len(seen) - modified[0] < 3:
                    each["State"] = "pending"
                seen.append(each["State"])

        account.ec2.meta.events.register("after-call.ec2.ModifyVpcEndpoint", after_modify)
        account.ec2.meta.events.register("after-call.ec2.DescribeVpcEndpoints", pending_for_a_while)
        refuse_in(account.ec2, {"us-west-2a"})
        moved = cli(*setup_args("served"))
        assert moved.code == 0, moved.stderr
        assert modified, "the failover added the new zone's subnet"
        after = seen[modified[0]:]
        assert "pending" in after and after[-1].lower() == "available", after
        said = moved.stderr
        assert said.rindex("EI ready") > said.index("to EI endpoint"), said


# ---- ~/.ssh/config -----------------------------------------------------------------------------------------------

def user_ssh_config(home, text: str):
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "config").write_text(text)
    return ssh_dir / "config"


def our_hosts() -> list[str]:
    from amazonei_setup.local import sshconfig

    path = sshconfig.config_file()
    if not path.exists():
        return []
    return [w for line in path.read_text().splitlines() if line.strip().lower().startswith("host ")
            for w in line.split()[1:]]


class TestSshConfig:
    def test_a_symlinked_ssh_config_stays_a_link_and_its_target_gets_the_include(self, cli, account, isolated_env):
        from amazonei_setup.local import sshconfig

        dotfiles = isolated_env / "dotfiles"
        dotfiles.mkdir()
        target = dotfiles / "ssh_config"
        target.write_text("Host work\n    HostName work.example.com\n")
        (isolated_env / ".ssh").mkdir(mode=0o700)
        link = isolated_env / ".ssh" / "config"
        link.symlink_to(target)
        assert cli(*setup_args("linked")).code == 0
        assert link.is_symlink() and link.resolve() == target.resolve()
        text = target.read_text()
        assert f"Include {sshconfig.config_file()}" in text
        assert text.endswith("Host work\n    HostName work.example.com\n")  # the user's lines kept

    def test_the_users_own_lower_case_host_line_is_left_to_them(self, cli, account, isolated_env):
        mine = "host demo\n    User alice\n"  # ssh_config keywords are case-insensitive
        config = user_ssh_config(isolated_env, mine)
        run = cli(*setup_args("demo"))
        assert run.code == 0, run.stderr
        assert "demo" not in our_hosts()
        assert config.read_text().endswith(mine)

    def test_a_fleets_later_member_name_the_user_has_is_left_to_them(self, cli, account, isolated_env):
        user_ssh_config(isolated_env, "Host trio-2\n    User alice\n")
        run = cli(*setup_args("trio", "--count", "3"))
        assert run.code == 0, run.stderr
        assert "trio-2" not in our_hosts()

    def test_teardown_of_a_deployment_removed_elsewhere_drops_its_host_block(self, cli, account):
        from amazonei_setup.local import sshconfig

        assert cli(*setup_args("elsewhere")).code == 0
        left = sshconfig.config_file().read_text()
        assert "elsewhere" in our_hosts()
        assert cli("teardown", "--region", REGION, "--name", "elsewhere", "--yes").code == 0  # as on another machine
        sshconfig.config_file().write_text(left)  # ... so this machine's file still has the block
        again = cli("teardown", "--region", REGION, "--name", "elsewhere", "--yes")
        assert again.code == 0, again.stderr
        assert "elsewhere" not in our_hosts()


# ---- fleets and what they cost ------------------------------------------------------------------------------------

ENDPOINT_USD_PER_AZ_HOUR = 0.01  # AWS PrivateLink pricing, interface endpoint per AZ-hour, us-west-2
HOURS_PER_MONTH = 730


def dollars(text: str) -> list[float]:
    import re

    return [float(x.replace(",", "")) for x in re.findall(r"\$([\d,]+\.?\d*)", text)]


def row(text: str, label: str) -> str:
    """One row of a panel or grid, without its borders."""
    (line,) = [each for each in text.splitlines() if each.strip(" │").startswith(label + " ")]
    return words(line.strip(" │"))


class TestFleet:
    def test_the_plans_cost_is_the_whole_fleets(self, cli, account):
        one = cli(*setup_args("solo", "--dry-run"))
        three = cli(*setup_args("trio", "--count", "3", "--dry-run"))
        assert one.code == 0 and three.code == 0, three.stderr
        hourly, month = dollars(row(one.stderr, "Cost"))[:2]
        total, total_month, each = dollars(row(three.stderr, "Cost"))[:3]
        assert each == hourly
        assert total == pytest.approx(3 * hourly, abs=0.001)
        assert total_month == pytest.approx(3 * month, abs=3)

    def test_the_ready_summarys_cost_is_the_whole_fleets(self, cli, account):
        three = cli(*setup_args("trio", "--count", "3"))
        assert three.code == 0, three.stderr
        total, each = dollars(row(three.stdout, "Cost"))[:2]
        assert total == pytest.approx(3 * each, abs=0.001)

    def test_status_cost_so_far_is_the_sum_over_the_fleet(self, cli, account):
        from datetime import UTC, datetime

        made = cli(*setup_args("trio", "--count", "3"), "--output", "json")
        assert made.code == 0, made.stderr
        ids = [i["instance_id"] for i in made.json["result"]["instances"]]
        price = made.json["result"]["hourly_usd"]
        now = datetime.now(UTC)

        def started_hours_apart(parsed, **_):  # instance k started k+1 hours ago
            for reservation in parsed.get("Reservations", []):
                for each in reservation["Instances"]:
                    if each["InstanceId"] in ids:
                        each["LaunchTime"] = now - timedelta(hours=ids.index(each["InstanceId"]) + 1)

        account.ec2.meta.events.register("after-call.ec2.DescribeInstances", started_hours_apart)
        status = cli("status", "--name", "trio", "--output", "json")
        assert status.code == 0, status.stderr
        assert status.json["result"]["cost_so_far_usd"] == pytest.approx(6 * price, abs=0.02)
        text = cli("status", "--name", "trio")
        assert dollars(row(text.stdout, "Cost so far"))[0] == pytest.approx(6 * price, abs=0.02)

    def test_start_starts_the_one_stopped_instance_of_three(self, cli, account):
        made = cli(*setup_args("nap", "--count", "3"), "--output", "json")
        assert made.code == 0, made.stderr
        ids = [i["instance_id"] for i in made.json["result"]["instances"]]
        real_ec2().stop_instances(InstanceIds=[ids[1]])
        started = cli("start", "--name", "nap")
        assert started.code == 0, started.stderr
        assert {i["InstanceId"]: i["State"]["Name"] for i in live(real_ec2(), "nap")} == dict.fromkeys(ids, "running")
        assert "already running" not in started.stdout

    def test_stop_bills_the_endpoint_for_every_zone_it_serves(self, cli, account):
        refuse_in(account.ec2, {"us-west-2a"})  # the endpoint keeps us-west-2a and serves us-west-2b too
        made = cli(*setup_args("two-zones"), "--output", "json")
        assert made.code == 0, made.stderr
        (endpoint,) = endpoints()
        zones = len(endpoint["SubnetIds"])
        assert zones == 2
        stopped = cli("stop", "--name", "two-zones", "--output", "json")
        assert stopped.code == 0, stopped.stderr
        still = stopped.json["result"]["still_costs"]
        (billed,) = [i for i in still["items"] if i["kind"] == "vpc-endpoint"]
        assert billed["usd_per_month"] == pytest.approx(ENDPOINT_USD_PER_AZ_HOUR * zones * HOURS_PER_MONTH)
        assert still["usd_per_month"] == pytest.approx(sum(i["usd_per_month"] for i in still["items"]))

    def test_stop_never_totals_without_a_volume_it_cannot_price(self, cli, account):
        assert cli(*setup_args("odd-disk")).code == 0

        def provisioned_iops(parsed, **_):  # a volume type the tool has no price for
            for volume in parsed.get("Volumes", []):
                volume["VolumeType"] = "io2"

        account.ec2.meta.events.register("after-call.ec2.DescribeVolumes", provisioned_iops)
        stopped = cli("stop", "--name", "odd-disk", "--output", "json")
        assert stopped.code == 0, stopped.stderr
        still = stopped.json["result"]["still_costs"]
        assert [i["usd_per_month"] for i in still["items"] if i["kind"] == "ebs-volume"] == [None]
        assert still["usd_per_month"] is None


# ---- where results go, printed commands, the policy, teardown's word ----------------------------------------------

def printed_commands(text: str) -> list[list[str]]:
    """Every command line the tool printed for the user to run, split as a POSIX shell would."""
    import shlex

    return [shlex.split(line.strip(" │")) for line in text.splitlines()
            if line.strip(" │").startswith("python amazonei_setup.py ")]


def allows(policy: dict, action: str, resource: str) -> bool:
    """IAM's verdict for one request, as far as Allow/Deny statements with Action and Resource wildcards go."""
    from fnmatch import fnmatchcase

    def matches(statement) -> bool:
        actions = statement.get("Action", [])
        resources = statement.get("Resource", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        return (any(fnmatchcase(action.lower(), a.lower()) for a in actions)
                and any(fnmatchcase(resource, r) for r in resources))

    statements = policy["Statement"]
    return (any(s["Effect"] == "Allow" and matches(s) for s in statements)
            and not any(s["Effect"] == "Deny" and matches(s) for s in statements))


class TestOutput:
    def test_start_prints_the_new_connect_commands_on_stdout(self, cli, account):
        assert cli(*setup_args("restart")).code == 0
        assert cli("stop", "--name", "restart").code == 0
        started = cli("start", "--name", "restart")
        assert started.code == 0, started.stderr
        status = cli("status", "--name", "restart", "--output", "json").json["result"]
        assert status["ssh_command"] in started.stdout.splitlines()
        assert status["port_forward_command"] in started.stdout.splitlines()

    def test_every_printed_command_keeps_an_odd_profile_name_whole(self, cli, account):
        profile = "team a;touch pwned"
        made = cli(*setup_args("quoted"), "--profile", profile)
        assert made.code == 0, made.stderr
        stopped = cli("stop", "--name", "quoted", "--region", REGION, "--profile", profile)
        assert stopped.code == 0, stopped.stderr
        commands = printed_commands(made.stdout) + printed_commands(stopped.stdout)
        assert commands, made.stdout
        for argv in commands:
            assert argv[argv.index("--profile") + 1] == profile, argv

    def test_the_printed_policy_allows_every_call_the_lock_makes(self, cli, account):
        from tests.conftest import ACCOUNT

        ssm = account.client("ssm")
        calls = {op: [] for op in ("PutParameter", "GetParameter", "DeleteParameter")}
        for op, seen in calls.items():
            ssm.meta.events.register(f"before-parameter-build.ssm.{op}",
                                     lambda params, seen=seen, **_: seen.append(params["Name"]))
        assert cli(*setup_args("locked")).code == 0
        assert cli("teardown", "--region", REGION, "--name", "locked", "--yes").code == 0
        policy = json.loads(cli("permissions").stdout)
        lock_calls = [(op, name) for op, names in calls.items() for name in names if name.startswith(lock.PREFIX)]
        assert {op for op, _ in lock_calls} == set(calls), "setup and teardown take, read and release the lock"
        for op, name in lock_calls:
            arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}"
            assert allows(policy, f"ssm:{op}", arn), (op, arn)

    def test_teardown_says_terminated_only_once_ec2_says_so(self, account):
        import io

        from amazonei_setup.cli.environment import Environment
        from amazonei_setup.cli.main import main

        assert main(setup_args("slow-end"), Environment(stdin_isatty=False, stdout=io.StringIO(),
                                                        stderr=io.StringIO(), public_ip_lookup=lambda: "198.51.100.4",
                                                        sleep=lambda s: None, aws=account)) == 0
        states: list[str] = []
        terminating = []

        def slowly(parsed, **_):  # EC2 reports shutting-down for a while; moto terminates at once
            for reservation in parsed.get("Reservations", []):
                for each in reservation["Instances"]:
                    if terminating and each["State"]["Name"] == "terminated" and states.count("shutting-down") < 3:
                        each["State"] = {"Code": 32, "Name": "shutting-down"}
                    states.append(each["State"]["Name"])

        account.ec2.meta.events.register("after-call.ec2.TerminateInstances", lambda **_: terminating.append(1))
        account.ec2.meta.events.register("after-call.ec2.DescribeInstances", slowly)
        said_when: list[tuple[str, list[str]]] = []

        class Stderr(io.StringIO):
            def write(self, text):
                said_when.append((text, list(states)))
                return super().write(text)

        code = main(["teardown", "--region", REGION, "--name", "slow-end", "--yes"],
                    Environment(stdin_isatty=False, stdout=io.StringIO(), stderr=Stderr(),
                                public_ip_lookup=lambda: None, sleep=lambda s: None, aws=account))
        assert code == 0
        (seen,) = [seen for text, seen in said_when if "Terminated instance" in text]
        assert seen.count("shutting-down") == 3 and seen[-1] == "terminated", seen
