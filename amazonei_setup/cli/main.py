"""Command line: parse, run one command (commands/*: each returns a Result), render it once (render.py),
map failures to exit codes.

Knows no boto3. Heavy imports (boto3, rich, questionary, moto) happen after parsing, so
`--help` and usage errors stay instant. Exit codes: 0 ok, 1 AWS/runtime failure, 2 usage
error, 130 interrupted.
"""
from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable

from amazonei_setup import __version__
from amazonei_setup.cli.environment import Environment
from amazonei_setup.core import rules

DAY_TWO = ("status", "connect", "stop", "start", "exec")  # the commands on one deployment, found by name
# In a deployment's order of life: create, use, stop and start, remove; then the account-wide and offline ones.
FROM_TAGS = "the region the deployment lives in, from its tags"  # --region's default for a named deployment
COMMANDS = ("setup", *DAY_TWO, "idle-stop", "teardown", "list", "cost", "export", "permissions", "completion")

# {prog}: the program as the user started it (build_parser's prog), so the examples run as printed.
EPILOG = """\
examples:
  {prog} --sandbox --region us-west-2 --instance-type m5.xlarge --yes
  {prog} --region us-west-2 --instance-type m5.xlarge
  {prog} --region us-west-2 --instance-type c5.large --accelerator-type eia2.large \\
      --key-name mykey --ssh-cidr 203.0.113.7/32 --yes --output json
  {prog} list --region us-west-2
  {prog} teardown --region us-west-2 --name amazonei-3fa9c1 --yes
"""

EXPORT_EPILOG = """\
examples:
  {prog} export --region us-west-2 --instance-type m5.xlarge --yes --out ei.yaml
  {prog} export --region us-west-2 --instance-type c5.large --count 3 --yes --out fleet.yaml
  {prog} export --sandbox --region us-west-2 --instance-type m5.xlarge --yes --deploy
  {prog} teardown --region us-west-2 --name NAME --yes     (deletes the stack too)
"""
DEFAULT_PROG = "python amazonei_setup.py"  # plan.LAUNCHER: the name when the caller gives none


# ---- argument parsing ------------------------------------------------------------------------

def _text(value: str) -> str:
    """Any string flag: an empty value would silently mean 'not given' and pick a default."""
    if not value.strip():
        raise argparse.ArgumentTypeError("an empty value is not allowed (leave the flag out to use the default)")
    return value.strip()


def _ruled(rule: Callable, value, *args):
    """A rule from rules.py as an argparse type: its sentence becomes argparse's message for the flag."""
    try:
        return rule(value, *args)
    except rules.RuleError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _cidr(value: str) -> str:
    _ruled(rules.cidr, value)  # checked now; kept as written, so the wizard can say what 10.1.2.3/24 becomes
    return value.strip()


def _volume(value: str) -> int:
    return _ruled(rules.volume_size, value)


def _instance_type(value: str) -> str:
    from amazonei_setup.core.catalog import known_instance_types

    return _ruled(rules.instance_type, _text(value), known_instance_types())


def _region(value: str) -> str:
    return _ruled(rules.region, _text(value))


MAX_COUNT = 50  # a sanity bound on --count; the real limits are the account's quotas (see the README)


def _count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a whole number of instances") from None
    if not 1 <= count <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{count} is outside 1-{MAX_COUNT}")
    return count


def _idle_minutes(value: str) -> int:
    return _ruled(rules.idle_minutes, value)


def _idle_or_off(value: str):
    return "off" if value.strip().lower() == "off" else _ruled(rules.idle_minutes, value)


def _name(value: str) -> str:
    return _ruled(rules.name, value)


SPOT_REQUIRED, SPOT_AUTO = "required", "auto"  # `--spot` alone, `--spot auto`


def _spot(value: str) -> str:
    if value == SPOT_REQUIRED:  # argparse passes a bare --spot's const through the type too
        return value
    if _text(value).lower() != SPOT_AUTO:
        raise argparse.ArgumentTypeError(f"'{value}' is not auto: pass --spot alone (Spot only) or --spot auto "
                                         "(Spot, else On-Demand)")
    return SPOT_AUTO


def _accelerator(value: str) -> str:
    from amazonei_setup.core import catalog

    value = _text(value)
    if value not in catalog.ACCELERATORS and value not in catalog.FAMILIES:
        known = ", ".join([*catalog.ACCELERATORS, *catalog.FAMILIES])
        raise argparse.ArgumentTypeError(f"'{value}' is not one of {known}")
    return value


