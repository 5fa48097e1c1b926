"""`permissions [--accelerator ei|inf2|gpu] [--access ssh|ssm]`: the IAM policy document a user needs to run
this tool, on stdout (text: the document itself, ready for `aws iam create-policy --policy-document file://...`;
json: inside the tool's envelope). No AWS call: the actions are data in amazonei_setup/permissions.py."""
from __future__ import annotations

from amazonei_setup.cli.commands import Result
from amazonei_setup.cli.environment import Environment


def run(args, env: Environment, ui, aws) -> Result:
    from amazonei_setup.core import permissions

    family, access = args.accelerator, getattr(args, "access", None) or "ssh"
    document = permissions.policy(family, access)
    return Result("permissions", {"accelerator": family, "access": access, "policy": document,
                                  "commands": sorted({c for g in permissions.grants(family, access)
                                                      for c in g.commands})},
                  view="policy")
