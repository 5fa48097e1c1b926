"""`cost`: what a setup costs per hour and per 100k inferences (issue 7). Placeholder wiring;
the command is being built."""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--instance-type", action="append", required=True, help="EC2 instance type")


def run(args, env, ui, open_aws) -> int:
    from amazonei_setup.errors import UsageError

    raise UsageError("The cost command is not available yet.")
