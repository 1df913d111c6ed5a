"""Role backup_store, verified on what the store does for its clients: lftp (the agent's client)
inside the store container talks to ProFTPD on loopback with the store's certificate verified,
with the accounts' derived passwords; the daily jobs run as their timers would, tenants' garbage,
future-dated sets and trees no configuration names included; a reused name gets no account."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import hashlib
import hmac
import json
import os
import shlex
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import testinfra

from tests.metric_samples import samples

testinfra_hosts = ["bstore"]

ROOT = "/srv/vpsfleet-backup"
CERT = "/etc/proftpd/vpsfleet/store.crt"
PROGRAM = "/usr/local/sbin/vpsfleet-backup-store"
CONFIG = "/etc/vpsfleet-backup-store/config.json"
PASSWD = "/etc/proftpd/vpsfleet/ftpd.passwd"
MAILDIR = "/var/mail/sink/new"
OPERATIONS = "ops@test.example.net"
REPO = Path(os.environ.get("VPSFLEET_ROOT", Path(__file__).resolve().parents[6]))
SCENARIO = Path(__file__).resolve().parents[1]
# The identities of molecule.yml's host_vars: the passwords derive from them, not from the names.
IDENTITY = {
    "alpha-db": "alpha-db@2024-03-01",
    "alpha-web": "alpha-web@2024-03-01",
    "beta-idle": "beta-idle@2024-06-06",
    "beta-web": "beta-web@2024-06-06",
    "c-alpha": "c-alpha@2023-01-15",
    "c-beta": "c-beta@2024-06-01",
}


def secret() -> str:
    return (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "backup-secret").read_text().strip()


def derive(purpose: str, identity: str) -> str:
    """The filter vpsfleet_derive (plugins/filter/vpsfleet_secrets.py), as the agent's side sees it."""
    mac = hmac.new(secret().encode(), f"{purpose}:{identity}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode().rstrip("=").lower()[:32]


def lftp(host: Any, user: str, password: str, commands: str, tls: bool = True) -> Any:
    settings = [
        f"set ssl:ca-file {CERT}",
        "set ssl:check-hostname yes",
        f"set ftp:ssl-force {'true' if tls else 'false'}",
        f"set ftp:ssl-allow {'true' if tls else 'false'}",
        "set ftp:ssl-protect-data true",
        "set ftp:passive-mode true",
        "set net:max-retries 1",
        "set net:timeout 10",
        "set cmd:fail-exit true",
        f"open -u {user},{password} bstore",
    ]
    script = "; ".join([*settings, commands])
    return host.run(f"lftp -c {shlex.quote(script)}")


def guest(host: Any, name: str, commands: str) -> Any:
    return lftp(host, name, derive("backup-write", IDENTITY[name]), commands)


def customer(host: Any, name: str, commands: str) -> Any:
    return lftp(host, name, derive("backup-read", IDENTITY[name]), commands)


def today(host: Any) -> dt.date:
    return dt.date.fromisoformat(host.check_output("date +%F"))


def make_set(host: Any, folder: str, size: int = 1000) -> None:
    host.check_output(
        f"mkdir -p {folder} && head -c {size} /dev/urandom > {folder}/www.tar.gz && "
        f"chown -R vpsfleet-store: {folder}"
    )


def sink() -> Any:
    return testinfra.get_host(
        "ansible://bstore-sink", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"]
    )


def sink_mails() -> list[EmailMessage]:
    box = sink()
    mails = []
    for name in box.run(f"ls -1 {MAILDIR}").stdout.split():
        raw = box.file(f"{MAILDIR}/{name}").content
        mails.append(email.message_from_bytes(raw, policy=email.policy.default))
    return mails


def test_plain_ftp_login_is_refused(host: Any) -> None:
    run = lftp(host, "alpha-web", derive("backup-write", IDENTITY["alpha-web"]), "ls", tls=False)
    assert run.rc != 0
    log = host.file("/var/log/proftpd/proftpd.log").content_string
    assert "SSL/TLS required" in run.stderr or "TLS" in log


def test_tls_below_1_2_is_refused(host: Any) -> None:
    probe = f"openssl s_client -connect bstore:21 -starttls ftp -CAfile {CERT} -cipher DEFAULT:@SECLEVEL=0"
    assert host.run(f"{probe} -tls1_2 </dev/null").rc == 0  # the same probe, allowed version
    assert host.run(f"{probe} -tls1_1 </dev/null").rc != 0


def test_certificate_names_the_store(host: Any) -> None:
    text = host.check_output(f"openssl x509 -in {CERT} -noout -ext subjectAltName")
    assert "DNS:bstore" in text
    assert "IP Address:127.0.0.1" in text
    key = host.file("/etc/proftpd/vpsfleet/store.key")
    assert key.mode == 0o600
    assert key.user == "root"


def test_guest_uploads_into_its_own_folder_only(host: Any) -> None:
    host.check_output("head -c 2000 /dev/urandom > /tmp/upload.bin")
    run = guest(
        host,
        "alpha-web",
        "mkdir -p probe.partial; put /tmp/upload.bin -o probe.partial/f; "
        "mv probe.partial probe; cls -1 probe",
    )
    assert run.rc == 0, run.stderr
    assert host.file(f"{ROOT}/c-alpha/alpha-web/probe/f").size == 2000
    # Server-side SHA-256 (mod_digest), as the agent asks it.
    digest = host.check_output("sha256sum /tmp/upload.bin").split()[0]
    run = guest(host, "alpha-web", "quote XSHA256 probe/f")
    assert digest.upper() in run.stdout.upper(), run.stdout + run.stderr
    # Chrooted: the guest's root is its own folder; its neighbour is out of reach.
    make_set(host, f"{ROOT}/c-alpha/alpha-db/2020-01-01")
    for command in (
        "cls ../alpha-db",
        f"cls {ROOT}/c-alpha/alpha-db",
        "get ../alpha-db/2020-01-01/www.tar.gz -o /tmp/x",
    ):
        run = guest(host, "alpha-web", command)
        assert run.rc != 0, command
    run = guest(host, "alpha-web", "cls -1 /")
    assert "alpha-db" not in run.stdout
    guest(host, "alpha-web", "rm -r probe")
    assert not host.file(f"{ROOT}/c-alpha/alpha-web/probe").exists


def test_customer_reads_all_its_guests_and_cannot_write(host: Any) -> None:
    make_set(host, f"{ROOT}/c-alpha/alpha-web/2021-05-05", 3000)
    run = customer(
        host, "c-alpha", "cls -1 /; cls -1 /alpha-web; get /alpha-web/2021-05-05/www.tar.gz -o /tmp/fetched"
    )
    assert run.rc == 0, run.stderr
    assert "alpha-web" in run.stdout and "alpha-db" in run.stdout
    assert host.file("/tmp/fetched").size == 3000
    for command in (
        "put /tmp/upload.bin -o /alpha-web/intruder",
        "rm /alpha-web/2021-05-05/www.tar.gz",
        "mv /alpha-web/2021-05-05 /alpha-web/2021-05-06",
        "mkdir /alpha-web/new",
        "rmdir /alpha-db/2020-01-01",
    ):
        run = customer(host, "c-alpha", command)
        assert run.rc != 0, command
    assert not host.file(f"{ROOT}/c-alpha/alpha-web/intruder").exists
    assert host.file(f"{ROOT}/c-alpha/alpha-web/2021-05-05/www.tar.gz").exists
    assert not host.file(f"{ROOT}/c-alpha/alpha-web/2021-05-06").exists
    # Another customer's tree is out of reach.
    run = customer(host, "c-beta", "cls -1 /")
    assert run.rc == 0, run.stderr
    assert "alpha-web" not in run.stdout


def test_upload_beyond_the_customers_quota_is_refused(host: Any) -> None:
    """c-alpha's quota (3 MB) is shared by its guests: 2 MB by one, then 2 MB by the other."""
    host.check_output("head -c 2000000 /dev/urandom > /tmp/2mb.bin")
    first = guest(host, "alpha-web", "put /tmp/2mb.bin -o big1")
    assert first.rc == 0, first.stderr
    second = guest(host, "alpha-db", "put /tmp/2mb.bin -o big2")
    assert second.rc != 0
    # Refused by the server's quota (lftp itself only says "max-retries exceeded").
    audit = host.file("/var/log/proftpd/vpsfleet-audit.log").content_string
    assert 'alpha-db "STOR big2" 552' in audit, audit[-2000:]
    assert not host.file(f"{ROOT}/c-alpha/alpha-db/big2").exists
    # Another customer is not affected.
    other = guest(host, "beta-web", "put /tmp/2mb.bin -o big3; rm big3")
    assert other.rc == 0, other.stderr
    # Deleting frees the quota again.
    guest(host, "alpha-web", "rm big1")
    again = guest(host, "alpha-db", "put /tmp/2mb.bin -o big2; rm big2")
    assert again.rc == 0, again.stderr


def test_retention_keeps_the_offers_days_and_never_the_newest(host: Any) -> None:
    now = today(host)
    web = f"{ROOT}/c-alpha/alpha-web"
    db = f"{ROOT}/c-alpha/alpha-db"
    host.check_output(f"rm -rf {web}/* {db}/*")
    for days in range(6):
        make_set(host, f"{web}/{(now - dt.timedelta(days=days)).isoformat()}")
    for days in (12, 11, 10, 9, 8):  # backups stopped: every set is older than the 3 days
        make_set(host, f"{db}/{(now - dt.timedelta(days=days)).isoformat()}")
    make_set(host, f"{web}/{now.isoformat()}.partial")  # today's upload in progress
    make_set(host, f"{web}/stale.partial")
    host.check_output(f"touch -d '3 days ago' {web}/stale.partial")
    run = host.run(f"{PROGRAM} retention")
    assert run.rc == 0, run.stderr
    kept_web = sorted(host.file(web).listdir())
    assert kept_web == sorted(
        [(now - dt.timedelta(days=d)).isoformat() for d in range(3)] + [f"{now.isoformat()}.partial"]
    )
    # Judged from the newest set's day (the guest stopped, or a clock jumped), and never below
    # the minimum of 3 sets (policy.backup.retention_minimum_sets).
    assert sorted(host.file(db).listdir()) == [(now - dt.timedelta(days=d)).isoformat() for d in (10, 9, 8)]
    removed = json.loads(run.stdout)["removed"]
    assert {r["set"] for r in removed} >= {"stale.partial", (now - dt.timedelta(days=5)).isoformat()}


def test_dead_man_mails_operations_and_writes_metrics(host: Any) -> None:
    now = today(host).isoformat()
    make_set(host, f"{ROOT}/c-alpha/alpha-web/{now}")
    make_set(host, f"{ROOT}/c-alpha/alpha-db/{now}")
    host.check_output(f"rm -rf {ROOT}/c-beta/beta-web/{now}")
    run = host.run(f"{PROGRAM} dead-man")
    assert run.rc == 1, run.stderr
    report = json.loads(run.stdout)
    assert [m["guest"] for m in report["missing"]] == ["beta-web"]  # suspended beta-idle not watched
    assert report["mailed"] is True
    deadline = time.monotonic() + 90
    alerts: list[EmailMessage] = []
    while not alerts and time.monotonic() < deadline:
        alerts = [m for m in sink_mails() if m["X-Vpsfleet-Alert"] == "backup-dead-man"]
        time.sleep(2)  # postfix relays to the sink over STARTTLS
    assert len(alerts) >= 1
    mail = alerts[-1]
    assert mail["To"] == OPERATIONS
    assert now in mail["Subject"]
    part = mail.get_body()
    assert part is not None
    body = part.get_content()
    assert "beta-web" in body and "alpha-web" not in body
    metrics = samples(
        host.file("/var/lib/prometheus/node-exporter/vpsfleet_backup_store.prom").content_string
    )
    assert metrics['vpsfleet_backup_store_set_present{customer="c-beta",guest="beta-web"}'] == 0
    assert metrics['vpsfleet_backup_store_set_present{customer="c-alpha",guest="alpha-web"}'] == 1
    assert metrics['vpsfleet_backup_store_newest_set_age_days{customer="c-alpha",guest="alpha-web"}'] == 0
    assert metrics['vpsfleet_backup_store_customer_quota_bytes{customer="c-alpha"}'] == 3000000
    assert not [key for key in metrics if "beta-idle" in key]


def test_terminated_guests_are_erased_and_logged(host: Any) -> None:
    for gone in ("c-alpha/alpha-old", "c-gamma"):
        assert not host.file(f"{ROOT}/{gone}").exists, gone
    # Terminated on a date to come: sets kept, but no account any more.
    assert host.file(f"{ROOT}/c-alpha/alpha-later/2024-01-30").is_directory
    users = [
        line.split(":")[0]
        for line in host.file("/etc/proftpd/vpsfleet/ftpd.passwd").content_string.splitlines()
    ]
    assert sorted(users) == ["alpha-db", "alpha-web", "beta-idle", "beta-web", "c-alpha", "c-beta"]
    log = [
        json.loads(line)
        for line in host.file("/var/log/vpsfleet-backup-store/erasure.log").content_string.splitlines()
    ]
    erased = {entry["guest"]: entry for entry in log}
    assert set(erased) == {"alpha-old", "gamma-gone"}
    assert erased["alpha-old"]["bytes"] == 100000
    assert erased["alpha-old"]["by"] == "ansible role backup_store"
    assert erased["gamma-gone"]["customer"] == "c-gamma"
    journal = host.check_output("journalctl --no-pager -o cat -t vpsfleet-backup-store")
    assert "erased alpha-old of c-alpha" in journal


def test_identity_markers_are_roots_and_out_of_the_accounts_reach(host: Any) -> None:
    marker = host.file(f"{ROOT}/c-alpha/.vpsfleet/guests/alpha-web")
    assert marker.content_string == "alpha-web@2024-03-01\n"
    assert (marker.user, marker.mode) == ("root", 0o644)
    assert host.file(f"{ROOT}/c-alpha/.vpsfleet/identity").content_string == "c-alpha@2023-01-15\n"
    # The customer reads its records, never changes them; a guest cannot reach them at all.
    run = customer(host, "c-alpha", "cat /.vpsfleet/identity")
    assert run.rc == 0 and "c-alpha@2023-01-15" in run.stdout
    for command in ("rm /.vpsfleet/identity", "mv /.vpsfleet /x", "put /etc/hostname -o /.vpsfleet/identity"):
        assert customer(host, "c-alpha", command).rc != 0, command
    assert guest(host, "alpha-web", "cls -1 ../.vpsfleet").rc != 0
    assert host.file(f"{ROOT}/c-alpha/.vpsfleet/identity").content_string == "c-alpha@2023-01-15\n"


def test_daily_job_survives_one_tenants_garbage_and_quarantines_future_sets(host: Any) -> None:
    """alpha-web's folder gets a link out of the store, a file and a name in fullwidth digits;
    beta-web a set dated 2099; c-alpha a tree no configuration names. The daily job ends, alerts,
    quarantines the future set, erases the unknown tree with a log line, follows no link."""
    now = today(host).isoformat()
    web = f"{ROOT}/c-alpha/alpha-web"
    wide = "\uff12\uff10\uff12\uff16"  # 2026 in fullwidth digits
    host.check_output(
        f"ln -sfn /etc {web}/2020-02-02 && echo notes > {web}/notes.txt && mkdir -p '{web}/{wide}'"
        f" && chown -h vpsfleet-store: {web}/2020-02-02 {web}/notes.txt"
    )
    make_set(host, f"{ROOT}/c-beta/beta-web/{now}")
    make_set(host, f"{ROOT}/c-beta/beta-web/2099-01-01")
    make_set(host, f"{ROOT}/c-alpha/stranger/2024-01-01", 4321)
    run = host.run(f"{PROGRAM} daily")
    assert run.rc == 1, run.stderr  # it alerted
    report = json.loads(run.stdout)
    kinds = {(p["kind"], p["guest"]) for p in report["problems"]}
    assert ("garbage", "alpha-web") in kinds and ("future", "beta-web") in kinds
    assert host.file(f"{ROOT}/c-beta/.vpsfleet/quarantine/beta-web/2099-01-01/www.tar.gz").exists
    assert not host.file(f"{ROOT}/c-beta/beta-web/2099-01-01").exists
    assert host.file(f"{ROOT}/c-alpha/alpha-web/2020-02-02").is_symlink  # left, not followed
    assert host.file("/etc/hostname").exists
    assert not host.file(f"{ROOT}/c-alpha/stranger").exists
    log = host.file("/var/log/vpsfleet-backup-store/erasure.log").content_string.splitlines()
    stranger = json.loads(log[-1])
    assert stranger["guest"] == "stranger" and stranger["bytes"] == 4321
    assert stranger["reason"] == "not in the store's configuration"
    daily = samples(
        host.file("/var/lib/prometheus/node-exporter/vpsfleet_backup_store_daily.prom").content_string
    )
    assert daily['vpsfleet_backup_store_quarantined_sets{customer="c-beta",guest="beta-web"}'] == 1
    assert daily['vpsfleet_backup_store_unexpected_entries{customer="c-alpha",guest="alpha-web"}'] == 3
    deadline = time.monotonic() + 90
    alerts: list[EmailMessage] = []
    while not alerts and time.monotonic() < deadline:
        alerts = [m for m in sink_mails() if m["X-Vpsfleet-Alert"] == "backup-store-daily"]
        time.sleep(2)
    assert alerts and "2099-01-01" in str(alerts[-1].get_body())
    # The dead-man check still sees every guest; the quarantined set is not beta-web's newest.
    dead_man = json.loads(host.run(f"{PROGRAM} dead-man").stdout)
    assert "beta-web" not in [m["guest"] for m in dead_man["missing"]]
    host.check_output(f"rm -rf {web}/2020-02-02 {web}/notes.txt '{web}/{wide}'")


def converge(*extra: str) -> subprocess.CompletedProcess[str]:
    """The scenario's converge.yml, accounts only (tag backup_store_accounts), as an operator
    would run the role."""
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(REPO / "ansible/roles"),
        # The collection vpsfleet.platform (its filters by FQCN), as molecule/shared/base.yml has it.
        "ANSIBLE_COLLECTIONS_PATH": f"{REPO}/.cache/collections:{REPO}/.venv/lib/python3.11/site-packages",
        "ANSIBLE_FORCE_COLOR": "false",
    }
    inventory = str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)
    return subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), "-i", inventory, str(SCENARIO / "converge.yml"),
         "--tags", "backup_store_accounts", *extra],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip


