"""A guest's nwfilter really filters bridged traffic on the role's bridge, and only because of the
role's br_netfilter settings (issue 16).

The tiny test VM of tests/pulumi/tiny_vm.py (a Debian kernel, a busybox initramfs, qemu
emulation) boots on hv-role-host's libvirtd, on the role's bridge, behind the filter the fleet
gives a guest under mitigation: vpsfleet's own rendering (vpsfleet/filters.py) of the lab fleet's
bravo-vps with the `web` profile, defined as the Pulumi dynamic provider defines it, and a domain
whose interface went through the Pulumi program's XSLT (tap name, `<filterref>` with the guest's
IPv4). The guest serves 80, 445 and 8080. A peer in a network namespace of the container,
attached to the bridge by a veth, opens TCP connections to it:

- 80: admitted (in the mitigation profile, not a sensitive port);
- 8080: refused by the filter's iptables (layer-3) rules, the mitigation's "other inbound flows";
- 445: refused by its ebtables (layer-2) rules, a sensitive port.

With the role's settings the filter holds. With `net.bridge.bridge-nf-call-{iptables,ip6tables,
arptables}` at 0 in the container's network namespace (a host without the role), bridged frames
skip iptables: 8080 answers, while 445 stays refused (ebtables needs no br_netfilter), as
docs/port-filters.md says. Restoring the role's values (the command of its udev rule) refuses
8080 again. These sysctls are per network namespace on this kernel (checked before any is
written), so the container's are changed and this machine's are not.

The VM's files are made on this machine and put into the container with `podman cp`: test
provisioning, not a production path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(os.environ.get("VPSFLEET_ROOT", Path(__file__).resolve().parents[6]))
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.pulumi.fleets import fleet, with_guest  # noqa: E402
from tests.pulumi.tiny_vm import READY, VM_FILES, domain_xml, initramfs, missing  # noqa: E402
from vpsfleet.filters import guest_filter_xml, inbound_dropped_ports, parse_port  # noqa: E402
from vpsfleet.fleet import Fleet  # noqa: E402
from vpsfleet.schema import Mitigation  # noqa: E402

testinfra_hosts = ["hv-role-host"]

CONTAINER = "hv-role-host"
VIRSH = "virsh --connect qemu:///system"
BRIDGE = "br-hvtest"  # molecule.yml's vpsfleet_bridge
GUEST = "bravo-vps"  # 198.51.100.12 in the lab fleet
PROFILE = "web"
WORK = "/var/tmp/vpsfleet-vm-filter"  # in the container
PEER_NS = "hvb-peer"
PEER_PORT = "hvb-peer-port"
PEER = "198.51.100.50"
ADMITTED, LAYER3_REFUSED, LAYER2_REFUSED = 80, 8080, 445
KEYS = [f"net.bridge.bridge-nf-call-{table}" for table in ("iptables", "ip6tables", "arptables")]
ROLE_SYSCTL_FILE = "/etc/sysctl.d/60-vpsfleet-hypervisor.conf"
ROLE_UDEV_RULE = "/etc/udev/rules.d/60-vpsfleet-bridge-sysctl.rules"
BOOT_SECONDS = 180

# From the peer: each port "open", "no answer" (dropped: 3 s without a reply) or "reset".
PROBE = """
import concurrent.futures, json, socket, sys
def probe(port):
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((sys.argv[1], port)); return "open"
    except socket.timeout:
        return "no answer"
    except ConnectionRefusedError:
        return "reset"
    except OSError as error:
        return str(error)
    finally:
        s.close()
ports = [int(p) for p in sys.argv[2:]]
with concurrent.futures.ThreadPoolExecutor(len(ports)) as pool:
    print(json.dumps(dict(zip(map(str, ports), pool.map(probe, ports)))))
