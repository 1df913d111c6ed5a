"""The datacenter edge router's nftables ruleset: the network promises of dedicated servers
(004: M5, M6, M7, M28), rendered from the fleet.

A dedicated server has no hypervisor in front of it, so the promises a guest's nwfilter keeps
(vpsfleet/filters.py) are kept at the datacenter's edge router instead, with the SAME decisions:
which ports are sensitive, whether an SMTP block is active, whether the server is suspended,
whether a mitigation is on (never less than its offer's minimum) and what its profile and the Pro
option's edge rules admit all come from `vpsfleet.filters`. Only the syntax is nftables.

Pure functions: the fleet, a datacenter and "now" in, the text of an `nft -f` file out,
deterministic (an unchanged fleet renders byte for byte the same file). The file first creates
then deletes the table and defines it again: `nft -f` applies the whole file as one transaction,
so the router never runs a half-loaded ruleset, and a server removed from the fleet leaves no
chain behind (which `flush table` would).

Per server, two chains reached from the `forward` hook through verdict maps keyed by its address:

- `out_<server>` (traffic the server sends): SMTP block (M6, rejected with a reset so that the
  server's mail software fails at once), cut (M7, everything but the management networks
  dropped), concurrent UDP and ICMP flows capped (M5). It only ever drops, so it is evaluated
  first and an accept of the destination's inbound chain can never bypass it.
- `in_<server>` (traffic to the server): sensitive ports dropped from anyone (M5), cut but for
  the management networks (M7), per-source UDP and ICMP flow caps (M5), and while a mitigation is
  on (M28): the Pro option's edge rules in their order, the profile's ports, replies to the
  server's own flows, then every other inbound packet dropped.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from vpsfleet.filters import (
    PortRange,
    inbound_dropped_ports,
    mitigation_active,
    mitigation_minimum_hours,
    parse_port,
    smtp_blocked,
)
from vpsfleet.fleet import Fleet
from vpsfleet.schema import DedicatedServer, Guest, GuestState

TABLE = "vpsfleet_edge"
FAMILY = "inet"


class EdgeError(ValueError):
    """The fleet cannot be rendered for this datacenter (unknown datacenter or profile)."""


# --- decisions (shared with the guests' filter) --------------------------------------------------


def _as_filtered(server: DedicatedServer) -> Guest:
    """filters.py types its decisions on a guest; a dedicated server carries the same record
    (state, smtp_blocks, mitigation, pro, filter, offer), which is all they read."""
    return cast(Guest, server)


@dataclass(frozen=True)
class ServerState:
    """What the fleet decides for one dedicated server at one instant."""

    name: str
    ipv4: ipaddress.IPv4Address
    dropped_inbound: tuple[PortRange, ...]  # M5
    smtp_blocked: bool  # M6
    suspended: bool  # M7
    mitigation_profile: str | None  # M28: the profile while a mitigation is on, else None
    open_ports: tuple[PortRange, ...]  # M28: the profile's ports
    edge_rules: tuple[tuple[str, PortRange, ipaddress.IPv4Network | None], ...]  # M28, Pro


def server_state(fleet: Fleet, server: DedicatedServer, now: dt.datetime) -> ServerState:
    if server.ipv4 is None:
        raise EdgeError(f"dedicated server {server.name} has no address")
    filtered = _as_filtered(server)
    profile_name: str | None = None
    open_ports: tuple[PortRange, ...] = ()
    rules: tuple[tuple[str, PortRange, ipaddress.IPv4Network | None], ...] = ()
    if mitigation_active(filtered, mitigation_minimum_hours(fleet, filtered), now):
        assert server.mitigation is not None
        profile_name = server.mitigation.profile
        profile = fleet.policy.mitigation.profiles.get(profile_name)
        if profile is None:
            raise EdgeError(f"dedicated server {server.name}: unknown mitigation profile {profile_name!r}")
        open_ports = tuple(parse_port(spec) for spec in profile)
        if server.pro is not None:
            rules = tuple((rule.action, parse_port(rule.port), rule.source) for rule in server.pro.edge_rules)
    return ServerState(
        name=server.name,
        ipv4=server.ipv4,
        dropped_inbound=tuple(inbound_dropped_ports(fleet.policy.filter, filtered)),
        smtp_blocked=smtp_blocked(filtered, now),
        suspended=server.state is GuestState.SUSPENDED,
        mitigation_profile=profile_name,
        open_ports=open_ports,
        edge_rules=rules,
    )


def edge_servers(fleet: Fleet, datacenter: str) -> list[DedicatedServer]:
    """The datacenter's dedicated servers the edge filters: not terminated, with an address."""
    if fleet.datacenter(datacenter) is None:
        known = ", ".join(sorted(dc.code for dc in fleet.datacenters)) or "none"
        raise EdgeError(f"no datacenter {datacenter!r} (known: {known})")
    servers = [
        s
        for s in fleet.dedicated_servers
        if s.datacenter == datacenter and s.state is not GuestState.TERMINATED and s.ipv4 is not None
    ]
    return sorted(servers, key=lambda s: (int(cast(ipaddress.IPv4Address, s.ipv4)), s.name))


# --- nftables text -------------------------------------------------------------------------------


def _port_set(ranges: Iterable[PortRange]) -> str:
    items = [str(r.first) if r.first == r.last else f"{r.first}-{r.last}" for r in ranges]
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _by_protocol(ranges: Iterable[PortRange]) -> dict[str, list[PortRange]]:
    grouped: dict[str, list[PortRange]] = {}
    for rng in sorted(ranges):
        grouped.setdefault(rng.protocol, []).append(rng)
    return grouped


