"""Shared fixtures: an isolated home, a moto account seeded like a fresh real one, a CLI runner,
a snapshot of what the account holds, and fault injection through botocore's before-call hook.

Tests never reach real AWS or the network: credentials are dummies, AWS_ENDPOINT_URL is cleared
(inside mock_aws it would bypass the mock), and the public-IP lookup is replaced.
"""
from __future__ import annotations

import atexit
import copy
import functools
import gzip
import importlib.util
import io
import json
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.exceptions import ClientError


def _small_moto_amis() -> None:
    """moto builds an EC2 backend several times per test (seeding, snapshots, mock_aws's reset), and each
    build loads ~1,300 bundled images: ~0.2 s a build. Point MOTO_AMIS_PATH at the three bundled images the
    tests can meet (the plain Amazon Linux image a test launches, and the two 2017 Deep Learning AMIs that
    the DLAMI search must rank below the ones the tests seed); moto then skips its per-region lists too.
    Must run before moto is imported (it reads the variable at import); subprocesses inherit it."""
    if "MOTO_AMIS_PATH" in os.environ:
        return
    spec = importlib.util.find_spec("moto")
    bundled = Path(spec.origin).parent / "ec2" / "resources" / "amis.json.gz"
    images = [image for image in json.loads(gzip.decompress(bundled.read_bytes()))
              if image["name"] in MOTO_IMAGES_KEPT]
    assert len(images) == len(MOTO_IMAGES_KEPT), "moto's bundled images changed: update MOTO_IMAGES_KEPT"
    for image in images:
        image.pop("creation_date", None)  # parsed in place by moto: a second backend would crash on it
    handle, path = tempfile.mkstemp(prefix="moto-amis-", suffix=".json")
    with os.fdopen(handle, "w") as out:
        json.dump(images, out)
    os.environ["MOTO_AMIS_PATH"] = path
    atexit.register(os.unlink, path)  # pytest-xdist's workers inherit the variable, so they use this one file


MOTO_IMAGES_KEPT = {"amzn-ami-hvm-2017.09.1.20171103-x86_64-gp2", "Deep Learning AMI Amazon Linux - 3.3_Oct2017",
                    "Deep Learning AMI Ubuntu Linux - 2.4_Oct2017"}

_small_moto_amis()


def _one_cache_per_run() -> None:
    """Every process-level test starts the tool in a new home; its first command would parse botocore's models
    again (~0.3 s a process) and pickle them into that home. One cache directory (paths.cache_dir honours
    XDG_CACHE_HOME) for the whole run, inherited by pytest-xdist's workers and every subprocess."""
    if "XDG_CACHE_HOME" in os.environ and os.environ.get("AMAZONEI_SETUP_TEST_CACHE") == os.environ["XDG_CACHE_HOME"]:
        return
    path = tempfile.mkdtemp(prefix="amazonei-setup-test-cache-")
    os.environ["XDG_CACHE_HOME"] = os.environ["AMAZONEI_SETUP_TEST_CACHE"] = path
    atexit.register(shutil.rmtree, path, True)


def _keep_compiled_bytecode() -> None:
    """With PYTHONDONTWRITEBYTECODE set (some machines set it everywhere), every pytest-xdist worker and every
    subprocess compiled the tool's ~11,000 lines again, and pytest rewrote the asserts of every test module and of
    the hypothesis package (its pytest plugin's package) again: ~7.5 s of CPU per worker before its first test,
    ~2.3 s with the bytecode kept. So the run writes bytecode as Python does by default, into the __pycache__
    directories .gitignore leaves out, for this process (pytest checks at each import) and its children.
    Not PYTHONPYCACHEPREFIX: Python then reads bytecode only under that prefix, so each process compiled all of
    boto3, botocore and moto from source as well (~12 s of CPU per worker in a fresh directory)."""
    sys.dont_write_bytecode = False
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


_one_cache_per_run()
_keep_compiled_bytecode()


def _every_botocore_session_shares_one_loader() -> None:
    """The tool's Sessions share one botocore loader (aws.shared_loader); every other Session in the test process
    shares it too: moto's own, and the plain boto3 clients tests use to look at the account. Each would otherwise
    re-parse endpoints.json and every service model it builds a client for. Set as this file is imported, before
    any test module is collected: moto's EC2 models, which test_moto_speed imports, build three Sessions as they
    load (~0.6 s of CPU a pytest-xdist worker when those parsed endpoints.json each)."""
    from amazonei_setup.aws.client import every_session_shares_the_loader

    every_session_shares_the_loader()


