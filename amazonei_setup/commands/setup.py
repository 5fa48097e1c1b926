"""`setup`: discover, plan (the wizard), confirm, provision; the result is the ready summary.

`--dry-run` plans and asks EC2 (DryRun) whether the caller may create the group and launch; its result is
that check's verdict.

Day two (issue 16): after the run, "ready" means reachable. Against real AWS, unless --wait says otherwise, setup waits
(bounded, SSH_BUDGET) until each instance's port 22 accepts a TCP connection; on timeout the commands are printed anyway
with a warning and the exit code stays 0 (the machines run and are billed: rolling them back because this network
cannot reach port 22 would throw away a working deployment; `--wait ssh` keeps its strict meaning: a failure that
rolls back). Against an emulator (--sandbox, --endpoint-url, AWS_ENDPOINT_URL, moto) nothing listens, and the result
says SSH was not checked. Then the deployment's `Host` block is written (sshconfig.py)."""
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
    with locking.deployment_locked(aws, args.name, "setup", ui.progress, sleep=env.sleep):
        return _planned(args, env, ui, aws, locked=True)


def _planned(args, env: Environment, ui, aws, *, locked: bool) -> Result:
    from contextlib import nullcontext

    from amazonei_setup import locking, provision
    from amazonei_setup.errors import ToolError

    plan, facts, asker = resolve_plan(args, env, ui, aws)
    check_key_dir(args, plan)
    refuse_taken_host_names(args, plan)
    quota = quota_preflight(plan, facts, refuse=not args.dry_run)
    ui.show(ui.plan_panel(plan, title="Dry run: nothing will be created" if args.dry_run else "Setup plan"))
    if args.dry_run:
        with ui.status("Asking EC2 (DryRun) whether you may create the security group and launch"):
            problems = provision.check_permissions(aws, plan)
        return Result("setup", {"dry_run": True, "plan": plan.to_dict(), "permission_problems": problems,
                                "quota": quota.to_dict()},
                      view="dry-run", exit_code=1 if problems or quota.status == "short" else 0,
                      context={"quota": quota.summary()})
    include_asked = say_ssh_config_plan(args, ui, asker, plan)
    if plan.changes_anything and not asker.confirm("Create these resources?", default=True):
        return cancelled(args, plan)
    try:
        with nullcontext() if locked else locking.deployment_locked(aws, plan.name, "setup", ui.progress,
                                                                                   sleep=env.sleep):
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
    _reachable_by_name(args, env, ui, done, result, include=args.yes or (include_asked and plan.changes_anything))
    if getattr(asker, "interactive", False):  # what was answered, as flags: the run can be scripted next time
        done.context["equivalent_command"] = plan.equivalent_command(
            program_name(), account_flags(args), default_key_dir=_default_key_dir(args))
    return done


def _default_key_dir(args) -> str:
    """Where a key's .pem goes without --key-dir (the sandbox keeps its fake keys out of ~/.ssh)."""
    from amazonei_setup import paths

    return str(paths.sandbox_dir() / "keys") if args.sandbox else "~/.ssh"


# ---- day two: ready means reachable, and `ssh NAME` ------------------------------------------------------------

SSH_BUDGET = 300.0  # seconds for every instance's SSH port to answer: a DLAMI's sshd is up a minute or two after boot
SSH_PROGRESS_EVERY = 10.0  # seconds between "Waiting for SSH on ... (35 s)" lines


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


