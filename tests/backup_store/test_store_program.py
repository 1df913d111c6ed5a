"""The store's program (package vpsfleet_agents.store, built into
ansible/roles/backup_store/files/vpsfleet-backup-store): retention with the agent's own rule,
erasure on the termination date (M11), quota tables ProFTPD reads, the dead-man check's metrics
and mail."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.backup_store.conftest import TODAY, day, make_set, make_sets
from tests.backup_store.conftest import home as folder
from tests.metric_samples import samples
from vpsfleet_agents.backup import sets
from vpsfleet_agents.store.accounts import hash_passwords
from vpsfleet_agents.store.config import Refused
from vpsfleet_agents.store.dead_man import dead_man
from vpsfleet_agents.store.erasure import erase
from vpsfleet_agents.store.quota import quota, read_tally
from vpsfleet_agents.store.retention import retention


def test_the_retention_rule_is_the_agents(config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    home = folder(config, "c1", "g1")
    make_sets(home, range(6))
    seen: list[tuple[Any, ...]] = []
    real = sets.select_expired

    def spy(names: Any, today: dt.date, keep: int, minimum: int) -> list[str]:
        seen.append((sorted(names), today, keep, minimum))
        return real(names, today, keep, minimum)

    monkeypatch.setattr("vpsfleet_agents.store.retention.select_expired", spy)
    report = retention(config, TODAY)
    assert seen and seen[0][1:] == (TODAY, 3, 3)  # retention_days, and the minimum of the policy
    assert sorted(p.name for p in home.iterdir()) == [day(2), day(1), day(0)]
    assert {r["set"] for r in report["removed"]} == {day(3), day(4), day(5)}


def test_retention_never_removes_the_newest_set(config: dict[str, Any]) -> None:
    home = folder(config, "c1", "g2")
    for n in (30, 20, 10):
        make_set(home / day(n))
    config["retention_minimum_sets"] = 1
    retention(config, TODAY)
    assert [p.name for p in home.iterdir()] == [day(10)]


def test_partial_folders_are_left_alone_for_a_day(config: dict[str, Any]) -> None:
    home = folder(config, "c1", "g1")
    make_set(home / day(0))
    make_set(home / f"{day(0)}.partial")
    make_set(home / f"{day(2)}.partial")
    old = time.time() - 2 * 86400
    os.utime(home / f"{day(2)}.partial", (old, old))
    report = retention(config, TODAY)
    assert sorted(p.name for p in home.iterdir()) == [day(0), f"{day(0)}.partial"]
    assert [r["set"] for r in report["removed"]] == [f"{day(2)}.partial"]


def test_dry_run_changes_nothing(config: dict[str, Any]) -> None:
    home = folder(config, "c1", "g1")
    for n in range(6):
        make_set(home / day(n))
    make_set(folder(config, "c1", "old") / day(40))
    assert retention(config, TODAY, dry_run=True)["changed"]
    assert erase(config, TODAY, dry_run=True)["changed"]
    assert len(list(home.iterdir())) == 6
    assert folder(config, "c1", "old").exists()
    assert not Path(config["erasure_log"]).exists()


def test_erasure_on_the_termination_date(config: dict[str, Any]) -> None:
    make_set(folder(config, "c1", "old") / day(30), 1234)
    make_set(folder(config, "c1", "later") / day(1))
    make_set(folder(config, "c2", "gone") / day(0), 10)
    make_set(folder(config, "c1", "g1") / day(0))
    report = erase(config, TODAY, by="test")
    assert {e["guest"] for e in report["erased"]} == {"old", "gone"}  # "gone": its date is today
    assert not folder(config, "c1", "old").exists()
    assert not Path(config["root"], "c2").exists()  # no live guest left: the customer folder goes
    assert folder(config, "c1", "later").exists()  # terminated on a date to come: kept
    assert folder(config, "c1", "g1").exists()
    users = [line.split(":")[0] for line in Path(config["passwd_file"]).read_text().splitlines()]
    assert users == ["g1", "c1"]
    assert oct(Path(config["passwd_file"]).stat().st_mode & 0o777) == "0o600"
    log = [json.loads(line) for line in Path(config["erasure_log"]).read_text().splitlines()]
    old = next(e for e in log if e["guest"] == "old")
    assert old["bytes"] == 1234 and old["by"] == "test" and old["account_removed"] is True
    assert erase(config, TODAY) == {"changed": False, "erased": [], "problems": []}
    assert len(Path(config["erasure_log"]).read_text().splitlines()) == 2  # appended, never rewritten


@pytest.mark.parametrize(
    ("guest", "message"),
    [
        ("g1", "is active, not terminated"),
        ("later", "kept until that date"),
        ("nobody", "is not a guest of this store"),
    ],
)
def test_erasure_of_one_guest_is_refused_unless_due(config: dict[str, Any], guest: str, message: str) -> None:
    make_set(folder(config, "c1", "later") / day(1))
    with pytest.raises(Refused, match=message):
        erase(config, TODAY, only=guest)
    assert folder(config, "c1", "later").exists()


def test_quota_tables_match_ftpquota_format(config: dict[str, Any]) -> None:
    make_set(folder(config, "c1", "g1") / day(0), 700)
    make_set(folder(config, "c1", "g2") / day(0), 300)
    assert quota(config)["changed"] is True
    limit = Path(config["quota"]["limit_table"]).read_bytes()
    assert struct.unpack_from("=I", limit)[0] == 0x7626
    name, kind, per_session, limit_type, bytes_in, *_ = struct.unpack_from("=81sIBI3d3I", limit, 4)
    assert (name.rstrip(b"\0"), kind, per_session, limit_type, bytes_in) == (b"c1", 30, 0, 1, 5000.0)
    assert read_tally(config["quota"]["tally_table"]) == {"c1": (1000, 2)}
    assert quota(config)["changed"] is False  # idempotent
    shutil.rmtree(folder(config, "c1", "g2") / day(0))
    assert quota(config)["changed"] is True
    assert read_tally(config["quota"]["tally_table"]) == {"c1": (700, 1)}
    ftpquota = shutil.which("ftpquota") or shutil.which("ftpquota", path="/usr/sbin")
    if ftpquota:  # ProFTPD's own tool (Debian's proftpd-core) reads the tables as the server does
        shown = subprocess.run(
            [ftpquota, "--show-records", "--type=tally", f"--table-path={config['quota']['tally_table']}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert "Name: c1" in shown and "700.00" in shown
        limits = subprocess.run(
            [ftpquota, "--show-records", "--type=limit", f"--table-path={config['quota']['limit_table']}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert "Name: c1" in limits and "Limit Type: Hard" in limits and "Uploaded bytes:\t5000.00" in limits


def test_dead_man_metrics_and_mail(config: dict[str, Any]) -> None:
    make_set(folder(config, "c1", "g1") / day(2))
    make_set(folder(config, "c1", "g2") / day(5))  # suspended: not watched
    report = dead_man(config, TODAY)
    assert [m["guest"] for m in report["missing"]] == ["g1"]
    assert report["mailed"] is True
    metrics = samples(Path(config["textfile_dir"], "vpsfleet_backup_store.prom").read_text())
    assert metrics['vpsfleet_backup_store_set_present{customer="c1",guest="g1"}'] == 0
    assert metrics['vpsfleet_backup_store_newest_set_age_days{customer="c1",guest="g1"}'] == 2
    assert metrics['vpsfleet_backup_store_customer_quota_bytes{customer="c1"}'] == 5000
    assert not [key for key in metrics if "g2" in key]
    mail = Path(config["sendmail"]).with_name("mail.txt").read_text()
    assert "To: ops@test.example.net" in mail and "g1" in mail and TODAY.isoformat() in mail
    make_set(folder(config, "c1", "g1") / day(0))
    Path(config["sendmail"]).with_name("mail.txt").unlink()
    report = dead_man(config, TODAY)
    assert report["missing"] == [] and report["mailed"] is False
    assert not Path(config["sendmail"]).with_name("mail.txt").exists()


def test_command_line_exit_codes(config: dict[str, Any], tmp_path: Path, program: Path) -> None:
    conf = str(tmp_path / "config.json")
    base = [str(program), "--config", conf, "--today", TODAY.isoformat()]
    run = subprocess.run([*base, "dead-man"], capture_output=True, text=True, check=False)
    assert run.returncode == 1 and json.loads(run.stdout)["missing"]
    run = subprocess.run([*base, "erase", "--guest", "g1"], capture_output=True, text=True, check=False)
    assert run.returncode == 2 and "not terminated" in run.stderr
    run = subprocess.run([*base, "converge"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["changed"] is True
    run = subprocess.run([*base, "converge"], capture_output=True, text=True, check=False)
    assert json.loads(run.stdout)["changed"] is False


def test_password_hashes_are_stable() -> None:
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    accounts = {"g1": {"password": "secret-one", "salt": "abcdefghijklmnop"}}
    first = hash_passwords(accounts)
    assert first == hash_passwords(accounts)
    assert first["g1"].startswith("$6$abcdefghijklmnop$")
    check = subprocess.run(
        ["openssl", "passwd", "-6", "-salt", "abcdefghijklmnop", "secret-one"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert check.stdout.strip() == first["g1"]
