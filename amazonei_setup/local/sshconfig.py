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

A Host entry never shadows a name that already means something (the Include comes first, so ours would win, with
`StrictHostKeyChecking accept-new` on top: `ssh localhost` would reach the EC2 instance without a word). Two kinds:
- another deployment's alias (`demo --count 2` answers to `demo-1`; a deployment named `demo-1` would too). Certain
  before anything is created, so setup refuses it then (`taken_by_others`); `claim` leaves such an alias out again
  under the file's lock, for the runs that get past that check (a race, `start` of a deployment made with
  --no-ssh-config).
- a real host name (`shadowed`): localhost, a numeric address, a name in /etc/hosts, a name the user's ssh config
  sends to another HostName (`ssh -G`, without our Include), a name DNS resolves. The deployment is fine and the name
  stays (it names AWS resources); only that alias gets no entry, and the caller says how to connect instead.

Sandbox deployments (emulated: their addresses are made up and may belong to someone real) are written to a separate
file under the sandbox directory that is never included from `~/.ssh/config`: `ssh -F <that file> NAME` and
`connect --print` show what a real deployment would get, and a stray `ssh NAME` never reaches a stranger's machine.

Writes are atomic (a temporary file in the same directory, then os.replace) under a lock file (fcntl.flock), so two
runs (a setup and a start, two setups) never lose each other's blocks."""
from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import re
import shlex
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from amazonei_setup.local import paths

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
    proxy_command: str | None = None  # --access ssm: through Session Manager (host is then the instance id)
    port: int = 22
    known_hosts: str | None = None  # the sandbox's own file (its host key), so ~/.ssh/known_hosts is not touched


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


def entries_for(name: str, instances: list, user: str, identity_file: str | None,
                proxy_command: str | None = None, known_hosts: str | None = None) -> list[HostEntry]:
    """HostEntry per instance (InstanceInfo-like: id, host, ssh_port) that has an address, in launch order. With a
    proxy_command (Session Manager) every instance has one: its id, which the proxy's %h passes to AWS."""
    names = host_names(name, len(instances))
    return [HostEntry(aliases, each.id if proxy_command else each.host, user, identity_file, each.id,
                      proxy_command=proxy_command, port=getattr(each, "ssh_port", 22), known_hosts=known_hosts)
            for aliases, each in zip(names, instances, strict=True) if proxy_command or each.host]


