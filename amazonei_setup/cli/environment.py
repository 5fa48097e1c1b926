"""What the CLI touches of the outside world, in one object the commands receive; tests replace pieces of it."""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO


@dataclass
class Environment:
    """What the CLI touches of the outside world; tests replace pieces of it."""

    stdin_isatty: bool = field(default_factory=lambda: sys.stdin.isatty())
    stdout: IO = field(default_factory=lambda: sys.stdout)
    stderr: IO = field(default_factory=lambda: sys.stderr)
    public_ip_lookup: Callable[[], str | None] | None = None  # None: the real checkip lookup
    asker: object | None = None  # a wizard Asker to use instead of questionary (tests)
    sleep: Callable[[float], None] | None = None  # None: real sleeping
    aws: object | None = None  # an Aws to use instead of building one (tests instrument its clients)
    width: int | None = None
    emulated: bool | None = None  # None: decided from the flags (commands.common.emulated); tests set it
