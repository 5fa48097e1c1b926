"""What setup and export share: the plan (discovery + the wizard), the asker, checks before anything is
created, and the next step an error suggests."""
from __future__ import annotations

import sys

from amazonei_setup.cli.commands import Result
from amazonei_setup.cli.commands.printed import SANDBOX_SSH_CIDR, account_flags, program_name, teardown_command_for
from amazonei_setup.cli.environment import Environment


def check_home_for_keys(args) -> None:
    """Without --key-dir, key paths are under ~/.ssh: a user with no home directory (no HOME, no passwd entry:
    containers with an arbitrary uid) gets a sentence instead of a crash in the wizard."""
    from amazonei_setup.core.errors import UsageError
    from amazonei_setup.local import paths

    if args.key_dir or args.sandbox:
        return
    try:
        paths.ssh_dir()
    except RuntimeError:
        raise UsageError("No home directory is known for the default key directory ~/.ssh (HOME is not set and "
                         "your user has none): pass --key-dir, or set HOME.") from None


def check_access_tools(plan) -> None:
    """--access ssm: ssh reaches the instance through `aws ssm start-session` and the Session Manager plugin, so both
    must be on this machine. Checked once the plan says ssm (a re-run keeps it without the flag), before any create:
    a deployment nobody here can reach is no use."""
    from amazonei_setup.core import access
    from amazonei_setup.core.errors import UsageError

    if plan.access != access.SSM:
        return
    missing = access.missing_tools()
    if missing:
        raise UsageError(access.missing_tools_sentence(missing))


def check_key_dir(args, plan) -> None:
    """A new key's .pem is written right after AWS creates the key pair: a directory that cannot take it would
    fail the run after resources exist. Checked once the plan says a key will be created, before any create."""
    from pathlib import Path

    from amazonei_setup.core.errors import UsageError
    from amazonei_setup.local import paths

    if not plan.create_key or not plan.key_path:
        return
    key_dir = Path(plan.key_path).parent
    problem = paths.unusable(key_dir)
    if problem:
        origin = "" if args.key_dir or args.sandbox else " (~/.ssh, from HOME)"
        fix = "" if args.key_dir or args.sandbox else ", or fix HOME"
        raise UsageError(f"The new key pair's private key cannot be saved in {key_dir}{origin}: {problem}; pass "
                         f"--key-dir with a directory you can write to{fix}.")


def asker_for(args, env):
    from amazonei_setup.cli.wizard import DefaultsAsker, QuestionaryAsker

    if env.asker is not None:
        return env.asker
    if args.yes:
        return DefaultsAsker()
    from prompt_toolkit.output import create_output

    # Prompts render on stderr so stdout stays clean for --output json.
    output = create_output(stdout=sys.stderr)
    # No cursor-position request: told how many rows are free below the cursor, prompt_toolkit fills them all, and
    # the reason for a refused answer (its validation toolbar) lands on the screen's last row, far from the question.
    # Unasked, it draws only the rows it needs; nothing of ours needs more (no completion menus).
    if hasattr(output, "enable_cpr"):
        output.enable_cpr = False
    return QuestionaryAsker(output=output)


def alternative_command(args, plan, family: str = "inf2") -> str:
    """The setup command that makes the same choices on today's alternative (after an EI refusal): same
    region, account flags, key, SSH range, volume, network and --yes; the name with a -<family> suffix."""
    import shlex

    name = f"{plan.name[:31 - len(family)].rstrip('-')}-{family}"
    parts = [*shlex.split(program_name()), *shlex.split(account_flags(args))]
    parts += ["--region", plan.region, "--accelerator", family, "--name", name]
    for flag, value in (("--key-name", args.key_name), ("--key-dir", args.key_dir), ("--ssh-cidr", args.ssh_cidr),
                        ("--volume-size", args.volume_size), ("--vpc-id", args.vpc_id),
                        ("--subnet-id", args.subnet_id)):
        if value:
            parts += [flag, str(value)]
    if args.new_key:
        parts.append("--new-key")
    if args.yes:
        parts.append("--yes")
    return " ".join(shlex.quote(p) for p in parts)


def _spot_look_ups(args, asker) -> bool | None:
    """What discovery reads for the market: Spot's (--spot), On-Demand's, or both when the wizard will ask
    (an alternative, interactively, without --spot): the question's answer then finds its quota and price read."""
    if getattr(args, "spot", None):
        return True
    if args.family and getattr(asker, "interactive", False):
        return None
    return False


def resolve_plan(args, env: Environment, ui, aws):
    """Discovery and the wizard, shared by setup and export: both act on the very same Plan."""
    from amazonei_setup.aws import discover
    from amazonei_setup.cli import wizard

    check_home_for_keys(args)
    asker = asker_for(args, env)
    lookup = None
    default_cidr = SANDBOX_SSH_CIDR if args.sandbox else None
    key_dir = args.key_dir
    if args.sandbox and not key_dir:
        from amazonei_setup.local import paths

        key_dir = str(paths.sandbox_dir() / "keys")  # sandbox keys are fake: keep them out of ~/.ssh
    if not args.ssh_cidr and not args.sandbox and getattr(args, "access", None) != "ssm":
        lookup = env.public_ip_lookup or discover.lookup_public_ip
    request = wizard.SetupRequest(
        instance_type=args.instance_type, name=args.name, accelerator_type=args.accelerator_type, os=args.os,
        ami_id=args.ami_id, vpc_id=args.vpc_id, subnet_id=args.subnet_id, key_name=args.key_name,
        new_key=args.new_key, key_dir=key_dir, ssh_cidr=args.ssh_cidr, volume_size=args.volume_size,
        default_ssh_cidr=default_cidr, family=args.family, count=args.count, min_count=args.min_count,
        idle_stop=getattr(args, "idle_stop", None), spot=getattr(args, "spot", None),
        access=getattr(args, "access", None), public_ip=not getattr(args, "no_public_ip", False),
        aws_profile=getattr(args, "profile", None))
    # Which alternatives the wizard may pick: the flagged family; all of them when the accelerator question
    # will really be asked (a prompt without --accelerator/--accelerator-type); none otherwise.
    if args.family:
        families, offer = (args.family,), "the instance type's offer"
    elif not args.accelerator_type and getattr(asker, "interactive", False):
        from amazonei_setup.core.catalog import FAMILIES

        families, offer = tuple(FAMILIES), "its Elastic Inference offer"
    else:
        families, offer = (), "its Elastic Inference offer"
    with ui.status(f"Looking up your account, {aws.region} and {offer}"):
        facts = discover.gather(aws, instance_type=args.instance_type, ami_id=args.ami_id, public_ip_lookup=lookup,
                                families=families, ei=not args.family, name=args.name,
                                spot=_spot_look_ups(args, asker),
                                ssm=getattr(args, "access", None) == "ssm" or getattr(args, "no_public_ip", False))
    return wizard.build_plan(request, facts, asker), facts, asker


