"""AWS faults, driven through botocore while moto serves everything else (issue 4).

Each fault is injected with a `before-call` hook (conftest `inject`), or by a hook that returns a
response of our choosing. Every test asserts what the user sees (one `error:` sentence that names
the fix, exit code, no traceback) and that the account holds exactly what it held before
(`snapshot`): a failed setup rolls back whatever it had created.
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from amazonei_setup.aws import client as aws
from tests.conftest import ACCOUNT, REGION, inject, setup_args, snapshot

DENIED_USER = f"arn:aws:iam::{ACCOUNT}:user/x"


# ---- helpers ---------------------------------------------------------------------------------

def respond(client, operation: str, make_response, *, calls: list | None = None):
    """Answer `client.<operation>` ourselves: a before-call hook that returns (http, parsed)
    short-circuits the call (botocore never sends it, moto never sees it)."""

    def hook(params, **_):
        parsed = make_response(params)
        if parsed is None:
            return None
        if calls is not None:
            calls.append(params)
        parsed.setdefault("ResponseMetadata", {"HTTPStatusCode": 200, "RequestId": "injected"})
        return AWSResponse("https://injected.invalid", 200, {}, None), parsed

    event = f"before-call.{client.meta.service_model.service_name}.{operation}"
    client.meta.events.register(event, hook)
    return hook


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_clean_failure(result, code: int = 1) -> str:
    """Exit code, exactly one `error:` line, no traceback; returns the error text (unwrapped)."""
    assert result.code == code, (result.code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(error_lines(result.stderr)) == 1, result.stderr
    # rich may wrap a long message over several lines: rejoin from the `error:` line onwards.
    tail = result.stderr[result.stderr.index("error:"):]
    return " ".join(tail.split())


def assert_envelope(result, code: str) -> dict:
    """--output json: one document on stdout with a stable error code and the same sentence."""
    document = result.json
    assert (document["version"], document["command"], document["status"]) == (1, "setup", "error")
    assert document["error"]["code"] == code
    assert document["error"]["message"].split(" (AWS call log:")[0] in " ".join(result.stderr.split())
    return document


def call_log_of(message: str) -> Path:
    found = re.search(r"\(AWS call log: (\S+)\)", message)
    assert found, message
    return Path(found.group(1))


@pytest.fixture
def before(account):
    return snapshot(account)


# ---- throttling --------------------------------------------------------------------------------

def test_throttled_run_instances_is_not_retried_by_botocore_and_rolls_back(cli, account, before):
    # A before-call hook raises before botocore's retry handler runs (the handler only sees
    # responses from _make_request), so the 8 adaptive attempts do not apply: one call, one failure.
    calls = inject(account.ec2, "RunInstances", "RequestLimitExceeded", "Request limit exceeded.", times=None)
    result = cli(*setup_args("throttled"), "--output", "json")
    message = assert_clean_failure(result)
    assert_envelope(result, "throttled")
    assert len(calls) == 1
    assert "throttling RunInstances" in message
    assert "wait a minute and run again" in message
    assert "Everything this run created was removed" in message
    assert "rolling back" in result.stderr.lower()
    assert snapshot(account) == before


@pytest.fixture
def no_backoff(monkeypatch):
    """botocore's retry back-off (time.sleep in botocore.endpoint) and adaptive mode's client-side rate
    limiter (a token bucket that waits on a Condition) both wait in real time: make them free."""

    class NoSleep:
        def __getattr__(self, name):
            return getattr(time, name)

        @staticmethod
        def sleep(seconds):
            slept.append(seconds)

    slept: list[float] = []
    monkeypatch.setattr("botocore.endpoint.time", NoSleep())
    monkeypatch.setattr("botocore.retries.bucket.TokenBucket.acquire", lambda self, amount=1, block=True: True)
    return slept


THROTTLED_STS = (400, "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded"
                      "</Message></Error><RequestId>r</RequestId></ErrorResponse>")
THROTTLED_EC2 = (400, "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
                      "</Message></Error></Errors><RequestID>r</RequestID></Response>")


class Server(ThreadingHTTPServer):
    # Each attempt is a new connection (HTTP/1.0), and discovery opens ~15 at once: with socketserver's listen
    # backlog of 5 and the accepting thread short of CPU (a busy machine), a connection waited for a SYN
    # retransmit or timed out, and botocore's retry of that attempt skewed the counts this test compares.
    request_queue_size = 128


@pytest.fixture
def local_endpoint():
    """A stand-in for AWS on 127.0.0.1 answering every request with reply(action) -> (status, body),
    so botocore's real retry handler and parsers see real HTTP. Yields start(reply) -> (url, Counter)."""
    servers = []

    def start(reply):
        seen: Counter = Counter()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                target = self.headers.get("X-Amz-Target")  # JSON-protocol services (SSM: the deployment lock)
                action = target.rsplit(".", 1)[-1] if target else parse_qs(body).get("Action", ["?"])[0]
                seen[action] += 1
                status, text = reply(action)
                code = re.search(r"<Code>([^<]+)</Code>", text)
                if target and code:  # the same error as a JSON-protocol service words it
                    text = json.dumps({"__type": code.group(1), "message": "injected"})
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}", seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_real_throttling_response_is_retried_by_botocore_then_explained(cli, account, before, no_backoff,
                                                                          local_endpoint):
    """What really happens on the wire: adaptive retries with total_max_attempts=5, so each call is
    sent 5 times before the sentence."""
    url, seen = local_endpoint(lambda action: THROTTLED_STS if action == "GetCallerIdentity" else THROTTLED_EC2)
    result = cli(*setup_args("wire"), "--endpoint-url", url, "--output", "json", own_clients=True)
    message = assert_clean_failure(result)
    assert_envelope(result, "throttled")
    assert "throttling GetCallerIdentity" in message and "wait a minute and run again" in message
    assert seen["GetCallerIdentity"] == aws.MAX_ATTEMPTS == 5
    # Every look-up was retried the same way; DescribeInstances is two look-ups (this tool's instances by tag, and
    # since issue 17 every running instance, for the vCPUs the quota check counts as in use).
    assert seen.pop("DescribeInstances") == 2 * aws.MAX_ATTEMPTS
    assert set(seen.values()) == {5}
    assert no_backoff, "botocore did not back off between attempts"
    assert snapshot(account) == before


