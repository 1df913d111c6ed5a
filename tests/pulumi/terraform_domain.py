"""The domain XML that terraform-provider-libvirt 0.8.1 (bridged by pulumi-libvirt 0.5.4) hands
to the domain XSLT: its defaults (spice graphics, virtio rng, pae/acpi/apic) and what our program
sets (volume disk, cloud-init cdrom, bridged interface with our MAC, serial console)."""

from __future__ import annotations


def domain_xml(*, name: str, domain_type: str, vcpu: int, memory_mib: int, volume: str,
               seed: str, bridge: str, mac: str) -> str:
    return f"""<domain type="{domain_type}">
  <name>{name}</name>
  <memory unit="MiB">{memory_mib}</memory>
  <vcpu placement="static">{vcpu}</vcpu>
  <os>
    <type arch="x86_64" machine="pc">hvm</type>
  </os>
  <features>
    <pae></pae>
    <acpi></acpi>
    <apic></apic>
  </features>
  <cpu></cpu>
  <devices>
    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2"></driver>
      <source file="{volume}"></source>
      <target dev="vda" bus="virtio"></target>
    </disk>
    <disk type="file" device="cdrom">
      <driver name="qemu" type="raw"></driver>
      <source file="{seed}"></source>
      <target dev="hdd" bus="ide"></target>
    </disk>
    <interface type="bridge">
      <mac address="{mac.upper()}"></mac>
      <source bridge="{bridge}"></source>
      <model type="virtio"></model>
    </interface>
    <console type="pty">
      <target type="serial" port="0"></target>
    </console>
    <graphics type="spice" autoport="yes">
      <listen type="none"></listen>
    </graphics>
    <rng model="virtio">
      <backend model="random">/dev/urandom</backend>
    </rng>
  </devices>
</domain>
"""
