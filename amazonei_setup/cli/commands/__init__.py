"""One module per command (setup, status, connect, stop/start, idle-stop, teardown, list, cost, export,
permissions), each `run(args, env, ui, aws) -> Result`.

A command does its work (asking, showing progress and its plan on stderr through `ui`) and returns what it
produced as a `Result`; `render.render` then turns that into text on stdout or the one JSON document, once.
Errors are raised (errors.ToolError and kin) and rendered by cli._fail.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Result:
    """What a command produced. `data` is the JSON envelope's `result`; `view` names the text view in
    render.VIEWS that shows it; `context` holds what that view needs beyond the JSON (never serialised)."""

    command: str
    data: dict | None = None
    status: str = "success"  # the envelope's status: success | cancelled
    view: str | None = None  # None: the command's own view; "message": just `message`
    message: str = ""  # a closing sentence of the text result ("Nothing was created.")
    warnings: list[str] = field(default_factory=list)  # shown on stderr, in text and JSON mode alike
    exit_code: int = 0
    context: dict = field(default_factory=dict)


def handler(command: str):
    """The `run` of a command's module (imported on demand: cost needs no AWS SDK)."""
    import importlib

    module = {"setup": "setup", "export": "export", "teardown": "teardown", "list": "listing", "cost": "cost",
              "idle-stop": "idle_stop", "permissions": "permissions",
              "status": "status", "connect": "connect", "stop": "power", "start": "power",
              "exec": "execute"}[command]
    return importlib.import_module(f"amazonei_setup.cli.commands.{module}").run
