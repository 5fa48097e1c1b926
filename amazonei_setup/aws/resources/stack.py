"""A CloudFormation stack that holds one deployment (`export --deploy`): create, find, wait, delete.

The stack is named like every other resource of the deployment (tags.resource_name) and carries the
deployment's tags, so `teardown` and `list` find it as they find the rest. CloudFormation creates and
deletes its resources itself; this module only asks, polls and reports. It never prints: progress
goes to the caller's reporter, one Event per resource CloudFormation finishes.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from amazonei_setup.aws.waiting import wait_for
from amazonei_setup.core.errors import AwsError, error_code, error_message
from amazonei_setup.core.events import Event, Reporter, ignore

CREATE_TIMEOUT = 1800.0  # an EI instance and its endpoint take minutes; CloudFormation's own default is none
DELETE_TIMEOUT = 1800.0
CREATE_DONE = {"CREATE_COMPLETE"}
CREATE_FAILED = {"CREATE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED",
                 "DELETE_IN_PROGRESS", "DELETE_COMPLETE", "DELETE_FAILED"}
DELETE_DONE = {"DELETE_COMPLETE"}
DELETE_FAILED = {"DELETE_FAILED"}
# What a stack event's resource type means to a user, in the words the rest of the tool uses.
KINDS = {
    "AWS::IAM::Role": "iam-role", "AWS::IAM::InstanceProfile": "instance-profile",
    "AWS::EC2::SecurityGroup": "security-group", "AWS::EC2::SecurityGroupIngress": "security-group-rule",
    "AWS::EC2::VPCEndpoint": "vpc-endpoint", "AWS::EC2::Instance": "instance", "AWS::EC2::KeyPair": "key-pair",
    "AWS::EC2::LaunchTemplate": "launch-template", "AWS::AutoScaling::AutoScalingGroup": "auto-scaling-group",
    "AWS::CloudFormation::Stack": "stack", "AWS::CloudWatch::Alarm": "idle-alarm",
}


@dataclass
class StackInfo:
    id: str
    name: str
    status: str
    tags: list[dict]  # as AWS returns them (Key/Value), like every other resource's
    outputs: dict = field(default_factory=dict)
    reason: str = ""

    @classmethod
    def from_api(cls, raw: dict) -> StackInfo:
        return cls(raw["StackId"], raw["StackName"], raw["StackStatus"], raw.get("Tags", []),
                   {o["OutputKey"]: o.get("OutputValue", "") for o in raw.get("Outputs", [])},
                   raw.get("StackStatusReason", ""))


def find_stack(cfn, name_or_id: str) -> StackInfo | None:
    """The live stack by name (or any stack by id); None when there is none."""
    try:
        stacks = cfn.describe_stacks(StackName=name_or_id)["Stacks"]
    except ClientError as err:
        if error_code(err) == "ValidationError" and "does not exist" in error_message(err):
            return None
        raise
    return StackInfo.from_api(stacks[0]) if stacks else None


def held_resources(cfn, stack_id: str) -> set[tuple[str, str]]:
    """(kind, physical id) of everything the stack holds. Both parts count: a deployment's role, profile and
    stack share one name."""
    pages = cfn.get_paginator("list_stack_resources").paginate(StackName=stack_id)
    return {(KINDS.get(r["ResourceType"], r["ResourceType"]), r["PhysicalResourceId"])
            for page in pages for r in page["StackResourceSummaries"] if r.get("PhysicalResourceId")}


def create_stack(cfn, *, name: str, template_body: str, parameters: list[dict], capabilities: list[str],
                 tag_list: list[dict]) -> str:
    """OnFailure=DELETE: a failed create removes whatever it made, so a failure leaves no stack (and no
    ROLLBACK_COMPLETE stack blocking the name). The failure's reason is read from the events first."""
    return cfn.create_stack(StackName=name, TemplateBody=template_body, Parameters=parameters,
                            Capabilities=capabilities, Tags=tag_list, OnFailure="DELETE")["StackId"]


