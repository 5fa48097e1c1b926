import sys

try:
    from amazonei_setup.cli.main import entry
except KeyboardInterrupt:  # Ctrl-C while Python loads the program: nothing was done, so no traceback either
    sys.exit(130)

entry()
