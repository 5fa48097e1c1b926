"""The one renderer: a command's Result becomes text on stdout, or the one JSON document.

`render(result, ui)` prints the result's warnings on stderr (the conversation), then, with `--output json`,
`ui.emit_json(...)` and nothing else on stdout; in text mode the result's view (VIEWS) on stdout. A view reads
`result.data` (what the JSON holds) and `result.context` (objects the text needs beyond it).
"""
from __future__ import annotations

from decimal import Decimal

from rich.table import Table
from rich.text import Text

from amazonei_setup.cli.commands import Result
from amazonei_setup.core import catalog, shell
from amazonei_setup.core.cost import HOURS_30_DAYS, Priced, inferences_per_hour, ranked, rounded

PERMISSION_CHECK = "EC2 permission check (DryRun)"
_DEFAULTED = "setup's default (--accelerator-type none prices the instance alone)"


def render(result: Result, ui) -> int:
    """Show `result` once, as text or JSON; returns the command's exit status."""
    ui.stop_status()
    for warning in result.warnings:
        ui.warn(warning)
    if ui.output == "json":
        ui.emit_json(result.command, result.status, result=result.data)
    else:
        VIEWS[result.view or result.command](result, ui)
    return result.exit_code


def _message(result: Result, ui) -> None:
    ui.result(Text(result.message))


def _ready(result: Result, ui) -> None:
    # The connect commands may have come up already, as the instances did (Ui.progress, `reachable`): the summary
    # repeats them as the reference, under a "Ready" row that says what the run waited for.
    ui.result(ui.result_panel(result.data, teardown=result.context["teardown"]))
    skipped = result.data.get("skipped_zones")
    if skipped:  # the launch moved: say where it runs and why the zones before it were passed over
        ui.result(Text(f"Launched in {result.data['availability_zone']}; skipped "
                       + ", ".join(f"{s['zone']} ({s['reason']})" for s in skipped) + "."))
    if result.context.get("equivalent_command"):  # after an interactive run: the same run, scriptable
        ui.result(ui.suggestion("The same setup without questions:", result.context["equivalent_command"]))


def _dry_run(result: Result, ui) -> None:
    problems = result.data["permission_problems"]
    if problems:
        ui.result(Text(f"{PERMISSION_CHECK}: {len(problems)} problem{'s' if len(problems) > 1 else ''}:",
                       style="yellow"))
        for problem in problems:
            ui.result(Text(f"- {problem}"))
    else:
        ui.result(Text(f"{PERMISSION_CHECK}: passed", style="green"))
    if result.context.get("quota"):
        ui.result(Text(result.context["quota"], style="yellow" if result.data["quota"]["status"] == "short" else ""))
    ui.result(Text("Dry run: nothing was created."))


def _template(result: Result, ui) -> None:
    data, context = result.data, result.context
    next_step = ui.suggestion(context["caption"], data["deploy_command"])  # the command on a line of its own
    if data["path"]:
        ui.result(Text(f"Wrote {data['path']}: {context['resources']} resources, {context['parameters']} "
                       "parameters.", style="bold green"))
        ui.result(next_step)
    else:  # the template itself is the result on stdout: the next step goes with the conversation
        ui.stop_status()
        ui.stdout.write(context["template"])
        ui.stdout.flush()
        ui.show(next_step)


_DONE = {"delete": "deleted", "keep": "kept", "detach": "detached", "remove": "removed"}


def _teardown(result: Result, ui) -> None:
    done = [*result.data["deleted"], *result.data["kept"]]
    if ui.conversation_on_terminal and not ui.out_plain:
        # One screen: the plan listed each deletion before the confirm and the progress lines as it happened, so the
        # result lists only what was kept (with why). Redirected, the result is the record and lists everything.
        done = result.data["kept"]
    if done:
        table = Table(show_edge=False, box=None, padding=(0, 1), header_style="bold", pad_edge=False)
        for column in ("Done", "Resource", "Id"):
            table.add_column(column, no_wrap=True)
        table.add_column("Why")
        for item in done:
            table.add_row(_DONE.get(item["action"], item["action"]), item["kind"], item["id"], item["reason"] or "")
        ui.result(table)
    ui.result(Text(result.message, style="bold green"))


