"""`exec --name N [--index K] [--workdir DIR] -- CMD ...`: run a command in ~/workdir on a deployment's instances.

The remote command's stdout is this command's stdout (`exec -- cat results.csv > local.csv`), its stderr ours, and
its exit status ours; a fleet runs it on every instance at once, each line prefixed `[NAME-i] `, and exits with the
highest non-zero status. The words after `--` reach the remote command as the same words (ssh joins its arguments
into one string, so each is quoted for the remote shell). With --output json the output is captured and returned per
instance instead."""
from __future__ import annotations

from amazonei_setup.cli.commands import Result
from amazonei_setup.cli.commands.printed import command_for
from amazonei_setup.cli.commands.status import access_of, inventory_of, locate
from amazonei_setup.cli.environment import Environment


def chosen_instances(args, aws, ui, verb: str, index: int | None = None):
    """The running instances a command on the machine acts on (all of a fleet, or instance `index`), the Access, and
    their Targets; a stopped or missing instance is one error naming the command that fixes it. Reachable means an
    address, or through Session Manager (its Host block's ProxyCommand needs none)."""
    from amazonei_setup.cli.commands import remote
    from amazonei_setup.core.errors import ToolError, UsageError

    with ui.status(f"Looking up deployment '{args.name}' in {aws.region}"):
        inventory = inventory_of(args, aws)
        access = access_of(args, aws, inventory)
    found = inventory.instances
    if not found:
        raise ToolError(f"Deployment {args.name} in {aws.region} has no instance to {verb} (a run stopped part-way): "
                        f"remove what is left with {command_for(args, 'teardown', aws.region, args.name)}",
                        code="no-instance")
    if index is not None and not 0 <= index < len(found):
        raise UsageError(f"--index {index} is outside the deployment's {len(found)} instance"
                         f"{'s' if len(found) > 1 else ''}: pass --index 0" + (
                             f" to {len(found) - 1}." if len(found) > 1 else "."))
    picked = list(range(len(found))) if index is None else [index]
    for i in picked:
        each = found[i]
        if each.state in ("stopped", "stopping"):
            raise ToolError(f"Instance {each.id} of {args.name} is {each.state}: start it with "
                            f"{command_for(args, 'start', aws.region, args.name)}", code="stopped")
        if each.state != "running" or not (each.host or access.proxy):
            raise ToolError(f"Instance {each.id} of {args.name} is {each.state} and has no address yet: try again in "
                            f"a minute, or see {command_for(args, 'status', aws.region, args.name)}",
                            code="not-running")
    every = remote.targets(args, found, access)
    return [found[i] for i in picked], access, [every[i] for i in picked]


def run(args, env: Environment, ui, aws) -> Result:
    import subprocess

    from amazonei_setup.cli.commands import remote
    from amazonei_setup.core.errors import UsageError

    if not args.words:
        from amazonei_setup.cli.commands.printed import program_name
        from amazonei_setup.core.shell import word

        raise UsageError(f"exec needs the command to run after `--`, e.g. `{program_name()} exec --name "
                         f"{word(args.name)} -- python train.py`.")
    aws = locate(args, aws)
    instances, access, found = chosen_instances(args, aws, ui, "run a command on", getattr(args, "index", None))
    if getattr(args, "workdir", None):
        from amazonei_setup.cli.commands import workdir
        from amazonei_setup.core import interrupts

        interrupts.if_stopped_now(f"the copy of {args.workdir} to ~/workdir stopped part-way (what arrived stays "
                                  "there) and the command did not run: run the same command again to copy it and run "
                                  "the command.")
        workdir.sync_all(args, env, ui, found, args.workdir)
        interrupts.if_stopped_now(None)
    command = remote.remote_command(args.words)
    ui.stop_status()
    data = {"name": args.name, "region": aws.region, "command": args.words, "instances": []}
    if args.output == "json":
        for target in found:
            done = subprocess.run([*target.ssh[:-1], "-T", target.ssh[-1], command], capture_output=True,
                                  stdin=subprocess.DEVNULL)
            data["instances"].append({"instance_id": target.instance_id, "host": target.label,
                                      "exit_code": done.returncode,
                                      "stdout": done.stdout.decode("utf-8", "replace"),
                                      "stderr": done.stderr.decode("utf-8", "replace")})
        codes = [each["exit_code"] for each in data["instances"]]
    elif len(found) == 1:
        codes = [remote.run_one(found[0], command, env.stdout, env.stderr, stdin=_stdin(env))]
        data["instances"].append({"instance_id": found[0].instance_id, "host": found[0].label,
                                  "exit_code": codes[0]})
    else:
        by_id = remote.run_all(found, command, env.stdout, env.stderr)
        codes = list(by_id.values())
        data["instances"] = [{"instance_id": t.instance_id, "host": t.label, "exit_code": by_id[t.instance_id]}
                             for t in found]
    code = remote.worst(codes)
    data["exit_code"] = code
    return Result("exec", data, view="silent", exit_code=code)


def _stdin(env: Environment):
    """This process's stdin for the remote command when it is a real file (a pipe, a terminal); else nothing."""
    import sys

    try:
        sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return sys.stdin
