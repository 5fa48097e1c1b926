"""waiting.wait_for's schedule (issue 18): fast at first, then backing off to a ceiling, so a wait ends at most 1.5 s
(within AWS's usual transition times) or 3 s (after them) after the state changes, with few describe calls.

A fake clock stands in for time: its sleep advances it, and waiting's monotonic reads it. The tests assert the
schedule (when polls happen, how many), never wall time."""
from __future__ import annotations

import pytest

from amazonei_setup.aws import waiting
from amazonei_setup.aws.waiting import WaitTimeout, wait_for
from amazonei_setup.core.errors import AwsError


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(waiting.time, "monotonic", fake.monotonic)
    return fake


def changes_at(clock: FakeClock, seconds: float, polls: list[float]):
    """A resource that is `pending` until `seconds` on the clock, then `available`; records when it was polled."""
    def fetch() -> str:
        polls.append(clock.now)
        return "available" if clock.now >= seconds else "pending"
    return fetch


def wait(clock: FakeClock, fetch, timeout: float = 600.0, **kwargs) -> str:
    return wait_for(fetch, done={"available"}, failed={"failed"}, what="Thing", how_to_check="look at it",
                    timeout=timeout, sleep=clock.sleep, **kwargs)


def test_the_first_poll_is_immediate_and_a_state_already_reached_costs_one_call(clock):
    polls: list[float] = []
    assert wait(clock, changes_at(clock, 0, polls)) == "available"
    assert polls == [0.0] and clock.sleeps == []


def test_polls_start_fast_then_keep_a_one_and_a_half_second_beat(clock):
    polls: list[float] = []
    wait(clock, changes_at(clock, 30, polls))
    assert clock.sleeps[:3] == [1.0, 1.5, 1.5]
    assert set(clock.sleeps[1:]) == {1.5}


def test_a_polls_round_trip_counts_toward_its_pause(clock):
    """A describe call takes ~0.1-0.2 s on AWS: the polls keep their beat instead of drifting by it."""
    polls: list[float] = []
    fetch = changes_at(clock, 10, polls)

    def slow_fetch() -> str:
        clock.now += 0.25
        return fetch()

    wait(clock, slow_fetch)
    assert clock.sleeps[:3] == [0.75, 1.25, 1.25]
    assert [b - a for a, b in zip(polls, polls[1:], strict=False)][:3] == [1.0, 1.5, 1.5]


@pytest.mark.parametrize("change", [0.5, 3, 7.2, 20, 20.01, 33.3, 40, 61, 119.9])
def test_a_wait_ends_within_one_and_a_half_seconds_of_a_change_in_the_usual_window(clock, change):
    polls: list[float] = []
    wait(clock, changes_at(clock, change, polls))
    assert change <= polls[-1] <= change + 1.5


@pytest.mark.parametrize("change", [121, 200.5, 333, 590])
def test_after_the_usual_window_a_wait_is_never_more_than_three_seconds_late(clock, change):
    polls: list[float] = []
    wait(clock, changes_at(clock, change, polls))
    assert change <= polls[-1] <= change + 3.0
    assert max(clock.sleeps) == (3.0 if polls[-1] > 123 else 1.5)


@pytest.mark.parametrize(("change", "most_calls"), [(20, 15), (40, 28), (60, 42), (120, 82), (590, 240)])
def test_the_number_of_describe_calls_stays_modest(clock, change, most_calls):
    polls: list[float] = []
    wait(clock, changes_at(clock, change, polls))
    assert len(polls) <= most_calls


def test_a_longer_ceiling_asked_for_is_kept(clock):
    """CloudFormation stacks take minutes and show events per poll: their wait asks for 10 s pauses."""
    polls: list[float] = []
    wait(clock, changes_at(clock, 100, polls), max_delay=10.0)
    assert max(clock.sleeps) == 10.0 and len(polls) < 20


def test_on_wait_hears_each_pending_poll_with_the_seconds_waited(clock):
    heard: list[tuple[str, float]] = []
    wait(clock, changes_at(clock, 5, []), on_wait=lambda state, waited: heard.append((state, waited)))
    assert heard == [("pending", 0.0), ("pending", 1.0), ("pending", 2.5), ("pending", 4.0)]


def test_the_timeout_is_a_budget_of_waiting_and_names_the_state(clock):
    with pytest.raises(WaitTimeout) as raised:
        wait(clock, changes_at(clock, 10_000, []), timeout=60)
    assert "Thing is still 'pending' after 60 s: look at it." in str(raised.value)
    assert 57 <= sum(clock.sleeps) <= 60


def test_a_failed_state_stops_the_wait_at_once(clock):
    with pytest.raises(AwsError) as raised:
        wait(clock, lambda: "failed")
    assert "went to state 'failed'" in str(raised.value) and clock.sleeps == []