def _quoted(value: str) -> str:
    """A value as ssh_config reads it back whole: double quotes around one with spaces, quotes, backslashes or `#`,
    with `"` and `\\` escaped inside them (OpenSSH's argv_split, 8.4 and later; checked with `ssh -G`)."""
    if value and not re.search(r"[\s\"'\\#]", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _identity_file(path: str) -> str:
    """IdentityFile expands `%` tokens (%d, %h, ...) when ssh uses it: a literal `%` is written `%%`."""
    return _quoted(_one_line(path).replace("%", "%%"))


def _one_line(value: str) -> str:
    """ssh_config is read line by line: a value with a newline (an instance tag says which user to log in as) would
    add a line of its own, `ProxyCommand ...` for one. ValueError for any control character."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{value!r} holds a control character, which ssh_config cannot take")
    return value


def _value(value: str) -> str:
    return _quoted(_one_line(value))


def render_block(name: str, region: str, entries: list[HostEntry]) -> str:
    lines = [f"{BEGIN}{name} ({region}) - rewritten by setup/start, removed by teardown"]
    for entry in entries:
        lines.append("Host " + " ".join(_value(alias) for alias in entry.aliases))
        lines.append(f"    HostName {_value(entry.host)}")
        if entry.proxy_command:  # ssh takes the rest of the line as it is and runs it with the user's shell
            lines.append(f"    ProxyCommand {_one_line(entry.proxy_command)}")
        if entry.port != 22:
            lines.append(f"    Port {int(entry.port)}")
        lines.append(f"    User {_value(entry.user)}")
        if entry.identity_file:
            lines.append(f"    IdentityFile {_identity_file(entry.identity_file)}")
            lines.append("    IdentitiesOnly yes")
        lines.append(f"    HostKeyAlias {_value(entry.instance_id)}")
        if entry.known_hosts:  # the sandbox: its host key is known in advance, in its own file
            lines.append(f"    UserKnownHostsFile {_identity_file(entry.known_hosts)}")
            lines.append("    StrictHostKeyChecking yes")
        else:
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


def _aliases(block: str) -> list[str]:
    """Every name a block's Host lines answer to."""
    return [alias for line in block.splitlines() if line.startswith("Host ") for alias in line.split()[1:]]


def _taken(blocks: dict[str, str], name: str, aliases) -> dict[str, str]:
    owners = {alias: other for other, block in blocks.items() if other != name for alias in _aliases(block)}
    return {alias: owners[alias] for alias in aliases if alias in owners}


def taken_by_others(name: str, host_names_: list[tuple[str, ...]], sandbox: bool = False) -> dict[str, str]:
    """Which of deployment `name`'s Host names (host_names()) another deployment's block already answers to:
    {alias: that deployment}. Its own block does not count (a re-run rewrites it)."""
    try:
        blocks = _blocks(config_file(sandbox).read_text())
    except OSError:
        return {}
    return _taken(blocks, name, [alias for each in host_names_ for alias in each])


def hosts_of(name: str, sandbox: bool = False) -> dict[str, tuple[str, ...]]:
    """The Host names deployment `name`'s block gives each instance: {instance id: aliases} (HostKeyAlias is the
    instance id). An instance whose names were all left out is not in it."""
    block = read_block(name, sandbox)
    found: dict[str, tuple[str, ...]] = {}
    aliases: tuple[str, ...] = ()
    for line in (block or "").splitlines():
        words = line.split()
        if words[:1] == ["Host"]:
            aliases = tuple(words[1:])
        elif words[:1] == ["HostKeyAlias"] and len(words) == 2 and aliases:
            found[words[1]] = aliases
    return found


@dataclass(frozen=True)
class Claim:
    """What write_block did: the file, the entries written (aliases taken by another deployment left out), and
    those aliases {alias: the deployment that has it}."""

    path: Path
    entries: list[HostEntry]
    taken: dict[str, str]


def claim(name: str, region: str, entries: list[HostEntry], sandbox: bool = False) -> Claim:
    """Add or replace deployment `name`'s block in our file (other deployments' blocks stay as they are), without
    any alias another deployment's block already has: within one file the first block that names an alias wins, so
    a second `Host demo-1` would send one of them to the other's machine with the other's key. Decided under the
    file's lock, so two runs cannot both take a name. An instance left with no name gets no entry; a deployment left
    with none has no block."""
    target = config_file(sandbox)
    with _locked(target):
        blocks = _blocks(target.read_text()) if target.exists() else {}
        taken = _taken(blocks, name, [alias for entry in entries for alias in entry.aliases])
        kept = [dataclasses.replace(e, aliases=tuple(a for a in e.aliases if a not in taken)) for e in entries]
        kept = [entry for entry in kept if entry.aliases]
        if kept:
            blocks[name] = render_block(name, region, kept)
        else:
            blocks.pop(name, None)
        _write_atomically(target, _header() + "\n".join(blocks.values()))
    return Claim(target, kept, taken)


def write_block(name: str, region: str, entries: list[HostEntry], sandbox: bool = False) -> Path:
    """claim(), for callers that need only the file."""
    return claim(name, region, entries, sandbox).path


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


# ---- names that already mean something ------------------------------------------------------------------------

HOSTS_FILE = Path("/etc/hosts")
DNS_TIMEOUT = 2.0  # seconds: a name DNS knows answers well within this; a setup should not hang on a dead resolver
SSH_G_TIMEOUT = 5.0


def local_name(name: str) -> str | None:
    """Why `name` already reaches something without asking DNS (localhost, a numeric address, /etc/hosts), or None."""
    import socket

    if name == "localhost" or name.endswith(".localhost"):
        return "it is this machine"
    try:
        ipaddress.ip_address(name)
        return "it is an IP address"
    except ValueError:
        pass
    try:
        socket.inet_aton(name)  # what the resolver takes as an address too: `127`, `10.1`, `0x7f000001`
        return "it is an IP address"
    except OSError:
        pass
    try:
        text = HOSTS_FILE.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) > 1 and name in (w.lower() for w in words[1:]):
            return f"{HOSTS_FILE} names it ({words[0]})"
    return None


