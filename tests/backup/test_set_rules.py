"""The agent's pure rules: what is a set, retention by folder name, checksums, names."""

from __future__ import annotations

import datetime as dt
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

TODAY = dt.date(2026, 11, 23)


def test_only_dated_folders_are_sets(agent: ModuleType) -> None:
    names = ["2026-11-22", "2026-11-23.partial", "2026-11-21.superseded", "notes", "2026-02-30"]
    assert agent.published_sets(names) == ["2026-11-22"]


def test_retention_keeps_the_offers_days(agent: ModuleType) -> None:
    names = [(TODAY - dt.timedelta(days=d)).isoformat() for d in range(20)]
    expired = agent.select_expired(names, TODAY, 15)
    assert expired == sorted(names)[:5]  # 15 nights kept: today and the 14 before


def test_retention_never_removes_the_newest_set(agent: ModuleType) -> None:
    # A guest whose backups stopped a month ago keeps its last set.
    assert agent.select_expired(["2026-10-01", "2026-10-02"], TODAY, 15) == ["2026-10-01"]
    assert agent.select_expired(["2026-10-02", "2026-10-02.partial"], TODAY, 1) == []


@given(
    st.lists(st.dates(dt.date(2026, 1, 1), dt.date(2026, 12, 31)), max_size=30),
    st.integers(min_value=1, max_value=60),
)
def test_retention_properties(agent: ModuleType, dates: list[dt.date], keep: int) -> None:
    names = [d.isoformat() for d in dates] + ["2026-11-20.partial", "lost+found"]
    expired = agent.select_expired(names, TODAY, keep)
    sets = agent.published_sets(names)
    if sets:
        assert sets[-1] not in expired
    for name in expired:
        assert dt.date.fromisoformat(name) <= TODAY - dt.timedelta(days=keep)
    for name in set(sets) - set(expired) - {sets[-1] if sets else ""}:
        assert dt.date.fromisoformat(name) > TODAY - dt.timedelta(days=keep)


def test_stale_folders_of_an_interrupted_run(agent: ModuleType) -> None:
    names = ["2026-11-22", "2026-11-22.superseded", "2026-11-23.partial", "2026-11-20.superseded"]
    assert agent.stale_folders(names) == ["2026-11-22.superseded", "2026-11-23.partial"]
    assert agent.orphaned_superseded(names) == ["2026-11-20.superseded"]


def test_sha256sums_round_trip_in_sha256sum_format(agent: ModuleType) -> None:
    sums = {"www.tar.gz": "a" * 64, "db/shop.sql.gz": "b" * 64}
    text = agent.format_sha256sums(sums)
    assert text == f"{'b' * 64}  db/shop.sql.gz\n{'a' * 64}  www.tar.gz\n"
    assert agent.parse_sha256sums(text) == sums
    with pytest.raises(ValueError, match="not a sha256sum line"):
        agent.parse_sha256sums("xyz  www.tar.gz\n")


def test_database_names_become_safe_file_names(agent: ModuleType) -> None:
    assert agent.database_file_name("shop_2", ".gz") == "db/shop_2.sql.gz"
    assert agent.database_file_name("a/b c", ".zst") == "db/a%2Fb%20c.sql.zst"
    assert agent.database_file_name("..", ".gz") == "db/%2E..sql.gz"


def test_deadline_is_the_next_occurrence(agent: ModuleType) -> None:
    start = dt.datetime(2026, 11, 23, 0, 40)
    assert agent.deadline_after(start, "02:55") == dt.datetime(2026, 11, 23, 2, 55)
    late = dt.datetime(2026, 11, 23, 14, 0)  # a run on request in the day
    assert agent.deadline_after(late, "02:55") == dt.datetime(2026, 11, 24, 2, 55)


def test_listing_parser_reads_lftp_cls(agent: ModuleType) -> None:
    text = (
        "    4096 ./2026-11-22/\n  300000 2026-11-23.partial/www.tar.gz\n     157 ./SHA256SUMS\n"
        "./2026-11-21/\n         2026-11-23.partial/db/\n"  # ProFTPD: folders without a size
    )
    assert agent.Store.parse_listing(text) == {
        "2026-11-22": None,
        "2026-11-21": None,
        "2026-11-23.partial/db": None,
        "2026-11-23.partial/www.tar.gz": 300000,
        "SHA256SUMS": 157,
    }


@pytest.mark.parametrize(
    ("stderr", "replies", "reason"),
    [
        ("cd: Login failed: 530 Login incorrect.", "", "auth_failed"),
        ("cd: Fatal error: max-retries exceeded", "530 Authentication failed.", "auth_failed"),
        ("Fatal error: Certificate verification: certificate common name doesn't match", "",
         "tls_failed"),
        ("cd: Login failed: ftp:ssl-force is set and server does not support or allow SSL", "",
         "tls_failed"),
        ("put: Access failed: 552 Disk quota exceeded", "", "quota"),
        ("put: Fatal error: max-retries exceeded", "426 Disk quota exceeded", "quota"),
        ("cd: Fatal error: max-retries exceeded", "", "store_unreachable"),
        ("mv: Access failed: 550 Permission denied", "550 Permission denied", "upload_failed"),
    ],
)  # fmt: skip
def test_lftp_failures_are_classified(
    agent: ModuleType, stderr: str, replies: str, reason: str
) -> None:
    assert agent.classify_lftp_error(stderr, replies) == reason