_every_botocore_session_shares_one_loader()

REGION = "us-west-2"
ACCOUNT = "123456789012"
SSH_CIDR = "198.51.100.4/32"
# The screen width of tests that assert on what the tool says rather than on its layout: wide enough that rich
# never folds a sentence or a path (a temp path's length differs between runs, e.g. under pytest-xdist).
# Layout tests pass their own width (test_ui, test_terminal).
WIDE = 1000


def isolate(mp: pytest.MonkeyPatch, home) -> None:
    """Point HOME, the tool's home and the AWS config at `home`; dummy credentials; no real endpoint,
    profile or region from the caller's shell. One list, for function- and module-scoped fixtures."""
    mp.setenv("HOME", str(home))
    mp.setenv("AMAZONEI_SETUP_HOME", str(home / ".amazonei-setup"))
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.setenv("AWS_CONFIG_FILE", str(home / "aws-config"))
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws-credentials"))
    mp.setenv("AMAZONEI_SETUP_SANDBOX_IDLE_S", "300")  # a backstop: each test stops its sandbox server itself
    # The in-process moto account has no machine on port 22: say so, as an embedding program's tests would (the tool
    # never guesses it from moto being loaded). Tests of the SSH wait pass Environment(emulated=False).
    mp.setenv("AMAZONEI_SETUP_EMULATED", "1")
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION",
                "AWS_REGION", "CI"):
        mp.delenv(var, raising=False)
    # A Host entry is checked against DNS (sshconfig.dns_resolves) against real AWS: no test asks DNS. This machine's
    # own names (localhost, /etc/hosts) are still found, by sshconfig.local_name; a test that wants a name DNS
    # knows replaces this again.
    from amazonei_setup.local import sshconfig

    mp.setattr(sshconfig, "dns_resolves", lambda name: False)


def share_event_alias_answers() -> None:
    """botocore renames old event names (EVENT_ALIASES, ~65 of them) on every emit and register, caching each answer
    in the emitter; but every Session and every client (a copy of its Session's emitter) starts with an empty cache,
    so each new client works out the same ~200 names again (~5% of the suite's CPU; ~50 ms of `list --all-regions`,
    so the tool itself does not do this: bench/private_names.py). The aliases are botocore's fixed table unless a
    caller passes its own, so emitters with that table share one cache. Tests only: botocore's insides, no fallback
    needed."""
    import botocore.hooks

    aliaser = botocore.hooks.EventAliaser
    if getattr(aliaser, "shared_answers", False):
        return
    answers: dict[str, str] = {}
    init = aliaser.__init__

    def __init__(self, event_emitter, event_aliases=None):
        init(self, event_emitter, event_aliases)
        if self._event_aliases == botocore.hooks.EVENT_ALIASES:
            self._alias_name_cache = answers

    def __copy__(self):
        clone = self.__class__(copy.copy(self._emitter), copy.copy(self._event_aliases))
        clone._alias_name_cache = self._alias_name_cache  # the same aliases give the same answers
        return clone

    aliaser.__init__, aliaser.__copy__, aliaser.shared_answers = __init__, __copy__, True


@pytest.fixture(scope="session", autouse=True)
def shared_client_classes():
    """Every client the tests build, too, uses the tool's cache of client classes (and, see above, its loader)."""
    from amazonei_setup.aws.client import share_client_classes

    share_client_classes()  # the tool's own cache of client classes, for every client the tests build too
    share_event_alias_answers()
    # Every handler registered on a client's events (botocore's ~100 per client, moto's, ours) is checked for
    # **kwargs with inspect.getfullargspec: ~3% of the suite. The answer is the function's, so ask once each.
    import botocore.hooks

    accepts_kwargs = botocore.hooks.accepts_kwargs
    answers: dict = {}

    def cached_accepts_kwargs(func):
        code = getattr(getattr(func, "__func__", func), "__code__", None)
        if code is None:  # a partial or a callable object: ask every time
            return accepts_kwargs(func)
        if code not in answers:
            answers[code] = accepts_kwargs(func)
        return answers[code]

    botocore.hooks.accepts_kwargs = cached_accepts_kwargs
    yield
    botocore.hooks.accepts_kwargs = accepts_kwargs


