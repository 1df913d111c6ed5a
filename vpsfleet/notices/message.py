"""The e-mail of a notice: to the customer, a copy to operations, replies to support.

A notice that holds a secret (the access codes' initial password) goes to the customer alone;
operations get their own copy with the secret withheld.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from vpsfleet.fleet import Fleet
from vpsfleet.notices.render import Rendered
from vpsfleet.schema import Customer


def compose(fleet: Fleet, customer: Customer, kind: str, language: str, rendered: Rendered,
            when: dt.datetime, *, copy: str = "cc") -> EmailMessage:
    """`copy`: "cc" (operations in copy), "none" (the customer alone) or "only" (operations'
    own copy of a customer's notice)."""
    provider = fleet.provider
    message = EmailMessage()
    message["From"] = formataddr((provider.name, provider.operations_email))
    if copy == "only":
        message["To"] = provider.operations_email
        message["X-Vpsfleet-Copy-Of"] = customer.email
    else:
        message["To"] = formataddr((customer.name, customer.email))
    if copy == "cc":
        message["Cc"] = provider.operations_email  # operations keep a copy of every notice
    message["Reply-To"] = provider.support_email
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(when)
    message["Message-ID"] = make_msgid("notice", domain=provider.operations_email.split("@")[-1])
    message["X-Vpsfleet-Notice"] = kind
    message.set_content(rendered.text, charset="utf-8", cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8",
                            cte="quoted-printable")
    # After the parts exist: making the message multipart moves Content-* headers into them.
    message["Content-Language"] = language
    return message
