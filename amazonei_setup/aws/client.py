"""The one place that builds AWS clients, logs AWS calls, and turns AWS errors into sentences.

Everything that talks to AWS gets its clients from an `Aws` object: one explicit botocore Session
(boto3's would only add ~0.2 s of imports to every command: the tool uses clients, not resources or S3
transfers; its clients are botocore's either way), one botocore Config (adaptive retries, timeouts, a user agent
naming the tool). Clients are thread-safe once built, so `Aws.preload` builds them up front
before provisioning fans out to threads (Sessions are not thread-safe).
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from pathlib import Path

import botocore.config
import botocore.loaders
import botocore.session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError
from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

from amazonei_setup import __version__
from amazonei_setup.aws import botocore_data
from amazonei_setup.aws.concurrency import LookupTimeout
from amazonei_setup.aws.resources import instance as instances
from amazonei_setup.core.errors import AwsError, ToolError, UsageError, error_code, error_message  # noqa: F401 - re-exported
from amazonei_setup.local import paths

log = logging.getLogger("amazonei_setup.aws.client")

# Adaptive mode backs off and rate-limits itself under throttling. 5 attempts in all (botocore's
# "max_attempts" would count retries only); AWS_MAX_ATTEMPTS still wins, as users expect, because
# an explicit Config would otherwise override it.
def _max_attempts(default: int = 5) -> int:
    value = os.environ.get("AWS_MAX_ATTEMPTS", "")
    return int(value) if value.isdigit() and int(value) > 0 else default


MAX_ATTEMPTS = _max_attempts()
CONFIG = botocore.config.Config(
    retries={"mode": "adaptive", "total_max_attempts": MAX_ATTEMPTS},
    connect_timeout=5,
    read_timeout=60,
    user_agent_extra=f"amazonei-setup/{__version__}",
)


# One botocore data loader for the process (botocore_data.shared). Each new Session would otherwise re-read
# endpoints.json and every service model it builds a client for (the EC2 model alone is ~0.2 s): `list
# --all-regions`, the sandbox and the test suite make many Sessions. The loader only reads botocore's own files.
shared_loader = botocore_data.shared
_classes_lock = threading.Lock()  # share_client_classes: clients are built from several threads at once
_PRIVATE_FAILURES = botocore_data._FAILURES  # what a botocore whose insides moved raises at a use of them


def every_session_shares_the_loader() -> None:
    """Every botocore Session made in this process from now on uses the shared loader, not only the tool's
    (new_session): moto's (its EC2 models make three as they are imported, to list the regions) and boto3's.
    For the sandbox's moto and the tests; call it before moto's EC2 models are imported. Without the botocore
    insides it needs, nothing changes (each Session reads the data with a loader of its own)."""
    session_class = botocore.session.Session
    locator = getattr(botocore.session, "ComponentLocator", None)
    if not (callable(getattr(session_class, "_register_data_loader", None))
            and callable(getattr(locator, "lazy_register_component", None))):
        botocore_data.give_way("sessions-share-the-loader", AttributeError("Session._register_data_loader"))
        return
    session_class._register_data_loader = _register_shared_loader


def _register_shared_loader(session) -> None:
    try:
        session._components.lazy_register_component("data_loader", shared_loader)
    except _PRIVATE_FAILURES as err:
        botocore_data.give_way("sessions-share-the-loader", err)
        session.register_component("data_loader", shared_loader())


def share_client_classes() -> None:
    """Speed-ups for processes that build many clients (`list --all-regions` ~80, the sandbox, the tests), each
    using botocore's insides and each giving way to botocore's public behaviour if they differ (bench/
    private_names.py measures each). Idempotent.
    * one client class per service and API version: botocore builds a new class for every client (one method per
      operation: ~700 for EC2, ~40 ms). The class depends only on the service's model and the handlers registered on
      every Session alike (hooks a caller adds live on the client instance);
    * one ServiceModel per parsed model: a new one per client rebuilds what botocore derives from the model lazily
      (EC2's endpoint-discovery check alone walks all ~700 operation models: ~25 ms a client)."""
    import botocore.client

    creator = botocore.client.ClientCreator
    if getattr(creator, "_amazonei_shared", False):
        return
    creator._amazonei_shared = True
    _one_class_per_service(creator)
    _one_service_model_per_model(creator)


def _one_class_per_service(creator) -> None:
    build = getattr(creator, "_create_client_class", None)
    if not callable(build):
        botocore_data.give_way("client-classes", AttributeError("ClientCreator._create_client_class"))
        return
    classes: dict[tuple, type] = {}

    def client_class(self, *args, **named):
        if "client-classes" in botocore_data.GAVE_WAY:
            return build(self, *args, **named)
        try:
            service_name, service_model = args if not named else (named["service_name"], named["service_model"])
            key = (service_name, service_model.api_version)
            hash(key)
        except (*_PRIVATE_FAILURES, LookupError) as err:  # botocore calls it otherwise now: its own, every time
            botocore_data.give_way("client-classes", err)
            return build(self, *args, **named)
        with _classes_lock:
            if key not in classes:
                classes[key] = build(self, *args, **named)
            return classes[key]

    client_class.botocore_original = build
    creator._create_client_class = client_class


def _one_service_model_per_model(creator) -> None:
    # Keyed by the parsed model itself (kept alive here), so a different loader gets its own. The loader returns one
    # parsed model per service and API version, and nothing changes a ServiceModel after it is built.
    load_model = getattr(creator, "_load_service_model", None)
    if not callable(load_model):
        botocore_data.give_way("service-models", AttributeError("ClientCreator._load_service_model"))
        return
    models: dict[int, tuple] = {}

    def service_model(self, service_name, api_version=None, *more, **named):
        if more or named or "service-models" in botocore_data.GAVE_WAY:
            return load_model(self, service_name, api_version, *more, **named)
        try:
            json_model = self._loader.load_service_model(service_name, "service-2", api_version=api_version)
        except _PRIVATE_FAILURES as err:
            botocore_data.give_way("service-models", err)
            return load_model(self, service_name, api_version)
        with _classes_lock:
            if id(json_model) not in models:
                models[id(json_model)] = (json_model, load_model(self, service_name, api_version))
            return models[id(json_model)][1]

    creator._load_service_model = service_model


def new_session(profile_name: str | None = None, region_name: str | None = None,
                aws_access_key_id: str | None = None, aws_secret_access_key: str | None = None,
                aws_session_token: str | None = None) -> botocore.session.Session:
    """A botocore Session as boto3.Session(...) would set it up for clients: raises ProfileNotFound at once for
    an unknown profile."""
    share_client_classes()
    session = botocore.session.Session(profile=profile_name)
    session.register_component("data_loader", shared_loader())
    if aws_access_key_id or aws_secret_access_key or aws_session_token:
        session.set_credentials(aws_access_key_id, aws_secret_access_key, aws_session_token)
    if region_name is not None:
        session.set_config_variable("region", region_name)
    if profile_name is not None:
        session.get_scoped_config()  # raises ProfileNotFound now, not at the first client
    return session


class Aws:
    """A botocore session for one region plus a cache of its clients."""

    # True when no region was given or configured and `region` only reaches IAM (cli.IAM_LOOKUP_REGION): nothing
    # regional may be concluded from a look-up there.
    region_is_a_guess = False

    def __init__(self, region: str | None = None, profile: str | None = None,
                 endpoint_url: str | None = None, credentials: dict | None = None,
                 config: botocore.config.Config = CONFIG):
        try:
            self.session = new_session(profile_name=profile, region_name=region, **(credentials or {}))
        except ProfileNotFound:
            raise UsageError(f"No AWS profile named '{profile}': check --profile against ~/.aws/config.") from None
        self.region = region or self.session.get_config_variable("region")
        if not self.region:
            raise UsageError("No AWS region given: pass --region (e.g. --region us-west-2) or set one in your profile.")
        if endpoint_url is not None and not (is_valid_endpoint_url(endpoint_url)
                                             or is_valid_ipv6_endpoint_url(endpoint_url)):
            # botocore would raise a bare ValueError when the first client is built, mid-run
            raise UsageError(f"--endpoint-url '{endpoint_url}' is not a URL like http://127.0.0.1:5000: fix it, "
                             "or drop the flag to talk to AWS itself.")
        self.profile = profile
        self.endpoint_url = endpoint_url
        self.config = config
        self._clients: dict[str, object] = {}
        self._lock = threading.Lock()
        self.log_path = start_call_log()

    def client(self, service: str):
        with self._lock:
            if service not in self._clients:
                client = self.session.create_client(service, region_name=self.region,
                                             endpoint_url=self.endpoint_url, config=self.config)
                client.meta.events.register("before-parameter-build", _log_before_call)  # the API parameters
                client.meta.events.register("after-call", _log_after_call)
                if service == "ec2":
                    client.meta.events.register("needs-retry.ec2.RunInstances", _capacity_refusals_not_retried)
                self._clients[service] = client
            return self._clients[service]

    def in_region(self, region: str) -> Aws:
        """The same identity in another region (clients are built by the caller's thread)."""
        other = Aws.__new__(Aws)
        other.__dict__.update(self.__dict__, region=region, region_is_a_guess=False, _clients={},
                              _lock=threading.Lock())
        return other

    def preload(self, *services: str) -> None:
        for service in services:
            self.client(service)

    @property
    def ec2(self):
        return self.client("ec2")

    @property
    def iam(self):
        return self.client("iam")

    @property
    def sts(self):
        return self.client("sts")


# EC2 answers a zone without capacity with HTTP 500, which botocore's retry policy takes for a passing fault and
# repeats in the same zone (5 attempts, seconds of backoff) before the tool sees it. Another zone is the remedy, so
# the refusal comes back at once and provision moves on (SkyPilot's launch call has no in-place retries for the same
# reason). Throttling and dropped connections are still retried (botocore), the IAM propagation error too
# (resources/instance.run_instances).
NOT_RETRIED_IN_PLACE = ("InsufficientInstanceCapacity",)


def _capacity_refusals_not_retried(response=None, operation=None, **_):
    """A needs-retry handler (the event's most specific handlers run first): a refusal another zone may not repeat
    is raised from here as the ClientError the call would end with, so botocore's own handler never schedules a retry.
    (Raising, not answering False: botocore before 1.43.3 takes any answer but None as the seconds to sleep before
    retrying.) The call log's after-call line is written here, as the call ends here. None: botocore decides."""
    http_response, parsed = response if response is not None else (None, None)
    if not isinstance(parsed, dict) or parsed.get("Error", {}).get("Code") not in NOT_RETRIED_IN_PLACE:
        return None
    _log_after_call(http_response, parsed, operation)
    raise ClientError(parsed, operation.name)


# ---- call log --------------------------------------------------------------------------

def start_call_log() -> Path | None:
    """One log file per run under ~/.amazonei-setup/logs; None when it cannot be written.

    Reused while the logs directory stays the same; a process whose AMAZONEI_SETUP_HOME changed
    (tests, embedding) gets a new file there instead of messages pointing at the old one.
    """
    current = getattr(start_call_log, "path", None)
    try:
        directory = paths.logs_dir()
        if current and current.parent == directory:
            return current
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        handler = logging.FileHandler(path, encoding="utf-8")
    except (OSError, RuntimeError):  # RuntimeError: Path.home() without a home directory
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(message)s"))
    old = getattr(start_call_log, "handler", None)
    if old is not None:
        log.removeHandler(old)
        old.close()
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    start_call_log.path, start_call_log.handler = path, handler
    for what in list(botocore_data.GAVE_WAY):  # what gave way before this file was started (building the Session)
        log.info(botocore_data.gave_way_line(what))
    return path


def _log_before_call(model, params, **_):
    # Parameter names only: values can hold key material or user data. (On before-call, `params` would be the
    # HTTP request: body, headers, url...)
    log.info("call %s.%s params=%s", model.service_model.service_name, model.name, sorted(params))


def _log_after_call(http_response, parsed, model, **_):
    err = (parsed or {}).get("Error", {}) if isinstance(parsed, dict) else {}
    log.info("done %s.%s status=%s error=%s request_id=%s", model.service_model.service_name, model.name,
             getattr(http_response, "status_code", "?"), err.get("Code", "-"),
             (parsed or {}).get("ResponseMetadata", {}).get("RequestId", "-") if isinstance(parsed, dict) else "-")


# ---- errors ----------------------------------------------------------------------------

_CREDENTIAL_CODES = {"InvalidClientTokenId", "AuthFailure", "SignatureDoesNotMatch",
                     "UnrecognizedClientException", "InvalidAccessKeyId"}
_EXPIRED_CODES = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_THROTTLE_CODES = {"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException"}
_DENIED_CODES = {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"}


def explain(err: BaseException, aws: Aws | None = None, *, doing: str = "") -> ToolError:
    """Turn any boto3/botocore failure into a ToolError whose text is one sentence naming a fix."""
    if isinstance(err, ToolError):
        return err
    where = f" while {doing}" if doing else ""
    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return AwsError("No AWS credentials found: run `aws configure` (or `aws sso login`), "
                        "or pass --profile, or try the tool with --sandbox.", code="credentials")
    if isinstance(err, ProfileNotFound):
        return UsageError(f"{err}: check --profile against ~/.aws/config.")
    if isinstance(err, NoRegionError):
        return UsageError("No AWS region given: pass --region (e.g. --region us-west-2).")
    if isinstance(err, LookupTimeout):
        return AwsError(f"AWS did not answer{where} in time: check your network or --endpoint-url, then run again.",
                        code="network")
    if isinstance(err, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return AwsError(f"Could not reach AWS{where} ({err}): check your network or --endpoint-url.",
                        code="network")
    if isinstance(err, ResponseParserError):  # not BotoCoreError; its text carries the whole raw body
        return AwsError(f"The reply from AWS{where} could not be read (not AWS's format): check --endpoint-url, or "
                        "a proxy or captive portal between you and AWS, then run again.", code="bad-response")
    if not isinstance(err, ClientError):
        if isinstance(err, BotoCoreError):
            return AwsError(f"AWS SDK error{where}: {err}.")
        return AwsError(f"Unexpected error{where}: {err!r}.", code="internal")
    code, message = error_code(err), error_message(err)
    operation = err.operation_name
    if code == instances.SPOT_ROLE_NOT_CREATABLE and operation == "RunInstances":
        return _spot_role_missing(aws)
    if code in _CREDENTIAL_CODES:
        return AwsError("AWS did not accept your credentials: check the access key (`aws configure`) "
                        "or pass another --profile.", code="credentials")
    if code in _EXPIRED_CODES:
        return AwsError("Your AWS credentials have expired: refresh them (`aws sso login` or a new "
                        "session token) and run again.", code="credentials-expired")
    if code in _THROTTLE_CODES:
        # No claim about leftovers here: the caller (rollback, teardown) knows and says what is left.
        return AwsError(f"AWS kept throttling {operation}{where} after retries: wait a minute and run "
                        "again.", code="throttled")
    if code in _DENIED_CODES:
        action = denied_action(err, _service_of(aws, operation))
        permission = f"the {action} permission" if ":" in action else f"permission to call {operation}"
        return AwsError(f"Your AWS identity is not allowed to call {operation}{where}: ask an administrator "
                        f"for {permission}.{_decode_authorization(aws, message)}", code="access-denied")
    if code == "OptInRequired":
        return AwsError(f"Your account has not enabled this region or service{where}: enable the region "
                        "in the AWS console (Account > AWS Regions) or choose another --region.",
                        code="opt-in-required")
    if operation == "RunInstances" and code.endswith("LimitExceeded") and _is_ei_refusal(message):
        # A quota, not the retirement: EI had a per-region quota of accelerators per type.
        return AwsError(f"Your account's Elastic Inference accelerator quota in this region is used up ({code}: "
                        f"{message.rstrip('.')}): tear down deployments you no longer use (`list`), or ask for more in "
                        "the Service Quotas console (Amazon Elastic Inference).", code="ei-quota")
    if operation == "RunInstances" and _is_ei_refusal(message):
        return AwsError("AWS refused the Elastic Inference accelerator: AWS retired Elastic Inference in April 2024, "
                        "and no account can launch it now. "
                        f"({code}: {message.rstrip('.')}.) For the same job today AWS recommends Inferentia2 "
                        "(e.g. inf2.xlarge) or a GPU instance (e.g. g4dn.xlarge) with a Deep Learning AMI.",
                        code="ei-unavailable")
    if code in {"InsufficientInstanceCapacity", "InsufficientCapacity", "Unsupported"} and operation == "RunInstances":
        return AwsError(f"AWS has no spare capacity for this instance type in the subnet's Availability Zone "
                        f"({message.rstrip('.')}): pick a subnet in another AZ with --subnet-id, or another "
                        "--instance-type / --accelerator-type.", code="capacity")
    if code.endswith("LimitExceeded"):  # a service quota (RequestLimitExceeded, the throttle, is matched above)
        return AwsError(f"AWS refused {operation}{where} because a service quota is used up ({code}: "
                        f"{message.rstrip('.')}): delete resources you no longer use, or request a higher quota "
                        "in the Service Quotas console.", code="quota")
    return AwsError(f"AWS refused {operation}{where}: {code}: {message.rstrip('.')}.", code=code or "aws")


def _spot_role_missing(aws: Aws | None) -> AwsError:
    """RunInstances' SPOT_ROLE_NOT_CREATABLE (see instance.py) with the two ways to fix it."""
    command = instances.create_spot_role_command(getattr(aws, "profile", None))
    return AwsError("EC2 needs the service-linked role AWSServiceRoleForEC2Spot to launch Spot instances and may not "
                    f"create it for your AWS identity: run `{command}` once, or grant iam:CreateServiceLinkedRole for "
                    "spot.amazonaws.com (the `permissions` command prints it), then run setup again; or drop --spot.",
                    code="spot-service-linked-role")


def explain_safely(failure: BaseException, aws: Aws | None = None) -> ToolError:
    """explain(), which must not fail here: it may call AWS (decoding EC2's refusal) and that call can fail
    in ways nobody listed, or be interrupted. Then the sentence without the decoding, then a generic one."""
    for helper in ((aws, None) if aws is not None else (None,)):
        try:
            return explain(failure, helper)
        except (Exception, KeyboardInterrupt):  # noqa: BLE001, PERF203 - the sentence is never worth a crash
            continue
    return AwsError(f"Setup failed ({type(failure).__name__}).", code="internal")


def _is_ei_refusal(message: str) -> bool:
    """Any RunInstances refusal that is about the EI accelerator spec rather than the instance."""
    text = message.lower()
    return any(marker in text for marker in ("elastic inference", "elasticinference", "elastic-inference",
                                              "eia1.", "eia2."))


def denied(err: BaseException) -> bool:
    """AWS refused the call for want of a permission (each service has its own code for it)."""
    return error_code(err) in _DENIED_CODES


def denied_action(err: ClientError, service: str | None = None) -> str:
    """The IAM action a denial is about ("cloudwatch:DescribeAlarms"). Most services name it in the message; EC2
    hides it (UnauthorizedOperation); otherwise the caller's service, when it knows which client made the call."""
    found = re.search(r"perform: ([\w-]+:\w+)", error_message(err))
    if found:
        return found.group(1)
    if service is None and error_code(err) == "UnauthorizedOperation":
        service = "ec2"
    return f"{_IAM_PREFIXES.get(service, service)}:{err.operation_name}" if service else err.operation_name


def _service_of(aws: Aws | None, operation: str) -> str | None:
    """Which of `aws`'s clients has `operation` (a ClientError names the operation, not the service)."""
    with getattr(aws, "_lock", threading.Lock()):
        clients = list(getattr(aws, "_clients", {}).values())
    services = {c.meta.service_model.service_name for c in clients if operation in c.meta.service_model.operation_names}
    return services.pop() if len(services) == 1 else None


_IAM_PREFIXES = {"service-quotas": "servicequotas", "elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing"}


def _decode_authorization(aws: Aws | None, message: str) -> str:
    """EC2 hides which permission failed in an encoded message; decode it when we may."""
    marker = "Encoded authorization failure message:"
    if aws is None or marker not in message:
        return ""
    words = message.split(marker, 1)[1].split()
    if not words:
        return ""
    encoded = words[0]
    try:
        decoded = aws.sts.decode_authorization_message(EncodedMessage=encoded)["DecodedMessage"]
        context = json.loads(decoded).get("context", {})
        action, resource = context.get("action"), context.get("resource")
    except (ClientError, BotoCoreError, ValueError, AttributeError, KeyError, TypeError):
        action = resource = None
    if action:
        return f" AWS says: action {action} on {resource or 'its resource'} was denied."
    # Say how to decode it by hand; the blob goes to the call log (it is long), or inline without one.
    log.info("encoded authorization failure message: %s", encoded)
    if getattr(aws, "log_path", None):
        return (" To see exactly what was denied, run `aws sts decode-authorization-message --encoded-message` "
                "with the encoded message saved in the AWS call log.")
    return f" To see exactly what was denied, run `aws sts decode-authorization-message --encoded-message {encoded}`."
