"""How the commands the tool prints are spelled, so each runs as printed: the program name the user started
(`amazonei-setup`, its path, `python path/amazonei_setup.py`, `python -m amazonei_setup`), every flag that
addresses the same account (--sandbox, --profile, --endpoint-url), and every value shell-quoted (shell.py)."""
from __future__ import annotations

import sys

from amazonei_setup.core import shell
from amazonei_setup.core.plan import LAUNCHER

CONSOLE_SCRIPT = "amazonei-setup"  # what pip and pipx install (pyproject's [project.scripts])

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
    """How the user started this program, for the commands we print (and --help's usage line): the console script,
    the launcher (as its path was given) or `-m`. Anything else (an embedding, a test runner) gets the launcher's
    name. Already shell-quoted.

    The console script is printed by its bare name only when that name on PATH is this very file: started as
    `.venv/bin/amazonei-setup` (the README's install, no activated venv), a bare `amazonei-setup` is "command not
    found", or another install's copy. Otherwise it is printed as started (a relative path runs from where the
    user is, which is where they paste it)."""
    import os
    import shutil

    argv0 = sys.argv[0] if argv0 is None else argv0
    path = os.path.normpath(argv0) if argv0 else ""
    base = os.path.basename(path)
    if base == CONSOLE_SCRIPT:
        found = shutil.which(CONSOLE_SCRIPT)
        try:
            same = bool(found) and os.path.samefile(found, argv0)
        except OSError:  # argv0 is not a file here (an embedding that set it): the name PATH gives, if any
            same = bool(found) and os.sep not in argv0
        if same:
            return CONSOLE_SCRIPT
        if os.sep not in argv0:  # a bare name that PATH does not resolve to this file: the file itself
            return shell.path(os.path.abspath(argv0))
        return shell.path(argv0)
    if base == "__main__.py" and os.path.basename(os.path.dirname(path)) == "amazonei_setup":
        return "python -m amazonei_setup"
    if base == "amazonei_setup.py":
        return f"python {shell.path(argv0)}"
    return LAUNCHER


def command_for(args, verb: str, region: str, name: str, extra: str = "") -> str:
    """A command on one deployment (teardown, status, start, ...) as the user would type it: the program they
    started, their account flags, the deployment's region and name."""
    return (f"{program_name()} {verb}{account_flags(args)} --region {shell.word(region)} "
            f"--name {shell.word(name)}{extra}")


def teardown_command_for(args, region: str, name: str) -> str:
    """The teardown command for the ready panel and a rollback."""
    return command_for(args, "teardown", region, name)
