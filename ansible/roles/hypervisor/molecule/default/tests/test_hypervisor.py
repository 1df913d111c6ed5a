"""Role hypervisor against the real libvirtd, kernel bridge and nftables of a privileged systemd
container: libvirt, the guests' bridge, br_netfilter, the pool and its base volume, the host's
firewall (management sources, per-tap packet rates, M5) and the traffic quota job (M8)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra

testinfra_hosts = ["hv-role-host"]

VIRSH = "virsh --connect qemu:///system"
BRIDGE = "br-hvtest"
POOL = "vpsfleet-test"
VOLUME = "vpsfleet-test-base.qcow2"


def address(host) -> str:
    return str(host.interface("eth0").addresses[0])


def probe():
    return testinfra.get_host("podman://hv-role-probe")


def test_libvirtd_runs_and_answers(host):
    assert host.service("libvirtd").is_running
    assert host.service("libvirtd").is_enabled
    assert host.check_output(f"{VIRSH} uri") == "qemu:///system"
    # No idle timeout: the daemon stays for the traffic job and Pulumi.
    assert 'LIBVIRTD_ARGS=""' in host.file("/etc/default/libvirtd").content_string


def test_the_default_nat_network_is_off(host):
    info = host.check_output(f"{VIRSH} net-info default")
    assert "Active:         no" in info
    assert "Autostart:      no" in info


def test_the_guests_bridge_is_up(host):
    link = json.loads(host.check_output(f"ip -j -d link show {BRIDGE}"))[0]
    assert link["linkinfo"]["info_kind"] == "bridge"
    assert "UP" in link["flags"]
    assert host.file(f"/etc/systemd/network/50-vpsfleet-{BRIDGE}.netdev").contains("Kind=bridge")
    assert host.service("systemd-networkd").is_enabled
    # networkd left the container's own link and default route alone.
    assert "default via" in host.check_output("ip route show default")


def test_br_netfilter_is_active_and_persisted(host):
    for table in ("iptables", "ip6tables", "arptables"):
        assert host.file(f"/proc/sys/net/bridge/bridge-nf-call-{table}").content_string.strip() == "1"
        assert re.search(
            rf"^net\.bridge\.bridge-nf-call-{table}\s*=\s*1$",
            host.file("/etc/sysctl.d/60-vpsfleet-hypervisor.conf").content_string,
            re.MULTILINE,
        )
    assert "br_netfilter" in host.file("/etc/modules-load.d/vpsfleet-hypervisor.conf").content_string.split()
    assert host.file("/etc/udev/rules.d/60-vpsfleet-bridge-sysctl.rules").contains('KERNEL=="br_netfilter"')


MISSING = """
- name: The pool's check with an image the pool lacks
  hosts: all
  gather_facts: false
  tasks:
    - name: Check the pool
      ansible.builtin.include_role:
        name: hypervisor
        tasks_from: pool.yml
      vars:
        hypervisor_storage_pool: vpsfleet-test
        hypervisor_images: {debian-12: vpsfleet-test-base.qcow2, ubuntu-24.04: ubuntu-24.04-absent.img}
        hypervisor_image_urls: {}
"""


def test_a_base_image_missing_from_the_pool_fails_naming_it(host, tmp_path):
    """The fleet names a volume the pool lacks and no URL gives it: the role stops and says which
    (a guest on that image could not be created), and leaves the pool as it was."""
    playbook = tmp_path / "missing.yml"
    playbook.write_text(MISSING)
    roles = Path(__file__).resolve().parents[4]  # ansible/roles
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            *("-i", "hv-role-host,", "-c", "containers.podman.podman", str(playbook)),
        ],
        env={
            **os.environ,
            "ANSIBLE_ROLES_PATH": str(roles),
            "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0, result.stdout + result.stderr
    last = json.loads(result.stdout)["plays"][0]["tasks"][-1]
    assert last["task"]["name"].endswith("Check that every base image the fleet names is in the pool")
    message = " ".join(last["hosts"]["hv-role-host"]["msg"].split())
    assert "missing from pool vpsfleet-test" in message
    assert "ubuntu-24.04 -> ubuntu-24.04-absent.img" in message
    assert "debian-12 ->" not in message
    assert VOLUME in host.check_output(f"{VIRSH} vol-list --pool {POOL}")


def test_the_pool_is_active_with_the_fetched_base_volume(host):
    info = host.check_output(f"{VIRSH} pool-info {POOL}")
    assert "State:          running" in info
    assert "Autostart:      yes" in info
    assert VOLUME in host.check_output(f"{VIRSH} vol-list --pool {POOL}").split()
    assert "file format: qcow2" in host.check_output(f"qemu-img info /var/lib/libvirt/images/{VOLUME}")


NWFILTER = """<filter name='vpsfleet-hvtest' chain='root'>
  <rule action='drop' direction='in' priority='500'><tcp dstportstart='23'/></rule>