"""

PEER_UP = f"""set -e
ip netns add {PEER_NS}
ip link add {PEER_PORT} type veth peer name eth0 netns {PEER_NS}
ip link set {PEER_PORT} master {BRIDGE} up
ip -n {PEER_NS} addr add {PEER}/24 dev eth0
ip -n {PEER_NS} link set eth0 up
ip -n {PEER_NS} link set lo up
"""


@dataclasses.dataclass
class Vm:
    host: Any
    fleet: Fleet
    ipv4: str
    boot_seconds: float

    def probe(self, *ports: int) -> dict[int, str]:
        done = self.host.run(
            "nsenter --net=/run/netns/%s python3 -c %s %s " + " ".join(["%s"] * len(ports)),
            PEER_NS,
            PROBE,
            self.ipv4,
            *map(str, ports),
        )
        assert done.rc == 0, done.stderr
        return {int(port): result for port, result in json.loads(done.stdout).items()}


def sysctls(host: Any) -> dict[str, str]:
    """The bridge sysctls of the container's network namespace."""
    return {key: host.check_output("sysctl -n %s", key) for key in KEYS}


def restore_role_values(host: Any) -> None:
    """What the role left: its sysctl file, applied (the finalizer's fallback)."""
    host.run("sysctl -q -p %s", ROLE_SYSCTL_FILE)


def clean(host: Any) -> None:
    host.run(f"{VIRSH} destroy {GUEST}")
    host.run(f"{VIRSH} nwfilter-undefine vpsfleet-{GUEST}")
    host.run(f"ip netns del {PEER_NS}; ip link del {PEER_PORT}; rm -rf {WORK}")


def podman_cp(source: Path, destination: str) -> None:
    subprocess.run(["podman", "cp", str(source), f"{CONTAINER}:{destination}"], check=True)


@pytest.fixture(scope="module")
def vm(host: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vm]:
    reason = missing()
    if reason:
        pytest.fail(reason)
    now = dt.datetime.now(dt.UTC)
    mitigation = Mitigation(since=now - dt.timedelta(hours=1), profile=PROFILE)
    f = with_guest(fleet("lab"), GUEST, mitigation=mitigation)
    guest = f.guest(GUEST)
    assert guest is not None
    work = tmp_path_factory.mktemp("vm-filter")
    clean(host)  # what an interrupted run may have left
    try:
        up = host.run(PEER_UP)
        assert up.rc == 0, up.stderr
        peer_mac = json.loads(host.check_output("ip -j -n %s link show eth0", PEER_NS))[0]["address"]
        values = {
            "ip": str(guest.ipv4),
            "peer": PEER,
            # The init's spoofing probes: addresses nobody has here.
            "spoofed": "198.51.100.99",
            "spoof_target": "198.51.100.60",
            "control": "198.51.100.61",
            "peer_mac": peer_mac,
        }
        initrd = initramfs(work, values)
        (work / "filter.xml").write_text(guest_filter_xml(f, guest, now))
        (work / "guest.xml").write_text(
            domain_xml(
                f,
                GUEST,
                work,
                kernel=f"{WORK}/vmlinuz",
                initrd=f"{WORK}/initrd.cpio",
                console=f"{WORK}/console.log",
                bridge=BRIDGE,
            )
        )
        host.run_expect([0], "install -d -m 0755 %s", WORK)
        for source in (VM_FILES / "vmlinuz", initrd, work / "filter.xml", work / "guest.xml"):
            podman_cp(source, f"{WORK}/{source.name}")
        host.run_expect([0], "chmod 0644 %s/vmlinuz %s/initrd.cpio", WORK, WORK)
        defined = host.run(f"{VIRSH} nwfilter-define {WORK}/filter.xml")
        assert defined.rc == 0, defined.stderr
        started = time.monotonic()
        created = host.run(f"{VIRSH} create {WORK}/guest.xml")
        assert created.rc == 0, created.stderr
        while READY not in host.run("cat %s/console.log", WORK).stdout:
            if time.monotonic() - started > BOOT_SECONDS:
                console = host.run("tail -c 2000 %s/console.log", WORK).stdout
                pytest.fail(f"the test VM did not boot in {BOOT_SECONDS} s:\n{console}")
            time.sleep(1)
        yield Vm(host=host, fleet=f, ipv4=str(guest.ipv4), boot_seconds=time.monotonic() - started)
    finally:
        restore_role_values(host)
        clean(host)