def _list(result: Result, ui) -> None:
    rows, regions = result.data["deployments"], result.data["regions"]
    if not rows:
        ui.result(Text(f"No deployments in {', '.join(regions)}."))
        return
    ui.result(ui.deployments_table(rows))
    for row in rows:
        if row.get("left"):
            ui.result(ui.suggestion(f"{row['name']} ({row['region']}) is partial: {', '.join(row['left'])} left by "
                                    "a run that stopped part-way. Remove it with:", row["teardown_command"]))


def _cost(result: Result, ui) -> None:
    rows, region = result.context["rows"], result.data["region"]
    if result.context["compare"]:
        ui.result(cost_comparison(rows, region, ui.out))
    else:
        ui.result(cost_summary(rows[0], region, frame=ui.frame))
    for name, spot in (result.data.get("spot") or {}).items():
        on_demand = spot.get("on_demand_hourly_usd")
        less = f", {100 * (1 - spot['hourly_usd'] / on_demand):.0f}% less" if on_demand else ""
        ui.result(Text(f"Spot now: {name} ${spot['hourly_usd']:.4f}/h in {spot['zone']}"
                       + (f" (On-Demand ${on_demand:.4f}/h{less})" if on_demand else "")
                       + "; `setup --spot` launches on Spot, stopped (not lost) when EC2 reclaims it."))


def _cost_regions(result: Result, ui) -> None:
    ui.result(cost_by_region(result.context["rows"], result.data["region"]))


def _policy(result: Result, ui) -> None:
    """The IAM policy document alone on stdout, so `permissions > policy.json` is a file IAM takes as it is."""
    import json

    ui.stop_status()
    ui.stdout.write(json.dumps(result.data["policy"], indent=2) + "\n")
    ui.stdout.flush()


# ---- day two: status, connect, stop/start ---------------------------------------------------------

def _by_name(data: dict, ui) -> None:
    """`ssh NAME` works: the Host entry written, and whether ~/.ssh/config reads the file yet."""
    config = data.get("ssh_config") or {}
    hosts = config.get("hosts") or []
    if not hosts:
        return
    by_file = f"ssh -F {shell.path(config['file'])} {shell.word(hosts[0])}"
    if config.get("included"):
        ui.result(ui.suggestion(f"By name (Host {hosts[0]} in {config['file']}; scp and VS Code Remote-SSH too):",
                                f"ssh {shell.word(hosts[0])}"))
    elif not config.get("include_line"):  # the sandbox: its made-up addresses stay out of ~/.ssh/config
        ui.result(ui.suggestion("By name, from the sandbox's own SSH config (never included in ~/.ssh/config):",
                                by_file))
    else:
        ui.result(ui.suggestion(f"By name, once ~/.ssh/config reads {config['file']} (add "
                                f"`{config['include_line']}` at its top), or now with:", by_file))


def _ready_day_two(result: Result, ui) -> None:
    _ready(result, ui)
    _by_name(result.data, ui)


def _money(value) -> str:
    return "unknown" if value is None else f"${value:,.2f}"


