"""What a signal means depends on where the run stands.

Before the work is complete, Ctrl-C (SIGTERM, SIGHUP) stops it: the rollback or the teardown's stop runs, and the CLI
exits 128 + n. Once the work is complete (the deployment runs, the instances started, everything was deleted), only
bounded and best-effort steps remain: releasing the lock, waiting for SSH, writing the SSH config, printing the
result. Throwing those away would hide a running, billed deployment behind "nothing more was done". So while a run
is *finishing*, the first signal is absorbed: waits stop waiting (`requested()`), the rest completes, the result is
printed with a note, and the CLI still exits 128 + n. A second signal stops at once, and the message is the true
sentence the command left here (`after`: what exists and the next command). After the result is printed, signals
change nothing.

Process-wide state, driven by cli.main's signal handler (main thread only). Imports nothing: the handler runs
anywhere, also while modules load.
"""
from __future__ import annotations

import threading

_finishing = False
_printed = False
_after: str | None = None
_absorbed: int | None = None
_requested = threading.Event()


def reset() -> None:
    """A new run (cli.main calls it first; tests run many in one process)."""
    global _finishing, _printed, _after, _absorbed
    _finishing, _printed, _after, _absorbed = False, False, None, None
    _requested.clear()


def finishing(after: str) -> None:
    """The work is complete: from now on the first signal is absorbed. `after` is what a hard stop says instead of
    "nothing more was done" (it may be called again as more is known)."""
    global _finishing, _after
    _finishing, _after = True, after


def if_stopped_now(after: str | None) -> None:
    """What a hard stop says from now on, while the work is not complete (no signal is absorbed); None: the default
    ("nothing more was done")."""
    global _after
    _after = after


def complete_despite(interrupt: BaseException) -> None:
    """A signal stopped a wait, but the work it waited for turned out complete: treat it as absorbed."""
    global _finishing, _absorbed
    _finishing = True
    if _absorbed is None:
        _absorbed = getattr(interrupt, "signum", 2)  # 2: SIGINT, what a plain KeyboardInterrupt is


def printed() -> None:
    """The result is on the screen: no signal changes the outcome any more."""
    global _printed
    _printed = True


def absorb(signum: int) -> bool:
    """For the signal handler: True when this signal must not raise."""
    global _absorbed
    if _printed:
        return True
    if _finishing and _absorbed is None:
        _absorbed = signum
        _requested.set()
        return True
    return False


def absorbed() -> int | None:
    """The signal that arrived while finishing (the CLI exits 128 + it), or None."""
    return _absorbed


def requested() -> threading.Event:
    """Set once a signal was absorbed: a wait that can be cut short (SSH) checks it."""
    return _requested


def after() -> str | None:
    return _after
