"""Role backup, verified on what the guest does: the nightly unit publishes a complete set on the
real ProFTPD store, the set restores to identical files and database content, and each fault
leaves the last good set intact, says why in the metrics, mails operations and clears at the
next run (issue 6, M18-M24)."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import testinfra

from tests.metric_samples import samples

testinfra_hosts = ["backup-role-guest"]

CUSTOMER = "c-alpha"
GUEST = "backup-role-guest"
STORE_ROOT = "/srv/vpsfleet-backup"
FOLDER = f"{STORE_ROOT}/{CUSTOMER}/{GUEST}"
MAILDIR = "/var/mail/sink/new"
OPERATIONS = "ops@test.example.net"
CONFIG = "/etc/vpsfleet-backup/config.json"
STATUS = "/var/lib/vpsfleet-backup/status.json"
METRICS = "/var/lib/prometheus/node-exporter/vpsfleet_backup.prom"
SET_NAME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # fullmatch: ASCII digits, no newline
# Everything the round trip compares: rows, and the definitions of the view, trigger and event.
DB_QUERIES = {
    "items": "SELECT id, HEX(name), price, HEX(photo) FROM {db}.items ORDER BY id",
    "audit": "SELECT id, item_id, note FROM {db}.audit ORDER BY id",
    "view": "SELECT VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA='{db}'",
    "trigger": (
        "SELECT TRIGGER_NAME, EVENT_MANIPULATION, ACTION_TIMING, ACTION_STATEMENT"
        " FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='{db}'"
    ),
    "event": (
        "SELECT EVENT_NAME, EVENT_DEFINITION, INTERVAL_VALUE, INTERVAL_FIELD, STARTS"
        " FROM information_schema.EVENTS WHERE EVENT_SCHEMA='{db}'"
    ),
}


def other(name: str) -> Any:
    return testinfra.get_host(f"podman://{name}")


def store() -> Any:
    return other("backup-role-store")


def failure_mail_files(reason: str) -> list[str]:
    """The sink's mails about a failure for `reason` (one command, however many mails)."""
    found = other("backup-role-sink").run(
        f"grep -l -x -E 'X-Vpsfleet-Backup-Reason: {reason}\\r?' {MAILDIR}/* 2>/dev/null"
    )
    return sorted(found.stdout.split())


def read_mail(path: str) -> EmailMessage:
    raw = other("backup-role-sink").file(path).content
    return email.message_from_bytes(raw, policy=email.policy.default)


def today(host: Any) -> str:
    return str(host.check_output("date +%F"))


def store_entries() -> list[str]:
    return str(store().check_output(f"ls -1 {FOLDER}")).split()


def set_sums(night: str) -> str:
    return str(store().file(f"{FOLDER}/{night}/SHA256SUMS").content_string)


def metrics(host: Any) -> dict[str, float]:
    return samples(host.file(METRICS).content_string)


def status(host: Any) -> dict[str, Any]:
    return json.loads(host.file(STATUS).content_string)  # type: ignore[no-any-return]


def backup(host: Any) -> Any:
    """A run of the nightly unit, as its timer starts it."""
    return host.run("systemctl start vpsfleet-backup.service")


def run_backup(host: Any) -> int:
    return int(backup(host).rc)


def assert_sets_complete() -> None:
    """Every folder named like a night checks against its SHA256SUMS; anything else is a
    `.partial` leftover, never mistaken for a set."""
    for entry in store_entries():
        if SET_NAME.fullmatch(entry):
            check = store().run(f"cd {FOLDER}/{entry} && sha256sum -c --strict SHA256SUMS")
            assert check.rc == 0, check.stdout + check.stderr
        else:
            assert entry.endswith(".partial"), entry


@pytest.fixture(scope="module")
def first_run(host: Any) -> str:
    run = backup(host)
    assert run.rc == 0, run.stdout + run.stderr
    return today(host)


def test_run_publishes_a_complete_set(host: Any, first_run: str) -> None:
    files = str(store().check_output(f"cd {FOLDER}/{first_run} && find . -type f | sort")).split()
    assert files == [
        "./MANIFEST.json",
        "./SHA256SUMS",
        "./db/blog.sql.gz",
        "./db/shop.sql.gz",
        "./www.tar.gz",
    ]
    assert store_entries() == [first_run]  # no .partial left
    assert_sets_complete()
    manifest = json.loads(store().file(f"{FOLDER}/{first_run}/MANIFEST.json").content_string)
    assert manifest["guest"] == GUEST and manifest["customer"] == CUSTOMER
    assert manifest["scope"]["paths"] == ["/data/www"]


