"""The agent's pure rules: what is a set, retention by folder name, checksums, names."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpsfleet_agents.backup.ftps import Store, classify_lftp_error
from vpsfleet_agents.backup.sets import (
    database_file_name,
    format_sha256sums,
    future_sets,
    orphaned_superseded,
    parse_sha256sums,
    published_sets,
    select_expired,
    set_date,
    stale_folders,
)
from vpsfleet_agents.backup.supervise import deadline_after

TODAY = dt.date(2026, 11, 23)


def test_only_dated_folders_are_sets() -> None:
    names = ["2026-11-22", "2026-11-23.partial", "2026-11-21.superseded", "notes", "2026-02-30"]
    assert published_sets(names) == ["2026-11-22"]


@pytest.mark.parametrize(
    "name",
    [
        "2026-11-22\n",  # `$` would take it
        "\u0662\u0660\u0662\u0666-11-22",  # Arabic-Indic digits: `\d` would take them
        "\uff12\uff10\uff12\uff16-11-22",  # fullwidth digits
        "2026-11-22x",
        " 2026-11-22",
        "2026-1-22",
        "02026-11-22",
        "2026-13-01",
        "2026-02-29",
        "0000-01-01",
        "9999-99-99",
        "",
    ],
)
def test_garbage_folder_names_are_never_sets(name: str) -> None:
    """A tenant's folder names are guest input: anything but exactly YYYY-MM-DD (ASCII digits,
    a real date) is not a set, and never an exception."""
    assert set_date(name) is None
    assert published_sets([name, "2026-11-22"]) == ["2026-11-22"]
    assert select_expired([name], TODAY, 1, 1) == []
    assert future_sets([name], TODAY) == []


def test_retention_keeps_the_offers_days() -> None:
    names = [(TODAY - dt.timedelta(days=d)).isoformat() for d in range(20)]
    expired = select_expired(names, TODAY, 15, 3)
    assert expired == sorted(names)[:5]  # 15 nights kept: today and the 14 before


def test_retention_never_removes_the_newest_set() -> None:
    # A guest whose backups stopped a month ago keeps its last sets: the day judged from is the
    # newest set's next day, not today.
    assert select_expired(["2026-10-01", "2026-10-02"], TODAY, 15, 1) == []
    assert select_expired(["2026-09-01", "2026-10-02"], TODAY, 15, 1) == ["2026-09-01"]
    assert select_expired(["2026-10-02", "2026-10-02.partial"], TODAY, 1, 1) == []


# (sets on the store, today, keep_days, minimum_sets, expected expired)
CLOCK_CASES = [
    # Normal nights: 3 kept of 5.
    (["2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"], TODAY, 3, 1,
     ["2026-11-19", "2026-11-20"]),
    # The store's (or guest's) clock jumps a year ahead: judged from the newest set + 1 day,
    # as if the next night had come, not as if a year had passed.
    (["2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"],
     dt.date(2027, 11, 23), 3, 1, ["2026-11-19", "2026-11-20", "2026-11-21"]),
    # A guest's clock ran ahead one night and named a set in the future: never the newest,
    # never deleted, and today's sets are judged as if it were not there.
    (["2026-11-20", "2026-11-21", "2026-11-22", "2027-05-01"], TODAY, 2, 1, ["2026-11-20", "2026-11-21"]),
    # Only future sets: nothing to judge by, nothing deleted.
    (["2027-05-01", "2027-05-02"], TODAY, 1, 1, []),
    # Tomorrow is not the future (a guest east of the store).
    (["2026-11-20", "2026-11-21", "2026-11-24"], TODAY, 2, 1, ["2026-11-20", "2026-11-21"]),
    # The minimum: never fewer than 3 sets left, however old.
    (["2026-01-01", "2026-02-01", "2026-03-01", "2026-11-23"], TODAY, 15, 3, ["2026-01-01"]),
    (["2026-01-01", "2026-02-01", "2026-11-23"], TODAY, 15, 3, []),
    # The minimum does not count future sets: 2 real sets left, not 1 real + 1 future.
    (["2026-01-01", "2026-02-01", "2026-11-23", "2030-01-01"], TODAY, 1, 2, ["2026-01-01"]),
    # A clock that jumps back: newer sets are "future", kept; nothing older is judged by them.
    (["2026-11-21", "2026-11-22", "2026-11-23"], dt.date(2026, 1, 1), 1, 1, []),
]  # fmt: skip


@pytest.mark.parametrize(("names", "today", "keep", "minimum", "expected"), CLOCK_CASES)
def test_retention_survives_clocks_that_jump(
    names: list[str], today: dt.date, keep: int, minimum: int, expected: list[str]
) -> None:
    assert select_expired(names, today, keep, minimum) == expected


def test_future_sets_are_named() -> None:
    names = ["2026-11-22", "2026-11-24", "2026-11-25", "2027-01-01", "2026-11-25.partial", "x"]
    assert future_sets(names, TODAY) == ["2026-11-25", "2027-01-01"]


@given(
    st.lists(st.dates(dt.date(2025, 1, 1), dt.date(2027, 12, 31)), max_size=30),
    st.dates(dt.date(2025, 6, 1), dt.date(2027, 6, 1)),
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=1, max_value=10),
)
def test_retention_properties(dates: list[dt.date], today: dt.date, keep: int, minimum: int) -> None:
    names = [d.isoformat() for d in dates] + ["2026-11-20.partial", "lost+found", "2026-11-20\n"]
    expired = select_expired(names, today, keep, minimum)
    horizon = today + dt.timedelta(days=1)
    present = [n for n in published_sets(names) if dt.date.fromisoformat(n) <= horizon]
    assert expired == sorted(set(expired))  # oldest first, once each
    assert set(expired) <= set(present)  # never a future set, never a non-set
    if present:
        newest = dt.date.fromisoformat(present[-1])
        assert present[-1] not in expired
        assert len(present) - len(expired) >= min(minimum, len(present))
        judged = min(today, newest + dt.timedelta(days=1))
        for name in expired:  # only sets older than keep nights before the day judged from
            assert dt.date.fromisoformat(name) <= judged - dt.timedelta(days=keep)
        kept_old = [
            n for n in present[:-1]
            if n not in expired and dt.date.fromisoformat(n) <= judged - dt.timedelta(days=keep)
        ]  # fmt: skip
        if kept_old:  # an old set is kept only for the minimum
            assert len(present) - len(expired) == min(minimum, len(present))
    else:
        assert expired == []


def test_stale_folders_of_an_interrupted_run() -> None:
    names = ["2026-11-22", "2026-11-22.superseded", "2026-11-23.partial", "2026-11-20.superseded"]
    assert stale_folders(names) == ["2026-11-22.superseded", "2026-11-23.partial"]
    assert orphaned_superseded(names) == ["2026-11-20.superseded"]


def test_sha256sums_round_trip_in_sha256sum_format() -> None:
    sums = {"www.tar.gz": "a" * 64, "db/shop.sql.gz": "b" * 64}
    text = format_sha256sums(sums)
    assert text == f"{'b' * 64}  db/shop.sql.gz\n{'a' * 64}  www.tar.gz\n"
    assert parse_sha256sums(text) == sums
    with pytest.raises(ValueError, match="not a sha256sum line"):
        parse_sha256sums("xyz  www.tar.gz\n")


def test_database_names_become_safe_file_names() -> None:
    assert database_file_name("shop_2", ".gz") == "db/shop_2.sql.gz"
    assert database_file_name("a/b c", ".zst") == "db/a%2Fb%20c.sql.zst"
    assert database_file_name("..", ".gz") == "db/%2E..sql.gz"


def test_deadline_is_the_next_occurrence() -> None:
    start = dt.datetime(2026, 11, 23, 0, 40)
    assert deadline_after(start, "02:55") == dt.datetime(2026, 11, 23, 2, 55)
    late = dt.datetime(2026, 11, 23, 14, 0)  # a run on request in the day
    assert deadline_after(late, "02:55") == dt.datetime(2026, 11, 24, 2, 55)


def test_listing_parser_reads_lftp_cls() -> None:
    text = (
        "    4096 ./2026-11-22/\n  300000 2026-11-23.partial/www.tar.gz\n     157 ./SHA256SUMS\n"
        "./2026-11-21/\n         2026-11-23.partial/db/\n"  # ProFTPD: folders without a size
    )
    assert Store.parse_listing(text) == {
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
        # The data connection cut under lftp mid-transfer: its message is GnuTLS's, the reply says why.
        ("put: Fatal error: gnutls_record_send: Error in the push function.",
         "552 Transfer aborted. Disk quota exceeded", "quota"),
        ("cd: Fatal error: max-retries exceeded", "", "store_unreachable"),
        ("mv: Access failed: 550 Permission denied", "550 Permission denied", "upload_failed"),
    ],
)  # fmt: skip
def test_lftp_failures_are_classified(stderr: str, replies: str, reason: str) -> None:
    assert classify_lftp_error(stderr, replies) == reason
