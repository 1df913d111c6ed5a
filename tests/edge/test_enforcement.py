"""The edge router keeps a dedicated server's network promises (004: M5, M6, M7, M28), end to end.

Each state is made by the real `vpsfleet` commands (smtp block/unblock, suspend/resume,
mitigation start/stop) on a copy of inventories/example-production, rendered by
`vpsfleet edge render`, loaded into a router namespace with `nft -f` as the role does, and
probed with real TCP listeners and connections between namespaces (tests/edge/netns.py).
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from tests.edge.netns import MANAGEMENT, OUTSIDE, OUTSIDE_OTHER, Edge, edge, usable
from vpsfleet.cli import main
from vpsfleet.fleet_edit import find_item, load_document, write_checked

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "inventories" / "example-production" / "fleet.yml"
SERVER = "ds-par1-01"
SERVER_IP = "192.0.2.200"
DATACENTER = "par1"

pytestmark = pytest.mark.skipif(usable() is not None, reason=usable() or "")

SERVER_PORTS = (22, 80, 443, 445, 8080, 8443)
OUTSIDE_PORTS = (25, 80, 587)
MANAGEMENT_PORT = 9100


@pytest.fixture(scope="module")
def net() -> Iterator[Edge]:
    with edge(SERVER_IP) as e:
        e.listen(e.server, *SERVER_PORTS)
        e.listen(e.outside, *OUTSIDE_PORTS)
        e.listen(e.management, MANAGEMENT_PORT)
        yield e


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """The example fleet, with the Pro option on the server: the customer's edge rules."""
    path = tmp_path / "fleet.yml"
    shutil.copy(EXAMPLE, path)
    doc = load_document(path)
    item = find_item(doc, ("dedicated_servers",), SERVER)
    assert item is not None
    rules = CommentedSeq([
        CommentedMap([("action", "accept"), ("port", "8443/tcp"),
                      ("source", f"{OUTSIDE_OTHER}/32")]),
        CommentedMap([("action", "drop"), ("port", "443/tcp"), ("source", f"{OUTSIDE_OTHER}/32")]),
    ])
    item["pro"] = CommentedMap([("edge_rules", rules)])
    write_checked(path, doc, dt.date(2026, 12, 4))
    return path


def vpsfleet(*args: str) -> None:
    assert main(list(args)) == 0, args


def apply(net: Edge, fleet: Path, now: str, tmp_path: Path) -> str:
    out = tmp_path / "edge.nft"
    vpsfleet("edge", "render", str(fleet), DATACENTER, "--now", now, "--output", str(out))
    ruleset = out.read_text()
    net.load(ruleset)
    return ruleset


def srv(port: int, source: str | None = None) -> str:
    return f"{SERVER_IP}:{port}" + (f"@{source}" if source else "")


def out(port: int) -> str:
    return f"{OUTSIDE}:{port}"


def assert_normal(net: Edge) -> None:
    from_outside = net.probe(net.outside, srv(80), srv(8080), srv(445), srv(22))
    assert from_outside == {srv(80): "open", srv(8080): "open", srv(445): "dropped",
                            srv(22): "open"}
    from_server = net.probe(net.server, out(25), out(587))
    assert from_server == {out(25): "open", out(587): "open"}


def test_normal_state_web_open_sensitive_port_filtered(net: Edge, fleet: Path,
                                                       tmp_path: Path) -> None:
    ruleset = apply(net, fleet, "2026-12-04T10:00:00Z", tmp_path)
    assert "# ds-par1-01 192.0.2.200: normal" in ruleset
    assert_normal(net)
    # M5: the sensitive ports are dropped from anyone, the management path included.
    assert net.probe(net.management, srv(445), srv(22)) == {srv(445): "dropped", srv(22): "open"}
    # Loading the same render again is a no-op replacement (one transaction).
    net.load(ruleset)
    assert "vpsfleet_edge" in net.ruleset()


