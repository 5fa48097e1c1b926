"""SSH config entries: `ssh NAME`, `scp file NAME:` and VS Code Remote-SSH by deployment name.

Pure file handling, no AWS. The tool owns one file, `<app home>/ssh/config` (`~/.amazonei-setup/ssh/config`), and
writes one block per deployment in it:

    # amazonei-setup: demo (us-west-2) - rewritten by setup/start, removed by teardown
    Host demo
        HostName ec2-54-214-8-229.us-west-2.compute.amazonaws.com
        User ec2-user
        IdentityFile /home/me/.ssh/amazonei-setup-demo.pem
        IdentitiesOnly yes
        HostKeyAlias i-0abc1234def567890
        StrictHostKeyChecking accept-new
    # end amazonei-setup: demo

A fleet (`--count`) gets `Host demo-0 demo` (the first instance answers to the bare name too), `Host demo-1`, ...
`HostKeyAlias` is the instance id: the host key stays pinned to the machine across stop/start (its address
changes), and a new machine of the same name is a new known_hosts entry instead of a "host key changed" alarm.
`StrictHostKeyChecking accept-new` is inside the block, so it applies to these hosts only.

The user's `~/.ssh/config` gets exactly one line from us, once: `Include <our file>` at its **top** (OpenSSH reads an
Include inside whatever Host block precedes it, so anywhere else it would only apply to that block), with a comment
saying who put it there. Nothing else in that file is ever rewritten; teardown removes our block, never the Include
line (an Include of a file without the name is harmless). A `Host` of the same name in the user's own file would be
overridden by ours (OpenSSH takes the first value it reads, and the Include comes first): `user_defines` finds it, and
the callers then leave that name alone.

Sandbox deployments (emulated: their addresses are made up and may belong to someone real) are written to a separate
file under the sandbox directory that is never included from `~/.ssh/config`: `ssh -F <that file> NAME` and
`connect --print` show what a real deployment would get, and a stray `ssh NAME` never reaches a stranger's machine.

Writes are atomic (a temporary file in the same directory, then os.replace) under a lock file (fcntl.flock), so two
runs (a setup and a start, two setups) never lose each other's blocks."""
from __future__ import annotations

import contextlib
import os
import re
import shlex
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from amazonei_setup import paths

BEGIN = "# amazonei-setup: "
END = "# end amazonei-setup: "
INCLUDE_COMMENT = "# Added by amazonei-setup once, at the top so it is read outside any Host block (`ssh NAME`):"


@dataclass(frozen=True)
class HostEntry:
    """One instance of a deployment as ssh should reach it. `aliases`: the Host names (the first is the block's)."""

    aliases: tuple[str, ...]
    host: str
    user: str
    identity_file: str | None
    instance_id: str


def config_file(sandbox: bool = False) -> Path:
    """The file the tool owns. Sandbox deployments get their own, never included from ~/.ssh/config."""
    return (paths.sandbox_dir() if sandbox else paths.app_home()) / "ssh" / "config"


def user_config_file() -> Path:
    """~/.ssh/config. RuntimeError when no home directory is known."""
    return paths.ssh_dir() / "config"


def host_names(name: str, count: int) -> list[tuple[str, ...]]:
    """The Host names of each instance: one instance answers to `name`; a fleet's to name-0 (also `name`), name-1..."""
    if count <= 1:
        return [(name,)]
    return [(f"{name}-{i}", name) if i == 0 else (f"{name}-{i}",) for i in range(count)]


def entries_for(name: str, instances: list, user: str, identity_file: str | None) -> list[HostEntry]:
    """HostEntry per instance (InstanceInfo-like: id, host) that has an address, in launch order."""
    names = host_names(name, len(instances))
    return [HostEntry(aliases, each.host, user, identity_file, each.id)
            for aliases, each in zip(names, instances, strict=True) if each.host]


def _quoted(value: str) -> str:
    """ssh_config takes double quotes around a value with spaces."""
    return f'"{value}"' if re.search(r"\s", value) else value


