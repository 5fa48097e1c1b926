"""`export`: the same Plan as setup, as a CloudFormation template; `--deploy` creates the stack too.

The result: the template (on stdout without --out), or the file written and the command that deploys it;
with --deploy, setup's ready summary."""
from __future__ import annotations

import dataclasses

from amazonei_setup.cli.commands import Result
from amazonei_setup.cli.commands.common import (
    cancelled,
    check_access_tools,
    check_key_dir,
    next_step_for,
    ready,
    resolve_plan,
    save_template,
)
from amazonei_setup.cli.commands.printed import account_flags, program_name, teardown_command_for
from amazonei_setup.cli.environment import Environment


def run(args, env: Environment, ui, aws) -> Result:
    from amazonei_setup.core.errors import ToolError, UsageError
    from amazonei_setup.flows import cloudformation, deploy

    plan, facts, asker = resolve_plan(args, env, ui, aws)
    if plan.exists:
        raise UsageError(f"Deployment '{plan.name}' already exists in {plan.region} without CloudFormation: choose "
                         "another --name for the stack, or tear the deployment down first.")
    fleet_size = plan.count if plan.count > 1 or args.fleet else None
    if fleet_size and plan.accelerator_type and fleet_size > cloudformation.MAX_EI_FLEET:
        raise UsageError(f"An Elastic Inference fleet template holds one instance resource per member (launch "
                         f"templates cannot carry EI): pass --count {cloudformation.MAX_EI_FLEET} or less.")
    if args.deploy:  # a stack whose instances the vCPU quota cannot hold would only fail and roll back
        from amazonei_setup.cli.commands.setup import quota_preflight

        quota_preflight(plan, facts)
    # A VPC holds one private-DNS EI endpoint: when there is one, the stack lets its instances reach it
    # (443 into the endpoint's group) instead of creating a second one.
    endpoint = next((e for e in facts.endpoints if e.id == plan.endpoint_id), None)
    endpoint_group = endpoint.group_ids[0] if endpoint and endpoint.group_ids else None
    if endpoint and not endpoint_group:
        raise UsageError(f"The VPC's EI endpoint {endpoint.id} has no security group for the stack to open 443 "
                         "into: attach one in the VPC console (Endpoints > Manage security groups), or pick "
                         "another --vpc-id.")
    template = cloudformation.build_template(plan, fleet_size=fleet_size, endpoint_group_id=endpoint_group)
    text = cloudformation.to_yaml(template)
    stack_name = cloudformation.stack_name(plan.name)
    title = f"CloudFormation stack {stack_name}" + ("" if args.deploy else ": template only, nothing is created")
    # Without --deploy a new key pair is the stack's own (AWS::EC2::KeyPair): no .pem is written here.
    ui.show(ui.plan_panel(plan if args.deploy else dataclasses.replace(plan, key_path=None), title=title))
    if not args.deploy:
        return _template(args, plan, text, stack_name, template)
    check_key_dir(args, plan)
    check_access_tools(plan)
    from amazonei_setup.cli.commands.setup import say_ssh_config_plan

    include_asked = say_ssh_config_plan(args, ui, asker, plan)
    if not asker.confirm(f"Create stack {stack_name}?", default=True):
        return cancelled(args, plan)
    if args.out:
        save_template(args.out, text)
    from amazonei_setup.flows import locking

    try:
        with locking.deployment_locked(aws, plan.name, "export --deploy", ui.progress, sleep=env.sleep):
            result = deploy.deploy(aws, plan, template_body=text, fleet_size=fleet_size, report=ui.progress,
                                   sleep=env.sleep, account_flags=account_flags(args),
                                   teardown=teardown_command_for(args, plan.region, plan.name))
    except ToolError as err:
        next_step_for(err, args, plan)
        raise
    done = ready(args, result)
    if plan.via_ssm:  # as setup: ready is the SSM agent Online (the stack's instance opens no port to knock on)
        from amazonei_setup.cli.commands.setup import ssm_readiness

        done.data["ssm_check"] = ssm_readiness(env, ui, aws, result.instances, warnings=done.warnings)
        if done.data["ssm_check"] == "online":
            done.data["waited_for"] = [*done.data["waited_for"], "ssm"]
    _host_entry(args, done, result, include=args.yes or include_asked)
    return done


