"""The store's configuration (written by role backup_store), checked whole before anything is
erased: names that are plain account names, known states, real dates, one-line strings."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from typing import Any

from vpsfleet_agents.backup.sets import set_date

DEFAULT_PATH = "/etc/vpsfleet-backup-store/config.json"
DEFAULT_MINIMUM_SETS = 3
STATES = ("active", "suspended", "terminated")
LANGUAGES = ("fr", "en")  # the customer mails' languages (customer_notice.py)
REQUIRED = ("root", "guests", "customers")

# Every pattern is used with fullmatch: ASCII digits only (`\d` takes other scripts' digits), no
# trailing newline (`$` lets one through).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # guest and customer names (account names)
IDENTITY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@:+-]{0,199}")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*")
HOST = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
LINE = re.compile(r"[ -~]{0,200}")  # one printable ASCII line


class Refused(Exception):
    """A request the program will not carry out (exit 2)."""


def _check(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise Refused(f"configuration: {where}: {what}")


def _date(value: Any) -> bool:
    """None, or YYYY-MM-DD in ASCII digits naming a real date."""
    return value is None or set_date(value) is not None


def _name(value: Any) -> bool:
    return isinstance(value, str) and bool(NAME.fullmatch(value))


def _identity(value: Any) -> bool:
    return value is None or (isinstance(value, str) and bool(IDENTITY.fullmatch(value)))


def _email(value: Any) -> bool:
    return isinstance(value, str) and bool(EMAIL.fullmatch(value))


def _count(value: Any, least: int) -> bool:
    return type(value) is int and value >= least


def check_config(config: dict[str, Any]) -> None:
    """Refuses a configuration this program cannot trust to erase by: names that are not plain
    account names (a `..` would reach out of the tree), unknown states, impossible dates,
    free-form strings that would reach a mail header or a path."""
    root = config.get("root")
    _check(isinstance(root, str) and root.startswith("/"), "root", "an absolute path")
    _check(isinstance(config.get("guests"), list), "guests", "a list")
    _check(isinstance(config.get("customers"), list), "customers", "a list")
    seen: set[str] = set()
    for index, guest in enumerate(config["guests"]):
        where = f"guests[{index}]"
        _check(isinstance(guest, dict), where, "a mapping")
        for key in ("guest", "customer"):
            _check(
                _name(guest.get(key)),
                f"{where}.{key}",
                f"a name of letters, digits, '_', '.', '-', got {guest.get(key)!r}",
            )
        _check(guest["guest"] not in seen, where, f"{guest['guest']} is listed twice")
        seen.add(guest["guest"])
        _check(guest.get("state") in STATES, f"{where}.state", f"one of {', '.join(STATES)}")
        _check(_date(guest.get("terminated_on")), f"{where}.terminated_on", "YYYY-MM-DD or null")
        days = guest.get("retention_days")
        _check(days is None or _count(days, 1), f"{where}.retention_days", "a number of days")
        least = guest.get("retention_minimum_sets")
        _check(least is None or _count(least, 1), f"{where}.retention_minimum_sets", "1 or more")
        identity = guest.get("identity")
        _check(_identity(identity), f"{where}.identity", f"name@date, got {identity!r}")
        managed = guest.get("managed")
        _check(managed is None or isinstance(managed, bool), f"{where}.managed", "true or false")
    for index, customer in enumerate(config["customers"]):
        where = f"customers[{index}]"
        _check(isinstance(customer, dict), where, "a mapping")
        _check(
            _name(customer.get("id")),
            f"{where}.id",
            f"a name of letters, digits, '_', '.', '-', got {customer.get('id')!r}",
        )
        quota = customer.get("quota_bytes")
        _check(quota is None or _count(quota, 0), f"{where}.quota_bytes", "bytes")
        identity = customer.get("identity")
        _check(_identity(identity), f"{where}.identity", f"name@date, got {identity!r}")
        # Both reach a mail to the customer (M24): one address, a known language.
        email = customer.get("email")
        _check(email in (None, "") or _email(email), f"{where}.email", f"one e-mail address, got {email!r}")
        language = customer.get("language")
        _check(language in (None, *LANGUAGES), f"{where}.language", f"one of {', '.join(LANGUAGES)}")
        name = customer.get("name")
        _check(name is None or (isinstance(name, str) and name.isprintable()), f"{where}.name", "one line")
    store = config.get("store", "x")
    _check(isinstance(store, str) and bool(HOST.fullmatch(store)), "store", "a host name")
    for key in ("operations_email", "mail_from", "support_email"):
        value = config.get(key)
        _check(
            value in (None, "") or (isinstance(value, str) and bool(EMAIL.fullmatch(value))),
            key,
            f"one e-mail address, got {value!r}",
        )
    _check(bool(LINE.fullmatch(str(config.get("window", "")))), "window", "one line")
    docs = str(config.get("customer_docs_url") or "")
    _check(bool(LINE.fullmatch(docs)), "customer_docs_url", "one printable line")
    provider = config.get("provider") or ""
    _check(
        isinstance(provider, str) and len(provider) <= 200 and provider.isprintable(),
        "provider",
        "one printable line",
    )
    minimum = config.get("retention_minimum_sets", DEFAULT_MINIMUM_SETS)
    _check(_count(minimum, 1), "retention_minimum_sets", "a number, at least 1")


def load_config(path: str) -> dict[str, Any]:
    """The configuration file, or stdin for `-` (the role's own view, in check mode too). An
    `agent` key (the guests' agent file, which the program loaded before it was built from the
    package) is ignored."""
    try:
        if path == "-":
            config = json.load(sys.stdin)
        else:
            with open(path, encoding="utf-8") as handle:
                config = json.load(handle)
    except (OSError, ValueError) as err:
        raise Refused(f"configuration {path}: {err}") from err
    if not isinstance(config, dict):
        raise Refused(f"configuration {path}: not a mapping")
    for key in REQUIRED:
        if key not in config:
            raise Refused(f"configuration {path}: `{key}` is missing")
    check_config(config)
    return config


def parse_date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def erase_due(guest: dict[str, Any], today: dt.date) -> bool:
    """A terminated guest whose termination date is reached (M11)."""
    ended = parse_date(guest.get("terminated_on"))
    return guest.get("state") == "terminated" and ended is not None and ended <= today