@pytest.fixture(scope="session", autouse=True)
def argparse_translations_looked_up_once():
    """argparse passes each of its own messages through gettext as it builds a parser; with no translation
    installed (none is), gettext searches the locale directories on disk again for every message: 3.5 ms of the
    8.3 ms each command spends building its parser, ~1,500 times a run. The answer cannot change within the
    run (the locale variables are not touched), so it is asked once per message."""
    import argparse

    translate, translate_plural = argparse._, argparse.ngettext
    argparse._ = functools.cache(translate)
    argparse.ngettext = functools.cache(translate_plural)
    yield
    argparse._, argparse.ngettext = translate, translate_plural


@pytest.fixture(scope="session", autouse=True)
def parser_built_once():
    """Every in-process command builds the CLI's argparse parser (~15 ms: ten commands, ~150 flags), ~1,000 times a
    run (~5% of the suite). `build_parser` is a function of its arguments only: no environment, argv, clock or
    home (test_cli_properties' test_the_parser_depends_on_its_argument_alone checks this), and parsing never
    changes the parser, so the tests build each parser once per process. A change that makes it depend on more
    fails that test: drop this cache then."""
    import amazonei_setup.cli.main as cli

    build = cli.build_parser
    cli.build_parser = functools.cache(build)
    yield
    cli.build_parser = build


