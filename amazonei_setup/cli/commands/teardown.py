"""`teardown`: find a deployment by its tags, show what goes, confirm, delete; the result is what was removed."""
from __future__ import annotations

from dataclasses import replace

from amazonei_setup.cli.commands import Result
from amazonei_setup.cli.commands.common import asker_for, forget_ssh_entry, home_of, key_dir_of
from amazonei_setup.cli.commands.printed import command_for
from amazonei_setup.cli.environment import Environment


def run(args, env: Environment, ui, aws) -> Result:
    from amazonei_setup.aws.discover import check_region
    from amazonei_setup.flows import locking

    if not args.region:
        aws = home_of(args.name, aws, sandbox=args.sandbox)
    check_region(aws.region, ei=False)  # before the lock's first call: a region without EC2 is a usage error
    # Held from the look-up on: a setup of the same name must not create what this look-up has not seen.
    with locking.deployment_locked(aws, args.name, "teardown", ui.progress, force=args.force_unlock, force_flag=True,
                                   sleep=env.sleep) as dead_run:
        return _locked(args, env, ui, aws, dead_run)


def _locked(args, env: Environment, ui, aws, dead_run=None) -> Result:
    from amazonei_setup.flows import deployments, teardown
    from amazonei_setup.local import records

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
            from amazonei_setup.core.errors import AwsError

            raise AwsError(f"Deployment {args.name} was made by the CloudFormation stack {each.evidence} (its "
                           f"resources carry its tag), and reading it was denied ({each.action}): nothing was deleted; "
                           "ask an administrator for that permission, or delete the stack in the CloudFormation "
                           f"console ({aws.region}).", code="access-denied")
    items = teardown.teardown_plan(inventory, keep_shared=args.keep_shared)
    record = records.load(aws.region, args.name, sandbox=args.sandbox)
    pem = _private_key_file(args, inventory, record)
    if pem:  # deleted after its key pair: a private key whose key pair is gone opens nothing
        items = [replace(i, reason="") if i.kind == "key-pair" and i.reason != teardown.WITH_STACK else i
                 for i in items]  # not "left in place"
        items.append(teardown.TeardownItem("private-key-file", str(pem), teardown.DELETE,
                                           f"the private key of {inventory.key_pair['KeyName']}"))
    ui.show(ui.teardown_table(items, title=f"Teardown of {args.name} in {aws.region}"))
    asker = asker_for(args, env)
    if not asker.confirm(f"Delete deployment {args.name}?", default=False):
        return Result("teardown", {"name": args.name}, status="cancelled", view="message",
                      message="Nothing was deleted.")
    done = teardown.teardown(aws, inventory, items, ui.progress, **({"sleep": env.sleep} if env.sleep else {}),
                             finish=command_for(args, "teardown", aws.region, args.name))
    ui.stop_status()
    notes = deployments.unchecked_warnings(inventory, deleting=True)  # said first: it changes what "removed" means
    if pem:
        try:
            pem.unlink(missing_ok=True)
        except OSError as err:  # the teardown itself is done: say what is left, as for a key file left on purpose
            notes.append(f"The private key file {pem} could not be deleted ({err.strerror or err}); delete it by "
                         "hand, it opens nothing now.")
    elif inventory.key_pair:  # advice beside the result: said on stderr, in JSON mode too
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


def _private_key_file(args, inventory, record: dict | None):
    """The file setup saved the private key of the key pair this teardown deletes: where the local record says, else
    at its default place; only when it holds that key pair's private key (keypair.holds_private_key_of)."""
    from pathlib import Path

    from amazonei_setup.aws.resources import keypair

    key_pair = inventory.key_pair
    if not key_pair:
        return None
    name = f"{key_pair['KeyName']}.pem"
    places = [Path(p).expanduser() for p in [(record or {}).get("key_path")] if p] + [key_dir_of(args) / name]
    return next((p for p in places if keypair.holds_private_key_of(p, key_pair)), None)


def vars_of(item) -> dict:
    return {"kind": item.kind, "id": item.id, "action": item.action, "reason": item.reason}


