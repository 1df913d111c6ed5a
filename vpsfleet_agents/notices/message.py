"""The e-mail of a notice: to the customer, a copy to operations, replies to support; plain text
plus the HTML part, in the customer's language. The deploy's notices and the programs on machines
send the same shape."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from vpsfleet_agents.notices.render import Rendered


@dataclass(frozen=True)
class Parties:
    """Who a notice is from and who, beside the customer, hears of it."""

    sender: str  # the From address (the deploy: operations; a host: its mail sender)
    operations: str  # operations keep a copy of every notice
    sender_name: str | None = None  # the provider's name, shown in From
    reply_to: str | None = None  # support, where the customer's answer goes


def compose(
    parties: Parties,
    customer_name: str | None,
    customer_email: str,
    kind: str,
    language: str,
    rendered: Rendered,
    when: dt.datetime,
    *,
    copy: str = "cc",
) -> EmailMessage:
    """`copy`: "cc" (operations in copy), "none" (the customer alone) or "only" (operations'
    own copy of a customer's notice)."""
    message = EmailMessage()
    message["From"] = formataddr((parties.sender_name, parties.sender))
    if copy == "only":
        message["To"] = parties.operations
        message["X-Vpsfleet-Copy-Of"] = customer_email
    else:
        message["To"] = formataddr((customer_name, customer_email))
    if copy == "cc":
        message["Cc"] = parties.operations
    if parties.reply_to:
        message["Reply-To"] = parties.reply_to
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(when)
    message["Message-ID"] = make_msgid("notice", domain=parties.sender.rsplit("@", 1)[-1])
    message["X-Vpsfleet-Notice"] = kind
    message.set_content(rendered.text, charset="utf-8", cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    # After the parts exist: making the message multipart moves Content-* headers into them.
    message["Content-Language"] = language
    return message
