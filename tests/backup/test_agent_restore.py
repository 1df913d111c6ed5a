"""The agent's restore mode against the FTPS store and a private MariaDB: a set comes back
beside the originals or over them, files and databases (views, triggers, events, routines), in
full or in part; a damaged set is refused before anything is changed; a missing set is an error
of its own; the store password never appears on a command line."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.backup.conftest import (
    AGENT_PATH,
    NIGHT,
    PASSWORD,
    Certs,
    FtpStore,
    MariaDB,
    make_config,
    need,
    pack,
    unpack,
    write_exec,
)
from vpsfleet_agents.backup.config import Config
from vpsfleet_agents.backup.dump_screen import DumpScreen
from vpsfleet_agents.backup.restore import restore
from vpsfleet_agents.backup.restore_outcome import RestoreRequest
from vpsfleet_agents.backup.run import run
from vpsfleet_agents.backup.sets import format_sha256sums, parse_sha256sums, sha256_file

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


def backed_up(config: Any, night: dt.datetime = NIGHT) -> None:
    outcome = run(config, now=night, use_deadline=False)
    assert outcome.reason == "ok", outcome.message


def backed_up_with_databases(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB,
    databases: str | list[str],
) -> Any:  # fmt: skip
    config = make_config(tmp_path, store, certs, site,
        databases=databases, mysql_defaults_file=str(mariadb.backup_defaults),
    )  # fmt: skip
    backed_up(config)
    return config


def request(tmp_path: Path, **values: Any) -> Any:
    values.setdefault("restore_root", str(tmp_path / "restored"))
    return RestoreRequest(**values)


def test_side_restore_of_all_files_reproduces_the_tree(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    config = make_config(tmp_path, store, certs, site)
    backed_up(config, NIGHT - dt.timedelta(days=1))
    (site / "shop" / "index.php").write_text("changed after the backup")
    backed_up(config)
    outcome = restore(config, request(tmp_path, set_name="latest", databases=None))
    assert outcome.reason == "ok", outcome.message
    assert outcome.set_name == SET
    side = tmp_path / "restored" / SET
    assert outcome.files == {"target": str(side), "paths": "all"}
    assert tree(side / str(site).lstrip("/")) == tree(site)
    # An older set by its name: the file as it was that night.
    older = (NIGHT - dt.timedelta(days=1)).date().isoformat()
    outcome = restore(config, request(tmp_path, set_name=older, databases=None))
    assert outcome.reason == "ok", outcome.message
    restored = tmp_path / "restored" / older / str(site).lstrip("/") / "shop" / "index.php"
    assert restored.read_text().startswith("<?php echo 'bonjour'")


def test_partial_restore_of_one_path_into_a_given_folder(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    # A set made with gzip (an older set, or the offer's before it took zstd) restores by its
    # files' suffixes, whatever the compression configured today.
    made = make_config(tmp_path, store, certs, site, compression="gzip")
    backed_up(made)
    assert (store.home / SET / "www.tar.gz").is_file()
    config = dataclasses.replace(made, compression="zstd")
    target = tmp_path / "elsewhere"
    outcome = restore(
        config,
        request(tmp_path, files=(str(site / "blog"),), databases=None, target=str(target)),
    )
    assert outcome.reason == "ok", outcome.message
    assert outcome.files == {"target": str(target), "paths": [str(site / "blog")]}
    base = target / str(site).lstrip("/")
    assert sorted(p.name for p in base.iterdir()) == ["blog"]
    assert (base / "blog" / "post.html").read_text() == "<p>été</p>\n"
    # A path the set does not hold is refused, nothing extracted.
    outcome = restore(
        config,
        request(tmp_path, files=(str(site / "nope"),), databases=None, target=str(tmp_path / "t2")),
    )
    assert (outcome.reason, outcome.exit_code) == ("not_in_set", 3)
    assert not (tmp_path / "t2").exists()


def test_in_place_restore_puts_files_back_over_the_originals(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    config = make_config(tmp_path, store, certs, site)
    before = tree(site)
    backed_up(config)
    (site / "shop" / "index.php").write_text("defaced")
    (site / "blog" / "post.html").unlink()
    (site / "shop" / "assets" / "logo.bin").chmod(0o600)
    outcome = restore(config, request(tmp_path, databases=None, in_place=True))
    assert outcome.reason == "ok", outcome.message
    assert outcome.files == {"target": "/", "paths": "all"}
    assert tree(site) == before
    assert not list((tmp_path / "restored").iterdir())  # nothing beside (the stage is gone)
    # What the restore replaced is kept, under its own path, in a dated folder (issue 10, #11).
    kept = Path(outcome.replaced["files"])
    assert kept.parent == Path(config.replaced_dir) and kept.name.isdigit() and len(kept.name) == 12
    assert (kept / str(site).lstrip("/") / "shop" / "index.php").read_text() == "defaced"
    assert str(kept) in outcome.message


def test_corrupted_set_is_refused_before_any_change(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB
) -> None:
    config = backed_up_with_databases(tmp_path, store, certs, site, mariadb, ["wiki"])
    (site / "shop" / "index.php").write_text("current content")
    mariadb.sql("INSERT INTO page VALUES ('Nouvelle');", "wiki")
    live = tree(site)
    archive = store.home / SET / "www.tar.zst"
    intact = archive.read_bytes()
    data = bytearray(intact)
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    everything = request(tmp_path, in_place=True, mysql_defaults_file=str(mariadb.root_defaults))
    outcome = restore(config, everything)
    assert (outcome.reason, outcome.exit_code) == ("corrupt", 4)
    assert "www.tar.zst" in outcome.message and "SHA256SUMS" in outcome.message
    assert tree(site) == live
    assert mariadb.sql("SELECT title FROM page ORDER BY title", "wiki") == "Accueil\nNouvelle\n"
    assert "wiki_restored" not in mariadb.sql("SHOW DATABASES")
    # A dump that was cut short and compressed again (SHA256SUMS made to match it): the trailer
    # check refuses it, the files are still not touched.
    archive.write_bytes(intact)
    dump = store.home / SET / "db" / "wiki.sql.zst"
    text = unpack(dump)
    dump.write_bytes(pack(text[: len(text) // 2], dump.name))
    sums = (store.home / SET / "SHA256SUMS").read_text().splitlines()
    good = format_sha256sums(
        {
            **{line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in sums},
            "www.tar.zst": sha256_file(archive),
            "db/wiki.sql.zst": sha256_file(dump),
        }
    )
    (store.home / SET / "SHA256SUMS").write_text(good)
    outcome = restore(config, everything)
    assert (outcome.reason, outcome.exit_code) == ("corrupt", 4), outcome.message
    assert "Dump completed" in outcome.message
    assert tree(site) == live
    assert mariadb.sql("SELECT title FROM page ORDER BY title", "wiki") == "Accueil\nNouvelle\n"
    mariadb.sql("DELETE FROM page WHERE title = 'Nouvelle';", "wiki")


def test_missing_set_and_empty_store(tmp_path: Path, store: FtpStore, certs: Certs, site: Path) -> None:
    config = make_config(tmp_path, store, certs, site)
    outcome = restore(config, request(tmp_path))
    assert (outcome.reason, outcome.exit_code) == ("no_set", 3)
    backed_up(config)
    outcome = restore(config, request(tmp_path, set_name="2026-11-01"))
    assert (outcome.reason, outcome.exit_code) == ("no_set", 3)
    assert SET in outcome.message  # names what there is
    # A `.partial` folder is never a set.
    (store.home / "2026-11-24.partial").mkdir()
    outcome = restore(config, request(tmp_path, set_name="2026-11-24"))
    assert outcome.reason == "no_set"
    # No database in the set.
    outcome = restore(config, request(tmp_path, files=None, databases=("shop",)))
    assert (outcome.reason, outcome.exit_code) == ("not_in_set", 3)
    assert not (tmp_path / "restored").exists()


def test_databases_side_then_in_place_with_views_triggers_events_routines(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB
) -> None:
    config = backed_up_with_databases(tmp_path, store, certs, site, mariadb, "all")
    products = "SELECT id, name, HEX(photo) FROM product ORDER BY id"
    original = mariadb.sql(products, "shop")
    # Side: the live database is not touched.
    mariadb.sql("UPDATE product SET name = 'changed' WHERE id = 1; CREATE TABLE later (x INT);", "shop")
    root = str(mariadb.root_defaults)
    outcome = restore(config, request(tmp_path, files=None, databases=("shop",), mysql_defaults_file=root))
    assert outcome.reason == "ok", outcome.message
    side = "shop_restored_" + SET.replace("-", "")
    assert outcome.databases == {"shop": side}
    assert mariadb.sql(products, side) == original
    assert mariadb.sql("SELECT name FROM product WHERE id = 1", "shop") == "changed\n"
    check_objects(mariadb, side)
    # In place: the live database is as it was that night, the side copy is gone.
    outcome = restore(
        config, request(tmp_path, files=None, databases=(), in_place=True, mysql_defaults_file=root)
    )
    assert outcome.reason == "ok", outcome.message
    assert outcome.databases == {"shop": "shop", "wiki": "wiki"}
    assert mariadb.sql(products, "shop") == original
    assert "later" not in mariadb.sql("SHOW TABLES", "shop")
    check_objects(mariadb, "shop")
    # The checked side copies the in-place load came from are removed (the earlier one too: the
    # same name); what was live is kept, events disabled.
    assert "_restored_" not in mariadb.sql("SHOW DATABASES")
    kept = outcome.replaced["databases"]
    assert sorted(kept) == ["shop", "wiki"] and kept["shop"].startswith("shop_before_restore_")
    assert mariadb.sql("SELECT name FROM product WHERE id = 1", kept["shop"]) == "changed\n"
    assert "later" in mariadb.sql("SHOW TABLES", kept["shop"])
    assert "nightly\tDISABLED" in mariadb.sql(
        f"SELECT EVENT_NAME, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA='{kept['shop']}'"
    )
    for copy in kept.values():
        mariadb.sql(f"DROP DATABASE `{copy}`;")


def check_objects(mariadb: MariaDB, database: str) -> None:
    assert mariadb.sql("SELECT * FROM cheap", database) == "thé\n"
    assert "product_audit" in mariadb.sql("SHOW TRIGGERS", database)
    assert "nightly" in mariadb.sql("SHOW EVENTS", database)
    assert "count_products" in mariadb.sql(
        f"SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA='{database}'"
    )


def test_database_server_down_changes_nothing(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB
) -> None:
    config = backed_up_with_databases(tmp_path, store, certs, site, mariadb, ["wiki"])
    (site / "shop" / "index.php").write_text("current")
    live = tree(site)
    mariadb.stop()
    try:
        outcome = restore(
            config, request(tmp_path, in_place=True, mysql_defaults_file=str(mariadb.root_defaults))
        )
    finally:
        mariadb.start()
    assert (outcome.reason, outcome.exit_code) == ("db_unavailable", 1), outcome.message
    assert tree(site) == live


def test_command_line_json_and_no_password_on_argv(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, built: None
) -> None:
    calls = tmp_path / "argv.log"
    real = subprocess.run(["sh", "-c", "command -v lftp"], capture_output=True, text=True).stdout.strip()
    spy = write_exec(tmp_path / "lftp", f'#!/bin/sh\necho "$@" >> {calls}\nexec {real} "$@"\n')
    config = make_config(tmp_path, store, certs, site, tools={"lftp": str(spy)})
    backed_up(config)
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
    result = subprocess.run([str(AGENT_PATH), *argv], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["reason"] == "ok" and report["set"] == SET and report["exit_code"] == 0
    assert (target / str(site).lstrip("/") / "blog" / "post.html").exists()
    assert PASSWORD not in calls.read_text()
    missing = subprocess.run(
        [str(AGENT_PATH), "--config", str(config_file), "restore", "--set", "2020-01-01"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert missing.returncode == 3
    assert "no set 2020-01-01" in missing.stderr


# --- issue 10: what comes from a guest is data, never instructions ----------------------------

NOBODY = 65534


def rewrite_set_file(folder: Path, name: str, data: bytes) -> None:
    """Replaces a file of a published set and its line of SHA256SUMS, as whoever holds the
    guest's write account could: the checksums then pass."""
    (folder / name).write_bytes(data)
    sums = parse_sha256sums((folder / "SHA256SUMS").read_text())
    sums[name] = sha256_file(folder / name)
    (folder / "SHA256SUMS").write_text(format_sha256sums(sums))


