"""The backup agent against a real FTPS store on loopback: what it publishes, and every fault
leaving the last good set intact, no `.partial` taken for a set, metrics that say why, and a
next run that succeeds once the fault clears."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.backup.conftest import (
    AGENT_PATH,
    NIGHT,
    Certs,
    Faults,
    FtpStore,
    held_lock,
    make_config,
    metrics,
    need,
    open_archive,
    status,
    unpack,
    write_exec,
)
from vpsfleet_agents.backup.config import ConfigError, parse_config
from vpsfleet_agents.backup.run import run
from vpsfleet_agents.backup.sets import parse_sha256sums, published_sets

PREVIOUS = NIGHT - dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def _tools() -> None:
    need("lftp", "tar", "pigz", "zstd", "sha256sum")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def reason_metric(config: Any, reason: str) -> float:
    return metrics(config)[f'vpsfleet_backup_last_run_exit_reason{{reason="{reason}"}}']


def good_night(config: Any, store: FtpStore) -> dict[str, bytes]:
    outcome = run(config, now=PREVIOUS, use_deadline=False)
    assert outcome.reason == "ok", outcome.message
    return snapshot(store.home / PREVIOUS.date().isoformat())


def fault_then_recovery(
    config: Any,
    store: FtpStore,
    expected: str | set[str],
    clear: Callable[[], None],
    faulty_config: Any = None,
) -> None:
    """The promise every fault must keep (issue 6, "How it is checked")."""
    previous = good_night(config, store)
    success_ts = metrics(config)["vpsfleet_backup_last_success_timestamp_seconds"]
    outcome = run(faulty_config or config, now=NIGHT, use_deadline=False)
    reasons = {expected} if isinstance(expected, str) else expected
    assert outcome.reason in reasons, outcome.message
    assert outcome.exit_code == 1
    # The last good set is untouched and is still the only set.
    assert snapshot(store.home / PREVIOUS.date().isoformat()) == previous
    assert published_sets(store.sets()) == [PREVIOUS.date().isoformat()]
    # The metrics say it failed, why, and when the last success was.
    values = metrics(config)
    assert values["vpsfleet_backup_last_run_success"] == 0
    assert reason_metric(config, outcome.reason) == 1
    assert values["vpsfleet_backup_last_success_timestamp_seconds"] == success_ts
    assert status(config)["reason"] == outcome.reason
    # Once the fault clears, the next run publishes and leaves no leftover.
    clear()
    again = run(config, now=NIGHT, use_deadline=False)
    assert again.reason == "ok", again.message
    assert store.sets() == [PREVIOUS.date().isoformat(), NIGHT.date().isoformat()]
    assert metrics(config)["vpsfleet_backup_last_run_success"] == 1


# --- what a run publishes ---------------------------------------------------------------------


def test_published_set_opens_with_ordinary_tools(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    config = make_config(tmp_path, store, certs, site)
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert outcome.reason == "ok", outcome.message
    folder = store.home / "2026-11-23"
    # zstd is the fleet's default (the Config's too).
    assert sorted(p.name for p in folder.iterdir()) == ["MANIFEST.json", "SHA256SUMS", "www.tar.zst"]
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True)
    assert check.returncode == 0, check.stdout
    with open_archive(folder / "www.tar.zst") as archive:
        names = archive.getnames()
        member = archive.extractfile(site.relative_to("/").as_posix() + "/blog/post.html")
        assert member is not None and member.read() == "<p>été</p>\n".encode()
    assert site.relative_to("/").as_posix() + "/current" in names  # symlinks kept as links
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert manifest["customer"] == "c1" and manifest["night"] == "2026-11-23"
    assert manifest["compression"] == "zstd"
    assert manifest["restore"]["database"].startswith("zstd -dc db/NAME.sql.zst |")
    assert manifest["restore"]["files"].startswith("zstd -dc www.tar.zst | tar -xf - -C /")
    [entry] = manifest["files"]
    assert entry["path"] == "www.tar.zst"
    assert entry["bytes"] == (folder / "www.tar.zst").stat().st_size
    assert "GNU tar" in manifest["tools"]["tar"]
    values = metrics(config)
    assert values["vpsfleet_backup_last_run_success"] == 1
    assert reason_metric(config, "ok") == 1
    assert values["vpsfleet_backup_last_success_bytes"] == outcome.bytes > 300_000
    assert status(config)["last_success"]["set"] == "2026-11-23"


def test_gzip_offer_set_and_missing_path_is_a_warning(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    """An offer that keeps gzip (`backup_compression: gzip`): `.gz` files that `tar -z` reads."""
    config = make_config(tmp_path, store, certs, site,
        compression="gzip", paths=[str(site), "/nonexistent/www"],
    )  # fmt: skip
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert outcome.reason == "ok", outcome.message
    folder = store.home / "2026-11-23"
    assert sorted(p.name for p in folder.iterdir()) == ["MANIFEST.json", "SHA256SUMS", "www.tar.gz"]
    listing = subprocess.run(
        ["tar", "-tzf", str(folder / "www.tar.gz")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert site.relative_to("/").as_posix() + "/shop/index.php" in listing.stdout.splitlines()
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert manifest["compression"] == "gzip"
    assert manifest["restore"]["database"].startswith("gunzip -c db/NAME.sql.gz |")
    assert manifest["restore"]["files"].startswith("gunzip -c www.tar.gz | tar -xf - -C /")
    assert manifest["warnings"] == ["path /nonexistent/www does not exist: not in the archive"]


def test_no_path_there_yet_publishes_an_empty_archive_with_the_warnings(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    """A guest handed over fresh has no data yet: its first set still publishes (it proves the
    annex works), empty, and says why."""
    config = make_config(tmp_path, store, certs, site, paths=["/nonexistent/www", "/nonexistent/home"])
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert outcome.reason == "ok", outcome.message
    with open_archive(store.home / "2026-11-23" / "www.tar.zst") as archive:
        assert archive.getnames() == []
    manifest = json.loads((store.home / "2026-11-23" / "MANIFEST.json").read_text())
    assert manifest["warnings"] == [
        "path /nonexistent/www does not exist: not in the archive",
        "path /nonexistent/home does not exist: not in the archive",
    ]


def test_a_second_run_the_same_night_replaces_the_set(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    config = make_config(tmp_path, store, certs, site)
    assert run(config, now=NIGHT, use_deadline=False).reason == "ok"
    (site / "blog" / "new.html").write_text("new\n")
    assert run(config, now=NIGHT, use_deadline=False).reason == "ok"
    assert store.sets() == ["2026-11-23"]
    with open_archive(store.home / "2026-11-23" / "www.tar.zst") as archive:
        assert any(n.endswith("blog/new.html") for n in archive.getnames())


def test_next_run_removes_stale_partial_and_applies_retention(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    for name in ("2026-11-10", "2026-11-19", "2026-11-20", "2026-11-21"):
        (store.home / name).mkdir()
        (store.home / name / "SHA256SUMS").write_text("")
    (store.home / "2026-11-22.partial" / "db").mkdir(parents=True)
    (store.home / "2026-11-22.partial" / "www.tar.gz").write_bytes(b"cut short")
    config = make_config(tmp_path, store, certs, site, retention_days=3, retention_minimum_sets=1)
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert outcome.reason == "ok", outcome.message
    # 3 nights kept, judged from the newest set there before tonight's (the 21st) + 1 day, not
    # from the guest's clock: 20, 21, 22 (none); the 22nd's partial is gone.
    assert store.sets() == ["2026-11-20", "2026-11-21", "2026-11-23"]
    assert status(config)["cleaned"] == ["2026-11-22.partial"]
    assert status(config)["expired"] == ["2026-11-10", "2026-11-19"]
    assert status(config)["retention_judged_on"] == "2026-11-22"
    # The next night judges from the 23rd + 1: the 20th and 21st go.
    outcome = run(config, now=NIGHT + dt.timedelta(days=1), use_deadline=False)
    assert outcome.reason == "ok", outcome.message
    assert store.sets() == ["2026-11-23", "2026-11-24"]


def test_overlapping_run_is_refused(tmp_path: Path, store: FtpStore, certs: Certs, site: Path) -> None:
    config = make_config(tmp_path, store, certs, site)
    with held_lock(config.lock_file):
        outcome = run(config, now=NIGHT, use_deadline=False)
    assert (outcome.reason, outcome.exit_code) == ("locked", 75)
    assert store.sets() == []


# --- faults on the store side -----------------------------------------------------------------


def test_store_down(tmp_path: Path, store: FtpStore, certs: Certs, site: Path) -> None:
    config = make_config(tmp_path, store, certs, site)
    previous = good_night(config, store)
    store.stop()
    began = time.monotonic()
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert outcome.reason == "store_unreachable", outcome.message
    assert time.monotonic() - began < 30  # bounded retries, not lftp's hours
    assert reason_metric(config, "store_unreachable") == 1
    store.start()
    assert snapshot(store.home / "2026-11-22") == previous
    assert run(config, now=NIGHT, use_deadline=False).reason == "ok"
    assert store.sets() == ["2026-11-22", "2026-11-23"]


def test_connection_killed_mid_upload_every_time(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    config = make_config(tmp_path, store, certs, site)

    def clear() -> None:
        store.faults.kill_after_bytes = None

    previous = good_night(config, store)
    store.faults.kill_after_bytes = 0  # no attempt progresses (lftp resumes partial uploads)
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert outcome.reason in {"upload_failed", "store_unreachable"}, outcome.message
    assert store.faults.kills >= 2  # lftp retried, within bounds
    assert snapshot(store.home / "2026-11-22") == previous
    assert published_sets(store.sets()) == ["2026-11-22"]
    assert "2026-11-23.partial" in store.sets()  # left behind, never taken for a set
    clear()
    again = run(config, now=NIGHT, use_deadline=False)
    assert again.reason == "ok", again.message
    assert store.sets() == ["2026-11-22", "2026-11-23"]
    assert status(config)["cleaned"] == ["2026-11-23.partial"]


def test_connection_killed_once_is_retried(tmp_path: Path, store: FtpStore, certs: Certs, site: Path) -> None:
    config = make_config(tmp_path, store, certs, site)
    store.faults.kill_after_bytes, store.faults.kill_times = 100_000, 1
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert outcome.reason == "ok", outcome.message
    assert store.faults.kills == 1
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=store.home / "2026-11-23")
    assert check.returncode == 0


def test_upload_the_server_truncates_is_never_published(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    config = make_config(tmp_path, store, certs, site)

    def clear() -> None:
        store.faults.drop_after_bytes = None

    previous = good_night(config, store)
    store.faults.drop_after_bytes = 50_000  # "226 Transfer complete" for a cut file
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert outcome.reason == "verify_mismatch", outcome.message
    assert snapshot(store.home / "2026-11-22") == previous
    assert published_sets(store.sets()) == ["2026-11-22"]
    clear()
    assert run(config, now=NIGHT, use_deadline=False).reason == "ok"


def test_store_full(tmp_path: Path, store: FtpStore, certs: Certs, site: Path) -> None:
    config = make_config(tmp_path, store, certs, site)

    def clear() -> None:
        store.faults.quota_bytes = None

    def fill() -> Any:
        used = sum(p.stat().st_size for p in store.home.rglob("*") if p.is_file())
        store.faults.quota_bytes = used + 100_000
        return config

    previous = good_night(config, store)
    fill()
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert outcome.reason == "quota", outcome.message
    assert snapshot(store.home / "2026-11-22") == previous
    assert published_sets(store.sets()) == ["2026-11-22"]
    assert reason_metric(config, "quota") == 1
    clear()
    assert run(config, now=NIGHT, use_deadline=False).reason == "ok"


def test_wrong_password(tmp_path: Path, store: FtpStore, certs: Certs, site: Path) -> None:
    config = make_config(tmp_path, store, certs, site)
    (tmp_path / "bad").mkdir()
    bad = make_config(tmp_path / "bad", store, certs, site, password="not-it")
    bad = type(config)(**{**config.__dict__, "store": bad.store})
    fault_then_recovery(config, store, "auth_failed", lambda: None, faulty_config=bad)


def test_certificate_for_another_name(tmp_path: Path, store: FtpStore, certs: Certs, site: Path) -> None:
    config = make_config(tmp_path, store, certs, site)
    previous = good_night(config, store)
    store.stop()
    impostor = FtpStore(store.root, certs.wrong_cert, certs.wrong_key, Faults())
    impostor.port = store.port
    impostor.start()
    trusting = make_config(tmp_path, store, certs, site, store_settings={"ca_file": str(certs.wrong_cert)})
    try:
        outcome = run(trusting, now=NIGHT, use_deadline=False)  # trusted, wrong name
        assert outcome.reason == "tls_failed", outcome.message
        outcome = run(config, now=NIGHT, use_deadline=False)  # untrusted certificate
        assert outcome.reason == "tls_failed", outcome.message
    finally:
        impostor.stop()
    assert published_sets(store.sets()) == ["2026-11-22"]
    assert snapshot(store.home / "2026-11-22") == previous
    config = make_config(tmp_path, store, certs, site)
    store.start()
    assert run(config, now=NIGHT, use_deadline=False).reason == "ok"


# --- faults on the guest side -----------------------------------------------------------------


@pytest.fixture
def fake_db(tmp_path: Path) -> dict[str, Any]:
    """Fake `mariadb` and `mariadb-dump` whose behaviour is set by a mode file."""
    folder = tmp_path / "fakebin"
    folder.mkdir()
    mode = folder / "mode"
    mode.write_text("ok")
    write_exec(
        folder / "mariadb",
        f"""#!/bin/bash
