"""The audit's configuration (`/etc/vpsfleet/audit.json`, templated from the fleet by role
`monitor`). Every problem is reported at once, with its location; nothing is scanned while one
remains. The targets listed here are the only addresses the program ever sends a packet to (the
canary is the auditor's own listener)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpsfleet_agents.config_file import ConfigError as ConfigError  # this program's error too
from vpsfleet_agents.config_file import load_config

CATEGORIES = ("open_proxy", "irc", "tor", "vpn", "cardsharing")
KINDS = ("guest", "server")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
CUSTOMER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
PORTS = re.compile(r"^([0-9]{1,5})(?:-([0-9]{1,5}))?/(tcp|udp)$")  # the fleet's PortSpec


@dataclass(frozen=True)
class Target:
    name: str  # the guest's or dedicated server's name in the fleet
    kind: str  # "guest" or "server"
    customer: str
    address: str  # one IPv4 address, never a network or a host name


@dataclass(frozen=True)
class PortRange:
    first: int
    last: int

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.first <= port <= self.last

    def spec(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


@dataclass(frozen=True)
class Config:
    environment: str  # the fleet's environment, for the suggested `vpsfleet suspend ENV ...`
    targets: tuple[Target, ...]
    # category -> protocol -> port ranges (the fleet's policy: audit.ports)
    ports: dict[str, dict[str, tuple[PortRange, ...]]]
    max_rate: int  # nmap --max-rate: packets per second, the whole scan
    version_intensity: int  # nmap --version-intensity, 0-9
    host_timeout_minutes: int  # nmap --host-timeout
    confirm_timeout_seconds: float  # each active confirmation's socket timeout
    canary_address: str  # the auditor's own address, where a relaying proxy must reach
    canary_port: int  # 0: any free port for each run
    report_dir: Path
    metrics_file: Path | None
    nmap: str

    def category_of(self, protocol: str, port: int) -> str | None:
        for category in CATEGORIES:
            if any(port in r for r in self.ports.get(category, {}).get(protocol, ())):
                return category
        return None

    def port_specs(self, protocol: str) -> list[str]:
        ranges = {r for c in self.ports.values() for r in c.get(protocol, ())}
        return [r.spec() for r in sorted(ranges, key=lambda r: (r.first, r.last))]


def _address(value: Any, where: str, problems: list[str]) -> str:
    if not isinstance(value, str):
        problems.append(f"{where}: an IPv4 address is required, got {value!r}")
        return ""
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        problems.append(f"{where}: not one IPv4 address: {value!r}")
        return ""
    if address.is_multicast or address.is_unspecified or address.is_loopback or str(address) != value:
        problems.append(f"{where}: not a machine's address: {value!r}")
        return ""
    return value


def _int(data: dict[str, Any], key: str, low: int, high: int, problems: list[str], default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.append(f"{key}: an integer from {low} to {high} is required, got {value!r}")
        return default
    return value


def _target(data: Any, where: str, problems: list[str]) -> Target | None:
    if not isinstance(data, dict):
        problems.append(f"{where}: a mapping is required")
        return None
    problems.extend(
        f"{where}.{key}: unknown field" for key in sorted(set(data) - {"name", "kind", "customer", "address"})
    )
    name, kind, customer = data.get("name"), data.get("kind", "guest"), data.get("customer")
    if not isinstance(name, str) or not NAME.match(name):
        problems.append(f"{where}.name: not a machine name: {name!r}")
    if kind not in KINDS:
        problems.append(f"{where}.kind: one of {', '.join(KINDS)} is required, got {kind!r}")
    if not isinstance(customer, str) or not CUSTOMER.match(customer):
        problems.append(f"{where}.customer: not a customer id: {customer!r}")
    address = _address(data.get("address"), f"{where}.address", problems)
    return Target(str(name), str(kind), str(customer), address)


def _ports(value: Any, problems: list[str]) -> dict[str, dict[str, tuple[PortRange, ...]]]:
    """`{category: ["3128/tcp", "6660-6669/tcp", "500/udp"]}`, the fleet's port notation."""
    if not isinstance(value, dict) or not value:
        problems.append('ports: a mapping category -> ["PORT/PROTO" or "FIRST-LAST/PROTO", ...] is required')
        return {}
    result: dict[str, dict[str, tuple[PortRange, ...]]] = {}
    for category, specs in value.items():
        if category not in CATEGORIES:
            problems.append(f"ports.{category}: not a category ({', '.join(CATEGORIES)})")
            continue
        if not isinstance(specs, list):
            problems.append(f"ports.{category}: a list of ports is required")
            continue
        found: dict[str, list[PortRange]] = {}
        for index, item in enumerate(specs):
            match = PORTS.match(item) if isinstance(item, str) else None
            first = int(match.group(1)) if match else 0
            last = int(match.group(2) or first) if match else 0
            if not match or not 1 <= first <= last <= 65535:
                problems.append(f"ports.{category}[{index}]: not PORT/PROTO or FIRST-LAST/PROTO: {item!r}")
                continue
            found.setdefault(match.group(3), []).append(PortRange(first, last))
        result[category] = {protocol: tuple(ranges) for protocol, ranges in found.items()}
    return result


