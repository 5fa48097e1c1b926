#!/usr/bin/env python3
"""Launcher: `python amazonei_setup.py ...` (all logic lives in the amazonei_setup package)."""
import sys

from amazonei_setup.cli import main

if __name__ == "__main__":
    sys.exit(main())