def render_block(name: str, region: str, entries: list[HostEntry]) -> str:
    lines = [f"{BEGIN}{name} ({region}) - rewritten by setup/start, removed by teardown"]
    for entry in entries:
        lines.append("Host " + " ".join(entry.aliases))
        lines.append(f"    HostName {entry.host}")
        lines.append(f"    User {entry.user}")
        if entry.identity_file:
            lines.append(f"    IdentityFile {_quoted(entry.identity_file)}")
            lines.append("    IdentitiesOnly yes")
        lines.append(f"    HostKeyAlias {entry.instance_id}")
        lines.append("    StrictHostKeyChecking accept-new")
    lines.append(f"{END}{name}")
    return "\n".join(lines) + "\n"


def _blocks(text: str) -> dict[str, str]:
    """Our file's blocks by deployment name, in file order."""
    found: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        if current is None and line.startswith(BEGIN):
            current = line[len(BEGIN):].split(" ", 1)[0].strip()
            lines = [line]
        elif current is not None:
            lines.append(line)
            if line.strip() == f"{END}{current}":
                found[current] = "".join(lines)
                current = None
    return found


def read_block(name: str, sandbox: bool = False) -> str | None:
    try:
        return _blocks(config_file(sandbox).read_text()).get(name)
    except OSError:
        return None


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """One writer at a time for `target` (a lock file beside it; flock is released when the process dies)."""
    import fcntl

    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target.parent / f".{target.name}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_atomically(target: Path, text: str, mode: int = 0o600) -> None:
    """A reader (ssh) sees the old file or the new one, never half of one."""
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_block(name: str, region: str, entries: list[HostEntry], sandbox: bool = False) -> Path:
    """Add or replace deployment `name`'s block in our file (other deployments' blocks stay as they are)."""
    target = config_file(sandbox)
    with _locked(target):
        blocks = _blocks(target.read_text()) if target.exists() else {}
        blocks[name] = render_block(name, region, entries)
        _write_atomically(target, _header() + "\n".join(blocks.values()))
    return target


def remove_block(name: str, sandbox: bool = False) -> bool:
    """Remove `name`'s block; True when there was one. The Include line in ~/.ssh/config stays."""
    target = config_file(sandbox)
    if not target.exists():
        return False
    with _locked(target):
        blocks = _blocks(target.read_text())
        if name not in blocks:
            return False
        del blocks[name]
        _write_atomically(target, _header() + "\n".join(blocks.values()))
    return True


def _header() -> str:
    return ("# Written by amazonei-setup: one block per deployment. Edits are lost at the next setup, start or\n"
            "# teardown of that deployment; put your own entries in ~/.ssh/config instead.\n\n")


def include_line(sandbox: bool = False) -> str:
    return f"Include {_quoted(str(config_file(sandbox)))}"


def _resolved(path: Path) -> Path:
    """A ~/.ssh/config that is a symlink (a dotfiles repository) is written through, not replaced by a file."""
    return path.resolve() if path.is_symlink() else path


def has_include(sandbox: bool = False) -> bool:
    try:
        text = _resolved(user_config_file()).read_text()
    except (OSError, RuntimeError):
        return False
    return include_line(sandbox) in (line.strip() for line in text.splitlines())


def add_include() -> bool:
    """Put `Include <our file>` at the top of ~/.ssh/config (creating ~/.ssh 0700 and the file 0600 if missing);
    False when it is there already. The rest of the file is kept byte for byte, and its mode too."""
    user_file = user_config_file()
    user_file.parent.mkdir(mode=0o700, exist_ok=True)
    target = _resolved(user_file)
    with _locked(config_file()):  # our own lock file: none is left in ~/.ssh (or a dotfiles repository)
        old = target.read_text() if target.exists() else ""
        line = include_line()
        if line in (each.strip() for each in old.splitlines()):
            return False
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o600
        _write_atomically(target, f"{INCLUDE_COMMENT}\n{line}\n\n{old}", mode)
    return True


def user_defines(host_name: str) -> bool:
    """True when ~/.ssh/config itself (not our file) has a Host line naming exactly `host_name`."""
    try:
        text = _resolved(user_config_file()).read_text()
    except (OSError, RuntimeError):
        return False
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if len(words) == 2 and words[0].lower() == "host":
            try:
                patterns = shlex.split(words[1].split("#", 1)[0], posix=True)
            except ValueError:  # an unbalanced quote: ssh will complain about it itself
                patterns = words[1].split()
            if host_name in patterns:
                return True
    return False
