"""How the commands the tool prints are spelled, so each runs as printed: the program name the user started
(`amazonei-setup`, `python path/amazonei_setup.py`, `python -m amazonei_setup`) and every flag that addresses
the same account (--sandbox, --profile, --endpoint-url)."""
from __future__ import annotations

import sys

from amazonei_setup.plan import LAUNCHER

SANDBOX_SSH_CIDR = "127.0.0.1/32"  # the sandbox's instances are "reached" from this machine


def account_flags(args) -> str:
    """The flags that address the same account again, for the commands we print: without them a copied
    command would reach another account (the default profile, real AWS instead of the endpoint or sandbox).
    The region is the plan's, which the printed commands carry themselves."""
    import shlex

    if args.sandbox:  # the sandbox ignores --profile and --endpoint-url
        return " --sandbox"
    flags = ""
    if args.profile:
        flags += f" --profile {shlex.quote(args.profile)}"
    if args.endpoint_url:
        flags += f" --endpoint-url {shlex.quote(args.endpoint_url)}"
    return flags


def program_name(argv0: str | None = None) -> str:
    """How the user started this program, for the commands we print: the console script, the launcher (as
    its path was given) or `-m`. Anything else (an embedding, a test runner) gets the launcher's name."""
    import os
    import shlex

    argv0 = sys.argv[0] if argv0 is None else argv0
    path = os.path.normpath(argv0) if argv0 else ""
    base = os.path.basename(path)
    if base == "amazonei-setup":
        return "amazonei-setup"
    if base == "__main__.py" and os.path.basename(os.path.dirname(path)) == "amazonei_setup":
        return "python -m amazonei_setup"
    if base == "amazonei_setup.py":
        return f"python {shlex.quote(argv0)}"
    return LAUNCHER


def command_for(args, verb: str, region: str, name: str, extra: str = "") -> str:
    """A command on one deployment (teardown, status, start, ...) as the user would type it: the program they
    started, their account flags, the deployment's region and name."""
    return f"{program_name()} {verb}{account_flags(args)} --region {region} --name {name}{extra}"


def teardown_command_for(args, region: str, name: str) -> str:
    """The teardown command for the ready panel and a rollback."""
    return command_for(args, "teardown", region, name)
