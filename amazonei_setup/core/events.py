"""Progress events: how code that calls AWS tells the UI what happened, without printing."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """kind: start, created, reused, updated, deleted, kept, retry, wait, done, rollback, warning, reachable.

    `reachable`: an instance is running with its public address, so the user can connect now (setup may still be
    waiting for the EI endpoint); `detail` carries `host`, `ssh_command` and `port_forward_command`. It is a
    result, not conversation: the UI shows it on stdout in text mode."""

    kind: str
    resource: str
    message: str
    id: str = ""
    detail: dict | None = None


Reporter = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The reporter for callers that do not show progress."""
