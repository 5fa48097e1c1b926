"""Shell completion scripts (bash, zsh), generated from the command line's own parser by shtab.

shtab is imported only here, when a script is asked for: `--help` and every other command never load it.
"""
from __future__ import annotations

PROGRAM = "amazonei-setup"  # the console script pip installs; completion attaches to a command name


def script(shell: str, parser) -> str:
    """`parser`: the command line's own (cli.build_parser(completion=True)), handed in so this module needs no cli."""
    import shtab

    parser.prog = PROGRAM
    # Paths complete as paths: where a new key's .pem goes, and where export writes its template.
    for action in _all_actions(parser):
        if action.dest == "key_dir":
            action.complete = shtab.DIRECTORY
        elif action.dest == "out":
            action.complete = shtab.FILE
    return shtab.complete(parser, shell=shell)


def _all_actions(parser):
    import argparse

    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_actions(sub)
