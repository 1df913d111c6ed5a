"""The job's configuration (`/etc/vpsfleet/traffic.json`, templated from the fleet by the role
that installs the job). Every problem is reported at once, with its location; nothing runs while
one remains."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpsfleet_agents.config_file import ConfigError as ConfigError  # this program's error too
from vpsfleet_agents.config_file import load_config

LANGUAGES = ("fr", "en")
EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
# libvirt domain names and target devices we accept: what the fleet's names and identity give.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")  # IFNAMSIZ - 1


@dataclass(frozen=True)
class GuestQuota:
    domain: str  # libvirt domain name
    # The interface's target device on the host (`<target dev=...>`); None: the domain's only one.
    interface: str | None
    quota_bytes: int  # outbound bytes allowed in a cycle (the plan's monthly quota)
    throttle_kbit_s: int  # outbound rate once the quota is spent, kbit/s (1000 bit/s)
    plan_kbit_s: int  # the plan's rate, restored when the cycle ends, kbit/s
    customer_email: str
    language: str  # of the customer's mail: "fr" or "en"
    customer_name: str | None = None  # greets the customer in the notice; None: "Bonjour,"


@dataclass(frozen=True)
class Config:
    libvirt_uri: str
    time_zone: str  # IANA name: the cycle is the calendar month there
    state_dir: Path
    metrics_file: Path | None  # the node exporter's textfile collector file, or no metrics
    mail_from: str
    operations_email: str
    sendmail: str
    guests: tuple[GuestQuota, ...]
    # The notice's signature and where the customer's questions go (default: operations_email).
    provider_name: str | None = None
    support_email: str | None = None


def _text(data: dict[str, Any], key: str, where: str, problems: list[str], default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}{key}: a non-empty string is required")
        return ""
    return value


def _count(data: dict[str, Any], key: str, where: str, problems: list[str]) -> int:
    value = data.get(key)
    # bool is an int in Python: refuse it explicitly, `true` is no quota.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        problems.append(f"{where}{key}: a positive integer is required, got {value!r}")
        return 0
    return value


def _email(data: dict[str, Any], key: str, where: str, problems: list[str]) -> str:
    value = _text(data, key, where, problems)
    if value and not EMAIL.match(value):
        problems.append(f"{where}{key}: not an e-mail address: {value!r}")
    return value


def _guest(data: Any, where: str, problems: list[str]) -> GuestQuota | None:
    if not isinstance(data, dict):
        problems.append(f"{where}: a mapping is required")
        return None
    known = {
        "domain",
        "interface",
        "quota_bytes",
        "throttle_kbit_s",
        "plan_kbit_s",
        "customer_email",
        "customer_name",
        "language",
    }
    problems.extend(f"{where}.{key}: unknown field" for key in sorted(set(data) - known))
    prefix = f"{where}."
    domain = _text(data, "domain", prefix, problems)
    if domain and not NAME.match(domain):
        problems.append(f"{prefix}domain: not a domain name: {domain!r}")
    interface = data.get("interface")
    if interface is not None and (not isinstance(interface, str) or not DEVICE.match(interface)):
        problems.append(f"{prefix}interface: not a network device name: {interface!r}")
    quota = _count(data, "quota_bytes", prefix, problems)
    throttle = _count(data, "throttle_kbit_s", prefix, problems)
    plan = _count(data, "plan_kbit_s", prefix, problems)
    if throttle and plan and throttle >= plan:
        problems.append(f"{prefix}throttle_kbit_s: {throttle} is not below the plan's rate {plan}")
    email = _email(data, "customer_email", prefix, problems)
    language = data.get("language", "fr")
    if language not in LANGUAGES:
        problems.append(f"{prefix}language: one of {', '.join(LANGUAGES)} is required, got {language!r}")
    name = _optional_text(data, "customer_name", prefix, problems)
    return GuestQuota(domain, interface, quota, throttle, plan, email, str(language), name)


def _optional_text(data: dict[str, Any], key: str, where: str, problems: list[str]) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\n" in value or "\r" in value:
        problems.append(f"{where}{key}: one line of text or null is required, got {value!r}")
        return None
    return value


def parse(data: Any, path: Path) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(path, ["the file must hold a JSON object"])
    problems: list[str] = []
    known = {
        "libvirt_uri",
        "time_zone",
        "state_dir",
        "metrics_file",
        "mail_from",
        "operations_email",
        "sendmail",
        "guests",
        "provider_name",
        "support_email",
    }
    problems.extend(f"{key}: unknown field" for key in sorted(set(data) - known))
    uri = _text(data, "libvirt_uri", "", problems, "qemu:///system")
    zone = _text(data, "time_zone", "", problems)
    if zone:
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(f"time_zone: unknown time zone {zone!r}")
    state_dir = _text(data, "state_dir", "", problems, "/var/lib/vpsfleet-traffic")
    metrics = data.get("metrics_file")
    if metrics is not None and (not isinstance(metrics, str) or not metrics):
        problems.append("metrics_file: a path or null is required")
    mail_from = _email(data, "mail_from", "", problems)
    operations = _email(data, "operations_email", "", problems)
    sendmail = _text(data, "sendmail", "", problems, "/usr/sbin/sendmail")
    provider_name = _optional_text(data, "provider_name", "", problems)
    support = _optional_text(data, "support_email", "", problems)
    if support is not None and not EMAIL.match(support):
        problems.append(f"support_email: not an e-mail address: {support!r}")
    raw_guests = data.get("guests")
    guests: list[GuestQuota] = []
    if not isinstance(raw_guests, list):
        problems.append("guests: a list is required")
    else:
        for index, item in enumerate(raw_guests):
            guest = _guest(item, f"guests[{index}]", problems)
            if guest is not None:
                guests.append(guest)
        seen: dict[str, int] = {}
        for index, guest in enumerate(guests):
            if guest.domain and guest.domain in seen:
                problems.append(
                    f"guests[{index}].domain: {guest.domain!r} already at guests[{seen[guest.domain]}]"
                )
            seen.setdefault(guest.domain, index)
    if problems:
        raise ConfigError(path, problems)
    return Config(
        libvirt_uri=uri,
        time_zone=zone,
        state_dir=Path(state_dir),
        metrics_file=Path(metrics) if isinstance(metrics, str) else None,
        mail_from=mail_from,
        operations_email=operations,
        sendmail=sendmail,
        guests=tuple(guests),
        provider_name=provider_name,
        support_email=support,
    )


def load(path: Path) -> Config:
    return load_config(path, parse)
