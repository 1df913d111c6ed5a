"""M17: a guest's connection records reach the monitor over RELP and TLS within a minute, into the folder
the fleet's name of the sender's address gives (never the name it claims); every client pins the
monitor's certificate, read once per run for all of them; a monitor outage loses nothing; the
daily job compresses past days and erases only past the retention; a guest leaving the fleet
keeps its folder. The tests run in this order (the last one removes the guest)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import testinfra

testinfra_hosts = ["connection_logs-guest"]

MONITOR = "connection_logs-monitor"
GUEST = "connection_logs-guest"
GUEST2 = "connection_logs-guest2"  # a second client: what is read once per run serves both
LOGS = "/var/log/vpsfleet/connection-logs"
PORT = 6514
CONF = "/etc/vpsfleet/connection-logs"


def monitor():
    return testinfra.get_host(f"podman://{MONITOR}")


def address(host) -> str:
    return host.interface("eth0").addresses[0]


def wait_until(check: Callable[[], bool], seconds: float) -> bool:
    """Polls `check` until it holds or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(1)


def files_holding(text: str) -> list[str]:
    """The monitor's log files whose lines hold `text` (fixed string)."""
    out = monitor().run("grep -rlF -- %s %s", text, LOGS).stdout
    return sorted(out.split())


def todays_file(machine: str) -> set[str]:
    """The file of `machine` for the monitor's today (both days around a midnight)."""
    days = {monitor().check_output("date +%F"), monitor().check_output("date -d '-1 min' +%F")}
    return {f"{LOGS}/{machine}/{day}.log" for day in days}


def test_a_login_on_the_guest_is_on_the_monitor_within_a_minute(host):
    marker = f"login-{uuid.uuid4().hex}"
    host.check_output(
        "logger -p auth.info -t sshd %s",
        f"Accepted publickey for molecule from 192.0.2.7 port 4242 ssh2: {marker}",
    )
    assert wait_until(lambda: bool(files_holding(marker)), 60), "not on the monitor in a minute"
    [path] = files_holding(marker)
    assert path in todays_file(GUEST)
    line = monitor().check_output("grep -F -- %s %s", marker, path)
    assert f" {address(host)} " in line and "sshd" in line and "auth.info" in line
    # the file and its folder are the provider's: root:adm, no one else reads them
    assert monitor().file(path).mode == 0o640
    assert monitor().file(f"{LOGS}/{GUEST}").mode == 0o750


def test_every_client_pins_the_monitors_certificate_read_once_for_all():
    """The role reads the monitor's certificate and clients' authority once per run for all the
    play's clients (run_once): each client still pins the certificate the monitor presents, holds
    one of its own for its inventory name signed by that authority."""
    server_crt = monitor().file(f"{CONF}/server.crt").content_string
    for name in (GUEST, GUEST2):
        client = testinfra.get_host(f"podman://{name}")
        assert client.file(f"{CONF}/{MONITOR}.crt").content_string == server_crt, name
        own = client.file(f"{CONF}/{MONITOR}-client.crt").content_string
        verified = monitor().run(
            "printf '%%s' %s > /tmp/client-under-test.crt && openssl verify -CAfile %s "
            "/tmp/client-under-test.crt && openssl x509 -noout -subject -in /tmp/client-under-test.crt",
            own, f"{CONF}/clients-ca.crt",
        )
        assert verified.rc == 0 and ": OK" in verified.stdout, verified.stdout + verified.stderr
        assert f"CN = {name}" in verified.stdout or f"CN={name}" in verified.stdout, verified.stdout


def relp_frames(messages: list[str]) -> bytes:
    """A RELP session by hand: open, one `syslog` frame per message, close."""
    frames = [("open", "relp_version=0\nrelp_software=vpsfleet-test\ncommands=syslog")]
    frames += [("syslog", message) for message in messages] + [("close", "")]
    out = b""
    for txnr, (command, data) in enumerate(frames, start=1):
        raw = data.encode()
        out += f"{txnr} {command} {len(raw)}".encode() + (b" " + raw if raw else b"") + b"\n"
    return out


def guest_connections(peer: str) -> list[str]:
    """The monitor's established connections on the receiver's port from `peer` (`ss -tn`)."""
    out = monitor().check_output("ss -tnH state established '( sport = :%s )'", str(PORT))
    return [line for line in out.splitlines() if f" {peer}:" in f" {line.split()[-1]}"]


def test_a_burst_of_auth_lines_goes_over_one_connection(host):
    """RELP acknowledges each line: the guest keeps one connection to the monitor for a burst
    (no TLS handshake per line, as `rebindInterval=1` over plain TCP syslog did) and every line
    arrives."""
    run = uuid.uuid4().hex
    host.check_output("logger -p authpriv.info -t sshd %s", f"warm-up {run}")
    assert wait_until(lambda: bool(files_holding(f"warm-up {run}")), 60)
    [before] = guest_connections(address(host))
    count = 200
    host.check_output(
        "bash -c %s",
        f"for i in $(seq 0 {count - 1}); do logger -p authpriv.info -t sshd burst-{run}-$i; done",
    )
    got: set[str] = set()

    def all_arrived() -> bool:
        out = monitor().run("grep -rhoE -- %s %s", f"burst-{run}-[0-9]+", LOGS).stdout
        got.update(out.split())
        return len(got) >= count

    assert wait_until(all_arrived, 120), f"{len(got)} of {count} arrived"
    assert got == {f"burst-{run}-{i}" for i in range(count)}
    # the same one connection (same ports) before and after the burst
    assert guest_connections(address(host)) == [before]