def test_a_reused_name_gets_no_account_and_the_others_keep_theirs(host: Any) -> None:
    """The fleet names a new alpha-web (another identity) while the former one's tree is still on
    the store: the role leaves its account out and fails it, with what to do; every other
    account stays. The former identity's marker and sets are kept."""
    guests = json.loads(host.check_output(f"cat {CONFIG}"))["guests"]
    for item in guests:
        if item["guest"] == "alpha-web":
            item["identity"] = "alpha-web@2026-11-20"
    run = converge("-e", json.dumps({"vpsfleet_store_guests": guests}))
    said = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0
    assert "guest alpha-web (alpha-web@2026-11-20) gets no FTP write account" in said, said[-3000:]
    assert "erase-stale --guest alpha-web" in said
    users = [line.split(":")[0] for line in host.file(f"{PASSWD}").content_string.splitlines()]
    assert "alpha-web" not in users and {"alpha-db", "beta-web", "c-alpha", "c-beta"} <= set(users)
    assert host.file(f"{ROOT}/c-alpha/.vpsfleet/guests/alpha-web").content_string == "alpha-web@2024-03-01\n"
    assert guest(host, "alpha-db", "cls -1 /").rc == 0
    # The fleet as it was: the account is back, with its own password.
    run = converge()
    assert run.returncode == 0, run.stdout[-3000:]
    assert guest(host, "alpha-web", "cls -1 /").rc == 0


