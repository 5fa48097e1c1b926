"""Everything the user sees, on two consoles: stdout is the result, stderr is the conversation.

`console` (stderr): progress, prompts' panels, warnings, errors. `out` (stdout): the result (the list
table, the ready summary with the connect commands, ...), or with `--output json` the one JSON document
(`emit_json`), so `list | grep`, `cost > file` and `--output json | jq` all work. When stdout is not a
terminal the result is plain: no colour, no boxes, never cut at a width (a table greps one row per line).

No AWS calls here: the UI renders Plans, Events and results handed to it (render.py decides what).
"""
from __future__ import annotations

import json
import os
import re
import sys
import threading
from typing import IO

from rich.cells import cell_len
from rich.console import Console, Group
from rich.measure import Measurement
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from amazonei_setup.core.catalog import ACCELERATORS, FAMILIES, NAME_PATTERN_SOURCE
from amazonei_setup.core.events import Event
from amazonei_setup.core.plan import CREATE, UPDATE, Plan, teardown_command

JSON_VERSION = 1
PLAIN_WIDTH = 10_000  # a piped result: as wide as its longest line, so no row or command is ever wrapped

_EVENT_STYLE = {
    "created": ("+", "green"), "reused": ("=", "cyan"), "updated": ("~", "yellow"), "deleted": ("-", "red"),
    "kept": ("=", "cyan"), "done": ("✓", "green"), "retry": ("↻", "yellow"), "warning": ("!", "yellow"),
    "rollback": ("↩", "magenta"), "start": ("…", "blue"), "wait": ("…", "blue"), "reachable": ("✓", "green"),
}


