"""Hold the deployment lock (resources/lock.py) around everything a command changes."""
from __future__ import annotations

import getpass
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from amazonei_setup.aws import Aws, explain_safely
from amazonei_setup.errors import AwsError
from amazonei_setup.events import Event, Reporter, ignore
from amazonei_setup.resources import lock


@contextmanager
def deployment_locked(aws: Aws, name: str, command: str, report: Reporter = ignore) -> Iterator[None]:
    """Refuse (AwsError, exit 1, nothing changed) while another run holds deployment `name`; else hold it until the
    block ends, whatever way it ends."""
    ssm = aws.client("ssm")
    run = f"{command}-{uuid.uuid4().hex[:12]}"
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        who = "?"
    why = "no SSM PutParameter permission"
    try:
        taken = lock.acquire(ssm, name, run, command, who)
    except lock.Held as held:
        raise AwsError(f"Deployment '{name}' in {aws.region} is being changed by another run ({held}): nothing was "
                       "changed; wait for that run to finish, then run this again.", code="locked") from None
    except Exception as err:  # noqa: BLE001 - see below
        # Not a refusal: SSM unreachable, throttled, or an endpoint without SSM. The command's own first calls
        # meet the same trouble and say it in their words; if they succeed, the run goes on unlocked.
        taken, why = False, explain_safely(err).args[0]
    if not taken:
        report(Event("warning", "lock", f"Could not take the lock for '{name}' ({why.rstrip('.')}): another run on "
                                        "the same name at the same time is not kept out"))
    try:
        yield
    finally:
        if taken:
            try:
                lock.release(ssm, name, run)
            except Exception:  # noqa: BLE001 - never the reason a finished command fails
                report(Event("warning", "lock", f"Could not release the lock {lock.parameter_name(name)}; it expires "
                                                "by itself in two hours, or delete the SSM parameter"))
