"""The network operations accept a dedicated server (004: M6, M7, M28), as fleet edits of its
entry with the same rules as a guest's: an SMTP block's durations and history, a suspension and
its resume, a mitigation that cannot stop before its offer's minimum."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from vpsfleet import load_fleet
from vpsfleet.commands.operations import OperationRefused, resume, smtp_block, smtp_unblock, suspend
from vpsfleet.mitigation import MitigationRefused, start, stop

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "inventories" / "example-production" / "fleet.yml"
SERVER = "ds-par1-01"
NOW = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yml"
    shutil.copy(EXAMPLE, path)
    return path


def server(path: Path):  # type: ignore[no-untyped-def]
    return next(s for s in load_fleet(path).dedicated_servers if s.name == SERVER)


def test_smtp_blocks_follow_the_policy_durations_and_are_kept(fleet: Path) -> None:
    first = smtp_block(fleet, SERVER, reason="spam", now=NOW)
    assert first == {"number": 1, "until": NOW + dt.timedelta(hours=24)}
    with pytest.raises(OperationRefused, match="already has an active SMTP block"):
        smtp_block(fleet, SERVER, reason="spam", now=NOW + dt.timedelta(hours=1))
    assert smtp_unblock(fleet, SERVER, reason="cleaned", force=False,
                        now=NOW + dt.timedelta(hours=2)) == 1
    second = smtp_block(fleet, SERVER, reason="spam again", now=NOW + dt.timedelta(days=2))
    assert second["until"] == NOW + dt.timedelta(days=2, hours=168)
    blocks = server(fleet).smtp_blocks
    assert [b.reason for b in blocks] == ["spam", "spam again"]
    assert blocks[0].lift_reason == "cleaned"


def test_suspend_and_resume(fleet: Path) -> None:
    suspend(fleet, SERVER, reason="unpaid", today=NOW.date())
    assert server(fleet).state.value == "suspended"
    assert server(fleet).suspended_on == NOW.date()
    with pytest.raises(OperationRefused, match="already suspended"):
        suspend(fleet, SERVER, reason="", today=NOW.date())
    resume(fleet, SERVER, today=NOW.date())
    assert server(fleet).state.value == "active" and server(fleet).suspended_on is None
    assert fleet.read_text() == EXAMPLE.read_text()  # the suspension leaves no trace


def test_mitigation_lasts_the_dedicated_offers_minimum(fleet: Path) -> None:
    started = start(fleet, SERVER, profile=None, reason="FastNetMon", now=NOW)
    assert (started.profile, started.minimum_hours) == ("web", 26)  # the dedicated offer's 26 h
    with pytest.raises(MitigationRefused, match="cannot be switched off before"):
        stop(fleet, SERVER, now=NOW + dt.timedelta(hours=25))
    stopped = stop(fleet, SERVER, now=NOW + dt.timedelta(hours=26))
    assert stopped.ends_at == NOW + dt.timedelta(hours=26)
    assert server(fleet).mitigation is not None


def test_unknown_names_are_refused_with_the_file_unchanged(fleet: Path) -> None:
    before = fleet.read_text()
    with pytest.raises(OperationRefused, match="no guest named 'ds-nope' nor dedicated server"):
        suspend(fleet, "ds-nope", reason="", today=NOW.date())
    with pytest.raises(MitigationRefused, match="no guest named 'ds-nope'"):
        start(fleet, "ds-nope", profile=None, reason="x", now=NOW)
    assert fleet.read_text() == before
