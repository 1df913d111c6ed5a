"""The port filter enforced, end to end: a tiny VM under qemu emulation with a guest's filter,
and a peer in the same private network namespace. Each promise is switched by redefining the
filter only (through the dynamic provider's update), as `pulumi up` does; the VM keeps running.

The VM is tiny_vm.py's (a Debian kernel with a busybox initramfs, unpacked by
scripts/setup.d/40-libvirt.sh): it serves HTTP on 80, on 445 (a sensitive port) and on 8080 and,
every second, connects to the peer on 25 and 587, to one peer address with its own source and to
another through a route whose source is a spoofed address. The peer logs every connection it
accepts with its source.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vpsfleet_infra import identity
from vpsfleet_infra.nwfilter import NwFilterProvider

from tests.pulumi.fleets import fleet, with_guest
from tests.pulumi.harness import NOW
from tests.pulumi.libvirtd import Libvirtd
from tests.pulumi.tiny_vm import VM_FILES, domain_xml, initramfs, missing
from vpsfleet.filters import guest_filter_xml
from vpsfleet.fleet import Fleet
from vpsfleet.schema import GuestState, Mitigation, SmtpBlock

pytestmark = [pytest.mark.libvirt, pytest.mark.slow]

GUEST = "bravo-vps"  # 198.51.100.12 in the lab fleet
BRIDGE = "br-lab"
PEER = "198.51.100.50"  # the peer's own address: outside the management network
PEER_SPOOF_TARGET = "198.51.100.60"  # the guest reaches it with a spoofed source
PEER_CONTROL = "198.51.100.61"  # the guest reaches it with its own source
PEER_MANAGEMENT = "198.51.100.241"  # inside the test's management network
MANAGEMENT = ipaddress.IPv4Network("198.51.100.240/28")
SPOOFED = "198.51.100.99"

PEER_SERVER = """
import socket, sys, threading
log = open(sys.argv[1], "a", buffering=1)
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64)
    while True:
        conn, (src, _) = s.accept()
        log.write(f"{port} {src} {conn.getsockname()[0]}\\n"); conn.close()
for port in (25, 587, 80):
    threading.Thread(target=serve, args=(port,), daemon=True).start()
threading.Event().wait()
"""

CONNECT = """
import socket, sys
s = socket.socket(); s.settimeout(3); s.bind((sys.argv[1], 0))
try:
    s.connect((sys.argv[2], int(sys.argv[3])))
except OSError:
    sys.exit(1)
"""


PINGS = """
import os, select, socket, struct, sys, time
def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
target, count = sys.argv[1], int(sys.argv[2])
for ident in range(1, count + 1):  # one ICMP flow per identifier
    header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
    sock.sendto(struct.pack("!BBHHH", 8, 0, checksum(header + b"vf"), ident, 1) + b"vf",
                (target, 0))
replied, deadline = set(), time.monotonic() + 4
while time.monotonic() < deadline:
    if select.select([sock], [], [], 0.2)[0]:
        packet, (src, _) = sock.recvfrom(2048)
        icmp = packet[(packet[0] & 0x0F) * 4:]
        if src == target and icmp[0] == 0:
            replied.add(struct.unpack("!H", icmp[4:6])[0])
print(len(replied))
"""


@dataclasses.dataclass
class Vm:
    daemon: Libvirtd
    fleet: Fleet
    domain: Any
    console: Path
    peer_log: Path

    def run(self, *command: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.daemon.nsenter(), *command], capture_output=True,
                              text=True, timeout=timeout, check=False)

    def connects(self, source: str, port: int) -> bool:
        """Whether `source` on the peer's side opens a TCP connection to the guest's port."""
        guest = self.fleet.guest(GUEST)
        assert guest is not None
        done = self.run(sys.executable, "-c", CONNECT, source, str(guest.ipv4), str(port))
        return done.returncode == 0

    def peer_saw(self, since: int) -> list[tuple[int, str, str]]:
        lines = self.peer_log.read_text().splitlines()[since:]
        return [(int(port), src, dst) for port, src, dst in (line.split() for line in lines)]

    def mark(self) -> int:
        return len(self.peer_log.read_text().splitlines())

    def apply(self, f: Fleet) -> None:
        """What `pulumi up` does for this guest on a state change: the filter's update."""
        guest = f.guest(GUEST)
        assert guest is not None
        name = identity.filter_name(GUEST)
        xml = guest_filter_xml(f, guest, NOW)
        NwFilterProvider().update(name, {}, {"name": name, "uri": self.daemon.uri, "xml": xml})
        time.sleep(0.5)  # libvirt rebuilds the rules of the running guest's interface


