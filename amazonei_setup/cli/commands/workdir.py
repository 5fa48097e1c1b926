"""Your code on the machine: `--workdir DIR` copied to ~/workdir on every instance, and `--setup-script FILE` run once
there after the copy. Both over the system ssh with the tool's Host block (remote.py).

The copy: rsync when this machine and the instance both have it (only what changed travels; its --stats say how
much), else a tar stream made here and unpacked there (`ssh NAME tar -x`). `.git` and what DIR/.gitignore names are
skipped. Over SIZE_LIMIT the copy asks first on a terminal (setup: before it creates anything) and otherwise needs
--yes. Nothing local is written, so a Ctrl-C during a copy leaves nothing half-written here; the instance keeps what
arrived, nothing there marks it complete, and the next copy replaces it. Setup's deployment is complete by then, so
its first Ctrl-C is absorbed (core/interrupts.py) and only wakes `interrupts.requested()`: the copy and the script
watch it, end their ssh here and raise Stopped (after a stopped copy the script does not run; a stopped script may
run on there, as a command does under sshd once its client is gone); elsewhere (exec) Ctrl-C raises as usual.

The script: `bash -s` in ~/workdir with the deployment's facts in the environment (AMAZONEI_SETUP_NAME, _REGION,
_ACCELERATOR, _INSTANCE_ID), its output streamed to stderr prefixed per instance and kept in a log under the tool's
logs directory. Once per instance: a marker (~/.amazonei-setup/setup-script.done) makes a re-run of setup skip it
unless --rerun-setup. A failure is the result's `setup_script` (exit 1), never a rollback: the deployment is kept.
"""
from __future__ import annotations

import contextlib
import fnmatch
import io
import os
import re
import shlex
import subprocess
import tarfile
import tempfile
import threading
import time
from pathlib import Path

SIZE_LIMIT = 200 * 1000 * 1000  # bigger asks first: likely data or a venv by mistake (MB as human() and the README say)
MARKER = ".amazonei-setup/setup-script.done"


# ---- which files ----------------------------------------------------------------------------------------------

def _ignore_rules(root: Path) -> list[tuple[str, bool, bool]]:
    """DIR/.gitignore's patterns as (pattern, negated, directory only); the common subset of gitignore's syntax."""
    try:
        lines = (root / ".gitignore").read_text(errors="replace").splitlines()
    except OSError:
        return []
    rules = []
    for line in lines:
        line = line.rstrip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line[1:] if negated else line
        directory = line.endswith("/")
        rules.append((line.strip("/") if "/" in line.rstrip("/") else line.rstrip("/"), negated, directory))
    return rules


def _ignored(relative: str, is_dir: bool, rules) -> bool:
    name = relative.rsplit("/", 1)[-1]
    ignored = False
    for pattern, negated, directory in rules:
        if directory and not is_dir:
            continue
        anchored = "/" in pattern
        target = relative if anchored else name
        if fnmatch.fnmatchcase(target, pattern.lstrip("/")) or (
                "**" in pattern and fnmatch.fnmatchcase(relative, pattern.replace("**/", "*"))):
            ignored = not negated
    return ignored


def files_of(root: Path) -> list[tuple[str, Path, int]]:
    """(path relative to root, path, size) of every file to copy, directories included (size 0), sorted."""
    rules = _ignore_rules(root)
    found = []
    for current, dirs, files in os.walk(root):
        here = Path(current)
        keep = []
        for d in sorted(dirs):
            relative = (here / d).relative_to(root).as_posix()
            if d == ".git" or _ignored(relative, True, rules):
                continue
            keep.append(d)
            found.append((relative, here / d, 0))
        dirs[:] = keep
        for f in sorted(files):
            path = here / f
            relative = path.relative_to(root).as_posix()
            if _ignored(relative, False, rules):
                continue
            try:
                size = path.lstat().st_size
            except OSError:
                continue
            found.append((relative, path, size))
    return found