def test_the_program_is_built_from_the_package_and_loads_no_agent(host: Any) -> None:
    """The store's program is the zip application built from vpsfleet_agents (Debian's python3
    alone runs it); the guests' agent it used to load is not installed beside it any more."""
    listing = host.check_output(f"python3 -m zipfile -l {PROGRAM}")
    assert "vpsfleet_agents/store/cli.py" in listing and "vpsfleet_agents/backup/sets.py" in listing
    assert not host.file("/usr/local/lib/vpsfleet-backup-store").exists
    assert "agent" not in json.loads(host.file(CONFIG).content_string)


def test_timers_run_after_the_window(host: Any) -> None:
    daily = host.check_output("systemctl show vpsfleet-backup-store-daily.timer -p TimersCalendar")
    assert "03:30:00" in daily
    dead_man = host.check_output("systemctl show vpsfleet-backup-store-dead-man.timer -p TimersCalendar")
    assert "04:00:00" in dead_man
    assert host.service("vpsfleet-backup-store-daily.timer").is_enabled
    assert host.service("vpsfleet-backup-store-dead-man.timer").is_enabled


def decommission(*extra: str) -> subprocess.CompletedProcess[str]:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(REPO / "ansible/roles"),
        "ANSIBLE_FILTER_PLUGINS": str(REPO / "ansible/plugins/filter"),
        "ANSIBLE_FORCE_COLOR": "false",
    }
    return subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(Path(inventory).parent),
         str(REPO / "ansible/playbooks/decommission.yml"), *extra],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "why"),
    [("alpha-web", "is active, not terminated"), ("alpha-later", "its backups are kept until that date")],
)
def test_decommission_refuses_a_guest_that_is_not_due(host: Any, name: str, why: str) -> None:
    run = decommission("-e", f"guest={name}")
    assert run.returncode != 0
    assert why in run.stdout + run.stderr, (run.stdout + run.stderr)[-3000:]
    assert host.file(f"{ROOT}/c-alpha/{name}").is_directory


def test_decommission_when_everything_is_erased_changes_nothing(host: Any) -> None:
    # The tests above wrote sets straight to disk: bring the quota tallies up to date first.
    host.check_output(f"{PROGRAM} quota")
    run = decommission()
    assert run.returncode == 0, run.stdout[-3000:]
    assert "changed=0" in run.stdout
