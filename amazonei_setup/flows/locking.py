"""Hold the deployment lock (resources/lock.py) around everything a command changes, renewing its lease meanwhile."""
from __future__ import annotations

import getpass
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from amazonei_setup.aws.client import Aws, explain_safely
from amazonei_setup.aws.resources import lock
from amazonei_setup.core.errors import AwsError
from amazonei_setup.core.events import Event, Reporter, ignore

FORCE_FLAG = "--force-unlock"


@contextmanager
def deployment_locked(aws: Aws, name: str, command: str, report: Reporter = ignore, *, force: bool = False,
                      force_flag: bool = False, sleep: Callable[[float], None] | None = None
                      ) -> Iterator[lock.Holder | None]:
    """Refuse (AwsError, exit 1, nothing changed) while a live run holds deployment `name`; a dead run's lock is taken
    over (at once on its own machine, else once its lease lapses, waiting for that with progress). Held until the
    block ends, whatever way it ends. force: take it from any holder. force_flag: the command has --force-unlock,
    so a refusal names it. Yields the dead run it took the lock over from, if any (that run had begun on the name)."""
    ssm = aws.client("ssm")
    run = f"{command}-{uuid.uuid4().hex[:12]}"
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        who = "?"
    since = time.time()
    why = "no SSM PutParameter permission"
    said_wait: list[bool] = []

    def on_wait(holder: lock.Holder, left: float) -> None:
        report(Event("wait", "lock", f"Deployment '{name}' is held by {holder.describe()}: waiting to see whether that "
                                     f"run is alive (its lock is taken over if not renewed within {left:.0f} s)"))
        said_wait.append(True)

    try:
        taken, dead = lock.acquire(ssm, name, run, command, who, force=force, on_wait=on_wait, since=since,
                                   **({"sleep": sleep} if sleep else {}))
    except lock.Held as held:
        override = (f" If you know that run is gone, {FORCE_FLAG} takes the lock now (if it is still running, both "
                    "runs change the deployment at once).") if force_flag else ""
        raise AwsError(f"Deployment '{name}' in {aws.region} is being changed by another run ({held}): nothing was "
                       f"changed; wait for that run to finish, then run this again.{override}", code="locked") from None
    except KeyboardInterrupt:
        _release_quietly(ssm, name, run)  # the put may have landed before the signal: never leave our own lock
        raise
    except Exception as err:  # noqa: BLE001 - see below
        # Not a refusal: SSM unreachable, throttled, or an endpoint without SSM. The command's own first calls
        # meet the same trouble and say it in their words; if they succeed, the run goes on unlocked.
        taken, dead, why = False, None, explain_safely(err).args[0]
    if dead is not None:
        how = "was forced" if force else ("its process no longer runs" if dead.process_gone() else "its lease lapsed")
        report(Event("warning", "lock", f"Took over the lock of '{name}' from {dead.describe()}: {how}"))
    if not taken:
        report(Event("warning", "lock", f"Could not take the lock for '{name}' ({why.rstrip('.')}): another run on "
                                        "the same name at the same time is not kept out"))
    lease = None
    if taken:
        lease = lock.Lease(ssm, name, run, command, who, since=since, lost=lambda holder: report(Event(
            "warning", "lock", f"The lock of '{name}' was taken by {holder.describe()} while this run was stalled: "
                               "the two runs may now change the deployment at once"))).start()
    try:
        yield dead
    finally:
        if lease is not None:
            lease.stop()
            try:
                lock.release(ssm, name, run)
            except Exception:  # noqa: BLE001 - never the reason a finished command fails
                report(Event("warning", "lock", f"Could not release the lock {lock.parameter_name(name)}; it lapses "
                                                f"by itself within {lock.LEASE_S:.0f} s"))


def _release_quietly(ssm, name: str, run: str) -> None:
    try:
        lock.release(ssm, name, run)
    except (Exception, KeyboardInterrupt):  # noqa: BLE001 - a second signal or a failure: the lease lapses anyway
        pass