def _chain_id(server: str) -> str:
    # Hostnames are letters, digits and hyphens: valid in an nft identifier after the prefix.
    return server


def outbound_rules(fleet: Fleet, state: ServerState) -> list[str]:
    policy = fleet.policy.filter
    rules: list[str] = []
    if state.smtp_blocked:
        rules.append('tcp dport 25 counter reject with tcp reset comment "M6 SMTP block"')
    if state.suspended:
        rules.append('ip daddr != @management counter drop comment "M7 cut"')
    rules.append(
        f"meta l4proto udp ct state new ct count over {policy.udp_connlimit} "
        'counter drop comment "M5 UDP flows"'
    )
    rules.append(
        f"meta l4proto icmp ct state new ct count over {policy.icmp_connlimit} "
        'counter drop comment "M5 ICMP flows"'
    )
    return rules


def inbound_rules(fleet: Fleet, state: ServerState) -> list[str]:
    policy = fleet.policy.filter
    chain = _chain_id(state.name)
    rules: list[str] = []
    for proto, ranges in _by_protocol(state.dropped_inbound).items():
        rules.append(f'{proto} dport {_port_set(ranges)} counter drop comment "M5 sensitive ports"')
    if state.suspended:
        rules.append('ip saddr != @management counter drop comment "M7 cut"')
    rules.append(
        f"meta l4proto udp ct state new add @udp_{chain} {{ ip saddr ct count over "
        f'{policy.udp_connlimit} }} counter drop comment "M5 UDP flows"'
    )
    rules.append(
        f"meta l4proto icmp ct state new add @icmp_{chain} {{ ip saddr ct count over "
        f'{policy.icmp_connlimit} }} counter drop comment "M5 ICMP flows"'
    )
    if state.mitigation_profile is not None:
        for index, (action, rng, source) in enumerate(state.edge_rules, start=1):
            match = f"ip saddr {source} " if source is not None else ""
            rules.append(
                f"{match}{rng.protocol} dport {_port_set([rng])} counter {action} "
                f'comment "M28 edge rule {index}"'
            )
        for proto, ranges in _by_protocol(state.open_ports).items():
            rules.append(
                f"{proto} dport {_port_set(ranges)} counter accept "
                f'comment "M28 profile {state.mitigation_profile}"'
            )
        rules.append('ct state established,related accept comment "M28 replies to its own flows"')
        rules.append('counter drop comment "M28 mitigation: every other inbound packet"')
    return rules


def _block(header: str, lines: Iterable[str], indent: str = "  ") -> list[str]:
    return [f"{indent}{header} {{", *(f"{indent}  {line}" for line in lines), f"{indent}}}"]


def render_ruleset(fleet: Fleet, datacenter: str, now: dt.datetime) -> str:
    """The `nft -f` file for the datacenter's edge router."""
    servers = edge_servers(fleet, datacenter)
    states = [server_state(fleet, server, now) for server in servers]
    management = sorted(
        fleet.provider.management_networks, key=lambda n: (int(n.network_address), n.prefixlen)
    )
    lines = [
        f"# The edge router of datacenter {datacenter} ({fleet.environment}): the network",
        "# promises of its dedicated servers (004: M5, M6, M7, M28). Generated by",
        f"# `vpsfleet edge render {fleet.environment} {datacenter}`; do not edit.",
        # No timestamp: an unchanged state renders the same bytes (the role's idempotence).
        f"# {len(states)} server(s). The whole file is one transaction: the table is replaced",
        "# atomically.",
        f"table {FAMILY} {TABLE} {{}}",
        f"delete table {FAMILY} {TABLE}",
        f"table {FAMILY} {TABLE} {{",
    ]
    set_lines = ["type ipv4_addr", "flags interval"]
    if management:
        set_lines.append("elements = { " + ", ".join(str(n) for n in management) + " }")
    lines += _block("set management", set_lines)
    for name, direction in (("outbound", "out"), ("inbound", "in")):
        map_lines = ["type ipv4_addr : verdict"]
        if states:
            map_lines.append(
                "elements = { "
                + ", ".join(f"{s.ipv4} : jump {direction}_{_chain_id(s.name)}" for s in states)
                + " }"
            )
        lines += _block(f"map {name}", map_lines)
    for state in states:
        for kind in ("udp", "icmp"):
            lines += _block(
                f"set {kind}_{_chain_id(state.name)}", ["type ipv4_addr", "size 65535", "flags dynamic"]
            )
    lines += _block(
        "chain forward",
        [
            "type filter hook forward priority filter; policy accept;",
            "ip saddr vmap @outbound",
            "ip daddr vmap @inbound",
        ],
    )
    for state in states:
        lines.append(f"  # {state.name} {state.ipv4}: " + describe(state))
        lines += _block(f"chain out_{_chain_id(state.name)}", outbound_rules(fleet, state))
        lines += _block(f"chain in_{_chain_id(state.name)}", inbound_rules(fleet, state))
    lines.append("}")
    return "\n".join(lines) + "\n"


def describe(state: ServerState) -> str:
    parts = []
    if state.smtp_blocked:
        parts.append("SMTP blocked")
    if state.suspended:
        parts.append("cut (suspended)")
    if state.mitigation_profile is not None:
        pro = f", {len(state.edge_rules)} edge rule(s)" if state.edge_rules else ""
        parts.append(f"mitigation {state.mitigation_profile}{pro}")
    return ", ".join(parts) or "normal"
