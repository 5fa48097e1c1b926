"""`connect --name N [--jupyter] [--print]`: ssh into the deployment's instance with the right key, user and host.

Without --print this process becomes ssh (os.execvp): the terminal, Ctrl-C and the exit code are ssh's own. With
--print the command is the result, on stdout, spelled as setup prints it. A stopped instance is an error (exit 1)
that names the `start` command."""
from __future__ import annotations

import os
import shlex

from amazonei_setup.cli.commands import Result
from amazonei_setup.cli.commands.common import answers_ssh
from amazonei_setup.cli.commands.execute import chosen_instances
from amazonei_setup.cli.commands.status import connect_commands, locate
from amazonei_setup.cli.environment import Environment


def run(args, env: Environment, ui, aws) -> Result:
    from amazonei_setup.core.errors import ToolError, UsageError

    aws = locate(args, aws)
    (instance,), access, (target,) = chosen_instances(args, aws, ui, "connect to", args.index)
    if args.jupyter and answers_ssh(args, env, instance):
        from amazonei_setup.cli.commands import jupyter

        data = {"name": args.name, "region": aws.region, "instance_id": instance.id, "host": target.label}
        return jupyter.run(args, env, ui, target, instance, data)
    ssh, forward = connect_commands(access, instance.host, instance.ssh_port, instance.id)
    if getattr(args, "stop", False):
        raise UsageError("--stop is for --jupyter (it stops the instance's Jupyter server): pass --jupyter --stop.")
    command = forward if args.jupyter else ssh
    warnings = []
    if access.key_path and not access.key_found:
        warnings.append(f"No private key at {access.key_path}: the instance accepts only key pair "
                        f"{instance.key_name}; use the copy you saved when it was created.")
    data = {"name": args.name, "region": aws.region, "instance_id": instance.id, "host": instance.host,
            "port": instance.ssh_port,
            "ssh_user": access.user, "key_path": access.key_path, "command": command}
    if args.print or args.output == "json":
        return Result("connect", data, view="connect", warnings=warnings)
    for warning in warnings:
        ui.warn(warning)
    ui.stop_status()
    argv = [os.path.expanduser(word) for word in shlex.split(command)]
    if not args.jupyter and answers_ssh(args, env, instance) and args.sandbox:

        # the sandbox's Host block: its own known_hosts (the instance's host key), never ~/.ssh/known_hosts
        argv = list(target.ssh)
    env.stderr.flush()
    env.stdout.flush()
    try:
        os.execvp(argv[0], argv)  # does not return: this process is ssh from here on
    except FileNotFoundError:
        raise ToolError("No `ssh` program was found on your PATH: install the OpenSSH client, or pass --print and "
                        "run the command where ssh is.", code="no-ssh") from None
    return Result("connect", data, view="connect")  # pragma: no cover - only when execvp is replaced (tests)


