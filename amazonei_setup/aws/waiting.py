"""Polling until AWS reaches a state, shared by setup and teardown.

The schedule follows AWS's usual timings: a state that is already reached (moto, a re-run, a fast path) is seen at
once, then polls come 1 s and 1.5 s apart and every 1.5 s while most transitions happen (an instance reaches
`running` in ~20-40 s, an interface endpoint is `available` in ~60-120 s), and every 3 s after that window. A
poll's own round trip counts toward its pause, so polls keep that beat. So a wait ends at most one interval
(1.5 s, later 3 s) after the state changes, and a one-minute wait costs ~40 describe calls, a ten-minute one
~240: a call a second or less, far below EC2's request limits.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from amazonei_setup.core.errors import AwsError

FIRST_DELAY = 1.0  # the first pause: a state reached in a second or two (moto, AWS's fast paths) is seen at once
GROWTH = 1.5
CEILING = 1.5  # the most a wait is late while most transitions happen
USUAL_WINDOW = 120.0  # seconds: instances run within a minute, interface endpoints are available within two
LATE_CEILING = 3.0  # past the usual window: fewer calls, never more than ~3 s late


def poll_delays(first_delay: float = FIRST_DELAY, max_delay: float = CEILING,
                late_max_delay: float = LATE_CEILING, usual_window: float = USUAL_WINDOW) -> Iterator[float]:
    """The pauses between polls, in order: growing from first_delay to max_delay, then late_max_delay once the
    pauses add up to usual_window (a larger max_delay, e.g. a CloudFormation stack's, is kept throughout)."""
    delay, waited = first_delay, 0.0
    while True:
        yield delay
        waited += delay
        ceiling = max_delay if waited < usual_window else max(max_delay, late_max_delay)
        delay = min(delay * GROWTH, ceiling)


class WaitTimeout(AwsError):
    code = "wait-timeout"


def wait_for(fetch: Callable[[], str], *, done: set[str], failed: set[str] = frozenset(), what: str, how_to_check: str,
             timeout: float, first_delay: float = FIRST_DELAY, max_delay: float = CEILING, sleep: Callable = time.sleep,
             on_state: Callable[[str], None] | None = None,
             on_wait: Callable[[str, float], None] | None = None) -> str:
    """Call fetch() until it returns a state in `done`; raise in a `failed` state or on timeout.

    The first poll comes at once, the next ones on the schedule of poll_delays (module docstring). on_wait(state,
    seconds waited so far) is called after each poll that is neither done nor failed, before the pause (progress
    lines).
    """
    started = time.monotonic()
    slept = 0.0  # counted too: an injected sleep that does not really wait must not spin for `timeout`
    delays = poll_delays(first_delay, max_delay)
    state = ""
    while True:
        polled = time.monotonic()
        state = fetch()
        if on_state:
            on_state(state)
        if state in done:
            return state
        if state in failed:
            raise AwsError(f"{what} went to state '{state}' instead of {'/'.join(sorted(done))}: {how_to_check}.")
        waited = max(time.monotonic() - started, slept)
        if on_wait:
            on_wait(state, waited)
        delay = next(delays)
        if waited + delay > timeout:
            raise WaitTimeout(f"{what} is still '{state}' after {int(timeout)} s: {how_to_check}.")
        sleep(max(delay - (time.monotonic() - polled), 0.0))  # the round trip was part of the pause
        slept += delay
