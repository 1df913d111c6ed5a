"""What a fleet file may never name: the deny-lists, each kept in one place.

- account names a customer id or an operator may not take (on a managed VPS both become Unix
  accounts, and the customer's SSH keys go to its account: taking `root` or an operator's name
  would give the customer root, M13);
- paths a backup scope may not cover or lie in (the sets are readable by the customer's read
  account on the store: system secrets and the agent's own credentials never go there);
- address ranges that cannot hold a machine (no host, guest, store, monitor or resolver there).
"""

from __future__ import annotations

import fnmatch
import ipaddress

# Debian 12's system users and groups (base-passwd, and the packages the platform installs or
# a customer commonly adds), and the cloud images' default users.
SYSTEM_ACCOUNTS = frozenset({
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
    "proxy", "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup", "adm", "tty",
    "disk", "kmem", "dialout", "fax", "voice", "cdrom", "floppy", "tape", "sudo", "audio", "dip",
    "operator", "src", "shadow", "utmp", "video", "sasl", "plugdev", "staff", "users", "input",
    "kvm", "render", "netdev", "crontab", "ssl-cert", "wheel", "admin", "administrator",
    "shutdown", "halt", "messagebus", "sshd", "postfix", "postdrop", "mysql", "mariadb", "ftp",
    "proftpd", "tss", "uuidd", "tcpdump", "polkitd", "statd", "chrony", "ntp", "ntpsec",
    "dnsmasq", "bind", "unbound", "redis", "postgres", "memcache", "nginx", "apache", "httpd",
    "dovecot", "dovenull", "vmail", "opendkim", "clamav", "prometheus", "node-exporter",
    "syslog", "rpc", "libvirt", "libvirt-qemu", "libvirt-dnsmasq", "qemu", "docker", "lxd",
    "debian", "ubuntu", "cloud-user", "ansible", "pulumi", "debian-exim", "debian-tor",
})
# Whole families: systemd's dynamic and static users, and the platform's own accounts and
# groups (vpsfleet-ops, vpsfleet-readers, vpsfleet-store...).
RESERVED_PREFIXES = ("systemd-", "vpsfleet")


def reserved_account(name: str) -> bool:
    return name in SYSTEM_ACCOUNTS or name.startswith(RESERVED_PREFIXES)


# A backup path may neither cover (`/`, `/etc`, `/var`) nor lie inside any of these; a path
# component may be a glob (`vpsfleet*`: the agent's configuration and state).
SECRET_PATHS = (
    "/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/ssh", "/etc/mysql",
    "/etc/sudoers", "/etc/sudoers.d", "/etc/vpsfleet*", "/root", "/boot", "/proc", "/sys",
    "/dev", "/run", "/var/lib/vpsfleet*", "/var/lib/mysql", "/var/backups",
)


def secret_path(path: str) -> str | None:
    """The protected path that an absolute, normalised `path` covers or lies in, if any."""
    parts = [p for p in path.split("/") if p]
    for protected in SECRET_PATHS:
        guarded = [p for p in protected.split("/") if p]
        if all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, guarded, strict=False)):
            return protected
    return None


# No machine lives here: "this network", loopback, link-local, multicast, and 240/4 (reserved,
# with the limited broadcast 255.255.255.255).
NOT_MACHINE_RANGES = tuple(
    ipaddress.IPv4Network(n)
    for n in ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4")
)


def not_machine_range(network: ipaddress.IPv4Network) -> ipaddress.IPv4Network | None:
    """The special range that `network` (a single address as a /32) overlaps, if any."""
    for special in NOT_MACHINE_RANGES:
        if network.overlaps(special):
            return special
    return None