if [ "$(cat {mode})" = down ]; then
  echo "ERROR 2002 (HY000): Can't connect to local server through socket" >&2; exit 1
fi
printf 'information_schema\\nshop\\nmysql\\nperformance_schema\\nsys\\nwiki\\n'
""",
    )
    write_exec(
        folder / "mariadb-dump",
        f"""#!/bin/bash
echo $$ > {folder}/dump.pid
case "$(cat {mode})" in
  down) echo "mariadb-dump: Got error: 2002: Can't connect" >&2; exit 2;;
  fail) echo "CREATE TABLE t (a int);"; echo "mariadb-dump: Error 1045" >&2; exit 2;;
  notrailer) echo "-- MariaDB dump"; echo "CREATE TABLE t (a int);";;
  sleep) echo "-- MariaDB dump"; exec sleep 60;;
  *) echo "-- MariaDB dump for ${{@: -1}}"; echo "CREATE TABLE t (a int);"
     echo "-- Dump completed on 2026-11-23  1:00:00";;
esac
""",
    )
    defaults = tmp_path / "my.cnf"
    defaults.write_text("[client]\nuser=backup\n")
    return {
        "mode": mode,
        "folder": folder,
        "overrides": {
            "databases": "all",
            "mysql_defaults_file": str(defaults),
            "tools": {"mariadb": str(folder / "mariadb"), "mariadb-dump": str(folder / "mariadb-dump")},
        },
    }


def test_databases_are_dumped_one_file_each(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, fake_db: Any
) -> None:
    config = make_config(tmp_path, store, certs, site, **fake_db["overrides"])
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert outcome.reason == "ok", outcome.message
    folder = store.home / "2026-11-23"
    assert sorted(p.name for p in (folder / "db").iterdir()) == ["shop.sql.zst", "wiki.sql.zst"]
    dump = unpack(folder / "db" / "shop.sql.zst")
    assert dump.decode().splitlines()[0] == "-- MariaDB dump for shop"
    sums = parse_sha256sums((folder / "SHA256SUMS").read_text())
    assert set(sums) == {"MANIFEST.json", "www.tar.zst", "db/shop.sql.zst", "db/wiki.sql.zst"}


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("down", "db_unavailable"), ("fail", "dump_failed"), ("notrailer", "dump_incomplete")],
)
def test_database_faults(
    tmp_path: Path,
    store: FtpStore,
    certs: Certs,
    site: Path,
    fake_db: Any,
    mode: str,
    reason: str,
) -> None:
    config = make_config(tmp_path, store, certs, site, **fake_db["overrides"])
    previous = good_night(config, store)
    fake_db["mode"].write_text(mode)
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert outcome.reason == reason, outcome.message
    assert snapshot(store.home / "2026-11-22") == previous
    assert store.sets() == ["2026-11-22"]  # nothing uploaded for a broken night
    assert reason_metric(config, reason) == 1
    fake_db["mode"].write_text("ok")
    assert run(config, now=NIGHT, use_deadline=False).reason == "ok"


@pytest.mark.parametrize(("compression", "compressor"), [("zstd", "zstd"), ("gzip", "pigz")])
def test_failing_compressor_is_caught_like_pipefail(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, compression: str, compressor: str
) -> None:
    broken = write_exec(tmp_path / compressor, "#!/bin/bash\ncat > /dev/null\nexit 1\n")
    config = make_config(tmp_path, store, certs, site, compression=compression,
                         tools={compressor: str(broken)})  # fmt: skip
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert outcome.reason == "compress_failed", outcome.message
    assert store.sets() == []


def test_file_vanishing_while_tar_reads(tmp_path: Path, store: FtpStore, certs: Certs, site: Path) -> None:
    # GNU tar exits 1 when a file vanishes or changes under it; the fake says so each time
    # while the marker exists, as a site rewriting its cache would.
    marker = tmp_path / "busy"
    marker.write_text("")
    count = tmp_path / "tar.count"
    tar = write_exec(
        tmp_path / "tar",
        f"""#!/bin/bash