def parse(data: Any, path: Path) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(path, ["the file must hold a JSON object"])
    problems: list[str] = []
    known = {
        "environment",
        "targets",
        "ports",
        "max_rate",
        "version_intensity",
        "host_timeout_minutes",
        "confirm_timeout_seconds",
        "canary_address",
        "canary_port",
        "report_dir",
        "metrics_file",
        "nmap",
    }
    problems.extend(f"{key}: unknown field" for key in sorted(set(data) - known))
    environment = data.get("environment")
    if not isinstance(environment, str) or not NAME.match(environment):
        problems.append(f"environment: an environment name is required, got {environment!r}")
    targets: list[Target] = []
    raw = data.get("targets")
    if not isinstance(raw, list):
        problems.append("targets: a list is required")
    else:
        for index, item in enumerate(raw):
            target = _target(item, f"targets[{index}]", problems)
            if target is not None:
                targets.append(target)
        seen: dict[str, int] = {}
        for index, target in enumerate(targets):
            for key in (target.name, target.address):
                if key and key in seen:
                    problems.append(f"targets[{index}]: {key!r} already at targets[{seen[key]}]")
                seen.setdefault(key, index)
    ports = _ports(data.get("ports"), problems)
    max_rate = _int(data, "max_rate", 1, 10000, problems, 100)
    intensity = _int(data, "version_intensity", 0, 9, problems, 5)
    host_timeout = _int(data, "host_timeout_minutes", 1, 1440, problems, 30)
    timeout = data.get("confirm_timeout_seconds", 5)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 60:
        problems.append(f"confirm_timeout_seconds: a number in (0, 60] is required, got {timeout!r}")
        timeout = 5
    canary = _address(data.get("canary_address"), "canary_address", problems)
    canary_port = _int(data, "canary_port", 0, 65535, problems, 0)
    report_dir = data.get("report_dir", "/var/lib/vpsfleet-audit")
    if not isinstance(report_dir, str) or not report_dir.startswith("/"):
        problems.append(f"report_dir: an absolute path is required, got {report_dir!r}")
    metrics = data.get("metrics_file")
    if metrics is not None and (not isinstance(metrics, str) or not metrics.startswith("/")):
        problems.append("metrics_file: an absolute path or null is required")
    nmap = data.get("nmap", "/usr/bin/nmap")
    if not isinstance(nmap, str) or not nmap.startswith("/"):
        problems.append(f"nmap: an absolute path is required, got {nmap!r}")
    if problems:
        raise ConfigError(path, problems)
    return Config(
        environment=str(environment),
        targets=tuple(targets),
        ports=ports,
        max_rate=max_rate,
        version_intensity=intensity,
        host_timeout_minutes=host_timeout,
        confirm_timeout_seconds=float(timeout),
        canary_address=canary,
        canary_port=canary_port,
        report_dir=Path(str(report_dir)),
        metrics_file=Path(metrics) if isinstance(metrics, str) else None,
        nmap=str(nmap),
    )


def load(path: Path) -> Config:
    return load_config(path, parse)
