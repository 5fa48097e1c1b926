"""Your code on the machine: `--workdir DIR` copied to ~/workdir on every instance, and `--setup-script FILE` run once
there after the copy. Both over the system ssh with the tool's Host block (remote.py).

The copy: rsync when this machine and the instance both have it (only what changed travels), else a tar stream made
here and unpacked there (`ssh NAME tar -x`). `.git` and what DIR/.gitignore names are skipped; over SIZE_LIMIT the copy
asks first (or needs --yes). Nothing local is written, so a Ctrl-C during a copy leaves nothing half-written here
(the instance keeps what arrived; the next copy replaces it).

The script: `bash -s` in ~/workdir with the deployment's facts in the environment (AMAZONEI_SETUP_NAME, _REGION,
_ACCELERATOR, _INSTANCE_ID), its output streamed to stderr prefixed per instance and kept in a log under the tool's
logs directory. Once per instance: a marker (~/.amazonei-setup/setup-script.done) makes a re-run of setup skip it
unless --rerun-setup. A failure is the result's `setup_script` (exit 1), never a rollback: the deployment is kept.
"""
from __future__ import annotations

import fnmatch
import io
import os
import shlex
import subprocess
import tarfile
import threading
import time
from pathlib import Path

SIZE_LIMIT = 200 * 1024 * 1024  # a work directory bigger than this asks first: likely data or a venv by mistake
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

def sync_all(args, env, ui, targets, directory: str) -> dict:
    """Copy `directory` to ~/workdir on every target. Returns what the result shows: {bytes, files, method}."""
    from amazonei_setup.core.errors import ToolError, UsageError
    from amazonei_setup.core.events import Event

    root = Path(directory).expanduser()
    if not root.is_dir():
        raise UsageError(f"--workdir {directory}: no such directory: pass an existing path.")
    files = files_of(root)
    total = sum(size for _, _, size in files)
    if total > SIZE_LIMIT and not args.yes:
        question = (f"--workdir {directory} holds {human(total)} (over {human(SIZE_LIMIT)}) to copy to each instance. "
                    "Copy it?")
        asker = getattr(env, "asker", None)
        if asker is None or not getattr(asker, "interactive", False) or not asker.confirm(question, default=False):
            raise UsageError(f"--workdir {directory} holds {human(total)}, over the {human(SIZE_LIMIT)} a copy takes "
                             "without asking: pass --yes to copy it anyway, or list what to skip in its .gitignore.")
    for target in targets:
        ui.progress(Event("start", "workdir", f"Copying {directory} to {target.label}:~/workdir ({len(files)} "
                                               f"files, {human(total)})...", target.instance_id))
        method = "rsync" if _has_rsync(target) else "tar"
        started = time.monotonic()
        code, sent, detail = (_rsync if method == "rsync" else _tar)(target, root, files)
        if code != 0:
            raise ToolError(f"Copying {directory} to {target.label} failed ({method}, exit {code}"
                            f"{': ' + detail if detail else ''}): check that `ssh {target.label} true` works, then "
                            "run the same command again (the deployment is kept).", code="workdir")
        ui.progress(Event("done", "workdir", f"Copied {directory} to {target.label}:~/workdir ({human(sent)} in "
                                              f"{time.monotonic() - started:.1f} s, {method})", target.instance_id))
    return {"directory": str(root), "files": len(files), "bytes": total}


def _has_rsync(target) -> bool:
    import shutil

    if shutil.which("rsync") is None:
        return False
    done = subprocess.run([*target.ssh[:-1], "-T", target.ssh[-1], "command -v rsync"], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    return done.returncode == 0 and bool(done.stdout.strip())


def _rsync(target, root: Path, files) -> tuple[int, int, str]:
    listing = "\0".join(relative for relative, _, _ in files).encode()
    argv = ["rsync", "-a", "--from0", "--files-from=-", "-e", shlex.join(target.ssh[:-1]), f"{root}/",
            f"{target.ssh[-1]}:workdir/"]
    done = subprocess.run(argv, input=listing, capture_output=True)
    return done.returncode, sum(size for _, _, size in files), done.stderr.decode(errors="replace").strip()[-300:]


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


def _tar(target, root: Path, files) -> tuple[int, int, str]:
    command = 'mkdir -p "$HOME/workdir" && tar -x -f - -C "$HOME/workdir"'
    child = subprocess.Popen([*target.ssh[:-1], "-T", target.ssh[-1], command], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(child.stderr.read()), daemon=True)
    reader.start()
    counter = _Counter(child.stdin)
    try:
        with tarfile.open(fileobj=counter, mode="w|", format=tarfile.PAX_FORMAT) as archive:
            for relative, path, _ in files:
                archive.add(path, arcname=relative, recursive=False)
        child.stdin.close()
    except BrokenPipeError:
        pass
    except BaseException:  # Ctrl-C: end the copy; nothing local was written
        child.terminate()
        raise
    code = child.wait()
    reader.join(timeout=5)
    return code, counter.count, b"".join(errors).decode(errors="replace").strip()[-300:]


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
    for target in pending:
        code = codes[target.instance_id]
        result["instances"].append({"instance_id": target.instance_id, "host": target.label, "exit_code": code})
        if code:
            result["ok"] = False
    return result


def _run_with_input(remote, targets, command: str, body: bytes, env, keep) -> dict[str, int]:
    """remote.run_all with the script on each ssh's stdin; both output streams go to stderr (stdout is the result)."""
    out = remote._writer(env.stderr)
    codes: dict[str, int] = {}
    with remote._children() as children:
        pumps = []
        for target in targets:
            child = subprocess.Popen([*target.ssh[:-1], "-T", target.ssh[-1], command], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            children.append(child)
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