def test_metrics_and_status_say_success(host: Any, first_run: str) -> None:
    values = metrics(host)
    assert values["vpsfleet_backup_last_run_success"] == 1
    assert values['vpsfleet_backup_last_run_exit_reason{reason="ok"}'] == 1
    assert values["vpsfleet_backup_last_success_bytes"] > 100_000
    assert values["vpsfleet_backup_running"] == 0
    assert status(host)["last_success"]["set"] == first_run


def test_timer_elapses_at_the_planned_start(host: Any) -> None:
    timer = host.service("vpsfleet-backup.timer")
    assert timer.is_enabled and timer.is_running
    nxt = host.check_output("systemctl show -P NextElapseUSecRealtime vpsfleet-backup.timer")
    assert re.search(r" 00:17:00 ", nxt + " "), nxt
    unit = host.check_output("systemctl cat vpsfleet-backup.timer")
    assert "RandomizedDelaySec" not in unit and "Persistent=false" in unit


def test_run_is_low_priority_and_stops_at_the_deadline(host: Any) -> None:
    shown = host.check_output(
        "systemctl show --property=Nice,IOSchedulingClass,IOSchedulingPriority,RuntimeMaxUSec"
        " vpsfleet-backup.service"
    )
    props = dict(line.split("=", 1) for line in shown.splitlines())
    assert props["Nice"] == "10"
    assert props["IOSchedulingClass"] in ("2", "best-effort")
    assert props["IOSchedulingPriority"] == "7"
    # Started at 00:17, the unit is stopped at the window's end at the latest (03:00).
    assert props["RuntimeMaxUSec"] in ("2h 43min", str((3 * 60 - 17) * 60 * 1_000_000))
    assert json.loads(host.file(CONFIG).content_string)["deadline"] == "02:55"


def test_secrets_are_root_only(host: Any) -> None:
    for path in (CONFIG, "/etc/vpsfleet-backup/store.password", "/etc/vpsfleet-backup/my.cnf"):
        f = host.file(path)
        assert (f.user, f.group, f.mode) == ("root", "root", 0o600), path


def test_work_and_restore_folders_are_root_only(host: Any) -> None:
    """The agent refuses a folder that is a link, someone else's or open to others (issue 10,
    #3): the role makes them root's, 0700, and the configuration names them."""
    for path in (
        "/var/tmp/vpsfleet-backup",
        "/var/lib/vpsfleet-backup/restore",
        "/var/lib/vpsfleet-backup/replaced",
    ):
        f = host.file(path)
        assert f.is_directory and not f.is_symlink, path
        assert (f.user, f.group, f.mode) == ("root", "root", 0o700), path
    config = json.loads(host.file(CONFIG).content_string)
    assert config["restore_dir"] == "/var/lib/vpsfleet-backup/restore"
    assert config["replaced_dir"] == "/var/lib/vpsfleet-backup/replaced"
    assert config["retention_minimum_sets"] == 3


def test_store_password_comes_from_the_identity_not_the_name(host: Any) -> None:
    """The store accepted the guest (the first run published), and the password the guest holds
    is the one derived from "<name>@<created date>", not from the name alone (issue 10, #5)."""
    secret = (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "backup-secret").read_text().strip()

    def derive(purpose: str, name: str) -> str:  # plugins/filter/vpsfleet_secrets.py
        mac = hmac.new(secret.encode(), f"{purpose}:{name}".encode(), hashlib.sha256).digest()
        return base64.b32encode(mac).decode().rstrip("=").lower()[:32]

    held = host.file("/etc/vpsfleet-backup/store.password").content_string.strip()
    assert held == derive("backup-write", "backup-role-guest@2026-01-01")
    assert held != derive("backup-write", GUEST)


def test_backup_user_has_exactly_the_read_privileges(host: Any) -> None:
    grants = host.check_output("mariadb -N -e \"SHOW GRANTS FOR 'vpsfleet_backup'@'localhost'\"")
    privileges = re.search(r"GRANT (.*) ON \*\.\*", grants)
    assert privileges is not None, grants
    assert sorted(p.strip() for p in privileges[1].split(",")) == [
        "EVENT",
        "SELECT",
        "SHOW VIEW",
        "TRIGGER",
    ]
    # It logs in with the defaults file the agent uses, and cannot write.
    denied = host.run("mariadb --defaults-extra-file=/etc/vpsfleet-backup/my.cnf -e 'DELETE FROM shop.items'")
    assert denied.rc != 0 and "denied" in denied.stderr


