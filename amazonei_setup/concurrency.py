"""Running independent AWS calls at once, and stopping them when the user presses Ctrl-C.

boto3 clients are thread-safe once built, so independent calls run on a thread pool. Workers
that wait (polling, retry back-off) sleep through `cancellable_sleep`, so setting the shared
cancel event stops them at their next pause instead of after a ten-minute wait.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


class Cancelled(Exception):
    """Raised inside a worker once the run it belongs to is being stopped."""


def cancellable_sleep(cancel: threading.Event, sleep: Callable[[float], None] | None = None) -> Callable:
    """A sleep that raises Cancelled once `cancel` is set. With no `sleep` given it waits on the
    event itself (wakes at once); an injected sleep (tests) is called, then the event checked."""
    def _sleep(seconds: float) -> None:
        if sleep is None:
            stopped = cancel.wait(seconds)
        else:
            sleep(seconds)
            stopped = cancel.is_set()
        if stopped:
            raise Cancelled()
    return _sleep


def run_concurrently(jobs: dict[str, Callable], cancel: threading.Event | None = None) -> dict[str, object]:
    """Run independent calls at once; each result is a value or the exception it raised.

    If the caller is interrupted while waiting (Ctrl-C), `cancel` is set, queued jobs are dropped
    and running ones are waited for: they stop at their next cancellable sleep, and whatever AWS
    call they are in finishes, so nothing they created goes unrecorded.
    """
    results: dict[str, object] = {}
    if not jobs:
        return results
    pool = ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="aws")
    try:
        futures = {key: pool.submit(job) for key, job in jobs.items()}
        for key, future in futures.items():
            try:
                results[key] = future.result()
            except Exception as err:  # noqa: BLE001 - handed back to the caller to explain
                results[key] = err
    except BaseException:
        if cancel is not None:
            cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results
