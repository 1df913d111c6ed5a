"""The XSLT that terraform-provider-libvirt applies to the domain XML at creation (M5, M8).

The provider has no attribute for an interface's nwfilter reference, its bandwidth or its host
side name, so the XSLT adds them to the interface that carries the guest's MAC. It runs once, at
creation, through `xsltproc` on the machine running `pulumi up`; the provider never reads back
what it added, so live bandwidth changes (the host's quota job, `vpsfleet_agents/traffic`,
docs/traffic-quota.md) are no drift.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr


def kilobytes_per_second(mbit_per_second: int) -> int:
    """libvirt's <bandwidth> counts kilobytes (1000 bytes) per second: 100 Mbit/s = 12500."""
    return mbit_per_second * 1000 // 8


def interface_xslt(*, mac: str, interface: str, filter_name: str, ipv4: str,
                   bandwidth_mbps: int) -> str:
    rate = kilobytes_per_second(bandwidth_mbps)
    # The provider may write the MAC in either case: compare in lower case (XSLT 1.0).
    replaced = "self::target or self::filterref or self::bandwidth"
    mac_of_interface = "translate(mac/@address, 'ABCDEF', 'abcdef')"
    match = f"/domain/devices/interface[{mac_of_interface} = '{mac.lower()}']"
    return f"""<?xml version="1.0" ?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output omit-xml-declaration="yes" indent="yes"/>
  <xsl:template match="node()|@*">
    <xsl:copy><xsl:apply-templates select="node()|@*"/></xsl:copy>
  </xsl:template>
  <xsl:template match={quoteattr(match)}>
    <xsl:copy>
      <xsl:apply-templates select="@*|node()[not({replaced})]"/>
      <target dev={quoteattr(interface)}/>
      <filterref filter={quoteattr(filter_name)}>
        <parameter name="IP" value={quoteattr(ipv4)}/>
      </filterref>
      <bandwidth>
        <inbound average="{rate}"/>
        <outbound average="{rate}"/>
      </bandwidth>
    </xsl:copy>
  </xsl:template>
</xsl:stylesheet>
"""