</filter>"""

DOMAIN = f"""<domain type='qemu'>
  <name>hv-role-probe-domain</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source pool='{POOL}' volume='{VOLUME}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <source bridge='{BRIDGE}'/>
      <target dev='vf-000000000001'/>
      <filterref filter='vpsfleet-hvtest'><parameter name='IP' value='192.0.2.18'/></filterref>
      <bandwidth><inbound average='12500'/><outbound average='12500'/></bandwidth>
    </interface>
  </devices>
</domain>"""


def test_a_guest_with_its_filter_is_definable_on_the_bridge_and_pool(host):
    """What Pulumi hands this host: an nwfilter, and a domain on the bridge over the pool's base
    volume referencing it."""
    host.run(f"cat > /tmp/hv-filter.xml <<'XML'\n{NWFILTER}\nXML")
    host.run(f"cat > /tmp/hv-domain.xml <<'XML'\n{DOMAIN}\nXML")
    try:
        defined = host.run(f"{VIRSH} nwfilter-define /tmp/hv-filter.xml")
        assert defined.rc == 0, defined.stderr
        domain = host.run(f"{VIRSH} define /tmp/hv-domain.xml")
        assert domain.rc == 0, domain.stderr
        xml = host.check_output(f"{VIRSH} dumpxml hv-role-probe-domain")
        assert f"<source bridge='{BRIDGE}'/>" in xml
        assert "filterref filter='vpsfleet-hvtest'" in xml
    finally:
        host.run(f"{VIRSH} undefine hv-role-probe-domain")
        host.run(f"{VIRSH} nwfilter-undefine vpsfleet-hvtest")


def test_ssh_from_the_management_network_only(host):
    ruleset = host.check_output("nft list table inet vpsfleet_hypervisor")
    assert address(probe()) in ruleset
    assert host.service("vpsfleet-hypervisor-firewall").is_enabled
    # The probe is the management network: admitted.
    assert probe().run("bash -c 'echo > /dev/tcp/%s/22'", address(host)).rc == 0
    # This machine (podman's gateway address, in no management network): refused.
    with pytest.raises(OSError):
        socket.create_connection((address(host), 22), timeout=3).close()


def test_the_node_exporter_answers_on_the_host(host):
    assert host.service("prometheus-node-exporter").is_running
    assert "node_cpu_seconds_total" in host.check_output("curl -sf http://127.0.0.1:9100/metrics")


# Two namespaces on the bridge: a "guest" behind a tap named like the fleet's (vf-...) and a peer.
NETNS_UP = f"""set -e
for side in guest peer; do ip netns add hvt-$side; done
ip link add vf-hvtest00001 type veth peer name eth0 netns hvt-guest
ip link add hvt-peer-port type veth peer name eth0 netns hvt-peer
for port in vf-hvtest00001 hvt-peer-port; do ip link set $port master {BRIDGE} up; done
ip -n hvt-guest addr add 192.0.2.18/24 dev eth0; ip -n hvt-guest link set eth0 up
ip -n hvt-peer addr add 192.0.2.19/24 dev eth0; ip -n hvt-peer link set eth0 up
"""
NETNS_DOWN = (
    "ip netns del hvt-guest; ip netns del hvt-peer; ip link del vf-hvtest00001; ip link del hvt-peer-port"
)
# 500 datagrams from the guest's side as fast as Python sends them.
SEND_UDP = """ip netns exec hvt-guest python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(500):
    s.sendto(b"x", ("192.0.2.19", 9))
