"""The tiny test VM: a Debian kernel with a busybox initramfs, booted under qemu emulation behind
a guest's port filter. Shared by test_enforcement.py (a private libvirtd), tests/traffic/vm.py and
role hypervisor's Molecule scenario (the libvirtd of its host container, on the role's bridge).

The kernel, the e1000 module and a static busybox are unpacked into .cache/vm by
scripts/setup.d/40-libvirt.sh. The guest serves HTTP on 80, on 445 (a sensitive port) and on
8080 and, every second, connects to the peer on 25 and 587, to one peer address with its own
source and to another through a route whose source is a spoofed address. It writes VF-READY on
its serial console once its servers are up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from vpsfleet_infra import identity
from vpsfleet_infra.domain_xml import interface_xslt

from vpsfleet.fleet import Fleet

VM_FILES = Path(__file__).resolve().parents[2] / ".cache" / "vm"
READY = "VF-READY"

INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
insmod /e1000.ko
ip link set lo up
ip link set eth0 up
ip addr add {ip}/24 dev eth0
ip addr add {spoofed}/32 dev eth0
ip route add {spoof_target}/32 dev eth0 src {spoofed}
ip neigh replace {spoof_target} lladdr {peer_mac} dev eth0
mkdir -p /www && echo ok > /www/index.html
httpd -p 80 -h /www
httpd -p 445 -h /www
httpd -p 8080 -h /www
echo VF-READY > /dev/ttyS0
while true; do
  for target in {peer}:25 {peer}:587 {spoof_target}:80 {control}:80; do
    echo probe | timeout 2 nc -w 1 ${{target%:*}} ${{target#*:}} >/dev/null 2>&1
  done
  sleep 1
done
"""


def missing() -> str | None:
    """Why the VM cannot boot here, or None."""
    if not (VM_FILES / "vmlinuz").is_file():
        return f"no test VM kernel in {VM_FILES}: run scripts/setup.sh (setup.d/40-libvirt.sh)"
    return None


def initramfs(work: Path, values: dict[str, str]) -> Path:
    """The guest's initramfs in `work`; `values` fill INIT (ip, spoofed, peer, spoof_target,
    control, peer_mac)."""
    root = work / "initramfs"
    (root / "bin").mkdir(parents=True)
    for folder in ("proc", "sys", "dev", "tmp"):
        (root / folder).mkdir()
    shutil.copy(VM_FILES / "busybox", root / "bin" / "busybox")
    shutil.copy(VM_FILES / "e1000.ko", root / "e1000.ko")
    init = root / "init"
    init.write_text(INIT.format(**values))
    init.chmod(0o755)
    os.mknod(root / "dev" / "console", 0o600 | 0o020000, os.makedev(5, 1))
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    image = work / "initrd.cpio"
    with image.open("wb") as out:
        subprocess.run(
            [str(VM_FILES / "busybox"), "cpio", "-o", "-H", "newc"],
            cwd=root,
            input="\n".join(files).encode(),
            stdout=out,
            check=True,
        )
    return image


def plain_domain_xml(
    name: str,
    *,
    kernel: Path | str,
    initrd: Path | str,
    console: Path | str,
    bridge: str,
    interface: str = "",
) -> str:
    """The tiny VM's domain (direct kernel boot, one e1000 on `bridge`, its console in a file
    appended to across boots); `interface`: extra elements of the interface (a MAC, a target)."""
    return f"""<domain type="qemu">
  <name>{name}</name>
  <memory unit="MiB">192</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch="x86_64" machine="pc">hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet</cmdline>
  </os>
  <devices>
    <interface type="bridge">{interface}
      <source bridge="{bridge}"/>
      <model type="e1000"/>
    </interface>
    <serial type="file">
      <source path="{console}" append="on"/>
      <target port="0"/>
    </serial>
  </devices>
</domain>
"""


def domain_xml(
    f: Fleet,
    guest_name: str,
    work: Path,
    *,
    kernel: Path | str,
    initrd: Path | str,
    console: Path | str,
    bridge: str,
) -> str:
    """The guest's domain as terraform-provider-libvirt would hand it over (direct kernel boot
    here), run through our XSLT with xsltproc: the interface on `bridge`, with the fleet's tap
    name and the `<filterref>` to the guest's nwfilter. `kernel`, `initrd` and `console` are
    paths on the machine whose libvirtd starts it."""
    guest = f.guest(guest_name)
    assert guest is not None
    plan = f.plan(guest.plan)
    assert plan is not None
    mac = identity.mac_address(guest_name)
    source = work / "domain.xml"
    source.write_text(
        plain_domain_xml(
            guest_name,
            kernel=kernel,
            initrd=initrd,
            console=console,
            bridge=bridge,
            interface=f'\n      <mac address="{mac}"/>',
        )
    )
    xslt = work / "interface.xsl"
    xslt.write_text(
        interface_xslt(
            mac=mac,
            interface=identity.interface_name(guest_name),
            filter_name=identity.filter_name(guest_name),
            ipv4=str(guest.ipv4),
            bandwidth_mbps=plan.bandwidth_mbps,
        )
    )
    result = subprocess.run(
        ["xsltproc", str(xslt), str(source)], check=True, capture_output=True, text=True
    ).stdout
    # This machine's kernel has no sch_sfq, which libvirt's <bandwidth> needs: shaping is
    # checked by test_libvirt.py (validated and defined), not enforced here.
    start, end = result.index("<bandwidth>"), result.index("</bandwidth>") + len("</bandwidth>")
    return result[:start] + result[end:]
