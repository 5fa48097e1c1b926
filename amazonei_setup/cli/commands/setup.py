"""`setup`: discover, plan (the wizard), confirm, provision; the result is the ready summary.

`--dry-run` plans and asks EC2 (DryRun) whether the caller may create the group and launch; its result is
that check's verdict.

Day two: after the run, "ready" means reachable. Against real AWS, unless --wait says otherwise, setup waits
(bounded, SSH_BUDGET) until each instance's port 22 accepts a TCP connection; on timeout the commands are printed anyway
with a warning and the exit code stays 0 (the machines run and are billed: rolling them back because this network
cannot reach port 22 would throw away a working deployment; `--wait ssh` keeps its strict meaning: a failure that
rolls back). Against an emulator (--sandbox, --endpoint-url, AWS_ENDPOINT_URL, moto) nothing listens, and the result
says SSH was not checked. Then the deployment's `Host` block is written (sshconfig.py)."""
from __future__ import annotations

from amazonei_setup.cli.commands import Result
from amazonei_setup.cli.commands.common import (
    cancelled,
    check_access_tools,
    check_key_dir,
    emulated,
    next_step_for,
    ready,
    resolve_plan,
)
from amazonei_setup.cli.commands.printed import account_flags, program_name, teardown_command_for
from amazonei_setup.cli.environment import Environment


def run(args, env: Environment, ui, aws) -> Result:
    from amazonei_setup.aws.discover import check_region
    from amazonei_setup.flows import locking

    if not args.name or args.dry_run:
        return _planned(args, env, ui, aws, locked=False)
    # A named run plans from what it sees under the lock: a run that planned before another finished would act
    # on a stale plan (create what now exists). A generated name is new, so its lock can wait for the confirm.
    check_region(aws.region, ei=not args.family)  # before the lock's first call, as the look-ups would
    with locking.deployment_locked(aws, args.name, "setup", ui.progress, sleep=env.sleep):
        return _planned(args, env, ui, aws, locked=True)


def _planned(args, env: Environment, ui, aws, *, locked: bool) -> Result:
    from contextlib import nullcontext

    from amazonei_setup.core.errors import ToolError
    from amazonei_setup.flows import locking, provision

    plan, facts, asker = resolve_plan(args, env, ui, aws)
    check_key_dir(args, plan)
    check_access_tools(plan)
    refuse_taken_host_names(args, plan)
    quota = quota_preflight(plan, facts, refuse=not args.dry_run)
    ui.show(ui.plan_panel(plan, title="Dry run: nothing will be created" if args.dry_run else "Setup plan"))
    if plan.accelerator_type and plan.instance_id is None and not emulated(args, env):
        # EI is retired and AWS refuses every launch: say so, with the command that works, before anything is
        # created. --yes still does what was asked (the refusal then rolls back); an emulator still launches EI.
        from amazonei_setup.cli.commands.common import alternative_command

        ui.warn("AWS retired Elastic Inference in April 2024 and will refuse this launch (setup then removes what "
                "it created). Choose --accelerator inf2 or gpu instead.")
        ui.show(ui.suggestion("The same choices on Inferentia2 (today's alternative to EI):",
                              alternative_command(args, plan)))
    if args.dry_run:
        with ui.status("Asking EC2 (DryRun) whether you may create the security group and launch"):
            problems = provision.check_permissions(aws, plan)
        return Result("setup", {"dry_run": True, "plan": plan.to_dict(), "permission_problems": problems,
                                "quota": quota.to_dict()},
                      view="dry-run", exit_code=1 if problems or quota.status == "short" else 0,
                      context={"quota": quota.summary()})
    include_asked = say_ssh_config_plan(args, ui, asker, plan)
    if getattr(args, "workdir", None):  # asked now, not after minutes of creating, with the instance billed
        from amazonei_setup.cli.commands import workdir

        workdir.check_size(args, asker, args.workdir)
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
    _reachable_by_name(args, env, ui, done, result, include=args.yes or (include_asked and plan.changes_anything),
                       aws=aws)
    if getattr(args, "workdir", None) or getattr(args, "setup_script", None):
        _work_on_the_machine(args, env, ui, done, result)
    if getattr(asker, "interactive", False):  # what was answered, as flags: the run can be scripted next time
        done.context["equivalent_command"] = plan.equivalent_command(
            program_name(), account_flags(args), default_key_dir=_default_key_dir(args))
    return done


