"""`setup`: discover, plan (the wizard), confirm, provision; the result is the ready summary.

`--dry-run` plans and asks EC2 (DryRun) whether the caller may create the group and launch; its result is
that check's verdict."""
from __future__ import annotations

from amazonei_setup.cli import Environment
from amazonei_setup.commands import Result
from amazonei_setup.commands.common import cancelled, check_key_dir, next_step_for, ready, resolve_plan
from amazonei_setup.commands.printed import account_flags, program_name, teardown_command_for


def run(args, env: Environment, ui, aws) -> Result:
    from amazonei_setup import locking
    from amazonei_setup.discover import check_region

    if not args.name or args.dry_run:
        return _planned(args, env, ui, aws, locked=False)
    # A named run plans from what it sees under the lock: a run that planned before another finished would act
    # on a stale plan (create what now exists). A generated name is new, so its lock can wait for the confirm.
    check_region(aws.region, ei=not args.family)  # before the lock's first call, as the look-ups would
    with locking.deployment_locked(aws, args.name, "setup", ui.progress):
        return _planned(args, env, ui, aws, locked=True)


def _planned(args, env: Environment, ui, aws, *, locked: bool) -> Result:
    from contextlib import nullcontext

    from amazonei_setup import locking, provision
    from amazonei_setup.errors import ToolError

    plan, _, asker = resolve_plan(args, env, ui, aws)
    check_key_dir(args, plan)
    ui.show(ui.plan_panel(plan, title="Dry run: nothing will be created" if args.dry_run else "Setup plan"))
    if args.dry_run:
        with ui.status("Asking EC2 (DryRun) whether you may create the security group and launch"):
            problems = provision.check_permissions(aws, plan)
        return Result("setup", {"dry_run": True, "plan": plan.to_dict(), "permission_problems": problems},
                      view="dry-run", exit_code=1 if problems else 0)
    if plan.changes_anything and not asker.confirm("Create these resources?", default=True):
        return cancelled(args, plan)
    try:
        with nullcontext() if locked else locking.deployment_locked(aws, plan.name, "setup", ui.progress):
            result = provision.provision(aws, plan, ui.progress, sleep=env.sleep, account_flags=account_flags(args),
                                         teardown=teardown_command_for(args, plan.region, plan.name),
                                         wait=getattr(args, "wait", None))
    except ToolError as err:
        next_step_for(err, args, plan)
        raise
    done = ready(args, result)
    if getattr(asker, "interactive", False):  # what was answered, as flags: the run can be scripted next time
        done.context["equivalent_command"] = plan.equivalent_command(
            program_name(), account_flags(args), default_key_dir=_default_key_dir(args))
    return done


def _default_key_dir(args) -> str:
    """Where a key's .pem goes without --key-dir (the sandbox keeps its fake keys out of ~/.ssh)."""
    from amazonei_setup import paths

    return str(paths.sandbox_dir() / "keys") if args.sandbox else "~/.ssh"