def next_step_for(err, args, plan) -> None:
    """A launch refusal the user can route around: say how, in the error itself."""
    if err.code == "ei-unavailable":  # most accounts today: offer the same choices on Inferentia2
        err.suggested_command = alternative_command(args, plan)
    elif err.code in ("capacity", "quota", "ei-quota") and plan.min_count > 1:
        fewer = max(1, min(plan.min_count - 1, plan.count // 2))
        err.args = (f"{err} With --count, --min-count {fewer} accepts fewer instances when EC2 cannot launch all "
                    "of them.",)


def save_template(path: str, text: str) -> None:
    from pathlib import Path

    from amazonei_setup.core.errors import UsageError

    try:
        Path(path).expanduser().write_text(text)
    except OSError as err:
        raise UsageError(f"Cannot write the template to {path} ({err.strerror}): pass another --out.") from None



def ready(args, result) -> Result:
    """The end of a successful setup or deploy: the local record, then the ready summary as the result."""
    from amazonei_setup.local import records

    records.save(result.plan.region, result.plan.name, result.to_dict(), sandbox=args.sandbox)
    return Result(args.command, result.to_dict(), view="ready",
                  context={"teardown": teardown_command_for(args, result.plan.region, result.plan.name)})


def cancelled(args, plan, message: str = "Nothing was created.") -> Result:
    return Result(args.command, {"plan": plan.to_dict()}, status="cancelled", view="message", message=message)


# ---- what the commands on one deployment share ----------------------------------------------------------

def home_of(name: str, aws, *, deleting: bool = True, sandbox: bool = False):
    """Without --region: the region deployment `name` lives in, as its IAM role's region tag says. deleting: how a
    typo is said (teardown: "so nothing was deleted").

    Without such a role: the region of this machine's record of the name, else the default region (the profile's),
    looked in as if --region named it, so "not found" and "nothing to delete" are the same answers with and without
    --region (scripts treat not-found as done). With neither, the name is no deployment of this account: not-found."""
    from amazonei_setup.core.errors import ToolError
    from amazonei_setup.flows import deployments
    from amazonei_setup.local import records

    home = deployments.lives_in(aws, name)
    if home is None:
        deployments.refuse_close_names(aws, name, deleting=deleting)  # a typo of one that exists: exit 1
        recorded = records.regions_of(name, sandbox=sandbox)
        home = recorded[0] if len(recorded) == 1 else None if aws.region_is_a_guess else aws.region
    if home is None:
        so = ", so nothing was deleted" if deleting else ""
        raise ToolError(f"No deployment named {name} in this account{so}: no IAM role of amazonei-setup carries the "
                        "name; `list --all-regions` shows every deployment.", code="not-found")
    return aws if home == aws.region else aws.in_region(home)


def forget_ssh_entry(args) -> None:
    """Remove the deployment's `Host` block from the tool's SSH config; the Include line in ~/.ssh/config
    stays (harmless, and the user may have moved it). Best effort: the teardown itself is done."""
    from amazonei_setup.local import sshconfig

    try:
        sshconfig.remove_block(args.name, sandbox=args.sandbox)
    except OSError:
        pass


def key_dir_of(args):
    """Where setup saves a new key's .pem without --key-dir: the sandbox keeps its fake keys out of ~/.ssh."""
    from amazonei_setup.aws.resources import keypair
    from amazonei_setup.local import paths

    return paths.sandbox_dir() / "keys" if args.sandbox else keypair.default_key_dir()


def emulated(args, env: Environment | None = None) -> bool:
    """True when the account is an emulator, where no machine listens on port 22: --sandbox, --endpoint-url (or
    AWS_ENDPOINT_URL), or AMAZONEI_SETUP_EMULATED=1 (an emulator the flags do not show, e.g. moto mocking botocore
    in a program's own tests). env.emulated, when set, decides. Never guessed from what the process has imported."""
    import os

    if env is not None and env.emulated is not None:
        return env.emulated
    if args.sandbox or getattr(args, "endpoint_url", None) or os.environ.get("AWS_ENDPOINT_URL"):
        return True
    return os.environ.get("AMAZONEI_SETUP_EMULATED", "") not in ("", "0")


def answers_ssh(args, env: Environment, instance) -> bool:
    """A machine that SSH reaches (real AWS, or a sandbox instance): there --jupyter starts the server and holds the
    tunnel. Against other emulators (--endpoint-url, moto in-process) nothing listens: the forward command only."""
    from amazonei_setup.flows import provision

    return provision.is_sandboxed(instance) or not emulated(args, env)