def human(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"  # pragma: no cover


# ---- the copy -------------------------------------------------------------------------------------------------

class Stopped(Exception):
    """A signal stopped the copy to `label` part-way, or the setup script (`what`), after setup's absorbed Ctrl-C."""

    def __init__(self, label: str, what: str = "copy"):
        super().__init__(label)
        self.label, self.what = label, what


def check_size(args, asker, directory: str) -> None:
    """Over SIZE_LIMIT: a terminal is asked (default no), anything else needs --yes. Raises UsageError when not."""
    from amazonei_setup.core.errors import UsageError

    total = sum(size for _, _, size in files_of(Path(directory).expanduser()))
    if total <= SIZE_LIMIT or args.yes:
        return
    if asker is None or not getattr(asker, "interactive", False):
        raise UsageError(f"--workdir {directory} holds {human(total)}, over the {human(SIZE_LIMIT)} a copy takes "
                         "without asking: pass --yes to copy it anyway, or list what to skip in its .gitignore.")
    question = (f"--workdir {directory} holds {human(total)} (over {human(SIZE_LIMIT)}) to copy to each instance. "
                "Copy it?")
    if not asker.confirm(question, default=False):
        raise UsageError(f"--workdir {directory} was not copied (you answered no): list what to skip in its "
                         f".gitignore and run again, or pass --yes to copy all {human(total)}.")


def _asker(args, env):
    """The asker a command without a wizard uses: a test's, else questionary on a terminal, else none."""
    if getattr(env, "asker", None) is not None:
        return env.asker
    if args.yes or not getattr(env, "stdin_isatty", False):
        return None
    from amazonei_setup.cli.commands.common import asker_for

    return asker_for(args, env)


def sync_all(args, env, ui, targets, directory: str, *, size_checked: bool = False) -> dict:
    """Copy `directory` to ~/workdir on every target. Returns what the result shows: {directory, files, bytes,
    method, sent (bytes on the wire, all instances), changed (the most files one instance received), instances: the
    same per instance}. size_checked: the caller already ran check_size (setup, before creating)."""
    from amazonei_setup.core import interrupts
    from amazonei_setup.core.errors import ToolError, UsageError
    from amazonei_setup.core.events import Event

    root = Path(directory).expanduser()
    if not root.is_dir():
        raise UsageError(f"--workdir {directory}: no such directory: pass an existing path.")
    files = files_of(root)
    total = sum(size for _, _, size in files)
    if not size_checked and total > SIZE_LIMIT and not args.yes:  # the asker (prompt_toolkit) only when it asks
        check_size(args, _asker(args, env), directory)
    regular = sum(1 for _, path, _ in files if not path.is_dir())
    stop = interrupts.requested()
    copies = []
    for target in targets:
        if stop.is_set():
            raise Stopped(target.label)
        ui.progress(Event("start", "workdir", f"Copying {directory} to {target.label}:~/workdir ({len(files)} "
                                               f"files, {human(total)})...", target.instance_id))
        method = "rsync" if _has_rsync(target) else "tar"
        started = time.monotonic()
        code, sent, changed, detail = (_rsync if method == "rsync" else _tar)(target, root, files, stop)
        if stop.is_set():  # ended by us, or by the terminal's Ctrl-C reaching ssh too
            raise Stopped(target.label)
        if code != 0:
            raise ToolError(f"Copying {directory} to {target.label} failed ({method}, exit {code}"
                            f"{': ' + detail if detail else ''}): check that `ssh {target.label} true` works, then "
                            "run the same command again (the deployment is kept).", code="workdir")
        what = (f"{changed} of {regular} files changed" if method == "rsync" and changed is not None
                else f"{regular} files")
        ui.progress(Event("done", "workdir", f"Copied {directory} to {target.label}:~/workdir ({what}, {human(sent)} "
                                              f"sent in {time.monotonic() - started:.1f} s, {method})",
                          target.instance_id))
        copies.append({"instance_id": target.instance_id, "host": target.label, "method": method, "sent": sent,
                       "changed": changed if method == "rsync" else regular})
    return {"directory": str(root), "files": len(files), "bytes": total,
            "method": "+".join(sorted({each["method"] for each in copies})) or None,
            "sent": sum(each["sent"] for each in copies),
            "changed": max((each["changed"] or 0 for each in copies), default=0), "instances": copies}


def _has_rsync(target) -> bool:
    import shutil

    if shutil.which("rsync") is None:
        return False
    done = subprocess.run([*target.ssh[:-1], "-T", target.ssh[-1], "command -v rsync"], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    return done.returncode == 0 and bool(done.stdout.strip())


def _ended_on(stop: threading.Event, child: subprocess.Popen) -> threading.Thread:
    """Terminate `child` once `stop` is set (setup's absorbed Ctrl-C), while it runs; the caller's thread is busy
    feeding or waiting for it."""
    def watch():
        while child.poll() is None:
            if stop.wait(0.2):
                with contextlib.suppress(OSError):
                    child.terminate()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def _end(child: subprocess.Popen) -> None:
    """Ctrl-C in this thread (exec): the copy's child ends with it."""
    if child.poll() is None:
        child.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)


def _number(stats: str, label: str) -> int | None:
    """A figure of rsync's --stats (`Total bytes sent: 1,234`: separators by locale and version)."""
    found = re.search(rf"^{label}: ([\d,.]+)", stats, re.M)
    return int(re.sub(r"\D", "", found.group(1))) if found else None


def _rsync(target, root: Path, files, stop) -> tuple[int, int, int | None, str]:
    listing = "\0".join(relative for relative, _, _ in files).encode()
    argv = ["rsync", "-a", "--stats", "--from0", "--files-from=-", "-e", shlex.join(target.ssh[:-1]), f"{root}/",
            f"{target.ssh[-1]}:workdir/"]
    # Files, not pipes, for its output: rsync's ssh inherits them, and a stopped rsync's ssh may outlive it
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=err)
        try:
            _ended_on(stop, child)
            with contextlib.suppress(BrokenPipeError):
                child.stdin.write(listing)
                child.stdin.close()
            code = child.wait()
        except BaseException:
            _end(child)
            raise
        out.seek(0)
        err.seek(0)
        stats, detail = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    sent = _number(stats, "Total bytes sent")
    changed = _number(stats, "Number of regular files transferred")
    if changed is None:
        changed = _number(stats, "Number of files transferred")  # rsync 2.x
    return code, sent if sent is not None else sum(size for _, _, size in files), changed, detail.strip()[-300:]