[ "$1" = --create ] && echo x >> {count}
/usr/bin/tar "$@" || exit $?
if [ -e {marker} ]; then echo "tar: cache/x: File removed before we read it" >&2; exit 1; fi
""",
    )
    config = make_config(tmp_path, store, certs, site, tools={"tar": str(tar)})
    previous_marker = marker.exists()
    marker.unlink()
    good = good_night(config, store)
    marker.write_text("")
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert previous_marker
    assert outcome.reason == "source_changed", outcome.message
    assert count.read_text().count("x") == 1 + 2  # the good night, then two attempts
    assert snapshot(store.home / "2026-11-22") == good
    marker.unlink()
    assert run(config, now=NIGHT, use_deadline=False).reason == "ok"


def test_deadline_stops_the_run_and_its_children(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, fake_db: Any
) -> None:
    config = make_config(tmp_path, store, certs, site, **fake_db["overrides"])
    previous = good_night(config, store)
    fake_db["mode"].write_text("sleep")
    began = time.monotonic()
    deadline = dt.datetime.now().astimezone() + dt.timedelta(seconds=2)
    outcome = run(config, now=NIGHT, deadline=deadline)
    assert outcome.reason == "deadline", outcome.message
    assert time.monotonic() - began < 15
    pid = int((fake_db["folder"] / "dump.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert reason_metric(config, "deadline") == 1
    assert snapshot(store.home / "2026-11-22") == previous
    fake_db["mode"].write_text("ok")
    assert run(config, now=NIGHT, use_deadline=False).reason == "ok"


def test_deadline_during_a_stalled_upload(tmp_path: Path, store: FtpStore, certs: Certs, site: Path) -> None:
    config = make_config(tmp_path, store, certs, site, store_settings={"timeout_seconds": 60})
    previous = good_night(config, store)
    store.faults.stall_uploads = True
    began = time.monotonic()
    deadline = dt.datetime.now().astimezone() + dt.timedelta(seconds=3)
    outcome = run(config, now=NIGHT, deadline=deadline)
    assert outcome.reason == "deadline", outcome.message
    assert time.monotonic() - began < 15  # not lftp's 60 s timeout
    assert snapshot(store.home / "2026-11-22") == previous
    assert published_sets(store.sets()) == ["2026-11-22"]
    store.faults.stall_uploads = False
    assert run(config, now=NIGHT, use_deadline=False).reason == "ok"
    assert store.sets() == ["2026-11-22", "2026-11-23"]


def test_run_killed_by_sigterm_reports_it(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path, fake_db: Any, built: None
) -> None:
    config = make_config(tmp_path, store, certs, site, **fake_db["overrides"])
    fake_db["mode"].write_text("sleep")
    proc = subprocess.Popen(
        [str(AGENT_PATH), "--config", str(tmp_path / "config.json")],  # the built program
        stderr=subprocess.PIPE,
        text=True,
    )
    pid_file = fake_db["folder"] / "dump.pid"
    for _ in range(200):
        if pid_file.exists() and status(config).get("state") == "running":
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1, err
    assert status(config)["reason"] == "killed"
    assert reason_metric(config, "killed") == 1
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="store: missing"):
        parse_config({"customer": "c1", "guest": "g1"})
    base = {
        "customer": "c1",
        "guest": "g1",
        "store": {"host": "h", "user": "u", "password_file": "/p", "ca_file": "/c"},
    }
    with pytest.raises(ConfigError, match="compression"):
        parse_config({**base, "compression": "bzip2"})
    with pytest.raises(ConfigError, match="unknown keys pathz"):
        parse_config({**base, "pathz": ["/data/www"]})
    with pytest.raises(ConfigError, match="guest"):
        parse_config({**base, "guest": "../other"})
    assert parse_config(base).paths == ("/data/www",)


# --- issue 10: clocks, locales and folders the agent does not own -----------------------------


def test_a_set_dated_in_the_future_is_reported_never_deleted(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    """A folder named after tomorrow (a clock ran ahead one night, or someone planted it) is
    kept and never counted as the newest: tonight's set is published, retention works from it,
    and the run ends with reason future_sets (mailed, in the metrics) until someone looks."""
    for name in ("2026-11-01", "2026-11-20", "2027-06-01"):
        (store.home / name).mkdir()
        (store.home / name / "SHA256SUMS").write_text("")
    config = make_config(tmp_path, store, certs, site, retention_days=3, retention_minimum_sets=1)
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert (outcome.reason, outcome.exit_code) == ("future_sets", 1), outcome.message
    assert "2027-06-01" in outcome.message
    assert store.sets() == ["2026-11-20", "2026-11-23", "2027-06-01"]  # the 1st expired, not the future
    assert status(config)["future_sets"] == ["2027-06-01"]
    assert status(config)["last_success"]["set"] == "2026-11-23"  # it was published
    values = metrics(config)
    assert values["vpsfleet_backup_future_sets"] == 1
    assert values['vpsfleet_backup_last_run_exit_reason{reason="future_sets"}'] == 1
    assert values["vpsfleet_backup_last_run_success"] == 0
    # Once it is gone, the next run is ok again.
    subprocess.run(["rm", "-r", str(store.home / "2027-06-01")], check=True)
    assert run(config, now=NIGHT, use_deadline=False).reason == "ok"
    assert metrics(config)["vpsfleet_backup_future_sets"] == 0


@pytest.fixture(scope="session")
def french(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A French guest's environment: fr_FR.UTF-8 compiled into a private LOCPATH when the
    system lacks it (C.UTF-8 with LANGUAGE=fr translates as well otherwise)."""
    need("lftp")
    env = {"LANG": "fr_FR.UTF-8", "LANGUAGE": "fr", "LC_ALL": ""}
    if "fr_FR.utf8" not in subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout:
        folder = tmp_path_factory.mktemp("locales")
        made = subprocess.run(
            ["localedef", "-i", "fr_FR", "-f", "UTF-8", str(folder / "fr_FR.UTF-8")], capture_output=True
        )
        env = {**env, "LOCPATH": str(folder)} if made.returncode == 0 else {**env, "LANG": "C.UTF-8"}
    said = subprocess.run(
        ["lftp", "-c", "set net:max-retries 1; open -p 1 127.0.0.1; ls"],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=60,
    )  # fmt: skip
    assert "Connexion refus" in said.stderr, said.stderr  # lftp does speak French here
    return env


