"""An unmanaged guest after hand-over (M13): the customer's keys open root, and no provider
account, key or sudo rule is left."""

testinfra_hosts = ["common-unmanaged"]


def test_customer_is_root(ssh):
    assert ssh("root", "bravo", "id -u").stdout.strip() == "0"


def test_provider_cannot_log_in(host, ssh):
    assert ssh("root", "ops").rc != 0
    assert not host.user("ops").exists
    assert not host.group("vpsfleet-ops").exists
    assert not host.file("/etc/sudoers.d/vpsfleet-operators").exists


def test_only_the_customers_keys_open_root(host):
    keys = host.file("/root/.ssh/authorized_keys").content_string.splitlines()
    assert [k.split()[-1] for k in keys if k.strip()] == ["bravo@molecule"]
