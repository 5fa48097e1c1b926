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

    plan, facts, asker = resolve_plan(args, env, ui, aws)
    check_key_dir(args, plan)
    quota = quota_preflight(plan, facts, refuse=not args.dry_run)
    ui.show(ui.plan_panel(plan, title="Dry run: nothing will be created" if args.dry_run else "Setup plan"))
    if args.dry_run:
        with ui.status("Asking EC2 (DryRun) whether you may create the security group and launch"):
            problems = provision.check_permissions(aws, plan)
        return Result("setup", {"dry_run": True, "plan": plan.to_dict(), "permission_problems": problems,
                                "quota": quota.to_dict()},
                      view="dry-run", exit_code=1 if problems or quota.status == "short" else 0,
                      context={"quota": quota.summary()})
    if plan.changes_anything and not asker.confirm("Create these resources?", default=True):
        return cancelled(args, plan)
    try:
        with nullcontext() if locked else locking.deployment_locked(aws, plan.name, "setup", ui.progress):
            result = provision.provision(aws, plan, ui.progress, sleep=env.sleep, account_flags=account_flags(args),
                                         teardown=teardown_command_for(args, plan.region, plan.name),
                                         wait=getattr(args, "wait", None), failover=failover_for(args, plan, facts),
                                         subnet_pinned=bool(args.subnet_id))
    except ToolError as err:
        next_step_for(err, args, plan)
        suggest_another_region(err, args, plan)
        raise
    done = ready(args, result)
    done.data["quota"] = quota.to_dict()
    if quota.status == "unknown" and quota.needed_launches:
        done.warnings.append(quota.unknown_sentence())
    if getattr(asker, "interactive", False):  # what was answered, as flags: the run can be scripted next time
        done.context["equivalent_command"] = plan.equivalent_command(
            program_name(), account_flags(args), default_key_dir=_default_key_dir(args))
    return done


def _default_key_dir(args) -> str:
    """Where a key's .pem goes without --key-dir (the sandbox keeps its fake keys out of ~/.ssh)."""
    from amazonei_setup import paths

    return str(paths.sandbox_dir() / "keys") if args.sandbox else "~/.ssh"


# ---- issue 17: the quota preflight, zone failover, another region ----------------------------------

def launches_of(plan) -> int:
    """Instances this run makes count against a quota: those it launches, or the stopped ones it starts."""
    if plan.instance_id:
        states = plan.instance_states or (plan.instance_state,)
        return sum(1 for state in states if state == "stopped")
    return plan.count


def quota_preflight(plan, facts, *, refuse: bool = True):
    """The On-Demand vCPU quota check (capacity.check_quota) for what this plan launches; with refuse, a quota too
    low for it stops the run here, before anything is created. Returns the check (with `needed_launches`)."""
    import dataclasses

    from amazonei_setup import capacity
    from amazonei_setup.errors import AwsError

    launches = launches_of(plan)
    known = facts.capacity.type_vcpus if facts.capacity else {}
    check = capacity.check_quota(instance_type=plan.instance_type, vcpus=known.get(plan.instance_type),
                                 launches=launches, min_launches=min(plan.min_count, launches),
                                 region=plan.region, facts=facts.capacity)
    if refuse and check.status == capacity.SHORT:
        raise AwsError(check.short_sentence(plan.instance_type, launches), code="quota")
    return dataclasses.replace(check, needed_launches=launches)


def failover_for(args, plan, facts):
    """Where a refused launch may move (other zones of the plan's VPC that offer the type; for EI, where the
    endpoint service is): none when --subnet-id pinned the zone, or when nothing is launched."""
    from amazonei_setup import capacity

    if args.subnet_id or plan.instance_id:
        return None
    offered = facts.offerings.get(plan.instance_type, ()) if facts.offerings else None
    return capacity.failover_zones(subnets=facts.subnets, vpc_id=plan.vpc_id, planned_subnet_id=plan.subnet_id,
                                   instance_type=plan.instance_type, offered_azs=offered,
                                   allowed_azs=facts.ei_azs if plan.accelerator_type else None)


def suggest_another_region(err, args, plan) -> None:
    """Every zone refused the type: the same setup in the first region that offers it, as a command to copy."""
    regions = getattr(err, "other_regions", None)
    if err.code != "capacity" or not regions or err.suggested_command:
        return
    err.suggested_command = another_region_command(args, plan, regions[0])
    err.suggested_caption = f"The same setup in {regions[0]}, which offers {plan.instance_type}:"


def another_region_command(args, plan, region: str) -> str:
    """The setup command with this plan's choices in `region`: the same program, account flags, name, type,
    accelerator, SSH range, volume and count; what is regional (VPC, subnet, image, key pair) is left for that
    region to decide (a key pair this run would have made is made there)."""
    import shlex

    from amazonei_setup.plan import DEFAULT_VOLUME_GIB

    parts = [*shlex.split(program_name()), *shlex.split(account_flags(args)), "--region", region, "--name",
             plan.name, "--instance-type", plan.instance_type]
    if plan.family:
        parts += ["--accelerator", plan.family]
    elif plan.accelerator_type:
        parts += ["--accelerator-type", plan.accelerator_type] + (["--os", plan.os_key] if plan.os_key else [])
    if plan.create_key:
        parts.append("--new-key")
    if args.key_dir:
        parts += ["--key-dir", args.key_dir]
    parts += ["--ssh-cidr", plan.ssh_cidr]
    if plan.volume_size != DEFAULT_VOLUME_GIB:
        parts += ["--volume-size", str(plan.volume_size)]
    if plan.count > 1:
        parts += ["--count", str(plan.count)]
    if plan.min_count < plan.count:
        parts += ["--min-count", str(plan.min_count)]
    parts.append("--yes")
    return " ".join(shlex.quote(p) for p in parts)
