"""A local note per deployment this machine set up (~/.amazonei-setup/deployments/): where its
private key was saved, and what the run created. A convenience only: teardown and list find
everything by tags and work without it; teardown uses it to name the exact .pem it leaves behind.
No secrets go in it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from amazonei_setup.local import paths


def _path(region: str, name: str, sandbox: bool) -> Path:
    # A sandbox deployment may share its region and name with a real one: keep them apart.
    home = paths.sandbox_dir() if sandbox else paths.app_home()
    return home / "deployments" / f"{region}--{name}.json"


def save(region: str, name: str, record: dict, *, sandbox: bool = False) -> None:
    """Best effort: a full disk must not turn a successful setup into a failure."""
    target = _path(region, name, sandbox)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(record, out, indent=2, default=str)
        temporary.replace(target)
    except OSError:
        pass


def load(region: str, name: str, *, sandbox: bool = False) -> dict | None:
    """None when there is no readable note (missing, a directory, not JSON, not an object): it is a convenience."""
    try:
        found = json.loads(_path(region, name, sandbox).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def regions_of(name: str, *, sandbox: bool = False) -> list[str]:
    """The regions this machine has a record of deployment `name` in."""
    home = paths.sandbox_dir() if sandbox else paths.app_home()
    try:
        return sorted(p.name[:-len(f"--{name}.json")] for p in (home / "deployments").glob(f"*--{name}.json"))
    except OSError:
        return []


def remove(region: str, name: str, *, sandbox: bool = False) -> str | None:
    """Forget the note; returns the sentence to warn with when it cannot be removed (the deployment is gone from
    AWS by then, so a note left behind is never the reason a teardown fails)."""
    target = _path(region, name, sandbox)
    try:
        target.unlink(missing_ok=True)
    except OSError as err:  # a directory in its place, a read-only directory...
        return (f"This machine's note of the deployment, {target}, could not be removed "
                f"({err.strerror or type(err).__name__}): delete it by hand; nothing in AWS needs it.")
    return None