@pytest.fixture(scope="module")
def vm(libvirtd: Libvirtd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vm]:
    import libvirt

    reason = missing()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("enforcement")
    lab = fleet("lab")
    provider = lab.provider.model_copy(update={"management_networks": [MANAGEMENT]})
    f = dataclasses.replace(lab, provider=provider)

    def ns(*command: str) -> None:
        subprocess.run([*libvirtd.nsenter(), *command], check=True, capture_output=True)

    ns("ip", "link", "add", BRIDGE, "type", "bridge")
    for address in (PEER, PEER_SPOOF_TARGET, PEER_CONTROL, PEER_MANAGEMENT):
        ns("ip", "addr", "add", f"{address}/24", "dev", BRIDGE)
    ns("ip", "link", "set", BRIDGE, "up")
    ns("ip", "link", "set", "lo", "up")
    ns("sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")
    # /sys is this machine's (nsenter does not remount it): ask `ip` inside the namespace.
    link = subprocess.run([*libvirtd.nsenter(), "ip", "-j", "link", "show", BRIDGE],
                          check=True, capture_output=True, text=True).stdout
    peer_mac = json.loads(link)[0]["address"]
    guest = f.guest(GUEST)
    assert guest is not None
    initrd = initramfs(work, {"ip": str(guest.ipv4), "spoofed": SPOOFED, "peer": PEER,
                               "spoof_target": PEER_SPOOF_TARGET, "control": PEER_CONTROL,
                               "peer_mac": peer_mac})
    peer_log = work / "peer.log"
    peer_log.touch()
    peer = subprocess.Popen([*libvirtd.nsenter(), sys.executable, "-c", PEER_SERVER,
                             str(peer_log)], start_new_session=True)
    console = work / "console.log"
    conn = libvirt.open(libvirtd.uri)
    domain = None
    try:
        provider_ = NwFilterProvider()
        name = identity.filter_name(GUEST)
        provider_.create({"name": name, "uri": libvirtd.uri,
                          "xml": guest_filter_xml(f, guest, NOW)})
        xml = domain_xml(f, GUEST, work, kernel=VM_FILES / "vmlinuz", initrd=initrd,
                         console=console, bridge=BRIDGE)
        domain = conn.createXML(xml, 0)
        deadline = time.monotonic() + 180
        while "VF-READY" not in (console.read_text(errors="replace") if console.exists() else ""):
            if time.monotonic() > deadline:
                pytest.fail(f"the test VM did not boot in 180 s:\n{console.read_text()[-2000:]}")
            time.sleep(1)
        yield Vm(daemon=libvirtd, fleet=f, domain=domain, console=console, peer_log=peer_log)
    finally:
        if domain is not None:
            domain.destroy()
        peer.terminate()
        peer.wait(timeout=10)
        NwFilterProvider().delete(identity.filter_name(GUEST),
                                  {"name": identity.filter_name(GUEST), "uri": libvirtd.uri})
        conn.close()
        subprocess.run([*libvirtd.nsenter(), "ip", "link", "del", BRIDGE], check=False)