def with_lines_before_trailer(dump: bytes, lines: str) -> bytes:
    """The dump with `lines` before its trailer, and without mariadb-dump's first line (`\\-`,
    "enable the sandbox mode"): whoever forges a dump leaves that out."""
    head, _, trailer = dump.rstrip(b"\n").rpartition(b"\n")
    assert trailer.startswith(b"-- Dump completed")
    if head.startswith(b"/*M!999999\\- enable the sandbox mode */"):
        head = head.split(b"\n", 1)[1]
    return head + b"\n" + lines.encode() + b"\n" + trailer + b"\n"


HOSTILE_DUMPS = {
    "shell escape": "\\! touch {marker}",
    "system": "system touch {marker}",
    "delimiter trick": "DELIMITER //\nsystem touch {marker}\nDELIMITER ;",
    "after a statement": "SELECT 1; \\! touch {marker}",
    "inside a conditional comment": "/*!40101 \\! touch {marker} */;",
    "tee": "tee {marker}",
    "source": "source {marker}",
    "backslash before a closing backtick": "SELECT 1 AS `a\\`; \\! touch {marker}",
    "sql_mode trick": "SET sql_mode='NO_BACKSLASH_ESCAPES';\nSELECT 'a\\'; \\! touch {marker}",
    # The classes the real client runs and an earlier screen missed (tests/backup/test_dump_screen.py).
    "command after a statement on the same line": "SELECT 1; system touch {marker};",
    "source after a statement on the same line": "SELECT 1 /* c */; source {marker}",
    "dashes first in a statement": "--'\n\\! touch {marker}",
    "a comment inside /*!": "/*!40101 /* */ ' */\n\\! touch {marker}",
    "a procedure that changes the mode": (
        "CREATE PROCEDURE p1() SET sql_mode='NO_BACKSLASH_ESCAPES';\nCALL p1();\n"
        "SELECT 'a\\' \\! touch {marker}"
    ),
}


