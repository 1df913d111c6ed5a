"""A managed guest (M13): the provider's operators are root, the customer has an account
without root; connection logs kept 12 months (M17); mail leaves through the relay."""

import time
import uuid

import testinfra

testinfra_hosts = ["common-managed"]


def test_operator_logs_in_and_acts_as_root(ssh):
    assert ssh("ops", "ops", "sudo -n true").rc == 0
    assert ssh("root", "ops", "id -u").stdout.strip() == "0"


def test_customer_logs_in_without_root(ssh):
    assert ssh("c-alpha", "alpha", "id -un").stdout.strip() == "c-alpha"
    denied = ssh("c-alpha", "alpha", "sudo -n true")
    assert denied.rc != 0
    assert ssh("root", "alpha").rc != 0, "the customer must not log in as root"


def test_only_the_operators_keys_open_root(host):
    keys = host.file("/root/.ssh/authorized_keys").content_string.splitlines()
    assert [k.split()[-1] for k in keys if k.strip()] == ["ops@molecule"]
    assert host.user("root").password.startswith("!")


def test_connection_logs_are_kept_twelve_months(host, ssh):
    journald = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    assert "Storage=persistent" in journald
    retention = [line for line in journald.splitlines() if line.startswith("MaxRetentionSec=")]
    months = int(retention[-1].split("=")[1].removesuffix("month"))
    assert months >= 12
    assert host.file("/var/log/journal").is_directory

    plan = host.run("logrotate -d /etc/logrotate.conf").stderr
    assert "rotating pattern: /var/log/vpsfleet/connections.log  monthly (12 rotations)" in plan
    assert "rotating pattern: /var/log/wtmp  monthly (12 rotations)" in plan

    # A login is recorded, with the key that made it (LogLevel VERBOSE), in the kept file.
    assert ssh("ops", "ops").rc == 0
    for _ in range(20):
        log = host.run("cat /var/log/vpsfleet/connections.log").stdout
        if "Accepted publickey for ops" in log:
            break
        time.sleep(0.5)
    assert "Accepted publickey for ops" in log
    assert "ED25519 SHA256:" in log


def test_a_mail_reaches_the_relay_over_starttls(host):
    token = uuid.uuid4().hex
    host.run(
        "printf 'Subject: vpsfleet test %s\\n\\nhello\\n' | /usr/sbin/sendmail ops@test.example.net",
        token,
    )
    sink = testinfra.get_host("podman://common-sink")
    found = ""
    for _ in range(60):
        found = sink.run("grep -rl %s /var/mail/sink/new", token).stdout.strip()
        if found:
            break
        time.sleep(0.5)
    assert found, "the test mail never reached the sink"
    # The sink refuses mail before STARTTLS, and postfix logged the TLS session.
    log = host.check_output("journalctl --no-pager -q -t postfix/smtp")
    assert "TLS connection established to relay.test.example.net" in log