def wait_for(vm: Vm, since: int, wanted: Any, seconds: float = 20) -> list[tuple[int, str, str]]:
    """The peer's log from `since`, once `wanted(entries)` holds or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        seen = vm.peer_saw(since)
        if wanted(seen) or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


def test_sensitive_inbound_port_is_unreachable_while_others_answer(vm: Vm) -> None:
    vm.apply(vm.fleet)
    assert vm.connects(PEER, 80)
    assert not vm.connects(PEER, 445)


def test_outbound_smtp_is_dropped_exactly_while_the_block_is_active(vm: Vm) -> None:
    guest_ip = str(vm.fleet.guest(GUEST).ipv4)  # type: ignore[union-attr]

    def smtp(entries: list[tuple[int, str, str]]) -> bool:
        return any(port == 25 and src == guest_ip for port, src, _ in entries)

    def submission(entries: list[tuple[int, str, str]]) -> bool:
        return sum(port == 587 and src == guest_ip for port, src, _ in entries) >= 3

    vm.apply(vm.fleet)
    assert smtp(wait_for(vm, vm.mark(), smtp)), "port 25 reaches the peer before the block"
    block = SmtpBlock(blocked_at=NOW - dt_hours(1), until=NOW + dt_hours(1), reason="spam")
    vm.apply(with_guest(vm.fleet, GUEST, smtp_blocks=[block]))
    during = wait_for(vm, vm.mark(), submission)
    assert submission(during), "submission (587) still works during the block"
    assert not smtp(during), "port 25 is dropped during the block"
    lifted = block.model_copy(update={"lifted_at": NOW - dt_hours(0.5), "lift_reason": "ok"})
    vm.apply(with_guest(vm.fleet, GUEST, smtp_blocks=[lifted]))
    assert smtp(wait_for(vm, vm.mark(), smtp)), "port 25 reaches the peer again once lifted"


def test_a_spoofed_source_address_never_leaves_the_guest(vm: Vm) -> None:
    guest_ip = str(vm.fleet.guest(GUEST).ipv4)  # type: ignore[union-attr]
    vm.apply(vm.fleet)
    since = vm.mark()

    def control(entries: list[tuple[int, str, str]]) -> bool:
        return sum(dst == PEER_CONTROL and src == guest_ip for _, src, dst in entries) >= 3

    seen = wait_for(vm, since, control)
    assert control(seen), "the guest's own address gets through (control)"
    assert not [entry for entry in seen if entry[1] == SPOOFED or entry[2] == PEER_SPOOF_TARGET]


def test_suspension_cuts_the_guest_off_but_its_vm_keeps_running(vm: Vm) -> None:
    import libvirt

    guest_ip = str(vm.fleet.guest(GUEST).ipv4)  # type: ignore[union-attr]
    vm.apply(with_guest(vm.fleet, GUEST, state=GuestState.SUSPENDED))
    assert not vm.connects(PEER, 80), "the Internet side cannot reach a suspended guest"
    assert vm.connects(PEER_MANAGEMENT, 80), "the management path still can"
    assert not vm.connects(PEER_MANAGEMENT, 445), "but not to a sensitive port"
    since = vm.mark()
    time.sleep(6)
    assert not [e for e in vm.peer_saw(since) if e[1] == guest_ip and e[2] != PEER_MANAGEMENT]
    assert vm.domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    vm.apply(vm.fleet)
    assert vm.connects(PEER, 80), "resumed: reachable again"


def dt_hours(hours: float) -> dt.timedelta:
    return dt.timedelta(hours=hours)


def test_without_the_filters_rules_the_same_probes_get_through(vm: Vm) -> None:
    """The control: the promises above hold because of the filter, not of the test's setup."""
    from vpsfleet.filters import filter_uuid, render_filter

    name = identity.filter_name(GUEST)
    empty = render_filter(name, [])
    assert filter_uuid(name) in empty
    NwFilterProvider().update(name, {}, {"name": name, "uri": vm.daemon.uri, "xml": empty})
    time.sleep(0.5)
    try:
        assert vm.connects(PEER, 445)
        seen = wait_for(vm, vm.mark(), lambda entries: any(
            src == SPOOFED and dst == PEER_SPOOF_TARGET for _, src, dst in entries))
        assert any(src == SPOOFED and dst == PEER_SPOOF_TARGET for _, src, dst in seen)
    finally:
        vm.apply(vm.fleet)


def test_mitigation_leaves_only_the_profiles_ports_open_to_new_inbound_flows(vm: Vm) -> None:
    guest_ip = str(vm.fleet.guest(GUEST).ipv4)  # type: ignore[union-attr]
    vm.apply(vm.fleet)
    assert vm.connects(PEER, 8080), "open before the mitigation"
    mitigation = Mitigation(since=NOW - dt_hours(1), profile="web")  # 22, 80, 443
    vm.apply(with_guest(vm.fleet, GUEST, mitigation=mitigation))
    try:
        assert vm.connects(PEER, 80)
        assert not vm.connects(PEER, 8080)

        def replies(entries: list[tuple[int, str, str]]) -> bool:
            # The peer accepts only once the guest got its SYN-ACK: replies still come in.
            return sum(port == 587 and src == guest_ip for port, src, _ in entries) >= 2

        assert replies(wait_for(vm, vm.mark(), replies))
    finally:
        vm.apply(vm.fleet)
    assert vm.connects(PEER, 8080), "open again once the mitigation is over"


def test_icmp_flows_from_one_peer_are_capped_by_the_policy(vm: Vm) -> None:
    """M5: nwfilter caps concurrent flows (conntrack), not packet rates (docs/port-filters.md).
    An ICMP flow stays tracked for 30 s after the control round: the capped round comes from
    another peer address, whose flows are counted afresh."""
    guest = vm.fleet.guest(GUEST)
    assert guest is not None
    cap = vm.fleet.policy.filter.icmp_connlimit
    name = identity.filter_name(GUEST)
    from vpsfleet.filters import render_filter

    NwFilterProvider().update(name, {}, {"name": name, "uri": vm.daemon.uri,
                                         "xml": render_filter(name, [])})
    try:
        # Control, without rules: every flow gets its reply.
        done = vm.run(sys.executable, "-c", PINGS, str(guest.ipv4), str(cap + 5))
        assert done.stdout.split() == [str(cap + 5)], done.stderr
    finally:
        vm.apply(vm.fleet)
    # Other source: the control's flows from PEER are still tracked for a while.
    done = vm.run(sys.executable, "-c", PINGS.replace("socket.IPPROTO_ICMP)",
                  "socket.IPPROTO_ICMP); sock.bind(('" + PEER_MANAGEMENT + "', 0))"),
                  str(guest.ipv4), str(cap + 5))
    assert done.stdout.split() == [str(cap)], f"the policy allows {cap} ICMP flows: {done}"