class _Counter(io.RawIOBase):
    """A write-only stream into ssh's stdin that counts the bytes."""

    def __init__(self, sink):
        self.sink, self.count = sink, 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.sink.write(data)
        self.count += len(data)
        return len(data)


def _tar(target, root: Path, files, stop) -> tuple[int, int, None, str]:
    command = 'mkdir -p "$HOME/workdir" && tar -x -f - -C "$HOME/workdir"'
    child = subprocess.Popen([*target.ssh[:-1], "-T", target.ssh[-1], command], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(child.stderr.read()), daemon=True)
    reader.start()
    _ended_on(stop, child)
    counter = _Counter(child.stdin)
    try:
        with tarfile.open(fileobj=counter, mode="w|", format=tarfile.PAX_FORMAT) as archive:
            for relative, path, _ in files:
                archive.add(path, arcname=relative, recursive=False)
        child.stdin.close()
    except BrokenPipeError:  # ssh ended: its exit status (or the stop) says why
        with contextlib.suppress(OSError):
            child.stdin.close()
    except BaseException:  # Ctrl-C (exec): end the copy; nothing local was written
        _end(child)
        raise
    code = child.wait()
    reader.join(timeout=5)
    return code, counter.count, None, b"".join(errors).decode(errors="replace").strip()[-300:]


