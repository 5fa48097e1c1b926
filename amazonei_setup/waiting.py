"""Polling until AWS reaches a state, shared by setup and teardown."""
from __future__ import annotations

import time
from collections.abc import Callable

from amazonei_setup.errors import AwsError


class WaitTimeout(AwsError):
    code = "wait-timeout"


def wait_for(fetch: Callable[[], str], *, done: set[str], failed: set[str] = frozenset(), what: str, how_to_check: str,
             timeout: float, first_delay: float = 1.0, max_delay: float = 5.0, sleep: Callable = time.sleep,
             on_state: Callable[[str], None] | None = None,
             on_wait: Callable[[str, float], None] | None = None) -> str:
    """Call fetch() until it returns a state in `done`; raise in a `failed` state or on timeout.

    The first poll comes quickly (moto and fast paths finish at once), then the interval grows
    to max_delay so a ten-minute wait costs ~120 calls, not thousands. on_wait(state, seconds waited so far)
    is called after each poll that is neither done nor failed, before the pause (progress lines).
    """
    started = time.monotonic()
    slept = 0.0  # counted too: an injected sleep that does not really wait must not spin for `timeout`
    delay = first_delay
    state = ""
    while True:
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
        if waited + delay > timeout:
            raise WaitTimeout(f"{what} is still '{state}' after {int(timeout)} s: {how_to_check}.")
        sleep(delay)
        slept += delay
        delay = min(delay * 1.5, max_delay)