def ssh_reachability(args, env: Environment, ui, instances: list, *, emulated: bool, warnings: list[str]) -> str:
    """Wait (bounded) until each instance's SSH port accepts a TCP connection. Returns what is known: `answers`,
    `timeout` (a warning says what to check; nothing fails), or `emulated` (not checked)."""
    import time

    from amazonei_setup import interrupts, provision
    from amazonei_setup.concurrency import Cancelled, cancellable_sleep
    from amazonei_setup.events import Event
    from amazonei_setup.waiting import WaitTimeout, wait_for

    if emulated:
        return "emulated"
    started = time.monotonic()
    # The deployment is complete: a signal now only ends this wait (interrupts.py), the commands are still printed.
    sleep = cancellable_sleep(interrupts.requested(), env.sleep)
    for each in instances:
        address = each.public_ip or each.host
        port = provision.SSH_PORT
        said = [-SSH_PROGRESS_EVERY]

        def on_wait(state, waited, address=address, port=port, said=said, instance_id=each.id):
            if waited - said[0] >= SSH_PROGRESS_EVERY:
                said[0] = waited
                ui.progress(Event("wait", "instance", f"Waiting for SSH on {address}:{port} ({waited:.0f} s)...",
                                  instance_id))

        try:
            wait_for(lambda a=address, p=port: "answers" if provision.port_answers(a, p) else "closed",
                     done={"answers"}, what=f"SSH on {address}:{port}", how_to_check="",
                     timeout=max(SSH_BUDGET - (time.monotonic() - started), 1.0),
                     sleep=sleep, on_wait=on_wait)
        except Cancelled:
            warnings.append(f"Stopped waiting for SSH on {address}:{port} ({each.id}): the instance runs (and is "
                            "billed); the commands below work once sshd is up.")
            return "interrupted"
        except WaitTimeout:
            warnings.append(f"SSH on {address}:{port} ({each.id}) did not answer within {SSH_BUDGET / 60:g} minutes: "
                            "the instance runs (and is billed), and the commands below work once sshd is up. If it "
                            f"never answers, check that --ssh-cidr includes this machine's address (try `nc -zv "
                            f"{address} {port}`).")
            return "timeout"
        ui.progress(Event("done", "instance", f"SSH answers on {address}:{port} ({each.id})", each.id))
    return "answers"


def write_ssh_entries(args, region: str, name: str, instances: list, access, warnings: list[str], *,
                      include: bool, emulated: bool = False) -> dict | None:
    """Write deployment `name`'s Host block(s) in the tool's SSH config; with `include`, add the one Include line to
    ~/.ssh/config if it is missing (never for the sandbox). Best effort: a problem is a warning, the deployment is
    fine either way. Returns what the result shows (file, hosts, whether ~/.ssh/config includes the file).

    An alias that already means something gets no entry (sshconfig's docstring says why): one another deployment's
    block has (setup refused that up front, `refuse_taken_host_names`; a start or a race still meets it), or a real
    host name. The deployment stays as it is: the name is still its name in AWS, and `connect --name N` reaches it.
    Warning instead of refusing keeps the instances a start just started, and a setup whose resources exist; the
    sandbox's file is never included, so only other deployments' aliases matter there. emulated: no DNS query (the
    addresses are made up; this machine's own names and ssh's configuration are still checked)."""
    from amazonei_setup import sshconfig

    entries = sshconfig.entries_for(name, instances, access.user, access.key_path)
    if not entries:
        return None
    taken = [a for e in entries for a in e.aliases if not args.sandbox and sshconfig.user_defines(a)]
    if taken:
        warnings.append(f"Your ~/.ssh/config already has `Host {taken[0]}`: left alone, and no entry of ours was "
                        f"written for {name} (ours would override yours); connect with "
                        f"{_connect_command(args, region, name)}.")
        return {"file": None, "hosts": [], "included": False}
    if access.key_path and "${" in access.key_path:  # IdentityFile expands ${VAR}, with no way to write it literally
        warnings.append(f"No SSH config entry was written for {name}: its key's path contains `${{`, which ssh's "
                        f"IdentityFile would expand; connect with {_connect_command(args, region, name)}.")
        return {"file": None, "hosts": [], "included": False}
    shadowing = {} if args.sandbox else {
        alias: why for alias in dict.fromkeys(a for e in entries for a in e.aliases)
        if (why := sshconfig.shadowed(alias, dns=not emulated))}
    entries = [sshconfig.HostEntry(tuple(a for a in e.aliases if a not in shadowing), e.host, e.user, e.identity_file,
                                   e.instance_id) for e in entries]
    entries = [e for e in entries if e.aliases]
    try:
        claim = sshconfig.claim(name, region, entries, sandbox=args.sandbox)
        if include and not args.sandbox and claim.entries:
            sshconfig.add_include()
        included = not args.sandbox and sshconfig.has_include()
    except (OSError, RuntimeError, ValueError) as err:
        warnings.append(f"The SSH config entry for {name} could not be written ({getattr(err, 'strerror', None) or err}"
                        "): connect with the ssh command shown.")
        return None
    connect = _connect_command(args, region, name)
    for alias, why in shadowing.items():
        warnings.append(f"No `Host {alias}` entry was written for deployment {name}: `{alias}` already reaches a "
                        f"machine ({why}), and an entry of ours would send `ssh {alias}` to the instance instead; "
                        f"connect with {connect}.")
    for alias, other in claim.taken.items():
        warnings.append(f"No `Host {alias}` entry was written for deployment {name}: deployment {other}'s entry "
                        f"already answers to {alias}; connect with {connect}.")
    return {"file": str(claim.path), "hosts": [a for e in claim.entries for a in e.aliases], "included": included,
            "include_line": None if args.sandbox else sshconfig.include_line()}  # the sandbox's file is never included


