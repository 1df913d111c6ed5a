"""A store at its session limit (issue 15 part 5): the built set waits for a session, bounded by
`retry.busy_waits` and the hard stop; any other failure is not waited for."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from vpsfleet_agents.backup.config import ConfigError, RetryConfig, parse_retry
from vpsfleet_agents.backup.reasons import BackupError, StoreBusy
from vpsfleet_agents.backup.run import publish_when_a_session_frees

BUSY = "lftp exited 1: max-retries exceeded | 530 Too many sessions, try again later"


class Store:
    """Refuses `busy` times, then publishes; counts what it was asked."""

    def __init__(self, busy: int, failure: BackupError | None = None) -> None:
        self.busy, self.failure, self.calls = busy, failure, 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        if self.calls <= self.busy:
            raise StoreBusy(BUSY)
        return {"published": True}


def later(minutes: float) -> dt.datetime:
    return dt.datetime.now().astimezone() + dt.timedelta(minutes=minutes)


def test_a_busy_store_is_asked_again_with_the_same_set() -> None:
    store, waited = Store(busy=3), list[float]()
    retry = RetryConfig(busy_waits=5, busy_wait_seconds=60)
    assert publish_when_a_session_frees(retry, later(60), store, waited.append) == {"published": True}
    assert store.calls == 4 and waited == [60, 60, 60]


def test_the_waits_are_bounded_then_the_attempt_fails_as_the_stores() -> None:
    store, waited = Store(busy=10), list[float]()
    retry = RetryConfig(busy_waits=2, busy_wait_seconds=1)
    with pytest.raises(StoreBusy) as err:
        publish_when_a_session_frees(retry, None, store, waited.append)
    assert err.value.reason == "store_unreachable"  # retried by the night (night.py)
    assert store.calls == 3 and waited == [1, 1]


def test_no_wait_reaches_the_hard_stop() -> None:
    store, waited = Store(busy=10), list[float]()
    retry = RetryConfig(busy_waits=30, busy_wait_seconds=120)
    with pytest.raises(StoreBusy):
        publish_when_a_session_frees(retry, later(1), store, waited.append)
    assert store.calls == 1 and waited == []


@pytest.mark.parametrize("reason", ["store_unreachable", "auth_failed", "quota"])
def test_other_failures_are_not_waited_for(reason: str) -> None:
    store, waited = Store(busy=0, failure=BackupError(reason, "lftp exited 1: no")), list[float]()
    retry = RetryConfig(busy_waits=30, busy_wait_seconds=1)
    with pytest.raises(BackupError) as err:
        publish_when_a_session_frees(retry, later(60), store, waited.append)
    assert err.value.reason == reason and store.calls == 1 and waited == []


def test_busy_settings_are_checked() -> None:
    assert parse_retry({"busy_waits": 0}).busy_waits == 0
    with pytest.raises(ConfigError, match=r"retry\.busy_wait_seconds: expected at least 1"):
        parse_retry({"busy_wait_seconds": 0})
