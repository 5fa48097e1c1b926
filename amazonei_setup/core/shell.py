"""How a value is spelled in a command the tool prints, so that the line pasted into a POSIX shell is exactly the
argv meant: every interpolated word through shlex.quote (a --key-dir with a space stays one word; one with
`$(...)` runs nothing). Pure: no AWS SDK, no UI."""
from __future__ import annotations

import shlex


def word(value: object) -> str:
    """One shell word for `value`, quoted only when it needs to be (`us-west-2` stays as it is)."""
    return shlex.quote(str(value))


def path(value: object) -> str:
    """A file path as one shell word; a leading `~/` stays outside the quotes, so the shell still expands it."""
    text = str(value)
    if text.startswith("~/"):
        return "~/" + shlex.quote(text[2:])
    return shlex.quote(text)


def join(words) -> str:
    return " ".join(word(each) for each in words)