def test_the_guest_runs_on_the_roles_bridge_behind_its_filter(host: Any, vm: Vm) -> None:
    xml = host.check_output(f"{VIRSH} dumpxml {GUEST}")
    assert f"<source bridge='{BRIDGE}'/>" in xml
    assert f"<filterref filter='vpsfleet-{GUEST}'>" in xml
    tap = re.search(r"<target dev='([^']+)'/>", xml)
    assert tap is not None and tap.group(1).startswith("vf-")
    assert tap.group(1) in host.check_output("ip -br link show master %s", BRIDGE)
    # The ports' roles come from the fleet, not from this test.
    guest = vm.fleet.guest(GUEST)
    assert guest is not None
    sensitive = inbound_dropped_ports(vm.fleet.policy.filter, guest)
    assert any(r.protocol == "tcp" and r.first <= LAYER2_REFUSED <= r.last for r in sensitive)
    assert not any(r.first <= port <= r.last for r in sensitive for port in (ADMITTED, LAYER3_REFUSED))
    profile = [parse_port(spec) for spec in vm.fleet.policy.mitigation.profiles[PROFILE]]
    assert any(r.protocol == "tcp" and r.first <= ADMITTED <= r.last for r in profile)
    assert not any(r.first <= LAYER3_REFUSED <= r.last for r in profile)
    print(f"test VM booted in {vm.boot_seconds:.1f} s")


def test_with_the_roles_settings_the_filter_holds_on_the_bridge(host: Any, vm: Vm) -> None:
    assert set(sysctls(host).values()) == {"1"}
    assert vm.probe(ADMITTED, LAYER3_REFUSED, LAYER2_REFUSED) == {
        ADMITTED: "open",
        LAYER3_REFUSED: "no answer",
        LAYER2_REFUSED: "no answer",
    }


def test_without_the_bridge_sysctls_the_filters_layer3_rules_are_bypassed(host: Any, vm: Vm) -> None:
    # Per network namespace on this kernel: the container's namespace is not this machine's and
    # has keys of its own (before Linux 5.3 they existed in the initial namespace only). Checked
    # before anything is written, so this machine's bridges are never touched.
    assert host.check_output("readlink /proc/1/ns/net") != os.readlink("/proc/self/ns/net")
    assert host.file("/proc/sys/net/bridge/bridge-nf-call-iptables").exists
    ours = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    ours_before = ours.read_text() if ours.exists() else None
    try:
        for key in KEYS:
            host.run_expect([0], "sysctl -q -w %s=0", key)
        assert set(sysctls(host).values()) == {"0"}
        if ours_before is not None:
            assert ours.read_text() == ours_before, "this machine's own value is unchanged"
        assert vm.probe(ADMITTED, LAYER3_REFUSED, LAYER2_REFUSED) == {
            ADMITTED: "open",
            LAYER3_REFUSED: "open",  # bypassed: the mitigation's iptables rules never see it
            LAYER2_REFUSED: "no answer",  # ebtables needs no br_netfilter
        }
        # The role's values back, by the command of its udev rule (what a module load runs).
        rule = host.file(ROLE_UDEV_RULE).content_string
        run = re.search(r'RUN\+="([^"]+)"', rule)
        assert run is not None, rule
        host.run_expect([0], run.group(1))
        assert set(sysctls(host).values()) == {"1"}
        assert vm.probe(ADMITTED, LAYER3_REFUSED, LAYER2_REFUSED) == {
            ADMITTED: "open",
            LAYER3_REFUSED: "no answer",
            LAYER2_REFUSED: "no answer",
        }
    finally:
        restore_role_values(host)
