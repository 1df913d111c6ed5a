"""What the program hands to libvirt, against a real libvirtd in a private network namespace:
the nwfilter dynamic provider's create/diff/update/delete, every example filter, and the
domain XSLT run through xsltproc, validated and defined."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from vpsfleet_infra import identity
from vpsfleet_infra.domain_xml import interface_xslt
from vpsfleet_infra.nwfilter import NwFilterProvider

from tests.pulumi.fleets import fleet, with_guest
from tests.pulumi.harness import NOW  # also puts pulumi/ on sys.path
from tests.pulumi.libvirtd import Libvirtd
from tests.pulumi.terraform_domain import domain_xml
from vpsfleet.filters import guest_filter_xml
from vpsfleet.schema import GuestState, Mitigation, SmtpBlock

libvirt: Any = pytest.importorskip("libvirt")

pytestmark = pytest.mark.libvirt
GUEST = "bravo-vps"


def filters_on(uri: str) -> dict[str, str]:
    conn = libvirt.open(uri)
    try:
        return {name: conn.nwfilterLookupByName(name).XMLDesc(0) for name in conn.listNWFilters()}
    finally:
        conn.close()


def props(uri: str, xml: str, name: str = f"vpsfleet-{GUEST}") -> dict[str, Any]:
    return {"name": name, "uri": uri, "xml": xml}


def lab_filter(**changes: Any) -> str:
    f = with_guest(fleet("lab"), GUEST, **changes) if changes else fleet("lab")
    guest = f.guest(GUEST)
    assert guest is not None
    return guest_filter_xml(f, guest, NOW)


def smtp_rule_count(xml: str) -> int:
    root = ET.fromstring(xml)
    return sum(1 for ip in root.iter("ip") if ip.get("dstportstart") == "25")


def test_nwfilter_provider_creates_updates_and_deletes_the_filter(libvirtd: Libvirtd) -> None:
    provider = NwFilterProvider()
    plain = lab_filter()
    blocked = lab_filter(smtp_blocks=[SmtpBlock(blocked_at=NOW, until=None, reason="spam")])
    name = f"vpsfleet-{GUEST}"

    created = provider.create(props(libvirtd.uri, plain))
    assert created.id == name and created.outs == props(libvirtd.uri, plain)
    assert smtp_rule_count(filters_on(libvirtd.uri)[name]) == 0

    diff = provider.diff(name, props(libvirtd.uri, plain), props(libvirtd.uri, blocked))
    assert diff.changes and not diff.replaces
    updated = provider.update(name, props(libvirtd.uri, plain), props(libvirtd.uri, blocked))
    assert updated.outs == props(libvirtd.uri, blocked)
    assert smtp_rule_count(filters_on(libvirtd.uri)[name]) == 1

    assert provider.read(name, props(libvirtd.uri, blocked)).id == name
    provider.delete(name, props(libvirtd.uri, blocked))
    assert name not in filters_on(libvirtd.uri)
    assert provider.read(name, props(libvirtd.uri, blocked)).id is None


def test_nwfilter_create_and_delete_are_idempotent(libvirtd: Libvirtd) -> None:
    provider = NwFilterProvider()
    xml = lab_filter()
    name = f"vpsfleet-{GUEST}"
    provider.create(props(libvirtd.uri, xml))
    provider.create(props(libvirtd.uri, xml))  # e.g. a retried `pulumi up`
    assert list(filters_on(libvirtd.uri)).count(name) == 1
    provider.delete(name, props(libvirtd.uri, xml))
    provider.delete(name, props(libvirtd.uri, xml))
    assert name not in filters_on(libvirtd.uri)


def test_nwfilter_diff_replaces_on_another_host_or_name() -> None:
    provider = NwFilterProvider()
    old = props("qemu:///system", "<filter/>")
    assert provider.diff("x", old, dict(old)).changes is False
    moved = provider.diff("x", old, {**old, "uri": "qemu+ssh://a@b/system?knownhosts=k"})
    assert moved.replaces == ["uri"] and moved.delete_before_replace


VARIANTS: dict[str, dict[str, Any]] = {
    "as is": {},
    "smtp block": {"smtp_blocks": [SmtpBlock(blocked_at=NOW, until=None, reason="spam")]},
    "suspended": {"state": GuestState.SUSPENDED},
    "mitigation": {"mitigation": Mitigation(since=NOW, profile="strict")},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_example_filter_is_valid_for_libvirt(libvirtd: Libvirtd, tmp_path: Path,
                                                   variant: str) -> None:
    prod = fleet("example-production")
    conn = libvirt.open(libvirtd.uri)
    try:
        for guest in prod.live_guests():
            variant_fleet = with_guest(prod, guest.name, **VARIANTS[variant])
            changed = variant_fleet.guest(guest.name)
            assert changed is not None
            xml = guest_filter_xml(variant_fleet, changed, NOW)
            path = tmp_path / f"{guest.name}.xml"
            path.write_text(xml)
            subprocess.run(["virt-xml-validate", str(path), "nwfilter"], check=True,
                           capture_output=True)
            conn.nwfilterDefineXML(xml).undefine()
    finally:
        conn.close()


def test_domain_xslt_adds_target_filterref_and_bandwidth_and_libvirt_defines_it(
        libvirtd: Libvirtd, tmp_path: Path) -> None:
    lab = fleet("lab")
    guest, plan = lab.guest(GUEST), lab.plan("vps-s")
    host = lab.host("labhv1")
    assert guest is not None and plan is not None and host is not None
    mac, ifname = identity.mac_address(GUEST), identity.interface_name(GUEST)
    name = identity.filter_name(GUEST)
    source = tmp_path / "domain.xml"
    source.write_text(domain_xml(name=GUEST, domain_type="qemu", vcpu=plan.vcpu,
                                 memory_mib=plan.ram_mb, volume="/var/lib/libvirt/images/r.qcow2",
                                 seed="/var/lib/libvirt/images/s.iso", bridge=host.bridge, mac=mac))
    xslt = tmp_path / "interface.xsl"
    xslt.write_text(interface_xslt(mac=mac, interface=ifname, filter_name=name,
                                   ipv4=str(guest.ipv4), bandwidth_mbps=plan.bandwidth_mbps))
    result = subprocess.run(["xsltproc", str(xslt), str(source)], check=True,
                            capture_output=True, text=True).stdout
    transformed = tmp_path / "transformed.xml"
    transformed.write_text(result)
    subprocess.run(["virt-xml-validate", str(transformed), "domain"], check=True,
                   capture_output=True)

    conn = libvirt.open(libvirtd.uri)
    try:
        conn.nwfilterDefineXML(guest_filter_xml(lab, guest, NOW))
        domain = conn.defineXML(result)
        try:
            defined = ET.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        finally:
            domain.undefine()
        conn.nwfilterLookupByName(name).undefine()
    finally:
        conn.close()
    [nic] = defined.findall("devices/interface")
    assert nic.find("mac").get("address") == mac  # type: ignore[union-attr]
    assert nic.find("target").get("dev") == ifname  # type: ignore[union-attr]
    ref = nic.find("filterref")
    assert ref is not None and ref.get("filter") == name
    assert {p.get("name"): p.get("value") for p in ref.findall("parameter")} == \
        {"IP": str(guest.ipv4)}
    rate = str(plan.bandwidth_mbps * 1000 // 8)
    assert nic.find("bandwidth/inbound").get("average") == rate  # type: ignore[union-attr]
    assert nic.find("bandwidth/outbound").get("average") == rate  # type: ignore[union-attr]
    # The rest of the domain went through untouched.
    assert defined.findtext("vcpu") == str(plan.vcpu)
    assert len(defined.findall("devices/disk")) == 2


def test_xslt_leaves_other_interfaces_alone(tmp_path: Path) -> None:
    mac = identity.mac_address(GUEST)
    source = tmp_path / "domain.xml"
    source.write_text(domain_xml(name=GUEST, domain_type="qemu", vcpu=1, memory_mib=512,
                                 volume="/v", seed="/s", bridge="br0", mac="52:54:00:00:00:01"))
    xslt = tmp_path / "interface.xsl"
    xslt.write_text(interface_xslt(mac=mac, interface="vf-x", filter_name="f", ipv4="192.0.2.9",
                                   bandwidth_mbps=100))
    out = subprocess.run(["xsltproc", str(xslt), str(source)], check=True, capture_output=True,
                         text=True).stdout
    assert "filterref" not in out and "bandwidth" not in out
    assert ET.fromstring(out).find("devices/interface/source").get("bridge") == "br0"  # type: ignore[union-attr]
