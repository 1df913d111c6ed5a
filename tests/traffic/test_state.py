"""The per-cycle state files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpsfleet_agents.traffic import state
from vpsfleet_agents.traffic.counting import Counter, Ledger


def test_a_cycles_state_reads_back_as_written(tmp_path: Path) -> None:
    ledgers = {"alpha-vps": Ledger(1_234, Counter("b/3", 99), "2026-12-02T10:00:00+00:00", True, None)}
    state.save(tmp_path, "2026-12", ledgers)
    assert state.load(tmp_path, "2026-12") == ledgers
    assert (tmp_path / "2026-12.json").stat().st_mode & 0o777 == 0o640


def test_a_new_cycle_carries_only_the_last_counters_of_the_newest_earlier_file(tmp_path: Path) -> None:
    state.save(tmp_path, "2026-10", {"alpha-vps": Ledger(5, Counter("b/1", 5))})
    state.save(tmp_path, "2026-11", {"alpha-vps": Ledger(7 * 10**12, Counter("b/2", 40), "t", True, "u")})
    state.save(tmp_path, "2027-02", {"alpha-vps": Ledger(1, Counter("x/9", 1))})  # a later file: ignored
    assert state.load(tmp_path, "2026-12") == {"alpha-vps": Ledger(counter=Counter("b/2", 40))}
    assert (tmp_path / "2026-11.json").exists(), "the old month stays as the record"


def test_no_state_at_all_is_an_empty_start(tmp_path: Path) -> None:
    assert state.load(tmp_path / "none", "2026-12") == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "unreadable state"),
        (json.dumps({"format": 1, "guests": []}), "not a state file"),
        (json.dumps({"format": 1, "guests": {"a": {"counted_bytes": -1}}}), "guests.a.counted_bytes"),
        (
            json.dumps({"format": 1, "guests": {"a": {"counted_bytes": 1, "counter": {"identity": 3}}}}),
            "guests.a.counter",
        ),
    ],
)
def test_a_damaged_state_stops_the_job_instead_of_forgetting_the_count(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "2026-12.json").write_text(content)
    with pytest.raises(state.StateError, match=message):
        state.load(tmp_path, "2026-12")
