"""Where the tool keeps its files: logs, sandbox state, created key files.

Everything lives under one directory, `~/.amazonei-setup` unless `AMAZONEI_SETUP_HOME` says
otherwise (tests point it at a temporary directory so they never touch the real home). The one
exception is what can always be rebuilt: with `XDG_CACHE_HOME` set, the cache goes where it says.
"""
import os
from pathlib import Path


def app_home() -> Path:
    """RuntimeError when neither AMAZONEI_SETUP_HOME nor a home directory is known."""
    return Path(os.environ.get("AMAZONEI_SETUP_HOME") or Path.home() / ".amazonei-setup")


def ssh_dir() -> Path:
    """Where new private keys go by default. RuntimeError when no home directory is known."""
    return Path.home() / ".ssh"


def logs_dir() -> Path:
    return app_home() / "logs"


def cache_dir() -> Path:
    """Derived files the tool can always rebuild (botocore's parsed models): under $XDG_CACHE_HOME when the
    user keeps caches there (it is set only on purpose: the XDG default, ~/.cache, is not assumed), else in the
    tool's home. The test suite points it at one directory shared by its processes, so the models each new
    process loads are parsed once per test run rather than once per test."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative path is invalid and must be ignored
        return Path(xdg) / "amazonei-setup"
    return app_home() / "cache"


def sandbox_dir() -> Path:
    return app_home() / "sandbox"


def unusable(directory: Path) -> str | None:
    """Why a file could not be created in `directory` (making any missing directories on the way), or None.

    Only looks: nothing is created, so a run can check every local path before its first AWS call instead of
    failing after resources exist. Writability is asked of the nearest existing ancestor (os.access, which also
    knows read-only file systems; root may write anywhere else)."""
    probe = directory
    try:
        while not probe.exists():  # False, not an error, for a path under a regular file
            if probe.parent == probe:
                break
            probe = probe.parent
        if not probe.is_dir():
            return f"{probe} is a file, not a directory"
        if not os.access(probe, os.W_OK | os.X_OK):
            return f"{probe} is not writable for you"
    except OSError as err:  # e.g. a parent that cannot be searched
        return f"{probe} cannot be reached ({err.strerror or err})"
    return None