class Ui:
    def __init__(self, *, output: str = "text", stdout: IO | None = None, stderr: IO | None = None,
                 width: int | None = None):
        self.output = output
        self.stdout = stdout or sys.stdout
        plain = bool(os.environ.get("CI")) or not _isatty(stderr or sys.stderr)
        self.console = Console(file=stderr or sys.stderr, width=width, highlight=False,
                               force_terminal=None if not plain else False)
        self.plain = plain
        # Sentences wrap on a terminal (or at a width the caller sets) only: a log file or CI log has no screen,
        # and a sentence cut at rich's default 80 columns there splits an address or a path mid-line.
        self.conversation_on_terminal = _isatty(stderr or sys.stderr)
        self._wrap = width is not None or self.conversation_on_terminal
        # The result's console. A pipe or a file gets plain text (no colour codes, no box borders) as wide as it
        # needs; `width` (tests) stands for the screen either way.
        self.out_plain = not _isatty(self.stdout)
        self.out = Console(file=self.stdout, width=width or (PLAIN_WIDTH if self.out_plain else None),
                           highlight=False, force_terminal=False if self.out_plain else None)
        self._lock = threading.Lock()
        self._status = None

    # ---- progress ----------------------------------------------------------------------
    def progress(self, event: Event) -> None:
        """Called from worker threads: one line per event, a spinner while waiting (TTY only).

        A `reachable` event is a result (the way in, usable before the run ends): in text mode its connect
        commands go to stdout at once; with --output json stdout keeps its one document, so stderr says it."""
        with self._lock:
            mark, style = _EVENT_STYLE.get(event.kind, ("·", ""))
            if event.kind == "reachable" and self.output != "json":
                self._halt_status()  # a spinner line on a terminal must not cut through the commands
                self._emit_result(Copyable(_caption(event.message), Command(event.detail["ssh_command"]),
                                           Command(event.detail["port_forward_command"])))
                return
            if event.kind == "reachable":
                self.sentence(Text.assemble((f"{mark} ", style), f"Instance {event.id} is running at "
                                                                  f"{event.detail['host']}"))
                return
            if event.kind == "wait" and not self.plain:
                if self._status is None:
                    self._status = self.console.status(event.message)
                    self._status.start()
                else:
                    self._status.update(event.message)
                return
            self.sentence(Text.assemble((f"{mark} ", style), event.message))  # ids and paths stay whole

    def stop_status(self) -> None:
        with self._lock:
            self._halt_status()

    def _halt_status(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def status(self, message: str):
        """A spinner for a blocking step in the main thread (a no-op context when plain)."""
        if self.plain:
            self.sentence(Text(f"… {message}"))
            return _NullContext()
        return self.console.status(message)

    def info(self, message: str, style: str = "") -> None:
        self.sentence(Text(message, style=style))

    def error(self, message: str) -> None:
        # Text, not markup: AWS messages may contain [brackets] that rich would read as styles.
        self.stop_status()
        self.sentence(Text.assemble(("error:", "bold red"), " ", message))

    def warn(self, message: str) -> None:
        self.sentence(Text.assemble(("! ", "yellow"), message))

    def sentence(self, text: Text, console: Console | None = None) -> None:
        """Print a sentence wrapped at spaces only: a path, a command or an ARN longer than the line is printed
        whole on a line of its own (rich would fold it mid-word, and a copied path would come out broken)."""
        console = console or self.console
        if console is self.console and not self._wrap:
            console.print(text, soft_wrap=True)  # whole: no screen to fit
            return
        for line in word_wrap(text, console.width):
            console.print(line, soft_wrap=True)

    # ---- the result (stdout) -------------------------------------------------------------
    def result(self, renderable) -> None:
        """One piece of the command's result, on stdout."""
        self.stop_status()
        self._emit_result(renderable)

    def _emit_result(self, renderable) -> None:
        if isinstance(renderable, Copyable):
            for part in renderable.parts:
                self._print_result(part, soft_wrap=isinstance(part, Command))
            return
        if isinstance(renderable, Text):
            self.sentence(renderable, self.out)
            return
        self._print_result(renderable)

    def _print_result(self, renderable, *, soft_wrap: bool = False) -> None:
        if not self.out_plain:
            self.out.print(renderable, soft_wrap=soft_wrap)
            return
        # Piped: the lines without the padding rich adds up to the table's width (grep and diff see the text).
        with self.out.capture() as captured:
            self.out.print(renderable, soft_wrap=soft_wrap)
        lines = captured.get().splitlines()
        self.stdout.write("".join(line.rstrip() + "\n" for line in lines))
        self.stdout.flush()

    def frame(self, body, *, title: str, border_style: str = "blue"):
        """A titled box on a terminal; piped, the title over the body (no borders to grep through)."""
        if self.out_plain:
            return Group(Text(title, style="bold"), body)
        return Panel(body, title=title, title_align="left", border_style=border_style)

    def banner(self, message: str) -> None:
        self.console.print(Panel(Text(message, style="bold"), border_style="magenta", expand=False))

    # ---- documents -----------------------------------------------------------------------
    def plan_panel(self, plan: Plan, *, title: str = "Setup plan") -> Panel | Copyable:
        """Every choice, then what happens to each resource, dense enough that plan and confirm fit in about 20
        lines at 80 columns. No identifier, path or CIDR is ever split: on a narrow screen the choices and the
        resources stack instead (label above value, note under the resource)."""
        inner = max(self.console.width - 4, 20)  # the panel's border and padding
        choices, whole = _too_long_for(_plan_choices(plan), inner - _GAP)
        parts = [_label_values(choices, inner), Text(""),
                 _action_table("", "", _plan_rows(plan), width=inner)]
        if not plan.changes_anything:
            parts.append(Text(f"Nothing to change: deployment {plan.name} is up to date.", style="bold green"))
        for warning in plan.warnings:
            parts.append(Text.assemble(("! ", "yellow"), warning))
        panel = Panel(Group(*parts), title=title, title_align="left", border_style="blue")
        if not whole:
            return panel
        # A path wider than the box (a long --key-dir on a narrow screen) is printed whole under it, on a line of its
        # own: folded inside the box, a copied path would come out broken.
        below = []
        for label, word in whole:
            below += [_caption(f"{label} {'path' if '/' in word else 'value'} in full:"), Command(word)]
        return Copyable(panel, *below)

    def show(self, renderable) -> None:
        self.stop_status()
        if isinstance(renderable, Copyable):
            for part in renderable.parts:
                # soft_wrap: rich neither wraps nor crops a command; the terminal wraps it, copy keeps it whole.
                self.console.print(part, soft_wrap=isinstance(part, Command))
            return
        self.console.print(renderable)

    def result_panel(self, result, *, account_flags: str = "", teardown: str | None = None) -> Copyable:
        """The ready panel, then the commands to copy (`teardown`: that command as the CLI would have the user
        type it; else built from account_flags).

        The commands are printed outside any box, each on a line of its own that rich never breaks:
        inside a panel they would wrap with border characters in between, and a copied command would
        come out broken. A long command is wrapped by the terminal only, so copying keeps it whole.
        """
        d = result if isinstance(result, dict) else result.to_dict()
        fleet = d.get("instances") or []
        lines = Table.grid(padding=(0, 2))
        lines.add_column(style="bold")
        lines.add_column(overflow="fold")
        kind = _instance_line(d['instance_type'], d['accelerator_type'], d.get('family'))
        if fleet:
            launched, requested = d["launched_count"], d["requested_count"]
            lines.add_row("Instances", f"{launched} of {requested} launched, {kind}")
            for each in fleet:
                address = each.get("ssh_address") or each["public_dns"] or each["public_ip"] or "(no address)"
                lines.add_row("", f"{each['instance_id']} ({each['state']}) {address}")
        elif d.get("ssh_address"):  # the sandbox: moto's public names are made up; SSH is on this machine
            lines.add_row("Instance", f"{d['instance_id']} ({d['state']}), {kind}")
            lines.add_row("SSH", f"{d['ssh_address']}: a shell on this machine, in its own directory")
        else:
            lines.add_row("Instance", f"{d['instance_id']} ({d['state']}), {kind}")
            lines.add_row("Public DNS", d["public_dns"] or d["public_ip"] or "(none)")
            if d["public_dns"] and d["public_ip"]:
                lines.add_row("Public IP", d["public_ip"])
        lines.add_row("Ready", _readiness(d, fleet))
        check = d.get("accelerator_check")
        if check:  # what the machine said about its accelerator over SSH (commands/accelerator.py)
            lines.add_row("Accelerator", Text(check["detail"], style="yellow" if check["status"] == "failed" else ""))
        if d["accelerator_type"]:
            lines.add_row("EI health", "CloudWatch namespace AWS/ElasticInference, metrics "
                                       "AcceleratorHealthCheckFailed, ConnectivityCheckFailed")
        if d.get("stack_name"):
            lines.add_row("Stack", f"{d['stack_name']} (CloudFormation; teardown deletes it)")
        if d["hourly_usd"] is not None:
            each = f" (${d['hourly_usd']:.3f} each)" if fleet else ""
            lines.add_row("Cost", f"${d['hourly_usd'] * max(len(fleet), 1):.3f} per hour while running{each}")
        if d.get("market") == "spot":
            price = d.get("spot_hourly_usd")
            lines.add_row("Market", "Spot" + (f", ${price:.4f}/h now" if price is not None else "")
                          + "; stopped (not lost) when EC2 reclaims it, started again when capacity returns")
        elif d.get("market"):
            lines.add_row("Market", "On-Demand" + (f": EC2 refused Spot ({d['spot_refused']})"
                                                   if d.get("spot_refused") else ""))
        if d.get("idle_stop_minutes"):
            lines.add_row("Idle stop", f"after {d['idle_stop_minutes']} idle minutes (low CPU and network; change "
                                       "it with `idle-stop`)")
        if fleet and d["launched_count"] < d["requested_count"]:
            lines.add_row("Shortfall", Text(f"EC2 launched {d['requested_count'] - d['launched_count']} fewer than "
                                            "--count (capacity or quota); run setup with a new --name for more",
                                            style="yellow"))
        panel = self.frame(lines, title=f"Ready: {d['name']}", border_style="green")
        teardown = teardown or teardown_command(d["region"], d["name"], account_flags)
        connect = [Command(each["ssh_command"]) for each in fleet] or [Command(d["ssh_command"])]
        parts = [panel,
                 _caption("Connect:" if not fleet else "Connect (one line per instance):"), *connect,
                 _caption("Jupyter (then run `jupyter notebook` there and open http://localhost:8888):" if not fleet
                          else "Jupyter on the first instance (the same -L works with each line above):"),
                 Command(d["port_forward_command"])]
        if d["accelerator_type"]:
            parts += [_caption("Check the accelerator (on the instance):"),
                      Command("python ~/anaconda3/bin/EISetupValidator.py")]
        family = FAMILIES.get(d.get("family") or "")
        if family and family.check_command:
            parts += [_caption("Check the accelerator (on the instance):"), Command(family.check_command)]
        parts += [_caption("Remove everything when you are done:"), Command(teardown)]
        return Copyable(*parts)

    def suggestion(self, caption: str, command: str) -> Copyable:
        """A command to copy after an error: a caption, then the command on a line of its own."""
        return Copyable(_caption(caption), Command(command))

    def teardown_table(self, items, *, title: str) -> Panel:
        table = _action_table("Id", "Why", [(i.action, i.kind, i.id, i.reason) for i in items],
                              width=self.console.width - 4)
        return Panel(table, title=title, title_align="left", border_style="red")

    def deployments_table(self, rows: list[dict], console: Console | None = None):
        """One row per deployment; a Region column only when rows span regions (else the title says it).

        When the table fits the terminal: the full public DNS name. When it does not (80 columns), a
        narrower layout: the public IP (read from the DNS name) under the instance id, the accelerator
        under the instance type, the region under the name, so no identifier is folded into fragments.
        Narrower still (60 columns and a long name), no table: each deployment's name on a line of its own,
        its details under it, wrapped between words.
        """
        console = console or self.out
        regions = sorted({r["region"] for r in rows})
        unlimited = console.options.update_width(10_000)  # measured unconstrained: what it needs
        wide = self._deployments(rows, regions, narrow=False)
        if Measurement.get(console, unlimited, wide).maximum <= console.width:
            return wide
        narrow = self._deployments(rows, regions, narrow=True)  # only its State column may wrap (between words)
        if Measurement.get(console, unlimited, narrow).minimum <= console.width:
            return narrow
        return self._deployments_stacked(rows, regions, console.width)

    @staticmethod
    def _deployments_stacked(rows: list[dict], regions: list[str], width: int) -> Group:
        lines: list = [] if len(regions) != 1 else [Text(f"Deployments in {regions[0]}")]
        for r in rows:
            lines.append(Text.assemble((r["name"], "bold"), f"  {r['region']}" if len(regions) > 1 else ""))
            kind = r["instance_type"] + (f" + {r['accelerator_type']}" if r["accelerator_type"] else "")
            address = r.get("public_ip") or ip_from_dns(r["public_dns"]) or r["public_dns"]
            age = f"{r['age_hours']:.1f} h" if r["age_hours"] is not None else ""
            cost = f"${r['hourly_usd']:.3f}/h" if r["hourly_usd"] is not None else ""
            if r.get("market") == "spot":
                cost = _spot_cost(r, "${:.3f}/h Spot") + (f" (On-Demand {cost})" if cost else "")
            for details in ((r["instance_id"], r["state"], address), (kind, age, cost)):  # where it is; what it is
                text = Text("  ".join(d for d in details if d))
                lines += [Text("  ") + line for line in word_wrap(text, max(width - 2, 20))]
        return Group(*lines)

    @staticmethod
    def _deployments(rows: list[dict], regions: list[str], *, narrow: bool) -> Table:
        several = len(regions) > 1
        table = Table(header_style="bold", show_edge=False, box=None, padding=(0, 1), pad_edge=False,
                      title=None if several or not regions else f"Deployments in {regions[0]}", title_justify="left")
        table.add_column("Name / region" if narrow and several else "Name", no_wrap=True)
        if several and not narrow:
            table.add_column("Region", no_wrap=True)
        table.add_column("Instance / IP" if narrow else "Instance", no_wrap=True)
        table.add_column("State")
        table.add_column("Type" if narrow else "Type + accelerator", no_wrap=narrow)
        if not narrow:
            table.add_column("Public DNS", no_wrap=True)
        table.add_column("Age", no_wrap=True, justify="right")
        table.add_column("$/h", no_wrap=True, justify="right")
        for r in rows:
            age = f"{r['age_hours']:.1f} h" if r["age_hours"] is not None else ""
            cost = f"{r['hourly_usd']:.3f}" if r["hourly_usd"] is not None else ""
            if r.get("market") == "spot":  # what it runs on, at the price it pays now
                cost = _spot_cost(r, "{:.3f} spot")
            kind = r["instance_type"]
            if r["accelerator_type"]:
                kind += ("\n+ " if narrow else " + ") + r["accelerator_type"]
            if narrow:
                address = r.get("public_ip") or ip_from_dns(r["public_dns"]) or r["public_dns"]
                name = f"{r['name']}\n{r['region']}" if several else r["name"]
                instance = "\n".join(x for x in (r["instance_id"], address) if x)
                table.add_row(name, instance, r["state"], kind, age, cost)
            else:
                table.add_row(r["name"], *([r["region"]] if several else []), r["instance_id"], r["state"], kind,
                              r["public_dns"], age, cost)
        return table

    # ---- JSON ----------------------------------------------------------------------------
    def emit_json(self, command: str, status: str, *, result=None, error: dict | None = None) -> None:
        document = {"version": JSON_VERSION, "command": command, "status": status}
        if result is not None:
            document["result"] = result
        if error is not None:
            document["error"] = error
        self.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        self.stdout.flush()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


_WORD = re.compile(r"\S+\s*")


def word_wrap(text: Text, width: int) -> list[Text]:
    """`text` split into lines of at most `width` cells at spaces, never inside a word: a word longer than the
    line gets a line of its own, whole. Newlines in the text are kept."""
    from rich.cells import cell_len

    lines: list[Text] = []
    for paragraph in text.split("\n", allow_blank=True):
        offsets, used = [], 0
        for word in _WORD.finditer(paragraph.plain):
            if used and used + cell_len(word.group(0).rstrip()) > width:
                offsets.append(word.start())
                used = 0
            used += cell_len(word.group(0))
        for line in paragraph.divide(offsets):
            line.rstrip()
            lines.append(line)
    return lines


_EC2_DNS = re.compile(r"^ec2-(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})\.")


def _readiness(d: dict, fleet) -> str:
    """What the run waited for, all of it true now, and what it did not wait for (--wait)."""
    waited = d.get("waited_for") or ["running", "ei"]
    said = [f"instance{'s' if fleet else ''} running"]
    if "ssm" in waited:
        said.append("SSM agent Online (ssh goes through Session Manager)")
    elif d.get("ssm_check") == "timeout":
        said.append("the SSM agent did not report Online in time (see the warning)")
    if "ssh" in waited:
        said.append("SSH answers")
    endpoints = [r["id"] for r in d.get("resources") or [] if r["kind"] == "vpc-endpoint" and "service" not in r]
    if d["accelerator_type"] and endpoints:
        said.append(f"EI endpoint {endpoints[0]} available" if "ei" in waited
                    else f"EI endpoint {endpoints[0]} not waited for (--wait running): EI works once it is available")
    check = d.get("ssh_check")  # SSH is checked by default on real AWS
    if check == "emulated":
        said.append("SSH not checked (an emulated account: nothing listens)")
    elif check == "timeout":
        said.append("SSH did not answer in time (see the warning)")
    elif check == "interrupted":
        said.append("the wait for SSH was cut short (see the warning)")
    return ", ".join(said)


def ip_from_dns(dns: str) -> str:
    """EC2's public DNS names spell the public IPv4 address: ec2-54-214-1-2.us-west-2.compute.amazonaws.com."""
    found = _EC2_DNS.match(dns or "")
    return ".".join(found.groups()) if found else ""


def _instance_line(instance_type: str, accelerator_type: str | None, family: str | None) -> str:
    """'m5.xlarge + eia2.medium', or for an alternative 'inf2.xlarge (Inferentia2, family inf2)'."""
    chosen = FAMILIES.get(family or "")
    if chosen:
        return f"{instance_type} ({chosen.label}, family {chosen.key}; no Elastic Inference)"
    return f"{instance_type} + {accelerator_type or 'no accelerator'}"


def _caption(text: str) -> Text:
    return Text(text, style="dim")


class Command(Text):
    """A shell command the user will copy: printed on a line of its own, never broken by rich."""

    def __init__(self, command: str):
        super().__init__(command, style="bold", no_wrap=True, overflow="ignore")


class Copyable:
    """Renderables and Commands, in order. `Ui.show` prints each Command with soft wrap (rich neither
    wraps nor crops it); printed elsewhere, it renders as a plain group."""

    def __init__(self, *parts):
        self.parts = parts

    def __rich_console__(self, console, options):
        yield from self.parts


_ACTION_COLORS = {"create": "green", "reuse": "cyan", "update": "yellow", "delete": "red", "keep": "cyan",
                  "detach": "yellow", "remove": "yellow"}
_GAP = 2  # columns between a table's columns


def _longest_word(*texts: str) -> int:
    return max((cell_len(word) for text in texts for word in text.split()), default=0)


def _action_table(id_header: str, note_header: str, rows: list[tuple[str, str, str, str]], *,
                  width: int | None = None) -> Table:
    """What will happen to each resource: action (coloured), kind, name or id, a note.

    Names, ids and paths are never split: the id column is as wide as its longest id and the note wraps between
    words. When that leaves the note too little room (a narrow screen, a long name), each resource takes two
    lines instead: action, kind and id, then the note under them. Headers are shown only when given."""
    headers = bool(id_header or note_header)
    action_w = max([cell_len(r[0]) for r in rows] + [len("Action") if headers else 0])
    kind_w = max([cell_len(r[1]) for r in rows] + [len("Resource") if headers else 0])
    id_w = max([cell_len(r[2]) for r in rows] + [cell_len(id_header)])
    note_min = max(_longest_word(*(r[3] for r in rows)), 16 if any(r[3] for r in rows) else 0)
    if width is None or action_w + kind_w + id_w + note_min + 3 * _GAP <= width:
        table = Table.grid(padding=(0, _GAP))
        table.add_column("Action", no_wrap=True)
        table.add_column("Resource", no_wrap=True)
        table.add_column(id_header, no_wrap=True, min_width=id_w)
        table.add_column(note_header, overflow="fold")
        if headers:
            table.add_row(*(Text(h, style="bold") for h in ("Action", "Resource", id_header, note_header)))
        for action, kind, ident, note in rows:
            table.add_row(Text(action, style=_ACTION_COLORS.get(action, "")), kind, ident, note)
        return table
    table = Table.grid(padding=(0, _GAP))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # folds only a word wider than the whole screen
    for action, kind, ident, note in rows:
        table.add_row(Text(action, style=_ACTION_COLORS.get(action, "")), f"{kind} {ident}" + (
            f"\n{note}" if note else ""))
    return table


def _too_long_for(rows: list[tuple[str, str]], width: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The rows with each word wider than `width` replaced by a pointer below the box; and those (label, word)."""
    fitted, whole = [], []
    for label, value in rows:
        for word in value.split():
            if cell_len(word) > width:
                value = value.replace(word, "(in full below)")
                whole.append((label, word))
        fitted.append((label, value))
    return fitted, whole


def _label_values(rows: list[tuple[str, str]], width: int) -> Group:
    """Label and value side by side; a value with a word wider than its column (a long path on a narrow
    screen) goes under its label instead, indented, so an id or a path is never split."""
    label_w = max(cell_len(label) for label, _ in rows)
    lines = []
    for label, value in rows:
        if label_w + _GAP + _longest_word(value) <= width:
            row = Table.grid(padding=(0, _GAP))
            row.add_column(style="bold", no_wrap=True, width=label_w)
            row.add_column(overflow="fold")
            row.add_row(label, value)
            lines.append(row)
        else:
            lines += [Text(label, style="bold"), Padding(Text(value, overflow="fold"), (0, 0, 0, _GAP))]
    return Group(*lines)


def _display_path(path: str) -> str:
    """~ for the home directory: shorter, and the same file."""
    home = os.path.expanduser("~")
    if home not in ("", "~", "/") and (path == home or path.startswith(home + os.sep)):
        return "~" + path[len(home):]
    return path


def _spot_cost(row: dict, shape: str) -> str:
    """A Spot instance's $/h in `list`: its zone's latest Spot price, or that it is Spot at an unknown price."""
    price = row.get("spot_hourly_usd")
    return shape.format(price) if price is not None else shape.replace("{:.3f}", "?")


def _plan_choices(plan: Plan) -> list[tuple[str, str]]:
    """The decisions, one short line each (the resources' own lines below say what is created)."""
    total = plan.hourly_usd * plan.count if plan.hourly_usd is not None else None
    cost = f"${total:.3f}/h (about ${total * 24 * 30:,.0f} per 30 days)" if total is not None \
        else "unknown for this instance type"
    if total is not None and plan.count > 1:
        cost += f" for {plan.count} instances at ${plan.hourly_usd:.3f}/h each"
    image = f"{plan.ami_name} ({plan.ami_id})" if plan.ami_name else plan.ami_id
    if plan.image_source.startswith(NAME_PATTERN_SOURCE):  # no SSM parameter named it (the JSON says which did)
        image += "; newest by name, no SSM parameter found"
    key = f"key {plan.key_name}"
    if plan.create_key and plan.key_path:
        key = f"new key {plan.key_name}, saved to {_display_path(plan.key_path)}"
    elif plan.create_key:
        key = f"new key {plan.key_name}, made by the stack"
    return [
        ("Deployment", f"{plan.name} in {plan.region} (account {plan.account_id})"),
        ("Instance", _instance_line(plan.instance_type, plan.accelerator_type, plan.family)
         + _accelerator_spec(plan.accelerator_type)),
        ("Image", image),
        ("Network", f"{plan.vpc_id} / {plan.subnet_id} ({plan.availability_zone})"),
        ("SSH", f"{plan.ssh_user} through Session Manager: no inbound port; {_way_out(plan)}, {key}" if plan.via_ssm
         else f"{plan.ssh_user} from {_ssh_from(plan)}, {key}"),
        ("Disk", f"{plan.volume_size} GiB gp3, encrypted; IMDSv2 required"),
        ("Cost", cost),
        *([("Market", plan.market_label)] if plan.spot else []),
    ]


def _way_out(plan: Plan) -> str:
    """How the SSM agent reaches AWS, and what that path costs."""
    why = "private subnet, so no public IP" if plan.private_subnet else "no public IP"
    if plan.outbound == "nat":
        return f"{why}: the SSM agent reaches AWS through the subnet's NAT gateway (the VPC's, billed as now)"
    if plan.outbound == "endpoints":
        made = [service for service, endpoint_id, _ in plan.ssm_endpoints if not endpoint_id]
        shared = [service for service, endpoint_id, _ in plan.ssm_endpoints if endpoint_id]
        parts = []
        if made:
            parts.append(f"new {', '.join(made)} endpoints (+${plan.endpoints_hourly_usd:.2f}/h until teardown, "
                         "also while stopped)")
        if shared:
            parts.append(f"the VPC's {', '.join(shared)} endpoints (billed as now)")
        return f"{why}: the SSM agent reaches AWS through " + " and ".join(parts)
    if not plan.public_ip:  # an existing private instance: its way out was checked when it was made
        return "no public IP: the SSM agent reaches AWS through the VPC's NAT gateway or SSM endpoints"
    return "the SSM agent reaches AWS over the instance's public IP (no extra cost)"


def _ssh_from(plan: Plan) -> str:
    """The SSH range(s); a re-run without --ssh-cidr keeps the deployment's, and says so."""
    if plan.ssh_cidr_kept:
        return f"{', '.join(plan.ssh_cidrs_before)} (keep; --ssh-cidr changes it)"
    return plan.ssh_cidr


def _accelerator_spec(accelerator_type: str | None) -> str:
    spec = ACCELERATORS.get(accelerator_type or "")
    if spec is None:
        return ""
    return f" ({spec.memory_gib} GiB, FP32/FP16 {spec.fp32_tflops}/{spec.fp16_tflops} TFLOPS)"


_KIND_LABELS = {"iam-role": "IAM role", "instance-profile": "instance profile", "security-group": "security group",
                "vpc-endpoint": "EI endpoint", "ssm-endpoint": "SSM endpoint", "key-pair": "key pair",
                "instance": "instance", "idle-alarm": "idle auto-stop"}


def _plan_rows(plan: Plan) -> list[tuple[str, str, str, str]]:
    """The plan's items as the panel shows them: the role and its instance profile (same name, same action) on
    one line, and no note that the choices above already say (the instance's type and image, the SSH range
    of a new group, the new key's path)."""
    items = plan.items()
    rows: list[tuple[str, str, str, str]] = []
    for item in items:
        kind, note = _KIND_LABELS.get(item.kind, item.kind), item.detail
        if item.kind == "instance-profile" and rows and rows[-1][1] == "IAM role" and \
                (rows[-1][0], rows[-1][2]) == (item.action, item.name):
            rows[-1] = (item.action, "role + profile", item.name, rows[-1][3])
            continue
        if item.kind == "iam-role":
            note = "SSM + CloudWatch agent policies" if plan.family else "EI connect policy"
        elif item.kind == "security-group" and item.action != UPDATE:
            note = ""  # the SSH line says the range; an update shows before -> after
        elif item.kind == "vpc-endpoint" and item.action == CREATE:
            note = "new, shared by the VPC"
        elif item.kind == "ssm-endpoint":  # the SSH line above says what the new ones cost
            note = "new, shared by the VPC" if item.action == CREATE else "the VPC's, shared" + (
                "; private DNS on" if item.action == UPDATE else "")
        elif item.kind == "key-pair" and item.action != UPDATE:
            note = ""
        elif item.kind == "instance" and item.action == CREATE:
            kind, note = ("instance" if plan.count == 1 else "instances"), plan.count_detail.lstrip("; ")
        rows.append((item.action, kind, item.name, note))
    return rows


class _NullContext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
