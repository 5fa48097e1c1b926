#!/usr/bin/env python3
"""Launcher: `python amazonei_setup.py ...` (all logic lives in the amazonei_setup package)."""
import sys

try:
    from amazonei_setup.cli.main import entry
except KeyboardInterrupt:  # Ctrl-C while Python loads the program: nothing was done, so no traceback either
    sys.exit(130)

if __name__ == "__main__":
    entry()
