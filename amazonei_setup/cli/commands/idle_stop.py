"""`idle-stop --name N MINUTES|off`: set, change or remove the idle auto-stop alarms of an existing deployment
(one CloudWatch alarm per instance; resources/alarm.py says how "idle" is decided). The result says what each
alarm is now."""
from __future__ import annotations

from amazonei_setup.cli.commands import Result
from amazonei_setup.cli.environment import Environment

OFF = "off"


def run(args, env: Environment, ui, aws) -> Result:
    from amazonei_setup.aws.discover import check_region
    from amazonei_setup.cli.commands.status import locate
    from amazonei_setup.flows import locking

    aws = locate(args, aws)  # names are account-wide: without --region, the deployment's IAM role says where
    check_region(aws.region, ei=False)
    with locking.deployment_locked(aws, args.name, "idle-stop", ui.progress, force=args.force_unlock, force_flag=True,
                                   sleep=env.sleep):
        return _locked(args, ui, aws)


def _locked(args, ui, aws) -> Result:
    from amazonei_setup.aws.discover import owner_of
    from amazonei_setup.aws.resources import alarm
    from amazonei_setup.core import tags
    from amazonei_setup.core.errors import ToolError, UsageError
    from amazonei_setup.core.events import Event
    from amazonei_setup.flows import deployments

    name, minutes = args.name, None if args.minutes == OFF else args.minutes
    with ui.status(f"Looking for deployment '{name}' in {aws.region}"):
        # The alarms are what this command changes, so only the stack look-up may be denied here.
        inventory = deployments.find_deployment(aws, name, optional=("stack",))
    if inventory.empty:
        raise ToolError(f"No deployment named {name} in {aws.region}, so no idle auto-stop was changed; `list "
                        "--all-regions` shows every deployment.", code="not-found")
    if inventory.stack is not None and minutes is not None:
        raise UsageError(f"Deployment '{name}' is held by the CloudFormation stack {inventory.stack.name}: set its "
                         "idle auto-stop in the template (`export --idle-stop MINUTES`) and update the stack.")
    cloudwatch = aws.client("cloudwatch")
    live = [i for i in inventory.instances if i.state not in ("shutting-down", "terminated")]
    current = {a.instance_id: a for a in inventory.idle_alarms}
    done: list[dict] = []
    # Alarms whose instance is gone watch nothing: removed in either case.
    stale = [a for a in inventory.idle_alarms if minutes is None or a.instance_id not in {i.id for i in live}]
    if stale:
        alarm.delete_alarms(cloudwatch, [a.name for a in stale])
        left = alarm.still_there(cloudwatch, [a.name for a in stale])
        if left:
            raise ToolError(f"CloudWatch still lists {', '.join(left)} after deleting it: run the same command "
                            "again.", code="alarm-left")
        done += [{**a.to_dict(), "minutes": None, "action": "deleted"} for a in stale]
        for each in stale:
            ui.progress(Event("deleted", alarm.KIND, f"Deleted idle alarm {each.name}", each.name))
    if minutes is not None:
        if not live:
            raise UsageError(f"Deployment '{name}' has no instance to watch: run setup with --name {name} to launch "
                             "one, or tear it down.")
        owner = next((i.tags.get(tags.OWNER) for i in live if i.tags.get(tags.OWNER)), None) or \
            owner_of(aws.sts.get_caller_identity()["Arn"])
        tag_list = tags.tag_list(name, owner, aws.region)
        for each in live:
            was = current.get(each.id)
            if was is not None and was.minutes == minutes:
                done.append({**was.to_dict(), "action": "unchanged"})
                continue
            alarm_name = alarm.put_alarm(cloudwatch, name, each.id, aws.region, minutes, tag_list)
            done.append({"name": alarm_name, "instance_id": each.id, "minutes": minutes,
                         "action": "updated" if was is not None else "created"})
    warnings = [f"Could not check for {u.piece} ({u.action} denied): if the deployment was made with `export "
                "--deploy`, set its idle auto-stop in the template instead (`export --idle-stop MINUTES`) and update "
                f"the stack {tags.resource_name(name)}." for u in inventory.unchecked]
    return Result("idle-stop", {"name": name, "region": aws.region, "idle_stop_minutes": minutes, "alarms": done},
                  view="message", message=_sentence(name, minutes, done, inventory), warnings=warnings)


def _sentence(name: str, minutes: int | None, done: list[dict], inventory) -> str:
    from amazonei_setup.aws.resources import alarm

    if minutes is None:
        removed = [d for d in done if d["action"] == "deleted"]
        if not removed:
            return f"Idle auto-stop was already off for {name}: nothing to delete."
        return f"Idle auto-stop is off for {name}: deleted {', '.join(d['name'] for d in removed)}."
    changed = [d for d in done if d["action"] in ("created", "updated")]
    count = len([d for d in done if d["action"] != "deleted"])
    what = "its instance" if count == 1 else f"each of its {count} instances"
    rule = (f"CPU below {alarm.IDLE_CPU_PERCENT}% and network below {alarm.IDLE_NETWORK_BYTES // 1_000_000} MB per "
            "5 minutes")
    if not changed:
        return (f"Idle auto-stop of {name} already stops {what} after {minutes} idle minutes ({rule}): nothing to "
                "change.")
    return (f"Idle auto-stop of {name} now stops {what} after {minutes} idle minutes ({rule}): "
            f"{', '.join(d['name'] for d in changed)}.")
