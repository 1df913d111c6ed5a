"""A guest's port filter (M5, M6, M7, M28) as a libvirt nwfilter, rendered from the fleet.

Pure functions: the fleet and "now" in, XML out. The Pulumi dynamic provider defines the XML on
the guest's host; libvirt applies a redefined filter to the running VM at once, so an SMTP block,
a suspension or a mitigation changes this filter and never the domain.

Two layers of libvirt's nwfilter are used, each for what it does well:

- ebtables (layer 2, stateless, needs nothing from the host): anti-spoofing bound to the guest's
  MAC and IPv4, the management-only path of a suspended guest, the SMTP block and the inbound
  drops of sensitive ports. These promises hold even on a host without `br_netfilter`.
- iptables (layer 3, stateful, needs `bridge-nf-call-iptables=1` on the host): UDP and ICMP
  `connlimit-above`, and the mitigation profile, which must let replies to the guest's own
  connections in while it drops every other new inbound flow.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field

from vpsfleet.fleet import Fleet
from vpsfleet.schema import (
    DedicatedServer,
    EdgeRule,
    FilterPolicy,
    Guest,
    GuestState,
    Mitigation,
    SmtpBlock,
)
from vpsfleet.values import PORT_SPEC

# What carries the network record these decisions read: a guest (its port filter, Pulumi) or a
# dedicated server (its edge router, edge_rules.py).
Protected = Guest | DedicatedServer

FILTER_PREFIX = "vpsfleet-"
# A fixed namespace so that a filter's UUID follows from its name: libvirt refuses to redefine a
# filter under another UUID, and a deterministic one keeps create and update idempotent.
FILTER_UUID_NAMESPACE = uuid.UUID("6f1f8f2e-4c1b-5b8e-9d0e-7a1c2b3d4e5f")

PROTOCOLS = ("tcp", "udp")


# --- time-bound states ---------------------------------------------------------------------------


def _utc(moment: dt.datetime) -> dt.datetime:
    """The fleet file writes UTC; a naive timestamp is read as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def smtp_block_active(block: SmtpBlock, now: dt.datetime) -> bool:
    """M6: a block holds from `blocked_at` until it is lifted or its `until` has passed."""
    if block.lifted_at is not None and _utc(block.lifted_at) <= _utc(now):
        return False
    if _utc(block.blocked_at) > _utc(now):
        return False
    return block.until is None or _utc(now) < _utc(block.until)


def smtp_blocked(guest: Protected, now: dt.datetime) -> bool:
    return any(smtp_block_active(block, now) for block in guest.smtp_blocks)


def mitigation_minimum_hours(fleet: Fleet, guest: Protected) -> int:
    """M28: the guest's offer says how long a mitigation stays on at least (24 h, 26 h...);
    an offer that says nothing takes the policy's."""
    offer = fleet.offer(guest.offer)
    if offer is not None and offer.mitigation_minimum_hours is not None:
        return offer.mitigation_minimum_hours
    return fleet.policy.mitigation.minimum_hours


def mitigation_earliest_end(mitigation: Mitigation, minimum_hours: int) -> dt.datetime:
    return _utc(mitigation.since) + dt.timedelta(hours=minimum_hours)


def mitigation_ends_at(mitigation: Mitigation, minimum_hours: int) -> dt.datetime | None:
    """M28: a mitigation cannot end before its minimum duration, whatever `ends_at` says."""
    floor = mitigation_earliest_end(mitigation, minimum_hours)
    if mitigation.ends_at is None:
        return None
    return max(_utc(mitigation.ends_at), floor)


def mitigation_active(guest: Protected, minimum_hours: int, now: dt.datetime) -> bool:
    mitigation = guest.mitigation
    if mitigation is None or _utc(mitigation.since) > _utc(now):
        return False
    ends_at = mitigation_ends_at(mitigation, minimum_hours)
    return ends_at is None or _utc(now) < ends_at


# --- port sets -----------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class PortRange:
    protocol: str
    first: int
    last: int

    def spec(self) -> str:
        ports = str(self.first) if self.first == self.last else f"{self.first}-{self.last}"
        return f"{ports}/{self.protocol}"


def parse_port(spec: str) -> PortRange:
    match = PORT_SPEC.fullmatch(spec)
    if not match:
        raise ValueError(f"malformed port {spec!r}")
    first = int(match.group(1))
    return PortRange(match.group(3), first, int(match.group(2) or first))