'"""


def drop_counters(host) -> dict[str, int]:
    """Packets dropped by each rate rule of the bridge table, keyed by its set."""
    rules = json.loads(host.check_output("nft -j list chain bridge vpsfleet_hypervisor forward"))["nftables"]
    counts: dict[str, int] = {}
    for item in rules:
        rule = item.get("rule")
        if not rule:
            continue
        name = next(e["set"]["set"].lstrip("@") for e in rule["expr"] if "set" in e)
        counts[name] = next(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
    return counts


def test_udp_and_icmp_beyond_the_rate_are_dropped_per_tap(host):
    """M5: the per-tap packet rate (50 UDP and 10 ICMP packets/s in this scenario) holds on the
    bridge, from the guest's tap; a burst far beyond it is mostly dropped."""
    host.run(NETNS_DOWN)
    try:
        up = host.run(NETNS_UP)
        assert up.rc == 0, up.stderr
        before = drop_counters(host)
        assert host.run(SEND_UDP).rc == 0
        # 200 echo requests as fast as ping sends them (root: no minimum interval).
        ping = host.run("ip netns exec hvt-guest ping -q -n -c 200 -i 0 -W 1 192.0.2.19")
        after = drop_counters(host)
    finally:
        host.run(NETNS_DOWN)
    assert after["udp_from_guest"] - before["udp_from_guest"] > 0
    assert after["icmp_from_guest"] - before["icmp_from_guest"] > 0
    # Some got through: a limit, not a block.
    assert " 0 received" not in ping.stdout, ping.stdout


def test_the_traffic_job_is_installed_with_the_fleets_figures(host):
    assert host.file("/usr/local/bin/vpsfleet-traffic").mode == 0o755
    config = json.loads(host.file("/etc/vpsfleet/traffic.json").content_string)
    assert config == {
        "libvirt_uri": "qemu:///system",
        "time_zone": "Europe/Paris",
        "state_dir": "/var/lib/vpsfleet-traffic",
        "metrics_file": "/var/lib/prometheus/node-exporter/vpsfleet-traffic.prom",
        "mail_from": "ops@test.example.net",
        "operations_email": "ops@test.example.net",
        "sendmail": "/usr/sbin/sendmail",
        "provider_name": "vpsfleet test",
        "support_email": "support@test.example.net",
        "guests": [
            {
                "domain": "hv-role-guest",
                "quota_bytes": 1_000_000_000_000,  # 1 TB
                "throttle_kbit_s": 1000,  # 1 Mbit/s
                "plan_kbit_s": 100_000,  # 100 Mbit/s
                "customer_email": "bravo@customer.example.org",
                "customer_name": "Bravo Ltd",
                "language": "en",
            }
        ],
    }
    assert host.file("/etc/vpsfleet/traffic.json").mode == 0o640
    # The job reads it as valid (a bad file would exit 2 with its problems).
    status = host.run("/usr/local/bin/vpsfleet-traffic status")
    assert status.rc == 0, status.stdout
    assert json.loads(status.stdout)["cycle"]


def test_the_traffic_timer_is_enabled_every_five_minutes(host):
    timer = host.service("vpsfleet-traffic.timer")
    assert timer.is_enabled
    assert timer.is_running
    assert "OnCalendar=*:0/5" in host.file("/etc/systemd/system/vpsfleet-traffic.timer").content_string


def test_a_run_reads_the_real_libvirtd_and_publishes_metrics(host):
    """The guest's domain does not exist here: the run says so for that guest (exit 1) and the
    node exporter publishes it (guest_ok 0), the job's alert."""
    run = host.run("systemctl start vpsfleet-traffic.service")
    assert run.rc != 0  # the oneshot's exit 1: one guest could not be read
    metrics = host.check_output("curl -sf http://127.0.0.1:9100/metrics")
    assert 'vpsfleet_traffic_guest_ok{guest="hv-role-guest"} 0' in metrics
    assert 'vpsfleet_traffic_quota_bytes{guest="hv-role-guest"} 1e+12' in metrics