def test_round_trip_restore_reproduces_files_and_database(host: Any, first_run: str) -> None:
    """Fetch the set like a customer would (here straight from the store's disk), unpack the
    archive and load the dump into a scratch database: identical files and content."""
    host.check_output("rm -rf /root/restore && mkdir -p /root/restore")
    fetch = subprocess.run(
        f"podman exec backup-role-store tar -C {FOLDER}/{first_run} -cf - ."
        " | podman exec -i backup-role-guest tar -C /root/restore --one-top-level=set -xf -",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
    )
    assert fetch.returncode == 0, fetch.stderr
    host.check_output("cd /root/restore/set && sha256sum -c --strict SHA256SUMS")
    host.check_output("tar -xzf /root/restore/set/www.tar.gz -C /root/restore")
    sums = "find . -type f -print0 | sort -z | xargs -0 sha256sum; find . -type l -printf '%p -> %l\\n'"
    original = host.check_output(f"cd /data/www && {{ {sums}; }}")
    restored = host.check_output(f"cd /root/restore/data/www && {{ {sums}; }}")
    assert original == restored and original.count("\n") > 250
    assert host.check_output("readlink /root/restore/data/www/current") == "site1"
    host.check_output(
        "mariadb -e 'DROP DATABASE IF EXISTS shop_restore; CREATE DATABASE shop_restore'"
        " && gunzip -c /root/restore/set/db/shop.sql.gz | mariadb shop_restore"
    )
    try:
        for what, query in DB_QUERIES.items():
            got = host.check_output(f'mariadb -N -e "{query.format(db="shop_restore")}"')
            want = host.check_output(f'mariadb -N -e "{query.format(db="shop")}"')
            # information_schema qualifies a view's tables with its database's name.
            assert got.replace("`shop_restore`", "`shop`") == want and got, what
    finally:
        host.run("mariadb -e 'DROP DATABASE shop_restore' && rm -rf /root/restore")


# --- faults ------------------------------------------------------------------------------------


@dataclass
class Fault:
    reason: str
    make: Callable[[Any], None]
    clear: Callable[[Any], None]
    run: Callable[[Any], int] = run_backup


def stop_store(_host: Any) -> None:
    store().check_output("systemctl stop proftpd")


def start_store(_host: Any) -> None:
    store().check_output("systemctl start proftpd")


def wrong_password(host: Any) -> None:
    host.check_output(
        "cp -p /etc/vpsfleet-backup/store.password /root/store.password.good"
        " && echo wrong-password-for-the-test > /etc/vpsfleet-backup/store.password"
    )


def good_password(host: Any) -> None:
    host.check_output("mv /root/store.password.good /etc/vpsfleet-backup/store.password")


def other_certificate(host: Any) -> None:
    """A self-signed certificate for the same address: not the one the store presents."""
    address = json.loads(host.file(CONFIG).content_string)["store"]["host"]
    host.check_output(
        "cp -p /etc/vpsfleet-backup/store-ca.pem /root/store-ca.pem.good && openssl req -x509"
        " -newkey rsa:2048 -nodes -days 2 -keyout /root/other.key -out /etc/vpsfleet-backup/store-ca.pem"
        f" -subj /CN=backup-role-store -addext subjectAltName=DNS:backup-role-store,IP:{address}"
    )


def good_certificate(host: Any) -> None:
    host.check_output("mv /root/store-ca.pem.good /etc/vpsfleet-backup/store-ca.pem && rm /root/other.key")


def stop_database(host: Any) -> None:
    # The socket too: Debian's mariadb.socket would start the server again on connection.
    host.check_output("systemctl stop mariadb.socket mariadb.service")


def start_database(host: Any) -> None:
    host.check_output("systemctl start mariadb.socket mariadb.service")


LOCK_UNIT = "backup-test-table-lock"


def lock_table(host: Any) -> None:
    """Another session holds a write lock on a table: the dump waits on it, so the run lasts
    until it is stopped (killed, or at the deadline)."""
    host.check_output(
        f"systemd-run --unit={LOCK_UNIT} mariadb -e 'LOCK TABLES shop.audit WRITE; SELECT SLEEP(600)'"
    )
    wait_for(lambda: host.run(f"systemctl is-active {LOCK_UNIT}").rc == 0)


def unlock_table(host: Any) -> None:
    host.run(f"systemctl stop {LOCK_UNIT}")
    host.run(f"systemctl reset-failed {LOCK_UNIT}")