def _connect_command(args, region: str, name: str) -> str:
    from amazonei_setup.commands.printed import command_for

    return command_for(args, "connect", region, name)


def refuse_taken_host_names(args, plan) -> None:
    """Before anything is created: a deployment whose Host names another deployment's entry already answers to
    (`demo-1` beside `demo --count 2`, or the other way round) would get no `ssh NAME` of its own, or worse before
    this check, take the other's. Certain at plan time, so refused here (exit 2), naming both ways out."""
    from amazonei_setup import sshconfig
    from amazonei_setup.errors import UsageError

    if getattr(args, "no_ssh_config", False):
        return
    taken = sshconfig.taken_by_others(plan.name, sshconfig.host_names(plan.name, max(plan.count, 1)),
                                      sandbox=args.sandbox)
    if taken:
        alias, other = next(iter(taken.items()))
        raise UsageError(f"`ssh {alias}` already reaches deployment {other} (its entry in "
                         f"{sshconfig.config_file(args.sandbox)}), and deployment {plan.name} would answer to it too: "
                         "choose another --name, or pass --no-ssh-config to write no SSH entry.")


def say_ssh_config_plan(args, ui, asker, plan) -> bool:
    """Before the confirm: what setup will add to ~/.ssh/config, so the one confirm covers it. True when said (the
    user's yes then covers it); --no-ssh-config, the sandbox and an Include already there need no word."""
    from amazonei_setup import sshconfig

    if getattr(args, "no_ssh_config", False) or args.sandbox or not getattr(asker, "interactive", False):
        return False
    if sshconfig.has_include():
        return True
    try:
        where = sshconfig.user_config_file()
    except RuntimeError:
        return False
    command = "export --deploy" if args.command == "export" else "setup"
    ui.info(f"SSH by name: {command} also adds `Host {plan.name}` to {sshconfig.config_file()} and, at the top of "
            f"{where}, the one line `{sshconfig.include_line()}` (nothing else there changes; --no-ssh-config skips "
            "both).")
    return True


def _reachable_by_name(args, env: Environment, ui, done, result, *, include: bool) -> None:
    """After a successful setup: wait for SSH (real AWS, no --wait), then write the SSH config entries; both said in
    the result (`ssh_check`, `ssh_config`)."""
    from amazonei_setup import records
    from amazonei_setup.commands.status import Access

    data = done.data
    if args.wait:
        check = "answers" if "ssh" in data["waited_for"] else "not-waited"
    else:
        check = ssh_reachability(args, env, ui, result.instances, emulated=emulated(args, env), warnings=done.warnings)
        if check == "answers":
            data["waited_for"] = [*data["waited_for"], "ssh"]
    data["ssh_check"] = check
    data["ssh_config"] = None
    if not args.no_ssh_config:
        access = Access(result.plan.ssh_user, result.key_path, True, "plan")
        data["ssh_config"] = write_ssh_entries(args, result.plan.region, result.plan.name, result.instances, access,
                                               done.warnings, include=include, emulated=emulated(args, env))
    records.save(result.plan.region, result.plan.name, data, sandbox=args.sandbox)


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
    """The setup command with this plan's choices in `region` (plan.equivalent_command's regional form)."""
    return plan.equivalent_command(program_name(), account_flags(args), default_key_dir=_default_key_dir(args),
                                   region=region)
