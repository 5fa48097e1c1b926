"""The sandbox as a small background server, so each `--sandbox` command answers like a CLI.

Opening the emulated account in every command cost 3-6 s (importing moto, building its EC2 regions,
unpickling and saving the state) for work that takes a fraction of a second. So the first `--sandbox` command
starts one server per state directory (`python -m amazonei_setup.sandbox.server DIR`, in its own session, so a
Ctrl-C in the terminal does not reach it) and later commands reuse it: they only read `server.json` and talk
HTTP to 127.0.0.1. The command side (`connect`, `stop`) imports no moto.

The server
* owns the state directory through `Sandbox` (its flock: one server per directory; a second one exits with
  ALREADY_RUNNING and the command uses the first);
* saves the account after every request that can change it, before answering: a command that was told
  "created" never loses it, whatever happens to the command or the server afterwards (a save is ~3 ms);
* seeds the Deep Learning AMIs of a region the first time a request names that region;
* stops by itself after `IDLE_S` seconds without a request (saving first), on SIGTERM, on
  `POST /amazonei-sandbox/stop`, and at once, without saving, when its `server.json` is gone or names another
  server (the directory was reset with `rm -rf`).
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from amazonei_setup.local import paths

SERVER_FILE = "server.json"
SERVER_LOG = "server.log"
SERVER_ERROR = "server.error"
SERVER_STARTING = "server.starting"  # the pid of a server started but not yet serving (so it can be stopped too)
IDLE_S = float(os.environ.get("AMAZONEI_SETUP_SANDBOX_IDLE_S", "900"))
START_TIMEOUT_S = 60.0
ALREADY_RUNNING = 3  # exit code of a server that found another one owning the directory
CONTROL = "/amazonei-sandbox/"
READ_ONLY_PREFIXES = ("Describe", "List", "Get")  # AWS's naming for calls that change nothing


IDENTITY_VARIABLE = "AMAZONEI_SETUP_SANDBOX_IDENTITY"  # set by the command that starts a server: what it reports


def identity() -> str:
    """What a running server must match to be reused: this interpreter, this package's code, this moto. A server
    left by an older checkout or another venv is stopped and replaced, not silently talked to. A server reports
    the identity its starter computed (the same code, so the same value, without reading the files again)."""
    from importlib.metadata import PackageNotFoundError, version

    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in ("account.py", "server.py", "moto_speed.py", "ssh.py"):
        digest.update((package / name).read_bytes())
    try:
        moto_version = version("moto")
    except PackageNotFoundError:
        moto_version = "none"
    return f"{sys.executable}|{package}|moto {moto_version}|{digest.hexdigest()[:16]}"


# ---- the command side ---------------------------------------------------------------------------------------

class SandboxUnavailable(RuntimeError):
    """The server could not be started or reached; the message is the sentence to show."""


class Connection:
    """What a command needs to talk to the sandbox account (the in-process `Sandbox` offers the same)."""

    def __init__(self, endpoint_url: str, account_id: str, started: bool):
        from amazonei_setup.sandbox.account import SANDBOX_ACCOUNT_ID

        self.endpoint_url = endpoint_url
        self.account_id = account_id or SANDBOX_ACCOUNT_ID
        self.credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self.started = started  # this command started the server (the first one pays ~2 s)


def connect(state_dir: Path | None = None, timeout: float = START_TIMEOUT_S) -> Connection:
    """The running server for `state_dir` (the user's sandbox by default), started first if none answers."""
    state_dir = Path(state_dir) if state_dir is not None else paths.sandbox_dir()
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    me = identity()
    spawned: subprocess.Popen | None = None
    deadline = time.monotonic() + timeout
    while True:
        info = _read_info(state_dir)
        if info is not None:
            status = _status(info)
            if status is not None and status.get("identity") == me:
                return Connection(f"http://127.0.0.1:{info['port']}", status.get("account_id", ""),
                                  started=spawned is not None)
            if status is not None:  # another version of the tool: replace it
                _stop_and_wait(info, state_dir, deadline)
                continue
        if spawned is None:
            spawned = _spawn(state_dir)
        elif spawned.poll() is not None and spawned.returncode != ALREADY_RUNNING:
            raise SandboxUnavailable(_failure(state_dir, spawned.returncode))
        elif spawned.poll() == ALREADY_RUNNING and info is None:
            spawned = None  # the winner of a start race has not written its file yet, or just died: try again
        if time.monotonic() >= deadline:
            raise SandboxUnavailable(
                f"The sandbox server did not start within {timeout:g} s; see {state_dir / SERVER_LOG}, or reset "
                f"the sandbox with `rm -rf {state_dir}`.")
        time.sleep(0.02)


def find(state_dir: Path | None = None) -> Connection | None:
    """The running server for `state_dir` if one of this version answers; None otherwise (nothing is started)."""
    state_dir = Path(state_dir) if state_dir is not None else paths.sandbox_dir()
    info = _read_info(state_dir)
    status = _status(info) if info is not None else None
    if status is None or status.get("identity") != identity():
        return None
    return Connection(f"http://127.0.0.1:{info['port']}", status.get("account_id", ""), started=False)


def stop(state_dir: Path | None = None, timeout: float = 30.0) -> bool:
    """Stop the server of `state_dir` (it saves first); True if one was running."""
    state_dir = Path(state_dir) if state_dir is not None else paths.sandbox_dir()
    info = _read_info(state_dir)
    if info is None:  # perhaps one that is still starting (its command was stopped before it answered)
        info = _starting(state_dir)
        if info is None:
            return False
    if not _alive(info["pid"]):
        return False
    _stop_and_wait(info, state_dir, time.monotonic() + timeout)
    return True


def _starting(state_dir: Path) -> dict | None:
    """The server named by `server.starting`, if that file is fresh and its pid is still that server: a stale file
    (a server that died while starting) must never get another process, which reused the pid, a SIGTERM."""
    marker = state_dir / SERVER_STARTING
    try:
        if time.time() - marker.stat().st_mtime > START_TIMEOUT_S:
            return None
        pid = int(marker.read_text())
    except (OSError, ValueError):
        return None
    for _ in range(25):  # a child just forked shows its parent's command line until it execs (milliseconds)
        try:
            if b"amazonei_setup.sandbox.server" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return {"pid": pid, "port": 0}
        except OSError:
            return {"pid": pid, "port": 0} if not Path("/proc/self").exists() else None  # macOS: freshness only
        time.sleep(0.02)
    return None


def _read_info(state_dir: Path) -> dict | None:
    try:
        return json.loads((state_dir / SERVER_FILE).read_text())
    except (FileNotFoundError, ValueError, OSError):
        return None


def _request(info: dict, method: str, path: str, timeout: float = 5.0) -> dict | None:
    connection = http.client.HTTPConnection("127.0.0.1", info["port"], timeout=timeout)
    try:
        connection.request(method, path)
        reply = connection.getresponse()
        return json.loads(reply.read() or b"{}") if reply.status == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def _status(info: dict) -> dict | None:
    if not _alive(info.get("pid", 0)):
        return None
    status = _request(info, "GET", CONTROL + "status")
    return status if status is not None and status.get("pid") == info["pid"] else None


def _stop_and_wait(info: dict, state_dir: Path, deadline: float) -> None:
    if _request(info, "POST", CONTROL + "stop") is None and _alive(info["pid"]):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(info["pid"], signal.SIGTERM)
    while _alive(info["pid"]):
        if time.monotonic() >= deadline:
            raise SandboxUnavailable(f"The sandbox server (process {info['pid']}) does not stop; end it with "
                                     f"`kill {info['pid']}` and try again.")
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0). Our own child we reap here; an orphan waits for PID 1 to reap it, which some
    # inits do only every few seconds and a container's shell as PID 1 never does: every stop waited ~2 s for a
    # server that had already exited, and could wait out its deadline. Linux says so in /proc/PID/stat.
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return not _exited(pid)


