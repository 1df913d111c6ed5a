"""The verifier that verify-backups.yml runs (ansible/playbooks/files/vpsfleet-verify-backup):
with the customer's read-only account, the newest set passes when it is whole and fails, with the
reason, when a byte is flipped or a dump is cut short; dumps load into a scratch MariaDB that is
gone afterwards; the metric keeps the last success."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.backup.conftest import (
    AGENT_PATH,
    NIGHT,
    PASSWORD,
    REPO,
    Certs,
    FtpStore,
    MariaDB,
    make_config,
    need,
)

VERIFIER = REPO / "ansible" / "playbooks" / "files" / "vpsfleet-verify-backup"
SET = NIGHT.date().isoformat()


@pytest.fixture(autouse=True)
def _tools() -> None:
    need("lftp", "tar", "pigz", "sha256sum", "mariadbd", "mariadb-install-db")


def verify(tmp_path: Path, store: FtpStore, certs: Certs, guest: str = "g1") -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        ["python3", str(VERIFIER), "--agent", str(AGENT_PATH), "--guest", guest, "--customer", "c1",
         "--host", "localhost", "--port", str(store.port), "--ca-file", str(certs.good_cert),
         "--timeout", "5", "--work-dir", str(tmp_path / "vwork"), "--state-dir", str(tmp_path / "vstate"),
         "--textfile", str(tmp_path / "verify.prom"), "--password-stdin"],
        input=PASSWORD + "\n", capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert PASSWORD not in result.stdout + result.stderr
    return result.returncode, json.loads(result.stdout)


def success_metric(tmp_path: Path) -> float:
    for line in (tmp_path / "verify.prom").read_text().splitlines():
        if line.startswith('vpsfleet_backup_verify_last_success_timestamp_seconds{guest="g1"}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("no metric for g1")


def test_good_set_passes_then_damage_fails(
    agent: ModuleType, tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB
) -> None:
    # The customer's read-only account over all of its guests (ProFTPD's layout).
    store._handler.authorizer.add_user("c1", PASSWORD, str(store.root / "c1"), perm="elr")
    config = make_config(
        agent, tmp_path, store, certs, site,
        databases="all", mysql_defaults_file=str(mariadb.backup_defaults),
    )  # fmt: skip
    code, result = verify(tmp_path, store, certs)
    assert code == 3 and result["no_set"] is True
    assert agent.run(config, now=NIGHT, use_deadline=False).reason == "ok"
    code, result = verify(tmp_path, store, certs)
    assert (code, result["ok"]) == (0, True), result["reasons"]
    assert result["set"] == SET
    assert sorted(c["file"] for c in result["checked"]) == ["db/shop.sql.gz", "db/wiki.sql.gz", "www.tar.gz"]
    passed = success_metric(tmp_path)
    assert passed > 0
    assert not list((tmp_path / "vwork").iterdir())  # scratch datadir and download removed
    # A flipped byte in the archive.
    archive = store.home / SET / "www.tar.gz"
    intact = archive.read_bytes()
    damaged = bytearray(intact)
    damaged[len(damaged) // 2] ^= 0x01
    archive.write_bytes(bytes(damaged))
    code, result = verify(tmp_path, store, certs)
    assert code == 1 and result["ok"] is False
    assert any(r.startswith("sha256sum -c") and "www.tar.gz" in r for r in result["reasons"])
    assert success_metric(tmp_path) == passed  # the last success is kept
    archive.write_bytes(intact)
    # A dump cut short.
    dump = store.home / SET / "db" / "shop.sql.gz"
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    code, result = verify(tmp_path, store, certs)
    assert code == 1
    assert any("db/shop.sql.gz" in r and "Dump completed" in r for r in result["reasons"])
    assert {c["file"]: c["ok"] for c in result["checked"]}["db/wiki.sql.gz"] is True
