"""The audit's pieces without a network: the configuration refuses what could widen a scan,
guest bytes are escaped, the suggestion follows the evidence, the metrics carry the machine's
labels, and a SOCKS5 proxy is proven by a relay to the canary (on loopback)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import struct
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.audit.conftest import role_ports
from tests.metric_samples import samples
from vpsfleet_agents.audit import cli, config, confirm, nmapxml, report, sanitize
from vpsfleet_agents.audit.findings import Finding, MachineResult, active_tests

GOOD: dict[str, Any] = {
    "environment": "production",
    "targets": [
        {"name": "alpha-web", "kind": "guest", "customer": "c-alpha", "address": "198.51.100.10"},
        {"name": "ds-par1-01", "kind": "server", "customer": "c-0003", "address": "192.0.2.200"},
    ],
    "ports": role_ports(),
    "canary_address": "198.51.100.2",
    "report_dir": "/var/lib/vpsfleet-audit",
    "metrics_file": None,
}


def parse(**changes: Any) -> config.Config:
    return config.parse({**GOOD, **changes}, Path("audit.json"))


def test_the_role_defaults_make_a_valid_configuration() -> None:
    conf = parse()
    assert conf.max_rate == 100 and conf.version_intensity == 5
    assert conf.category_of("tcp", 6665) == "irc"
    assert conf.category_of("udp", 51820) == "vpn"
    assert conf.category_of("tcp", 80) is None
    assert "6660-6669" in conf.port_specs("tcp")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(config.ConfigError) as caught:
        parse(
            targets=[
                {"name": "a", "customer": "c", "address": "198.51.100.0/24"},
                {"name": "b", "customer": "c", "address": "scanme.example.org"},
                {"name": "c", "customer": "c", "address": "127.0.0.1", "extra": 1},
                {"name": "d", "customer": "c", "address": "198.51.100.10"},
                {"name": "d", "customer": "c", "address": "198.51.100.10"},
            ],
            ports={"irc": ["7000-6000/tcp", "6667"], "games": ["27015/udp"]},
            max_rate=0,
            version_intensity=12,
        )
    assert caught.value.problems == [
        "targets[0].address: not one IPv4 address: '198.51.100.0/24'",
        "targets[1].address: not one IPv4 address: 'scanme.example.org'",
        "targets[2].extra: unknown field",
        "targets[2].address: not a machine's address: '127.0.0.1'",
        "targets[4]: 'd' already at targets[3]",
        "targets[4]: '198.51.100.10' already at targets[3]",
        "ports.irc[0]: not PORT/PROTO or FIRST-LAST/PROTO: '7000-6000/tcp'",
        "ports.irc[1]: not PORT/PROTO or FIRST-LAST/PROTO: '6667'",
        "ports.games: not a category (open_proxy, irc, tor, vpn, cardsharing)",
        "max_rate: an integer from 1 to 10000 is required, got 0",
        "version_intensity: an integer from 0 to 9 is required, got 12",
    ]


def test_only_machines_of_the_configuration_can_be_chosen() -> None:
    conf = parse()
    picked, refused = cli.chosen(conf, ["alpha-web", "192.0.2.200", "203.0.113.9", "other"])
    assert [t.name for t in picked] == ["alpha-web", "ds-par1-01"]
    assert refused == ["203.0.113.9", "other"]


def test_guest_bytes_are_escaped_for_terminals() -> None:
    shown = sanitize.data(b"\x1b[31mred\x07\r\n\xff\\ ok")
    assert shown == "\\x1b[31mred\\x07\\r\\n\\xff\\\\ ok"
    assert sanitize.text("caf\u00e9 \u202e") == "caf\\xe9 \\u202e"
    long = sanitize.data(b"a" * 600)
    assert long.endswith("...[88 more bytes]") and len(long) < 600


def machine(kind: str, *evidence: str) -> MachineResult:
    service = nmapxml.Service("irc", "", "", "", "", "probed", "")
    target = config.Target("alpha-web" if kind == "guest" else "ds-par1-01", kind, "c-alpha", "198.51.100.10")
    found = [Finding("irc", "tcp", 6667 + i, e, service, ()) for i, e in enumerate(evidence)]
    return MachineResult(target, True, found)


def test_a_confirmed_finding_suggests_suspension_an_identified_one_a_notice() -> None:
    day = dt.date(2026, 12, 4)
    suspend = report.suggestion("production", machine("guest", "identified", "confirmed"), day)
    assert suspend == (
        'vpsfleet suspend production alpha-web --reason "M29 forbidden service: IRC server on '
        '6667/tcp, IRC server on 6668/tcp (audit 2026-12-04)"'
    )
    notice = report.suggestion("production", machine("server", "identified"), day)
    assert notice is not None and notice.startswith("notice: ask customer c-alpha to stop or explain")
    assert "vpsfleet-audit run --only ds-par1-01" in notice
    assert report.suggestion("production", machine("guest"), day) is None


def test_metrics_name_the_machine_as_the_monitor_does() -> None:
    now = dt.datetime(2026, 12, 4, 4, 30, tzinfo=dt.UTC)
    run = report.Run("production", now, now, [], [machine("guest", "confirmed"), machine("server")], None)
    found = samples(report.metrics(run).text())
    assert found['vpsfleet_audit_forbidden_services{customer="c-alpha",guest="alpha-web"}'] == 1
    assert found['vpsfleet_audit_confirmed_services{customer="c-alpha",guest="alpha-web"}'] == 1
    assert found['vpsfleet_audit_forbidden_services{customer="c-alpha",server="ds-par1-01"}'] == 0
    assert found["vpsfleet_audit_last_run_timestamp_seconds"] == int(now.timestamp())
    assert found["vpsfleet_audit_run_ok"] == 1


def test_reports_are_written_per_customer_and_latest_points_at_the_run(tmp_path: Path) -> None:
    now = dt.datetime(2026, 12, 4, 4, 30, tzinfo=dt.UTC)
    run = report.Run("production", now, now, ["nmap"], [machine("guest", "confirmed")], None)
    folder = report.write_reports(tmp_path, run)
    assert (tmp_path / "latest").resolve() == folder.resolve()
    data = json.loads((folder / "c-alpha.json").read_text())
    assert data["machines"][0]["findings"][0]["evidence"] == "confirmed"
    assert (folder / "c-alpha.txt").stat().st_mode & 0o777 == 0o640


def open_port(number: int, name: str, method: str = "probed") -> nmapxml.Port:
    return nmapxml.Port("tcp", number, "open", "syn-ack", nmapxml.Service(name, "", "", "", "", method, ""))


def test_the_active_tests_chosen_per_port() -> None:
    conf = parse()
    canary: Any = None  # not called: only the names are looked at

    def names(port: nmapxml.Port) -> list[str]:
        return [name for name, _ in active_tests(conf, "198.51.100.10", port, canary)]

    assert names(open_port(3128, "http-proxy")) == ["http-get", "http-connect"]
    assert names(open_port(1080, "socks5")) == ["socks5", "socks4"]
    assert names(open_port(8888, "", "table")) == ["http-get", "http-connect", "socks5", "socks4"]
    assert names(open_port(6697, "ircs-u", "table")) == ["irc-register"]
    assert names(open_port(9030, "tor-trans", "table")) == ["tor-dirport"]
    assert names(open_port(8080, "http")) == ["http-get", "http-connect"]
    assert names(open_port(443, "https")) == []


def socks5_relay(server: socket.socket) -> None:
    """A tiny open SOCKS5 proxy: no authentication, CONNECT anywhere (here: to the canary)."""
    conn, _ = server.accept()
    with conn:
        conn.recv(3)
        conn.sendall(b"\x05\x00")
        request = conn.recv(10)
        address = socket.inet_ntoa(request[4:8])
        (port,) = struct.unpack("!H", request[8:10])
        with socket.create_connection((address, port), timeout=5) as upstream:
            conn.sendall(b"\x05\x00\x00\x01" + request[4:10])
            upstream.sendall(conn.recv(4096))
            while chunk := upstream.recv(4096):
                conn.sendall(chunk)


def test_an_open_socks5_proxy_is_proven_by_a_relay_to_the_canary() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    thread = threading.Thread(target=socks5_relay, args=(server,), daemon=True)
    thread.start()
    with confirm.Canary("127.0.0.1", 0) as canary:
        outcome = confirm.socks5("127.0.0.1", server.getsockname()[1], canary, 5)
    thread.join(timeout=10)
    server.close()
    assert outcome.confirmed, outcome.transcript
    assert outcome.transcript[0] == "> \\x05\\x01\\x00"
    assert canary.token in outcome.transcript[-1]


def test_a_port_that_only_answers_is_no_relay() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.0 404 Not Found\r\n\r\nm29-canary-forged")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    with confirm.Canary("127.0.0.1", 0) as canary:
        outcome = confirm.http_get("127.0.0.1", server.getsockname()[1], canary, 5)
    thread.join(timeout=10)
    server.close()
    assert not outcome.confirmed
