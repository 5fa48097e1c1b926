"""Properties of the command line under arbitrary input (issue 4), with hypothesis.

1. Whatever argv holds (random flags in random order, unknown flags, empty strings, unicode,
   numbers), `main()` returns 0, 1 or 2 and never raises; a failure prints an `error:` line and,
   without --debug, no traceback. These runs use the CLI's own clients inside the moto account, so
   an argv that gets through validation talks to moto, never to the network: --sandbox (a local
   server) is left out, --endpoint-url only gets values that are not URLs, the public-IP lookup is
   stubbed, and --key-dir stays inside the test's directory.
2. The typed flags (--volume-size, --name, --ssh-cidr) are judged before anything else: with stdin
   not a terminal and no --yes, the error names the bad flag when its value is bad and --yes
   otherwise, and no AWS call is needed (no credentials exist).
"""
from __future__ import annotations

import io
import ipaddress
import re

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import WIDE, CliResult

REGIONS = ["us-west-2", "us-east-1", "ap-northeast-1", "eu-central-1", "us-west-9", ""]

# Values that are plausible for a flag; hypothesis mixes them with junk.
VALID = {
    "--instance-type": ["m5.xlarge", "c5.large", "p3.2xlarge"],
    "--accelerator-type": ["eia2.medium", "eia1.large", "eia9.bogus"],
    "--os": ["amazon-linux", "ubuntu-16.04"],
    "--ami-id": ["ami-0123456789abcdef0", "ami-nope"],
    "--vpc-id": ["vpc-12345678"],
    "--subnet-id": ["subnet-12345678"],
    "--key-name": ["mykey"],
    "--name": ["demo", "a", "x-1", "Bad_Name"],
    "--ssh-cidr": ["203.0.113.7/32", "0.0.0.0/0", "::1/128", "1.2.3.4"],
    "--volume-size": ["8", "100", "16384", "7", "0", "-1"],
    "--region": REGIONS,
    "--profile": ["default", "nosuch"],
    "--output": ["text", "json"],
    "--endpoint-url": ["not-a-url", "localhost:9"],  # never a URL: nothing may reach the network
    "--key-dir": ["keys", "~/keys"],
}
SWITCHES = ["--yes", "-y", "--debug", "--dry-run", "--new-key", "--all-regions", "--keep-shared", "--help",
            "--version"]
COMMANDS = [[], ["setup"], ["teardown"], ["list"]]

ALL_FLAGS = [*VALID, *SWITCHES, "--sandbox", "--instance-type", "--name"]


def not_a_real_flag(value: str) -> bool:
    """argparse accepts unambiguous prefixes (`--key-d`, `--end`, `--sand`) and `--flag=value`: junk that
    spelled one would smuggle in a value this file keeps away from the network and the real disk."""
    head = value.split("=", 1)[0]
    return not (head.startswith("--") and any(flag.startswith(head) for flag in ALL_FLAGS))


junk = st.one_of(
    st.just(""),
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec="ascii", categories=("L", "N", "P")), max_size=12),
    st.integers(min_value=-10**6, max_value=10**6).map(str),
).filter(not_a_real_flag)


def value_for(flag: str):
    if flag == "--endpoint-url":  # no "//": botocore (and the tool) cannot make a URL of it
        return st.one_of(st.sampled_from(VALID[flag]), junk.filter(lambda v: "//" not in v))
    if flag == "--key-dir":  # relative, plain names only: the run's cwd is the test's tmp dir
        return st.one_of(st.sampled_from(VALID[flag]), st.from_regex(r"[a-z0-9_]{1,8}", fullmatch=True))
    return st.one_of(st.sampled_from(VALID[flag]), junk)


option = st.sampled_from(sorted(VALID)).flatmap(lambda flag: st.tuples(st.just(flag), value_for(flag)))
unknown_flag = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_", min_size=1, max_size=10).map(
    lambda s: f"--{s}").filter(not_a_real_flag)
token = st.one_of(
    option.map(list),
    option.map(list),  # twice: known flags are the likelier mistake, and they get past argparse more often
    st.sampled_from(SWITCHES).map(lambda s: [s]),
    unknown_flag.map(lambda f: [f]),
    junk.map(lambda v: [v]),  # a stray positional
)
# Half the time a command starts from flags that would run it, so random extras also reach the
# layers behind argparse (discovery, the wizard, provisioning, teardown) and not only the parser.
RUNNABLE = {
    (): [["--instance-type", "m5.xlarge"], ["--yes"], ["--region", "us-west-2"], ["--ssh-cidr", "203.0.113.7/32"]],
    ("setup",): [["--instance-type", "c5.large"], ["--yes"], ["--region", "us-west-2"],
                 ["--ssh-cidr", "203.0.113.7/32"]],
    ("teardown",): [["--name", "demo"], ["--yes"], ["--region", "us-west-2"]],
    ("list",): [["--region", "us-west-2"]],
}


@st.composite
def argv_strategy(draw):
    command = draw(st.sampled_from(COMMANDS))
    groups = list(RUNNABLE[tuple(command)]) if draw(st.booleans()) else []
    groups += draw(st.lists(token, max_size=5))
    groups = draw(st.permutations(groups))  # flags in any order (each flag keeps its value)
    return command + [piece for group in groups for piece in group]