# ---- the setup script -----------------------------------------------------------------------------------------

def log_file(name: str) -> Path:
    from amazonei_setup.local import paths

    directory = paths.logs_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory / f"setup-script-{name}-{time.strftime('%Y%m%d-%H%M%S')}.log"


def run_script(args, env, ui, targets, script: str, facts: dict[str, str], *, rerun: bool) -> dict:
    """Run `script` on every target (at once) unless it already ran there and not `rerun`. Returns the result's
    `setup_script`: {ok, log, instances: [{instance_id, host, exit_code | skipped}]}."""
    from amazonei_setup.cli.commands import remote
    from amazonei_setup.core.events import Event

    path = Path(script).expanduser()
    body = path.read_bytes()
    pending = targets
    skipped = []
    if not rerun:
        pending = []
        for target in targets:
            done = subprocess.run([*target.ssh[:-1], "-T", target.ssh[-1], f'test -e "$HOME/{MARKER}"'],
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
            (skipped if done.returncode == 0 else pending).append(target)
    for target in skipped:
        ui.progress(Event("done", "setup-script", f"Setup script already ran on {target.label}: skipped (pass "
                                                   "--rerun-setup to run it again)", target.instance_id))
    result = {"script": str(path), "log": None, "ok": True,
              "instances": [{"instance_id": t.instance_id, "host": t.label, "skipped": True} for t in skipped]}
    if not pending:
        return result
    log = log_file(args.name)
    result["log"] = str(log)
    lock = threading.Lock()
    with open(log, "ab") as sink:
        os.chmod(log, 0o600)

        def keep(label: str, line: bytes) -> None:
            with lock:
                sink.write(f"[{label}] ".encode() + line)
                sink.flush()

        ui.stop_status()
        ui.progress(Event("start", "setup-script", f"Running {path.name} on {', '.join(t.label for t in pending)} "
                                                    f"(log: {log})...", ""))
        environment = {f"AMAZONEI_SETUP_{key.upper()}": value for key, value in facts.items()}
        command = (remote.remote_command(["bash", "-s"], environment) +
                   f'; code=$?; [ $code -eq 0 ] && mkdir -p "$HOME/.amazonei-setup" && touch "$HOME/{MARKER}"; '
                   "exit $code")
        codes = _run_with_input(remote, pending, command, body, env, keep)
    from amazonei_setup.core import interrupts

    if interrupts.requested().is_set():  # this end stopped by the absorbed Ctrl-C (an instance's may finish)
        raise Stopped(", ".join(t.label for t in pending if codes[t.instance_id]) or pending[0].label, "script")
    for target in pending:
        code = codes[target.instance_id]
        result["instances"].append({"instance_id": target.instance_id, "host": target.label, "exit_code": code})
        if code:
            result["ok"] = False
    return result


def _run_with_input(remote, targets, command: str, body: bytes, env, keep) -> dict[str, int]:
    """remote.run_all with the script on each ssh's stdin; both output streams go to stderr (stdout is the result).
    Setup's absorbed Ctrl-C ends each ssh here; on the instance the script may run on (sshd sends no signal)."""
    from amazonei_setup.core import interrupts

    out = remote._writer(env.stderr)
    codes: dict[str, int] = {}
    with remote._children() as children:
        pumps = []
        for target in targets:
            child = subprocess.Popen([*target.ssh[:-1], "-T", target.ssh[-1], command], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            children.append(child)
            _ended_on(interrupts.requested(), child)
            prefix = f"[{target.label}] ".encode()
            for stream in (child.stdout, child.stderr):
                pumps.append(remote._pump(stream, out, prefix, lambda line, t=target: keep(t.label, line)))
            try:
                child.stdin.write(body)
                child.stdin.close()
            except BrokenPipeError:
                pass
        for pump in pumps:
            pump.join()
        for target, child in zip(targets, children, strict=True):
            codes[target.instance_id] = child.wait()
    return codes