def hostile_set(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB,
    payload: str,
) -> tuple[Any, Path]:  # fmt: skip
    """A set whose dump of `wiki` carries `payload` (with {marker} a file that must never
    appear); the live `wiki` has a row the set does not."""
    config = backed_up_with_databases(tmp_path, store, certs, site, mariadb, ["wiki"])
    marker = tmp_path / "pwned"
    if "source" in payload:
        marker.with_suffix(".sql").write_text(f"SELECT 1; \\! touch {marker}\n")
        payload = payload.replace("{marker}", str(marker.with_suffix(".sql")))
    dump = store.home / SET / "db" / "wiki.sql.zst"
    hostile = with_lines_before_trailer(unpack(dump), payload.format(marker=marker))
    rewrite_set_file(store.home / SET, "db/wiki.sql.zst", pack(hostile, dump.name))
    mariadb.sql("INSERT INTO page VALUES ('Vivante');", "wiki")
    return config, marker


def assert_wiki_untouched(mariadb: MariaDB, databases: str) -> None:
    assert mariadb.sql("SELECT title FROM page ORDER BY title", "wiki") == "Accueil\nVivante\n"
    assert mariadb.sql("SHOW DATABASES") == databases  # no side or safety copy left


@pytest.fixture
def wiki_reset(mariadb: MariaDB) -> Any:
    yield
    mariadb.sql("DELETE FROM page WHERE title <> 'Accueil';", "wiki")
    for name in mariadb.sql("SHOW DATABASES").split():
        if name.startswith(("wiki_", "shop_")):
            mariadb.sql(f"DROP DATABASE `{name}`;")


