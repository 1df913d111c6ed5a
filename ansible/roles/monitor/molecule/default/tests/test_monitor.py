"""M16 and M26 on a real monitor: every target up, every rule loaded and unit-tested, and a
stopped node exporter that opens a ticket by mail and closes it once restarted."""

from __future__ import annotations

import email
import email.policy
import json
import time
from typing import Any

import testinfra

testinfra_hosts = ["monitor-role-monitor"]

PROMETHEUS = "http://127.0.0.1:9090"
MAILDIR = "/var/mail/sink/new"
GUEST = "monitor-role-guest"


def api(host: Any, path: str) -> Any:
    out = host.check_output("curl -sfG --max-time 10 %s%s", PROMETHEUS, path)
    data = json.loads(out)
    assert data["status"] == "success", data
    return data["data"]


def query(host: Any, expr: str) -> list[dict[str, Any]]:
    out = host.check_output("curl -sfG --max-time 10 %s/api/v1/query --data-urlencode %s",
                            PROMETHEUS, f"query={expr}")
    result: list[dict[str, Any]] = json.loads(out)["data"]["result"]
    return result


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(2)


def tickets(sink: Any) -> list[email.message.EmailMessage]:
    names = sink.check_output("ls -1 %s", MAILDIR).split()
    mails = []
    for name in names:
        raw = sink.check_output("cat %s/%s", MAILDIR, name)
        mails.append(email.message_from_string(raw, policy=email.policy.default))
    return [m for m in mails if str(m["Subject"] or "").startswith("[vpsfleet-alert] ")]


def fields(mail: email.message.EmailMessage) -> dict[str, str]:
    """The head of a ticket's body: `key: value` lines up to the first alert block."""
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    head = body.get_content().split("\n--\n")[0]
    return dict(line.split(": ", 1) for line in head.strip().splitlines())


def test_the_three_services_run(host: Any) -> None:
    for service in ("prometheus", "prometheus-alertmanager", "prometheus-blackbox-exporter"):
        assert host.service(service).is_running, service
        assert host.service(service).is_enabled, service


def test_retention_is_long_enough_for_a_monthly_report(host: Any) -> None:
    flags = api(host, "/api/v1/status/flags")
    assert flags["storage.tsdb.retention.time"] == "40d"


def test_every_target_is_up(host: Any) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        active = api(host, "/api/v1/targets")["activeTargets"]
        return active if active and all(t["health"] == "up" for t in active) else None

    active = wait_for(all_up, 90, "every target up")
    jobs = sorted(t["labels"]["job"] for t in active)
    assert jobs == ["alertmanager", "blackbox", "monitor_node", "node", "prometheus", "sla_icmp", "sla_icmp"]


def test_the_sla_series_are_labelled_as_the_report_reads_them(host: Any) -> None:
    guest = wait_for(lambda: query(host, f'probe_success{{job="sla_icmp", guest="{GUEST}"}} == 1'),
                     60, "the guest's probe")
    assert guest[0]["metric"]["customer"] == "c-test"
    server = wait_for(
        lambda: query(host, 'probe_success{job="sla_icmp", server="monitor-role-sink"} == 1'),
        60, "the server's probe")
    assert server[0]["metric"]["customer"] == "c-server"
    assert "guest" not in server[0]["metric"]


def test_every_rule_is_loaded_and_passes_its_unit_tests(host: Any) -> None:
    in_file = {line.split("alert:", 1)[1].strip()
               for line in host.file("/etc/prometheus/vpsfleet/rules.yml").content_string.splitlines()
               if line.strip().startswith("- alert:")}
    loaded = {rule["name"]: rule for group in api(host, "/api/v1/rules")["groups"]
              for rule in group["rules"]}
    assert set(loaded) == in_file
    assert all(rule["health"] != "err" for rule in loaded.values())
    result = host.run("cd /etc/prometheus/vpsfleet && promtool test rules rules.test.yml")
    assert result.rc == 0, result.stdout + result.stderr


def test_a_stopped_exporter_opens_a_ticket_then_closes_it(host: Any) -> None:
    guest = testinfra.get_host(f"podman://{GUEST}")
    sink = testinfra.get_host("podman://monitor-role-sink")
    subject = f"HostDown guest={GUEST} customer=c-test"
    guest.check_output("systemctl stop prometheus-node-exporter")
    try:
        wait_for(lambda: query(host, f'ALERTS{{alertname="HostDown", alertstate="firing", guest="{GUEST}"}}'),
                 90, "HostDown to fire")
        firing = wait_for(
            lambda: [m for m in tickets(sink) if str(m["Subject"]).endswith(subject)
                     and "FIRING" in str(m["Subject"])],
            120, "the ticket mail")
    finally:
        guest.check_output("systemctl start prometheus-node-exporter")
    mail = firing[0]
    assert str(mail["To"]) == "support@test.example.net"
    assert str(mail["Subject"]) == f"[vpsfleet-alert] FIRING critical {subject}"
    assert str(mail["X-Vpsfleet-Ticket"]) == f"HostDown/guest={GUEST}"
    assert fields(mail) == {
        "ticket": f"HostDown/guest={GUEST}", "status": "firing", "alertname": "HostDown",
        "severity": "critical", "guest": GUEST, "server": "-", "customer": "c-test",
        "monitor": "monitor-role-monitor", "firing": "1", "resolved": "0",
    }
    assert "runbook: docs/monitoring.md#hostdown" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    resolved = wait_for(
        lambda: [m for m in tickets(sink) if str(m["Subject"]).startswith("[vpsfleet-alert] RESOLVED ")
                 and str(m["Subject"]).endswith(subject)],
        120, "the resolution notice")
    assert str(resolved[0]["X-Vpsfleet-Ticket"]) == f"HostDown/guest={GUEST}"
    assert fields(resolved[0])["status"] == "resolved"
    # Grouped and deduplicated: one mail while it fired, not one per evaluation.
    assert len([m for m in tickets(sink) if "FIRING" in str(m["Subject"])
                and str(m["Subject"]).endswith(subject)]) == 1
