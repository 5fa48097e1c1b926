"""Reaching a deployment's instances with the system `ssh`: the argv for one instance, and running one command on
several at once with each line prefixed by the instance's name.

Always the OpenSSH client with the tool's own Host block (`ssh NAME` when ~/.ssh/config includes the tool's file,
so the user's agent, ProxyCommand and known_hosts handling keep working; `ssh -F <the tool's file> NAME` otherwise,
and always for the sandbox, whose file is never included). Without a block (--no-ssh-config, a name left out), the
same settings as flags. Never a password, never host key checking turned off.
"""
from __future__ import annotations

import contextlib
import io
import shlex
import subprocess
import threading
from dataclasses import dataclass

WORKDIR = "workdir"  # ~/workdir on the instance: where --workdir lands and where commands run


@dataclass(frozen=True)
class Target:
    """One instance as ssh reaches it. `label` prefixes its output lines in a fleet."""

    instance_id: str
    label: str
    ssh: tuple[str, ...]  # `ssh [options] DESTINATION`, without the remote command


def targets(args, instances: list, access) -> list[Target]:
    """A Target per instance (InstanceInfo: running, with an address), in launch order."""
    from amazonei_setup.local import paths, sshconfig
    from amazonei_setup.sandbox import ssh as sandbox_ssh

    aliases = sshconfig.hosts_of(args.name, sandbox=args.sandbox)
    found = []
    for index, each in enumerate(instances):
        names = aliases.get(each.id)
        label = names[0] if names else (args.name if len(instances) == 1 else f"{args.name}-{index}")
        if names and args.sandbox:
            argv = ("ssh", "-F", str(sshconfig.config_file(sandbox=True)), names[0])
        elif names and sshconfig.has_include():
            argv = ("ssh", names[0])
        elif names:
            argv = ("ssh", "-F", str(sshconfig.config_file()), names[0])
        else:
            options = ["-o", f"HostKeyAlias={each.id}"]
            if access.key_path:
                options += ["-i", access.key_path, "-o", "IdentitiesOnly=yes"]
            if each.ssh_port != 22:
                options += ["-p", str(each.ssh_port)]
            if args.sandbox:
                options += ["-o", f"UserKnownHostsFile={sandbox_ssh.known_hosts_file(paths.sandbox_dir())}",
                            "-o", "StrictHostKeyChecking=yes"]
            else:
                options += ["-o", "StrictHostKeyChecking=accept-new"]
            argv = ("ssh", *options, f"{access.user}@{each.host}")
        found.append(Target(each.id, label, argv))
    return found


def remote_command(words: list[str], environment: dict[str, str] | None = None, *, workdir: bool = True) -> str:
    """The one string ssh sends (it joins its arguments with spaces, so each word is quoted for the remote shell):
    the words as the same words, run in ~/workdir (made if missing), with `environment` exported."""
    parts = []
    if workdir:
        parts.append(f'mkdir -p "$HOME/{WORKDIR}" && cd "$HOME/{WORKDIR}"')
    if environment:
        parts.append("export " + " ".join(f"{key}={shlex.quote(value)}" for key, value in environment.items()))
    parts.append(" ".join(shlex.quote(word) for word in words))
    return " && ".join(parts)


def _writer(stream):
    """A function that writes bytes to `stream` (a text stream with a binary buffer, or a StringIO in tests)."""
    buffer = getattr(stream, "buffer", None)
    lock = threading.Lock()

    def write(data: bytes) -> None:
        with lock:
            if buffer is not None:
                stream.flush()
                buffer.write(data)
                buffer.flush()
            else:
                stream.write(data.decode("utf-8", "replace"))
                with contextlib.suppress(Exception):
                    stream.flush()

    return write


def _fileno(stream):
    try:
        return stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None


def run_one(target: Target, command: str, stdout, stderr, *, stdin=None, extra=("-T",)) -> int:
    """`command` on one instance with this process's streams (byte for byte: `exec -- cat f > local`); the exit
    status is the remote command's (255: ssh could not connect)."""
    argv = [*target.ssh[:-1], *extra, target.ssh[-1], command]
    out, err = _fileno(stdout), _fileno(stderr)
    with _children() as children:
        for stream in (stdout, stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        child = subprocess.Popen(argv, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                 stdout=out if out is not None else subprocess.PIPE,
                                 stderr=err if err is not None else subprocess.PIPE)
        children.append(child)
        pumps = []
        if out is None:
            pumps.append(_pump(child.stdout, _writer(stdout), b""))
        if err is None:
            pumps.append(_pump(child.stderr, _writer(stderr), b""))
        for pump in pumps:
            pump.join()
        return child.wait()


def run_all(found: list[Target], command: str, stdout, stderr, *, log=None) -> dict[str, int]:
    """`command` on every target at once, each output line prefixed `[label] ` (stdout to stdout, stderr to
    stderr); `log(label, line)` also gets every line. Returns {instance id: exit status}."""
    out, err = _writer(stdout), _writer(stderr)
    codes: dict[str, int] = {}
    with _children() as children:
        pumps = []
        for target in found:
            child = subprocess.Popen([*target.ssh[:-1], "-T", target.ssh[-1], command], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            children.append(child)
            prefix = f"[{target.label}] ".encode()
            pumps.append(_pump(child.stdout, out, prefix, log and (lambda line, t=target: log(t.label, line))))
            pumps.append(_pump(child.stderr, err, prefix, log and (lambda line, t=target: log(t.label, line))))
        for pump in pumps:
            pump.join()
        for target, child in zip(found, children, strict=True):
            codes[target.instance_id] = child.wait()
    return codes


def _pump(source, write, prefix: bytes, log=None) -> threading.Thread:
    def pump():
        if not prefix:
            while chunk := source.read1(65536) if hasattr(source, "read1") else source.read(65536):
                write(chunk)
            return
        for line in iter(source.readline, b""):
            if not line.endswith(b"\n"):
                line += b"\n"
            write(prefix + line)
            if log is not None:
                log(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def _children():
    """The ssh processes started inside; any left running when the block ends (Ctrl-C) are ended."""
    children: list[subprocess.Popen] = []
    try:
        yield children
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=5)


def worst(codes) -> int:
    """A fleet's exit status: the highest non-zero one, else 0."""
    return max([code for code in codes if code] or [0])
