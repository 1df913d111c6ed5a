"""Fixtures of the store program's tests: the program and the agent loaded as modules, and a
store tree with its configuration in a temp folder."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "ansible/roles/backup_store/files/vpsfleet-backup-store"
AGENT = ROOT / "ansible/roles/backup/files/vpsfleet-backup"


def load(name: str, path: Path) -> ModuleType:
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def store() -> ModuleType:
    return load("vpsfleet_backup_store", PROGRAM)


@pytest.fixture(scope="session")
def agent(store: ModuleType) -> ModuleType:
    return store.load_agent(str(AGENT))  # type: ignore[no-any-return]


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
        "agent": str(AGENT),
        "guests": [
            {"guest": "g1", "customer": "c1", "state": "active", "terminated_on": None,
             "retention_days": 3},
            {"guest": "g2", "customer": "c1", "state": "suspended", "terminated_on": None,
             "retention_days": 3},
            {"guest": "old", "customer": "c1", "state": "terminated", "terminated_on": "2026-11-01",
             "retention_days": 3},
            {"guest": "later", "customer": "c1", "state": "terminated", "terminated_on": "2026-12-31",
             "retention_days": 3},
            {"guest": "gone", "customer": "c2", "state": "terminated", "terminated_on": "2026-11-23",
             "retention_days": 15},
        ],
        "customers": [{"id": "c1", "quota_bytes": 5000, "guests": ["g1", "g2"]}],
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


def make_set(folder: Path, size: int = 100) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "www.tar.gz").write_bytes(b"x" * size)
