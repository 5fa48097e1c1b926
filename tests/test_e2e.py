"""The real CLI as separate processes: against a moto server over HTTP, and against --sandbox.

(a) A ThreadedMotoServer on 127.0.0.1 plays AWS; the CLI reaches it through AWS_ENDPOINT_URL with dummy
    keys, exactly as it would reach a real endpoint. The test checks the account with its own boto3
    clients, then lists and tears down.
(b) --sandbox: setup, list and teardown in three processes sharing one state directory.

Every process gets HOME and AMAZONEI_SETUP_HOME in tmp and no AWS_PROFILE; NO_COLOR=1 with a pipe (no
TTY) must leave no escape code on the screen.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config

from amazonei_setup.sandbox.account import SANDBOX_ACCOUNT_ID, seed_deep_learning_amis

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # separate processes: `-m "not slow"` skips them locally, never in CI
REGION = "us-west-2"
SSH_CIDR = "198.51.100.4/32"
EI_SERVICE = f"com.amazonaws.{REGION}.elastic-inference.runtime"


def user_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and k not in ("CI", "FORCE_COLOR", "TTY_COMPATIBLE")}
    env.update(HOME=str(home), AMAZONEI_SETUP_HOME=str(home / ".amazonei-setup"), NO_COLOR="1",
               AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=str(home / "aws-config"),
               AWS_SHARED_CREDENTIALS_FILE=str(home / "aws-credentials"), **extra)
    return env


class Cli:
    def __init__(self, env: dict[str, str]):
        self.env = env

    def __call__(self, *argv: str, expect: int = 0) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "amazonei_setup.py", *argv], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
        assert done.returncode == expect, f"exit {done.returncode}\n{done.stderr}"
        assert "\x1b" not in done.stderr + done.stdout, "NO_COLOR and a pipe, yet escape codes on the screen"
        return done

    def json(self, *argv: str) -> dict:
        document = json.loads(self(*argv, "--output", "json").stdout)
        assert document["status"] == "success", document
        return document["result"]


@pytest.fixture
def home(tmp_path) -> Path:
    path = tmp_path / "user"
    path.mkdir()
    return path


# ---- (a) against a moto server ------------------------------------------------------------------

@pytest.fixture
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    requests.post(f"{url}/moto-api/reset", timeout=10)
    try:
        # The threaded server serves this process's backends: seed them directly.
        seed_deep_learning_amis(SANDBOX_ACCOUNT_ID, REGION)
        yield url
    finally:
        requests.post(f"{url}/moto-api/reset", timeout=10)
        server.stop()


def server_client(url: str, service: str):
    return boto3.client(service, region_name=REGION, endpoint_url=url, aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}))


def test_setup_list_teardown_against_a_moto_server(moto_server, home):
    cli = Cli(user_env(home, AWS_ENDPOINT_URL=moto_server, AWS_ACCESS_KEY_ID="testing",
                       AWS_SECRET_ACCESS_KEY="testing", AWS_MAX_ATTEMPTS="2"))
    ec2, iam = server_client(moto_server, "ec2"), server_client(moto_server, "iam")

    made = cli.json("setup", "--region", REGION, "--instance-type", "m5.xlarge", "--yes", "--name", "e2e",
                    "--ssh-cidr", SSH_CIDR)
    assert made["name"] == "e2e" and made["state"] == "running"
    resources = {r["kind"]: r["id"] for r in made["resources"]}
    assert set(resources) == {"iam-role", "instance-profile", "security-group", "vpc-endpoint", "key-pair", "instance"}
    key_path = Path(made["key_path"])
    assert key_path == home / ".ssh" / "amazonei-setup-e2e.pem" and key_path.read_text().startswith("-----BEGIN")

    # What the server's account now holds, seen with our own clients.
    [instance] = [i for r in ec2.describe_instances(InstanceIds=[made["instance_id"]])["Reservations"]
                  for i in r["Instances"]]
    assert instance["State"]["Name"] == "running" and instance["InstanceType"] == "m5.xlarge"
    assert instance["IamInstanceProfile"]["Arn"].endswith("/amazonei-setup-e2e")
    groups = {g["GroupId"] for eni in instance["NetworkInterfaces"] for g in eni["Groups"]}
    groups |= {g["GroupId"] for g in instance.get("SecurityGroups", [])}
    assert groups == {resources["security-group"]}
    assert instance["KeyName"] == "amazonei-setup-e2e"
    profile = iam.get_instance_profile(InstanceProfileName="amazonei-setup-e2e")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == ["amazonei-setup-e2e"]
    [endpoint] = ec2.describe_vpc_endpoints(VpcEndpointIds=[resources["vpc-endpoint"]])["VpcEndpoints"]
    assert endpoint["ServiceName"] == EI_SERVICE and endpoint["State"].lower() == "available"
    assert resources["security-group"] in {g["GroupId"] for g in endpoint["Groups"]}
    [group] = ec2.describe_security_groups(GroupIds=[resources["security-group"]])["SecurityGroups"]
    assert SSH_CIDR in {r["CidrIp"] for p in group["IpPermissions"] for r in p.get("IpRanges", [])}

    listed = cli.json("list", "--region", REGION)
    assert listed["regions"] == [REGION]
    assert [(d["name"], d["instance_id"]) for d in listed["deployments"]] == [("e2e", made["instance_id"])]

    gone = cli.json("teardown", "--region", REGION, "--name", "e2e", "--yes")
    assert gone["found"] is True
    assert {d["kind"] for d in gone["deleted"]} == set(resources) | {"private-key-file"}
    state = ec2.describe_instances(InstanceIds=[made["instance_id"]])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] == "terminated"
    assert not [g for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] != "default"]
    assert not [r for r in iam.list_roles()["Roles"] if r["RoleName"] == "amazonei-setup-e2e"]
    assert not ec2.describe_key_pairs()["KeyPairs"]
    assert not key_path.exists(), "a private key whose key pair is gone opens nothing: teardown deletes it"

    again = cli("teardown", "--region", REGION, "--name", "e2e", "--yes")
    assert "No deployment named e2e" in again.stdout
    assert cli.json("list", "--region", REGION)["deployments"] == []


# ---- (b) the sandbox, one process per command ----------------------------------------------------------

def test_sandbox_setup_list_teardown_in_separate_processes(home):
    """An EI deployment and a Spot one (inf2 --spot) beside it: the sandbox makes the persistent Spot request
    RunInstances makes on AWS, so status shows it and teardown cancels it, as for a user on AWS."""
    cli = Cli(user_env(home))
    made = cli.json("--sandbox", "--region", REGION, "--instance-type", "m5.xlarge", "--yes", "--name", "trial")
    assert made["name"] == "trial" and made["state"] == "running" and made["ssh_command"].startswith("ssh -i ")
    assert Path(made["key_path"]).is_relative_to(home), "sandbox keys stay under the tmp home"
    spot = cli.json("--sandbox", "--region", REGION, "--accelerator", "inf2", "--spot", "--yes", "--name", "spotty")
    assert spot["market"] == "spot"
    (request_id,) = [r["id"] for r in spot["resources"] if r["kind"] == "spot-request"]

    listed = cli.json("list", "--sandbox", "--region", REGION)
    assert sorted((d["name"], d["instance_id"], d["state"], d.get("market")) for d in listed["deployments"]) == [
        ("spotty", spot["instance_id"], "running", "spot"), ("trial", made["instance_id"], "running", None)]
    status = cli.json("status", "--sandbox", "--region", REGION, "--name", "spotty")
    assert status["spot_requests"] == [{"id": request_id, "state": "active", "status": "fulfilled"}]
    assert [i["market"] for i in status["instances"]] == ["spot"]

    gone = cli.json("teardown", "--sandbox", "--region", REGION, "--name", "trial", "--yes")
    assert gone["found"] is True
    assert {d["kind"] for d in gone["deleted"]} >= {"instance", "security-group", "iam-role", "instance-profile"}
    spot_gone = cli("teardown", "--sandbox", "--region", REGION, "--name", "spotty", "--yes")
    assert f"Cancelled spot-request {request_id}" in spot_gone.stderr
    assert f"deleted  spot-request      {request_id}" in spot_gone.stdout

    assert cli.json("list", "--sandbox", "--region", REGION)["deployments"] == []
    assert_sandbox_is_empty(home / ".amazonei-setup" / "sandbox")


def test_a_ci_loop_of_setup_rerun_and_teardown_passes_every_time(home):
    """What a CI job runs on every push: setup, a re-run, teardown, and the same again with one name, each its own
    process with --yes and CI set; every step exits 0 and nothing is left, in the account or in the key directory."""
    cli = Cli(user_env(home, CI="1"))
    key = home / ".amazonei-setup" / "sandbox" / "keys" / "amazonei-setup-loop.pem"
    for _ in range(2):
        made = cli.json("setup", "--sandbox", "--region", REGION, "--instance-type", "m5.xlarge", "--name", "loop",
                        "--new-key", "--yes")
        assert made["state"] == "running" and Path(made["key_path"]) == key and key.is_file()
        cli("--sandbox", "setup", "--name", "loop", "--yes")  # the README's way to run it again; no --region
        gone = cli.json("--sandbox", "teardown", "--name", "loop", "--yes")
        assert gone["found"] is True and not key.exists()
    assert list(key.parent.glob("*.pem*")) == []
    assert_sandbox_is_empty(home / ".amazonei-setup" / "sandbox")


def test_a_ci_loop_against_an_aws_endpoint_passes_every_time(moto_server, home):
    """The same loop as a CI job runs it against an AWS endpoint (a moto server): two passes of setup, re-run,
    teardown of one name, each its own process; every step exits 0 and the account ends as it began."""
    cli = Cli(user_env(home, CI="1", AWS_ENDPOINT_URL=moto_server, AWS_ACCESS_KEY_ID="testing",
                       AWS_SECRET_ACCESS_KEY="testing", AWS_MAX_ATTEMPTS="2", AWS_DEFAULT_REGION=REGION))
    ec2, iam, ssm = (server_client(moto_server, s) for s in ("ec2", "iam", "ssm"))
    key = home / ".ssh" / "amazonei-setup-ci.pem"
    for _ in range(2):
        made = cli.json("setup", "--region", REGION, "--instance-type", "m5.xlarge", "--name", "ci", "--new-key",
                        "--ssh-cidr", SSH_CIDR, "--yes")
        assert made["state"] == "running" and Path(made["key_path"]) == key and key.is_file()
        again = cli.json("setup", "--name", "ci", "--yes")  # the README's way to run it again: choices kept
        assert again["instance_id"] == made["instance_id"]
        gone = cli.json("teardown", "--name", "ci", "--yes")  # no --region: the tags say where it lives
        assert gone["found"] is True and not key.exists()
    live = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
            if i["State"]["Name"] != "terminated"]
    assert live == []
    assert [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]] == ["default"]
    assert [e for e in ec2.describe_vpc_endpoints()["VpcEndpoints"] if e["State"].lower() != "deleted"] == []
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    assert not [r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("amazonei-setup")]
    assert ssm.describe_parameters()["Parameters"] == [], "no lock left"
    assert list(key.parent.glob("*.pem*")) == []


def assert_sandbox_is_empty(state_dir: Path) -> None:
    """Open the saved sandbox account in this process and look for anything setup could have left."""
    from amazonei_setup.sandbox import server as sandbox_server
    from amazonei_setup.sandbox.account import Sandbox

    sandbox_server.stop(state_dir)  # the commands' server owns the directory; it saves as it stops

    with Sandbox(regions=[REGION], state_dir=state_dir) as sb:
        ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=sb.endpoint_url,
                           config=Config(retries={"max_attempts": 1}), **sb.credentials)
        iam = boto3.client("iam", region_name=REGION, endpoint_url=sb.endpoint_url,
                           config=Config(retries={"max_attempts": 1}), **sb.credentials)
        live = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
                if i["State"]["Name"] != "terminated"]
        assert live == []
        assert [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]] == ["default"]
        assert [e for e in ec2.describe_vpc_endpoints()["VpcEndpoints"] if e["State"].lower() != "deleted"] == []
        assert ec2.describe_key_pairs()["KeyPairs"] == []
        assert [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("amazonei-setup")] == []
        assert iam.list_instance_profiles()["InstanceProfiles"] == []
        live_requests = ec2.describe_spot_instance_requests(
            Filters=[{"Name": "state", "Values": ["open", "active", "disabled"]}])["SpotInstanceRequests"]
        assert live_requests == [], "a Spot request left open would launch its instance again"


def test_two_setups_of_one_name_at_once_never_undo_each_other(moto_server, tmp_path):
    """Two machines (two homes) run the same setup at the same moment: the deployment lock lets one write; the
    other is told who holds it and deletes nothing, or (if it came late) converges. Either way the account ends
    with one whole deployment."""
    env = {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_MAX_ATTEMPTS": "2"}
    argv = [sys.executable, "amazonei_setup.py", "--region", REGION, "--instance-type", "m5.xlarge", "--yes",
            "--name", "race", "--ssh-cidr", SSH_CIDR]
    runs = []
    for who in ("laptop", "ci"):
        home = tmp_path / who
        home.mkdir()
        runs.append(subprocess.Popen(argv, cwd=ROOT, env=user_env(home, **env), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True))
    done = [(run.wait(timeout=180), run.stderr.read()) for run in runs]
    for run in runs:
        run.stdout.close()
        run.stderr.close()

    assert all("Traceback" not in err for _, err in done), done
    assert any(code == 0 for code, _ in done), done
    for code, err in done:
        assert code == 0 or "being changed by another run" in " ".join(err.split()), err
    ec2, iam = server_client(moto_server, "ec2"), server_client(moto_server, "iam")
    live = [i for r in ec2.describe_instances(Filters=[{"Name": "tag:amazonei-setup:deployment", "Values": ["race"]}])[
        "Reservations"] for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    assert len(live) == 1
    profile = iam.get_instance_profile(InstanceProfileName="amazonei-setup-race")["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == ["amazonei-setup-race"]
    assert iam.list_role_policies(RoleName="amazonei-setup-race")["PolicyNames"]
    assert ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["amazonei-setup-race"]}])[
        "SecurityGroups"]


# ---- (c) stdout is the result, stderr is the conversation ------------------------------------------------

BOX = set("│╭╮╰╯─┃━")


def test_each_command_puts_its_result_on_stdout_and_its_progress_on_stderr(home):
    """Separate processes with pipes, as `list | grep running` and `cost > prices.txt` see them."""
    cli = Cli(user_env(home))
    sandbox = ("--sandbox", "--region", REGION)

    made = cli(*sandbox, "--instance-type", "m5.xlarge", "--yes", "--name", "split")
    key = home / ".amazonei-setup" / "sandbox" / "keys" / "amazonei-setup-split.pem"
    ssh = next(line for line in made.stdout.splitlines() if line.startswith("ssh -i "))
    assert ssh.startswith(f"ssh -i {key} -p "), "the connect command, whole, on stdout"
    assert ssh.endswith(" ec2-user@127.0.0.1"), "a sandbox instance answers SSH on this machine"
    assert "Ready: split" in made.stdout
    assert f"python amazonei_setup.py teardown --sandbox --region {REGION} --name split" in made.stdout.splitlines()
    assert "Launched instance" in made.stderr and "ssh -i" not in made.stderr, "progress on stderr, results not"
    assert not BOX & set(made.stdout), "piped: no box borders in the result"

    listed = cli("list", *sandbox)
    [row] = [line for line in listed.stdout.splitlines() if "running" in line]  # what `grep running` prints
    assert row.split()[:3] == ["split", row.split()[1], "running"] and row.split()[1].startswith("i-")
    assert "ec2-" in row and row == row.rstrip(), "one whole line per deployment, not cut at a width"
    assert not BOX & set(listed.stdout)
    assert "SANDBOX" in listed.stderr and "split" not in listed.stderr  # the banner is all the conversation

    priced = cli("cost", "--instance-type", "m5.xlarge", "--latency-ms", "40")
    assert "Cost of m5.xlarge + eia2.medium in us-west-2" in priced.stdout and "$0.3120/h" in priced.stdout
    assert priced.stderr == ""

    gone = cli("teardown", *sandbox, "--name", "split", "--yes")
    assert "Deployment split removed." in gone.stdout.splitlines()
    assert any(line.split()[:2] == ["deleted", "instance"] for line in gone.stdout.splitlines())
    assert "Terminated instance" in gone.stderr and "Teardown of split" in gone.stderr
    assert f"deleted private-key-file {key}" in " ".join(gone.stdout.split()) and not key.exists()


def test_with_output_json_stdout_is_exactly_one_json_document(home):
    cli = Cli(user_env(home))
    sandbox = ("--sandbox", "--region", REGION)

    def one_document(*argv: str) -> tuple[dict, str]:
        done = cli(*argv, "--output", "json")
        document = json.loads(done.stdout)  # exactly one document: trailing text would not parse
        assert (document["version"], document["status"]) == (1, "success"), document
        return document["result"], done.stderr

    made, progress = one_document(*sandbox, "--instance-type", "m5.xlarge", "--yes", "--name", "doc")
    assert made["ssh_command"].startswith("ssh -i ") and "Launched instance" in progress
    assert "Ready: doc" not in progress and made["ssh_command"] not in progress, "no human summary besides the JSON"
    listed, said = one_document("list", *sandbox)
    assert [d["name"] for d in listed["deployments"]] == ["doc"] and "Deployments in" not in said
    priced, said = one_document("cost", "--instance-type", "m5.xlarge")
    assert priced["rows"][0]["hourly_usd"] == 0.312 and said == ""
    gone, said = one_document("teardown", *sandbox, "--name", "doc", "--yes")
    assert gone["found"] is True and "Terminated instance" in said and "Deployment doc removed" not in said


# ---- (c) day two (issue 16) against a moto server --------------------------------------------------------------

def test_a_day_in_the_life_against_a_moto_server(moto_server, home):
    """setup --idle-stop 60 -> status -> connect --print -> `ssh -F <our file> -G NAME` -> stop -> start (new
    address, block rewritten) -> teardown: no alarm and no Host block left, the Include line in ~/.ssh/config kept.
    Each a process of its own."""
    import shutil

    cli = Cli(user_env(home, AWS_ENDPOINT_URL=moto_server, AWS_ACCESS_KEY_ID="testing",
                       AWS_SECRET_ACCESS_KEY="testing", AWS_MAX_ATTEMPTS="2"))
    made = cli.json("setup", "--region", REGION, "--instance-type", "m5.xlarge", "--yes", "--name", "daily",
                    "--ssh-cidr", SSH_CIDR, "--idle-stop", "60")
    cloudwatch = server_client(moto_server, "cloudwatch")
    [alarm] = cloudwatch.describe_alarms()["MetricAlarms"]
    assert alarm["AlarmActions"] == [f"arn:aws:automate:{REGION}:ec2:stop"]
    assert made["ssh_check"] == "emulated"  # --endpoint-url: nothing listens on port 22, and the result says so
    ours = home / ".amazonei-setup" / "ssh" / "config"
    assert made["ssh_config"]["file"] == str(ours) and made["ssh_config"]["included"] is True
    assert (home / ".ssh" / "config").read_text().startswith("# Added by amazonei-setup")

    status = cli.json("status", "--name", "daily")  # no --region: found through the role's region tag
    assert (status["state"], status["public_dns"]) == ("running", made["public_dns"])
    assert status["ssh_command"] == made["ssh_command"]
    assert status["idle_stop"]["minutes"] == 60
    assert [a["name"] for a in status["idle_stop"]["alarms"]] == [alarm["AlarmName"]]

    printed = cli("connect", "--name", "daily", "--print")
    assert printed.stdout == made["ssh_command"] + "\n"

    def resolved(name: str) -> dict[str, str]:
        done = subprocess.run(["ssh", "-F", str(ours), "-G", name], capture_output=True, text=True, check=True)
        return {k: v for k, _, v in (line.partition(" ") for line in done.stdout.splitlines())}

    has_ssh = shutil.which("ssh") is not None
    if has_ssh:
        seen = resolved("daily")
        assert (seen["hostname"], seen["user"], seen["identityfile"]) == (
            made["public_dns"], "ec2-user", made["key_path"])

    stopped = cli.json("stop", "--name", "daily")
    assert [i["state"] for i in stopped["instances"]] == ["stopped"]
    assert stopped["still_costs"]["items"][0] == {"kind": "ebs-volume", "id": stopped["still_costs"]["items"][0]["id"],
                                                  "size_gib": 100, "volume_type": "gp3", "usd_per_month": 8.0}
    refused = cli("connect", "--name", "daily", "--print", expect=1)
    assert "start --region us-west-2 --name daily" in refused.stderr

    started = cli.json("start", "--name", "daily")
    assert started["public_dns"] and started["public_dns"] != made["public_dns"]  # moto, like EC2: a new address
    assert f"HostName {started['public_dns']}" in ours.read_text()
    if has_ssh:
        assert resolved("daily")["hostname"] == started["public_dns"]

    cli.json("teardown", "--name", "daily", "--yes")
    assert "Host daily" not in ours.read_text()
    assert f"Include {ours}" in (home / ".ssh" / "config").read_text()
    assert cloudwatch.describe_alarms()["MetricAlarms"] == []
