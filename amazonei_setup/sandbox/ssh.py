"""The sandbox's instances answer SSH: one SSH server (asyncssh) per running instance, on 127.0.0.1.

A sandbox instance is a shell on this machine, in its own home directory under the sandbox's state directory
(`<state>/homes/<instance id>`): what you run there runs here, as you. It exists so that everything that reaches an
instance (the system `ssh` with the tool's Host block, scp/sftp, rsync, `-L` port forwarding, exec, Jupyter) is
tested for real, against the real OpenSSH client, without an AWS account.

Runs inside the sandbox server process (sandbox/server.py), which already outlives commands: `reconcile` runs
after every request that may change the account, under the server's request lock, and makes the listeners match
the instances: a running instance has a port (the one it had before when that port is still free), a stopped one
has none, a terminated one loses its home. Each open port is written on the instance as the tag `SSH_PORT_TAG`
(and in `ssh.json` for people), so every command already reads it from `describe_instances`.

It accepts only the instance's key pair (moto keeps each key pair's OpenSSH public key) and the image's user (the
instance's `amazonei-setup:ssh-user` tag, else ec2-user/ubuntu). The host key is one per state directory; the
sandbox's Host blocks point `UserKnownHostsFile` at `known_hosts` beside it, so ~/.ssh/known_hosts is never
touched. Port forwarding (-L) reaches 127.0.0.1 only; remote forwarding (-R), agent and X11 forwarding are refused.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import threading
from pathlib import Path

SSH_PORT_TAG = "amazonei-setup:sandbox-ssh-port"  # also in resources/instance.py (no import of this module there)
SSH_DIR = "ssh"
HOST_KEY = "host_key"
KNOWN_HOSTS = "known_hosts"
PORTS_FILE = "ssh.json"
HOMES = "homes"
DEFAULT_USERS = ("ec2-user", "ubuntu")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def known_hosts_file(state_dir: Path) -> Path:
    return Path(state_dir) / SSH_DIR / KNOWN_HOSTS


def home_of(state_dir: Path, instance_id: str) -> Path:
    return Path(state_dir) / HOMES / instance_id


class SshServers:
    """The listeners of one sandbox account, driven by `reconcile` from the server's request thread."""

    def __init__(self, state_dir: Path):
        import asyncssh

        self.state_dir = Path(state_dir)
        ssh_dir = self.state_dir / SSH_DIR
        ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_file = ssh_dir / HOST_KEY
        if key_file.exists():
            self.host_key = asyncssh.read_private_key(str(key_file))
        else:
            self.host_key = asyncssh.generate_private_key("ssh-ed25519")
            _write(key_file, self.host_key.export_private_key().decode())
        # HostKeyAlias is the instance id in the tool's Host blocks: one line answers for every instance
        _write(ssh_dir / KNOWN_HOSTS,
               f"i-*,[127.0.0.1]:* {self.host_key.export_public_key().decode().strip()}\n")
        self.listeners: dict[str, object] = {}  # instance id -> asyncssh server
        self.ports: dict[str, int] = self._remembered()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sandbox-ssh", daemon=True)
        self.thread.start()

    def _remembered(self) -> dict[str, int]:
        try:
            return {k: int(v["port"]) for k, v in json.loads((self.state_dir / PORTS_FILE).read_text()).items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    # ---- reconcile (the server's request thread, under its lock) ----

    def reconcile(self, account_id: str) -> None:
        from moto.backends import get_backend

        seen: dict[str, tuple] = {}
        for region, backend in list(get_backend("ec2")[account_id].items()):
            for instance in list(_instances_of(backend)):
                seen[instance.id] = (region, backend, instance)
        for instance_id, (_region, backend, instance) in seen.items():
            state = instance.state
            if state == "running":
                if instance_id not in self.listeners:
                    self._open(backend, instance)
            else:
                self._close(instance_id)
                _untag(backend, instance_id)
                if state == "terminated":
                    self.ports.pop(instance_id, None)
                    shutil.rmtree(home_of(self.state_dir, instance_id), ignore_errors=True)
        for instance_id in [i for i in self.listeners if i not in seen]:  # gone from the account (a reset)
            self._close(instance_id)
        self._write_ports(seen)

    def _open(self, backend, instance) -> None:
        key_pair = backend.key_pairs.get(instance.key_name or "")
        public = getattr(key_pair, "material_public", b"") if key_pair is not None else b""
        if isinstance(public, bytes):
            public = public.decode()
        tags = _tags_of(backend, instance.id)
        user = tags.get("amazonei-setup:ssh-user")
        users = (user,) if user else DEFAULT_USERS
        home = home_of(self.state_dir, instance.id)
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        future = asyncio.run_coroutine_threadsafe(
            self._listen(instance.id, public, users, home, self.ports.get(instance.id, 0)), self.loop)
        server, port = future.result(timeout=10)
        self.listeners[instance.id] = server
        self.ports[instance.id] = port
        backend.create_tags([instance.id], {SSH_PORT_TAG: str(port)})

    def _close(self, instance_id: str) -> None:
        server = self.listeners.pop(instance_id, None)
        if server is not None:
            asyncio.run_coroutine_threadsafe(_close_server(server), self.loop).result(timeout=10)

    def _write_ports(self, seen: dict) -> None:
        data = {i: {"port": p, "open": i in self.listeners, "region": seen[i][0] if i in seen else None,
                    "home": str(home_of(self.state_dir, i))} for i, p in self.ports.items()}
        _write(self.state_dir / PORTS_FILE, json.dumps(data, indent=1))

    def close(self) -> None:
        for instance_id in list(self.listeners):
            with contextlib.suppress(Exception):
                self._close(instance_id)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    # ---- the servers (the asyncio thread) ----

    async def _listen(self, instance_id: str, public_key: str, users: tuple, home: Path, port: int):
        import asyncssh

        authorized = asyncssh.import_authorized_keys(public_key) if public_key.strip() else None

        def factory():
            return _server_class()(authorized, users)

        def options(port_):
            return dict(server_host_keys=[self.host_key], process_factory=lambda p: _serve(p, home, users),
                        sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(home).encode()),
                        allow_scp=True, encoding=None, line_editor=False, agent_forwarding=False,
                        x11_forwarding=False, keepalive_interval=0)

        for candidate in ([port, 0] if port else [0]):  # the port it had before, while it is free
            try:
                server = await asyncssh.create_server(factory, "127.0.0.1", candidate, **options(candidate))
            except OSError:
                continue
            return server, server.sockets[0].getsockname()[1]
        raise OSError(f"no port for {instance_id}")


