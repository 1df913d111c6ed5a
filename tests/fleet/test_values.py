"""The deny-lists and value rules on their own (the corpus shows them in whole fleet files)."""

from __future__ import annotations

import ipaddress

import pytest

from vpsfleet.backup_plan import parse_metrics
from vpsfleet.reserved import not_machine_range, reserved_account, secret_path
from vpsfleet.values import shown


@pytest.mark.parametrize("path", [
    "/", "/etc", "/var", "/var/lib", "/etc/shadow", "/etc/ssh/ssh_host_ed25519_key", "/root",
    "/root/.ssh", "/boot/grub", "/proc/1/environ", "/sys", "/run/secrets", "/var/backups",
    "/etc/vpsfleet-backup", "/etc/vpsfleet-backup/agent.conf", "/var/lib/vpsfleet",
    "/var/lib/mysql/mysql", "/etc/mysql/debian.cnf",
])
def test_a_backup_path_never_covers_or_enters_a_secret(path: str) -> None:
    assert secret_path(path) is not None


@pytest.mark.parametrize("path", ["/data/www", "/srv/app", "/etc/nginx", "/var/www", "/home/site",
                                  "/var/lib/postgresql-dumps", "/etcetera"])
def test_data_paths_are_fine(path: str) -> None:
    assert secret_path(path) is None


@pytest.mark.parametrize("name", ["root", "daemon", "www-data", "mysql", "proftpd", "sshd",
                                  "systemd-network", "systemd-anything", "vpsfleet-ops",
                                  "vpsfleet-readers", "debian", "nobody"])
def test_system_and_platform_accounts_are_reserved(name: str) -> None:
    assert reserved_account(name)


def test_customer_like_names_are_not_reserved() -> None:
    assert not any(reserved_account(n) for n in ("c-alpha", "c-0001", "ops", "alpha", "rootkit"))


@pytest.mark.parametrize("address", ["0.0.0.0", "0.1.2.3", "127.0.0.1", "169.254.1.1",
                                     "224.0.0.1", "239.255.255.250", "255.255.255.255",
                                     "240.0.0.1"])
def test_addresses_where_no_machine_lives(address: str) -> None:
    assert not_machine_range(ipaddress.IPv4Network(address)) is not None


def test_a_problem_never_quotes_a_value_whole() -> None:
    assert shown("x" * 10_000) == repr("x" * 40 + "...")
    assert len(shown(list(range(100_000)))) < 50


def test_backup_metrics_are_bounded_byte_counts() -> None:
    assert parse_metrics({"web1": 123}) == {"web1": 123}
    for bad in (10**400, -1, True, 1.5, "12"):
        with pytest.raises(ValueError, match="expected a byte count"):
            parse_metrics({"web1": bad})