@pytest.mark.parametrize("payload", list(HOSTILE_DUMPS.values()), ids=list(HOSTILE_DUMPS))
def test_hostile_dump_is_refused_and_nothing_runs(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB,
    wiki_reset: None, payload: str,
) -> None:  # fmt: skip
    """A dump carrying a client command (the customer of an unmanaged VPS writes the sets) is
    refused before any database or file is touched, and the command never runs."""
    config, marker = hostile_set(tmp_path, store, certs, site, mariadb, payload)
    live, databases = tree(site), mariadb.sql("SHOW DATABASES")
    outcome = restore(
        config, request(tmp_path, in_place=True, mysql_defaults_file=str(mariadb.root_defaults))
    )
    assert not marker.exists()
    assert (outcome.reason, outcome.exit_code) == ("unsafe_dump", 4), outcome.message
    assert "db/wiki.sql.zst" in outcome.message and "line" in outcome.message
    assert_wiki_untouched(mariadb, databases)
    assert tree(site) == live


@pytest.mark.parametrize("payload", list(HOSTILE_DUMPS.values()), ids=list(HOSTILE_DUMPS))
def test_the_client_sandbox_stops_a_dump_the_screen_would_miss(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB,
    wiki_reset: None, monkeypatch: pytest.MonkeyPatch, payload: str,
) -> None:  # fmt: skip
    """Belt and braces: with the screen switched off, the client's --sandbox --binary-mode
    still refuses the command; the side load fails, so nothing live changes."""
    config, marker = hostile_set(tmp_path, store, certs, site, mariadb, payload)
    databases = mariadb.sql("SHOW DATABASES")
    monkeypatch.setattr(DumpScreen, "close", lambda self: [])
    outcome = restore(
        config, request(tmp_path, in_place=True, mysql_defaults_file=str(mariadb.root_defaults))
    )
    assert not marker.exists()
    assert outcome.reason == "apply_failed", outcome.message
    assert "wiki_restored" in outcome.message
    mariadb.sql(f"DROP DATABASE IF EXISTS wiki_restored_{SET.replace('-', '')};")  # the failed side load
    assert_wiki_untouched(mariadb, databases)