@pytest.mark.parametrize("fault", ["store_down", "untrusted_certificate"])
def test_failures_are_classified_on_a_french_guest(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path,
    french: dict[str, str], monkeypatch: pytest.MonkeyPatch, fault: str,
) -> None:  # fmt: skip
    """Debian's lftp is translated: the agent runs it in the C locale, so a French guest's
    failures get the same reason as anyone's (issue 10, low)."""
    for key, value in french.items():
        monkeypatch.setenv(key, value)
    if fault == "store_down":
        config = make_config(tmp_path, store, certs, site)
        store.stop()
        expected = "store_unreachable"
    else:
        untrusted = {"ca_file": str(certs.wrong_cert)}
        config = make_config(tmp_path, store, certs, site, store_settings=untrusted)
        expected = "tls_failed"
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert outcome.reason == expected, outcome.message


def test_a_work_folder_someone_else_made_is_refused(
    tmp_path: Path, store: FtpStore, certs: Certs, site: Path
) -> None:
    """The work folder's name is predictable in world-writable /var/tmp: one made by someone
    else (here a link to their own folder) is refused, nothing is written there (the lftp
    scripts hold the store password)."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (tmp_path / "work").symlink_to(theirs)
    config = make_config(tmp_path, store, certs, site)
    outcome = run(config, now=NIGHT, use_deadline=False)
    assert (outcome.reason, outcome.exit_code) == ("config", 2), outcome.message
    assert "work" in outcome.message
    assert not list(theirs.iterdir())
    assert store.sets() == []
    assert status(config)["reason"] == "config"
