"""The mail sent once when a guest's throttle starts: to the customer, copy to operations.

Kept small on purpose; it belongs with the provider's other customer notices (vpsfleet/notices)
once that module can be shipped to hosts.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from vpsfleet_agents.traffic.config import Config, GuestQuota

TEXTS = {
    "fr": (
        "[{guest}] Quota de trafic sortant atteint : débit limité à {rate}",
        "Bonjour,\n\n"
        "Votre serveur {guest} a émis {counted} de trafic sortant depuis le début du mois, "
        "ce qui atteint le volume mensuel de son offre ({quota}).\n\n"
        "Conformément à votre contrat, son débit sortant est limité à {rate} jusqu'à la fin du "
        "cycle de facturation en cours, le {end} ({zone}). Le débit de votre offre ({plan}) sera "
        "rétabli automatiquement à cette date.\n\n"
        "Pour toute question, répondez à ce message.\n",
    ),
    "en": (
        "[{guest}] Outbound traffic quota reached: rate limited to {rate}",
        "Hello,\n\n"
        "Your server {guest} has sent {counted} of outbound traffic since the start of the month, "
        "which reaches its plan's monthly volume ({quota}).\n\n"
        "As your contract provides, its outbound rate is limited to {rate} until the end of the "
        "current billing cycle, {end} ({zone}). Your plan's rate ({plan}) comes back by itself "
        "then.\n\n"
        "For any question, reply to this message.\n",
    ),
}


def amount(count: int) -> str:
    """Bytes in decimal units, as the contracts count them (10 TB = 10^13 bytes)."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= size:
            return f"{count / size:.1f} {unit}".replace(".0 ", " ")
    return f"{count} B"


def rate(kbit_s: int) -> str:
    return f"{kbit_s // 1000} Mbit/s" if kbit_s % 1000 == 0 else f"{kbit_s} kbit/s"


def throttle_notice(
    config: Config, guest: GuestQuota, counted: int, end: dt.datetime, now: dt.datetime
) -> EmailMessage:
    subject, body = TEXTS[guest.language]
    values = {
        "guest": guest.domain,
        "counted": amount(counted),
        "quota": amount(guest.quota_bytes),
        "rate": rate(guest.throttle_kbit_s),
        "plan": rate(guest.plan_kbit_s),
        "end": end.astimezone(zoneinfo.ZoneInfo(config.time_zone)).strftime("%Y-%m-%d %H:%M"),
        "zone": config.time_zone,
    }
    message = EmailMessage()
    message["From"] = config.mail_from
    message["To"] = guest.customer_email
    message["Cc"] = config.operations_email
    message["Subject"] = subject.format(**values)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=config.mail_from.rsplit("@", 1)[1])
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body.format(**values))
    return message
