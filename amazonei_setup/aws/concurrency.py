"""Running independent AWS calls at once, and stopping them when the user presses Ctrl-C.

boto3 clients are thread-safe once built, so independent calls run on a thread pool. Workers
that wait (polling, retry back-off) sleep through `cancellable_sleep`, so setting the shared
cancel event stops them at their next pause instead of after a ten-minute wait.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from graphlib import TopologicalSorter


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


LOOKUP_BUDGET = 90.0  # seconds for one round of look-ups: botocore's retries of a hung call would take minutes


class LookupTimeout(Exception):
    """A read-only look-up that did not answer within its budget (its thread is left to finish on its own)."""


def look_up_concurrently(jobs: dict[str, Callable], *, budget: float | None = None,
                         optional: Mapping[str, object] | None = None,
                         optional_budget: float | None = None) -> dict[str, object]:
    """Run read-only look-ups at once; each result is a value or the exception it raised.

    Unlike run_concurrently, nothing here is waited for once the caller stops: the workers are daemon threads, so a
    Ctrl-C leaves at once even while a call hangs, and the process can exit (a pool's threads would be joined at
    exit). Only for calls that change nothing: an abandoned one has nothing to record.
    A job still running after `budget` seconds gets LookupTimeout. `optional` (name -> the value to use instead)
    names the jobs the caller can do without: after `optional_budget` seconds, once every other job is done, they
    get their stand-in value instead of holding up the rest."""
    import queue
    import time

    optional = dict(optional or {})
    results: dict[str, object] = {}
    answers: queue.SimpleQueue = queue.SimpleQueue()

    def work(key: str, job: Callable) -> None:
        try:
            answers.put((key, job()))
        except BaseException as err:  # noqa: BLE001 - handed back to the caller to explain
            answers.put((key, err))

    for key, job in jobs.items():
        threading.Thread(target=work, args=(key, job), name=f"look-up {key}", daemon=True).start()
    started = time.monotonic()
    while len(results) < len(jobs):
        waited = time.monotonic() - started
        pending = [k for k in jobs if k not in results]
        if optional_budget is not None and waited >= optional_budget and all(k in optional for k in pending):
            results.update({k: optional[k] for k in pending})
            break
        if budget is not None and waited >= budget:
            results.update({k: optional[k] if k in optional else LookupTimeout(k) for k in pending})
            break
        deadlines = [d for d in (budget, optional_budget) if d is not None and d > waited]
        try:
            key, value = answers.get(timeout=min(deadlines) - waited if deadlines else None)
        except queue.Empty:
            continue
        results[key] = value
    return results


Step = Callable[[Mapping[str, object]], object]


def run_graph(steps: Mapping[str, tuple[tuple[str, ...], Step]], pool: ThreadPoolExecutor,
              before_each: Callable[[], None] = lambda: None) -> dict[str, object]:
    """Run a graph of steps on `pool`: name -> (the names it needs, step). Each step is submitted once all it
    needs have finished, and gets their results (name -> value); no worker ever waits for another, so a pool
    smaller than the graph cannot deadlock and every worker is doing an AWS call or a wait of its own.

    The first step that fails ends the scheduling: its exception is raised here (nothing that needs it starts),
    and steps already running are the caller's to wait for (provision's rollback does). `before_each` runs in
    the scheduling thread before each submission (provision's cancellation check)."""
    sorter = TopologicalSorter({name: needs for name, (needs, _) in steps.items()})
    sorter.prepare()
    results: dict[str, object] = {}
    running: dict = {}
    while sorter.is_active():
        for name in sorter.get_ready():
            before_each()
            running[pool.submit(steps[name][1], results)] = name
        done, _ = wait_futures(running, return_when=FIRST_COMPLETED)
        for future in done:
            name = running.pop(future)
            results[name] = future.result()
            sorter.done(name)
    return results
