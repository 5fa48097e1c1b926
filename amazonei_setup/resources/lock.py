"""The deployment lock: one writer per deployment name, across machines.

Two runs on one name (two laptops, a laptop and CI, setup and teardown) must not interleave: one's rollback
would delete what the other adopted. A lock file would only cover this machine, so the lock is something AWS
creates atomically: an SSM parameter `/amazonei-setup/locks/<name>` in the deployment's region, created with
Overwrite=False (exactly one PutParameter succeeds). Its value says who holds it, so the loser can be told.

A run killed with SIGKILL leaves its lock behind: one older than STALE_AFTER is taken over (setup's and
teardown's own waits are bounded well below it). An identity without SSM permissions still works, unlocked,
with a warning.
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass

from botocore.exceptions import ClientError

from amazonei_setup.errors import error_code

PREFIX = "/amazonei-setup/locks/"
STALE_AFTER = 2 * 3600.0  # seconds


@dataclass(frozen=True)
class Holder:
    run: str
    command: str
    who: str
    host: str
    since: float

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        return f"{self.command} run {self.run} by {self.who} on {self.host}, started {started}"


class Held(Exception):
    """Another run holds the deployment."""

    def __init__(self, holder: Holder):
        super().__init__(holder.describe())
        self.holder = holder


def parameter_name(deployment: str) -> str:
    return PREFIX + deployment


def acquire(ssm, deployment: str, run: str, command: str, who: str, *, now: float | None = None) -> bool:
    """Take the lock; True when taken, False when SSM is not allowed or not there (the run goes on unlocked).
    Raises Held when another run holds it."""
    now = time.time() if now is None else now
    value = json.dumps({"run": run, "command": command, "who": who, "host": socket.gethostname(),
                        "pid": os.getpid(), "since": now})
    for _ in range(2):  # a second try only after taking over a stale lock
        try:
            ssm.put_parameter(Name=parameter_name(deployment), Value=value, Type="String", Overwrite=False,
                              Description="amazonei-setup: the run that is changing this deployment")
            return True
        except ClientError as err:
            code = error_code(err)
            if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
                return False
            if code != "ParameterAlreadyExists":
                raise
        holder = current(ssm, deployment)
        if holder is None:
            continue  # released in between
        if holder.run == run:
            return True
        if now - holder.since < STALE_AFTER:
            raise Held(holder)
        release(ssm, deployment, holder.run)  # left by a run that was killed: take it over
    holder = current(ssm, deployment)
    if holder is not None and holder.run != run:
        raise Held(holder)
    return True


def current(ssm, deployment: str) -> Holder | None:
    try:
        raw = ssm.get_parameter(Name=parameter_name(deployment))["Parameter"]["Value"]
    except ClientError as err:
        if error_code(err) == "ParameterNotFound":
            return None
        raise
    try:
        data = json.loads(raw)
        return Holder(str(data["run"]), str(data.get("command", "?")), str(data.get("who", "?")),
                      str(data.get("host", "?")), float(data.get("since", 0)))
    except (ValueError, KeyError, TypeError):
        return Holder("?", "?", "?", "?", 0.0)  # unreadable: treat as stale


def release(ssm, deployment: str, run: str) -> None:
    """Delete the lock if `run` still holds it (never another run's)."""
    holder = current(ssm, deployment)
    if holder is None or holder.run != run:
        return
    try:
        ssm.delete_parameter(Name=parameter_name(deployment))
    except ClientError as err:
        if error_code(err) != "ParameterNotFound":
            raise
