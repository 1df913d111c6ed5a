"""M29 in network namespaces: the planted open proxy and IRC servers are found with their
evidence, the web site is not flagged, nothing outside the configuration is ever scanned, a
hostile greeting cannot reach the operator's terminal, and nmap runs at the capped rate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.audit.conftest import AuditLab
from tests.metric_samples import samples

ESC = "\x1b"


@pytest.fixture(scope="module")
def first_run(audit_lab: AuditLab) -> tuple[int, dict[str, Any], Path]:
    code, out = audit_lab.audit("run")
    return code, out, Path(out["report"])


def report(folder: Path, customer: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / f"{customer}.json").read_text())
    return data


def findings(folder: Path, customer: str) -> dict[tuple[int, str], dict[str, Any]]:
    (machine,) = report(folder, customer)["machines"]
    return {(f["port"], f["protocol"]): f for f in machine["findings"]}


def test_the_open_proxy_and_the_irc_servers_are_found_with_evidence(first_run: Any) -> None:
    code, out, folder = first_run
    assert code == 0, out
    found = findings(folder, "c-one")
    assert set(found) == {(3128, "tcp"), (6667, "tcp"), (7000, "tcp")}
    proxy, irc = found[(3128, "tcp")], found[(6667, "tcp")]
    assert (proxy["category"], proxy["evidence"]) == ("open_proxy", "confirmed")
    assert "tinyproxy" in proxy["service"].lower()
    relay = next(c for c in proxy["confirmations"] if c["confirmed"])
    assert relay["test"] in ("http-get", "http-connect")
    assert any("m29-canary-" in line for line in relay["transcript"] if line.startswith("< "))
    assert (irc["category"], irc["evidence"]) == ("irc", "confirmed")
    assert "ngircd" in irc["service"].lower()
    assert any(" 001 " in line for line in irc["confirmations"][-1]["transcript"])


def test_a_confirmed_finding_suggests_a_suspension_and_nothing_is_done(first_run: Any) -> None:
    _, _, folder = first_run
    (machine,) = report(folder, "c-one")["machines"]
    assert machine["suggestion"].startswith('vpsfleet suspend lab g1-vps --reason "M29 forbidden service: ')
    assert "open proxy on 3128/tcp" in machine["suggestion"]
    assert "IRC server on 6667/tcp" in machine["suggestion"]
    text = (folder / "c-one.txt").read_text()
    assert "suggested: vpsfleet suspend lab g1-vps" in text
    assert "Nothing was changed" in text


def test_a_web_site_on_a_proxy_port_is_not_flagged(first_run: Any) -> None:
    _, _, folder = first_run
    (machine,) = report(folder, "c-two")["machines"]
    assert machine["scanned"] is True
    assert machine["findings"] == []
    assert machine["suggestion"] is None
    (web,) = machine["open_not_flagged"]
    assert (web["port"], web["protocol"]) == (8080, "tcp")
    assert {t["test"] for t in web["tests"]} == {"http-get", "http-connect"}
    assert not any(t["confirmed"] for t in web["tests"])
    assert "nothing forbidden found" in (folder / "c-two.txt").read_text()


def test_hostile_greetings_are_escaped_in_the_reports(first_run: Any) -> None:
    _, _, folder = first_run
    hostile = findings(folder, "c-one")[(7000, "tcp")]
    assert hostile["evidence"] == "confirmed"
    text = (folder / "c-one.txt").read_text()
    raw_json = (folder / "c-one.json").read_text()
    for content in (text, raw_json):
        assert ESC not in content and "\x07" not in content and "\xff" not in content
    assert "\\x1b]0;owned\\x07" in text
    # The forged line stays inside the transcript line it came in: it starts no line of its own.
    assert not any(line.startswith("windows-guest") for line in text.splitlines())
    assert "\\r\\n\\nwindows-guest: nothing forbidden found" in text


def test_metrics_count_the_findings_per_machine(first_run: Any, audit_lab: AuditLab) -> None:
    metrics = samples((audit_lab.tmp / "metrics" / "vpsfleet_audit.prom").read_text())
    assert metrics['vpsfleet_audit_forbidden_services{customer="c-one",guest="g1-vps"}'] == 3
    assert metrics['vpsfleet_audit_confirmed_services{customer="c-one",guest="g1-vps"}'] == 3
    assert metrics['vpsfleet_audit_forbidden_services{customer="c-two",guest="g2-web"}'] == 0
    assert metrics["vpsfleet_audit_run_ok"] == 1


def test_nmap_runs_at_the_capped_rate_against_the_configured_addresses_only(
    first_run: Any, audit_lab: AuditLab
) -> None:
    (call,) = audit_lab.nmap_calls()[:1]
    words = call.split()
    assert words[words.index("--max-rate") + 1] == "300"
    assert words[words.index("--version-intensity") + 1] == "5"
    assert "-n" in words and "-oX" in words and "-sV" in words
    _, _, folder = first_run
    assert report(folder, "c-one")["nmap_command"][1:] == words


def test_an_address_outside_the_configuration_is_refused_before_any_packet(audit_lab: AuditLab) -> None:
    before = len(audit_lab.nmap_calls())
    code, out = audit_lab.audit("run", "--only", "192.0.2.9")
    assert code == 2
    assert out["refused"] == ["192.0.2.9"]
    assert len(audit_lab.nmap_calls()) == before


def test_a_configuration_with_a_network_as_target_is_refused(audit_lab: AuditLab) -> None:
    before = len(audit_lab.nmap_calls())
    config = audit_lab.config(
        targets=[{"name": "wide", "kind": "guest", "customer": "c-x", "address": "192.0.2.0/24"}]
    )
    code, out = audit_lab.audit("run", config=config)
    assert code == 2
    assert out["problems"] == ["targets[0].address: not one IPv4 address: '192.0.2.0/24'"]
    assert len(audit_lab.nmap_calls()) == before