@pytest.fixture
def quiet_retries(monkeypatch):
    """botocore backs off between retries with time.sleep in botocore.endpoint: make that free."""
    import time

    class NoSleep:
        def __getattr__(self, name):
            return getattr(time, name)

        @staticmethod
        def sleep(seconds):
            return None

    monkeypatch.setattr("botocore.endpoint.time", NoSleep())


@pytest.fixture
def run_main(account, tmp_path, monkeypatch, quiet_retries):
    """main() with its own clients (so --region/--profile/--endpoint-url are real) inside moto."""
    from amazonei_setup.cli.environment import Environment
    from amazonei_setup.cli.main import main

    monkeypatch.chdir(tmp_path)

    def run(argv: list[str], *, tty: bool = False) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        env = Environment(stdin_isatty=tty, stdout=out, stderr=err, public_ip_lookup=lambda: None,
                          sleep=lambda seconds: None, width=WIDE)
        code = main(list(argv), env)
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(argv=argv_strategy())
def test_any_argv_gives_a_clean_exit(run_main, argv):
    result = run_main(argv)
    event(f"exit {result.code}, {'reached AWS' if 'Looking' in result.stderr else 'no AWS call'}")
    assert result.code in (0, 1, 2), (argv, result)
    if result.code != 0:
        assert re.search(r"^error: \S", result.stderr, re.M), (argv, result.stderr)
        if "--debug" not in argv:
            assert "Traceback" not in result.stderr, (argv, result.stderr)
    if result.code != 0 and argv.count("--output") == 1 and argv[argv.index("--output") + 1:][:1] == ["json"]:
        assert '"status": "error"' in result.stdout, (argv, result.stdout)  # --output json: the envelope


# ---- typed flags: judged before any AWS call ------------------------------------------------------

@pytest.fixture
def no_aws(monkeypatch, quiet_retries):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    from amazonei_setup.cli.environment import Environment
    from amazonei_setup.cli.main import main

    def run(argv: list[str]) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        env = Environment(stdin_isatty=False, stdout=out, stderr=err, public_ip_lookup=lambda: None,
                          sleep=lambda seconds: None, width=WIDE)
        return CliResult(main(argv, env), out.getvalue(), err.getvalue())

    return run


def volume_ok(value: str) -> bool:
    try:
        return 8 <= int(value) <= 16384
    except ValueError:
        return False


def name_ok(value: str) -> bool:
    return re.fullmatch(r"[a-z0-9][a-z0-9-]{0,31}", value) is not None


def cidr_ok(value: str) -> bool:
    """A range, or (since issue 15) a bare address, taken as that one host; surrounding blanks are dropped."""
    text = value.strip()
    try:
        ipaddress.ip_network(text, strict=False) if "/" in text else ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


TYPED = {"--volume-size": (volume_ok, st.one_of(st.integers(-100, 20000).map(str), junk)),
         "--name": (name_ok, st.one_of(st.from_regex(r"[a-z0-9][a-z0-9-]{0,35}", fullmatch=True), junk)),
         "--ssh-cidr": (cidr_ok, st.one_of(st.ip_addresses().map(str), st.ip_addresses().map(lambda a: f"{a}/32"),
                                           junk))}


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_typed_flags_are_judged_first_and_named(no_aws, data):
    flag = data.draw(st.sampled_from(sorted(TYPED)))
    ok, values = TYPED[flag]
    value = data.draw(values)
    argv = ["--region", "us-west-2", "--instance-type", "m5.xlarge", f"{flag}={value}"]
    result = no_aws(argv)
    assert result.code == 2, (argv, result)
    assert "Traceback" not in result.stderr
    message = result.stderr[result.stderr.index("error:"):]
    expected = "--yes" if ok(value) else flag
    assert expected in message, (argv, message)


def _fingerprint(parser) -> list:
    """Everything parsing and --help depend on, of the parser and each command's."""
    import argparse

    def flags(p) -> list:
        return [(a.option_strings, a.dest, repr(a.default), repr(a.choices) if not isinstance(
            a, argparse._SubParsersAction) else sorted(a.choices), a.required, a.nargs, a.const,
                 getattr(a.type, "__qualname__", repr(a.type)), a.help, a.metavar) for a in p._actions]

    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [parser.prog, parser.format_help(), flags(parser)] + [
        (name, command.prog, command.format_help(), flags(command)) for name, command in commands.choices.items()]


def test_the_parser_depends_on_its_argument_alone(monkeypatch, tmp_path):
    """conftest builds the CLI's parser once per process (parser_built_once): sound only while build_parser
    reads nothing but its argument. Build it afresh under another environment, program name, home and clock,
    and compare everything parsing and --help depend on."""
    import sys
    import time

    import amazonei_setup.cli.main as cli

    fresh = getattr(cli.build_parser, "__wrapped__", cli.build_parser)  # conftest's cache keeps the function
    monkeypatch.setenv("COLUMNS", "100")  # --help's width is read as help is printed: the same for both
    first = _fingerprint(fresh())
    for name, value in {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "ap-south-1", "AWS_PROFILE": "other",
                        "AMAZONEI_SETUP_HOME": str(tmp_path / "elsewhere"), "HOME": str(tmp_path),
                        "LANG": "de_DE.UTF-8", "NO_COLOR": "1", "CI": "true"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["/opt/other/amazonei-setup", "--sandbox"])
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 86_400 * 400)
    assert _fingerprint(fresh()) == first
    assert _fingerprint(cli.build_parser()) == first, "the cached parser is the one a fresh build gives"