def _status(result: Result, ui) -> None:
    from amazonei_setup.cli.ui import Command, Copyable, _caption, _instance_line

    d = result.data
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    if d["instance_type"]:
        grid.add_row("Instance", _instance_line(d["instance_type"], d["accelerator_type"], d.get("family")))
    grid.add_row("State", d["state"])
    for each in d["instances"]:
        address = each["public_dns"] or each["public_ip"] or "(no public address)"
        when = (f"stopped {each['stopped_at']}" if each.get("stopped_at") else
                f"last started {each['launch_time']}" if each["launch_time"] else "")
        spot = ""
        if each.get("market") == "spot":
            spot = ", Spot"
            if each.get("spot_interrupted") and each["state"] == "stopped":
                spot += ("; stopped by a Spot interruption (EC2 reclaimed the capacity): EC2 starts it again when "
                         "Spot capacity returns, the volume and your work are kept")
        grid.add_row("", f"{each['instance_id']} ({each['state']}) {address}" + (f", {when}" if when else "") + spot)
    grid.add_row("SSH", f"{d['ssh_user']}, key {d['key_path'] or '(unknown)'}" + (
        "" if d["key_found"] else " (not on this machine)"))
    hourly = d["hourly_usd_per_instance"]
    if hourly is None:
        grid.add_row("Cost", "price unknown for this type (see `cost`)")
    else:
        grid.add_row("Cost now", f"${d['hourly_usd_now']:.3f} per hour ({len(d['instances'])} x ${hourly:.3f} while "
                                 "running; nothing while stopped but storage)")
        grid.add_row("Cost so far", f"{_money(d['cost_so_far_usd'])} {d['cost_basis']}")
    if d.get("market"):
        price = d.get("spot_hourly_usd")
        grid.add_row("Market", (f"Spot, ${price:.4f}/h now in its zone" if price is not None else "Spot, price unknown")
                     + (f" (On-Demand ${hourly:.4f}/h; the costs above are at the On-Demand price, an upper bound)"
                        if hourly is not None else ""))
    idle = d.get("idle_stop")
    not_seen = next((u for u in d.get("unchecked", []) if u["piece"] == "idle-stop alarms"), None)
    if idle is None and not_seen:  # the alarms could not be read: "off" would be a guess
        grid.add_row("Idle stop", f"unknown ({not_seen['action']} denied)")
    elif idle is None:
        grid.add_row("Idle stop", "off (set it with `idle-stop`)")
    else:
        after = f"after {idle['minutes']} idle minutes" if idle["minutes"] else "alarms differ per instance"
        grid.add_row("Idle stop", f"{after} ({idle['rule']})")
    if d.get("accelerator_check"):
        grid.add_row("Accelerator", f"{d['accelerator_check']['detail']} (at setup)")
    if d.get("jupyter"):
        grid.add_row("Jupyter", f"running on {d['jupyter']['host']} (`connect --jupyter` opens it)"
                     if d["jupyter"]["running"] else "not running (`connect --jupyter` starts it)")
    grid.add_row("Pieces", "\n".join(f"{p['kind']} {p['id']}: {p['state']}" for p in d["pieces"]))
    parts = [ui.frame(grid, title=f"Deployment {d['name']} in {d['region']}")]
    if d["ssh_command"]:
        parts += [_caption("Connect:"), Command(d["ssh_command"]),
                  _caption("Jupyter (then open http://localhost:8888):"), Command(d["port_forward_command"])]
        config = d.get("ssh_config") or {}
        if config.get("host") and config.get("included"):
            parts += [_caption(f"By name (Host {config['host']} in {config['file']}):"),
                      Command(f"ssh {shell.word(config['host'])}")]
        elif config.get("host"):
            parts += [_caption("By name, from the tool's SSH config (~/.ssh/config does not include it):"),
                      Command(f"ssh -F {shell.path(config['file'])} {shell.word(config['host'])}")]
        parts += [_caption("Stop the meter (the volume stays):"), Command(d["stop_command"])]
    elif any(each["state"] == "stopped" for each in d["instances"]):
        parts += [_caption("Start it again:"), Command(d["start_command"])]
    ui.result(Copyable(*parts))


def _connect(result: Result, ui) -> None:
    from amazonei_setup.cli.ui import Command

    ui.result(Command(result.data["command"]))


def _power(result: Result, ui) -> None:
    d = result.data
    ui.result(Text(result.message, style="bold green"))
    if result.command == "stop":
        still = d["still_costs"]
        ui.result(Text(f"Still billed while stopped: {_money(still['usd_per_month'])} per month"))
        for item in still["items"]:
            size = f" {item['size_gib']} GiB {item['volume_type']}" if item["kind"] == "ebs-volume" else ""
            ui.result(Text(f"  {item['kind']} {item['id']}{size}: {_money(item['usd_per_month'])}/month"
                           + (f" ({item['note']})" if item.get("note") else "")))
        ui.result(Text(f"Not billed while stopped: {'; '.join(d['not_billed'])}. Prices: {still['prices']}."))
        ui.result(ui.suggestion("Start it again with:", d["start_command"]))
        return
    connect = [row["ssh_command"] for row in d["instances"]]
    from amazonei_setup.cli.ui import Command, Copyable, _caption

    ui.result(Copyable(_caption("Connect (the public address is new after a start):" if not d["already"]
                                else "Connect:"), *(Command(c) for c in connect),
                       _caption("Jupyter:"), Command(d["port_forward_command"])))
    _by_name(d, ui)


