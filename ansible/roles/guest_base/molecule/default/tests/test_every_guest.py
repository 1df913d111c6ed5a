"""What every guest has, managed or not: identity, time, locales, SSH hardening."""

testinfra_hosts = ["common-managed", "common-unmanaged"]


def test_hostname_is_the_guest_name(host):
    name = host.backend.get_hostname()
    assert host.check_output("hostname") == name
    assert host.file("/etc/hosts").contains(f"127.0.1.1 {name}")


def test_time_zone_and_locales(host):
    assert host.file("/etc/localtime").linked_to.endswith("Europe/Paris")
    locales = host.check_output("locale -a")
    assert "fr_FR.utf8" in locales
    assert "en_US.utf8" in locales
    assert host.service("systemd-timesyncd").is_enabled
    assert "0.debian.pool.ntp.org" in host.check_output("systemd-analyze cat-config systemd/timesyncd.conf")


def test_ssh_drop_in_wins_over_a_later_one_that_enables_passwords(host):
    # prepare.yml left a cloud-image drop-in with PasswordAuthentication yes.
    assert host.file("/etc/ssh/sshd_config.d/50-cloud-init.conf").contains("PasswordAuthentication yes")
    effective = host.check_output("sshd -T").splitlines()
    assert "passwordauthentication no" in effective
    assert "kbdinteractiveauthentication no" in effective
    assert "permitrootlogin without-password" in effective
    kex = next(line for line in effective if line.startswith("kexalgorithms "))
    assert "sha1" not in kex
    ciphers = next(line for line in effective if line.startswith("ciphers "))
    assert "cbc" not in ciphers


def test_password_login_is_refused(host, ssh):
    # Offered password or keyboard-interactive, the server only answers with publickey.
    result = ssh("root", "ops", "true", "PreferredAuthentications=password,keyboard-interactive")
    assert result.rc != 0
    assert "Permission denied (publickey)" in result.stderr


def test_sshd_check_refuses_a_drop_in_that_would_lock_the_operator_out(host):
    host.run("printf 'AllowUsers nobody\\n' > /tmp/bad.conf")
    result = host.run(
        "/usr/local/sbin/vpsfleet-sshd-check /tmp/bad.conf /etc/ssh/sshd_config.d/00-vpsfleet.conf root"
    )
    assert result.rc != 0
    assert "locked out" in result.stderr
    good = host.run(
        "/usr/local/sbin/vpsfleet-sshd-check /etc/ssh/sshd_config.d/00-vpsfleet.conf "
        "/etc/ssh/sshd_config.d/00-vpsfleet.conf root"
    )
    assert good.rc == 0, good.stderr


def test_postfix_relays_through_the_submission_port_with_starttls(host):
    assert host.service("postfix").is_running
    main = {
        key: value
        for key, _, value in (line.partition(" = ") for line in host.check_output("postconf -n").splitlines())
    }
    assert main["relayhost"] == "[relay.test.example.net]:587"
    assert main["smtp_tls_security_level"] == "encrypt"
    assert main["inet_interfaces"] == "loopback-only"
