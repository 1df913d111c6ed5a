"""The e-mail of a notice: to the customer, a copy to operations, replies to support.

A notice that holds a secret (the access codes' initial password) goes to the customer alone;
operations get their own copy with the secret withheld. The shape is shared with the programs
on machines (`vpsfleet_agents.notices.message`); the fleet gives the parties.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

from vpsfleet.fleet import Fleet
from vpsfleet.schema import Customer
from vpsfleet_agents.notices.message import Parties
from vpsfleet_agents.notices.message import compose as compose_parts
from vpsfleet_agents.notices.render import Rendered


def parties(fleet: Fleet) -> Parties:
    provider = fleet.provider
    return Parties(sender=provider.operations_email, operations=provider.operations_email,
                   sender_name=provider.name, reply_to=provider.support_email)


def compose(fleet: Fleet, customer: Customer, kind: str, language: str, rendered: Rendered,
            when: dt.datetime, *, copy: str = "cc") -> EmailMessage:
    """`copy`: "cc" (operations in copy), "none" (the customer alone) or "only" (operations'
    own copy of a customer's notice)."""
    return compose_parts(parties(fleet), customer.name, customer.email, kind, language, rendered,
                         when, copy=copy)
