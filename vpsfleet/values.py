"""The value types of the fleet file: what a name, an address, a path, a date or a number may be.

Every value is checked as what it is where it goes next (a hostname, a Unix account, a header of
a mail, a line of a configuration file, a path a customer may read):

- patterns match the whole value (`fullmatch`: `$` would accept a trailing newline) and digits
  are ASCII (`[0-9]`: `\\d` accepts every script's digits);
- nothing is taken for another type: `no`/`off` are not booleans, `"4"` is not a number, an
  integer is not an IPv4 address, a number is not a date;
- numbers are bounded, so that no date, duration or allocation built from them can overflow;
- free text is one line without control characters.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import unicodedata
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, Strict

from vpsfleet.reserved import not_machine_range, reserved_account, secret_path

HOSTNAME_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
ACCOUNT_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
EMAIL_LOCAL = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*")
TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
DATABASE_NAME = re.compile(r"[A-Za-z0-9_$][A-Za-z0-9_$-]{0,63}")
PORT_SPEC = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?/(tcp|udp)")
TIME_OF_DAY = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
COUNTRY_CODE = re.compile(r"[A-Z]{2}")
LIBVIRT_URI = re.compile(r"qemu(?:\+ssh)?://[!-~]{1,1000}")  # printable ASCII, no spaces
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
SSH_PUBLIC_KEY = re.compile(
    r"(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com"
    r"|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}(?: .*)?"
)
# Dates outside these years are typos; bounding them keeps date arithmetic from overflowing.
FIRST_YEAR, LAST_YEAR = 1970, 2999
WIDEST_PREFIX = 16  # a pool or management network holds at most 65,536 addresses


def shown(value: object, limit: int = 40) -> str:
    """A value as a problem quotes it: its repr, cut short (input is never rendered whole)."""
    if isinstance(value, str):
        return repr(value if len(value) <= limit else value[:limit] + "...")
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def one_line(value: str) -> str:
    """One line: no control, format or separator characters (a newline in a relay host would
    land in postfix's main.cf; one in a name, in a mail header)."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise ValueError(f"{shown(value)} holds a control character {char!r}: one line of "
                             "plain text is expected")
    if value != value.strip() or not value:
        raise ValueError(f"{shown(value)}: no leading or trailing spaces, and not empty")
    return value


def _pattern(rx: re.Pattern[str], what: str) -> Any:
    def check(value: str) -> str:
        if not rx.fullmatch(value):
            raise ValueError(f"{shown(value)} is not {what}")
        return value

    return AfterValidator(check)


def _account(value: str) -> str:
    if reserved_account(value):
        raise ValueError(f"{value!r} is a system or platform account name: it would take that "
                         "account over on a managed VPS (M13)")
    return value


def _fqdn(value: str) -> str:
    labels = value.split(".")
    if len(value) > 253 or not all(DNS_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{shown(value)} is not a host name (letters, digits and '-' in "
                         "dot-separated labels)")
    return value


def _email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if (
        not at or len(value) > 254 or len(local) > 64 or not EMAIL_LOCAL.fullmatch(local)
        or "." not in domain or not domain.rsplit(".", 1)[1].isalpha()
    ):
        raise ValueError(f"{shown(value)} is not an e-mail address (local@domain.tld)")
    _fqdn(domain)
    return value


def _port_spec(value: str) -> str:
    match = PORT_SPEC.fullmatch(value)
    if not match:
        raise ValueError(f"malformed port {shown(value)}: expected PORT/PROTO or FIRST-LAST/PROTO")
    first = int(match.group(1))
    last = int(match.group(2) or first)
    if not 1 <= first <= 65535 or not 1 <= last <= 65535:
        raise ValueError(f"malformed port {value!r}: ports are 1-65535")
    if last < first:
        raise ValueError(f"malformed port range {value!r}: {last} is below {first}")
    return value


def _ssh_key(value: str) -> str:
    if not SSH_PUBLIC_KEY.fullmatch(value):
        raise ValueError(f"{shown(value, 24)} is not an OpenSSH public key line (TYPE BASE64 "
                         "[COMMENT], e.g. ssh-ed25519)")
    return one_line(value)


def _backup_path(value: str) -> str:
    parts = value.split("/")
    if not value.startswith("/") or (value != "/" and any(p in ("", ".", "..") for p in parts[1:])):
        raise ValueError(f"{shown(value)} is not an absolute, normalised path (no '..', '.', "
                         "'//' or trailing '/')")
    protected = secret_path(value)
    if protected is not None:
        raise ValueError(f"{value} would hand {protected} to the customer's read account on the "
                         "store: back up the data, never system secrets")
    return value


def _date(value: object) -> dt.date:
    """A calendar date, as YAML writes it (2026-11-23); never a number or an instant."""
    if isinstance(value, dt.datetime):
        raise ValueError(f"expected a date YYYY-MM-DD, not an instant ({value.isoformat()})")
    if isinstance(value, str) and DATE.fullmatch(value):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError as err:
            raise ValueError(f"{value} is not a date of the calendar ({err})") from None
    if not isinstance(value, dt.date):
        raise ValueError(f"expected a date YYYY-MM-DD (got {shown(value)})")
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"{value} is not a plausible date ({FIRST_YEAR}-{LAST_YEAR})")
    return value


def _instant(value: object) -> dt.datetime:
    """An instant (2026-11-23T12:00:00Z); never a number or a bare date."""
    if isinstance(value, str) and DATE.fullmatch(value[:10]) and "T" in value:
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError as err:
            raise ValueError(f"{shown(value)} is not an instant of the calendar ({err})") from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        raise ValueError(f"expected an instant YYYY-MM-DDTHH:MM:SSZ, not a day ({value})")
    if not isinstance(value, dt.datetime):
        raise ValueError(f"expected an instant YYYY-MM-DDTHH:MM:SSZ (got {shown(value)})")
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"{value} is not a plausible instant ({FIRST_YEAR}-{LAST_YEAR})")
    return value


