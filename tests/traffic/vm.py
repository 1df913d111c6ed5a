"""A tiny VM under qemu emulation on a private libvirtd, whose outbound traffic the tests drive.

The VM is test_enforcement.py's (a Debian kernel, a busybox initramfs, its init); its address
answers pings, so the peer (the bridge's own address in the daemon's network namespace) makes
the guest send by pinging it with large payloads: each echo reply is the guest's outbound
traffic, and the replies the peer receives are what got through the guest's outbound limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.pulumi.libvirtd import Libvirtd
from tests.pulumi.tiny_vm import VM_FILES, initramfs, plain_domain_xml

DOMAIN = "traffic-vps"
DEVICE = "vft-guest"  # the interface's target on the host (never vnet*, which libvirt renames)
BRIDGE = "br-traffic"
GUEST_IP = "198.51.100.12"
PEER = "198.51.100.50"
PAYLOAD = 1400  # ICMP data bytes of each echo
# What one echo reply puts on the guest's interface: Ethernet 14 + IPv4 20 + ICMP 8 + payload.
FRAME = 14 + 20 + 8 + PAYLOAD

# Pings `count` echoes of PAYLOAD bytes at `rate` a second; prints the replies received and the
# seconds from the first echo to the last reply (or to the end of the wait).
PINGER = """
import select, socket, struct, sys, time
def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF
target, count, rate, size = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
payload = bytes(size)
replied, start, last = set(), time.monotonic(), None
def drain(until):
    global last
    while True:
        wait = until - time.monotonic()
        if wait <= 0 or not select.select([sock], [], [], wait)[0]:
            return
        packet, (src, _) = sock.recvfrom(65535)
        icmp = packet[(packet[0] & 0x0F) * 4:]
        if src == target and icmp[0] == 0 and icmp[4:6] == b"\\x7f\\x01":
            replied.add(struct.unpack("!H", icmp[6:8])[0]); last = time.monotonic()
for seq in range(count):
    header = struct.pack("!BBHHH", 8, 0, 0, 0x7F01, seq)
    sock.sendto(struct.pack("!BBHHH", 8, 0, checksum(header + payload), 0x7F01, seq) + payload,
                (target, 0))
    drain(start + (seq + 1) / rate)
drain(time.monotonic() + 2)
print(len(replied), (last or time.monotonic()) - start)
"""

# Sends `count` UDP datagrams of PAYLOAD bytes to a closed port of the guest: traffic *into* it.
UDP = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[2])):
    s.sendto(bytes(int(sys.argv[3])), (sys.argv[1], 9)); time.sleep(0.002)
"""

@dataclass
class Vm:
    daemon: Libvirtd
    conn: Any
    domain: Any
    console: Path

    def ns(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.daemon.nsenter(), *command], capture_output=True, text=True, timeout=timeout, check=False
        )

    def ping(self, count: int, rate: float) -> tuple[int, float]:
        """(replies received, seconds) for `count` echoes of PAYLOAD at `rate` a second."""
        done = self.ns(sys.executable, "-c", PINGER, GUEST_IP, str(count), str(rate), str(PAYLOAD))
        assert done.returncode == 0, done.stderr
        replies, seconds = done.stdout.split()
        return int(replies), float(seconds)

    def send_udp_in(self, count: int) -> None:
        done = self.ns(sys.executable, "-c", UDP, GUEST_IP, str(count), str(PAYLOAD))
        assert done.returncode == 0, done.stderr

    def boots(self) -> int:
        return (self.console.read_text(errors="replace") if self.console.exists() else "").count("VF-READY")

    def start(self) -> None:
        """Start the defined domain and wait until its init is up."""
        before = self.boots() if self.console.exists() else 0
        self.domain.create()
        deadline = time.monotonic() + 180
        while self.boots() <= before:
            if time.monotonic() > deadline:
                raise AssertionError(f"the VM did not boot in 180 s:\n{self.console.read_text()[-2000:]}")
            time.sleep(1)

    def restart(self) -> None:
        self.domain.destroy()
        self.start()

    def tc(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.ns("tc", *args)


def boot(daemon: Libvirtd, work: Path) -> Vm:
    """Define the domain persistently (a throttle is set live and persistent) and start it."""
    import libvirt

    def ns(*command: str) -> str:
        return subprocess.run(
            [*daemon.nsenter(), *command], check=True, capture_output=True, text=True
        ).stdout

    ns("ip", "link", "add", BRIDGE, "type", "bridge")
    ns("ip", "addr", "add", f"{PEER}/24", "dev", BRIDGE)
    ns("ip", "link", "set", BRIDGE, "up")
    ns("ip", "link", "set", "lo", "up")
    peer_mac = json.loads(ns("ip", "-j", "link", "show", BRIDGE))[0]["address"]
    # test_enforcement's init: its probes to these addresses are a few small packets a second.
    initrd = initramfs(
        work,
        {
            "ip": GUEST_IP,
            "spoofed": "198.51.100.99",
            "peer": PEER,
            "spoof_target": "198.51.100.60",
            "control": "198.51.100.61",
            "peer_mac": peer_mac,
        },
    )
    console = work / "console.log"
    conn = libvirt.open(daemon.uri)
    domain = conn.defineXML(
        plain_domain_xml(
            DOMAIN,
            kernel=VM_FILES / "vmlinuz",
            initrd=initrd,
            console=console,
            bridge=BRIDGE,
            interface=f'\n      <target dev="{DEVICE}"/>',
        )
    )
    vm = Vm(daemon=daemon, conn=conn, domain=domain, console=console)
    vm.start()
    return vm


def tear_down(vm: Vm) -> None:
    if vm.domain.isActive():
        vm.domain.destroy()
    vm.domain.undefine()
    vm.conn.close()
    vm.ns("ip", "link", "del", BRIDGE)
