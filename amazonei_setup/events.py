"""Progress events: how code that calls AWS tells the UI what happened, without printing."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """kind: start, created, reused, updated, deleted, kept, retry, wait, done, rollback, warning."""

    kind: str
    resource: str
    message: str
    id: str = ""


Reporter = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The reporter for callers that do not show progress."""
