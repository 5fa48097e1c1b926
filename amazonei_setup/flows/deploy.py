"""Execute a Plan through CloudFormation (`export --deploy`): the template's stack instead of direct calls.

    key pair (only when the plan creates one: its private key must reach this machine) ─┐
    create_stack ─> wait CREATE_COMPLETE (one progress line per resource) ───────────────┴─> wait instances running

CloudFormation owns everything in the stack: it creates, rolls back and deletes it. This module adds
what a stack cannot do for a terminal user: save a new key's .pem (0400) locally, wait until the
instances really run (an Auto Scaling group's instances start after the stack completes), and turn a
failure into the same one-sentence errors as the direct path. On failure or Ctrl-C it deletes the stack
(CloudFormation's OnFailure=DELETE covers create failures) and the key pair, so nothing is left behind.
Nothing here prints.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from botocore.exceptions import ClientError

from amazonei_setup.aws.client import Aws, explain, explain_safely
from amazonei_setup.aws.resources import instance as instances
from amazonei_setup.aws.resources import keypair, stack
from amazonei_setup.aws.waiting import wait_for
from amazonei_setup.core import tags
from amazonei_setup.core.errors import Interrupted, ToolError, stopped_by
from amazonei_setup.core.events import Event, Reporter, ignore
from amazonei_setup.core.plan import Plan
from amazonei_setup.flows import cloudformation
from amazonei_setup.flows.provision import SetupResult, rollback_outcome

INSTANCES_TIMEOUT = 900.0  # an Auto Scaling group launches after the stack is complete
# CloudFormation reports an EC2 refusal inside the event's reason: "... (Service: AmazonEC2; Status Code:
# 400; Error Code: InsufficientInstanceCapacity; Request ID: ...)". The code tells us which sentence to say.
_ERROR_CODE = re.compile(r"Error Code: ([A-Za-z0-9.]+)")
_SERVICE_TAIL = re.compile(r"\s*\(Service: [^)]*\)\s*$")
# The resources whose failure is an EC2 launch refusal: Instance, Instance1..N (an EI fleet), the ASG.
_LAUNCHING = re.compile(rf"{cloudformation.INSTANCE}\d*|{cloudformation.ASG}")


def deploy(aws: Aws, plan: Plan, *, template_body: str, fleet_size: int | None, report: Reporter = ignore,
           sleep: Callable[[float], None] | None = None, account_flags: str = "",
           teardown: str | None = None) -> SetupResult:
    """template_body: cloudformation.to_yaml(build_template(plan, fleet_size=...)), as the CLI showed it;
    teardown: the command a failed rollback prints, as the CLI would print it (else built from account_flags)."""
    sleep = sleep or time.sleep
    aws.preload("ec2", "cloudformation")
    ec2, cfn = aws.ec2, aws.client("cloudformation")
    name = cloudformation.stack_name(plan.name)
    tag_list = tags.tag_list(plan.name, plan.owner, plan.region)
    created_key = False
    stack_id = None
    try:
        if plan.create_key:
            keypair.create_key_pair(ec2, plan.key_name, Path(plan.key_path), tag_list,
                                    set_aside=Path(plan.key_set_aside) if plan.key_set_aside else None)
            created_key = True
            report(Event("created", "key-pair", f"Created key pair {plan.key_name}; private key saved to "
                                                f"{plan.key_path}", plan.key_name))
        report(Event("start", "stack", f"Creating CloudFormation stack {name}"))
        stack_id = ""  # sent: from here on a stack may exist even if CreateStack's reply never arrives
        stack_id = stack.create_stack(
            cfn, name=name, template_body=template_body, tag_list=tag_list,
            parameters=cloudformation.parameter_values(plan, fleet_size=fleet_size, key_name=plan.key_name),
            capabilities=cloudformation.CAPABILITIES)
        created = stack.wait_created(cfn, stack_id, report=report, sleep=sleep)
        held = stack.held_resources(cfn, stack_id)
        report(Event("done", "stack", f"Stack {name} is complete: {len(held)} resources "
                                      f"({', '.join(sorted({kind for kind, _ in held}))})", stack_id))
        running = _wait_instances(ec2, plan, sleep, report)
    except BaseException as failure:
        raise _rolled_back(aws, plan, failure, stack_id, created_key, report, account_flags, sleep, teardown) from (
            failure if not isinstance(failure, KeyboardInterrupt) else None)
    resources = [{"kind": "cloudformation-stack", "id": created.id, "action": "created"}] + [
        {"kind": kind, "id": physical, "action": "created"} for kind, physical in sorted(held)]
    if created_key:
        resources.insert(0, {"kind": "key-pair", "id": plan.key_name, "action": "created"})
    return SetupResult(plan, running, resources, plan.key_path, stack_name=name, stack_outputs=created.outputs)


def _wait_instances(ec2, plan: Plan, sleep, report: Reporter) -> list[instances.InstanceInfo]:
    """Until the deployment's instances (found by tag: a fleet's come from its Auto Scaling group) run."""
    found: list[instances.InstanceInfo] = []

    def fetch() -> str:
        found[:] = instances.find_instances(ec2, plan.name)
        if len(found) >= plan.count and all(i.state == "running" and i.host for i in found):
            return "running"
        return f"{sum(i.state == 'running' for i in found)} of {plan.count} running"

    report(Event("wait", "instance", f"Waiting for {plan.count} instance(s) of {plan.name} to be running"))
    wait_for(fetch, done={"running"}, what=f"The instances of {plan.name}", timeout=INSTANCES_TIMEOUT, sleep=sleep,
             how_to_check="see the Auto Scaling group's activity in the EC2 console")
    report(Event("done", "instance", f"{len(found)} instance(s) running", found[0].id))
    return sorted(found, key=lambda i: (i.launch_time, i.id))


def _rolled_back(aws: Aws, plan: Plan, failure: BaseException, stack_id: str | None, created_key: bool,
                 report: Reporter, account_flags: str, sleep: Callable[[float], None],
                 teardown: str | None = None) -> ToolError:
    interrupted = isinstance(failure, KeyboardInterrupt)

    def cause() -> ToolError:
        """After the rollback: explaining may call AWS (decoding EC2's refusal), which must not stop it."""
        if interrupted:
            return Interrupted(f"{stopped_by(failure)}.")
        try:
            return _explain(failure, aws)
        except (Exception, KeyboardInterrupt):  # noqa: BLE001 - the sentence is never worth a leftover stack
            return explain_safely(failure)

    if stack_id == "":
        # Ctrl-C or a lost reply during CreateStack: AWS may have made the stack all the same. The name is ours
        # (export refuses a name in use), and the tags must say so before anything is deleted.
        try:
            found = stack.find_stack(aws.client("cloudformation"), cloudformation.stack_name(plan.name))
        except (Exception, KeyboardInterrupt):  # noqa: BLE001 - then it is named as possibly left, below
            found = None
            stack_id = f"{cloudformation.stack_name(plan.name)} (if it was created)"
        else:
            stack_id = found.id if found is not None and tags.is_ours(found.tags, plan.name) else None
    if not stack_id and not created_key:
        return cause()
    leftovers = []
    pending = ([f"stack {stack_id}"] if stack_id else []) + ([f"key-pair {plan.key_name}"] if created_key else [])
    try:
        if stack_id:
            report(Event("rollback", "stack", "Deleting the stack and everything it created"))
            try:
                stack.delete(aws.client("cloudformation"), stack_id, report=report, sleep=sleep)
            except Exception as err:  # noqa: BLE001 - say what is left, with the command that finishes
                leftovers.append((f"stack {stack_id}", explain_safely(err)))  # the reason said once (provision)
            pending.pop(0)
        if created_key:
            keypair.delete_key_pair(aws.ec2, plan.key_name)
            Path(plan.key_path).unlink(missing_ok=True)  # useless without its key pair, and it was ours
            pending.pop()
            report(Event("rollback", "key-pair", f"Removed key-pair {plan.key_name}", plan.key_name))
    except KeyboardInterrupt:  # a second signal: name what is still there
        return rollback_outcome(cause(), leftovers + pending, plan, account_flags, interrupted=True, finish=teardown)
    return rollback_outcome(cause(), leftovers, plan, account_flags, finish=teardown)


def _explain(failure: BaseException, aws: Aws) -> ToolError:
    """A stack failure in the words of the direct path: CloudFormation's reason carries EC2's error code."""
    if isinstance(failure, stack.StackFailed) and failure.cause:
        found = _ERROR_CODE.search(failure.cause)
        resource, _, reason = failure.cause.partition(": ")
        reason = _SERVICE_TAIL.sub("", reason)  # the code is read; the request id etc. are noise in a sentence
        if found:
            operation = "RunInstances" if _LAUNCHING.fullmatch(resource) else "CreateStack"
            return explain(ClientError({"Error": {"Code": found.group(1), "Message": reason}}, operation), aws)
        return stack.StackFailed(f"CloudFormation could not create {resource}: {reason.rstrip('.')}.")
    return explain(failure, aws)