def test_a_reply_that_is_not_aws_is_one_sentence(cli, account, before, no_backoff, local_endpoint):
    """A captive portal or wrong --endpoint-url answers 200 with HTML: botocore's ResponseParserError
    (not a BotoCoreError) must not surface as 'Unexpected error' with the raw page in it."""
    url, _ = local_endpoint(lambda action: (200, "<html><body>Please log in to the hotel wifi<"))
    result = cli(*setup_args("portal"), "--endpoint-url", url, "--output", "json", own_clients=True)
    message = assert_clean_failure(result)
    assert_envelope(result, "bad-response")
    assert "--endpoint-url" in message and "proxy" in message
    assert "hotel wifi" not in message and "Unexpected" not in message
    assert snapshot(account) == before


def test_throttled_create_role_rolls_back_what_other_branches_made(cli, account, before):
    calls = inject(account.iam, "CreateRole", "Throttling", "Rate exceeded", times=None)
    result = cli(*setup_args("throttled-iam"))
    message = assert_clean_failure(result)
    assert len(calls) == 1
    assert "throttling CreateRole" in message and "wait a minute and run again" in message
    assert snapshot(account) == before


def test_one_throttle_fails_the_run_and_a_rerun_succeeds(cli, account, before):
    """times=1: the run fails (the tool does not retry either), rolls back, and a re-run then works."""
    inject(account.ec2, "RunInstances", "RequestLimitExceeded", "Request limit exceeded.", times=1)
    assert cli(*setup_args("again")).code == 1
    assert snapshot(account) == before
    retried = cli(*setup_args("again"))
    assert retried.code == 0, retried.stderr
    assert len(snapshot(account)["instances"]) == 1