def _ports(specs: Iterable[str]) -> dict[str, set[int]]:
    ports: dict[str, set[int]] = {proto: set() for proto in PROTOCOLS}
    for spec in specs:
        rng = parse_port(spec)
        ports[rng.protocol].update(range(rng.first, rng.last + 1))
    return ports


def _ranges(protocol: str, ports: set[int]) -> list[PortRange]:
    ranges: list[PortRange] = []
    for port in sorted(ports):
        if ranges and ranges[-1].last == port - 1:
            ranges[-1] = PortRange(protocol, ranges[-1].first, port)
        else:
            ranges.append(PortRange(protocol, port, port))
    return ranges


def inbound_dropped_ports(policy: FilterPolicy, guest: Protected) -> list[PortRange]:
    """M5: the policy's sensitive ports, minus what the guest opens, plus what it also blocks."""
    filtered = _ports(policy.filtered_inbound_ports)
    opened = _ports(guest.filter.open_inbound)
    blocked = _ports(guest.filter.block_inbound)
    result: list[PortRange] = []
    for proto in PROTOCOLS:
        result += _ranges(proto, (filtered[proto] - opened[proto]) | blocked[proto])
    return result


# --- rules ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One nwfilter `<rule>`: libvirt evaluates rules by ascending priority (-1000..1000)."""

    action: str  # accept | drop | return
    direction: str  # in (to the guest) | out (from the guest) | inout
    priority: int
    protocol: str | None  # mac, arp, ip (ebtables); tcp, udp, icmp, all (iptables); None
    attributes: dict[str, str] = field(default_factory=dict)
    why: str = ""  # kept out of the XML; tests and docs read it


def _port_attrs(rng: PortRange) -> dict[str, str]:
    attrs = {"protocol": rng.protocol, "dstportstart": str(rng.first)}
    if rng.last != rng.first:
        attrs["dstportend"] = str(rng.last)
    return attrs


def anti_spoofing_rules() -> list[Rule]:
    """M5: the guest may only send with its own MAC and IPv4, and claim only them in ARP."""
    return [
        Rule("drop", "out", -900, "mac", {"match": "no", "srcmacaddr": "$MAC"}, "MAC spoofing"),
        Rule("drop", "out", -890, "ip", {"match": "no", "srcipaddr": "$IP"}, "IP spoofing"),
        Rule("drop", "out", -880, "arp", {"match": "no", "arpsrcmacaddr": "$MAC"}, "ARP spoofing"),
        Rule("drop", "out", -870, "arp", {"match": "no", "arpsrcipaddr": "$IP"}, "ARP spoofing"),
        Rule("drop", "in", -860, "arp", {"match": "no", "arpdstipaddr": "$IP"}, "foreign ARP"),
    ]


def suspension_rules(management: Iterable[ipaddress.IPv4Network]) -> list[Rule]:
    """M7: a suspended guest keeps running but talks to the provider's management path only."""
    rules: list[Rule] = []
    for net in management:
        addr, mask = str(net.network_address), str(net.prefixlen)
        rules.append(Rule("accept", "out", -800, "ip", {"dstipaddr": addr, "dstipmask": mask},
                          f"suspended: management path {net}"))
        rules.append(Rule("accept", "in", -800, "ip", {"srcipaddr": addr, "srcipmask": mask},
                          f"suspended: management path {net}"))
    rules.append(Rule("drop", "inout", -790, "mac", {"protocolid": "ipv4"},
                      "suspended: everything else"))
    return rules


def smtp_block_rules() -> list[Rule]:
    """M6: outbound TCP 25 is dropped; submission (587) and the rest stay open."""
    return [Rule("drop", "out", -850, "ip", {"protocol": "tcp", "dstportstart": "25"},
                 "SMTP block")]


def sensitive_port_rules(ports: Iterable[PortRange]) -> list[Rule]:
    return [Rule("drop", "in", -840, "ip", _port_attrs(rng), f"sensitive port {rng.spec()}")
            for rng in ports]


def layer2_defaults() -> list[Rule]:
    """IPv4 and ARP pass the layer-2 filter; any other frame type (IPv6, STP...) is dropped."""
    return [
        Rule("accept", "out", -500, "mac", {"protocolid": "ipv4"}, "IPv4 out"),
        Rule("accept", "in", -500, "mac", {"protocolid": "ipv4"}, "IPv4 in"),
        Rule("accept", "inout", -500, "mac", {"protocolid": "arp"}, "ARP"),
        Rule("drop", "inout", 1000, None, {}, "other layer-2 traffic"),
    ]


