"""M29 on a real monitor: the audit's timer and configuration come from the fleet (its targets
and its policy), and the installed service, run as its timer runs it, finds an IRC server planted
on the managed guest, leaves the clean machine alone, and the finding reaches Prometheus as an
alert."""

from __future__ import annotations

import json
import time
from typing import Any

import testinfra

testinfra_hosts = ["monitor-role-monitor"]

GUEST = "monitor-role-guest"
SERVER = "monitor-role-sink"
REPORTS = "/var/lib/vpsfleet-audit/latest"
# A minimal IRC server: greets every client's registration with a 001 welcome.
IRC = (
    "import socket\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', 6667)); s.listen(8)\n"
    "while True:\n"
    "    c, _ = s.accept(); c.settimeout(5)\n"
    "    try:\n"
    "        c.recv(4096); c.sendall(b':irc.planted.test 001 m29 :Welcome to IRC\\r\\n')\n"
    "    except OSError:\n"
    "        pass\n"
    "    c.close()\n"
)


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(2)


def query(host: Any, expr: str) -> list[dict[str, Any]]:
    out = host.check_output(
        "curl -sfG --max-time 10 http://127.0.0.1:9090/api/v1/query --data-urlencode %s", f"query={expr}"
    )
    result: list[dict[str, Any]] = json.loads(out)["data"]["result"]
    return result


def test_the_timer_runs_daily_and_the_configuration_holds_the_fleet_only(host: Any) -> None:
    assert host.service("vpsfleet-audit.timer").is_enabled
    assert host.service("vpsfleet-audit.timer").is_running
    calendar = host.check_output("systemctl show vpsfleet-audit.timer -p TimersCalendar")
    assert "*-*-* 05:15:00" in calendar  # the fleet's policy.audit.time
    config = json.loads(host.file("/etc/vpsfleet/audit.json").content_string)
    assert {(t["name"], t["kind"], t["customer"]) for t in config["targets"]} == {
        (GUEST, "guest", "c-test"),
        (SERVER, "server", "c-server"),
    }
    assert (config["max_rate"], config["version_intensity"]) == (50, 5)  # the policy's, the default
    assert "6660-6669/tcp" in config["ports"]["irc"]
    assert host.run("/usr/local/bin/vpsfleet-audit --config /etc/vpsfleet/audit.json check").rc == 0


def test_an_address_outside_the_fleet_is_refused(host: Any) -> None:
    result = host.run("/usr/local/bin/vpsfleet-audit --config /etc/vpsfleet/audit.json run --only 192.0.2.77")
    assert result.rc == 2
    assert json.loads(result.stdout)["refused"] == ["192.0.2.77"]


def test_a_planted_irc_server_is_found_reported_and_alerted(host: Any) -> None:
    guest = testinfra.get_host(f"podman://{GUEST}")
    guest.run("systemctl stop m29-irc")
    guest.check_output("systemd-run --unit m29-irc /usr/bin/python3 -c %s", IRC)
    try:
        wait_for(lambda: guest.socket("tcp://0.0.0.0:6667").is_listening, 30, "the planted server")
        host.check_output("systemctl start vpsfleet-audit.service")  # oneshot: returns when done
    finally:
        guest.run("systemctl stop m29-irc")
    summary = json.loads(host.file(f"{REPORTS}/summary.json").content_string)
    assert summary["error"] is None
    assert summary["customers"]["c-test"][GUEST]["findings"] == 1
    assert summary["customers"]["c-test"][GUEST]["suggestion"].startswith(f"vpsfleet suspend ENV {GUEST} ")
    assert summary["customers"]["c-server"][SERVER] == {"findings": 0, "suggestion": None}
    text = host.file(f"{REPORTS}/c-test.txt").content_string
    assert "IRC server on 6667/tcp, confirmed" in text
    firing = wait_for(
        lambda: query(
            host, f'ALERTS{{alertname="ForbiddenServiceFound", alertstate="firing", guest="{GUEST}"}}'
        ),
        90,
        "ForbiddenServiceFound to fire",
    )
    assert firing[0]["metric"]["customer"] == "c-test"