def _databases(value: object) -> object:
    """`all`, `none`, or a list of database names (one message, not one per union member)."""
    if value in ("all", "none"):
        return value
    if not isinstance(value, list):
        raise ValueError(f"expected all, none or a list of database names (got {shown(value)})")
    for index, name in enumerate(value):
        if not isinstance(name, str) or not DATABASE_NAME.fullmatch(name):
            raise ValueError(f"{shown(name)} (item {index}) is not a database name (letters, "
                             "digits, '_$-', 64 at most)")
    return value


def _ipv4(value: object) -> ipaddress.IPv4Address:
    if isinstance(value, ipaddress.IPv4Address):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an IPv4 address in dotted form (got {shown(value)})")
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"{shown(value)} is not an IPv4 address") from None


def _machine(address: ipaddress.IPv4Address) -> ipaddress.IPv4Address:
    special = not_machine_range(ipaddress.IPv4Network(address))
    if special is not None:
        raise ValueError(f"{address} cannot be a machine's address (it is in {special}: "
                         "this-network, loopback, link-local, multicast or reserved)")
    return address


def _network(value: object) -> ipaddress.IPv4Network:
    if isinstance(value, ipaddress.IPv4Network):
        network = value
    elif isinstance(value, str):
        try:
            network = ipaddress.IPv4Network(value)
        except ValueError as err:
            raise ValueError(f"{shown(value)} is not an IPv4 network ({err})") from None
    else:
        raise ValueError(f"expected an IPv4 network NETWORK/PREFIX (got {shown(value)})")
    special = not_machine_range(network)
    if special is not None:
        raise ValueError(f"{network} overlaps {special}, where no machine lives")
    if network.prefixlen < WIDEST_PREFIX:
        raise ValueError(f"{network} is too wide: at most a /{WIDEST_PREFIX}")
    return network


Hostname = Annotated[str, _pattern(HOSTNAME_LABEL, "a valid hostname label (lowercase letters, "
                                   "digits and '-', 1-63 characters, no leading or trailing '-')")]
# A Unix account on the guests (customer ids, operators): a hostname label that starts with a
# letter, 32 characters at most, and no system account.
AccountName = Annotated[
    str,
    _pattern(ACCOUNT_NAME, "an account name (a lowercase letter, then lowercase letters, digits "
             "and '-', 32 characters at most)"),
    AfterValidator(_account),
]
CountryCode = Annotated[str, _pattern(COUNTRY_CODE, "a country code (two capital letters)")]
LibvirtUri = Annotated[str, _pattern(LIBVIRT_URI, "a libvirt URI (qemu:///system or "
                                     "qemu+ssh://user@host/system?..., no spaces)")]
Fqdn = Annotated[str, AfterValidator(_fqdn)]


def _time_zone(value: str) -> str:
    """An IANA time zone the machine's tz database knows (Europe/Paris)."""
    try:
        ZoneInfo(value)
    except (ValueError, ZoneInfoNotFoundError):
        raise ValueError(f"{shown(value)} is not a time zone of the tz database "
                         "(e.g. Europe/Paris)") from None
    return value


TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_time_zone)]
Email = Annotated[str, AfterValidator(_email)]
Line = Annotated[str, Field(max_length=200), AfterValidator(one_line)]
Text = Annotated[str, Field(max_length=2000), AfterValidator(one_line)]
Token = Annotated[str, _pattern(TOKEN, "a name of letters, digits and '._+-' (128 at most)")]
DatabaseScope = Annotated[Literal["all", "none"] | list[str], BeforeValidator(_databases)]
PortSpec = Annotated[str, AfterValidator(_port_spec)]
TimeOfDay = Annotated[str, _pattern(TIME_OF_DAY, "a time HH:MM (00:00-23:59)")]
SshKey = Annotated[str, AfterValidator(_ssh_key)]
BackupPath = Annotated[str, Field(max_length=1024), AfterValidator(one_line),
                       AfterValidator(_backup_path)]
Date = Annotated[dt.date, BeforeValidator(_date)]
Instant = Annotated[dt.datetime, BeforeValidator(_instant)]
Address = Annotated[ipaddress.IPv4Address, BeforeValidator(_ipv4)]
MachineAddress = Annotated[ipaddress.IPv4Address, BeforeValidator(_ipv4), AfterValidator(_machine)]
Network = Annotated[ipaddress.IPv4Network, BeforeValidator(_network)]
Flag = Annotated[bool, Strict()]

# Numbers: integers are integers (never "4", 4.0 or true) and every one is bounded.
Positive = Annotated[int, Strict(), Field(gt=0, le=1_000_000_000)]
Small = Annotated[int, Strict(), Field(gt=0, le=1000)]
SmallOrZero = Annotated[int, Strict(), Field(ge=0, le=1000)]
Days = Annotated[int, Strict(), Field(gt=0, le=3650)]
DaysOrZero = Annotated[int, Strict(), Field(ge=0, le=3650)]
Hours = Annotated[int, Strict(), Field(gt=0, le=87600)]
Minutes = Annotated[int, Strict(), Field(gt=0, le=1440)]
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]
Percent = Annotated[float, Strict(), Field(ge=0, le=100, allow_inf_nan=False)]
Ratio = Annotated[float, Strict(), Field(ge=1, le=100, allow_inf_nan=False)]
Quantity = Annotated[float, Strict(), Field(gt=0, le=1_000_000, allow_inf_nan=False)]
