"""concurrency.run_graph: the scheduler provision's setup graph runs on (issue 15: no worker waits for another)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from amazonei_setup.aws.concurrency import run_graph


def test_a_graph_larger_than_the_pool_runs_each_step_after_what_it_needs():
    order: list[str] = []

    def step(name, value):
        def run(done):
            order.append(name)
            return value(done)
        return run

    steps = {
        "role": ((), step("role", lambda _: "r")),
        "group": ((), step("group", lambda _: "g")),
        "policy": (("role",), step("policy", lambda done: done["role"] + "+p")),
        "launch": (("policy", "group"), step("launch", lambda done: f"{done['policy']}|{done['group']}")),
    }
    finished: dict = {}
    with ThreadPoolExecutor(max_workers=1) as pool:  # a worker that waited for another would hang here
        scheduler = threading.Thread(target=lambda: finished.update(run_graph(steps, pool)), daemon=True)
        scheduler.start()
        scheduler.join(timeout=10)
    assert not scheduler.is_alive(), "a step waited for another inside the only worker"
    assert finished["launch"] == "r+p|g"
    assert order.index("role") < order.index("policy") < order.index("launch")
    assert order.index("group") < order.index("launch")


def test_the_first_failure_is_raised_and_nothing_that_needs_it_starts():
    started: list[str] = []
    release = threading.Event()

    def slow_independent(_):
        started.append("slow")
        release.wait(5)
        return "slow done"

    def failing(_):
        started.append("failing")
        raise RuntimeError("AWS said no")

    steps = {
        "slow": ((), slow_independent),
        "failing": ((), failing),
        "after-failing": (("failing",), lambda _: started.append("after-failing")),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        with pytest.raises(RuntimeError, match="AWS said no"):
            run_graph(steps, pool)
        assert "after-failing" not in started
        release.set()  # the step already running is the caller's to wait for (provision's rollback does)
    assert started.count("slow") == 1