def _exited(pid: int) -> bool:
    """True if `pid` has exited and only waits to be reaped (a zombie); False where /proc cannot tell (macOS)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rpartition(")")[2].split()  # "pid (command name, may hold spaces) STATE ..."
    return bool(fields) and fields[0] in ("Z", "X")


def _spawn(state_dir: Path) -> subprocess.Popen:
    (state_dir / SERVER_ERROR).unlink(missing_ok=True)
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env[IDENTITY_VARIABLE] = identity()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    log = open(state_dir / SERVER_LOG, "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        server = subprocess.Popen(
            [sys.executable, "-m", "amazonei_setup.sandbox.server", str(state_dir)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd=package_root,
            start_new_session=True, close_fds=True)  # its own session: the terminal's Ctrl-C is the command's
    finally:
        log.close()
    _write_atomically(state_dir / SERVER_STARTING, str(server.pid))
    return server


def _failure(state_dir: Path, code: int | None) -> str:
    try:
        return (state_dir / SERVER_ERROR).read_text().strip()
    except OSError:
        return f"The sandbox server stopped as it started (exit {code}); see {state_dir / SERVER_LOG}."


def reset(state_dir=None, lock_timeout: float | None = None) -> bool:
    """Delete the saved sandbox state (its server stopped first: it would write the account back); True if there
    was any."""
    from amazonei_setup.sandbox.account import LOCK_TIMEOUT, STATE_FILE, acquire_lock, release_lock

    state_dir = Path(state_dir) if state_dir is not None else paths.sandbox_dir()
    if not state_dir.is_dir():
        return False
    stop(state_dir)
    fd = acquire_lock(state_dir, LOCK_TIMEOUT if lock_timeout is None else lock_timeout)  # an open sandbox saves
    try:
        for leftover in state_dir.glob(STATE_FILE + ".*.tmp"):  # from a save that died
            leftover.unlink(missing_ok=True)
        try:
            (state_dir / STATE_FILE).unlink()
        except FileNotFoundError:
            return False
        return True
    finally:
        release_lock(fd)


# ---- the server side ----------------------------------------------------------------------------------------

class _Gate:
    """WSGI middleware around moto's app: one request at a time (a save must not see a half-changed account),
    the save after each request that may have changed something, lazy seeding, and the control paths."""

    def __init__(self, app, server: _Server):
        self.app, self.server = app, server
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL):
            self.server.touch()
            return self._control(path[len(CONTROL):], start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        answered: list = []

        def capture(status, headers, exc_info=None):
            answered[:] = [status, headers]
            return lambda data: None  # moto returns its body; it never writes through this

        with self.lock:
            self.server.touch()
            self.server.seed(_region_of(environ))
            chunks = b"".join(self.app(environ, capture))
            if _may_change(environ, body):
                self.server.reconcile_ssh()
                self.server.save()
        start_response(*answered)
        return [chunks]

    def _control(self, action: str, start_response):
        if action == "status":
            reply = {"pid": os.getpid(), "identity": self.server.identity, "account_id": self.server.account_id}
        elif action == "stop":
            reply = {"stopping": True}
            self.server.done.set()
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b"{}"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(reply).encode()]


def _region_of(environ) -> str | None:
    # SigV4: "Credential=testing/20261201/us-west-2/ec2/aws4_request"
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker not in auth:
        return None
    scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
    return scope[2] if len(scope) > 3 else None


def _may_change(environ, body: bytes) -> bool:
    target = environ.get("HTTP_X_AMZ_TARGET", "")  # JSON protocols (SSM, KMS): "AmazonSSM.GetParameter"
    if target:
        action = target.rsplit(".", 1)[-1]
    else:  # query protocols (EC2, IAM, STS, CloudFormation): Action=... in the form body or the query string
        from urllib.parse import parse_qs

        fields = parse_qs(body.decode("utf-8", "replace")) or parse_qs(environ.get("QUERY_STRING", ""))
        action = (fields.get("Action") or [""])[0]
    return not action.startswith(READ_ONLY_PREFIXES)


class _Server:
    def __init__(self, state_dir: Path):
        from amazonei_setup.sandbox.account import STATE_FILE, Sandbox

        self.state_dir = state_dir
        self.sandbox = Sandbox(regions=[], state_dir=state_dir, lock_timeout=0, wrap_app=lambda app: _Gate(app, self))
        self.state_file = state_dir / STATE_FILE
        self.identity = os.environ.get(IDENTITY_VARIABLE) or identity()
        self.account_id = self.sandbox.account_id
        self.done = threading.Event()
        self.last_request = time.monotonic()
        self.seeded: set[str] = set()
        self.discard = False  # the directory was reset: exit without writing the old account back
        self.ssh = None  # ssh.SshServers: the instances' SSH servers (None without asyncssh)

    def reconcile_ssh(self) -> None:
        if self.ssh is None:
            return
        try:
            self.ssh.reconcile(self.account_id)
        except Exception as err:  # noqa: BLE001 - the account's answer stands; SSH says why in the log
            print(f"sandbox ssh: {err!r}", flush=True)

    def touch(self) -> None:
        self.last_request = time.monotonic()

    def seed(self, region: str | None) -> None:
        if region and region not in self.seeded:
            from amazonei_setup.sandbox.account import seed_alternative_amis, seed_deep_learning_amis

            seed_deep_learning_amis(self.account_id, region)
            seed_alternative_amis(self.account_id, region)
            self.seeded.add(region)

    def save(self) -> None:
        from amazonei_setup.sandbox.account import _save_state

        if not self.state_dir.is_dir():  # reset under us (`rm -rf`): this account is not to be written back
            self.discard = True
            self.done.set()
            return
        _save_state(self.state_file)

    def serve(self) -> int:
        from amazonei_setup.sandbox.account import SandboxLocked

        try:
            self.sandbox.__enter__()
        except SandboxLocked:
            return ALREADY_RUNNING
        self.touch()  # idle time counts from here, not from before the ~2 s of loading
        try:
            try:
                from amazonei_setup.sandbox.ssh import SshServers

                self.ssh = SshServers(self.state_dir)
            except ImportError:
                print("sandbox ssh: asyncssh is not installed (pip install 'amazonei-setup[sandbox]'): instances "
                      "do not answer SSH", flush=True)
            self.reconcile_ssh()  # instances left running by the last server answer again (nobody knows our port yet)
            port = int(self.sandbox.endpoint_url.rsplit(":", 1)[1])
            _write_atomically(self.state_dir / SERVER_FILE,
                              json.dumps({"pid": os.getpid(), "port": port, "started": time.time()}))
            (self.state_dir / SERVER_STARTING).unlink(missing_ok=True)
            print(f"sandbox server {os.getpid()} on port {port} for {self.state_dir}", flush=True)
            while not self.done.wait(0.25):
                info = _read_info(self.state_dir)
                if info is None or info.get("pid") != os.getpid():
                    self.discard = True
                    break
                if time.monotonic() - self.last_request > IDLE_S:
                    break
        finally:
            if self.ssh is not None:
                self.ssh.close()
            if self.discard:
                self.sandbox.discard()
            self.sandbox.__exit__(None, None, None)
            if not self.discard:
                info = _read_info(self.state_dir)
                if info is not None and info.get("pid") == os.getpid():
                    (self.state_dir / SERVER_FILE).unlink(missing_ok=True)
        return 0


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # unique per thread too
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    state_dir = Path(argv[0])
    server = _Server(state_dir)
    signal.signal(signal.SIGTERM, lambda *_: server.done.set())
    signal.signal(signal.SIGINT, lambda *_: server.done.set())
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        return server.serve()
    except Exception as err:  # noqa: BLE001 - the command that started us shows this one sentence
        message = str(err) if isinstance(err, RuntimeError) else f"The sandbox server failed to start: {err!r}."
        with contextlib.suppress(OSError):
            _write_atomically(state_dir / SERVER_ERROR, message)
        print(message, file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