VIEWS = {"message": _message, "silent": lambda result, ui: None,  # exec: the remote output was the result
         "ready": _ready_day_two, "dry-run": _dry_run, "template": _template,
         "teardown": _teardown, "list": _list, "cost": _cost, "cost-regions": _cost_regions,
         "policy": _policy,  # `permissions`: the IAM policy document alone
         "status": _status, "connect": _connect, "power": _power}


# ---- cost ------------------------------------------------------------------------------------

def _usd(value: Decimal) -> str:
    return "<0.0001" if 0 < value < Decimal("0.00005") else f"{rounded(value):.4f}"


def _count(value: Decimal) -> str:
    """Inferences: whole numbers up to a million, then M/B with one decimal (at most 7 characters)."""
    if value < 1_000_000:
        return f"{value:,.0f}"
    if value < 1_000_000_000:
        return f"{value / 1_000_000:.1f}M"
    return f"{value / 1_000_000_000:.1f}B"


def _ms(value: float) -> str:
    return f"{value:,.1f}" if value < 100 and value != int(value) else f"{value:,.0f}"


def _sources_line(rows: list[Priced], region: str) -> str:
    used = {r.instance_source for r in rows} | {r.accelerator_source for r in rows if r.accelerator_source}
    parts = []
    if "live" in used:
        parts.append(f"AWS Pricing API ({region})")
    if "catalog" in used:
        parts.append(f"catalog ({catalog.CATALOG_REGION} on-demand Linux, reviewed {catalog.CATALOG_DATE})")
    if "by hand" in used:
        parts.append("by hand (--hourly-usd)")
    line = "Prices: " + ", ".join(parts) + "."
    if not all(r.verified for r in rows):
        line += " * includes a catalog price no source confirmed."
    return line


def cost_summary(row: Priced, region: str, frame=None):
    """One setup: its prices, the 30-day estimate, and with a latency the cost per 100k inferences.
    `frame(body, title=...)`: how to box it (Ui.frame; default a panel)."""
    from rich.panel import Panel
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    s = row.setup
    star = "" if row.verified else "*"
    grid.add_row("Instance", f"{s.instance_type}  ${_usd(row.instance_usd)}/h ({row.instance_source})")
    if s.accelerator_type:
        grid.add_row("Accelerator", f"{s.accelerator_type}  ${_usd(row.accelerator_usd)}/h ({row.accelerator_source})"
                                    + (f"; {_DEFAULTED}" if s.accelerator_defaulted else ""))
    elif s.accelerator_defaulted:
        grid.add_row("Accelerator", "none (its accelerator is part of the instance, as setup would create it)")
    else:
        grid.add_row("Accelerator", "none")
    grid.add_row("Total", f"${_usd(row.hourly_usd)}/h{star} (about ${row.hourly_usd * HOURS_30_DAYS:,.2f} per 30 days)")
    if s.latency_ms:
        per_hour = inferences_per_hour(s.latency_ms)
        grid.add_row("Latency", f"{_ms(s.latency_ms)} ms per inference (batch 1, back to back)")
        grid.add_row("Per 100k", f"${_usd(row.per_100k_usd)} per 100,000 inferences")
        grid.add_row("Throughput", f"{_count(per_hour)} inferences/h, {_count(per_hour / row.hourly_usd)} per $")
    else:
        grid.add_row("Per 100k", "pass --latency-ms (your measured latency) for the cost per 100k inferences")
    grid.add_row("", _sources_line([row], region))
    title = f"Cost of {s.label} in {region}"
    if frame is not None:
        return frame(grid, title=title)
    return Panel(grid, title=title, title_align="left", border_style="blue")


def cost_comparison(rows: list[Priced], region: str, console):
    """Setups cheapest first with the cheapest and fastest marked, then where the prices come from.
    The wide layout when it fits the console; else setup and marks over two lines each, so no
    instance or accelerator name is ever cut."""
    from rich.console import Group
    from rich.measure import Measurement
    from rich.text import Text

    ranking = ranked(rows)
    table = _comparison(ranking, region, narrow=False)
    unlimited = console.options.update_width(10_000)
    if Measurement.get(console, unlimited, table).maximum > console.width:
        table = _comparison(ranking, region, narrow=True)
    notes = _sources_line(rows, region)
    if any(r.setup.latency_ms for r in rows):
        notes += " $/100k = $/hour x ms x 100,000 / 3,600,000 (batch 1, requests back to back)."
    defaulted = sorted({r.setup.accelerator_type for r in rows if r.setup.accelerator_defaulted
                        and r.setup.accelerator_type})
    if defaulted:
        notes += f" No --accelerator-type: priced with setup's default {', '.join(defaulted)} (none prices the " \
                 "instance alone)."
    return Group(table, Text(notes, style="dim"))


