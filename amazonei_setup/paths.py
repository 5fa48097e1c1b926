"""Where the tool keeps its files: logs, sandbox state, created key files.

Everything lives under one directory, `~/.amazonei-setup` unless `AMAZONEI_SETUP_HOME` says
otherwise (tests point it at a temporary directory so they never touch the real home).
"""
import os
from pathlib import Path


def app_home() -> Path:
    return Path(os.environ.get("AMAZONEI_SETUP_HOME") or Path.home() / ".amazonei-setup")


def logs_dir() -> Path:
    return app_home() / "logs"


def sandbox_dir() -> Path:
    return app_home() / "sandbox"