def test_commands_inside_quoted_data_are_restored_as_data(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB,
    wiki_reset: None,
) -> None:  # fmt: skip
    """What looks like a command inside a string (a wiki page about the client) is data: the
    dump loads, the text comes back as it was, nothing runs."""
    marker = tmp_path / "pwned"
    text = f"\\! touch {marker}\nsystem touch {marker}; DELIMITER //"
    mariadb.sql("CREATE TABLE note (body TEXT);", "wiki")
    try:
        mariadb.sql(f"INSERT INTO note VALUES ('{text.replace(chr(92), chr(92) * 2)}');", "wiki")
        config = backed_up_with_databases(tmp_path, store, certs, site, mariadb, ["wiki"])
    finally:
        mariadb.sql("DROP TABLE note;", "wiki")
    root = str(mariadb.root_defaults)
    outcome = restore(config, request(tmp_path, files=None, databases=("wiki",), mysql_defaults_file=root))
    assert outcome.reason == "ok", outcome.message
    side = outcome.databases["wiki"]
    got = mariadb.sql("SELECT body FROM note", side)
    assert got == text.replace("\\", "\\\\").replace("\n", "\\n") + "\n"  # --batch escapes
    assert not marker.exists()


def test_real_dumps_pass_the_screen(mariadb: MariaDB) -> None:
    """mariadb-dump's own output (views, triggers, events, routines, DELIMITER ;;, its
    "enable the sandbox" first line), read in chunks of any size, holds no client command."""
    dump = subprocess.run(
        ["mariadb-dump", f"--defaults-extra-file={mariadb.root_defaults}", "--routines", "--events",
         "--triggers", "--hex-blob", "--single-transaction", "--", "shop"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert b"DELIMITER ;;" in dump and b"CREATE DEFINER" in dump
    for size in (len(dump), 1, 7, 4096):
        screen = DumpScreen("shop")
        for i in range(0, len(dump), size):
            screen.feed(dump[i : i + size])
        assert screen.close() == [], size


def planted_link_site(site: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The web application (nobody here) owns /data/www; a folder `uploads` holds a file. Once
    the set is made, the application replaces `uploads` by a link to a system folder."""
    (site / "uploads").mkdir()
    (site / "uploads" / "passwd").write_text("from the set\n")
    for path in (site, site / "uploads", site / "uploads" / "passwd"):
        os.chown(path, NOBODY, NOBODY)
    system = tmp_path / "etc-like"
    system.mkdir()
    (system / "passwd").write_text("root:x:0:0\n")
    return site / "uploads", system


def plant(link: Path, system: Path, owner: int = NOBODY) -> None:
    subprocess.run(["rm", "-r", str(link)], check=True)
    link.symlink_to(system)
    os.lchown(link, owner, owner)


@pytest.mark.parametrize("scope", ["all", "folder", "file"])
def test_in_place_restore_never_follows_a_planted_link(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, scope: str
) -> None:
    """A link planted where the set has a folder (a web application compromise) is moved aside
    with what else the restore replaces, never followed: nothing outside the site is written,
    for the whole set as for one path below the link (issue 10, #2)."""
    link, system = planted_link_site(site, tmp_path)
    config = make_config(tmp_path, store, certs, site)
    backed_up(config)
    plant(link, system)
    before = tree(system)
    files = {"all": (), "folder": (str(link),), "file": (str(link / "passwd"),)}[scope]
    outcome = restore(config, request(tmp_path, files=files, databases=None, in_place=True))
    assert outcome.reason == "ok", outcome.message
    assert tree(system) == before  # not one byte outside the site
    assert not link.is_symlink() and (link / "passwd").read_text() == "from the set\n"
    kept = Path(outcome.replaced["files"]) / str(link).lstrip("/")
    assert kept.is_symlink() and os.readlink(kept) == str(system)


def test_side_restore_never_follows_a_link_in_an_earlier_side_copy(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    """The side copy of a set restored twice: an earlier copy's entries are replaced, links
    among them never followed, even root's (a forged set can hold any link)."""
    link, system = planted_link_site(site, tmp_path)
    config = make_config(tmp_path, store, certs, site)
    backed_up(config)
    side = tmp_path / "restored" / SET
    outcome = restore(config, request(tmp_path, databases=None))
    assert outcome.reason == "ok", outcome.message
    copy = side / str(link).lstrip("/")
    os.chown(copy.parent, 0, 0)
    plant(copy, system, owner=0)
    before = tree(system)
    outcome = restore(config, request(tmp_path, files=(str(link / "passwd"),), databases=None))
    assert outcome.reason == "ok", outcome.message
    assert tree(system) == before
    assert (copy / "passwd").read_text() == "from the set\n" and not copy.is_symlink()


def test_a_link_root_made_above_the_site_is_followed(tmp_path: Path, store: FtpStore, certs: Certs) -> None:
    """/data as a link to another disk, made by root in a folder only root changes: the restore
    goes where it points, as the backup read it, and the link stays."""
    disk = tmp_path / "guest" / "disk2" / "data"
    (disk / "www" / "blog").mkdir(parents=True)
    (disk / "www" / "blog" / "post.html").write_text("<p>on the other disk</p>\n")
    data = tmp_path / "guest" / "data"
    data.symlink_to(disk)
    site = data / "www"
    config = make_config(tmp_path, store, certs, site)
    backed_up(config)
    (site / "blog" / "post.html").write_text("defaced")
    outcome = restore(config, request(tmp_path, databases=None, in_place=True))
    assert outcome.reason == "ok", outcome.message
    assert data.is_symlink()
    assert (disk / "www" / "blog" / "post.html").read_text() == "<p>on the other disk</p>\n"


def test_side_copies_go_to_a_root_only_folder(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    """By default beside the originals means <restore_dir>/<set>/, a folder of the agent's own
    (mode 0700), not a predictable name in world-writable /var/tmp (issue 10, #3)."""
    assert Config.restore_dir == "/var/lib/vpsfleet-backup/restore"
    assert Config.replaced_dir == "/var/lib/vpsfleet-backup/replaced"
    config = make_config(tmp_path, store, certs, site)
    backed_up(config)
    outcome = restore(config, RestoreRequest(databases=None))
    assert outcome.reason == "ok", outcome.message
    root = Path(config.restore_dir)
    assert outcome.files is not None
    assert outcome.files["target"] == str(root / SET)
    for folder in (root, root / SET):
        assert folder.stat().st_mode & 0o777 == 0o700 and folder.stat().st_uid == os.geteuid()
    assert (root / SET / str(site).lstrip("/") / "blog" / "post.html").exists()


def not_ours_as_a_link(folder: Path, elsewhere: Path) -> None:
    folder.symlink_to(elsewhere)


def not_ours_by_owner(folder: Path, _elsewhere: Path) -> None:
    folder.mkdir(mode=0o700)
    os.chown(folder, NOBODY, NOBODY)


def not_ours_by_mode(folder: Path, _elsewhere: Path) -> None:
    folder.mkdir()
    folder.chmod(0o777)


@pytest.mark.parametrize("made", [not_ours_as_a_link, not_ours_by_owner, not_ours_by_mode])
@pytest.mark.parametrize("which", ["restore_dir", "target"])
def test_a_restore_folder_someone_else_made_is_refused(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, made: Any, which: str
) -> None:
    """The restore folder (or a given target) that exists and is not ours (a link, another
    owner, writable by others) is refused before anything is written."""
    config = make_config(tmp_path, store, certs, site)
    backed_up(config)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folder = Path(config.restore_dir) if which == "restore_dir" else tmp_path / "given"
    made(folder, elsewhere)
    target = None if which == "restore_dir" else str(folder)
    outcome = restore(config, RestoreRequest(databases=None, target=target))
    assert (outcome.reason, outcome.exit_code) == ("unsafe_target", 2), outcome.message
    assert str(folder) in outcome.message
    assert not list(elsewhere.iterdir())
    if not folder.is_symlink():
        assert not list(folder.iterdir())


def test_a_target_in_a_folder_others_can_write_is_refused(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # not sticky: anyone may swap the target for a link
    config = make_config(tmp_path, store, certs, site)
    backed_up(config)
    outcome = restore(config, RestoreRequest(databases=None, target=str(shared / "copy")))
    assert outcome.reason == "unsafe_target", outcome.message


def test_in_place_keeps_the_live_database_and_files_under_dated_names(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB,
    wiki_reset: None,
) -> None:  # fmt: skip
    """Before a restore in place, the live database is kept as <db>_before_restore_<stamp> and
    the files it replaces in <replaced_dir>/<stamp>/; the result says where (issue 10, #11)."""
    config = backed_up_with_databases(tmp_path, store, certs, site, mariadb, ["wiki"])
    mariadb.sql("INSERT INTO page VALUES ('Vivante'); CREATE TABLE later (x INT);", "wiki")
    mariadb.sql("CREATE EVENT tidy ON SCHEDULE EVERY 1 DAY DO DELETE FROM page WHERE title = 'x';", "wiki")
    (site / "shop" / "index.php").write_text("edited after the backup")
    now = dt.datetime(2026, 11, 24, 9, 30)
    everything = request(tmp_path, in_place=True, mysql_defaults_file=str(mariadb.root_defaults), now=now)
    outcome = restore(config, everything)
    assert outcome.reason == "ok", outcome.message
    keep = "wiki_before_restore_202611240930"
    kept_files = str(Path(config.replaced_dir) / "202611240930")
    assert outcome.replaced == {"files": kept_files, "databases": {"wiki": keep}}
    assert mariadb.sql("SELECT title FROM page ORDER BY title", keep) == "Accueil\nVivante\n"
    assert "later" in mariadb.sql("SHOW TABLES", keep)
    events = f"SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA='{keep}'"
    assert mariadb.sql(events) == "DISABLED\n"
    assert mariadb.sql("SELECT title FROM page ORDER BY title", "wiki") == "Accueil\n"
    assert "later" not in mariadb.sql("SHOW TABLES", "wiki")
    kept_file = Path(outcome.replaced["files"]) / str(site).lstrip("/") / "shop" / "index.php"
    assert kept_file.read_text() == "edited after the backup"
    assert Path(config.replaced_dir).stat().st_mode & 0o777 == 0o700
    assert keep in outcome.message and outcome.replaced["files"] in outcome.message
    # The same minute again: new names, the first copies are not overwritten.
    outcome = restore(config, everything)
    assert outcome.reason == "ok", outcome.message
    assert outcome.replaced["databases"] == {"wiki": keep + "_2"}
    assert outcome.replaced["files"].endswith("/202611240930_2")
    assert mariadb.sql("SELECT title FROM page ORDER BY title", keep) == "Accueil\nVivante\n"


def test_replaced_files_are_kept_across_file_systems(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    """The replaced folder on another file system (/dev/shm here): entries are copied, links as
    links, then removed; never followed."""
    shm = Path("/dev/shm")
    if os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("/dev/shm is on the same file system here")
    link, system = planted_link_site(site, tmp_path)
    replaced = Path(tempfile.mkdtemp(prefix="vpsfleet-replaced-", dir=shm))
    try:
        config = make_config(tmp_path, store, certs, site, replaced_dir=str(replaced / "r"))
        backed_up(config)
        plant(link, system)
        (site / "shop" / "index.php").write_text("edited")
        outcome = restore(config, request(tmp_path, databases=None, in_place=True))
        assert outcome.reason == "ok", outcome.message
        kept = Path(outcome.replaced["files"]) / str(site).lstrip("/")
        assert (kept / "shop" / "index.php").read_text() == "edited"
        assert (kept / "uploads").is_symlink() and os.readlink(kept / "uploads") == str(system)
        assert (kept / "shop" / "assets" / "logo.bin").stat().st_mode & 0o777 == 0o644
        assert (link / "passwd").read_text() == "from the set\n"
    finally:
        shutil.rmtree(replaced, ignore_errors=True)


def test_latest_is_never_a_set_dated_in_the_future(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    """A set named after tomorrow (a clock ran ahead, or planted) is never `latest`."""
    config = make_config(tmp_path, store, certs, site)
    backed_up(config)
    shutil.copytree(store.home / SET, store.home / "2099-01-01")
    outcome = restore(config, request(tmp_path, databases=None))
    assert (outcome.reason, outcome.set_name) == ("ok", SET), outcome.message


def test_a_client_without_sandbox_is_refused_before_any_change(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, mariadb: MariaDB,
    wiki_reset: None,
) -> None:  # fmt: skip
    """An old mariadb client that lacks --sandbox never loads a dump: configuration error."""
    config = backed_up_with_databases(tmp_path, store, certs, site, mariadb, ["wiki"])
    old = write_exec(
        tmp_path / "old-mariadb",
        "#!/bin/sh\necho \"mariadb: unknown option '--sandbox'\" >&2\nexit 7\n",
    )
    older = dataclasses.replace(config, tools={"mariadb": str(old)})
    databases = mariadb.sql("SHOW DATABASES")
    root = str(mariadb.root_defaults)
    everything = request(tmp_path, files=None, in_place=True, mysql_defaults_file=root)
    outcome = restore(older, everything)
    assert (outcome.reason, outcome.exit_code) == ("config", 2), outcome.message
    assert "--sandbox" in outcome.message
    assert mariadb.sql("SHOW DATABASES") == databases


def test_in_place_restore_on_another_file_system(
    tmp_path: Path, store: FtpStore, certs: Certs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site on another file system than the restore folder (/dev/shm here): the files wait in
    a private folder on the site's own file system, then move into place; nothing is left."""
    shm = Path("/dev/shm")
    if os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("/dev/shm is on the same file system here")
    base = Path(tempfile.mkdtemp(prefix="vpsfleet-site-", dir=shm))
    try:
        site = base / "data" / "www"
        (site / "blog").mkdir(parents=True)
        (site / "blog" / "post.html").write_text("<p>on tmpfs</p>\n")
        config = make_config(tmp_path, store, certs, site)
        backed_up(config)
        (site / "blog" / "post.html").write_text("defaced")
        before = set(shm.iterdir())
        stages: list[str] = []
        real_mkdtemp = tempfile.mkdtemp

        def mkdtemp(prefix: str = "", dir: str | None = None) -> str:
            if prefix.startswith(".vpsfleet-restore"):
                stages.append(str(dir))
            return real_mkdtemp(prefix=prefix, dir=dir)

        monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
        outcome = restore(config, request(tmp_path, databases=None, in_place=True))
        assert outcome.reason == "ok", outcome.message
        assert stages == [str(shm)]  # the top of the site's file system that only root changes
        assert (site / "blog" / "post.html").read_text() == "<p>on tmpfs</p>\n"
        assert set(shm.iterdir()) == before  # the private folder is gone
        kept = Path(outcome.replaced["files"]) / str(site).lstrip("/") / "blog" / "post.html"
        assert kept.read_text() == "defaced"  # copied across file systems, then removed here
    finally:
        shutil.rmtree(base, ignore_errors=True)
