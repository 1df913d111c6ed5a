"""`vpsfleet edge render`: the edge router's ruleset from the fleet, without a network.

The decisions are the guests' filter's (vpsfleet/filters.py): these tests check that the edge
follows them for a dedicated server, that the output is deterministic, and that every datacenter
of the example fleets renders a file nftables accepts (`nft -c`, in a namespace of its own).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.edge.netns import run, usable
from vpsfleet import load_fleet
from vpsfleet.cli import main
from vpsfleet.edge_rules import EdgeError, edge_servers, render_ruleset, server_state
from vpsfleet.fleet import Fleet
from vpsfleet.schema import (
    EdgeRule,
    FilterOverrides,
    GuestState,
    Mitigation,
    ProOption,
    SmtpBlock,
)

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)


def example(env: str = "example-production") -> Fleet:
    return load_fleet(REPO / "inventories" / env / "fleet.yml")


def with_server(base: Fleet, name: str, **changes: Any) -> Fleet:
    servers = [s.model_copy(update=changes) if s.name == name else s
               for s in base.dedicated_servers]
    assert any(s.name == name for s in base.dedicated_servers)
    return dataclasses.replace(base, dedicated_servers=servers)


def chain(ruleset: str, name: str) -> str:
    start = ruleset.index(f"  chain {name} {{")
    return ruleset[start:ruleset.index("  }", start)]


def test_render_is_deterministic_and_names_each_server() -> None:
    fleet = example()
    first = render_ruleset(fleet, "par1", NOW)
    assert first == render_ruleset(example(), "par1", NOW)
    assert "192.0.2.200 : jump in_ds-par1-01" in first
    assert "ds-rbx1-01" not in first  # another datacenter's server
    # One transaction that replaces the whole table.
    assert first.index("table inet vpsfleet_edge {}") < first.index(
        "delete table inet vpsfleet_edge") < first.index("table inet vpsfleet_edge {\n")


def test_sensitive_ports_follow_the_policy_and_the_servers_overrides() -> None:
    fleet = with_server(example(), "ds-par1-01", filter=FilterOverrides(
        open_inbound=["445/tcp", "137/tcp"], block_inbound=["3306/tcp"]))
    inbound = chain(render_ruleset(fleet, "par1", NOW), "in_ds-par1-01")
    assert "tcp dport { 23, 111, 135-136, 138-139, 3306 } counter drop" in inbound
    assert "udp dport { 111, 137-138, 161, 1900, 11211 } counter drop" in inbound


def test_smtp_block_holds_from_blocked_at_until_lifted_or_expired() -> None:
    block = SmtpBlock(blocked_at=NOW, until=NOW + dt.timedelta(hours=24), reason="spam")
    fleet = with_server(example(), "ds-par1-01", smtp_blocks=[block])
    server = edge_servers(fleet, "par1")[0]
    assert not server_state(fleet, server, NOW - dt.timedelta(minutes=1)).smtp_blocked
    assert server_state(fleet, server, NOW).smtp_blocked
    assert not server_state(fleet, server, NOW + dt.timedelta(hours=24)).smtp_blocked
    lifted = with_server(fleet, "ds-par1-01", smtp_blocks=[
        block.model_copy(update={"lifted_at": NOW + dt.timedelta(hours=1)})])
    assert not server_state(lifted, edge_servers(lifted, "par1")[0],
                            NOW + dt.timedelta(hours=2)).smtp_blocked
    outbound = chain(render_ruleset(fleet, "par1", NOW), "out_ds-par1-01")
    assert "tcp dport 25 counter reject with tcp reset" in outbound


def test_suspension_keeps_the_management_networks() -> None:
    fleet = with_server(example(), "ds-par1-01", state=GuestState.SUSPENDED,
                        suspended_on=NOW.date())
    ruleset = render_ruleset(fleet, "par1", NOW)
    assert "elements = { 192.0.2.0/30, 198.51.100.0/30, 203.0.113.0/30 }" in ruleset
    assert "ip daddr != @management counter drop" in chain(ruleset, "out_ds-par1-01")
    inbound = chain(ruleset, "in_ds-par1-01")
    # The sensitive ports come first: dropped whoever the peer is, the management path too.
    assert inbound.index("sensitive ports") < inbound.index("ip saddr != @management")


def test_mitigation_lasts_the_offers_minimum_and_puts_edge_rules_first() -> None:
    since = NOW - dt.timedelta(hours=1)
    fleet = with_server(
        example(), "ds-par1-01",
        mitigation=Mitigation(since=since, profile="strict", ends_at=since),
        pro=ProOption(edge_rules=[EdgeRule(action="accept", port="8443/tcp",
                                           source="198.18.0.0/24")]),
    )
    server = edge_servers(fleet, "par1")[0]
    # An ends_at before the minimum (26 h for the dedicated offer) does not end it (M28).
    assert server_state(fleet, server, since + dt.timedelta(hours=25)).mitigation_profile == \
        "strict"
    assert server_state(fleet, server, since + dt.timedelta(hours=26)).mitigation_profile is None
    inbound = chain(render_ruleset(fleet, "par1", NOW), "in_ds-par1-01")
    order = [inbound.index(text) for text in (
        "ip saddr 198.18.0.0/24 tcp dport 8443 counter accept",
        "tcp dport 22 counter accept",
        "ct state established,related accept",
        'counter drop comment "M28 mitigation')]
    assert order == sorted(order)


def test_terminated_and_addressless_servers_are_not_filtered() -> None:
    fleet = with_server(example(), "ds-par1-01", ipv4=None)
    assert edge_servers(fleet, "par1") == []
    assert "elements = { 192.0.2.200" not in render_ruleset(fleet, "par1", NOW)


def test_unknown_datacenter_and_profile_are_refused() -> None:
    with pytest.raises(EdgeError, match="no datacenter 'nowhere'"):
        render_ruleset(example(), "nowhere", NOW)
    fleet = with_server(example(), "ds-par1-01",
                        mitigation=Mitigation(since=NOW, profile="missing"))
    with pytest.raises(EdgeError, match="unknown mitigation profile 'missing'"):
        render_ruleset(fleet, "par1", NOW)


def test_cli_prints_the_ruleset_and_refuses_an_unknown_datacenter(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge", "render", "example-production", "par1",
                 "--now", "2026-12-04T12:00:00Z"]) == 0
    assert capsys.readouterr().out == render_ruleset(example(), "par1", NOW)
    assert main(["edge", "render", "example-production", "nowhere"]) == 1
    assert "no datacenter 'nowhere'" in capsys.readouterr().err


@pytest.mark.skipif(usable() is not None, reason=usable() or "")
@pytest.mark.parametrize("env", ["example-production", "lab"])
def test_every_datacenter_renders_a_ruleset_nft_accepts(env: str) -> None:
    fleet = example(env)
    ns = f"edge-check-{env[:4]}"
    run(["ip", "netns", "add", ns])
    try:
        for dc in fleet.datacenters:
            ruleset = render_ruleset(fleet, dc.code, NOW)
            done = subprocess.run(["nsenter", f"--net=/run/netns/{ns}", "nft", "-c", "-f", "-"],
                                  input=ruleset, capture_output=True, text=True, check=False)
            assert done.returncode == 0, f"{dc.code}: {done.stderr}"
    finally:
        run(["ip", "netns", "del", ns], check=False)