def test_smtp_block_refuses_outbound_25_until_lifted(net: Edge, fleet: Path,
                                                     tmp_path: Path) -> None:
    vpsfleet("smtp", "block", str(fleet), SERVER, "--reason", "spam reported",
             "--now", "2026-12-04T10:05:00Z")
    ruleset = apply(net, fleet, "2026-12-04T10:06:00Z", tmp_path)
    assert "SMTP blocked" in ruleset
    assert net.probe(net.server, out(25), out(587), out(80)) == {
        out(25): "refused", out(587): "open", out(80): "open"}
    assert net.probe(net.outside, srv(80)) == {srv(80): "open"}  # only port 25 is touched

    vpsfleet("smtp", "unblock", str(fleet), SERVER, "--reason", "cleaned",
             "--now", "2026-12-04T10:10:00Z")
    apply(net, fleet, "2026-12-04T10:11:00Z", tmp_path)
    assert_normal(net)


def test_smtp_block_expires_with_its_until(net: Edge, fleet: Path, tmp_path: Path) -> None:
    vpsfleet("smtp", "block", str(fleet), SERVER, "--reason", "spam reported",
             "--now", "2026-12-04T10:05:00Z")
    # The first block lasts the policy's first duration (24 h): rendered after it, it is gone.
    apply(net, fleet, "2026-12-05T10:06:00Z", tmp_path)
    assert net.probe(net.server, out(25)) == {out(25): "open"}


def test_suspension_cuts_all_but_the_management_path(net: Edge, fleet: Path,
                                                     tmp_path: Path) -> None:
    vpsfleet("suspend", str(fleet), SERVER, "--reason", "unpaid", "--now", "2026-12-04T10:15:00Z")
    ruleset = apply(net, fleet, "2026-12-04T10:16:00Z", tmp_path)
    assert "cut (suspended)" in ruleset
    assert net.probe(net.outside, srv(80), srv(22)) == {srv(80): "dropped", srv(22): "dropped"}
    assert net.probe(net.server, out(587), out(80)) == {out(587): "dropped", out(80): "dropped"}
    mgmt = f"{MANAGEMENT}:{MANAGEMENT_PORT}"
    assert net.probe(net.management, srv(22), srv(445)) == {srv(22): "open", srv(445): "dropped"}
    assert net.probe(net.server, mgmt) == {mgmt: "open"}

    vpsfleet("resume", str(fleet), SERVER, "--now", "2026-12-04T10:20:00Z")
    apply(net, fleet, "2026-12-04T10:21:00Z", tmp_path)
    assert_normal(net)


def test_mitigation_profile_and_pro_edge_rules(net: Edge, fleet: Path, tmp_path: Path) -> None:
    vpsfleet("mitigation", "start", str(fleet), SERVER, "--profile", "web",
             "--reason", "FastNetMon: 2 Mpps incoming", "--now", "2026-12-04T10:30:00Z")
    ruleset = apply(net, fleet, "2026-12-04T10:31:00Z", tmp_path)
    assert "mitigation web, 2 edge rule(s)" in ruleset
    # The profile (web: 22, 80, 443) admits new inbound flows; every other port is dropped.
    assert net.probe(net.outside, srv(80), srv(443), srv(22), srv(8080), srv(8443), srv(445)) == {
        srv(80): "open", srv(443): "open", srv(22): "open", srv(8080): "dropped",
        srv(8443): "dropped", srv(445): "dropped"}
    # The Pro option's edge rules come first, for their source only: 8443 accepted, 443 dropped.
    other = OUTSIDE_OTHER
    assert net.probe(net.outside, srv(8443, other), srv(443, other), srv(80, other)) == {
        srv(8443, other): "open", srv(443, other): "dropped", srv(80, other): "open"}
    # The server's own flows still get their replies.
    assert net.probe(net.server, out(587), out(80)) == {out(587): "open", out(80): "open"}

    # It cannot end before the offer's minimum (26 h for the dedicated offer): still on later.
    apply(net, fleet, "2026-12-05T12:00:00Z", tmp_path)
    assert net.probe(net.outside, srv(8080)) == {srv(8080): "dropped"}
    vpsfleet("mitigation", "stop", str(fleet), SERVER, "--now", "2026-12-05T12:30:00Z")
    apply(net, fleet, "2026-12-05T12:31:00Z", tmp_path)
    assert_normal(net)
    assert net.probe(net.outside, srv(8443, other)) == {srv(8443, other): "open"}