@pytest.fixture(scope="session", autouse=True)
def quick_moto():
    """What the sandbox changes in moto (sandbox.make_moto_behave: RunInstances honours ClientToken, as EC2 does;
    moto_speed's memoized answers), for every test; and one cost moto pays that says nothing about our
    code: a new 2048-bit RSA key for every CreateKeyPair, and another for the KMS key behind the first encrypted
    EBS volume of each account (~10% of the suite): moto gets one key per size, made once."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from amazonei_setup.sandbox.account import make_moto_behave

    original_generate = rsa.generate_private_key
    made: dict[tuple, object] = {}

    def generate_private_key(public_exponent, key_size, backend=None):
        key = (public_exponent, key_size)
        if key not in made:
            made[key] = original_generate(public_exponent=public_exponent, key_size=key_size)
        return made[key]

    rsa.generate_private_key = generate_private_key
    make_moto_behave()
    # mock_aws's reset drops every account's backends, and each new one asks botocore for the regions of its
    # service (an lru_cache on the method, keyed by the new backend, so never hit): ~5% of the suite. The
    # regions of a service do not change within a process.
    from moto.core.base_backend import AccountSpecificBackend

    generate_regions = AccountSpecificBackend._generate_regions
    regions: dict[str, list[str]] = {}

    def cached_regions(self, service_name):
        if service_name not in regions:
            regions[service_name] = generate_regions(self, service_name)
        return list(regions[service_name])

    AccountSpecificBackend._generate_regions = cached_regions
    # mock_aws also routes the `requests` library's calls to AWS URLs into moto: on every start it registers a
    # callback per HTTP method and URL pattern of every service (~1,400 objects, ~4% of the suite). Neither the
    # tool nor the tests call AWS through `requests` (botocore is intercepted by moto's before-send stubber,
    # which this keeps), so only moto's own last pattern stays: a stray `requests` call to any AWS URL is
    # answered "not implemented" and never leaves the machine.
    import re

    from moto.core import models as moto_models

    enable_patching = moto_models.MockAWS._enable_patching
    any_aws_url = re.compile(r"https?://.+\.amazonaws.com/.*")

    def enable_patching_for_botocore(self, reset: bool = True) -> None:
        moto_models.botocore_stubber.enabled = True
        if reset:
            self.reset()
        moto_models.responses_mock.start()
        for method in moto_models.RESPONSES_METHODS:
            moto_models.responses_mock.add(moto_models.CallbackResponse(
                method=method, url=any_aws_url, callback=moto_models.not_implemented_callback))

    moto_models.MockAWS._enable_patching = enable_patching_for_botocore
    process_request = _route_each_url_once()
    yield
    from moto.core.botocore_stubber import BotocoreStubber

    BotocoreStubber.process_request = process_request
    moto_models.MockAWS._enable_patching = enable_patching
    AccountSpecificBackend._generate_regions = generate_regions
    rsa.generate_private_key = original_generate


def _route_each_url_once():
    """moto's in-process stub finds the handler of every request anew: it matches the URL against each service's
    patterns in turn (~180 regular expressions for an EC2 call), then builds that service's us-east-1 backend of
    the default account to read its URL table, which mock_aws's reset throws away, so each test built EC2, IAM,
    STS, SSM... in us-east-1 once more, a region most tests never use (~10% of the suite). The handler of a URL is
    the same every time (a response class's dispatch function), so find it once per URL, as moto does, and call it
    as moto does after that. A URL moto does not route (or a passthrough/whitelist setting) takes moto's own path.
    Returns moto's method, to put back."""
    import re

    from moto.core import botocore_stubber as stub

    original = stub.BotocoreStubber.process_request
    needed = ("get_equivalent_url_in_aws_domain", "backend_index", "BackendDict", "passthrough_url",
              "passthrough_service", "service_whitelisted", "normalize_request")
    if not all(hasattr(stub, name) for name in needed):  # another moto (e.g. the floor's 5.1.22): its own routing
        return original
    routes: dict[str, tuple] = {}

    def route(clean_url: str) -> tuple | None:
        import moto.backends as backends
        from moto.core import DEFAULT_ACCOUNT_ID

        for service, pattern in stub.backend_index.backend_url_patterns:  # moto's own search, once per URL
            if pattern.match(clean_url):
                backend_dict = backends.get_backend(service)
                if isinstance(backend_dict, stub.BackendDict):
                    account = backend_dict[DEFAULT_ACCOUNT_ID]
                    backend = account["us-east-1"] if "us-east-1" in account else account["aws"]
                else:
                    backend = backend_dict["global"]
                for url, handler in backend.urls.items():
                    if re.compile(url).match(clean_url):
                        return service, handler
                return None
        return None

    def process_request(self, request):
        parsed_url, _ = stub.get_equivalent_url_in_aws_domain(request.url)
        clean_url = f"{parsed_url.scheme}://{parsed_url.netloc}{parsed_url.path}"
        if clean_url not in routes:
            routes[clean_url] = route(clean_url)
        found = routes[clean_url]
        if (found is None or stub.passthrough_url(clean_url) or stub.passthrough_service(found[0])
                or not stub.service_whitelisted(found[0])):
            return original(self, request)
        from moto.core.exceptions import HTTPException
        from moto.moto_api import recorder

        normalized_request = stub.normalize_request(request)
        try:
            recorder._record_request(normalized_request)
            return found[1](normalized_request, normalized_request.raw_url, normalized_request.headers)
        except HTTPException as e:
            return e.code, e.get_headers(), e.get_body()

    stub.BotocoreStubber.process_request = process_request
    return original


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test touches the real home, real profiles, or a real endpoint."""
    home = tmp_path / "home"
    home.mkdir()
    isolate(monkeypatch, home)
    return home


@pytest.fixture(autouse=True)
def no_sandbox_server_outlives_its_test(tmp_path):
    """A `--sandbox` command leaves its account's server running for the next command; a test's servers (their
    state directories are under its tmp_path) stop with it."""
    yield
    from amazonei_setup.sandbox import server as sandbox_server

    for log in tmp_path.rglob(sandbox_server.SERVER_LOG):  # written as a server is started, before it answers
        sandbox_server.stop(log.parent)


@pytest.fixture
def account(isolated_env):
    """A moto account with the Deep Learning AMIs seeded in us-west-2; yields an Aws for it."""
    from moto import mock_aws

    from amazonei_setup.aws.client import Aws
    from amazonei_setup.sandbox.account import seed_deep_learning_amis

    with mock_aws():
        seed_deep_learning_amis(ACCOUNT, REGION)
        yield Aws(REGION)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict:
        return json.loads(self.stdout)


@pytest.fixture
def cli(account):
    """Run the CLI in-process against the moto account: cli("--instance-type", "m5.xlarge", ...)."""
    from amazonei_setup.cli.environment import Environment
    from amazonei_setup.cli.main import main

    def run(*argv: str, tty: bool = False, asker=None, public_ip: str | None = "198.51.100.4",
            own_clients: bool = False, width: int = WIDE) -> CliResult:
        """own_clients=True lets the CLI build its Aws from the flags (tests of --region/--profile);
        by default it uses the fixture's `account`, whose clients tests can instrument."""
        out, err = io.StringIO(), io.StringIO()
        env = Environment(stdin_isatty=tty, stdout=out, stderr=err, public_ip_lookup=lambda: public_ip,
                          asker=asker, sleep=lambda seconds: None, width=width,
                          aws=None if own_clients else account)
        code = main(list(argv), env)
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


def setup_args(name: str = "demo", *extra: str) -> list[str]:
    """The flags of a complete non-interactive setup in the seeded account."""
    return ["--region", REGION, "--instance-type", "m5.xlarge", "--yes", "--name", name, "--ssh-cidr", SSH_CIDR,
            *extra]


# ---- signals as a terminal delivers them, whatever pytest inherited ----------------------------------------------
# A program started from a terminal has SIGINT, SIGTERM and SIGHUP at their defaults. pytest may have inherited some
# of them as *ignored* (`nohup` ignores SIGHUP, `&` in a script ignores SIGINT, some CI runners start jobs either
# way), and an ignored signal stays ignored in every child and in the CLI, which rightly leaves an inherited
# "ignore" alone. So a test that sends a signal first puts the defaults back, and the suite's verdict does not
# depend on how pytest was started.
TERMINAL_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def default_signal_handlers() -> None:
    """`preexec_fn` for a process a test will signal (subprocess.Popen, pexpect.spawn): the defaults, in the child
    only. (Popen's restore_signals puts back SIGPIPE and SIGXFSZ alone.)"""
    for signum in TERMINAL_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


@pytest.fixture
def default_signals():
    """The same in this process, for in-process CLI runs that get signals: SIGINT raises KeyboardInterrupt (Python's
    default handler), SIGTERM and SIGHUP have their default action; what was there comes back afterwards."""
    previous = {signum: signal.getsignal(signum) for signum in TERMINAL_SIGNALS}
    for signum in TERMINAL_SIGNALS:
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    yield
    for signum, handler in previous.items():
        if handler is not None:  # None: set outside Python, which Python cannot put back
            signal.signal(signum, handler)


def snapshot(aws) -> dict[str, set]:
    """What the account holds that setup could create: compare before/after to prove no orphans."""
    ec2, iam = aws.ec2, aws.iam
    live = ["pending", "running", "stopping", "stopped", "shutting-down"]
    pages = ec2.get_paginator("describe_instances").paginate(Filters=[{"Name": "instance-state-name", "Values": live}])
    instances = {i["InstanceId"] for page in pages for r in page["Reservations"] for i in r["Instances"]}
    return {
        "instances": instances,
        "security_groups": {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]
                            if g["GroupName"] != "default"},
        "endpoints": {e["VpcEndpointId"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]
                      if e.get("State", "").lower() not in ("deleted", "deleting")},
        "key_pairs": {k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]},
        "roles": {r["RoleName"] for r in iam.list_roles()["Roles"]},
        "instance_profiles": {p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]},
    }


