"""The port filter's promises (M5, M6, M7, M28), read from the rendered rules and XML."""

from __future__ import annotations

import datetime as dt
import ipaddress
import xml.etree.ElementTree as ET

import pytest

from tests.pulumi.fleets import fleet, with_guest
from vpsfleet.filters import (
    PortRange,
    Rule,
    filter_uuid,
    guest_filter_xml,
    guest_rules,
    inbound_dropped_ports,
    mitigation_active,
    smtp_blocked,
)
from vpsfleet.fleet import Fleet
from vpsfleet.schema import FilterOverrides, GuestState, Mitigation, SmtpBlock

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
GUEST = "bravo-vps"


@pytest.fixture(scope="module")
def lab() -> Fleet:
    return fleet("lab")


def rules_of(f: Fleet, now: dt.datetime = NOW) -> list[Rule]:
    guest = f.guest(GUEST)
    assert guest is not None
    return guest_rules(f, guest, now)


def smtp_drop(rules: list[Rule]) -> bool:
    return any(r.action == "drop" and r.direction == "out" and r.attributes.get("protocol") ==
               "tcp" and r.attributes.get("dstportstart") == "25" for r in rules)


def test_smtp_block_drops_outbound_25_only_while_active(lab: Fleet) -> None:
    block = SmtpBlock(blocked_at=NOW - HOUR, until=NOW + HOUR, reason="spam")
    blocked = with_guest(lab, GUEST, smtp_blocks=[block])
    assert not smtp_drop(rules_of(lab))
    assert smtp_drop(rules_of(blocked))
    assert not smtp_drop(rules_of(blocked, NOW - 2 * HOUR)), "not yet blocked"
    assert not smtp_drop(rules_of(blocked, NOW + 2 * HOUR)), "block expired"
    lifted = block.model_copy(update={"lifted_at": NOW - HOUR / 2, "lift_reason": "cleaned"})
    assert not smtp_drop(rules_of(with_guest(lab, GUEST, smtp_blocks=[lifted])))


def test_smtp_block_never_touches_submission_or_inbound_25(lab: Fleet) -> None:
    block = SmtpBlock(blocked_at=NOW - HOUR, until=None, reason="spam")
    rules = rules_of(with_guest(lab, GUEST, smtp_blocks=[block]))
    port_rules = [r for r in rules if r.attributes.get("dstportstart") in ("25", "587")]
    assert [(r.direction, r.attributes["dstportstart"]) for r in port_rules] == [("out", "25")]


def test_indefinite_smtp_block_holds_until_lifted(lab: Fleet) -> None:
    block = SmtpBlock(blocked_at=NOW - HOUR, until=None, reason="third block")
    guest = with_guest(lab, GUEST, smtp_blocks=[block]).guest(GUEST)
    assert guest is not None
    assert smtp_blocked(guest, NOW + dt.timedelta(days=3650))


def test_every_filter_binds_anti_spoofing_to_the_guests_own_mac_and_ip(lab: Fleet) -> None:
    rules = rules_of(lab)
    spoofing = {(r.protocol, tuple(sorted(r.attributes.items()))) for r in rules
                if r.action == "drop" and r.direction == "out" and r.attributes.get("match") == "no"}
    assert spoofing == {
        ("mac", (("match", "no"), ("srcmacaddr", "$MAC"))),
        ("ip", (("match", "no"), ("srcipaddr", "$IP"))),
        ("arp", (("arpsrcmacaddr", "$MAC"), ("match", "no"))),
        ("arp", (("arpsrcipaddr", "$IP"), ("match", "no"))),
    }
    # ...and they come before anything that accepts traffic.
    first_accept = min(r.priority for r in rules if r.action == "accept")
    assert all(r.priority < first_accept for r in rules if r.attributes.get("match") == "no")


def test_only_ipv4_and_arp_leave_the_guest(lab: Fleet) -> None:
    rules = rules_of(lab)
    accepted = {r.attributes.get("protocolid") for r in rules
                if r.action == "accept" and r.protocol == "mac"}
    assert accepted == {"ipv4", "arp"}
    assert rules[-1] == Rule("drop", "inout", 1000, None, {}, rules[-1].why)


def test_sensitive_ports_dropped_inbound_are_policy_minus_opened_plus_blocked(lab: Fleet) -> None:
    overrides = FilterOverrides(open_inbound=["137/udp", "445/tcp", "23/tcp"],
                                block_inbound=["3306/tcp", "138-140/udp"])
    guest = with_guest(lab, GUEST, filter=overrides).guest(GUEST)
    assert guest is not None
    dropped = [r.spec() for r in inbound_dropped_ports(lab.policy.filter, guest)]
    assert dropped == ["111/tcp", "135-139/tcp", "3306/tcp",
                       "111/udp", "138-140/udp", "161/udp", "1900/udp", "11211/udp"]


def test_sensitive_port_rules_drop_inbound_only(lab: Fleet) -> None:
    rules = [r for r in rules_of(lab) if r.protocol == "ip" and "dstportstart" in r.attributes]
    assert rules and all(r.direction == "in" and r.action == "drop" for r in rules)
    assert {r.attributes["protocol"] for r in rules} == {"tcp", "udp"}
    ranged = [r for r in rules if r.attributes["dstportstart"] == "135"]
    assert ranged[0].attributes["dstportend"] == "139"


