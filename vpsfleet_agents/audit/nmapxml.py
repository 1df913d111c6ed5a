"""nmap's XML output (`-oX`), read with the standard library. The file holds what guests sent
(banners, service fingerprints): it is hostile input. A DTD other than nmap's one-line
`<!DOCTYPE nmaprun>` and every entity declaration are refused before parsing; defusedxml
(Debian's python3-defusedxml, installed by role monitor) parses it when present."""

from __future__ import annotations

import importlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

NMAP_DOCTYPE = re.compile(rb"<!DOCTYPE\s+nmaprun\s*>")
MAX_BYTES = 64 * 1024 * 1024


class NmapXmlError(Exception):
    """The XML is refused or unreadable; nothing from it is used."""


@dataclass(frozen=True)
class Service:
    name: str  # nmap's service name ("http-proxy", "irc", "openvpn"...), "" when unknown
    product: str
    version: str
    extrainfo: str
    tunnel: str  # "ssl" when nmap saw TLS first
    method: str  # "probed" (a probe matched) or "table" (guessed from the port number)
    fingerprint: str  # servicefp: the raw answer nmap could not match, hostile bytes


@dataclass(frozen=True)
class Port:
    protocol: str
    port: int
    state: str  # "open", "open|filtered", "closed", "filtered"
    reason: str
    service: Service


@dataclass(frozen=True)
class Host:
    address: str
    state: str  # "up" / "down"
    ports: tuple[Port, ...]


@dataclass(frozen=True)
class Scan:
    args: str  # the command line nmap records
    hosts: tuple[Host, ...]
    finished: bool  # nmap wrote its <runstats><finished exit="success">


def _defused() -> Any:
    try:
        return importlib.import_module("defusedxml.ElementTree")
    except ImportError:
        return None


def guard(raw: bytes) -> bytes:
    """Refuse entity declarations and any DTD but nmap's own (billion laughs, external
    entities); return the document without its DOCTYPE line."""
    if len(raw) > MAX_BYTES:
        raise NmapXmlError(f"{len(raw)} bytes: larger than any scan of the fleet")
    if b"<!ENTITY" in raw.upper():
        raise NmapXmlError("an entity declaration: refused")
    stripped = NMAP_DOCTYPE.sub(b"", raw, count=1)
    if b"<!DOCTYPE" in stripped.upper():
        raise NmapXmlError("a DTD other than nmap's: refused")
    return stripped


def _root(raw: bytes) -> ET.Element:
    safe = guard(raw)
    defused = _defused()
    try:
        if defused is not None:
            root: ET.Element = defused.fromstring(safe, forbid_dtd=True)
            return root
        return ET.fromstring(safe)
    except ET.ParseError as error:
        raise NmapXmlError(f"not XML: {error}") from None
    except Exception as error:  # defusedxml's own refusals (DTDForbidden, EntitiesForbidden...)
        raise NmapXmlError(f"refused: {type(error).__name__}") from None


def _service(element: ET.Element | None) -> Service:
    if element is None:
        return Service("", "", "", "", "", "", "")
    get = element.attrib.get
    return Service(
        name=get("name", ""),
        product=get("product", ""),
        version=get("version", ""),
        extrainfo=get("extrainfo", ""),
        tunnel=get("tunnel", ""),
        method=get("method", ""),
        fingerprint=get("servicefp", ""),
    )


def _port(element: ET.Element) -> Port | None:
    protocol = element.attrib.get("protocol", "")
    number = element.attrib.get("portid", "")
    state = element.find("state")
    if protocol not in ("tcp", "udp") or not number.isdigit() or state is None:
        return None
    return Port(
        protocol=protocol,
        port=int(number),
        state=state.attrib.get("state", ""),
        reason=state.attrib.get("reason", ""),
        service=_service(element.find("service")),
    )


def parse(raw: bytes) -> Scan:
    root = _root(raw)
    if root.tag != "nmaprun":
        raise NmapXmlError(f"root element {root.tag!r}, not nmaprun")
    hosts: list[Host] = []
    for host in root.iter("host"):
        addresses = [
            a.attrib.get("addr", "") for a in host.findall("address") if a.attrib.get("addrtype") == "ipv4"
        ]
        if not addresses:
            continue
        status = host.find("status")
        ports = [p for p in (_port(e) for e in host.findall("ports/port")) if p is not None]
        hosts.append(
            Host(addresses[0], status.attrib.get("state", "") if status is not None else "", tuple(ports))
        )
    finished = root.find("runstats/finished")
    return Scan(
        args=root.attrib.get("args", ""),
        hosts=tuple(hosts),
        finished=finished is not None and finished.attrib.get("exit") == "success",
    )
