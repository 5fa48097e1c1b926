"""The deployment lock: one writer per deployment name, across machines, that a dead run never keeps.

Two runs on one name (two laptops, a laptop and CI, setup and teardown) must not interleave: one's rollback
would delete what the other adopted. A lock file would only cover this machine, so the lock is something AWS
creates atomically: an SSM parameter `/amazonei-setup/locks/<name>` in the deployment's region, created with
Overwrite=False (exactly one PutParameter succeeds). Its value says who holds it, so the loser can be told.

A lock is a lease. The holder renews it every RENEW_EVERY_S while it runs (`Lease`); a lock not renewed for
LEASE_S belongs to a run that died (SIGKILL, a lost machine, a network gone mid-run) and is taken over. How long
ago it was renewed is read on AWS's clock (the parameter's LastModifiedDate against the reply's Date header), so
machines whose clocks disagree cannot keep a lock alive or kill a live one; without a Date header, the waiter's own
observation decides (no new version for LEASE_S of watching). On the holder's own machine its process id settles
it at once: a pid that no longer runs holds nothing.

An identity without SSM permissions still works, unlocked, with a warning (locking.py).
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from botocore.exceptions import ClientError

from amazonei_setup.core.errors import error_code

PREFIX = "/amazonei-setup/locks/"
LEASE_S = 60.0  # a lock not renewed for this long is a dead run's
RENEW_EVERY_S = 15.0  # well inside the lease: three renewals may fail before a live run loses it
LEGACY_LEASE_S = 15 * 60.0  # locks written before leases existed were never renewed; their runs took minutes
POLL_S = 2.0  # while waiting to see whether a holder renews
DENIED = ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation")


@dataclass(frozen=True)
class Holder:
    run: str
    command: str
    who: str
    host: str
    since: float  # when the run started, on its own clock (said, never compared)
    pid: int | None = None
    lease: float = LEGACY_LEASE_S
    version: int = 0  # the parameter's version: each renewal makes a new one
    age: float | None = None  # seconds since its last renewal, on AWS's clock; None when AWS's clock is unknown

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        renewed = f", last renewed {self.age:.0f} s ago" if self.age is not None else ""
        pid = f" (pid {self.pid})" if self.pid else ""
        return f"{self.command} run {self.run} by {self.who} on {self.host}{pid}, started {started}{renewed}"

    def on_this_machine(self) -> bool:
        return self.pid is not None and self.host == socket.gethostname()

    def process_gone(self) -> bool:
        """Its process is known to have ended (it ran on this machine, and its pid runs no more)."""
        return self.on_this_machine() and not pid_runs(self.pid)


class Held(Exception):
    """Another run holds the deployment and is alive (`why` says how that is known)."""

    def __init__(self, holder: Holder, why: str):
        super().__init__(f"{holder.describe()}; {why}")
        self.holder = holder
        self.why = why


def parameter_name(deployment: str) -> str:
    return PREFIX + deployment


def value_for(run: str, command: str, who: str, *, since: float, renewals: int = 0) -> str:
    return json.dumps({"run": run, "command": command, "who": who, "host": socket.gethostname(), "pid": os.getpid(),
                       "since": since, "lease": LEASE_S, "renewals": renewals})


def acquire(ssm, deployment: str, run: str, command: str, who: str, *, wait: bool = True, force: bool = False,
            sleep: Callable[[float], None] = time.sleep,
            on_wait: Callable[[Holder, float], None] | None = None,
            since: float | None = None) -> tuple[bool, Holder | None]:
    """Take the lock. Returns (taken, the dead holder it was taken over from, or None); taken is False when SSM is
    not allowed (the run goes on unlocked). Raises Held when a live run holds it.

    A holder that may be alive (its lease not yet lapsed, on another machine) is watched, with `wait`, until it
    renews (alive: Held) or its lease lapses (dead: taken over); on_wait(holder, seconds left) hears each look.
    `force` takes the lock from any holder, alive or not (the user's explicit override)."""
    since = time.time() if since is None else since
    value = value_for(run, command, who, since=since)
    taken_over: Holder | None = None
    for _ in range(5):  # a new try after a takeover, or a release in between; a live holder ends the loop
        try:
            ssm.put_parameter(Name=parameter_name(deployment), Value=value, Type="String", Overwrite=False,
                              Description="amazonei-setup: the run that is changing this deployment")
            return True, taken_over
        except ClientError as err:
            code = error_code(err)
            if code in DENIED:
                return False, None
            if code != "ParameterAlreadyExists":
                raise
        holder = current(ssm, deployment)
        if holder is None:
            continue  # released in between
        if holder.run == run:
            return True, taken_over
        if force:
            _delete(ssm, deployment)
        else:
            holder = _dead_or_raise(ssm, deployment, holder, wait=wait, sleep=sleep, on_wait=on_wait)
            _delete_if_unchanged(ssm, deployment, holder)
        taken_over = holder
    holder = current(ssm, deployment)
    raise Held(holder or taken_over, "other runs keep taking this lock")  # pragma: no cover - five races in a row


def _dead_or_raise(ssm, deployment, holder: Holder, *, wait, sleep, on_wait) -> Holder:
    """The holder as last seen once it is known dead; Held while it is alive. Dead: its process is gone (on this
    machine), or no renewal came for its lease, by AWS's clock or by this run's own watching, whichever says first."""
    if holder.process_gone():
        return holder  # at once, whatever its lease says
    if holder.on_this_machine():  # its process runs: alive, unless even AWS's clock says it stopped renewing (hung)
        if holder.age is not None and holder.age >= holder.lease:
            return holder
        raise Held(holder, "its process still runs on this machine")
    first, watched = holder, 0.0
    while True:
        left = holder.lease - watched
        if holder.age is not None:
            left = min(left, holder.lease - holder.age)
        if left <= 0:
            return holder
        if not wait:
            raise Held(holder, f"its lease runs {left:.0f} s more")
        if on_wait is not None:
            on_wait(holder, left)
        pause = min(POLL_S, left)
        sleep(pause)
        watched += pause
        seen = current(ssm, deployment)
        if seen is None:
            return first  # released meanwhile: nothing to take over, the next put decides
        if seen.run != first.run or seen.version != first.version:
            why = "it renewed its lease while this run waited" if seen.run == first.run else "another run took it"
            raise Held(seen, why)
        holder = seen


def pid_runs(pid: int | None) -> bool:
    if not pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return False
    return bool(fields) and fields[0] in ("Z", "X")


def _delete_if_unchanged(ssm, deployment: str, holder: Holder) -> None:
    """Delete a dead holder's lock, unless it changed since it was judged (then the next put meets the new one)."""
    seen = current(ssm, deployment)
    if seen is not None and seen.run == holder.run and seen.version == holder.version:
        _delete(ssm, deployment)


def _delete(ssm, deployment: str) -> None:
    try:
        ssm.delete_parameter(Name=parameter_name(deployment))
    except ClientError as err:
        if error_code(err) != "ParameterNotFound":
            raise


def current(ssm, deployment: str) -> Holder | None:
    try:
        reply = ssm.get_parameter(Name=parameter_name(deployment))
    except ClientError as err:
        if error_code(err) == "ParameterNotFound":
            return None
        raise
    parameter = reply["Parameter"]
    version = int(parameter.get("Version") or 0)
    age = _age(parameter.get("LastModifiedDate"), reply.get("ResponseMetadata", {}).get("HTTPHeaders", {}))
    try:
        data = json.loads(parameter["Value"])
        pid = data.get("pid")
        return Holder(str(data["run"]), str(data.get("command", "?")), str(data.get("who", "?")),
                      str(data.get("host", "?")), float(data.get("since", 0)), int(pid) if pid else None,
                      float(data.get("lease", LEGACY_LEASE_S)), version, age)
    except (ValueError, KeyError, TypeError, AttributeError):
        return Holder("?", "?", "?", "?", 0.0, None, 0.0, version, age)  # unreadable: lapsed at once


def _age(modified, headers: dict) -> float | None:
    """Seconds between the parameter's last change and the reply, both on AWS's clock (None if not known)."""
    stamp = headers.get("date")
    if modified is None or not stamp:
        return None
    try:
        now = parsedate_to_datetime(stamp).timestamp()
        return max(0.0, now - modified.timestamp() - 1.0)  # the Date header has whole seconds: never older than true
    except (TypeError, ValueError, AttributeError, OverflowError):
        return None


def release(ssm, deployment: str, run: str) -> None:
    """Delete the lock if `run` still holds it (never another run's)."""
    holder = current(ssm, deployment)
    if holder is not None and holder.run == run:
        _delete(ssm, deployment)


class Lease:
    """Renews a held lock every RENEW_EVERY_S on a daemon thread until stopped. If another run took the lock meanwhile
    (this run stalled past its lease), it stops renewing and says so once through `lost`."""

    def __init__(self, ssm, deployment: str, run: str, command: str, who: str, *, since: float,
                 lost: Callable[[Holder], None] = lambda holder: None, every: float = RENEW_EVERY_S):
        self._ssm, self._deployment, self._run = ssm, deployment, run
        self._command, self._who, self._lost, self._every = command, who, lost, every
        self._since = since
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_until_stopped, name=f"lease-{deployment}", daemon=True)

    def start(self) -> Lease:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)  # a renewal in flight has its own deadline; never wait on it long

    def _renew_until_stopped(self) -> None:
        renewals = 0
        while not self._stop.wait(self._every):
            try:
                holder = current(self._ssm, self._deployment)
                if self._stop.is_set():
                    return
                if holder is not None and holder.run != self._run:
                    self._lost(holder)
                    return
                renewals += 1
                self._ssm.put_parameter(Name=parameter_name(self._deployment), Type="String", Overwrite=True,
                                        Value=value_for(self._run, self._command, self._who, since=self._since,
                                                        renewals=renewals))
            except Exception:  # noqa: BLE001 - a missed renewal is retried; the lease has room for three
                continue