def _host_entry(args, done: Result, result, *, include: bool) -> None:
    """`ssh NAME` after a deploy, as after setup: the Host block (and the Include line on the same terms), said in
    the result and kept in the local record; teardown removes the block."""
    from amazonei_setup.cli.commands.setup import write_ssh_entries
    from amazonei_setup.cli.commands.status import Access
    from amazonei_setup.local import records

    done.data["ssh_config"] = None
    if not args.no_ssh_config:
        access = Access(result.plan.ssh_user, result.key_path, True, "plan", result.plan.access)
        done.data["ssh_config"] = write_ssh_entries(args, result.plan.region, result.plan.name, result.instances,
                                                    access, done.warnings, include=include)
    records.save(result.plan.region, result.plan.name, done.data, sandbox=args.sandbox)


def _template(args, plan, text: str, stack_name: str, template: dict) -> Result:
    if args.out:
        save_template(args.out, text)
    command = deploy_command(args, plan, stack_name)
    if args.sandbox:  # the template's defaults are the sandbox's own ids: only the sandbox can deploy it
        caption = "The template names the sandbox's ids: deploy it into the sandbox with:"
    else:
        caption = "Deploy it yourself (the tags let `list` and `teardown` find it), or run export again with --deploy:"
    return Result("export", {"format": args.format, "stack_name": stack_name, "path": args.out,
                             "template": None if args.out else text, "deploy_command": command,
                             "plan": plan.to_dict()},
                  view="template", context={"template": text, "caption": caption,
                                            "resources": len(template["Resources"]),
                                            "parameters": len(template["Parameters"])})


def deploy_command(args, plan, stack_name: str) -> str:
    """How to deploy the written template: `aws cloudformation deploy` with the tags `list` and `teardown` find;
    in the sandbox (whose ids no real account has) `export --deploy --sandbox` with the same choices."""
    import shlex

    from amazonei_setup.cli.wizard import opens_to_world
    from amazonei_setup.core import tags

    if args.sandbox:
        return sandbox_deploy_command(args, plan)
    owner_tags = " ".join(shlex.quote(f"{t['Key']}={t['Value']}")
                          for t in tags.tag_list(plan.name, plan.owner, plan.region))
    command = (f"aws cloudformation deploy --region {shlex.quote(plan.region)} --stack-name {shlex.quote(stack_name)} "
               f"--template-file {shlex.quote(args.out) if args.out else 'TEMPLATE.yaml'} "
               f"--capabilities CAPABILITY_NAMED_IAM --tags {owner_tags}")
    if plan.ssh_cidr and opens_to_world(plan.ssh_cidr):  # the template never defaults to an open range: say it
        command += f" --parameter-overrides {shlex.quote(f'SshCidr={plan.ssh_cidr}')}"
    return command


def sandbox_deploy_command(args, plan) -> str:
    """This export again with --deploy: the flags given (the plan's name, so a generated one is kept) and --yes."""
    import shlex

    parts = [*shlex.split(program_name()), "export", "--sandbox", "--region", plan.region]
    for flag, value in (("--instance-type", args.instance_type), ("--accelerator", args.accelerator),
                        ("--accelerator-type", None if args.accelerator else args.accelerator_type),
                        ("--os", args.os), ("--ami-id", args.ami_id), ("--vpc-id", args.vpc_id),
                        ("--subnet-id", args.subnet_id), ("--key-name", args.key_name), ("--key-dir", args.key_dir),
                        ("--name", plan.name), ("--ssh-cidr", args.ssh_cidr), ("--volume-size", args.volume_size),
                        ("--count", args.count), ("--out", args.out)):
        if value:
            parts += [flag, str(value)]
    for flag, given in (("--new-key", args.new_key), ("--fleet", args.fleet)):
        if given:
            parts.append(flag)
    parts += ["--yes", "--deploy"]
    return " ".join(shlex.quote(p) for p in parts)
