"""A night that heals without the provider (M24, issue 12): after hand-over nobody can log in to an
unmanaged guest to redo a night the store made fail, so the agent retries it itself, inside the
window, against the store's real server (ProFTPD over TLS). Windows and back-offs are seconds."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.backup.conftest import NIGHT, Certs, FtpStore, ProftpdStore, make_config, metrics, need, status
from vpsfleet_agents.backup.config import ConfigError, parse_config
from vpsfleet_agents.backup.night import inside_window, run_night
from vpsfleet_agents.backup.run import run
from vpsfleet_agents.backup.sets import published_sets

PREVIOUS = NIGHT - dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def _tools() -> None:
    need("lftp", "tar", "pigz", "sha256sum")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def hard_stop_in(seconds: float) -> dt.datetime:
    return dt.datetime.now().astimezone() + dt.timedelta(seconds=seconds)


def retrying(tmp_path: Path, server: Any, certs: Certs, site: Path, **retry: Any) -> Any:
    settings = {"attempts": 4, "backoff_seconds": 1, "backoff_max_seconds": 2, **retry}
    return make_config(tmp_path, server, certs, site, retry=settings)


def test_a_store_outage_heals_on_a_later_attempt_the_same_night(
    tmp_path: Path, proftpd: ProftpdStore, certs: Certs, site: Path
) -> None:
    """The store is down when the night starts and back during the back-off: the agent
    publishes that night's set by itself, and every attempt is in the status and metrics."""
    config = retrying(tmp_path, proftpd, certs, site)
    assert run(config, now=PREVIOUS, use_deadline=False).reason == "ok"
    proftpd.stop()
    waits: list[float] = []

    def store_back_while_waiting(seconds: float) -> None:
        waits.append(seconds)
        if proftpd.proc is None:
            proftpd.start()

    outcome = run_night(config, now=NIGHT, deadline=hard_stop_in(120), wait=store_back_while_waiting)
    assert outcome.reason == "ok", outcome.message
    assert published_sets(proftpd.sets()) == ["2026-11-22", "2026-11-23"]
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=proftpd.home / "2026-11-23")
    assert check.returncode == 0
    night = status(config)
    assert [a["reason"] for a in night["night_attempts"]] == ["store_unreachable", "ok"]
    assert night["last_success"]["set"] == "2026-11-23" and night["attempt"] == 2
    assert waits == [1]
    values = metrics(config)
    assert values["vpsfleet_backup_last_run_success"] == 1
    assert values["vpsfleet_backup_last_run_attempt"] == 2
    assert values["vpsfleet_backup_night_attempts"] == 2
    assert values["vpsfleet_backup_next_attempt_timestamp_seconds"] == 0


def test_a_store_down_all_night_is_retried_until_the_hard_stop_only(
    tmp_path: Path, proftpd: ProftpdStore, certs: Certs, site: Path
) -> None:
    """Attempts far from exhausted, the store never back: the retries stop at the hard stop,
    the last good set is intact and still the newest, and the night ends failed."""
    config = retrying(tmp_path, proftpd, certs, site, attempts=1000)
    assert run(config, now=PREVIOUS, use_deadline=False).reason == "ok"
    good = snapshot(proftpd.home / "2026-11-22")
    proftpd.stop()
    outcome = run_night(config, now=NIGHT, deadline=hard_stop_in(6))
    # The last attempt may be the one the hard stop cut short.
    assert outcome.reason in {"store_unreachable", "deadline"}, outcome.message
    assert outcome.exit_code == 1
    night = status(config)
    tries = night["night_attempts"]
    assert 2 <= len(tries) < 1000
    assert {a["reason"] for a in tries[:-1]} == {"store_unreachable"}
    assert "hard stop" in night["retry_stopped"]
    assert night["next_attempt"] is None
    assert night["last_success"]["set"] == "2026-11-22"
    proftpd.start()
    assert snapshot(proftpd.home / "2026-11-22") == good
    assert published_sets(proftpd.sets()) == ["2026-11-22"]
    values = metrics(config)
    assert values["vpsfleet_backup_last_run_success"] == 0
    assert values[f'vpsfleet_backup_last_run_exit_reason{{reason="{outcome.reason}"}}'] == 1
    assert values["vpsfleet_backup_night_attempts"] == len(tries)
    assert values["vpsfleet_backup_next_attempt_timestamp_seconds"] == 0


def test_a_failure_of_the_guests_own_making_is_not_retried(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    broken = tmp_path / "zstd"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    config = make_config(
        tmp_path, store, certs, site, tools={"zstd": str(broken)}, retry={"attempts": 5, "backoff_seconds": 1}
    )
    waits: list[float] = []
    outcome = run_night(config, now=NIGHT, deadline=hard_stop_in(120), wait=waits.append)
    assert outcome.reason == "compress_failed", outcome.message
    assert waits == []
    night = status(config)
    assert len(night["night_attempts"]) == 1
    assert "not a failure another attempt would fix" in night["retry_stopped"]


def test_attempts_are_bounded(tmp_path: Path, store: FtpStore, certs: Certs, site: Path) -> None:
    config = make_config(
        tmp_path,
        store,
        certs,
        site,
        store_settings={"port": 1},  # nothing listens there: store_unreachable at once
        retry={"attempts": 3, "backoff_seconds": 5, "backoff_max_seconds": 8},
    )
    waits: list[float] = []
    outcome = run_night(config, now=NIGHT, deadline=hard_stop_in(600), wait=waits.append)
    assert outcome.reason == "store_unreachable", outcome.message
    assert waits == [5, 8]  # doubled, capped
    assert status(config)["retry_stopped"] == "3 attempt(s) made"


def test_a_run_without_a_deadline_makes_one_attempt(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    config = make_config(tmp_path, store, certs, site, store_settings={"port": 1}, retry={"attempts": 5})
    waits: list[float] = []
    outcome = run_night(config, now=NIGHT, use_deadline=False, wait=waits.append)
    assert outcome.reason == "store_unreachable" and waits == []


def test_only_a_run_started_inside_the_window_is_the_nights() -> None:
    def at(hhmm: str) -> dt.datetime:
        hour, minute = (int(x) for x in hhmm.split(":"))
        return NIGHT.replace(hour=hour, minute=minute)

    deadline = at("02:55")
    assert inside_window(at("00:17"), "00:00", deadline)
    assert inside_window(at("00:00"), "00:00", deadline)
    assert not inside_window(at("02:55"), "00:00", deadline)
    late = at("23:30")  # a window across midnight: 23:00-01:55
    assert inside_window(late, "23:00", at("01:55") + dt.timedelta(days=1))
    assert not inside_window(at("14:00"), "00:00", deadline + dt.timedelta(days=1))


@pytest.mark.parametrize(
    ("retry", "message"),
    [
        ({"attempts": 0}, "retry.attempts: expected at least 1"),
        ({"reasons": ["ok"]}, "retry.reasons"),
        ({"reasons": ["store_down"]}, "retry.reasons"),
        ({"every": 3}, "retry: unknown keys every"),
    ],
)
def test_retry_settings_are_checked(retry: dict[str, Any], message: str) -> None:
    base = {
        "customer": "c1",
        "guest": "g1",
        "store": {"host": "h", "user": "u", "password_file": "/p", "ca_file": "/c"},
    }
    with pytest.raises(ConfigError, match=message):
        parse_config({**base, "retry": retry})
    assert parse_config(base).retry.attempts == 1  # no section: one attempt, as before
