"""`teardown`: find a deployment by its tags, show what goes, confirm, delete; the result is what was removed."""
from __future__ import annotations

from amazonei_setup.cli import Environment
from amazonei_setup.commands import Result
from amazonei_setup.commands.common import asker_for
from amazonei_setup.commands.printed import command_for


def run(args, env: Environment, ui, aws) -> Result:
    from amazonei_setup import locking
    from amazonei_setup.discover import check_region

    if not args.region:
        aws = home_of(args.name, aws)
    check_region(aws.region, ei=False)  # before the lock's first call: a region without EC2 is a usage error
    # Held from the look-up on: a setup of the same name must not create what this look-up has not seen.
    with locking.deployment_locked(aws, args.name, "teardown", ui.progress, force=args.force_unlock, force_flag=True,
                                   sleep=env.sleep) as dead_run:
        return _locked(args, env, ui, aws, dead_run)


def home_of(name: str, aws, *, deleting: bool = True):
    """Without --region: the region deployment `name` lives in, as its IAM role's region tag says. deleting: how a
    typo is said (teardown: "so nothing was deleted")."""
    from amazonei_setup import deployments
    from amazonei_setup.errors import UsageError

    home = deployments.lives_in(aws, name)
    if home is None:
        deployments.refuse_close_names(aws, name, deleting=deleting)  # a typo of one that exists: exit 1
        raise UsageError(f"No deployment named '{name}' says where it lives (its IAM role carries the region): pass "
                         "--region with the region it runs in (see `list --all-regions`).")
    return aws if home == aws.region else aws.in_region(home)


def _locked(args, env: Environment, ui, aws, dead_run=None) -> Result:
    from amazonei_setup import deployments, records, teardown

    with ui.status(f"Looking for deployment '{args.name}' in {aws.region}"):
        inventory = deployments.find_deployment(aws, args.name, neighbours=True)
    if inventory.empty:
        forget_ssh_entry(args)  # a block left by a deployment removed some other way: `ssh NAME` must not linger
        warnings = [f"Left alone (not created by amazonei-setup): {', '.join(inventory.foreign)}."] \
            if inventory.foreign else []
        warnings += deployments.unchecked_warnings(inventory, deleting=True)
        return Result("teardown", {"name": args.name, "region": aws.region, "found": False, "deleted": [],
                                   "kept": [], **_unchecked(inventory)}, view="message", warnings=warnings,
                      message=f"No deployment named {args.name} is left in {aws.region} (its {dead_run.command} run "
                              "stopped before it created anything); nothing to delete." if dead_run else
                      deployments.nothing_left(aws, inventory, records.load(aws.region, args.name,
                                                                            sandbox=args.sandbox)))
    for each in inventory.unchecked:
        if each.evidence:  # a stack holds it: deleting its resources behind its back would strand the stack
            from amazonei_setup.errors import AwsError

            raise AwsError(f"Deployment {args.name} was made by the CloudFormation stack {each.evidence} (its "
                           f"resources carry its tag), and reading it was denied ({each.action}): nothing was deleted; "
                           "ask an administrator for that permission, or delete the stack in the CloudFormation "
                           f"console ({aws.region}).", code="access-denied")
    items = teardown.teardown_plan(inventory, keep_shared=args.keep_shared)
    ui.show(ui.teardown_table(items, title=f"Teardown of {args.name} in {aws.region}"))
    asker = asker_for(args, env)
    if not asker.confirm(f"Delete deployment {args.name}?", default=False):
        return Result("teardown", {"name": args.name}, status="cancelled", view="message",
                      message="Nothing was deleted.")
    done = teardown.teardown(aws, inventory, items, ui.progress, **({"sleep": env.sleep} if env.sleep else {}),
                             finish=command_for(args, "teardown", aws.region, args.name))
    ui.stop_status()
    notes = deployments.unchecked_warnings(inventory, deleting=True)  # said first: it changes what "removed" means
    record = records.load(aws.region, args.name, sandbox=args.sandbox)
    if inventory.key_pair:  # advice beside the result: said on stderr, in JSON mode too
        key = inventory.key_pair["KeyName"]
        where = (record or {}).get("key_path") or f"{key}.pem, where setup saved it (by default in ~/.ssh)"
        notes.append(f"The private key file {where} was left in place; delete it when you no longer need it.")
    left = records.remove(aws.region, args.name, sandbox=args.sandbox)
    if left:
        notes.append(left)
    forget_ssh_entry(args)
    return Result("teardown", {
        "name": args.name, "region": aws.region, "found": True,
        "deleted": [vars_of(i) for i in done if i.action == "delete"],
        "kept": [vars_of(i) for i in done if i.action != "delete"], **_unchecked(inventory)},
        view="teardown", warnings=notes, message=f"Deployment {args.name} removed" + (
            f"; not checked: {', '.join(u.piece for u in inventory.unchecked)} (see the warning)."
            if inventory.unchecked else "."))


def _unchecked(inventory) -> dict:
    """The optional look-ups AWS refused, in the JSON result (absent when there were none)."""
    return {"unchecked": [u.to_dict() for u in inventory.unchecked]} if inventory.unchecked else {}


def vars_of(item) -> dict:
    return {"kind": item.kind, "id": item.id, "action": item.action, "reason": item.reason}


def forget_ssh_entry(args) -> None:
    """Remove the deployment's `Host` block from the tool's SSH config (issue 16); the Include line in ~/.ssh/config
    stays (harmless, and the user may have moved it). Best effort: the teardown itself is done."""
    from amazonei_setup import sshconfig

    try:
        sshconfig.remove_block(args.name, sandbox=args.sandbox)
    except OSError:
        pass
