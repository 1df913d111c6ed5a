"""nmap's XML as the audit reads it: a scan recorded in the lab (tests/audit/data/lab-scan.xml:
tinyproxy, ngircd and a hostile greeter on one guest, a web site on the other), and documents
that must be refused before they are parsed."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpsfleet_agents.audit import nmapxml
from vpsfleet_agents.audit.findings import describe, identified

RECORDED = Path(__file__).parent / "data" / "lab-scan.xml"


def ports(scan: nmapxml.Scan, address: str) -> dict[tuple[int, str], nmapxml.Port]:
    (host,) = [h for h in scan.hosts if h.address == address]
    return {(p.port, p.protocol): p for p in host.ports}


def test_the_recorded_scan_is_read_whole() -> None:
    scan = nmapxml.parse(RECORDED.read_bytes())
    assert scan.finished
    assert "--max-rate 300" in scan.args
    assert [h.address for h in scan.hosts] == ["192.0.2.2", "192.0.2.6"]
    assert all(h.state == "up" for h in scan.hosts)
    g1 = ports(scan, "192.0.2.2")
    assert {k for k, p in g1.items() if p.state == "open"} == {(3128, "tcp"), (6667, "tcp"), (7000, "tcp")}
    proxy = g1[(3128, "tcp")].service
    assert (proxy.name, proxy.product, proxy.version, proxy.method) == (
        "http-proxy",
        "tinyproxy",
        "1.11.1",
        "probed",
    )
    assert (g1[(6667, "tcp")].service.name, g1[(6667, "tcp")].service.product) == ("irc", "ngircd")
    assert g1[(500, "udp")].state == "closed"


def test_nmap_detection_names_the_proxy_and_the_irc_server_but_not_the_web_site() -> None:
    scan = nmapxml.parse(RECORDED.read_bytes())
    g1, g2 = ports(scan, "192.0.2.2"), ports(scan, "192.0.2.6")
    assert identified(g1[(3128, "tcp")].service) == "open_proxy"
    assert identified(g1[(6667, "tcp")].service) == "irc"
    # A name from nmap's port table is a guess, not a detection.
    assert identified(g1[(7000, "tcp")].service) is None
    assert identified(g1[(9001, "tcp")].service) is None
    assert identified(g2[(8080, "tcp")].service) is None


def test_an_unmatched_hostile_answer_is_kept_escaped() -> None:
    scan = nmapxml.parse(RECORDED.read_bytes())
    hostile = ports(scan, "192.0.2.2")[(7000, "tcp")].service
    assert "evil" in hostile.fingerprint
    shown = describe(hostile)
    assert all(0x20 <= ord(c) <= 0x7E for c in shown)


LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE nmaprun [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>
<nmaprun args="&b;"></nmaprun>
"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE nmaprun SYSTEM "file:///etc/shadow">
<nmaprun args="x"></nmaprun>
"""


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (LAUGHS, "entity"),
        (EXTERNAL, "DTD"),
        (b"<?xml version='1.0'?><other/>", "nmaprun"),
        (b"<nmaprun><host>", "not XML"),
    ],
)
def test_hostile_or_foreign_documents_are_refused(raw: bytes, why: str) -> None:
    with pytest.raises(nmapxml.NmapXmlError, match=why):
        nmapxml.parse(raw)


def test_nmaps_own_doctype_is_accepted() -> None:
    raw = (
        b'<?xml version="1.0"?>\n<!DOCTYPE nmaprun>\n'
        b'<nmaprun args="nmap"><runstats><finished exit="success"/></runstats></nmaprun>'
    )
    assert nmapxml.parse(raw).finished
