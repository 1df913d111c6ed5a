"""Fixtures of the store program's tests: the program as role backup_store installs it (built from
`vpsfleet_agents.store`), and a store tree with its configuration in a temp folder."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from vpsfleet import agent_build

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 11, 23)
PROGRAM = ROOT / "ansible/roles/backup_store/files/vpsfleet-backup-store"


@pytest.fixture(scope="session")
def program() -> Path:
    """The store's program as the role installs it: the zip application built from the package's
    current sources (once per session)."""
    assert agent_build.built()[PROGRAM.name] == PROGRAM
    assert PROGRAM.read_bytes().startswith(b"#!/usr/bin/python3\n")
    return PROGRAM


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    root = tmp_path / "srv"
    root.mkdir()
    passwd = tmp_path / "ftpd.passwd"
    passwd.write_text("g1:x:1:2::/h:/bin/false\nold:x:1:2::/h:/bin/false\nc1:x:1:2::/h:/bin/false\n")
    passwd.chmod(0o600)
    data: dict[str, Any] = {
        "store": "store-test",
        "root": str(root),
        "guests": [
            {"guest": "g1", "customer": "c1", "state": "active", "terminated_on": None,
             "retention_days": 3, "identity": "g1@2026-01-10"},
            {"guest": "g2", "customer": "c1", "state": "suspended", "terminated_on": None,
             "retention_days": 3, "identity": "g2@2026-01-10"},
            {"guest": "old", "customer": "c1", "state": "terminated", "terminated_on": "2026-11-01",
             "retention_days": 3, "identity": "old@2025-03-01"},
            {"guest": "later", "customer": "c1", "state": "terminated", "terminated_on": "2026-12-31",
             "retention_days": 3, "identity": "later@2025-03-01"},
            {"guest": "gone", "customer": "c2", "state": "terminated", "terminated_on": "2026-11-23",
             "retention_days": 15, "identity": "gone@2025-05-05"},
        ],
        "customers": [{"id": "c1", "quota_bytes": 5000, "guests": ["g1", "g2"], "identity": "c1@2025-01-01"}],
        "retention_minimum_sets": 3,
        "passwd_file": str(passwd),
        "erasure_log": str(tmp_path / "log" / "erasure.log"),
        "quota": {"limit_table": str(tmp_path / "q" / "limit.tab"),
                  "tally_table": str(tmp_path / "q" / "tally.tab")},
        "textfile_dir": str(tmp_path / "textfile"),
        "operations_email": "ops@test.example.net",
        "sendmail": str(tmp_path / "sendmail"),
        "dead_man_states": ["active"],
    }  # fmt: skip
    # A sendmail that keeps what it is given.
    sendmail = tmp_path / "sendmail"
    sendmail.write_text(f"#!/bin/sh\ncat > {tmp_path}/mail.txt\n")
    sendmail.chmod(0o755)
    (tmp_path / "config.json").write_text(json.dumps(data))
    return data


def save(config: dict[str, Any], tmp_path: Path) -> str:
    """Writes `config` where the fixture put it; the path, for the command line."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return str(path)


def make_set(folder: Path, size: int = 100) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "www.tar.gz").write_bytes(b"x" * size)


def day(n: int) -> str:
    """The set name of `n` nights before TODAY."""
    return (TODAY - dt.timedelta(days=n)).isoformat()


def home(config: dict[str, Any], customer: str, guest: str) -> Path:
    return Path(config["root"], customer, guest)


def make_sets(folder: Path, nights: Iterable[int], size: int = 100) -> None:
    """The sets of these nights before TODAY."""
    for n in nights:
        make_set(folder / day(n), size)