def wait_for(condition: Callable[[], bool], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(1)


def dump_waiting(host: Any) -> bool:
    return (
        host.run("pgrep -x mariadb-dump").rc == 0
        and "Waiting for table" in host.run("mariadb -N -e 'SHOW PROCESSLIST'").stdout
    )


def run_then_kill(host: Any) -> int:
    """The run stopped by systemd (an operator's `systemctl stop`, a shutdown) mid-dump."""
    host.check_output("systemctl start --no-block vpsfleet-backup.service")
    wait_for(lambda: dump_waiting(host))
    host.check_output("systemctl stop vpsfleet-backup.service")
    return int(host.check_output("systemctl show -P ExecMainStatus vpsfleet-backup.service"))


def deadline_in_a_minute(host: Any) -> None:
    """The hard stop at the next minute (the agent takes the first HH:MM after its start)."""
    lock_table(host)
    # Not in the last seconds of a minute, so that the run starts before the new deadline.
    wait_for(lambda: int(host.check_output("date +%S")) < 50)
    deadline = host.check_output("date -d '+1 minute' +%H:%M")
    config = json.loads(host.file(CONFIG).content_string)
    config["deadline"] = deadline
    host.check_output(f"cp -p {CONFIG} /root/config.json.good")
    host.check_output(f"echo {shlex.quote(json.dumps(config))} > {CONFIG}")


def normal_deadline(host: Any) -> None:
    unlock_table(host)
    host.check_output(f"mv /root/config.json.good {CONFIG}")


STORE_PROGRAM = "/usr/local/sbin/vpsfleet-backup-store"
STORE_CONFIG = "/etc/vpsfleet-backup-store/config.json"


def store_nearly_full(_host: Any) -> None:
    """The customer's quota (role backup_store's ProFTPD quota table) set to what its folder
    holds plus less than one set."""
    box = store()
    used = int(box.check_output(f"du -sb {STORE_ROOT}/{CUSTOMER} | cut -f1"))
    config = json.loads(box.file(STORE_CONFIG).content_string)
    for customer in config["customers"]:
        customer["quota_bytes"] = used + 300_000
    box.check_output(f"echo {shlex.quote(json.dumps(config))} > /root/quota-test.json")
    box.check_output(f"{STORE_PROGRAM} --config /root/quota-test.json quota")


def store_quota_back(_host: Any) -> None:
    store().check_output(f"{STORE_PROGRAM} --config {STORE_CONFIG} quota && rm /root/quota-test.json")


CHURN_UNIT = "backup-test-churn"


def file_growing(host: Any) -> None:
    """A log file under /data/www written to without pause while tar reads it, at every
    attempt (tar: "file changed as we read it")."""
    host.check_output(
        "mkdir -p /data/www/churn && head -c 4000000 /dev/zero > /data/www/churn/live.log"
        f" && systemd-run --unit={CHURN_UNIT} /bin/sh -c"
        " 'while :; do echo x >> /data/www/churn/live.log; done'"
    )


def file_still(host: Any) -> None:
    host.run(f"systemctl stop {CHURN_UNIT}")
    host.run(f"systemctl reset-failed {CHURN_UNIT}")
    host.check_output("rm -rf /data/www/churn")


FAULTS = {
    "store_down": Fault("store_unreachable", stop_store, start_store),
    "wrong_password": Fault("auth_failed", wrong_password, good_password),
    "certificate_mismatch": Fault("tls_failed", other_certificate, good_certificate),
    "database_down": Fault("db_unavailable", stop_database, start_database),
    "run_killed": Fault("killed", lock_table, unlock_table, run_then_kill),
    "deadline": Fault("deadline", deadline_in_a_minute, normal_deadline),
    "store_full": Fault("quota", store_nearly_full, store_quota_back),
    "file_changing": Fault("source_changed", file_growing, file_still),
}


@pytest.fixture
def good_set(host: Any, first_run: str) -> Iterator[str]:
    night = today(host)
    assert night in store_entries()
    yield night


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_keeps_the_last_good_set_and_is_reported(host: Any, good_set: str, name: str) -> None:
    fault = FAULTS[name]
    before = set_sums(good_set)
    mails_before = set(failure_mail_files(fault.reason))
    fault.make(host)
    try:
        assert fault.run(host) != 0
        assert status(host)["reason"] == fault.reason, status(host)
        values = metrics(host)
        assert values[f'vpsfleet_backup_last_run_exit_reason{{reason="{fault.reason}"}}'] == 1
        assert values["vpsfleet_backup_last_run_success"] == 0
        assert values["vpsfleet_backup_running"] == 0
        # The last good set is untouched; a leftover is only ever a `.partial`.
        assert set_sums(good_set) == before
        assert_sets_complete()
        wait_for(lambda: bool(set(failure_mail_files(fault.reason)) - mails_before))
        (new,) = set(failure_mail_files(fault.reason)) - mails_before
        mail = read_mail(new)
        assert mail["To"] == OPERATIONS
        assert GUEST in mail["Subject"] and fault.reason in mail["Subject"]
        assert "Last journal lines" in mail.get_content()
    finally:
        fault.clear(host)
    # The fault cleared, the next run publishes again and cleans any leftover.
    again = backup(host)
    assert again.rc == 0, again.stdout + again.stderr
    assert store_entries() == [good_set]
    assert set_sums(good_set) != before
    assert_sets_complete()