def cfn_lint(template_text: str) -> list:
    """cfn-lint's findings for a template, as `cfnlint.api.lint(text, config=ManualArgs(regions=[REGION]))` gives
    them, from one Runner per process: `lint` builds a Runner, which loads every rule from its directory, on
    each call (~0.6 s). cfn-lint's own command line checks many templates with one Runner."""
    from cfnlint.decode import decode_str

    template, errors = decode_str(template_text)
    if errors or template is None:
        return errors or []
    return list(_cfn_lint_runner().validate_template(template))


@functools.cache
def _cfn_lint_runner():
    from cfnlint.api import ManualArgs
    from cfnlint.config import ConfigMixIn
    from cfnlint.runner import Runner

    return Runner(ConfigMixIn(**ManualArgs(regions=[REGION])))


def inject(client, operation: str, code: str, message: str = "injected", *, times: int | None = None,
           status: int = 400):
    """Make `client.<operation>` raise ClientError(code) before it reaches moto (times=None: always).

    Returns a list that records each injected call's params, so tests can assert on them.
    """
    calls: list[dict] = []

    def hook(params, **_):
        if times is not None and len(calls) >= times:
            return None
        calls.append(params)
        raise ClientError({"Error": {"Code": code, "Message": message},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, operation)

    client.meta.events.register(f"before-call.{client.meta.service_model.service_name}.{operation}", hook)
    return calls


def record(client, operation: str) -> list[dict]:
    """Capture the API parameters of every `operation` call as the code passed them (moto drops
    some, e.g. the EI accelerator spec). before-parameter-build sees the API params; before-call
    sees the serialized HTTP request instead."""
    seen: list[dict] = []
    client.meta.events.register(
        f"before-parameter-build.{client.meta.service_model.service_name}.{operation}",
        lambda params, **_: seen.append(copy.deepcopy(params)))
    return seen


@pytest.hookimpl(optionalhook=True)  # `-p no:xdist` (one process, e.g. for a profiler) still loads this file
def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker per core, plus one. The process-level tests spend part of their time waiting for the
    processes they start (a server coming up, a poll's pause), and one more worker keeps the cores busy then.
    Measured on 2 cores, whole suite, same session: 2 workers 284 s, 3 workers 258 s, 4 workers 268 s (CPU time
    the same in all three). PYTEST_XDIST_AUTO_NUM_WORKERS still decides when set (xdist's own hook reads it)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores + 1


# The modules CI runs again in a venv at the declared floor of every dependency (`-m "slow or floor"`, .ci/run):
# the CLI end to end, the sandbox and its server, and the libraries' insides.
FLOOR_MODULES = {"test_e2e.py", "test_sandbox.py", "test_sandbox_server.py", "test_dependencies.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in FLOOR_MODULES:
            item.add_marker(pytest.mark.floor)
    _spread_the_slow_tests(items)


def _spread_the_slow_tests(items) -> None:
    """Spread the ~25 process-level tests (~200 s of a worker's time together) over the first half of the run.
    pytest-xdist hands each worker a contiguous block of the list to begin with, so with these tests all at the
    front, one worker ran every one of them in a row and finished last; spread out, every worker gets its share,
    and none is left for the end."""
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    quick = [item for item in items if item.get_closest_marker("slow") is None]
    if not slow:
        return
    step = max(1, len(items) // 2 // len(slow))
    ordered: list = []
    for index, item in enumerate(slow):
        ordered.append(item)
        ordered.extend(quick[index * (step - 1):(index + 1) * (step - 1)])
    ordered.extend(quick[len(slow) * (step - 1):])
    assert len(ordered) == len(items)
    items[:] = ordered


class CallRecorder:
    """Every AWS call the tool's clients make while recording, as IAM actions (`ec2:RunInstances`): a handler on
    aws.py's call log (before-parameter-build, on every client `Aws` builds), so nothing is mocked and worker
    threads are seen too. Only the tool's own clients log: calls a test makes with its own boto3 clients are not
    counted, but calls through the `account` fixture's clients are, so record around `cli(...)` only."""

    def __init__(self):
        import logging
        import re
        import threading

        self.actions: set[str] = set()
        self._lock = threading.Lock()
        self._pattern = re.compile(r"^call (?P<service>[\w-]+)\.(?P<operation>\w+) ")
        recorder = self

        class Handler(logging.Handler):
            def emit(self, record):
                found = recorder._pattern.match(record.getMessage())
                if found:
                    with recorder._lock:
                        recorder.actions.add(f"{_iam_prefix(found['service'])}:{found['operation']}")

        self.handler = Handler(level=logging.INFO)

    def __enter__(self):
        import logging

        logger = logging.getLogger("amazonei_setup.aws.client")
        self._level = logger.level
        logger.setLevel(logging.INFO)
        logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        import logging

        logger = logging.getLogger("amazonei_setup.aws.client")
        logger.removeHandler(self.handler)
        logger.setLevel(self._level)
        return False


def _iam_prefix(service: str) -> str:
    """botocore's service name -> the IAM action prefix (they differ for a few services)."""
    return {"cloudwatch": "cloudwatch", "service-quotas": "servicequotas", "elbv2": "elasticloadbalancing",
            "elb": "elasticloadbalancing"}.get(service, service)


@pytest.fixture
def aws_calls():
    """Record the IAM actions of every AWS call the tool makes during the test (see CallRecorder)."""
    with CallRecorder() as recorder:
        yield recorder.actions


def console_script(directory: Path) -> Path:
    """What pip writes for the `amazonei-setup` entry point (amazonei_setup.cli.main:entry), importing the package
    from this checkout."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "amazonei-setup"
    root = Path(__file__).resolve().parents[1]
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(root)!r})\n"
                      "from amazonei_setup.cli.main import entry\nentry()\n")
    script.chmod(0o755)
    return script


@pytest.fixture
def quota_of(monkeypatch):
    """Set one of the emulated account's vCPU quotas (what get_service_quota answers)."""
    from amazonei_setup.sandbox import account as sandbox

    def set_quota(code: str, value: float) -> None:
        name, _ = sandbox.SANDBOX_VCPU_QUOTAS[code]
        monkeypatch.setitem(sandbox.SANDBOX_VCPU_QUOTAS, code, (name, value))

    return set_quota