def test_a_claimed_hostname_never_chooses_the_folder(host):
    """Syslog messages whose HOSTNAME names another machine or climbs out of the folder, sent
    over RELP and TLS straight to the receiver with the guest's own certificate (as a hostile
    customer with root on it could): they land in the sender's own folder, and nothing is
    written where the names point."""
    markers = {name: f"forged-{uuid.uuid4().hex}" for name in (MONITOR, "../../../../tmp/evil")}
    session = relp_frames([
        f"<38>Dec  3 12:00:00 {name} sshd[1]: Accepted password for root {marker}"
        for name, marker in markers.items()
    ])
    host.run(
        "bash -c %s",
        f"(echo {base64.b64encode(session).decode()} | base64 -d; sleep 2) | timeout 8 "
        f"openssl s_client -quiet -verify_return_error -CAfile {CONF}/{MONITOR}.crt "
        f"-cert {CONF}/{MONITOR}-client.crt -key {CONF}/client.key "
        f"-connect {address(monitor())}:{PORT}",
    )
    for marker in markers.values():
        assert wait_until(lambda m=marker: bool(files_holding(m)), 30), marker
        [path] = files_holding(marker)
        assert path in todays_file(GUEST)
    assert not monitor().file("/tmp/evil").exists
    folders = monitor().check_output("find %s -mindepth 1 -maxdepth 1 -printf '%%f\\n'", LOGS)
    assert MONITOR not in folders.split()


def test_a_monitor_outage_loses_nothing(host):
    run = uuid.uuid4().hex
    markers = [f"outage-{run}-{i}" for i in range(20)]
    monitor().check_output("systemctl stop rsyslog.service syslog.socket")
    try:
        for marker in markers[:10]:
            host.check_output("logger -p authpriv.notice -t sshd %s", f"session opened {marker}")
        time.sleep(3)  # the guest has found the monitor gone and queues
        for marker in markers[10:]:
            host.check_output("logger -p authpriv.notice -t sshd %s", f"session opened {marker}")
        assert files_holding(f"outage-{run}") == []  # nothing got through meanwhile
    finally:
        monitor().check_output("systemctl start rsyslog.service")
    got: set[str] = set()

    def all_arrived() -> bool:
        out = monitor().run("grep -rhoE -- %s %s", f"outage-{run}-[0-9]+", LOGS).stdout
        got.update(out.split())
        return got >= set(markers)

    assert wait_until(all_arrived, 120), f"missing: {sorted(set(markers) - got)}"
    assert got == set(markers)


def test_the_daily_job_compresses_past_days_and_erases_only_past_the_retention():
    mon = monitor()
    today = date.fromisoformat(mon.check_output("date +%F"))
    folder = f"{LOGS}/retention-probe"
    # Worked out by hand: 12 months are at most 366 days, at least 365.
    old = today - timedelta(days=400)      # past 12 months: erased
    old_zst = today - timedelta(days=367)  # past 12 months, already compressed: erased
    kept = today - timedelta(days=300)     # inside 12 months, compressed: kept as it is
    past = today - timedelta(days=2)       # a past day: compressed
    mon.check_output("mkdir -p %s", folder)
    for day, suffix in ((old, ".log"), (old_zst, ".log.zst"), (kept, ".log.zst"), (past, ".log"),
                        (today, ".log")):
        mon.check_output("echo line-%s > %s/%s%s", day.isoformat(), folder, day.isoformat(), suffix)
    mon.check_output("touch -d '-2 days' %s/%s.log", folder, past.isoformat())
    mon.check_output("systemctl start vpsfleet-connection-logs-daily.service")
    left = set(mon.check_output("ls %s", folder).split())
    assert left == {f"{kept}.log.zst", f"{past}.log.zst", f"{today}.log"}
    assert mon.check_output("zstd -dc %s/%s.log.zst", folder, past.isoformat()) == f"line-{past}"
    assert mon.service("vpsfleet-connection-logs-daily.timer").is_enabled
    mon.check_output("rm -rf %s", folder)


def test_the_receiver_is_open_to_the_fleets_machines_only(host):
    table = monitor().check_output("nft list table inet vpsfleet_connection_logs")
    assert address(host) in table and f"tcp dport {PORT} drop" in table
    assert monitor().file(f"{CONF}/server.key").mode == 0o600
    assert monitor().file(f"{CONF}/clients-ca.key").mode == 0o600


def test_a_guest_that_leaves_the_fleet_keeps_its_folder(host):
    """The guest is removed from the fleet (the monitor's clients: none) and the monitor is
    converged again: the guest's folder and files stay (erased only past the retention)."""
    before = monitor().check_output("find %s/%s -type f | sort", LOGS, GUEST).split()
    assert before
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    result = subprocess.run(
        ["ansible-playbook", "-i", str(inventory), str(scenario / "converge.yml"),
         "--limit", MONITOR, "-e", json.dumps({"connection_logs_clients": []})],
        capture_output=True, text=True, timeout=300, env=os.environ, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    senders = json.loads(monitor().file("/etc/vpsfleet/connection-logs/senders.json").content_string)
    assert senders["table"] == []
    after = monitor().check_output("find %s/%s -type f | sort", LOGS, GUEST).split()
    assert after == before
