"""`validate --against` and M28: a mitigation on at the previous version is neither removed nor
shortened before its minimum (its offer's at that version, from its `since`)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from vpsfleet.cli import main
from vpsfleet.history import check_against
from vpsfleet.loader import load_fleet
from vpsfleet.mitigation import start, stop

from .test_mitigation import FLEET, HOUR, T

# web1 (managed, 26 h) under mitigation since 1 December 10:00: it may end from 2 December
# 12:00 on. Its record, as `mitigation start` writes it:
RECORD = ("    mitigation:\n      since: 2026-12-01T10:00:00Z\n      profile: web\n"
          "      reason: flood\n")
EARLIEST = "2026-12-02T12:00:00Z"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c",
                           "user.email=t@example.com", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yml"
    path.write_text(FLEET)
    start(path, "web1", profile="web", reason="flood", now=T)
    assert RECORD in path.read_text()
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "fleet.yml")
    git(tmp_path, "commit", "-qm", "web1 under mitigation")
    return tmp_path


def problems(repo: Path, now: dt.datetime, old: str | None = None, new: str = "") -> list[str]:
    path = repo / "fleet.yml"
    if old is not None:
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
    fleet = load_fleet(path, today=now.date())  # valid on its own: only history refuses it
    return [f"{p.location}: {p.message}"
            for p in check_against(fleet, path, "HEAD", today=now.date(), now=now)]


def test_removing_it_before_the_minimum_is_refused(repo: Path) -> None:
    found = problems(repo, T + 25 * HOUR, RECORD, "")
    assert len(found) == 1
    assert found[0].startswith("guests[0].mitigation: removes it: web1's mitigation on since "
                               "2026-12-01T10:00:00Z at HEAD may end from "
                               f"{EARLIEST} on, not before (26 h, M28)")


def test_an_end_before_the_minimum_is_refused(repo: Path) -> None:
    found = problems(repo, T + 2 * HOUR, "      reason: flood\n",
                     "      reason: flood\n      ends_at: 2026-12-01T12:00:00Z\n")
    assert found == [f"guests[0].mitigation.ends_at: ends it at 2026-12-01T12:00:00Z, which "
                     f"shortens it: web1's mitigation on since 2026-12-01T10:00:00Z at HEAD may "
                     f"end from {EARLIEST} on, not before (26 h, M28)"]


def test_lowering_the_offers_minimum_during_it_is_refused(repo: Path) -> None:
    found = problems(repo, T + 2 * HOUR, "    mitigation_minimum_hours: 26  # PHOSPHORE\n", "")
    assert found == ["guests[0].offer: its minimum would drop from 26 h to 24 h (offer managed), "
                     "which shortens it: web1's mitigation on since 2026-12-01T10:00:00Z at HEAD "
                     f"may end from {EARLIEST} on, not before (26 h, M28)"]


def test_moving_the_start_is_a_removal(repo: Path) -> None:
    found = problems(repo, T + 2 * HOUR, "since: 2026-12-01T10:00:00Z", "since: 2026-11-30T10:00:00Z")
    assert [f.split(":", 1)[0] for f in found] == ["guests[0].mitigation"]


def test_after_the_minimum_an_end_or_a_removal_is_accepted(repo: Path) -> None:
    assert problems(repo, T + 26 * HOUR, RECORD, "") == []
    git(repo, "checkout", "-q", "--", "fleet.yml")
    stop(repo / "fleet.yml", "web1", now=T + 26 * HOUR)
    assert problems(repo, T + 26 * HOUR) == []


def test_stop_then_a_new_start_keeps_the_history_accepted(repo: Path) -> None:
    path = repo / "fleet.yml"
    stop(path, "web1", now=T + 26 * HOUR)
    git(repo, "commit", "-qam", "web1: mitigation ended")
    start(path, "web1", profile="strict", reason="again", now=T + 30 * HOUR)
    assert problems(repo, T + 30 * HOUR) == []
    # ...and the new one is protected in turn: it may end from 2 Dec 16:00 + 26 h.
    git(repo, "commit", "-qam", "web1: mitigation again")
    found = problems(repo, T + 31 * HOUR, "      profile: strict\n      reason: again\n",
                     "      profile: strict\n      reason: again\n"
                     "      ends_at: 2026-12-02T17:00:00Z\n")
    assert len(found) == 1 and "may end from 2026-12-03T18:00:00Z on" in found[0]


def test_validate_against_on_the_command_line(repo: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = repo / "fleet.yml"
    path.write_text(path.read_text().replace(RECORD, "", 1))
    # --today judges the minimum at 00:00 UTC that day: 2 December 00:00 is before 12:00.
    assert main(["validate", str(path), "--against", "HEAD", "--today", "2026-12-02"]) == 1
    err = capsys.readouterr().err
    assert "guests[0].mitigation: removes it" in err and f"may end from {EARLIEST} on" in err
    assert main(["validate", str(path), "--against", "HEAD", "--today", "2026-12-03"]) == 0


def test_a_dedicated_servers_mitigation_is_kept_as_a_guests(tmp_path: Path) -> None:
    """Kept at the edge router (edge_rules.py), the same record and the same minimum."""
    path = tmp_path / "fleet.yml"
    path.write_text(FLEET)
    start(path, "dedi1", profile="web", reason="flood", now=T)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "fleet.yml")
    git(tmp_path, "commit", "-qm", "dedi1 under mitigation")
    text = path.read_text()
    begin = text.index("    mitigation:\n", text.index("- name: dedi1"))
    record = text[begin:text.index("\n\n# The end", begin) + 1]
    assert "reason: flood" in record and "dedi1" not in record
    found = problems(tmp_path, T + 2 * HOUR, record, "")
    assert len(found) == 1
    assert found[0].startswith("dedicated_servers[0].mitigation: removes it: dedi1's mitigation")
    assert problems(tmp_path, T + 27 * HOUR) == []  # unchanged: nothing to say