class _Events:
    """Reports each stack event once, in order (describe_stack_events pages newest first)."""

    def __init__(self, cfn, stack_id: str, report: Reporter):
        self.cfn, self.stack_id, self.report = cfn, stack_id, report
        self.seen: set[str] = set()
        self.failures: list[str] = []

    def skip_history(self) -> None:
        """Mark every event so far as seen: a delete must not replay how the stack was created."""
        for page in self.cfn.get_paginator("describe_stack_events").paginate(StackName=self.stack_id):
            self.seen.update(event["EventId"] for event in page["StackEvents"])

    def poll(self) -> None:
        fresh = []
        for page in self.cfn.get_paginator("describe_stack_events").paginate(StackName=self.stack_id):
            for event in page["StackEvents"]:
                if event["EventId"] in self.seen:
                    break
                fresh.append(event)
            else:
                continue
            break
        for event in reversed(fresh):
            self.seen.add(event["EventId"])
            self._show(event)

    def _show(self, event: dict) -> None:
        status, kind = event.get("ResourceStatus", ""), KINDS.get(event.get("ResourceType", ""), "resource")
        label = f"{event.get('LogicalResourceId', '')} {event.get('PhysicalResourceId') or ''}".strip()
        if kind == "stack":
            return  # the stack's own status is what the caller waits on
        if status.endswith("_FAILED"):
            reason = event.get("ResourceStatusReason") or ""
            if reason and "cancelled" not in reason.lower():  # the first real cause, not the cascade
                self.failures.append(f"{event.get('LogicalResourceId')}: {reason}")
            self.report(Event("warning", kind, f"{status} {label}: {reason}".rstrip(": "), label))
        elif status == "CREATE_COMPLETE":
            self.report(Event("created", kind, f"Created {kind} {label}", label))
        elif status == "DELETE_COMPLETE":
            self.report(Event("deleted", kind, f"Deleted {kind} {label}", label))


def wait_created(cfn, stack_id: str, *, report: Reporter = ignore, sleep: Callable = time.sleep,
                 timeout: float = CREATE_TIMEOUT) -> StackInfo:
    """Until CREATE_COMPLETE, reporting each resource; StackFailed with the first failure's reason otherwise."""
    return _wait(cfn, stack_id, _Events(cfn, stack_id, report), done=CREATE_DONE, failed=CREATE_FAILED,
                 what="Stack", sleep=sleep, timeout=timeout)


def delete(cfn, stack_id: str, *, report: Reporter = ignore, sleep: Callable = time.sleep,
           timeout: float = DELETE_TIMEOUT) -> None:
    """delete_stack, then wait for DELETE_COMPLETE, reporting only what this delete does."""
    events = _Events(cfn, stack_id, report)
    events.skip_history()
    cfn.delete_stack(StackName=stack_id)
    _wait(cfn, stack_id, events, done=DELETE_DONE, failed=DELETE_FAILED, what="Deleting stack", sleep=sleep,
          timeout=timeout)


def _wait(cfn, stack_id: str, events: _Events, *, done: set[str], failed: set[str], what: str, sleep: Callable,
          timeout: float) -> StackInfo | None:
    """Poll events and status until `done`; a stack that is gone counts as DELETE_COMPLETE."""
    latest: list[StackInfo | None] = [None]

    def fetch() -> str:
        events.poll()
        latest[0] = find_stack(cfn, stack_id)
        return latest[0].status if latest[0] else "DELETE_COMPLETE"

    name = stack_id.split("/")[1] if "/" in stack_id else stack_id  # an ARN's second part is the name
    try:
        wait_for(fetch, done=done, failed=failed, what=f"{what} {name}", timeout=timeout, sleep=sleep,
                 max_delay=10.0, how_to_check="see its events in the CloudFormation console")
    except AwsError as err:
        cause = events.failures[0] if events.failures else (latest[0].reason if latest[0] else "")
        raise StackFailed(str(err), cause) from None
    return latest[0]


class StackFailed(AwsError):
    """A stack did not reach the state asked for; `cause` is CloudFormation's first real reason."""

    code = "stack-failed"

    def __init__(self, message: str, cause: str = "", *, code: str | None = None):
        super().__init__(message, code=code)
        self.cause = cause
