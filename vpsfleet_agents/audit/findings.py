"""From nmap's view of a machine to findings: what service, how sure, and the evidence.

- `confirmed`: an active test succeeded (a relay to the auditor's canary, an IRC greeting, a
  TOR relay descriptor). Suggested edit: suspension.
- `identified`: nmap's service detection matched a forbidden service (a probe answered, not a
  guess from the port number) and no active test exists for it or it did not succeed.
  Suggested edit: a notice to the customer, then a re-run.

An open port of the list that neither test nor detection flags is listed, not reported: a web
site on 8080 is not an open proxy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vpsfleet_agents.audit import confirm, nmapxml, sanitize
from vpsfleet_agents.audit.config import Config, Target

# nmap's service names (nmap-service-probes) per category.
SERVICES = {
    "open_proxy": {"http-proxy", "socks-proxy", "socks4", "socks5", "squid-http", "polipo", "privoxy"},
    "irc": {"irc", "ircs-u", "irc-proxy"},
    "tor": {"tor", "tor-orport", "tor-socks", "tor-control"},
    "vpn": {"openvpn", "pptp", "isakmp", "ipsec-nat-t", "l2tp", "wireguard"},
    "cardsharing": {"cccam", "newcamd", "oscam", "mgcamd"},
}
PRODUCT_WORDS = {
    "open_proxy": ("proxy",),
    "irc": ("ircd",),
    "tor": ("tor ",),
    "vpn": ("openvpn", "pptp", "wireguard", "strongswan"),
    "cardsharing": ("cccam", "oscam"),
}


@dataclass(frozen=True)
class Finding:
    category: str
    protocol: str
    port: int
    evidence: str  # "confirmed" or "identified"
    service: nmapxml.Service
    confirmations: tuple[confirm.Confirmation, ...]


@dataclass(frozen=True)
class Checked:
    """An open port of the list that was not flagged."""

    protocol: str
    port: int
    state: str
    service: nmapxml.Service
    confirmations: tuple[confirm.Confirmation, ...]


@dataclass
class MachineResult:
    target: Target
    scanned: bool  # nmap reported the host (not skipped by its host timeout)
    findings: list[Finding] = field(default_factory=list)
    checked: list[Checked] = field(default_factory=list)


def identified(service: nmapxml.Service) -> str | None:
    """The category nmap's detection names, only when a probe matched."""
    if service.method != "probed":
        return None
    name, product = service.name.lower(), f"{service.product} ".lower()
    for category, names in SERVICES.items():
        if name in names or any(word in product for word in PRODUCT_WORDS[category]):
            return category
    return None


Test = tuple[str, Callable[[], confirm.Confirmation]]  # (the test's name, run it)

TEST_CATEGORY = {
    "http-get": "open_proxy",
    "http-connect": "open_proxy",
    "socks5": "open_proxy",
    "socks4": "open_proxy",
    "irc-register": "irc",
    "tor-dirport": "tor",
}


def active_tests(config: Config, address: str, port: nmapxml.Port, canary: confirm.Canary) -> list[Test]:
    """The active tests worth running on an open TCP port, cheapest first."""
    if port.protocol != "tcp" or port.state != "open" or port.service.tunnel == "ssl":
        return []
    listed = config.category_of("tcp", port.port)
    named = identified(port.service)
    name = port.service.name.lower()
    timeout, number = config.confirm_timeout_seconds, port.port
    tests: list[Test] = []
    httpish = name in ("http", "http-alt", "http-proxy")
    if listed == "open_proxy" or named == "open_proxy" or httpish:
        if "socks" not in name:
            tests += [
                ("http-get", lambda: confirm.http_get(address, number, canary, timeout)),
                ("http-connect", lambda: confirm.http_connect(address, number, canary, timeout)),
            ]
        if not httpish:
            tests += [
                ("socks5", lambda: confirm.socks5(address, number, canary, timeout)),
                ("socks4", lambda: confirm.socks4(address, number, canary, timeout)),
            ]
    if listed == "irc" or named == "irc":
        tests.append(("irc-register", lambda: confirm.irc(address, number, timeout)))
    # A relay's directory port speaks HTTP: worth a GET unless nmap recognised something else.
    if (listed == "tor" or named == "tor") and (
        port.service.method != "probed" or named == "tor" or name.startswith("http")
    ):
        tests.append(("tor-dirport", lambda: confirm.tor_dirport(address, number, timeout)))
    return tests


def examine(
    config: Config, target: Target, host: nmapxml.Host | None, canary: confirm.Canary
) -> MachineResult:
    result = MachineResult(target, scanned=host is not None and host.state == "up")
    if host is None:
        return result
    for port in host.ports:
        if port.state != "open":
            continue  # UDP's open|filtered is no evidence
        done: list[confirm.Confirmation] = []
        for _, test in active_tests(config, target.address, port, canary):
            outcome = test()
            done.append(outcome)
            if outcome.confirmed:
                break
        confirmed = [c for c in done if c.confirmed]
        named = identified(port.service)
        if confirmed:
            result.findings.append(
                Finding(
                    TEST_CATEGORY[confirmed[0].test],
                    port.protocol,
                    port.port,
                    "confirmed",
                    port.service,
                    tuple(done),
                )
            )
        elif named is not None:
            result.findings.append(
                Finding(named, port.protocol, port.port, "identified", port.service, tuple(done))
            )
        else:
            result.checked.append(Checked(port.protocol, port.port, port.state, port.service, tuple(done)))
    return result


def describe(service: nmapxml.Service) -> str:
    """nmap's view of a service on one line, escaped (the fields come from the guest)."""
    parts = [service.name or "unknown"]
    if service.tunnel:
        parts[0] = f"{service.tunnel}/{parts[0]}"
    parts += [p for p in (service.product, service.version) if p]
    if service.extrainfo:
        parts.append(f"({service.extrainfo})")
    if service.method == "table":
        parts.append("[guessed from the port number]")
    return sanitize.text(" ".join(parts), 200)