def test_throttled_teardown_does_not_claim_nothing_is_left(cli, account, before):
    assert cli(*setup_args("half")).code == 0
    inject(account.ec2, "DeleteSecurityGroup", "RequestLimitExceeded", "Request limit exceeded.", times=1)
    result = cli("teardown", "--region", REGION, "--name", "half", "--yes")
    message = assert_clean_failure(result)
    assert "throttling DeleteSecurityGroup" in message
    assert "run the same teardown again" in message
    assert "nothing half-made is left" not in message  # the security group (and IAM) are still there
    assert cli("teardown", "--region", REGION, "--name", "half", "--yes").code == 0
    assert snapshot(account) == before


# ---- capacity ----------------------------------------------------------------------------------

def test_insufficient_capacity_suggests_another_az_or_type(cli, account, before):
    inject(account.ec2, "RunInstances", "InsufficientInstanceCapacity",
           "We currently do not have sufficient m5.xlarge capacity in the Availability Zone you requested "
           "(us-west-2a).")
    result = cli(*setup_args("capacity"), "--output", "json")
    message = assert_clean_failure(result)
    document = assert_envelope(result, "capacity")
    # Issue 17: every zone is tried before giving up (tests/test_capacity.py), so the way out is another region
    # (as a command) or another type; a pinned --subnet-id gets its own sentence there.
    assert "--region us-east-1" in document["error"]["suggested_command"] and "--instance-type" in message
    assert "Availability Zone" in message
    assert snapshot(account) == before


@pytest.mark.parametrize("code, text", [
    ("Unsupported", "Amazon Elastic Inference is no longer available."),
    ("InvalidParameterValue", "The requested accelerator type eia2.medium is not supported for this account."),
    ("InsufficientCapacity", "There is no Elastic Inference accelerator capacity available."),
])
def test_ei_refusal_at_launch_explains_the_retirement_and_rolls_back(cli, account, before, code, text):
    """Most accounts are refused EI today: the refusal must say why and what to use instead."""
    inject(account.ec2, "RunInstances", code, text)
    result = cli(*setup_args("refused"), "--output", "json")
    message = assert_clean_failure(result)
    assert_envelope(result, "ei-unavailable")
    assert "retired Elastic Inference in April 2024" in message and "no account can launch it" in message
    assert "inf2.xlarge" in message and "g4dn.xlarge" in message
    assert text.rstrip(".") in message  # AWS's own words stay visible
    assert "Everything this run created was removed" in message
    assert snapshot(account) == before


# ---- permissions -------------------------------------------------------------------------------

ENCODED = "Encoded authorization failure message: XYZ-encoded-blob"


