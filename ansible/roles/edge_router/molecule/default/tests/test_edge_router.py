"""Role edge_router: the rendered ruleset is loaded, valid, loaded at boot, and the router
forwards (M5, M6, M7, M28 for dedicated servers; the traffic is probed in tests/edge/)."""

testinfra_hosts = ["edge-router"]

RULESET = "/etc/nftables.d/vpsfleet-edge.nft"


def test_the_rendered_ruleset_is_loaded(host):
    ruleset = host.check_output("nft list table inet vpsfleet_edge")
    assert "192.0.2.200 : jump in_ds-par1-01" in ruleset
    assert "chain out_ds-par1-01" in ruleset
    assert 'comment "M5 sensitive ports"' in ruleset


def test_the_file_is_valid_and_loaded_at_boot(host):
    path = host.file(RULESET)
    assert path.mode == 0o644 and path.user == "root"
    assert host.run(f"nft -c -f {RULESET}").rc == 0
    unit = host.service("vpsfleet-edge-firewall")
    assert unit.is_enabled and unit.is_running


def test_the_router_forwards(host):
    assert host.check_output("sysctl -n net.ipv4.ip_forward") == "1"
    assert "net.ipv4.ip_forward=1" in host.file("/etc/sysctl.d/60-vpsfleet-edge.conf").content_string
