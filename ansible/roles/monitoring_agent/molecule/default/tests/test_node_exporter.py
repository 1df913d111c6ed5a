"""M16: the node exporter answers with CPU, network, file system and memory metrics and the
textfile collector, to the monitor only."""

import testinfra

testinfra_hosts = ["agent-guest"]

FAMILIES = (
    "node_cpu_seconds_total",
    "node_network_receive_bytes_total",
    "node_filesystem_avail_bytes",
    "node_memory_MemAvailable_bytes",
)


def guest_address(host) -> str:
    return host.interface("eth0").addresses[0]


def test_exporter_runs_with_the_textfile_collector(host):
    assert host.service("prometheus-node-exporter").is_running
    assert host.service("prometheus-node-exporter").is_enabled
    assert host.service("vpsfleet-node-exporter-firewall").is_enabled
    host.run("echo 'vpsfleet_molecule_probe 42' > /var/lib/prometheus/node-exporter/probe.prom")
    metrics = host.check_output("curl -sf http://127.0.0.1:9100/metrics")
    assert "vpsfleet_molecule_probe 42" in metrics
    host.run("rm -f /var/lib/prometheus/node-exporter/probe.prom")


def test_monitor_scrapes_the_four_metric_families(host):
    monitor = testinfra.get_host("podman://agent-monitor")
    metrics = monitor.check_output("curl -sf --max-time 5 http://%s:9100/metrics", guest_address(host))
    for family in FAMILIES:
        assert f"\n{family}{{" in metrics or f"\n{family} " in metrics, family


def test_another_machine_cannot_reach_the_exporter(host):
    other = testinfra.get_host("podman://agent-other")
    result = other.run("curl -sf --max-time 3 http://%s:9100/metrics", guest_address(host))
    assert result.rc != 0
    # ...while the guest's SSH still answers it: the rule is about the exporter alone.
    assert other.run("bash -c 'echo > /dev/tcp/%s/22'", guest_address(host)).rc == 0
