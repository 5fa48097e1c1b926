"""Everything the user sees. Human output is rich text on stderr; `--output json` puts one JSON
document on stdout, so `amazonei-setup ... --output json | jq` always works.

No AWS calls here: the UI renders Plans, Events and results handed to it.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from typing import IO

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from amazonei_setup.events import Event
from amazonei_setup.plan import Plan

JSON_VERSION = 1

_EVENT_STYLE = {
    "created": ("+", "green"), "reused": ("=", "cyan"), "updated": ("~", "yellow"), "deleted": ("-", "red"),
    "kept": ("=", "cyan"), "done": ("✓", "green"), "retry": ("↻", "yellow"), "warning": ("!", "yellow"),
    "rollback": ("↩", "magenta"), "start": ("…", "blue"), "wait": ("…", "blue"),
}


class Ui:
    def __init__(self, *, output: str = "text", stdout: IO | None = None, stderr: IO | None = None,
                 width: int | None = None):
        self.output = output
        self.stdout = stdout or sys.stdout
        plain = bool(os.environ.get("CI")) or not (stderr or sys.stderr).isatty()
        self.console = Console(file=stderr or sys.stderr, width=width, highlight=False,
                               force_terminal=None if not plain else False)
        self.plain = plain
        self._lock = threading.Lock()
        self._status = None

    # ---- progress ----------------------------------------------------------------------
    def progress(self, event: Event) -> None:
        """Called from worker threads: one line per event, a spinner while waiting (TTY only)."""
        with self._lock:
            mark, style = _EVENT_STYLE.get(event.kind, ("·", ""))
            if event.kind == "wait" and not self.plain:
                if self._status is None:
                    self._status = self.console.status(event.message)
                    self._status.start()
                else:
                    self._status.update(event.message)
                return
            self.console.print(Text.assemble((f"{mark} ", style), event.message))

    def stop_status(self) -> None:
        with self._lock:
            if self._status is not None:
                self._status.stop()
                self._status = None

    def status(self, message: str):
        """A spinner for a blocking step in the main thread (a no-op context when plain)."""
        if self.plain:
            self.console.print(f"… {message}")
            return _NullContext()
        return self.console.status(message)

    def info(self, message: str, style: str = "") -> None:
        self.console.print(Text(message, style=style))

    def warn(self, message: str) -> None:
        self.console.print(Text.assemble(("! ", "yellow"), message))

    def banner(self, message: str) -> None:
        self.console.print(Panel(Text(message, style="bold"), border_style="magenta", expand=False))

    # ---- documents -----------------------------------------------------------------------
    def plan_panel(self, plan: Plan, *, title: str = "Setup plan") -> Panel:
        choices = Table.grid(padding=(0, 2))
        choices.add_column(style="bold")
        choices.add_column(overflow="fold")
        cost = f"${plan.hourly_usd:.3f}/h (about ${plan.hourly_usd * 24 * 30:,.0f} per 30 days)" \
            if plan.hourly_usd is not None else "unknown for this instance type"
        for label, value in (
            ("Deployment", f"{plan.name}  ({plan.region}, account {plan.account_id})"),
            ("Instance", f"{plan.instance_type} + {plan.accelerator_type or 'no accelerator'}"),
            ("Image", f"{plan.ami_name or plan.ami_id} ({plan.ami_id})" if plan.ami_name else plan.ami_id),
            ("Network", f"{plan.vpc_id} / {plan.subnet_id} ({plan.availability_zone})"),
            ("SSH", f"{plan.ssh_user} with key {plan.key_name}, from {plan.ssh_cidr}"),
            ("Root volume", f"{plan.volume_size} GiB gp3, encrypted; IMDSv2 required"),
            ("Cost", cost),
        ):
            choices.add_row(label, value)
        items = Table(show_edge=False, box=None, padding=(0, 1), header_style="bold")
        items.add_column("Action")
        items.add_column("Resource")
        items.add_column("Name / id", overflow="fold")
        items.add_column("Notes", overflow="fold")
        colors = {"create": "green", "reuse": "cyan", "update": "yellow"}
        for item in plan.items():
            items.add_row(Text(item.action, style=colors.get(item.action, "")), item.kind, item.name, item.detail)
        parts = [choices, Text(""), items]
        for warning in plan.warnings:
            parts.append(Text.assemble(("! ", "yellow"), warning))
        return Panel(Group(*parts), title=title, title_align="left", border_style="blue")

    def show(self, renderable) -> None:
        self.stop_status()
        self.console.print(renderable)

    def result_panel(self, result) -> Panel:
        d = result.to_dict()
        lines = Table.grid(padding=(0, 2))
        lines.add_column(style="bold")
        lines.add_column(overflow="fold")
        lines.add_row("Instance", f"{d['instance_id']} ({d['state']}), {d['instance_type']} + "
                                  f"{d['accelerator_type'] or 'no accelerator'}")
        lines.add_row("Public DNS", d["public_dns"] or d["public_ip"] or "(none)")
        lines.add_row("SSH", d["ssh_command"])
        lines.add_row("Jupyter", d["port_forward_command"])
        lines.add_row("", "then run `jupyter notebook` on the instance and open http://localhost:8888")
        if d["accelerator_type"]:
            lines.add_row("Check EI", "on the instance: python /home/" + result.plan.ssh_user +
                          "/anaconda3/bin/EISetupValidator.py (or the DLAMI's EISetupValidator.py); CloudWatch "
                          "namespace AWS/ElasticInference, metrics AcceleratorHealthCheckFailed, "
                          "ConnectivityCheckFailed")
        if d["hourly_usd"] is not None:
            lines.add_row("Cost", f"${d['hourly_usd']:.3f} per hour while running")
        lines.add_row("Remove", f"python amazonei_setup.py teardown --region {d['region']} --name {d['name']}")
        return Panel(lines, title=f"Ready: {d['name']}", title_align="left", border_style="green")

    def teardown_table(self, items, *, title: str) -> Panel:
        table = Table(show_edge=False, box=None, padding=(0, 1), header_style="bold")
        table.add_column("Action")
        table.add_column("Resource")
        table.add_column("Id", overflow="fold")
        table.add_column("Why", overflow="fold")
        colors = {"delete": "red", "keep": "cyan", "detach": "yellow"}
        for item in items:
            table.add_row(Text(item.action, style=colors.get(item.action, "")), item.kind, item.id, item.reason)
        return Panel(table, title=title, title_align="left", border_style="red")

    def deployments_table(self, rows: list[dict]) -> Table:
        table = Table(header_style="bold", show_edge=False, box=None, padding=(0, 1))
        for column in ("Name", "Region", "Instance", "State", "Type + accelerator", "Public DNS", "Age", "$/h"):
            table.add_column(column, overflow="fold")
        for r in rows:
            age = f"{r['age_hours']:.1f} h" if r["age_hours"] is not None else ""
            cost = f"{r['hourly_usd']:.3f}" if r["hourly_usd"] is not None else ""
            kind = f"{r['instance_type']} + {r['accelerator_type']}" if r["accelerator_type"] else r["instance_type"]
            table.add_row(r["name"], r["region"], r["instance_id"], r["state"], kind, r["public_dns"], age, cost)
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


class _NullContext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