def dns_resolves(name: str) -> bool:
    """True when the resolver (DNS, with the search domains ssh would use too) answers for `name`. Bounded by
    DNS_TIMEOUT, in a daemon thread since getaddrinfo itself has no timeout; no answer within it counts as resolving:
    a missing entry costs `ssh NAME` (the connect command still works), a wrong one sends the user's ssh elsewhere.
    Tests replace this function: they never ask DNS."""
    import socket
    import threading

    answer: list[bool] = []

    def look_up() -> None:
        try:
            answer.append(bool(socket.getaddrinfo(name, 22, type=socket.SOCK_STREAM)))
        except (OSError, UnicodeError):
            answer.append(False)

    worker = threading.Thread(target=look_up, name=f"dns {name}", daemon=True)
    worker.start()
    worker.join(DNS_TIMEOUT)
    return answer[0] if answer else True


def ssh_maps_elsewhere(name: str) -> str | None:
    """The HostName the user's ssh configuration (without our Include) gives `name`, when that is not `name` itself
    (a `Host gate?` pattern, a `Host *` with `HostName %h.corp`); None when it does not, or ssh is not installed."""
    import shutil
    import subprocess

    ssh = shutil.which("ssh")
    if not ssh:
        return None
    try:
        user_text = _resolved(user_config_file()).read_text()
    except (OSError, RuntimeError):
        user_text = ""
    text = "".join(line for line in user_text.splitlines(keepends=True) if not _includes_ours(line))
    system = Path("/etc/ssh/ssh_config")
    if system.exists():  # ssh reads it after the user's file; -F would skip it
        text += f"\nMatch all\nInclude {_quoted(str(system))}\n"
    fd, copy = tempfile.mkstemp(prefix="amazonei-setup-ssh-", suffix=".config")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        done = subprocess.run([ssh, "-F", copy, "-G", name], capture_output=True, text=True,
                              timeout=SSH_G_TIMEOUT, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(copy)
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "hostname":
            return value if value.lower() != name.lower() else None
    return None


def _includes_ours(line: str) -> bool:
    """An Include line naming our file, as we wrote it or as the user respelled it (`~/.amazonei-setup/ssh/config`)."""
    words = line.strip().split(None, 1)
    if len(words) != 2 or words[0].lower() != "include":
        return False
    try:
        paths_ = shlex.split(words[1].split("#", 1)[0])
    except ValueError:
        return False
    ours = {os.path.normpath(str(config_file(False))), os.path.normpath(str(config_file(True)))}
    return any(os.path.normpath(os.path.expanduser(each)) in ours for each in paths_)


def shadowed(alias: str, *, dns: bool = True) -> str | None:
    """Why a `Host alias` entry would take over a name this machine already reaches, or None when it would not.
    dns=False: this machine's own names and ssh's configuration only (an emulated account: no query leaves the
    machine for a made-up deployment)."""
    why = local_name(alias)
    if why:
        return why
    elsewhere = ssh_maps_elsewhere(alias)
    if elsewhere:
        return f"your ssh configuration sends it to {elsewhere}"
    if dns and dns_resolves(alias):
        return "it resolves in DNS"
    return None