def test_udp_and_icmp_flows_are_capped_by_the_policy(lab: Fleet) -> None:
    caps = {(r.protocol, r.direction): r.attributes["connlimit-above"] for r in rules_of(lab)
            if "connlimit-above" in r.attributes}
    udp, icmp = str(lab.policy.filter.udp_connlimit), str(lab.policy.filter.icmp_connlimit)
    assert caps == {("udp", "out"): udp, ("udp", "in"): udp,
                    ("icmp", "out"): icmp, ("icmp", "in"): icmp}


def test_suspended_guest_reaches_only_the_management_networks(lab: Fleet) -> None:
    assert not any("suspended" in r.why for r in rules_of(lab))
    rules = rules_of(with_guest(lab, GUEST, state=GuestState.SUSPENDED))
    accepts = [r for r in rules if r.why.startswith("suspended") and r.action == "accept"]
    nets = {ipaddress.IPv4Network(f"{r.attributes.get('dstipaddr') or r.attributes['srcipaddr']}/"
                                  f"{r.attributes.get('dstipmask') or r.attributes['srcipmask']}")
            for r in accepts}
    assert nets == set(lab.provider.management_networks)
    cut = [r for r in rules if r.why == "suspended: everything else"]
    assert cut == [Rule("drop", "inout", cut[0].priority, "mac", {"protocolid": "ipv4"}, cut[0].why)]
    # The cut comes after the management path and before IPv4 is accepted at all.
    assert max(r.priority for r in accepts) < cut[0].priority
    assert cut[0].priority < min(r.priority for r in rules if r.attributes == {"protocolid": "ipv4"}
                                 and r.action == "accept")


def test_mitigation_opens_only_the_profiles_ports_inbound(lab: Fleet) -> None:
    mitigated = with_guest(lab, GUEST, mitigation=Mitigation(since=NOW - HOUR, profile="web"))
    rules = rules_of(mitigated)
    opened = {(r.protocol, r.attributes["dstportstart"]) for r in rules
              if r.why.startswith("mitigation") and r.action == "accept" and r.direction == "in"}
    assert opened == {("tcp", "22"), ("tcp", "80"), ("tcp", "443")}
    drop = [r for r in rules if r.why == "mitigation: other inbound flows"]
    assert drop and drop[0].protocol == "all" and drop[0].direction == "in"
    assert all(r.priority < drop[0].priority for r in rules if r.why.startswith("mitigation")
               and r.action == "accept")
    assert not any(r.why.startswith("mitigation") for r in rules_of(lab))


def test_mitigation_cannot_end_before_its_minimum_duration(lab: Fleet) -> None:
    minimum = lab.policy.mitigation.minimum_hours
    early_end = Mitigation(since=NOW, profile="strict", ends_at=NOW + HOUR)
    guest = with_guest(lab, GUEST, mitigation=early_end).guest(GUEST)
    assert guest is not None
    assert mitigation_active(guest, minimum, NOW + (minimum - 1) * HOUR)
    assert not mitigation_active(guest, minimum, NOW + (minimum + 1) * HOUR)
    open_ended = with_guest(lab, GUEST, mitigation=Mitigation(since=NOW, profile="strict"))
    assert any(r.why.startswith("mitigation")
               for r in rules_of(open_ended, NOW + dt.timedelta(days=30)))


def test_filter_xml_is_deterministic_and_keeps_its_uuid(lab: Fleet) -> None:
    guest = lab.guest(GUEST)
    assert guest is not None
    first = guest_filter_xml(lab, guest, NOW)
    assert first == guest_filter_xml(lab, guest, NOW)
    root = ET.fromstring(first)
    assert root.tag == "filter" and root.get("name") == f"vpsfleet-{GUEST}"
    assert root.get("chain") == "root"
    assert root.findtext("uuid") == filter_uuid(f"vpsfleet-{GUEST}")
    blocked = with_guest(lab, GUEST, smtp_blocks=[SmtpBlock(blocked_at=NOW, until=None,
                                                            reason="spam")])
    again = blocked.guest(GUEST)
    assert again is not None
    assert ET.fromstring(guest_filter_xml(blocked, again, NOW)).findtext("uuid") == \
        root.findtext("uuid")
    priorities = [int(r.get("priority", "0")) for r in root.findall("rule")]
    assert priorities == sorted(priorities)


def test_naive_timestamps_are_read_as_utc(lab: Fleet) -> None:
    naive = SmtpBlock(blocked_at=dt.datetime(2026, 11, 23, 11), until=dt.datetime(2026, 11, 23, 13),
                      reason="spam")
    guest = with_guest(lab, GUEST, smtp_blocks=[naive]).guest(GUEST)
    assert guest is not None
    assert smtp_blocked(guest, NOW)
    assert not smtp_blocked(guest, NOW + 2 * HOUR)


def test_port_range_spec_round_trips() -> None:
    assert PortRange("tcp", 135, 139).spec() == "135-139/tcp"
    assert PortRange("udp", 53, 53).spec() == "53/udp"


def test_sensitive_ports_and_smtp_block_hold_even_for_the_management_path(lab: Fleet) -> None:
    block = SmtpBlock(blocked_at=NOW - HOUR, until=None, reason="spam")
    rules = rules_of(with_guest(lab, GUEST, state=GuestState.SUSPENDED, smtp_blocks=[block]))
    management = min(r.priority for r in rules if r.why.startswith("suspended: management"))
    assert all(r.priority < management for r in rules
               if r.why.startswith("sensitive port") or r.why == "SMTP block")