def _unusable(value: str, kind: str) -> str | None:
    """Why a --workdir directory or --setup-script file cannot be used (the sentence names the fix), or None."""
    import os
    import shlex
    from pathlib import Path

    path = Path(value).expanduser()
    if not path.exists():
        return f"no such {'directory' if kind == 'dir' else 'file'}: pass an existing path."
    if kind == "dir" and not path.is_dir():
        return "not a directory: pass the directory to copy to ~/workdir."
    if kind == "file" and not path.is_file():
        return "not a file: pass the script to run on the instances."
    if not os.access(path, os.R_OK | (os.X_OK if kind == "dir" else 0)):
        return f"cannot be read: fix its permissions (chmod u+r{'x' if kind == 'dir' else ''} {shlex.quote(value)})."
    return None


def _check_setup_flags(args: argparse.Namespace, prog: str = DEFAULT_PROG) -> None:
    """What argparse cannot say alone: --accelerator against --accelerator-type, --instance-type and --os.

    Sets args.family (inf2/gpu or None); an EI type given with --accelerator lands in args.accelerator_type."""
    from amazonei_setup.core import catalog

    see = f"See `{prog} {args.command} --help`."
    if args.min_count and args.min_count > (args.count or 1):
        raise _UsageExit(f"--min-count {args.min_count} is more than --count {args.count or 1}: pass a --count of at "
                         f"least {args.min_count}. {see}")
    if getattr(args, "access", None) == "ssm":
        from amazonei_setup.core import access

        if args.sandbox and (args.command == "setup" or getattr(args, "deploy", False)):
            raise _UsageExit(f"{access.SANDBOX_REFUSAL} {see}")
        if args.ssh_cidr:
            raise _UsageExit(f"--ssh-cidr opens port 22, and --access ssm opens no inbound port: pass only one. {see}")
    elif getattr(args, "no_public_ip", False):
        raise _UsageExit("An instance without a public IP cannot be reached on port 22 from here: add --access ssm "
                         f"(Session Manager), or drop --no-public-ip. {see}")
    for flag, value, kind in (("--workdir", getattr(args, "workdir", None), "dir"),
                              ("--setup-script", getattr(args, "setup_script", None), "file")):
        if value and (problem := _unusable(value, kind)):  # before anything is created: nothing to roll back
            raise _UsageExit(f"{flag} {value}: {problem}")
    chosen = args.accelerator
    args.family = None
    if chosen in catalog.FAMILIES:
        if args.accelerator_type:
            raise _UsageExit(f"--accelerator {chosen} and --accelerator-type {args.accelerator_type} contradict "
                             f"each other: pass only one. {see}")
        family = catalog.FAMILIES[chosen]
        args.family = chosen
        if args.instance_type and args.instance_type not in family.instance_types:
            raise _UsageExit(f"--instance-type {args.instance_type} is not in the {chosen} family chosen with "
                             f"--accelerator {chosen}: pass --instance-type {' or '.join(family.instance_types)}, "
                             f"or drop --instance-type to take {family.default_type}. {see}")
        if args.os:
            raise _UsageExit(f"--os picks an Elastic Inference image line; --accelerator {chosen} uses the "
                             f"{family.label} Deep Learning AMI ({family.os_label}): drop --os. {see}")
        return
    if chosen:
        if args.accelerator_type and args.accelerator_type != chosen:
            raise _UsageExit(f"--accelerator {chosen} and --accelerator-type {args.accelerator_type} contradict "
                             f"each other: pass only one. {see}")
        args.accelerator_type = chosen
    # Without --instance-type the wizard asks for the EI host (with --yes: the cheapest sensible one, m5.xlarge).


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one sentence naming the fix, exit 2 (argparse's own usage dump is noise)
        raise _UsageExit(f"{_sentence(message)} See `{self.prog} --help`.")


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?")) else f"{text}."


class _UsageExit(Exception):
    pass


def _common(parser: argparse.ArgumentParser, region_default: str = "your profile's") -> None:
    aws = parser.add_argument_group("AWS connection")
    aws.add_argument("--region", type=_region,
                     help=f"AWS region (default: {region_default}); EI ran in us-east-1, us-east-2, us-west-2, "
                          "eu-west-1, ap-northeast-1, ap-northeast-2")
    aws.add_argument("--profile", type=_text, help="named profile from ~/.aws/config")
    aws.add_argument("--endpoint-url", type=_text, help="send AWS calls to this URL (e.g. a local emulator)")
    aws.add_argument("--sandbox", action="store_true",
                     help="run against a local emulated AWS account (moto); nothing real is created")
    out = parser.add_argument_group("output")
    out.add_argument("--output", choices=("text", "json"), default="text",
                     help="json: one JSON document on stdout, progress on stderr")
    out.add_argument("--debug", action="store_true", help="show tracebacks")
    out.add_argument("--yes", "-y", action="store_true", help="never prompt: take defaults and confirm")


def _setup_flags(parser: argparse.ArgumentParser, fleet_note: str = "") -> None:
    """The choices setup and export share: export resolves the very same Plan."""
    parser.add_argument("--instance-type", type=_instance_type,
                        help="EC2 instance type, e.g. m5.xlarge; asked when omitted (--yes: m5.xlarge for Elastic "
                             "Inference, the family's first type with --accelerator inf2/gpu)")
    choice = parser.add_argument_group("choices (asked interactively when omitted)")
    choice.add_argument("--accelerator-type", type=_text,
                        help="eia2.medium (default), eia2.large, eia2.xlarge, eia1.medium, eia1.large, eia1.xlarge")
    choice.add_argument("--accelerator", type=_accelerator,
                        help="an EI type as for --accelerator-type, or today's alternatives: inf2 (Inferentia2: "
                             "inf2.xlarge, inf2.8xlarge) or gpu (g4dn.xlarge, g5.xlarge, g6.xlarge)")
    choice.add_argument("--os", choices=("amazon-linux", "ubuntu-16.04"), help="Deep Learning AMI line "
                        "(default amazon-linux)")
    choice.add_argument("--ami-id", type=_text, help="use this image instead of the newest Deep Learning AMI")
    choice.add_argument("--vpc-id", type=_text, help="VPC (default: the default VPC)")
    choice.add_argument("--subnet-id", type=_text,
                        help="subnet in an AZ that offers EI (default: first with public IPs)")
    choice.add_argument("--key-name", type=_text, help="existing EC2 key pair to use")
    choice.add_argument("--new-key", action="store_true", help="create a new key pair even if you have some")
    choice.add_argument("--key-dir", type=_text, help="where a new key's .pem is saved (default ~/.ssh)")
    choice.add_argument("--name", type=_name, help="deployment name for tags and teardown (default amazonei-<random>)")
    choice.add_argument("--ssh-cidr", type=_cidr, help="who may SSH in (default: your public address/32)")
    choice.add_argument("--access", choices=("ssh", "ssm"),
                        help="how you get in: ssh (port 22 open to --ssh-cidr) or ssm (no inbound port: ssh through "
                             "AWS Systems Manager Session Manager; needs the AWS CLI and its Session Manager plugin "
                             "here). Default: ssh, or what the deployment has")
    choice.add_argument("--no-public-ip", action="store_true",
                        help="with --access ssm: launch without a public IP (a private subnet implies it); the SSM "
                             "agent then reaches AWS through the subnet's NAT gateway, else the VPC's "
                             "ssm/ssmmessages/ec2messages endpoints (shared, or created at ~$0.01/h each)")
    choice.add_argument("--volume-size", type=_volume, help="root volume GiB (default 100)")
    choice.add_argument("--idle-stop", type=_idle_minutes, metavar="MINUTES",
                        help="stop each instance after MINUTES (10-1440, a multiple of 5) of low CPU and network: a "
                             "CloudWatch alarm, no agent (default: off; asked interactively)")
    choice.add_argument("--spot", nargs="?", const=SPOT_REQUIRED, type=_spot, metavar="auto",
                        help="launch on Spot (usually well under half the On-Demand price): a persistent request that "
                             "stops the instance when EC2 reclaims it (the volume and your work stay) and starts it "
                             "again when capacity returns; `--spot` fails if EC2 refuses Spot, `--spot auto` then "
                             "launches On-Demand. Elastic Inference allowed Spot hosts (the accelerator itself was "
                             "billed On-Demand). Not with export")
    fleet = parser.add_argument_group("several instances")
    fleet.add_argument("--count", type=_count, help=f"launch N identical instances in one request (1-{MAX_COUNT}; "
                                                    f"default 1); all or none unless --min-count{fleet_note}")
    fleet.add_argument("--min-count", type=_count, help="accept as few as M instances when EC2 lacks capacity or "
                                                        "quota for --count")


FORCE_UNLOCK_HELP = ("take the deployment's lock even from a run that still looks alive (a run that died is taken "
                     "over without it: at once on this machine, within a minute elsewhere). Risk: if that run is "
                     "still going, both change the deployment at once")


def build_parser(completion: bool = False, prog: str = DEFAULT_PROG) -> argparse.ArgumentParser:
    """completion=True: setup's flags on the top level too (setup is the default command), for shell completion.
    prog: the program as the user started it (commands.printed.program_name, already shell-quoted), for the usage
    lines, the examples, --version and the usage errors' `See ... --help`. A function of its arguments alone
    (tests build each parser once per process)."""
    epilog = EPILOG.format(prog=prog)
    parser = _Parser(prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Create an EC2 instance with an Elastic Inference accelerator (IAM role, security "
                                 "group, PrivateLink endpoint, key pair, Deep Learning AMI) and remove it again. "
                                 "Without a command, runs `setup`.",
                     epilog=epilog)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    if completion:
        _setup_flags(parser)
        parser.add_argument("--dry-run", action="store_true")
        _common(parser)
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}", parser_class=_Parser)

    setup = sub.add_parser("setup", help="create (or converge) a deployment", epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    _setup_flags(setup)
    setup.add_argument("--dry-run", action="store_true", help="resolve and print the plan, check permissions, "
                                                              "create nothing")
    setup.add_argument("--wait", choices=("running", "ei", "ssh"),
                       help="what the run waits for before it ends: running (the instances), ei (also the EI "
                            "endpoint), ssh (also each instance's SSH port answering; a timeout fails and rolls "
                            "back). Default: ei/running, then up to 5 minutes for SSH (real AWS only; a timeout "
                            "only warns)")
    setup.add_argument("--no-ssh-config", action="store_true",
                       help="write no `Host NAME` entry and leave ~/.ssh/config alone")
    setup.add_argument("--workdir", metavar="DIR", help="after SSH answers, copy DIR to ~/workdir on every instance "
                                                        "(.git and what DIR/.gitignore names are skipped)")
    setup.add_argument("--setup-script", metavar="FILE", help="then run FILE once with bash in ~/workdir on every "
                                                              "instance (output on stderr and in a log)")
    setup.add_argument("--rerun-setup", action="store_true",
                       help="on an existing deployment, run --setup-script again (it runs once otherwise)")
    _common(setup)

    export = sub.add_parser("export", help="write the same setup as a CloudFormation template (and deploy it)",
                            epilog=EXPORT_EPILOG.format(prog=prog),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    _setup_flags(export, fleet_note="; in a template: N instances for EI, a launch template + Auto Scaling "
                                    "group for inf2/gpu")
    template = export.add_argument_group("template")
    template.add_argument("--format", choices=("cloudformation",), default="cloudformation",
                          help="template format (default cloudformation: YAML)")
    template.add_argument("--out", type=_text, help="write the template to this file (default: standard output)")
    template.add_argument("--fleet", action="store_true",
                          help="a launch template + Auto Scaling group even for one instance (--count sets its size)")
    template.add_argument("--deploy", action="store_true",
                          help="create the stack now through CloudFormation, wait for it and print how to connect")
    template.add_argument("--no-ssh-config", action="store_true",
                          help="with --deploy: write no `Host NAME` entry and leave ~/.ssh/config alone")
    _common(export)

    teardown = sub.add_parser("teardown", help="delete everything a deployment created")
    teardown.add_argument("--name", required=True, type=_name, help="the deployment to remove")
    teardown.add_argument("--keep-shared", action="store_true",
                          help="keep the EI endpoint even when no other deployment uses it")
    teardown.add_argument("--force-unlock", action="store_true", help=FORCE_UNLOCK_HELP)
    _common(teardown, region_default=FROM_TAGS)

    listing = sub.add_parser("list", help="show deployments")
    listing.add_argument("--all-regions", action="store_true", help="query every EI region at once")
    _common(listing)

    idle = _deployment_parser(sub, "idle-stop", help="set, change or remove a deployment's idle auto-stop",
                              description="Stop each instance of a deployment after MINUTES of low CPU and network "
                                          "(a CloudWatch alarm per instance whose action is EC2's own stop; no "
                                          "agent), or remove those alarms with `off`.")
    idle.add_argument("minutes", type=_idle_or_off, metavar="MINUTES|off",
                      help="idle minutes before the stop (10-1440, a multiple of 5), or off")
    idle.add_argument("--force-unlock", action="store_true", help=FORCE_UNLOCK_HELP)
    _common(idle, region_default=FROM_TAGS)

    perms = sub.add_parser("permissions", help="print the IAM policy a user needs to run this tool",
                           description="Print (on standard output) the IAM policy document that lets a user run "
                                       "every command of this tool for one accelerator family.")
    perms.add_argument("--accelerator", choices=("ei", "inf2", "gpu"), default="ei",
                       help="the accelerator family the user will set up (default ei)")
    perms.add_argument("--access", choices=("ssh", "ssm"), default="ssh",
                       help="how the user reaches the instances: ssh (default) or ssm (adds what setup --access ssm "
                            "and `ssh NAME` through Session Manager need)")
    perms.add_argument("--output", choices=("text", "json"), default="text",
                       help="json: the policy inside the tool's JSON envelope")
    perms.add_argument("--debug", action="store_true", help="show tracebacks")

    from amazonei_setup.core import cost  # light: the cost module imports no AWS SDK at load time

    costing = sub.add_parser("cost", help="hourly cost and cost per 100k inferences; compare setups",
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    cost.add_arguments(costing)
    _common(costing, region_default="us-west-2, the catalog's region")

    _day_two_parsers(sub)

    completing = sub.add_parser("completion", help="print a bash or zsh completion script for this command",
                                description="Print a shell completion script on standard output, e.g. "
                                            "`amazonei-setup completion bash > ~/.local/share/bash-completion/"
                                            "completions/amazonei-setup`.")
    completing.add_argument("shell", choices=("bash", "zsh"), help="the shell to complete in")
    return parser


def _deployment_parser(sub, command: str, **kwargs) -> argparse.ArgumentParser:
    """A command about one named deployment (idle-stop and the day-two commands); the caller adds its own flags,
    then `_common(parser, region_default=FROM_TAGS)`."""
    parser = sub.add_parser(command, **kwargs)
    parser.add_argument("--name", required=True, type=_name, help="the deployment")
    return parser


def _day_two_parsers(sub) -> None:
    """status, connect, stop, start. A name is one deployment in the account: without --region each finds
    the region from the deployment's IAM role, as teardown does."""
    status = _deployment_parser(sub, "status", help="one deployment: its pieces, state, how to connect, cost so far")
    connect = _deployment_parser(sub, "connect",
                                 help="ssh into a deployment's instance (replaces this process with ssh)")
    connect.add_argument("--jupyter", action="store_true",
                         help="start Jupyter on the instance (if ours is not running), forward it to a free local "
                              "port (8888 when free), print its URL with the token and hold the tunnel until Ctrl-C")
    connect.add_argument("--stop", action="store_true", help="with --jupyter: stop the instance's Jupyter server")
    connect.add_argument("--print", action="store_true", help="print the ssh command instead of running it")
    connect.add_argument("--index", type=int, default=0, help="which instance of a fleet (--count), from 0")
    stop = _deployment_parser(sub, "stop",
                              help="stop a deployment's instances (the volumes stay; says what still costs)")
    start = _deployment_parser(sub, "start",
                               help="start a stopped deployment, wait for SSH, refresh its SSH config entry")
    start.add_argument("--no-ssh-config", action="store_true", help="leave the SSH config entries alone")
    execute = _deployment_parser(sub, "exec", help="run a command in ~/workdir on a deployment's instances (a "
                                                   "fleet's at once), exit with its status: exec --name N -- CMD ...")
    execute.add_argument("--index", type=int, default=None, help="only this instance of a fleet (--count), from 0")
    execute.add_argument("--workdir", metavar="DIR", help="copy DIR to ~/workdir on the instances first")
    execute.add_argument("words", nargs="*", metavar="-- COMMAND", help="the command and its words, after `--`")
    for parser in (status, connect, stop, start, execute):
        _common(parser, region_default=FROM_TAGS)


# The account and output flags every command takes (_common), which the AWS CLI and its peers accept before the
# command too: `amazonei-setup --region us-west-2 list`. Those that take a value, and the switches.
ACCOUNT_FLAGS_WITH_VALUE = ("--region", "--profile", "--endpoint-url", "--output")
ACCOUNT_SWITCHES = ("--sandbox", "--debug", "--yes", "-y")


def command_first(argv: list[str]) -> list[str]:
    """argv with account flags given before the command moved after it (argparse reads a command's flags only after
    the command's word). Without a command word after them (setup, the default command), argv as it is."""
    at = 0
    while at < len(argv):
        flag = argv[at].split("=", 1)[0]
        if flag in ACCOUNT_FLAGS_WITH_VALUE:
            at += 1 if "=" in argv[at] else 2
        elif flag in ACCOUNT_SWITCHES:
            at += 1
        else:
            break
    if 0 < at < len(argv) and not argv[at].startswith("-"):
        if argv[at] not in COMMANDS:
            _refuse_unknown_command(argv[at:])  # `--region X lst`: the word is where a command goes
        return [argv[at], *argv[:at], *argv[at + 1:]]
    return argv


def parse(argv: list[str]) -> argparse.Namespace:
    from amazonei_setup.cli.commands.printed import program_name

    prog = program_name()  # one name in --help, usage errors and the commands printed later
    parser = build_parser(prog=prog)
    argv = command_first(argv)
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help", "--version"):
        _refuse_unknown_command(argv)
        argv = ["setup", *argv]  # setup is the default command
    _refuse_unknown_flags(parser, argv, prog)
    args = parser.parse_args(argv)
    if getattr(args, "region", None):  # after parsing (--help stays instant), before any AWS call
        from amazonei_setup.aws import regions

        try:
            regions.check(args.region)
        except rules.RuleError as err:
            raise _UsageExit(f"--region: {_sentence(str(err))}") from None
    if args.command in ("setup", "export"):
        _check_setup_flags(args, prog)
    if args.command == "export" and getattr(args, "spot", None):
        raise _UsageExit("--spot is for setup: a stack's instance launched by a persistent Spot request leaves that "
                         "request outside the stack, so deleting the stack would not cancel it and EC2 would launch "
                         f"the instance again; run setup --spot instead. See `{prog} setup --help`.")
    if args.command == "export" and args.min_count:
        raise _UsageExit("--min-count is for setup's single launch request; a stack creates every instance or rolls "
                         f"back: drop --min-count. See `{prog} export --help`.")
    return args


def _refuse_unknown_command(argv: list[str]) -> None:
    """setup is the default command and takes no words, only flags: a first word that is not a command is a
    mistake (`lst` for `list`), never something for setup to swallow."""
    if not argv or argv[0].startswith("-"):
        return
    word = argv[0]
    # commands are short words, and a cut-short one is the likeliest mistake: a word only one command starts with
    # is that command's (`stat` is status's, `tear` teardown's, though difflib puts both nearer `start`); else the
    # nearest one only
    started = [c for c in COMMANDS if c.startswith(word.lower())] if len(word) >= 3 else []
    matches = started if len(started) == 1 else rules.closest(word, COMMANDS, n=1, cutoff=0.6)
    if matches:
        suggestion = rules.did_you_mean(matches, quote="'")
        raise _UsageExit(f"'{word}' is not a command{suggestion}")
    raise _UsageExit(f"'{word}' is not a command: use one of {', '.join(COMMANDS)}, or flags alone for setup (the "
                     "default command).")


def _refuse_unknown_flags(parser: argparse.ArgumentParser, argv: list[str], prog: str = DEFAULT_PROG) -> None:
    """A mistyped flag gets the nearest real one of its command (`--dryrun`: did you mean --dry-run?) before
    argparse sees it: argparse would report the flag and its value as two unknown words, or a required flag as
    missing when it was only misspelled."""
    command, words = argv[0], argv[1:]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if command not in subparsers.choices:  # --help, --version
        return
    known = [o for a in subparsers.choices[command]._actions for o in a.option_strings]
    for word in words:
        if word == "--":
            return
        flag = word.split("=", 1)[0]
        if not flag.startswith("--") or flag == "--" or any(k.startswith(flag) for k in known):
            continue  # a value, a known flag, or an abbreviation argparse resolves (or calls ambiguous)
        matches = rules.closest(flag, [k for k in known if k.startswith("--")])
        if matches:
            raise _UsageExit(f"{command} has no flag {flag}{rules.did_you_mean(matches)}")
        raise _UsageExit(f"{command} has no flag {flag}: see `{prog} {command} --help` for its flags.")


# ---- entry point -------------------------------------------------------------------------------

def entry() -> None:
    """The console script and the launchers: main, then exit with its code. A signal after main returned (while the
    interpreter shuts down) must not turn a printed result into a death by SIGINT."""
    sys.exit(main(final=True))


def main(argv: list[str] | None = None, env: Environment | None = None, *, final: bool = False) -> int:
    signals = _Signals(final=final)
    try:
        with signals:
            env = env or Environment()
            argv = list(sys.argv[1:] if argv is None else argv)
            try:
                args = parse(argv)
            except _UsageExit as err:
                env.stderr.write(f"error: {err}\n")
                _json_error_if_asked(argv, env, "usage", str(err))
                return 2
            except SystemExit as exit_:  # --help / --version
                return int(exit_.code or 0)
            if args.command == "completion":  # no AWS, no UI: the script alone, on stdout
                from amazonei_setup.cli.completion import script

                env.stdout.write(script(args.shell, build_parser(completion=True)))
                return 0
            return _run(args, env, signals)
    except KeyboardInterrupt as stop:
        # Last resort, outside every handler below: a signal while modules load (the first ~0.1 s) or while an
        # error is being printed. Nothing of a run can be pending here (rollback is inside _run).
        try:
            from amazonei_setup.core.errors import stopped_by

            (env.stderr if env else sys.stderr).write(f"\n{stopped_by(stop)}.\n")
        except (Exception, KeyboardInterrupt):  # noqa: BLE001 - a closed stream must not bring the traceback
            pass
        return signals.exit_code(stop)


class _Signals:
    """SIGTERM and SIGHUP end a run the way Ctrl-C does: raised in the main thread as a KeyboardInterrupt
    (errors.Signalled), so the rollback, teardown's stop and the sandbox's save all happen, and the CLI exits
    128 + the signal's number. Only from the main thread (Python allows no other), only over the default
    handlers (nohup's ignored SIGHUP stays ignored; an embedding program's handlers stay theirs), and the
    previous handlers come back on exit."""

    def __init__(self, final: bool = False):
        self.received: list[int] = []
        self._previous: dict[int, object] = {}
        self._final = final  # the process ends after this run: ignore signals from then on instead of restoring

    def __enter__(self):
        import threading

        from amazonei_setup.core import interrupts

        interrupts.reset()
        self._absorb = interrupts.absorb

        # Imported now, not when a signal arrives: a Ctrl-C lands anywhere, also inside the import of errors.py
        # itself (the CLI loads its modules under these handlers), where importing it again fails with an
        # ImportError and a traceback instead of the quiet exit 130.
        from amazonei_setup.core.errors import Signalled

        self._signalled = Signalled
        if threading.current_thread() is not threading.main_thread():
            return self
        for name, default in (("SIGINT", signal.default_int_handler), ("SIGTERM", signal.SIG_DFL),
                              ("SIGHUP", signal.SIG_DFL)):
            signum = getattr(signal, name, None)  # no SIGHUP on Windows
            if signum is not None and signal.getsignal(signum) is default:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):  # imports nothing (see __enter__)
        if self._absorb(signum):  # the work is complete: finish it (interrupts.py)
            if not self.received:
                self.received.append(signum)
            return
        self.received.append(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt  # exactly what Ctrl-C always raised
        raise self._signalled(signum)

    def exit_code(self, interrupt: BaseException | None = None) -> int:
        """128 + the first signal (the one that stopped the run); 130 for a Ctrl-C we did not see arrive."""
        if self.received:
            return 128 + self.received[0]
        return 128 + getattr(interrupt, "signum", 2)

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_IGN if self._final else handler)
        return False


def _json_error_if_asked(argv, env, code, message) -> None:
    """argparse failed, so read --output by hand: `--output json` or `--output=json`."""
    wants_json = "--output=json" in argv or any(
        a == "--output" and b == "json" for a, b in zip(argv, argv[1:], strict=False))
    if wants_json:
        import json

        # The command named (after account flags too), else setup (the default, when only flags are given); a first
        # word that is no command (`lst`) was refused before any command ran: naming setup there would be wrong.
        try:
            first = command_first(argv)[0] if argv else "-"
        except _UsageExit:
            first = argv[0]
        command = first if first in COMMANDS else "setup" if first.startswith("-") else None
        env.stdout.write(json.dumps({"version": 1, "command": command, "status": "error",
                                     "error": {"code": code, "message": message}}) + "\n")


def _run(args: argparse.Namespace, env: Environment, signals: _Signals | None = None) -> int:
    from amazonei_setup.cli.ui import Ui
    from amazonei_setup.core.errors import Interrupted, ToolError, UsageError, stopped_by

    ui = Ui(output=args.output, stdout=env.stdout, stderr=env.stderr, width=env.width)
    command = args.command
    log_path = None
    try:
        if command in ("setup", "export", "teardown") and not args.yes and not env.stdin_isatty and env.asker is None:
            raise UsageError("Standard input is not a terminal, so nothing can be asked: pass --yes to take the "
                             "defaults (and name any choice that has none with its flag).")
        from amazonei_setup.cli.commands import handler

        if command == "permissions":  # a document from data: no AWS, no account
            return _rendered(handler(command)(args, env, ui, None), ui, signals)
        if command == "cost":  # needs AWS only for --live-prices: the command opens it itself
            return _rendered(handler(command)(args, env, ui, lambda: _aws_for(args, ui, env)), ui, signals)
        _check_state_dir(args)
        with _aws_for(args, ui, env) as aws:
            log_path = getattr(aws, "log_path", None)
            return _rendered(handler(command)(args, env, ui, aws), ui, signals)  # one result, rendered once
    except KeyboardInterrupt as stop:
        ui.stop_status()
        from amazonei_setup.core import interrupts

        what = interrupts.after() or "nothing more was done."
        return _fail(ui, args, Interrupted(f"{stopped_by(stop)}: {what}"), log_path, signals)
    except ToolError as err:
        ui.stop_status()
        if args.debug:
            import traceback

            traceback.print_exception(err, file=env.stderr)
        return _fail(ui, args, err, log_path, signals)
    except Exception as err:  # noqa: BLE001 - last resort: one sentence, traceback only with --debug
        ui.stop_status()
        if args.debug:
            raise
        from amazonei_setup.aws.client import explain

        return _fail(ui, args, explain(err), log_path, signals)


def _rendered(result, ui, signals: _Signals | None) -> int:
    """Render the one result. A signal absorbed while the command finished (interrupts.py) is noted beside it and
    sets the exit code; one that comes after the result is printed changes nothing."""
    from amazonei_setup.cli.render import render
    from amazonei_setup.core import interrupts
    from amazonei_setup.core.errors import stopped_by

    signum = interrupts.absorbed()
    if signum is not None:
        from amazonei_setup.core.errors import Signalled

        how = "Interrupted" if signum == signal.SIGINT else stopped_by(Signalled(signum))
        result.warnings.append(f"{how} after the work was complete: only what could wait was cut short; the result "
                               "is complete and true.")
    code = render(result, ui)
    interrupts.printed()
    if signum is not None and code == 0:
        return 128 + signum
    return code


def _check_state_dir(args) -> None:
    """The tool's directory must be usable before any AWS work: the sandbox keeps its account there, teardown
    removes the deployment's note, setup writes it (and the call log). Found unusable afterwards, resources
    would already exist. list and cost read AWS only and work without it."""
    from amazonei_setup.core.errors import UsageError
    from amazonei_setup.local import paths

    if not (args.command in ("setup", "teardown") or args.sandbox
            or (args.command == "export" and args.deploy)):
        return
    try:
        home = paths.app_home()
    except RuntimeError:
        raise UsageError("No home directory is known for the tool's files (HOME is not set): set HOME, or set "
                         "AMAZONEI_SETUP_HOME to a directory you can write to.") from None
    problem = paths.unusable(home)
    if problem:
        raise UsageError(f"The tool's directory {home} cannot be used ({problem}): move that away, or set "
                         "AMAZONEI_SETUP_HOME to a directory you can write to.")


def _fail(ui, args, err, log_path, signals: _Signals | None = None) -> int:
    message = str(err)
    if log_path and err.exit_code == 1:
        message += f" (AWS call log: {log_path})"
    ui.error(message)
    suggested = err.suggested_command
    if suggested:  # a line of its own, outside any box, so it copies whole
        ui.show(ui.suggestion(err.suggested_caption or "The same choices on Inferentia2 (today's alternative to EI):",
                              suggested))
    if args.output == "json":
        error = {"code": err.code, "message": message, **({"suggested_command": suggested} if suggested else {})}
        ui.emit_json(args.command, "error", error=error)
    if signals is not None and signals.received:  # stopped by a signal: the shell's convention, 128 + its number
        return signals.exit_code()
    return err.exit_code


class _aws_for:
    """Context manager yielding an Aws for the run: the real account, or a sandbox."""

    def __init__(self, args, ui, env):
        self.args, self.ui, self.env = args, ui, env

    def __enter__(self):
        from amazonei_setup.aws.client import Aws

        args = self.args
        if args.sandbox:
            from amazonei_setup.sandbox import server as sandbox_server

            self.ui.banner("SANDBOX: an emulated AWS account on this machine (moto). Nothing real is created and "
                           "nothing is billed.")
            try:
                sb = sandbox_server.find()
                if sb is None:  # the first sandbox command in a while: ~2 s, then every command reuses it
                    with self.ui.status("Starting the sandbox account (a local server that stops after "
                                        f"{sandbox_server.IDLE_S / 60:g} idle minutes)..."):
                        sb = sandbox_server.connect()
            except sandbox_server.SandboxUnavailable as err:  # its own sentences (unreadable state, no start)
                from amazonei_setup.core.errors import ToolError

                raise ToolError(str(err), code="sandbox") from None
            return Aws(args.region or "us-west-2", endpoint_url=sb.endpoint_url, credentials=sb.credentials)
        given = self.env.aws
        if given is not None:
            return given if not args.region or args.region == given.region else given.in_region(args.region)
        if args.command in ("teardown", "idle-stop", *DAY_TWO) and not args.region:
            # teardown finds the region itself (the role's region tag, IAM being global); any region reaches IAM
            from amazonei_setup.core.errors import UsageError

            try:
                return Aws(None, profile=args.profile, endpoint_url=args.endpoint_url)
            except UsageError:
                guess = Aws(IAM_LOOKUP_REGION, profile=args.profile, endpoint_url=args.endpoint_url)
                guess.region_is_a_guess = True
                return guess
        return Aws(args.region, profile=args.profile, endpoint_url=args.endpoint_url)

    def __exit__(self, *exc):
        return False


IAM_LOOKUP_REGION = "us-east-1"  # where IAM's global endpoint is, for a look-up before the region is known


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