def _comparison(ranking, region: str, *, narrow: bool):
    from rich.table import Table
    from rich.text import Text

    timed = any(r.setup.latency_ms for r, _, _ in ranking)
    title = f"Cost per 100k inferences in {region}" if timed else f"Hourly cost in {region}"
    table = Table(title=title, title_justify="left", header_style="bold", box=None, padding=(0, 1),
                  pad_edge=False)
    table.add_column("Setup", no_wrap=True)
    if timed:
        table.add_column("ms", justify="right", no_wrap=True)
    table.add_column("$/hour", justify="right", no_wrap=True)
    if timed:
        table.add_column("$/100k", justify="right", no_wrap=True)
        table.add_column("inf/hour" if narrow else "inferences/h", justify="right", no_wrap=True)
        table.add_column("inf/$" if narrow else "per $", justify="right", no_wrap=True)
    else:
        table.add_column("$/30 days", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    for row, cheapest, fastest in ranking:
        s = row.setup
        name = s.instance_type
        if s.accelerator_type:
            name += ("\n+ " if narrow else " + ") + s.accelerator_type
        marks = Text(("\n" if narrow else ", ").join(
            m for m, on in (("cheapest", cheapest), ("fastest", fastest)) if on))
        if cheapest:
            marks.stylize("bold green", 0, len("cheapest"))
        if fastest:
            marks.stylize("bold cyan", len(marks) - len("fastest"), len(marks))
        hourly = f"{_usd(row.hourly_usd)}{'' if row.verified else '*'}"
        cells = [name]
        if timed:
            latency = s.latency_ms
            cells.append(_ms(latency) if latency else "-")
            cells.append(hourly)
            if latency:
                per_hour = inferences_per_hour(latency)
                cells += [_usd(row.per_100k_usd), _count(per_hour), _count(per_hour / row.hourly_usd)]
            else:
                cells += ["-", "-", "-"]
        else:
            cells += [hourly, f"{row.hourly_usd * HOURS_30_DAYS:,.2f}"]
        table.add_row(*cells, marks)
    return table




def cost_by_region(rows, region: str | None):
    """`cost --compare` alone: each option's regions, cheapest first, the option named on its first row; "-" where
    no dated price is known; then the sources and what the marks mean."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title="$/hour by region (on-demand Linux)", title_justify="left", header_style="bold", box=None,
                  padding=(0, 1), pad_edge=False)
    for column, justify in (("Option", "left"), ("Region", "left"), ("$/hour", "right"), ("$/30 days", "right"),
                            ("", "left")):
        table.add_column(column, justify=justify, no_wrap=True)
    previous = None
    for row in rows:
        name = row.label if row.label != previous else ""
        if name and previous is not None:
            table.add_section()
        previous = row.label
        if row.hourly_usd is None:
            hourly, month = "-", "-"
        else:
            hourly = f"{_usd(row.hourly_usd)}{'' if row.verified else '*'}"
            month = f"{row.hourly_usd * HOURS_30_DAYS:,.2f}"
        table.add_row(name, row.region, hourly, month, "your region" if row.region == region else "")
    used = {r.source for r in rows if r.source}
    notes = []
    if any("live" in s for s in used):
        notes.append("Prices: AWS Pricing API where it answered, else the catalog.")
    notes.append(f"Catalog: EI types with their host ({catalog.CATALOG_REGION} only, reviewed {catalog.CATALOG_DATE});"
                 f" inf2 and gpu types in every region that offers them ({catalog.REGIONAL_DATE}, instances.vantage.sh "
                 "from the AWS Price List). - : no dated price for that region (--live-prices asks AWS).")
    if not all(r.verified for r in rows if r.hourly_usd is not None):
        notes.append("* includes a catalog price no source confirmed.")
    if any(r.accelerator_type for r in rows):
        notes.append("AWS retired EI in April 2024 (its prices are kept for comparison): today's accounts launch "
                     "--accelerator inf2|gpu.")
    return Group(table, Text(" ".join(notes), style="dim"))
