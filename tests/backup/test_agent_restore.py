"""The agent's restore mode against the FTPS store and a private MariaDB: a set comes back
beside the originals or over them, files and databases (views, triggers, events, routines), in
full or in part; a damaged set is refused before anything is changed; a missing set is an error
of its own; the store password never appears on a command line."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.backup.conftest import (
    NIGHT,
    PASSWORD,
    Certs,
    FtpStore,
    MariaDB,
    make_config,
    need,
    write_exec,
)

SET = NIGHT.date().isoformat()


@pytest.fixture(autouse=True)
def _tools() -> None:
    need("lftp", "tar", "pigz", "zstd")


def tree(folder: Path) -> dict[str, Any]:
    """Every entry under `folder`: file content and mode, symlink target, folders."""
    found: dict[str, Any] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            found[key] = ("link", os.readlink(path))
        elif path.is_dir():
            found[key] = ("dir", path.stat().st_mode & 0o7777)
        else:
            found[key] = (path.read_bytes(), path.stat().st_mode & 0o7777)
    return found


def backed_up(agent: ModuleType, config: Any, night: dt.datetime = NIGHT) -> None:
    outcome = agent.run(config, now=night, use_deadline=False)
    assert outcome.reason == "ok", outcome.message


def backed_up_with_databases(
    agent: ModuleType, tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB,
    databases: str | list[str],
) -> Any:  # fmt: skip
    config = make_config(
        agent, tmp_path, store, certs, site,
        databases=databases, mysql_defaults_file=str(mariadb.backup_defaults),
    )  # fmt: skip
    backed_up(agent, config)
    return config


def request(agent: ModuleType, tmp_path: Path, **values: Any) -> Any:
    values.setdefault("restore_root", str(tmp_path / "restored"))
    return agent.RestoreRequest(**values)


def test_side_restore_of_all_files_reproduces_the_tree(
    agent: ModuleType, tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    config = make_config(agent, tmp_path, store, certs, site)
    backed_up(agent, config, NIGHT - dt.timedelta(days=1))
    (site / "shop" / "index.php").write_text("changed after the backup")
    backed_up(agent, config)
    outcome = agent.restore(config, request(agent, tmp_path, set_name="latest", databases=None))
    assert outcome.reason == "ok", outcome.message
    assert outcome.set_name == SET
    side = tmp_path / "restored" / SET
    assert outcome.files == {"target": str(side), "paths": "all"}
    assert tree(side / str(site).lstrip("/")) == tree(site)
    # An older set by its name: the file as it was that night.
    older = (NIGHT - dt.timedelta(days=1)).date().isoformat()
    outcome = agent.restore(config, request(agent, tmp_path, set_name=older, databases=None))
    assert outcome.reason == "ok", outcome.message
    restored = tmp_path / "restored" / older / str(site).lstrip("/") / "shop" / "index.php"
    assert restored.read_text().startswith("<?php echo 'bonjour'")


def test_partial_restore_of_one_path_into_a_given_folder(
    agent: ModuleType, tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    config = make_config(agent, tmp_path, store, certs, site, compression="zstd")
    backed_up(agent, config)
    target = tmp_path / "elsewhere"
    outcome = agent.restore(
        config,
        request(agent, tmp_path, files=(str(site / "blog"),), databases=None, target=str(target)),
    )
    assert outcome.reason == "ok", outcome.message
    assert outcome.files == {"target": str(target), "paths": [str(site / "blog")]}
    base = target / str(site).lstrip("/")
    assert sorted(p.name for p in base.iterdir()) == ["blog"]
    assert (base / "blog" / "post.html").read_text() == "<p>été</p>\n"
    # A path the set does not hold is refused, nothing extracted.
    outcome = agent.restore(
        config,
        request(agent, tmp_path, files=(str(site / "nope"),), databases=None, target=str(tmp_path / "t2")),
    )
    assert (outcome.reason, outcome.exit_code) == ("not_in_set", 3)
    assert not (tmp_path / "t2").exists()


def test_in_place_restore_puts_files_back_over_the_originals(
    agent: ModuleType, tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    config = make_config(agent, tmp_path, store, certs, site)
    before = tree(site)
    backed_up(agent, config)
    (site / "shop" / "index.php").write_text("defaced")
    (site / "blog" / "post.html").unlink()
    (site / "shop" / "assets" / "logo.bin").chmod(0o600)
    outcome = agent.restore(config, request(agent, tmp_path, databases=None, in_place=True))
    assert outcome.reason == "ok", outcome.message
    assert outcome.files == {"target": "/", "paths": "all"}
    assert tree(site) == before
    assert not (tmp_path / "restored").exists()  # nothing beside


def test_corrupted_set_is_refused_before_any_change(
    agent: ModuleType, tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB
) -> None:
    config = backed_up_with_databases(agent, tmp_path, store, certs, site, mariadb, ["wiki"])
    (site / "shop" / "index.php").write_text("current content")
    mariadb.sql("INSERT INTO page VALUES ('Nouvelle');", "wiki")
    live = tree(site)
    archive = store.home / SET / "www.tar.gz"
    intact = archive.read_bytes()
    data = bytearray(intact)
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    everything = request(agent, tmp_path, in_place=True, mysql_defaults_file=str(mariadb.root_defaults))
    outcome = agent.restore(config, everything)
    assert (outcome.reason, outcome.exit_code) == ("corrupt", 4)
    assert "www.tar.gz" in outcome.message and "SHA256SUMS" in outcome.message
    assert tree(site) == live
    assert mariadb.sql("SELECT title FROM page ORDER BY title", "wiki") == "Accueil\nNouvelle\n"
    assert "wiki_restored" not in mariadb.sql("SHOW DATABASES")
    # A dump that was cut short and compressed again (SHA256SUMS made to match it): the trailer
    # check refuses it, the files are still not touched.
    archive.write_bytes(intact)
    dump = store.home / SET / "db" / "wiki.sql.gz"
    text = subprocess.run(["gunzip", "-c", str(dump)], capture_output=True, check=True).stdout
    dump.write_bytes(subprocess.run(["gzip", "-c"], input=text[: len(text) // 2], capture_output=True).stdout)
    sums = (store.home / SET / "SHA256SUMS").read_text().splitlines()
    good = agent.format_sha256sums(
        {
            **{line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in sums},
            "www.tar.gz": agent.sha256_file(archive),
            "db/wiki.sql.gz": agent.sha256_file(dump),
        }
    )
    (store.home / SET / "SHA256SUMS").write_text(good)
    outcome = agent.restore(config, everything)
    assert (outcome.reason, outcome.exit_code) == ("corrupt", 4), outcome.message
    assert "Dump completed" in outcome.message
    assert tree(site) == live
    assert mariadb.sql("SELECT title FROM page ORDER BY title", "wiki") == "Accueil\nNouvelle\n"
    mariadb.sql("DELETE FROM page WHERE title = 'Nouvelle';", "wiki")


def test_missing_set_and_empty_store(
    agent: ModuleType, tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    config = make_config(agent, tmp_path, store, certs, site)
    outcome = agent.restore(config, request(agent, tmp_path))
    assert (outcome.reason, outcome.exit_code) == ("no_set", 3)
    backed_up(agent, config)
    outcome = agent.restore(config, request(agent, tmp_path, set_name="2026-11-01"))
    assert (outcome.reason, outcome.exit_code) == ("no_set", 3)
    assert SET in outcome.message  # names what there is
    # A `.partial` folder is never a set.
    (store.home / "2026-11-24.partial").mkdir()
    outcome = agent.restore(config, request(agent, tmp_path, set_name="2026-11-24"))
    assert outcome.reason == "no_set"
    # No database in the set.
    outcome = agent.restore(config, request(agent, tmp_path, files=None, databases=("shop",)))
    assert (outcome.reason, outcome.exit_code) == ("not_in_set", 3)
    assert not (tmp_path / "restored").exists()


def test_databases_side_then_in_place_with_views_triggers_events_routines(
    agent: ModuleType, tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB
) -> None:
    config = backed_up_with_databases(agent, tmp_path, store, certs, site, mariadb, "all")
    products = "SELECT id, name, HEX(photo) FROM product ORDER BY id"
    original = mariadb.sql(products, "shop")
    # Side: the live database is not touched.
    mariadb.sql("UPDATE product SET name = 'changed' WHERE id = 1; CREATE TABLE later (x INT);", "shop")
    root = str(mariadb.root_defaults)
    outcome = agent.restore(
        config, request(agent, tmp_path, files=None, databases=("shop",), mysql_defaults_file=root)
    )
    assert outcome.reason == "ok", outcome.message
    side = "shop_restored_" + SET.replace("-", "")
    assert outcome.databases == {"shop": side}
    assert mariadb.sql(products, side) == original
    assert mariadb.sql("SELECT name FROM product WHERE id = 1", "shop") == "changed\n"
    check_objects(mariadb, side)
    # In place: the live database is as it was that night, the side copy is gone.
    outcome = agent.restore(
        config, request(agent, tmp_path, files=None, databases=(), in_place=True, mysql_defaults_file=root)
    )
    assert outcome.reason == "ok", outcome.message
    assert outcome.databases == {"shop": "shop", "wiki": "wiki"}
    assert mariadb.sql(products, "shop") == original
    assert "later" not in mariadb.sql("SHOW TABLES", "shop")
    check_objects(mariadb, "shop")
    # The checked side copies the in-place load came from are removed (the earlier one too: the
    # same name).
    assert "_restored_" not in mariadb.sql("SHOW DATABASES")


def check_objects(mariadb: MariaDB, database: str) -> None:
    assert mariadb.sql("SELECT * FROM cheap", database) == "thé\n"
    assert "product_audit" in mariadb.sql("SHOW TRIGGERS", database)
    assert "nightly" in mariadb.sql("SHOW EVENTS", database)
    assert "count_products" in mariadb.sql(
        f"SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='{database}'"
    )


def test_database_server_down_changes_nothing(
    agent: ModuleType, tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB
) -> None:
    config = backed_up_with_databases(agent, tmp_path, store, certs, site, mariadb, ["wiki"])
    (site / "shop" / "index.php").write_text("current")
    live = tree(site)
    mariadb.stop()
    try:
        outcome = agent.restore(
            config, request(agent, tmp_path, in_place=True, mysql_defaults_file=str(mariadb.root_defaults))
        )
    finally:
        mariadb.start()
    assert (outcome.reason, outcome.exit_code) == ("db_unavailable", 1), outcome.message
    assert tree(site) == live


def test_command_line_json_and_no_password_on_argv(
    agent: ModuleType, tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    calls = tmp_path / "argv.log"
    real = subprocess.run(["sh", "-c", "command -v lftp"], capture_output=True, text=True).stdout.strip()
    spy = write_exec(tmp_path / "lftp", f'#!/bin/sh\necho "$@" >> {calls}\nexec {real} "$@"\n')
    config = make_config(agent, tmp_path, store, certs, site, tools={"lftp": str(spy)})
    backed_up(agent, config)
    config_file = tmp_path / "config.json"
    target = tmp_path / "cli"
    argv = [
        "--config",
        str(config_file),
        "restore",
        "--set",
        SET,
        "--files",
        "--target",
        str(target),
        "--json",
    ]
    result = subprocess.run(
        ["python3", str(agent.__file__), *argv], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["reason"] == "ok" and report["set"] == SET and report["exit_code"] == 0
    assert (target / str(site).lstrip("/") / "blog" / "post.html").exists()
    assert PASSWORD not in calls.read_text()
    missing = subprocess.run(
        ["python3", str(agent.__file__), "--config", str(config_file), "restore", "--set", "2020-01-01"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert missing.returncode == 3
    assert "no set 2020-01-01" in missing.stderr