def test_unauthorized_run_instances_decodes_the_message_when_sts_allows(cli, account, before):
    decoded = {"allowed": False, "context": {"action": "ec2:RunInstances",
                                             "resource": f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*"}}
    decode_calls: list = []
    # moto 5.2 does not implement DecodeAuthorizationMessage: answer it ourselves.
    respond(account.sts, "DecodeAuthorizationMessage",
            lambda params: {"DecodedMessage": json.dumps(decoded)}, calls=decode_calls)
    inject(account.ec2, "RunInstances", "UnauthorizedOperation",
           f"You are not authorized to perform this operation. {ENCODED}")
    result = cli(*setup_args("denied"), "--output", "json")
    message = assert_clean_failure(result)
    assert_envelope(result, "access-denied")
    assert "ask an administrator for the ec2:RunInstances permission" in message
    assert f"AWS says: action ec2:RunInstances on arn:aws:ec2:{REGION}:{ACCOUNT}:instance/* was denied" in message
    assert len(decode_calls) == 1
    assert decode_calls[0]["body"]["EncodedMessage"] == "XYZ-encoded-blob"
    assert snapshot(account) == before


def test_unauthorized_run_instances_says_how_to_decode_when_decode_is_denied(cli, account, before, isolated_env):
    inject(account.sts, "DecodeAuthorizationMessage", "AccessDenied",
           f"User: {DENIED_USER} is not authorized to perform: sts:DecodeAuthorizationMessage")
    inject(account.ec2, "RunInstances", "UnauthorizedOperation",
           f"You are not authorized to perform this operation. {ENCODED}")
    result = cli(*setup_args("denied"), "--output", "json")
    message = assert_clean_failure(result)
    document = assert_envelope(result, "access-denied")
    assert "ec2:RunInstances" in message
    assert "aws sts decode-authorization-message --encoded-message" in message
    # "saved in the AWS call log": the log named in the message is this run's and holds the blob
    # (read the path from the JSON: rich wraps the stderr line mid-path).
    log = call_log_of(document["error"]["message"])
    assert log.is_relative_to(isolated_env / ".amazonei-setup")
    assert "XYZ-encoded-blob" in log.read_text()
    assert snapshot(account) == before


@pytest.mark.parametrize(("reply", "encoded"), [
    ("not json at all", "XYZ-encoded-blob"),
    (json.dumps(["a", "list"]), "XYZ-encoded-blob"),
    (json.dumps({"context": {}}), "XYZ-encoded-blob"),
    (json.dumps({"context": {}}), ""),  # the marker with nothing after it
])
def test_unusable_decoded_message_still_gives_one_sentence(cli, account, before, reply, encoded):
    respond(account.sts, "DecodeAuthorizationMessage", lambda params: {"DecodedMessage": reply})
    inject(account.ec2, "RunInstances", "UnauthorizedOperation",
           f"You are not authorized to perform this operation. Encoded authorization failure message: {encoded}")
    message = assert_clean_failure(cli(*setup_args("denied")))
    assert "ask an administrator for the ec2:RunInstances permission" in message
    assert "Unexpected" not in message and "None" not in message
    if encoded:
        assert "aws sts decode-authorization-message --encoded-message" in message
    assert snapshot(account) == before


def test_iam_access_denied_names_the_action(cli, account, before):
    inject(account.iam, "CreateRole", "AccessDenied",
           f"User: {DENIED_USER} is not authorized to perform: iam:CreateRole on resource: "
           f"arn:aws:iam::{ACCOUNT}:role/amazonei-setup/amazonei-setup-denied")
    result = cli(*setup_args("denied"), "--output", "json")
    message = assert_clean_failure(result)
    assert_envelope(result, "access-denied")
    assert "ask an administrator for the iam:CreateRole permission" in message
    assert snapshot(account) == before


def test_opt_in_required_names_the_region_fix(cli, account, before):
    inject(account.ec2, "DescribeVpcs", "OptInRequired",
           "You are not subscribed to this service. Please go to http://aws.amazon.com to subscribe.")
    result = cli(*setup_args("optin"), "--output", "json")
    message = assert_clean_failure(result)
    assert_envelope(result, "opt-in-required")
    assert "--region" in message and "enable" in message
    assert snapshot(account) == before


# ---- credentials -------------------------------------------------------------------------------

def test_expired_credentials(cli, account, before):
    inject(account.sts, "GetCallerIdentity", "ExpiredToken", "The security token included in the request is expired")
    result = cli(*setup_args("expired"), "--output", "json")
    message = assert_clean_failure(result)
    assert_envelope(result, "credentials-expired")
    assert "expired" in message and "aws sso login" in message
    assert snapshot(account) == before


def test_invalid_credentials(cli, account, before):
    inject(account.sts, "GetCallerIdentity", "InvalidClientTokenId",
           "The security token included in the request is invalid.")
    result = cli(*setup_args("invalid"), "--output", "json")
    message = assert_clean_failure(result)
    assert_envelope(result, "credentials")
    assert "did not accept your credentials" in message and "aws configure" in message
    assert snapshot(account) == before


def test_missing_credentials(cli, account, before, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask IMDS (no network)
    result = cli(*setup_args("nocreds"), "--output", "json", own_clients=True)
    message = assert_clean_failure(result)
    assert_envelope(result, "credentials")
    assert "No AWS credentials found" in message
    assert "aws configure" in message and "--profile" in message
    assert snapshot(account) == before


def test_unknown_profile_is_a_usage_error(cli, account, before):
    result = cli(*setup_args("profile"), "--profile", "nosuchprofile", "--output", "json", own_clients=True)
    message = assert_clean_failure(result, code=2)
    assert_envelope(result, "usage")
    assert "--profile" in message and "nosuchprofile" in message
    assert snapshot(account) == before


# ---- regions and the EI service ----------------------------------------------------------------

def test_region_without_ei_lists_the_ei_regions(cli, account, before):
    result = cli(*[a if a != REGION else "eu-central-1" for a in setup_args("nowhere")])
    message = assert_clean_failure(result, code=2)
    assert "--region" in message and "eu-central-1" in message
    for region in ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-northeast-2"):
        assert region in message
    assert snapshot(account) == before


def test_endpoint_service_missing_from_a_listed_region(cli, account, before):
    respond(account.ec2, "DescribeVpcEndpointServices", lambda params: {"ServiceDetails": [], "ServiceNames": []})
    result = cli(*setup_args("noservice"))
    message = assert_clean_failure(result, code=2)
    assert "does not offer the Elastic Inference endpoint service" in message
    assert "--region" in message
    assert snapshot(account) == before


def test_endpoint_creation_failure_rolls_back(cli, account, before):
    calls = inject(account.ec2, "CreateVpcEndpoint", "VpcEndpointLimitExceeded",
                   "The maximum number of VPC endpoints has been reached.")
    result = cli(*setup_args("noendpoint"), "--output", "json")
    message = assert_clean_failure(result)
    assert_envelope(result, "quota")
    assert len(calls) == 1
    assert "CreateVpcEndpoint" in message and "VpcEndpointLimitExceeded" in message
    assert "Service Quotas" in message
    assert snapshot(account) == before


def test_other_endpoint_failure_rolls_back_and_quotes_aws(cli, account, before):
    inject(account.ec2, "CreateVpcEndpoint", "InvalidParameter", "The subnet is in an unsupported AZ.")
    result = cli(*setup_args("noendpoint"), "--output", "json")
    message = assert_clean_failure(result)
    assert_envelope(result, "InvalidParameter")
    assert "AWS refused CreateVpcEndpoint: InvalidParameter: The subnet is in an unsupported AZ." in message
    assert snapshot(account) == before


def test_rollback_removes_the_role_when_the_profile_was_created_first(cli, account, before, monkeypatch):
    """Role and profile are created concurrently; whichever finishes first is journaled first.
    Force the profile first (the other order is what most runs get), then fail the launch: the
    rollback must still remove the role, which the profile holds until the profile is deleted."""
    from amazonei_setup.flows import provision

    profile_journaled = threading.Event()
    add = provision.Journal.add

    def add_and_tell(journal, kind, id_, action, **detail):
        record = add(journal, kind, id_, action, **detail)
        if kind == "instance-profile":
            profile_journaled.set()
        return record

    monkeypatch.setattr(provision.Journal, "add", add_and_tell)

    def role_after_profile(**_):
        assert profile_journaled.wait(timeout=60), "the instance profile was never journaled"
        return None

    account.iam.meta.events.register("before-call.iam.CreateRole", role_after_profile)
    inject(account.ec2, "RunInstances", "InsufficientInstanceCapacity", "No capacity.")
    result = cli(*setup_args("order"))
    message = assert_clean_failure(result)
    assert "Everything this run created was removed" in message
    assert snapshot(account) == before


# ---- waiting -----------------------------------------------------------------------------------

def test_instance_that_never_runs_times_out_naming_its_state_and_how_to_check(cli, account, before, monkeypatch):
    monkeypatch.setattr("amazonei_setup.flows.provision.INSTANCE_TIMEOUT", 0.0)
    real = boto3.client("ec2", region_name=REGION)  # an uninstrumented client on the same moto account
    stuck: list = []

    def still_pending(params):
        response = real.describe_instances(**describe_kwargs(params))
        for reservation in response["Reservations"]:
            for instance in reservation["Instances"]:
                if instance["State"]["Name"] == "running":  # keep it 'pending'; rollback sees the truth
                    instance["State"] = {"Code": 0, "Name": "pending"}
                    stuck.append(instance["InstanceId"])
        return response

    hook = respond(account.ec2, "DescribeInstances", still_pending)
    result = cli(*setup_args("stuck"), "--output", "json")
    account.ec2.meta.events.unregister("before-call.ec2.DescribeInstances", hook)
    message = assert_clean_failure(result)
    assert_envelope(result, "wait-timeout")
    assert stuck, "the wait never polled the instance"
    instance_id = stuck[0]
    assert f"Instance {instance_id} is still 'pending'" in message
    assert f"aws ec2 describe-instances --instance-ids {instance_id}" in message
    assert snapshot(account) == before


def describe_kwargs(request_dict: dict) -> dict:
    """Rebuild describe_instances kwargs from a serialized EC2 query body (InstanceIds / Filters)."""
    body = request_dict["body"]
    ids = [v for k, v in sorted(body.items()) if k.startswith("InstanceId.")]
    filters: dict[str, dict] = {}
    for key, value in body.items():
        match = re.fullmatch(r"Filter\.(\d+)\.(Name|Value\.\d+)", key)
        if match:
            entry = filters.setdefault(match.group(1), {"Name": "", "Values": []})
            if match.group(2) == "Name":
                entry["Name"] = value
            else:
                entry["Values"].append(value)
    kwargs: dict = {}
    if ids:
        kwargs["InstanceIds"] = ids
    if filters:
        kwargs["Filters"] = list(filters.values())
    return kwargs


# ---- network -----------------------------------------------------------------------------------

def test_unreachable_endpoint_is_one_sentence_after_botocore_retries(cli, account, before, no_backoff):
    result = cli(*setup_args("offline"), "--endpoint-url", "http://127.0.0.1:9", "--output", "json",
                 own_clients=True)
    message = assert_clean_failure(result)
    assert_envelope(result, "network")
    assert "Could not reach AWS" in message
    assert "--endpoint-url" in message and "network" in message
    assert no_backoff, "botocore did not retry the connection error"
    assert snapshot(account) == before


# ---- --debug and JSON --------------------------------------------------------------------------

def test_debug_shows_a_traceback_and_the_default_does_not(cli, account):
    # Every time, not twice: since issue 17 a zone without capacity makes setup try the next one.
    inject(account.ec2, "RunInstances", "InsufficientInstanceCapacity", "No capacity.")
    plain = cli(*setup_args("dbg"))
    debug = cli(*setup_args("dbg"), "--debug")
    assert plain.code == debug.code == 1
    assert "Traceback" not in plain.stderr
    assert "Traceback" in debug.stderr
    assert len(error_lines(debug.stderr)) == 1


def test_json_error_envelope_for_a_usage_error_found_in_aws(cli, account, before):
    result = cli(*setup_args("json", "--key-name", "nope"), "--output", "json")
    assert result.code == 2
    document = result.json
    assert (document["version"], document["command"], document["status"]) == (1, "setup", "error")
    assert document["error"]["code"] == "usage"
    assert "--key-name" in document["error"]["message"]
    assert snapshot(account) == before