async def _close_server(server) -> None:
    server.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 5)


@functools.cache
def _server_class():
    import asyncssh

    class Server(asyncssh.SSHServer):
        """Public-key auth with the instance's key pair, as the image's user; -L to this machine only."""

        def __init__(self, authorized, users):
            self.authorized, self.users = authorized, users
            self.user = ""

        def begin_auth(self, username: str) -> bool:
            self.user = username
            return True

        def public_key_auth_supported(self) -> bool:
            return True

        def validate_public_key(self, username: str, key) -> bool:
            if username not in self.users or self.authorized is None:
                return False
            return self.authorized.validate(key, "127.0.0.1", "127.0.0.1") is not None

        def password_auth_supported(self) -> bool:
            return False

        def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int):
            return dest_host in LOCAL_HOSTS

        def server_requested(self, listen_host: str, listen_port: int):
            return False

    return Server


async def _serve(process, home: Path, users: tuple) -> None:
    """A command (`bash -c`), or a login shell (with a pseudo-terminal when the client asked for one), in the
    instance's home, with HOME set to it."""
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")}
    user = process.get_extra_info("username") or users[0]
    env.update({"HOME": str(home), "USER": user, "LOGNAME": user, "SHELL": "/bin/bash", "PWD": str(home)})
    for key, value in (process.env or {}).items():
        key = key.decode() if isinstance(key, bytes) else key
        value = value.decode() if isinstance(value, bytes) else value
        if key.startswith(("LC_", "AMAZONEI_")) or key in ("LANG", "TERM"):
            env[key] = value
    command = process.command
    terminal = process.get_terminal_type()
    if terminal:
        env["TERM"] = terminal
    argv = ["/bin/bash", "-c", command] if command is not None else ["/bin/bash", "-l"]
    try:
        if terminal:
            code = await _with_pty(process, argv, home, env)
        else:
            code = await _with_pipes(process, argv, home, env)
    except Exception as err:  # noqa: BLE001 - the client sees why, not a dropped connection
        with contextlib.suppress(Exception):
            process.stderr.write(f"sandbox: {err}\n".encode())
        code = 255
    process.exit(code)


async def _with_pipes(process, argv, home, env) -> int:
    child = await asyncio.create_subprocess_exec(*argv, cwd=str(home), env=env, stdin=asyncio.subprocess.PIPE,
                                                 stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                 start_new_session=True)

    async def pump_out(source, sink):
        while chunk := await source.read(65536):
            sink.write(chunk)
            with contextlib.suppress(Exception):
                await sink.drain()

    async def pump_in():
        try:
            while chunk := await process.stdin.read(65536):
                child.stdin.write(chunk)
                await child.stdin.drain()
        except Exception:  # noqa: BLE001,S110 - the command stopped reading: its exit status tells
            pass
        finally:
            with contextlib.suppress(Exception):
                child.stdin.close()

    feeding = asyncio.ensure_future(pump_in())
    try:
        await asyncio.gather(pump_out(child.stdout, process.stdout), pump_out(child.stderr, process.stderr))
        code = await child.wait()
    finally:
        feeding.cancel()
        if child.returncode is None:  # the client went away: end the command's whole group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, 15)
    return code if code >= 0 else 128 - code


async def _with_pty(process, argv, home, env) -> int:
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    width, height = process.get_terminal_size()[:2]
    with contextlib.suppress(OSError):
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", height or 24, width or 80, 0, 0))
    child = await asyncio.create_subprocess_exec(*argv, cwd=str(home), env=env, stdin=slave, stdout=slave,
                                                 stderr=slave, start_new_session=True)
    os.close(slave)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def readable():
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b""
        if data:
            process.stdout.write(data)
        else:
            loop.remove_reader(master)
            done.set()

    loop.add_reader(master, readable)

    async def pump_in():
        with contextlib.suppress(Exception):
            while chunk := await process.stdin.read(65536):
                os.write(master, chunk)

    feeding = asyncio.ensure_future(pump_in())
    try:
        code = await child.wait()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), 1)
    finally:
        feeding.cancel()
        with contextlib.suppress(Exception):
            loop.remove_reader(master)
        os.close(master)
    return code if code >= 0 else 128 - code


def _instances_of(backend):
    for reservation in getattr(backend, "reservations", {}).values():
        yield from reservation.instances


def _tags_of(backend, resource_id: str) -> dict:
    return dict(getattr(backend, "tags", {}).get(resource_id, {}))


def _untag(backend, instance_id: str) -> None:
    if SSH_PORT_TAG in _tags_of(backend, instance_id):
        backend.delete_tags([instance_id], {SSH_PORT_TAG: None})


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