def flow_limit_rules(policy: FilterPolicy) -> list[Rule]:
    """M5: nwfilter can only cap concurrent flows (`connlimit-above`); packet rates are the host
    firewall's job (see docs/port-filters.md)."""
    rules: list[Rule] = []
    for direction in ("out", "in"):
        rules.append(Rule("drop", direction, 300, "udp",
                          {"connlimit-above": str(policy.udp_connlimit)}, "UDP flow limit"))
        rules.append(Rule("drop", direction, 300, "icmp",
                          {"connlimit-above": str(policy.icmp_connlimit)}, "ICMP flow limit"))
    return rules


def mitigation_rules(open_ports: Iterable[PortRange]) -> list[Rule]:
    """M28: during a mitigation only the profile's ports accept new inbound flows. Stateful, so
    that replies to the guest's own connections still come in."""
    rules = [Rule("accept", "in", 400, rng.protocol, _layer3_port_attrs(rng),
                  f"mitigation: {rng.spec()} open") for rng in open_ports]
    rules.append(Rule("accept", "out", 410, "all", {}, "mitigation: guest-initiated flows"))
    rules.append(Rule("drop", "in", 420, "all", {}, "mitigation: other inbound flows"))
    return rules


EDGE_RULES_PRIORITY = 340  # up to 50 rules, after the flow limits, before the profile (400)


def edge_rules(rules: Iterable[EdgeRule]) -> list[Rule]:
    """M28, Pro option: the customer's edge firewall while a mitigation is on, in its order and
    before the profile, so that its drops and its source-restricted accepts come first."""
    result: list[Rule] = []
    for index, edge in enumerate(rules):
        rng = parse_port(edge.port)
        attrs = _layer3_port_attrs(rng)
        if edge.source is not None:
            attrs = {"srcipaddr": str(edge.source.network_address),
                     "srcipmask": str(edge.source.prefixlen), **attrs}
        source = f" from {edge.source}" if edge.source is not None else ""
        result.append(Rule(edge.action, "in", EDGE_RULES_PRIORITY + index, rng.protocol, attrs,
                           f"mitigation: edge rule {edge.action} {rng.spec()}{source}"))
    return result


def _layer3_port_attrs(rng: PortRange) -> dict[str, str]:
    attrs = {"dstportstart": str(rng.first)}
    if rng.last != rng.first:
        attrs["dstportend"] = str(rng.last)
    return attrs


def guest_rules(fleet: Fleet, guest: Guest, now: dt.datetime) -> list[Rule]:
    """Every rule of the guest's filter, in priority order."""
    policy = fleet.policy
    # The SMTP block and the sensitive ports come before the suspension's management path:
    # they hold whoever the peer is.
    rules = anti_spoofing_rules()
    if smtp_blocked(guest, now):
        rules += smtp_block_rules()
    rules += sensitive_port_rules(inbound_dropped_ports(policy.filter, guest))
    if guest.state is GuestState.SUSPENDED:
        rules += suspension_rules(fleet.provider.management_networks)
    rules += layer2_defaults()
    rules += flow_limit_rules(policy.filter)
    if mitigation_active(guest, mitigation_minimum_hours(fleet, guest), now):
        assert guest.mitigation is not None
        profile = policy.mitigation.profiles.get(guest.mitigation.profile)
        if profile is None:
            raise ValueError(f"guest {guest.name}: unknown mitigation profile "
                             f"{guest.mitigation.profile!r}")
        if guest.pro is not None:
            rules += edge_rules(guest.pro.edge_rules)
        rules += mitigation_rules(parse_port(spec) for spec in profile)
    return sorted(rules, key=lambda rule: rule.priority)


# --- XML -----------------------------------------------------------------------------------------


def filter_name(guest_name: str) -> str:
    return f"{FILTER_PREFIX}{guest_name}"


def filter_uuid(name: str) -> str:
    return str(uuid.uuid5(FILTER_UUID_NAMESPACE, name))


def render_filter(name: str, rules: Iterable[Rule]) -> str:
    """The nwfilter XML libvirt defines; deterministic, so that an unchanged fleet is no diff."""
    root = ET.Element("filter", {"name": name, "chain": "root"})
    ET.SubElement(root, "uuid").text = filter_uuid(name)
    for rule in rules:
        element = ET.SubElement(root, "rule", {
            "action": rule.action, "direction": rule.direction, "priority": str(rule.priority),
        })
        if rule.protocol is not None:
            ET.SubElement(element, rule.protocol, dict(rule.attributes))
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def guest_filter_xml(fleet: Fleet, guest: Guest, now: dt.datetime) -> str:
    return render_filter(filter_name(guest.name), guest_rules(fleet, guest, now))