def _default_key_dir(args) -> str:
    """Where a key's .pem goes without --key-dir (the sandbox keeps its fake keys out of ~/.ssh)."""
    from amazonei_setup.local import paths

    return str(paths.sandbox_dir() / "keys") if args.sandbox else "~/.ssh"


# ---- day two: ready means reachable, and `ssh NAME` ------------------------------------------------------------

SSH_BUDGET = 300.0  # seconds for every instance's SSH port to answer: a DLAMI's sshd is up a minute or two after boot
SSH_PROGRESS_EVERY = 10.0  # seconds between "Waiting for SSH on ... (35 s)" lines


def ssh_reachability(args, env: Environment, ui, instances: list, *, emulated: bool, warnings: list[str]) -> str:
    """Wait (bounded) until each instance's SSH port accepts a TCP connection. Returns what is known: `answers`,
    `timeout` (a warning says what to check; nothing fails), or `emulated` (not checked)."""
    import time

    from amazonei_setup.aws.concurrency import Cancelled, cancellable_sleep
    from amazonei_setup.aws.waiting import WaitTimeout, wait_for
    from amazonei_setup.core import interrupts
    from amazonei_setup.core.events import Event
    from amazonei_setup.flows import provision

    if emulated and not (instances and all(provision.is_sandboxed(each) for each in instances)):
        return "emulated"  # --endpoint-url emulators: nothing listens (the sandbox's instances do)
    started = time.monotonic()
    # The deployment is complete: a signal now only ends this wait (interrupts.py), the commands are still printed.
    sleep = cancellable_sleep(interrupts.requested(), env.sleep)
    for each in instances:
        address, port = provision.ssh_address(each)
        said = [-SSH_PROGRESS_EVERY]

        def on_wait(state, waited, address=address, port=port, said=said, instance_id=each.id):
            if waited - said[0] >= SSH_PROGRESS_EVERY:
                said[0] = waited
                ui.progress(Event("wait", "instance", f"Waiting for SSH on {address}:{port} ({waited:.0f} s)...",
                                  instance_id))

        try:
            wait_for(lambda e=each: "answers" if provision.ssh_reachable(e) else "closed",
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


def ssm_readiness(env: Environment, ui, aws, instances: list, *, warnings: list[str]) -> str:
    """--access ssm: wait (bounded, SSH_BUDGET) until every instance's SSM agent reports Online
    (DescribeInstanceInformation): before that, Session Manager cannot start the session ssh's ProxyCommand asks
    for. Returns `online`, `timeout` (a warning says what to check) or `interrupted`."""
    from amazonei_setup.aws.concurrency import Cancelled, cancellable_sleep
    from amazonei_setup.aws.resources import session
    from amazonei_setup.aws.waiting import WaitTimeout, wait_for
    from amazonei_setup.core import access, interrupts
    from amazonei_setup.core.events import Event

    ids = [each.id for each in instances]
    sleep = cancellable_sleep(interrupts.requested(), env.sleep)
    said = [-SSH_PROGRESS_EVERY]

    def state() -> str:
        found = session.ping_status(aws.client("ssm"), ids)
        waiting = [i for i in ids if found.get(i) != access.ONLINE]
        return "online" if not waiting else f"{len(waiting)} of {len(ids)} not Online"

    def on_wait(now, waited):
        if waited - said[0] >= SSH_PROGRESS_EVERY:
            said[0] = waited
            ui.progress(Event("wait", "instance", f"Waiting for the SSM agent to report Online ({now}, "
                                                  f"{waited:.0f} s)...", ids[0]))

    try:
        wait_for(state, done={"online"}, what="The SSM agent", how_to_check="", timeout=SSH_BUDGET, sleep=sleep,
                 on_wait=on_wait)
    except Cancelled:
        warnings.append("Stopped waiting for the SSM agent: the instances run (and are billed); `ssh NAME` works once "
                        "Systems Manager lists them Online.")
        return "interrupted"
    except WaitTimeout:
        warnings.append(f"The SSM agent of {', '.join(ids)} did not report Online within {SSH_BUDGET / 60:g} minutes: "
                        "the instances run (and are billed). Check that the instance reaches AWS outbound (its public "
                        "IP, a NAT, or the VPC's ssm/ssmmessages/ec2messages endpoints with 443 open to it) and look "
                        "it up in Systems Manager > Fleet Manager.")
        return "timeout"
    ui.progress(Event("done", "instance", f"SSM agent Online on {', '.join(ids)}", ids[0]))
    return "online"


def ssh_through_proxy(env: Environment, instances: list, access, *, emulated: bool, warnings: list[str]) -> str:
    """Against AWS, once the agent is Online: ssh through Session Manager answers (`ssh ... true` through the
    ProxyCommand, BatchMode), bounded like the port check. An emulator has no agent to tunnel through: `emulated`."""
    import subprocess
    import time

    from amazonei_setup.aws.concurrency import Cancelled, cancellable_sleep
    from amazonei_setup.core import interrupts

    if emulated:
        return "emulated"
    started = time.monotonic()
    sleep = cancellable_sleep(interrupts.requested(), env.sleep)
    from amazonei_setup.cli.commands.status import connect_commands

    identity = ["-i", access.key_path] if access.key_path else []
    for each in instances:
        command = ["ssh", *identity, "-o", f"ProxyCommand={access.proxy}", "-o", "BatchMode=yes",
                   "-o", "ConnectTimeout=20", "-o", "StrictHostKeyChecking=accept-new", "-o", f"HostKeyAlias={each.id}",
                   f"{access.user}@{each.id}", "true"]
        while True:
            try:
                if subprocess.run(command, capture_output=True, timeout=60).returncode == 0:
                    break
            except (OSError, subprocess.TimeoutExpired):
                pass
            if time.monotonic() - started > SSH_BUDGET:
                warnings.append(f"SSH through Session Manager to {each.id} did not answer within "
                                f"{SSH_BUDGET / 60:g} minutes: the instance runs (and is billed); try "
                                f"{connect_commands(access, each.host, each.id)[0]}")
                return "timeout"
            try:
                sleep(5.0)
            except Cancelled:
                return "interrupted"
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
    import dataclasses

    from amazonei_setup.core import access as access_modes
    from amazonei_setup.local import sshconfig

    proxy = access_modes.proxy_command(region, args.profile) if access.via == access_modes.SSM else None
    known_hosts = None
    if args.sandbox:
        from amazonei_setup.local import paths
        from amazonei_setup.sandbox import ssh as sandbox_ssh

        known_hosts = str(sandbox_ssh.known_hosts_file(paths.sandbox_dir()))
    entries = sshconfig.entries_for(name, instances, access.user, access.key_path, proxy, known_hosts)
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
    entries = [dataclasses.replace(e, aliases=tuple(a for a in e.aliases if a not in shadowing)) for e in entries]
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
    from amazonei_setup.cli.commands.printed import command_for

    return command_for(args, "connect", region, name)


def refuse_taken_host_names(args, plan) -> None:
    """Before anything is created: a deployment whose Host names another deployment's entry already answers to
    (`demo-1` beside `demo --count 2`, or the other way round) would get no `ssh NAME` of its own, or worse before
    this check, take the other's. Certain at plan time, so refused here (exit 2), naming both ways out."""
    from amazonei_setup.core.errors import UsageError
    from amazonei_setup.local import sshconfig

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
    from amazonei_setup.local import sshconfig

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


def _access(args, result):
    """How ssh reaches what this run made (the plan's user, key and access mode)."""
    from amazonei_setup.cli.commands.status import Access

    return Access(result.plan.ssh_user, result.key_path, True, "plan", result.plan.access,
                  result.plan.proxy_command)


def _reachable_by_name(args, env: Environment, ui, done, result, *, include: bool, aws=None) -> None:
    """After a successful setup: wait for SSH (real AWS, no --wait), then write the SSH config entries; both said in
    the result (`ssh_check`, `ssh_config`). Through Session Manager: wait for each SSM agent to be Online
    (`ssm_check`), then (real AWS) for SSH through the proxy."""
    from amazonei_setup.local import records

    data = done.data
    if result.plan.via_ssm:
        data["ssm_check"] = ssm_readiness(env, ui, aws, result.instances, warnings=done.warnings)
        if data["ssm_check"] == "online":
            data["waited_for"] = [*data["waited_for"], "ssm"]
    if result.plan.via_ssm and data["ssm_check"] != "online":
        check = "not-waited"
    elif result.plan.via_ssm:
        check = ssh_through_proxy(env, result.instances, _access(args, result), emulated=emulated(args, env),
                                  warnings=done.warnings)
        if check == "answers":
            data["waited_for"] = [*data["waited_for"], "ssh"]
    elif args.wait:
        check = "answers" if "ssh" in data["waited_for"] else "not-waited"
    else:
        check = ssh_reachability(args, env, ui, result.instances, emulated=emulated(args, env), warnings=done.warnings)
        if check == "answers":
            data["waited_for"] = [*data["waited_for"], "ssh"]
    data["ssh_check"] = check
    data["ssh_config"] = None
    if not args.no_ssh_config:
        data["ssh_config"] = write_ssh_entries(args, result.plan.region, result.plan.name, result.instances,
                                               _access(args, result),
                                               done.warnings, include=include, emulated=emulated(args, env))
    if check == "answers" or (args.wait and "ssh" in data["waited_for"]):
        from amazonei_setup.cli.commands import accelerator
        from amazonei_setup.cli.commands.status import Access

        access = Access(result.plan.ssh_user, result.key_path, True, "plan")
        data["accelerator_check"] = accelerator.check_all(args, ui, result.instances, access, result.plan.family,
                                                          result.plan.accelerator_type, done.warnings)
    records.save(result.plan.region, result.plan.name, data, sandbox=args.sandbox)


def _work_on_the_machine(args, env: Environment, ui, done, result) -> None:
    """--workdir and --setup-script, once SSH answers. A failure here keeps the deployment (it runs, and a fixed
    script runs with `exec`): the result says what happened (`workdir`, `setup_script`), the exit status is 1."""
    from amazonei_setup.cli.commands import remote, workdir
    from amazonei_setup.cli.commands.printed import command_for
    from amazonei_setup.cli.commands.status import Access
    from amazonei_setup.core import shell
    from amazonei_setup.core.errors import ToolError

    data = done.data
    plan = result.plan
    if data.get("ssh_check") not in ("answers", None) and "ssh" not in data.get("waited_for", []):
        later = command_for(args, "exec", plan.region, plan.name, " --workdir DIR -- bash -s < SCRIPT")
        done.warnings.append(f"SSH was not checked ({data.get('ssh_check')}), so --workdir/--setup-script did not "
                             f"run: once SSH answers, run {later}")
        return
    access = Access(plan.ssh_user, result.key_path, True, "plan")
    targets = remote.targets(args, [i for i in result.instances if i.state == "running" and i.host], access)
    teardown = command_for(args, "teardown", plan.region, plan.name)
    try:
        if args.workdir:
            data["workdir"] = workdir.sync_all(args, env, ui, targets, args.workdir, size_checked=True)
        if args.setup_script:
            facts = {"name": plan.name, "region": plan.region,
                     "accelerator": plan.family or plan.accelerator_type or "none"}
            ran = workdir.run_script(args, env, ui, targets, args.setup_script, facts,
                                     rerun=getattr(args, "rerun_setup", False))
            data["setup_script"] = ran
            failed = [each for each in ran["instances"] if each.get("exit_code")]
            if failed:
                worst = failed[0]
                index = next(i for i, t in enumerate(targets) if t.instance_id == worst["instance_id"])
                again = command_for(args, "exec", plan.region, plan.name,
                                    f" --index {index}" if len(targets) > 1 else "")
                again += f" -- bash -s < {shell.path(args.setup_script)}"
                raise ToolError(f"The setup script failed on {worst['host']} ({worst['instance_id']}) with exit "
                                f"{worst['exit_code']}; its output is in {ran['log']}. The deployment is kept (it runs "
                                f"and is billed): fix the script and run it again in ~/workdir with `{again}`, or "
                                f"remove the deployment with `{teardown}`.",
                                code="setup-script")
    except ToolError as err:
        data["kept"] = True
        data["error"] = {"code": err.code, "message": str(err)}
        done.status = "partial"
        done.exit_code = 1
        done.warnings.append(str(err))
        return
    except workdir.Stopped as stop:  # the first Ctrl-C, absorbed: the result is still printed, exit 130
        data["kept"] = True
        done.status = "partial"
        if stop.what == "script":
            run_it = command_for(args, "exec", plan.region, plan.name,
                                 f" -- bash -s < {shell.path(args.setup_script)}")
            data["setup_script"] = {"script": str(args.setup_script), "ok": False, "stopped": True}
            done.warnings.append(f"Interrupted while the setup script ran on {stop.label}: this end stopped waiting "
                                 "for it; on the instance it may run on to its end (what it prints now goes nowhere). "
                                 f"The deployment is kept: run it again with `{run_it}` (or setup with "
                                 f"--rerun-setup), or remove it with `{teardown}`.")
            return
        again = command_for(args, "exec", plan.region, plan.name, f" --workdir {shell.path(args.workdir)} -- true")
        unrun = then = ""
        if args.setup_script:
            run_it = command_for(args, "exec", plan.region, plan.name,
                                 f" -- bash -s < {shell.path(args.setup_script)}")
            unrun, then = ", and the setup script did not run", f", then run the script with `{run_it}`"
        data["workdir"] = {"directory": str(args.workdir), "stopped": True}
        done.warnings.append(f"Interrupted while copying {args.workdir} to {stop.label}:~/workdir: the copy stopped "
                             f"part-way (what arrived stays there; nothing marks it complete){unrun}. The deployment "
                             f"is kept: copy it again with `{again}`{then}, or remove it with `{teardown}`.")
    except KeyboardInterrupt:
        done.warnings.append(f"Stopped while working on the machine: the deployment is kept; copy or run again with "
                             f"{command_for(args, 'exec', plan.region, plan.name, ' --workdir DIR -- true')}, or "
                             f"remove it with {teardown}")
        raise


# ---- the quota preflight, zone failover, another region -------------------------------------------

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

    from amazonei_setup.core import capacity
    from amazonei_setup.core.errors import AwsError

    launches = launches_of(plan)
    known = facts.capacity.type_vcpus if facts.capacity else {}
    check = capacity.check_quota(instance_type=plan.instance_type, vcpus=known.get(plan.instance_type),
                                 launches=launches, min_launches=min(plan.min_count, launches),
                                 region=plan.region, facts=facts.capacity, spot=bool(plan.spot))
    # --spot auto: a Spot quota too low is one more Spot refusal, and the launch falls back to On-Demand.
    if refuse and check.status == capacity.SHORT and plan.spot != "auto":
        raise AwsError(check.short_sentence(plan.instance_type, launches), code="quota")
    return dataclasses.replace(check, needed_launches=launches)


def failover_for(args, plan, facts):
    """Where a refused launch may move (other zones of the plan's VPC that offer the type; for EI, where the
    endpoint service is): none when --subnet-id pinned the zone, or when nothing is launched."""
    from amazonei_setup.core import capacity

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
