"""What the job asks libvirt: a guest's outbound counter and its interface's outbound rate.

Directions, precisely. The guest's interface is a tap device on the host: what the guest sends
is what the tap *receives* on the host (its rx counter), and libvirt polices it on the tap's
ingress (an `ingress` qdisc with a `police` action: no sch_sfq/htb needed). libvirt names
bandwidth from the guest's side: `<outbound>` and `outbound.average` are traffic *out of the
guest*; `<inbound>` is traffic into it. Its interface statistics of a `bridge` or `network`
interface follow the same side: libvirt swaps the tap's counters, so `tx_bytes` is the tap's rx,
what the guest sent (checked on a real libvirtd by tests/traffic/test_libvirt_quota.py). Other
interface types (`ethernet`, `direct`: libvirt may report those from the host's side) are refused
rather than guessed. Rates are in kilobytes per second (1000 bytes: tc's SI `kbps`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Any

from vpsfleet_agents.traffic.counting import Counter

# interfaceStats() returns (rx_bytes, rx_packets, rx_errs, rx_drop, tx_bytes, ...).
COUNTED_TYPES = ("bridge", "network")  # libvirt reports these from the guest's side
TX_BYTES = 4
OUTBOUND_AVERAGE = "outbound.average"


class GuestError(Exception):
    """One guest could not be read or changed; the others go on."""


def kilobytes_per_second(kbit_s: int) -> int:
    """libvirt's rate unit from kbit/s (1000 bit/s); never 0, which would mean "no limit"."""
    return max(1, kbit_s // 8)


def _libvirt() -> Any:
    import libvirt  # the host's python3-libvirt; imported here so the pure modules need none

    return libvirt


def libvirt_error() -> type[Exception]:
    """libvirt's exception, for a call the functions here do not wrap (a domain gone mid-run)."""
    error: type[Exception] = _libvirt().libvirtError
    return error


def lookup(conn: Any, name: str) -> Any:
    libvirt = _libvirt()
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as error:
        raise GuestError(f"domain {name}: {error}") from None


@dataclass(frozen=True)
class Nic:
    kind: str  # the interface's type: bridge, network, ethernet...
    device: str  # how libvirt's interface calls name it: its target device, or its MAC address


def resolve(domain: Any, device: str | None) -> Nic:
    """The guest's interface: the one whose target is `device`, or, with no device configured,
    the domain's only interface, named by its MAC (stable whether the domain runs or not)."""
    libvirt = _libvirt()
    flags = 0 if domain.isActive() else libvirt.VIR_DOMAIN_XML_INACTIVE
    interfaces = ElementTree.fromstring(domain.XMLDesc(flags)).findall("./devices/interface")
    if device is None:
        mac = interfaces[0].find("mac") if len(interfaces) == 1 else None
        if mac is None or not mac.get("address"):
            raise GuestError(
                f"domain {domain.name()}: {len(interfaces)} interfaces: configure which one is counted"
            )
        return Nic(interfaces[0].get("type", ""), mac.get("address", ""))
    for interface in interfaces:
        target = interface.find("target")
        if target is not None and target.get("dev") == device:
            return Nic(interface.get("type", ""), device)
    raise GuestError(f"domain {domain.name()}: no interface with target {device}")


def read_counter(domain: Any, nic: Nic, boot_id: str) -> Counter | None:
    """The guest's outbound counter, or None while the domain is not running (no tap)."""
    libvirt = _libvirt()
    if not domain.isActive():
        return None
    if nic.kind not in COUNTED_TYPES:
        raise GuestError(
            f"domain {domain.name()}: interface {nic.device} of type {nic.kind!r} is not counted"
        )
    try:
        stats = domain.interfaceStats(nic.device)
        # A new domain run has a new ID; IDs start again after the host (libvirtd's state) boots.
        identity = f"{boot_id}/{domain.ID()}"
    except libvirt.libvirtError as error:
        raise GuestError(f"domain {domain.name()}: {error}") from None
    return Counter(identity, int(stats[TX_BYTES]))


def outbound_rates(domain: Any, device: str) -> tuple[int | None, int | None]:
    """(live, persistent) outbound average in kB/s, 0 for none; None where the domain has no such
    definition (not running; transient)."""
    libvirt = _libvirt()
    rates: list[int | None] = []
    for wanted, flag in (
        (domain.isActive(), libvirt.VIR_DOMAIN_AFFECT_LIVE),
        (domain.isPersistent(), libvirt.VIR_DOMAIN_AFFECT_CONFIG),
    ):
        if not wanted:
            rates.append(None)
            continue
        try:
            rates.append(int(domain.interfaceParameters(device, flag).get(OUTBOUND_AVERAGE, 0)))
        except libvirt.libvirtError as error:
            raise GuestError(f"domain {domain.name()}: {error}") from None
    return rates[0], rates[1]


def set_outbound(domain: Any, device: str, kbytes_s: int, live: bool, persistent: bool) -> list[str]:
    """Set the outbound average where asked; returns the errors (empty when all took).

    Two calls: libvirt (9.0) refuses AFFECT_LIVE|AFFECT_CONFIG together for interface
    parameters ("mutually exclusive"). The persistent definition is set even when the live change
    fails (tc refused it): the guest is then throttled from its next start, and the failure is
    reported.
    """
    libvirt = _libvirt()
    errors = []
    for wanted, flag, where in (
        (live, libvirt.VIR_DOMAIN_AFFECT_LIVE, "live"),
        (persistent, libvirt.VIR_DOMAIN_AFFECT_CONFIG, "persistent"),
    ):
        if not wanted:
            continue
        try:
            domain.setInterfaceParameters(device, {OUTBOUND_AVERAGE: kbytes_s}, flag)
        except libvirt.libvirtError as error:
            errors.append(f"domain {domain.name()}: {where} outbound {kbytes_s} kB/s: {error}")
    return errors
