"""The agent with a real MariaDB: a backup user with SELECT, SHOW VIEW, TRIGGER, EVENT only, every
database it can list minus the system schemas, a round trip through the dump, and the
database server down."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

from tests.backup.conftest import NIGHT, Certs, FtpStore, MariaDB, make_config, metrics
from vpsfleet_agents.backup.run import run


def test_dumps_restore_tables_views_triggers_events_and_routines(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB
) -> None:
    config = make_config(tmp_path, store, certs, site,
        databases="all", mysql_defaults_file=str(mariadb.backup_defaults),
    )  # fmt: skip
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert outcome.reason == "ok", outcome.message
    folder = store.home / "2026-11-23"
    assert sorted(p.name for p in (folder / "db").iterdir()) == ["shop.sql.zst", "wiki.sql.zst"]
    # Load the customer's way: `zstd -dc` into a database of another name.
    mariadb.sql("DROP DATABASE IF EXISTS restored; CREATE DATABASE restored;")
    dump = subprocess.run(
        ["zstd", "-q", "-dc", str(folder / "db" / "shop.sql.zst")], capture_output=True, check=True
    ).stdout
    mariadb.sql(dump.decode(), database="restored")
    assert mariadb.sql("SELECT id, name, HEX(photo) FROM product ORDER BY id", "restored") == (
        "1\tcafé\t00FF10\n2\tthé\tNULL\n"
    )
    assert mariadb.sql("SELECT * FROM cheap", "restored") == "thé\n"
    assert "product_audit" in mariadb.sql("SHOW TRIGGERS", "restored")
    assert "nightly" in mariadb.sql("SHOW EVENTS", "restored")
    assert "count_products" in mariadb.sql(
        "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='restored'"
    )
    mariadb.sql("DROP DATABASE restored;")


def test_database_server_down_then_back(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB
) -> None:
    config = make_config(tmp_path, store, certs, site,
        databases="all", mysql_defaults_file=str(mariadb.backup_defaults),
    )  # fmt: skip
    previous = NIGHT - dt.timedelta(days=1)
    assert run(config, now=previous, use_deadline=False).reason == "ok"
    mariadb.stop()
    try:
        outcome = run(config, now=NIGHT, use_deadline=False)
    finally:
        mariadb.start()
    assert outcome.reason == "db_unavailable", outcome.message
    assert store.sets() == ["2026-11-22"]
    assert metrics(config)['vpsfleet_backup_last_run_exit_reason{reason="db_unavailable"}'] == 1
    assert run(config, now=NIGHT, use_deadline=False).reason == "ok"
    assert store.sets() == ["2026-11-22", "2026-11-23"]
